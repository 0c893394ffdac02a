"""binder/: its requirements install the package into a fresh venv, as repo2docker does.

repo2docker runs ``pip install -r binder/requirements.txt`` from the repository root and then
``binder/postBuild``. The test does the same in a copy of the repository (a fresh clone, so the
build leaves nothing behind in the checkout) with a brand-new venv that sees no other packages.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PIP_TIMEOUT_SECONDS = 600

CHECK = """
import sys
import trigger_nb
assert "IPython" not in sys.modules and "ipywidgets" not in sys.modules
from IPython.core.interactiveshell import InteractiveShell
shell = InteractiveShell.instance()
assert shell.run_cell("%load_ext trigger_nb").success
result = shell.run_cell("%%trigger_job binder-check --quiet\\nio.run_task('a', lambda: 41) + 1")
assert result.result == 42, result
print(trigger_nb.__file__)
"""


def test_postbuild_is_an_executable_bash_script() -> None:
    post_build = ROOT / "binder" / "postBuild"
    assert os.access(post_build, os.X_OK)
    assert post_build.read_text().startswith("#!/usr/bin/env bash\n")
    subprocess.run(["bash", "-n", str(post_build)], check=True)


@pytest.mark.slow
def test_binder_requirements_install_a_working_package_into_a_fresh_venv(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", ".trigger_nb")
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        if (ROOT / name).exists():
            shutil.copy(ROOT / name, repo / name)
    for name in ("trigger_nb", "binder", "notebooks"):
        shutil.copytree(ROOT / name, repo / name, ignore=ignore)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}")
    env.update(TRIGGER_NB_DIR=str(tmp_path / "store"), PIP_DISABLE_PIP_VERSION_CHECK="1")
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "-r", "binder/requirements.txt"],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=PIP_TIMEOUT_SECONDS,
    )
    assert install.returncode == 0, install.stdout + install.stderr

    check = subprocess.run(
        [str(python), "-c", CHECK], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stdout.splitlines()[-1].startswith(str(venv))  # not the checkout

    post_build = subprocess.run(
        ["bash", "binder/postBuild"], cwd=repo, env=env, capture_output=True, text=True
    )
    assert post_build.returncode == 0, post_build.stdout + post_build.stderr
    assert "%%trigger_job ready" in post_build.stdout
