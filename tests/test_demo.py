"""trigger_nb/demo.py: the demo ships its notebook and runs from an installed wheel.

The end-to-end runs of the demo from the checkout are in test_notebooks.py; here: the shipped copy
of the quickstart is the one in notebooks/, a missing `demo` extra is named with its fix, and a
wheel built from the repository runs the whole demo in a venv of its own.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from trigger_nb import demo

ROOT = Path(__file__).resolve().parent.parent
QUICKSTART = ROOT / "notebooks" / "quickstart.ipynb"
BUILD_TIMEOUT_SECONDS = 300  # the first build fetches setuptools into pip's isolated build env
DEMO_TIMEOUT_SECONDS = 300


def test_the_shipped_notebook_is_the_quickstart_in_notebooks() -> None:
    with demo.shipped_notebook() as shipped:
        assert shipped.read_bytes() == QUICKSTART.read_bytes(), (
            "trigger_nb/_demo/quickstart.ipynb differs from notebooks/quickstart.ipynb: "
            "edit notebooks/quickstart.ipynb, then cp notebooks/quickstart.ipynb trigger_nb/_demo/"
        )


def test_a_missing_demo_extra_is_named_with_the_install_command(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(demo, "DEMO_REQUIREMENTS", ("nbformat", "no_such_module_for_the_demo"))
    assert demo.main([]) == demo.EXIT_MISSING_DEPENDENCY
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "needs no_such_module_for_the_demo" in captured.err
    assert "pip install 'trigger-nb[demo]'" in captured.err


def test_a_notebook_that_does_not_exist_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exited:
        demo.main(["--notebook", str(tmp_path / "missing.ipynb")])
    assert exited.value.code == 2


FIND_NOTEBOOK = """
import trigger_nb, trigger_nb.demo
with trigger_nb.demo.shipped_notebook() as path:
    print(trigger_nb.__file__)
    print(path)
"""
KERNEL = """
from jupyter_client.kernelspec import KernelSpecManager
print(KernelSpecManager().get_kernel_spec("python3").argv[0])
"""


@pytest.mark.slow
def test_the_demo_runs_from_an_installed_wheel(tmp_path: Path) -> None:
    # Build from a copy: an in-tree build would leave build/ and *.egg-info in the checkout.
    repo = tmp_path / "repo"
    repo.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        if (ROOT / name).exists():
            shutil.copy(ROOT / name, repo / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", ".trigger_nb")
    shutil.copytree(ROOT / "trigger_nb", repo / "trigger_nb", ignore=ignore)
    wheels = tmp_path / "wheels"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(PIP_DISABLE_PIP_VERSION_CHECK="1")
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", ".", "-w", str(wheels)],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT_SECONDS,
    )
    assert build.returncode == 0, build.stdout + build.stderr
    (wheel,) = wheels.glob("trigger_nb-*.whl")

    # A venv that has the wheel and nothing of the checkout; its dependencies (the `demo` extra
    # included) come from this interpreter's site-packages through a .pth file, so no download.
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps",
         str(wheel)],
        env=env, capture_output=True, text=True, timeout=BUILD_TIMEOUT_SECONDS,
    )  # fmt: skip
    assert install.returncode == 0, install.stdout + install.stderr
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    (Path(purelib) / "test_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    env.update(PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}")

    def run(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(python), *argv], cwd=tmp_path, env=env, capture_output=True, text=True,
            timeout=DEMO_TIMEOUT_SECONDS,
        )  # fmt: skip

    found = run("-c", FIND_NOTEBOOK)
    assert found.returncode == 0, found.stdout + found.stderr
    package, notebook = (Path(line) for line in found.stdout.splitlines())
    assert package.is_relative_to(venv) and notebook.is_relative_to(venv)  # not the checkout
    assert notebook.read_bytes() == QUICKSTART.read_bytes()
    kernel = run("-c", KERNEL)  # the demo's kernel runs the venv's Python, so the wheel too
    assert kernel.returncode == 0, kernel.stdout + kernel.stderr
    assert kernel.stdout.strip() in ("python", str(python)), kernel.stdout

    demo_run = run("-m", "trigger_nb.demo")
    assert demo_run.returncode == 0, demo_run.stdout + demo_run.stderr
    assert "tasks executed: 0, replayed: 4" in demo_run.stdout
    assert "OK: the second pass replayed every task; nothing ran twice." in demo_run.stdout
