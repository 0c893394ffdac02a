"""The order in which the children of one ``io.parallel`` show what they print.

SPEC 3.6: each child captures its own output, and replay is in item order. Children run in
threads, so a replayed child's output, written again by its thread, could come before the live
output of an earlier child still running, and a child that runs could print before the output
of earlier ones that replay. ``ItemOrder`` keeps the item order without serializing the work:

- a replayed child's output is held back, without holding its thread (a pool worker waiting
  would hold back the children queued behind it), until every earlier child has finished;
  then whoever finished last writes it;
- a child about to run its function first waits until every earlier child has finished or is
  running too (a moment: the pool starts them in item order, and a replay takes microseconds),
  at most ``RUN_WAIT_SECONDS`` (an earlier child may be waiting for another kernel's lock).

What a running child prints is never held back: it shows as the child prints.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextvars import ContextVar

from trigger_nb._engine.execution import Frame, current_frame

RUN_WAIT_SECONDS = 1.0


class ItemOrder:
    """The children of one parallel task, ``count`` of them, finishing in any order."""

    def __init__(self, count: int) -> None:
        self._finished = [False] * count
        self._moving = [False] * count  # finished, or running its function
        self._next = 0  # every child before this one has finished
        self._next_moving = 0  # every child before this one is moving
        self._held: dict[int, Callable[[], None]] = {}
        self._changed = threading.Condition()

    def write_in_turn(self, index: int, write: Callable[[], None]) -> None:
        """Write the output child ``index`` replayed: now if every earlier child finished, else
        once they have (``finished``)."""
        with self._changed:  # writes happen under it: two children's never interleave
            if self._next >= index:
                _write(write)
            else:
                self._held[index] = write

    def wait_to_run(self, index: int) -> None:
        """Child ``index`` is about to run its function: wait until every earlier child has
        finished or runs too."""
        with self._changed:
            self._move(index)
            self._changed.wait_for(lambda: self._next_moving >= index, RUN_WAIT_SECONDS)

    def finished(self, index: int) -> None:
        """Child ``index`` has finished (returned, replayed, failed): write what was held back
        for the children this lets through, in item order."""
        with self._changed:
            self._finished[index] = True
            self._move(index)
            while self._next < len(self._finished):
                held = self._held.pop(self._next, None)
                if held is not None:
                    _write(held)
                if not self._finished[self._next]:
                    break
                self._next += 1

    def _move(self, index: int) -> None:
        self._moving[index] = True
        while self._next_moving < len(self._moving) and self._moving[self._next_moving]:
            self._next_moving += 1
        self._changed.notify_all()


def _write(write: Callable[[], None]) -> None:
    try:
        write()
    except Exception:  # showing output again is never a failure, and must not stop the others
        return


# Set for a child of a parallel task while it runs (``parallel._child``): its item order, its
# index, and its parent's frame, which tells the child's own task from a task nested in it.
output_turn: ContextVar[tuple[ItemOrder, int, Frame | None] | None] = ContextVar(
    "trigger_nb_output_turn", default=None
)


def wait_to_run() -> None:
    """Called as a task is about to run its function: a parallel task's own child waits for
    its turn (``ItemOrder.wait_to_run``); any other task goes on at once."""
    turn = output_turn.get()
    if turn is not None and turn[2] is current_frame.get():
        turn[0].wait_to_run(turn[1])
