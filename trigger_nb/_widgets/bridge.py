"""``PageBridge``: the finished run's page asks the kernel for what only the kernel can do.

A finished run shows as one page (``_render.document``): tree, status chips, search, sort,
jump to the first failure, timeline, progress. It needs no kernel, so a notebook reopened
without one still shows it. The page is the one tree: while the kernel that ran the run lives,
a task's details on the page also offer "show output" (the value, unpickled, in its own rich
display), "Refresh" and "Re-run from here" (SPEC 3.7). They reach the kernel through this
bridge, a hidden widget beside the page:

- the page's script writes a request into a hidden ``ipywidgets.Text``
  (``{"n": nonce, "do": "output" | "refresh" | "rerun", "i": task index on the page}``);
  ipywidgets sends it to the kernel as any typed text;
- the kernel does it and writes the answer into a hidden ``ipywidgets.HTML``
  (``<div class="tnb-reply" data-n=nonce data-marked="indices">HTML</div>``), which the page
  reads and shows in the task's details.

Where no kernel answers (the notebook reopened, nbviewer, an export), the script finds no
bridge and shows no action: no dead button. The bridge keeps the run's handle and the page's
task ids only, not the task records: every finished view of a kernel stays alive as long as
its widgets (ipywidgets keeps them), and 1,000 records per view made every garbage collection
of a long session slower.
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from trigger_nb._client.run import TaskView
from trigger_nb._core.model import TaskStatus
from trigger_nb._core.preview import redact_value, to_plain
from trigger_nb._render.captured import display_html
from trigger_nb._render.keys import task_title
from trigger_nb._widgets.row import Shared
from trigger_nb.errors import TaskNotFoundError, TriggerNbError

if TYPE_CHECKING:
    from trigger_nb._client.run import JobRun
    from trigger_nb._widgets.run_view import RunView

REQUEST_CLASS, REPLY_CLASS = "tnb-bridge-in", "tnb-bridge-out"
ACTIONS = ("output", "refresh", "rerun")


class PageBridge:
    """The hidden widgets beside a finished run's page (``.widget``), answering its requests.

    ``task_ids``: the page's tasks in its order (``doc_data.run_doc_json``): a request names a
    task by its index there. ``box``: a container to show the bridge in (the live view's, so
    finishing makes one widget, not two); ``reply``: an HTML widget to answer in (the live
    view's own, emptied); ``request``: the request box (``request_widget``), else a new one;
    ``release`` lets a later bridge take it over. ``rerunner``: what "Re-run from here" does with a
    task id (the live view that follows the execution).
    """

    def __init__(
        self,
        run: JobRun,
        task_ids: Sequence[str],
        *,
        box: Any = None,
        reply: Any = None,
        request: Any = None,
        rerunner: Callable[[str], None] | None = None,
    ) -> None:
        import ipywidgets

        shared = Shared.get()
        self.run, self.task_ids, self.rerunner = run, task_ids, rerunner
        self.run_view: RunView | None = None
        self.request = request if request is not None else request_widget()
        self.request.observe(self._on_request, "value")
        if reply is None:
            reply = ipywidgets.HTML(layout=shared.layout, style=shared.html_style)
        with reply.hold_sync():  # one message for both
            reply.value = ""
            reply.add_class(REPLY_CLASS)
        self.reply = reply
        if box is None:
            box = ipywidgets.VBox(layout=shared.layout, _dom_classes=("tnb", "tnb-bridge"))
        box.children = (self.reply, self.request)
        self.widget = box

    def release(self) -> None:
        """Stop answering: the request box is another bridge's now (a new execution's page)."""
        self.request.unobserve(self._on_request, "value")

    # -- requests --------------------------------------------------------------------------
    def _on_request(self, change: dict[str, Any]) -> None:
        try:
            request = json.loads(change["new"] or "{}")
            nonce, action, index = str(request["n"]), request["do"], int(request["i"])
            task_id = self.task_ids[index] if index >= 0 else ""
        except (ValueError, KeyError, IndexError, TypeError):
            return  # not a request of the page's script: nothing to answer
        if task_id and action in ACTIONS:
            self.answer(nonce, action, task_id)

    def answer(self, nonce: str, action: str, task_id: str) -> str:
        """Do ``action`` on the task and write the answer for the page; returns its HTML."""
        marked: list[int] = []
        try:
            if action == "output":
                body = self.output_html(task_id)
            elif action == "refresh":
                body, marked = self.refresh(task_id)
            else:
                body = self.rerun_from(task_id)
        except TriggerNbError as error:  # a click has no cell to raise into: the page says it
            body = f'<span class="tnb-err">{html.escape(str(error))}</span>'
        except Exception as error:  # the value's own display code failed, say: the page says so
            said = f"{action} failed: {type(error).__name__}: {error}"
            body = f'<span class="tnb-err">{html.escape(said)}</span>'
        marks = " ".join(map(str, marked))
        self.reply.value = (
            f'<div class="tnb-reply" hidden data-n="{html.escape(nonce)}" '
            f'data-marked="{marks}">{body}</div>'
        )
        return body

    def output_html(self, task_id: str) -> str:
        """The task's output in its own rich display (as IPython shows it), made safe for the
        page as captured displays are (``captured.display_html``)."""
        view = _task(self.run, task_id)
        if view.status is not TaskStatus.COMPLETED:
            title = html.escape(task_title(view.record))
            return f'<span class="tnb-muted">{title} has no output</span>'
        value = view.output
        if view.record.redact:
            value = redact_value(to_plain(value), view.record.redact)
        return (
            '<b>Output</b> <span class="tnb-muted">(loaded in the kernel)</span>'
            f'<div class="tnb-display">{display_html(_mimebundle(value))}</div>'
        )

    def refresh(self, task_id: str) -> tuple[str, list[int]]:
        """Mark the task (its subtasks, the parents reaching them) to run again; the page's
        indices of every task now marked."""
        view = _task(self.run, task_id)
        self.run.refresh_task(task_id)
        marked = self.run._store.refresh_marks(self.run.id)
        indices = [i for i, known in enumerate(self.task_ids) if known in marked]
        also = [
            *(["its subtasks"] if view.children else []),
            *(["the parent tasks that reach it"] if view.record.parent_id else []),
        ]
        said = (
            f"{task_title(view.record)} runs again on the run's next execution (re-run the "
            f"cell){', with ' + ' and '.join(also) if also else ''}; its earlier output stays "
            "in its history"
        )
        return f'<span class="tnb-muted">{html.escape(said)}</span>', indices

    def rerun_from(self, task_id: str) -> str:
        """Execute the run again from the task; the view showing the page follows it and then
        shows the new page (``rerunner``). Without one, the run executes and this says how
        it ended."""
        if self.rerunner is not None:
            self.rerunner(task_id)
            return '<span class="tnb-muted">re-ran: the page below shows the new execution</span>'
        run = self.run.rerun(from_task=task_id)
        return f'<span class="tnb-muted">re-ran: {html.escape(run.status.value)}</span>'

    # -- the interactive widget tree (what the explorer shows), on request -----------------
    def open(self) -> RunView:
        """Show the run's ipywidgets tree in place of the page (read from the store now)."""
        from trigger_nb._widgets.run_view import RunView

        if self.run_view is None:
            self.run_view = RunView(self.run)
            self.run_view.rerunner = self.rerunner
        self.widget.children = (self.reply, self.request, self.run_view.widget)
        return self.run_view


def request_widget() -> Any:
    """The hidden text box the page's script writes its requests into (``PageBridge``)."""
    import ipywidgets

    return ipywidgets.Text(
        layout=Shared.get().layout, _dom_classes=(REQUEST_CLASS,), continuous_update=True
    )


def _task(run: JobRun, task_id: str) -> TaskView:
    """The run's task ``task_id`` as stored now (its tree: ``children``)."""
    found = _find(run.tasks, task_id)
    if found is None:  # the run was cleared meanwhile
        raise TaskNotFoundError(f"run {run.id} has no task {task_id!r} any more", task=task_id)
    return found


def _find(views: list[TaskView], task_id: str) -> TaskView | None:
    stack = list(views)
    while stack:
        view = stack.pop()
        if view.id == task_id:
            return view
        stack.extend(view.children)
    return None


def _mimebundle(value: Any) -> dict[str, Any]:
    """``value`` as IPython would display it (its rich reprs), else its text."""
    from IPython import get_ipython

    shell = get_ipython()
    if shell is not None:
        data, _metadata = shell.display_formatter.format(value)
        if "text/plain" in data:
            return dict(data)
        # IPython printed a failing repr's traceback and gave nothing: raise it for the page
    return {"text/plain": repr(value)}
