import time

import pytest

from .lab import open_and_run_notebook, write_notebook


def test_error_cell(page, jupyter_server):
    nb = write_notebook(jupyter_server, "sub/err", ["1/0", "print('never')", ""])
    t = time.monotonic()
    with pytest.raises(AssertionError) as ei:
        open_and_run_notebook(page, jupyter_server, nb)
    print("elapsed", time.monotonic() - t)
    print(str(ei.value)[:600])


def test_blank_and_many(page, jupyter_server):
    cells = ["", "import time; time.sleep(2)"] + [f"x{i} = {i}\nx{i}" for i in range(40)]
    nb = write_notebook(jupyter_server, "many", cells)
    t = time.monotonic()
    open_and_run_notebook(page, jupyter_server, nb)
    print("elapsed", time.monotonic() - t)
    import os
    print(os.environ.get("X"), jupyter_server.api("GET", "/api/sessions"))


def test_env(page, jupyter_server):
    nb = write_notebook(jupyter_server, "env", ["import os, sys\nprint(os.environ['TRIGGER_NB_DIR'], sys.executable)"])
    open_and_run_notebook(page, jupyter_server, nb)
    print(page.locator(".jp-OutputArea-output").all_inner_texts())
