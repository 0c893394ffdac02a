"""What every view prints for a task: its cache key (typed: different keys look different), its
icon (a symbol, never the name in brackets) and its error (once, where it was raised).

Each is checked in the text outline, the static HTML, the interactive tree and ``trigger-nb
show``, on real runs in a real store.
"""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

import pytest

from trigger_nb import Integration, JobRun, RetryOptions, TriggerClient
from trigger_nb._cli.main import main
from trigger_nb._render.html import render_html
from trigger_nb._render.keys import key_text
from trigger_nb._render.text import render_text
from trigger_nb._widgets.run_view import RunView, run_data


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _without_tracebacks(page: str) -> str:
    return re.sub(r'<details class="tnb-err tnb-traceback">.*?</details>', "", page, flags=re.S)


# --- keys -------------------------------------------------------------------------------------

# Pairs of different keys that printed the same (str(), repr of parts), each printed apart.
KEYS: list[tuple[Any, str]] = [
    (1, "1"),
    ("1", '"1"'),
    (1.5, "1.5"),
    ("1.5", '"1.5"'),
    (True, "true"),
    ("true", '"true"'),
    ("None", '"None"'),
    (float("nan"), "nan"),
    ("nan", '"nan"'),
    (["a", "b"], "[a, b]"),
    ('["a", "b"]', '"[\\"a\\", \\"b\\"]"'),
    ("a, b", "a, b"),
    (["a, b"], '["a, b"]'),
    ([1, "1", None, False], '[1, "1", null, false]'),
    (" padded", '" padded"'),
    ("'quoted'", "\"'quoted'\""),
    ("line\nbreak", '"line\\nbreak"'),
    ("fetch-user", "fetch-user"),
]


def test_key_text_prints_different_keys_differently() -> None:
    assert [key_text(key) for key, _ in KEYS] == [text for _, text in KEYS]


@pytest.fixture
def keyed_run(client: TriggerClient) -> JobRun:
    def body(payload: Any, io: Any, ctx: Any) -> None:
        for index, (key, _) in enumerate(KEYS):
            io.run_task(key, lambda index=index: index)

    return client.define_job("keys", run=body).trigger()


def test_every_view_prints_typed_keys_apart(
    keyed_run: JobRun, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    texts = [text for _, text in KEYS]
    outline = render_text(run_data(keyed_run)).splitlines()[2:]
    assert [re.sub(r"^  ✓ (.*) · \d+ ms · completed$", r"\1", line) for line in outline] == texts
    page = render_html(run_data(keyed_run))
    assert re.findall(r'<span class="tnb-name">(.*?)</span>', page) == [
        html.escape(t, quote=True) for t in texts
    ]
    tree = RunView(keyed_run)
    assert [row.button.description for row in tree.rows.values()] == texts
    _, shown, _ = cli(capsys, "show", keyed_run.id, "--dir", str(tmp_path / "store"))
    rows = shown[shown.index("\nTASK") + 1 :].splitlines()[1:]
    assert [re.split(r"\s{2,}", row)[0] for row in rows] == texts


def test_show_task_takes_the_printed_key(
    keyed_run: JobRun, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = str(tmp_path / "store")
    for index, (_, text) in enumerate(KEYS):
        code, out, err = cli(
            capsys, "show", keyed_run.id, "--task", text, "--output", "--dir", store
        )
        assert (code, out, err) == (0, f"{index}\n", ""), text
    # JSON is read too: the list key written as JSON, the int key, the string key
    for typed, index in (('["a", "b"]', 9), ('[1, "1", null, false]', 13), ('"nan"', 8)):
        assert cli(capsys, "show", keyed_run.id, "--task", typed, "--output", "--dir", store)[
            1
        ] == (f"{index}\n")
    _, details, _ = cli(capsys, "show", keyed_run.id, "--task", '"1"', "--dir", store)
    assert re.search(r'^  key +"1"$', details, re.M)


def test_a_really_ambiguous_task_lists_the_candidates_as_printed(
    client: TriggerClient, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def body(payload: Any, io: Any, ctx: Any) -> None:
        io.run_task(["p", 1], lambda: io.run_task("1", lambda: 1))
        io.run_task(["p", "1"], lambda: io.run_task("1", lambda: 2))

    run = client.define_job("twice", run=body).trigger()
    code, out, err = cli(capsys, "show", run.id, "--task", '"1"', "--dir", str(tmp_path / "store"))
    assert (code, out) == (1, "")
    assert f"task '\"1\"' is ambiguous in run {run.id}: it matches " in err
    assert re.search(r'"1" \(id \w{10}, in \[p, 1\]\), "1" \(id \w{10}, in \[p, "1"\]\)', err)


# --- icons ------------------------------------------------------------------------------------


class Mailer(Integration):
    icon = "envelope"

    def send_email(self, to: str) -> str:
        return f"sent to {to}"


class Warehouse:
    """A plain client: its tasks get the integration's name ("warehouse") as icon."""

    def load(self, rows: int) -> int:
        return rows


@pytest.fixture
def icon_run(client: TriggerClient) -> JobRun:
    job = client.define_job(
        "icons", integrations={"mail": Mailer(), "warehouse": Warehouse(), "db": Warehouse()}
    )

    @job.run
    def run(payload: Any, io: Any, ctx: Any) -> None:
        io.mail.send_email("welcome", to="ada@example.com")
        io.db.load("rows", 3)
        io.warehouse.load("stock", 4)
        io.run_task("ping", lambda: 1, icon="slack")

    return job.trigger()


def test_icons_are_symbols_in_every_view(
    icon_run: JobRun, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = render_text(run_data(icon_run))
    assert "  ✓ send_email ✉ [welcome] · " in text
    assert "  ✓ load ⛁ [rows] · " in text  # "db": a database
    assert "  ✓ load • [stock] · " in text  # a name we do not know: a neutral dot
    assert "  ✓ ping # · " in text
    page = render_html(run_data(icon_run))
    assert '<span class="tnb-icon" title="envelope">✉</span>' in page
    assert '<span class="tnb-icon" title="warehouse">•</span>' in page
    meta = " ".join(row.meta.value for row in RunView(icon_run).rows.values())
    assert '<i class="fa fa-envelope tnb-icon" title="envelope"></i>' in meta  # FontAwesome
    assert '<i class="fa fa-database tnb-icon" title="db"></i>' in meta
    assert '<span class="tnb-icon" title="warehouse">•</span>' in meta
    _, shown, _ = cli(capsys, "show", icon_run.id, "--dir", str(tmp_path / "store"))
    assert re.search(r"^send_email ✉ \[welcome\] +COMPLETED ", shown, re.M)
    _, task, _ = cli(
        capsys, "show", icon_run.id, "--task", "welcome", "--dir", str(tmp_path / "store")
    )
    assert re.search(r"^  icon +✉ envelope$", task, re.M)
    for view in (text, page, meta, shown):
        assert not re.search(r"\[(envelope|db|warehouse|slack)\]", view)


# --- errors -----------------------------------------------------------------------------------


@pytest.fixture
def failed_run(client: TriggerClient) -> JobRun:
    def body(payload: Any, io: Any, ctx: Any) -> None:
        def parent() -> None:
            io.run_task("fine", lambda: 1)
            io.run_task("divide", lambda: 1 / 0, retry=RetryOptions(limit=2, randomize=False))

        io.run_task("parent", parent)

    return client.define_job("failing", run=body).trigger()


def test_a_task_error_is_shown_once_per_view_with_its_traceback_folded(
    failed_run: JobRun, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    message = "division by zero"
    text = render_text(run_data(failed_run))
    assert text.count(message) == 1
    assert "\nerror in task divide\n" in text  # the header names the task
    assert "  ✗ parent · " in text and " · failed · failed in subtask divide\n" in text
    assert "    ✗ divide · 2 attempts · failed · ZeroDivisionError: division by zero" in text

    page = render_html(run_data(failed_run))
    assert _without_tracebacks(page).count(message) == 1
    tracebacks = re.findall(r'<details class="tnb-err tnb-traceback">.*?</details>', page, re.S)
    assert len(tracebacks) == 1 and "1 / 0" in html.unescape(tracebacks[0])
    assert '<div class="tnb-err tnb-run-error">error in task divide</div>' in page

    tree = RunView(failed_run)
    assert "error in task divide" in tree.header.value and message not in tree.header.value
    for row in tree.rows.values():
        row.toggle_details()
    shown = [tree.header.value] + [
        row.meta.value + row.details.children[0].value for row in tree.rows.values()
    ]
    assert _without_tracebacks("".join(shown)).count(message) == 1

    store = str(tmp_path / "store")
    _, outline, _ = cli(capsys, "show", failed_run.id, "--dir", store)
    assert outline.count(message) == 1 and "  error       in task divide\n" in outline
    _, divide, _ = cli(capsys, "show", failed_run.id, "--task", "divide", "--dir", store)
    assert divide.count(message) == 2  # the error, then the end of its traceback
    assert "Traceback of the last error" in divide
    _, parent, _ = cli(capsys, "show", failed_run.id, "--task", "parent", "--dir", store)
    assert message not in parent and "Traceback" not in parent
    assert re.search(r"^  error +failed in subtask divide$", parent, re.M)


def test_an_error_raised_by_the_run_itself_is_shown_with_its_traceback(
    client: TriggerClient,
) -> None:
    def body(payload: Any, io: Any, ctx: Any) -> None:
        io.run_task("fine", lambda: 1)
        raise LookupError("no such customer")

    run = client.define_job("own-error", run=body).trigger()
    assert "\nerror: LookupError: no such customer\n" in render_text(run_data(run))
    page = render_html(run_data(run))
    assert "error: LookupError: no such customer</div>" in page
    assert re.search(r'<details class="tnb-err tnb-traceback">.*raise LookupError', page, re.S)
