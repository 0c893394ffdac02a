"""Parsing the argument lines of ``%%trigger_job``, ``%trigger_runs`` and ``%trigger_cache``.

The values of ``--payload``, ``--schema`` and ``--integrations`` are Python expressions that may
contain spaces, quotes and brackets (``--payload {"user_id": user_id}``), so ``shlex`` and argparse
do not fit: a line is split into words at whitespace outside brackets and quotes, and a value flag
takes every word up to the next ``--flag``. Errors are one line naming the flag (no IPython here:
``cell.py`` turns ``MagicArgumentError`` into IPython's one-line ``UsageError``); a misspelt
option gets the closest known one suggested.
"""

from __future__ import annotations

import ast
import dataclasses
import difflib
import re

from trigger_nb._engine.task_options import CODE_CHANGE_POLICIES

JOB_USAGE = (
    "%%trigger_job JOB_ID [--name N] [--version V] [--payload EXPR] [--schema EXPR] "
    "[--integrations EXPR] [--event NAME] [--run-id ID] [--new-run] [--refresh] [--quiet] "
    "[--on-code-change POLICY] [--refresh-stale] [--no-replay-output] [--refresh-task TASK]... "
    "[--rerun-from TASK]"
)
CACHE_USAGE = "%trigger_cache info|clear JOB_ID [--run RUN_ID]"
RUNS_USAGE = "%trigger_runs [JOB_ID]"

VALUE_FLAGS = (
    "--name", "--version", "--payload", "--schema", "--integrations", "--event", "--run-id",
    "--on-code-change", "--refresh-task", "--rerun-from",
)  # fmt: skip
# Value flags that may be given more than once: each adds a value.
REPEATABLE = ("--refresh-task",)
SWITCHES = ("--new-run", "--refresh", "--quiet", "--refresh-stale", "--no-replay-output")
_FLAG = re.compile(r"^--?[A-Za-z]")
_CLOSING = {"(": ")", "[": "]", "{": "}"}


class MagicArgumentError(ValueError):
    """A bad magic argument line; the message is one line that names the flag and the fix."""


@dataclasses.dataclass(frozen=True)
class JobArgs:
    """The parsed ``%%trigger_job`` line; expressions are kept as source text."""

    job_id: str
    name: str | None = None
    version: str | None = None
    payload: str | None = None
    schema: str | None = None
    integrations: str | None = None
    event: str | None = None
    run_id: str | None = None
    new_run: bool = False
    refresh: bool = False
    quiet: bool = False
    on_code_change: str | None = None
    refresh_stale: bool = False
    replay_output: bool = True  # --no-replay-output: replayed tasks do not print again
    # Tasks to run again (and with --rerun-from, every later one), named as `trigger-nb show`
    # prints them: an id, the cache key, or a name. See ``cell.mark_tasks``.
    refresh_tasks: tuple[str, ...] = ()
    rerun_from: str | None = None


@dataclasses.dataclass(frozen=True)
class CacheArgs:
    action: str
    job_id: str
    run_id: str | None = None


def split_words(line: str, magic: str = "%%trigger_job") -> list[str]:
    """Whitespace-separated words, keeping bracketed and quoted parts whole."""
    words: list[str] = []
    current: list[str] = []
    closers: list[str] = []
    quote: str | None = None
    escaped = False
    for char in line:
        if quote is not None:
            current.append(char)
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == quote:
                quote = None
            continue
        if char.isspace() and not closers:
            if current:
                words.append("".join(current))
                current = []
            continue
        current.append(char)
        if char in "'\"":
            quote = char
        elif char in _CLOSING:
            closers.append(_CLOSING[char])
        elif char in ")]}" and (not closers or closers.pop() != char):
            raise MagicArgumentError(f"{magic}: unbalanced {char!r} in: {line.strip()}")
    if quote is not None or closers:
        missing = quote or closers[-1]
        raise MagicArgumentError(f"{magic}: missing {missing!r} in: {line.strip()}")
    if current:
        words.append("".join(current))
    return words


def _text(word: str) -> str:
    """A plain word, or the value of a quoted string literal ("My job" -> My job)."""
    if word[:1] in "'\"":
        try:
            value = ast.literal_eval(word)
        except (ValueError, SyntaxError):
            return word
        if isinstance(value, str):
            return value
    return word


def _unknown(magic: str, flag: str, options: tuple[str, ...]) -> str:
    """The message for an unknown option: the closest known one, else the list of them."""
    if not options:
        return f"{magic}: unknown option {flag}; {magic} takes no options"
    # Compared without the dashes, so "-payload" and "--paylod" both find "--payload".
    names = {option.lstrip("-").lower(): option for option in options}
    close = difflib.get_close_matches(flag.lstrip("-").lower(), names, n=1, cutoff=0.6)
    if close:
        return f"{magic}: unknown option {flag}: did you mean {names[close[0]]}?"
    return f"{magic}: unknown option {flag}; known options: {', '.join(options)}"


def _options(
    words: list[str],
    magic: str,
    known: tuple[str, ...],
    switches: tuple[str, ...],
    repeats: dict[str, list[str]] | None = None,
) -> tuple[list[str], dict[str, str], set[str]]:
    """Positional words, value flags and switches. A flag that is a key of ``repeats`` may be
    given more than once: its values are appended there instead."""
    positional: list[str] = []
    values: dict[str, str] = {}
    flags: set[str] = set()
    repeats = {} if repeats is None else repeats
    index = 0
    while index < len(words):
        word = words[index]
        index += 1
        if not _FLAG.match(word):
            positional.append(word)
            continue
        flag, has_inline, inline = word.partition("=")
        if flag not in known and flag not in switches:
            raise MagicArgumentError(_unknown(magic, flag, (*known, *switches)))
        if flag in values or flag in flags:
            raise MagicArgumentError(f"{magic}: {flag} is given twice; give it once")
        if flag in switches:
            if has_inline:
                raise MagicArgumentError(f"{magic}: {flag} is a switch and takes no value")
            flags.add(flag)
            continue
        parts = [inline] if has_inline else []
        while not has_inline and index < len(words) and not _FLAG.match(words[index]):
            parts.append(words[index])
            index += 1
        if not parts or not "".join(parts).strip():
            raise MagicArgumentError(f"{magic}: {flag} needs a value, e.g. {flag} VALUE")
        if flag in repeats:
            repeats[flag].append(" ".join(parts))
            continue
        values[flag] = " ".join(parts)
    return positional, values, flags


def parse_job_line(line: str) -> JobArgs:
    """The ``%%trigger_job`` line; MagicArgumentError names the bad flag."""
    magic = "%%trigger_job"
    repeats: dict[str, list[str]] = {flag: [] for flag in REPEATABLE}
    positional, values, flags = _options(split_words(line), magic, VALUE_FLAGS, SWITCHES, repeats)
    if not positional:
        raise MagicArgumentError(f"{magic}: JOB_ID is missing; usage: {JOB_USAGE}")
    if len(positional) > 1:
        raise MagicArgumentError(
            f"{magic}: unexpected argument {positional[1]!r} after JOB_ID {positional[0]!r}; "
            "put expressions after --payload, --schema or --integrations"
        )
    job_id = _text(positional[0]).strip()
    if not job_id:
        raise MagicArgumentError(f"{magic}: JOB_ID is empty; usage: {JOB_USAGE}")
    texts = {flag: _text(value) for flag, value in values.items()}
    policy = texts.get("--on-code-change")
    if policy is not None and policy not in CODE_CHANGE_POLICIES:
        raise MagicArgumentError(_bad_policy(magic, policy))
    return JobArgs(
        job_id=job_id,
        name=texts.get("--name"),
        version=texts.get("--version"),
        payload=values.get("--payload"),
        schema=values.get("--schema"),
        integrations=values.get("--integrations"),
        event=texts.get("--event"),
        run_id=texts.get("--run-id"),
        new_run="--new-run" in flags,
        refresh="--refresh" in flags,
        quiet="--quiet" in flags,
        on_code_change=policy,
        refresh_stale="--refresh-stale" in flags,
        replay_output="--no-replay-output" not in flags,
        refresh_tasks=tuple(_text(value) for value in repeats["--refresh-task"]),
        rerun_from=texts.get("--rerun-from"),
    )


def _bad_policy(magic: str, policy: str) -> str:
    """``--on-code-change`` given something else than one of the four policies."""
    close = difflib.get_close_matches(policy.lower(), CODE_CHANGE_POLICIES, n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]}?)" if close and close[0] != policy else ""
    return (
        f"{magic}: --on-code-change {policy!r} is not a policy{hint}; "
        f"use one of {', '.join(CODE_CHANGE_POLICIES)}"
    )


def parse_cache_line(line: str) -> CacheArgs:
    magic = "%trigger_cache"
    positional, values, _ = _options(split_words(line, magic), magic, ("--run",), ())
    if not positional or positional[0] not in ("info", "clear"):
        raise MagicArgumentError(f"{magic}: say info or clear; usage: {CACHE_USAGE}")
    if len(positional) != 2:
        raise MagicArgumentError(f"{magic}: give exactly one JOB_ID; usage: {CACHE_USAGE}")
    run_id = _text(values["--run"]) if "--run" in values else None
    return CacheArgs(action=positional[0], job_id=_text(positional[1]), run_id=run_id)


def parse_runs_line(line: str) -> str | None:
    """The optional JOB_ID of ``%trigger_runs``."""
    positional, _, _ = _options(split_words(line, "%trigger_runs"), "%trigger_runs", (), ())
    if len(positional) > 1:
        raise MagicArgumentError(f"%trigger_runs: give at most one JOB_ID; usage: {RUNS_USAGE}")
    return _text(positional[0]) if positional else None
