"""Start-up cost: ``import trigger_nb`` and ``trigger-nb --help``, each in a fresh process.

Wall time of the whole subprocess (interpreter start included, which is what a user waits for),
median of the repeats; the baseline is ``python -c pass`` measured in the same run. Targets:
``import trigger_nb`` < 150 ms, ``trigger-nb --help`` < 250 ms.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench import median, milli, table, timed, verdict

RUNS = max(11, int(os.environ.get("TRIGGER_NB_BENCH_REPEATS", "5")))
HEAVY = {"IPython", "ipykernel", "ipywidgets", "pydantic"}  # what `import trigger_nb` must not load


def wall(argv: list[str]) -> float:
    def run() -> None:
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    return timed(run)


def import_cpu(module: str) -> float:
    """CPU seconds the import takes inside a fresh process: less sensitive to a busy machine."""
    code = f"import time; t = time.process_time(); import {module}; print(time.process_time() - t)"
    done = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return float(done.stdout)


def help_command() -> list[str] | None:
    """The console script if installed, else ``python -m trigger_nb._cli.main``; None if no CLI
    yet."""
    if importlib.util.find_spec("trigger_nb._cli.main") is None:
        return None
    script = Path(sys.executable).with_name("trigger-nb")
    if script.exists():
        return [str(script), "--help"]
    found = shutil.which("trigger-nb")
    return [found, "--help"] if found else [sys.executable, "-m", "trigger_nb._cli.main", "--help"]


def main() -> None:
    python = sys.executable
    commands = {
        "bare": [python, "-c", "pass"],
        "import": [python, "-c", "import trigger_nb"],
        "heavy": [python, "-c", "import sys, trigger_nb; "
                  f"assert not {HEAVY!r} & set(sys.modules), {HEAVY!r} & set(sys.modules)"],
    }  # fmt: skip
    cli = help_command()
    if cli is not None:
        commands["help"] = cli
    for argv in commands.values():  # warm the OS file cache and .pyc files
        wall(argv)
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(RUNS):
        for name, argv in commands.items():
            times[name].append(wall(argv))
    cpu = {
        m: median([import_cpu(m) for _ in range(RUNS)])
        for m in ("trigger_nb", "trigger_nb._cli.main")
    }
    bare = median(times["bare"])
    imported = median(times["import"])
    rows = [
        ["`python -c pass` (baseline)", milli(bare), "1.00x", "", ""],
        ["`python -c 'import trigger_nb'`", milli(imported), f"{imported / bare:.2f}x",
         milli(imported - bare), f"< 150 ms: {verdict(imported, 0.150)}"],
    ]  # fmt: skip
    if cli is not None:
        shown = " ".join(Path(cli[0]).name if i == 0 else a for i, a in enumerate(cli))
        helped = median(times["help"])
        rows.append([f"`{shown}`", milli(helped), f"{helped / bare:.2f}x", milli(helped - bare),
                     f"< 250 ms: {verdict(helped, 0.250)}"])  # fmt: skip
    else:
        rows.append(["`trigger-nb --help`", "pending", "", "", "trigger_nb._cli.main missing"])
    rows.append(["CPU time of `import trigger_nb` alone", milli(cpu["trigger_nb"]), "", "",
                 "in-process `time.process_time()`"])  # fmt: skip
    if cli is not None:
        cli_cpu = milli(cpu["trigger_nb._cli.main"])
        rows.append(["CPU time of `import trigger_nb._cli.main` alone", cli_cpu,
                     "", "", "in-process `time.process_time()`"])  # fmt: skip
    print(f"### Start-up (fresh process, wall time, median of {RUNS} runs)\n")
    print(table(["command", "wall time", "ratio to bare python", "over bare python", "target"],
                rows))  # fmt: skip
    print(
        "\nImporting trigger_nb loads none of IPython, ipykernel, ipywidgets and pydantic"
        " (checked in every run).\n"
    )


if __name__ == "__main__":
    main()
