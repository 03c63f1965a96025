"""How commands talk: tables for people, one JSON object for machines.

Results go to stdout (a table, or one JSON object with ``--json``); progress, notices and
errors go to stderr. A console writing to a terminal wraps to the terminal's width; one
writing to a pipe or a file never cuts nor wraps a line (:func:`make_console`).

A result is shown to people as aligned rows where each nested object is a group of
indented rows under its name (JSON keeps the same nesting). Counts get thousands separators,
identifiers (process ids, ports, offsets, seeds, years) do not:

>>> print(render_value("pid", 41234), render_value("declarations", 41234))
41234 41,234
>>> rows(
...     {"alerts": 3, "latency_ms": {"p50": 2.5, "p99": 9.0}, "port": 8080}
... )  # doctest: +NORMALIZE_WHITESPACE
[('alerts', '3'), ('latency_ms', ''), ('  p50', '2.5'), ('  p99', '9'), ('port', '8080')]
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any, NoReturn, TextIO

import orjson
from rich.console import Console
from rich.markup import escape

UNCUT_WIDTH = 1000
"""Width of a console that writes to a pipe or a file: wide enough that nothing is cut."""


def make_console(file: TextIO | None = None, *, stderr: bool = False) -> Console:
    """A console that wraps to a terminal's width, and never cuts what goes to a pipe."""
    stream = file or (sys.stderr if stderr else sys.stdout)
    interactive = stream.isatty()
    return Console(
        file=file,
        stderr=stderr,
        width=None if interactive else UNCUT_WIDTH,
        soft_wrap=not interactive,
        highlight=False,
    )


console = make_console(stderr=True)
"""Human notices, progress and errors: stderr, so that stdout carries only results."""

JSON_OPTION_HELP = "Print one JSON object on stdout instead of a table."

IDENTIFIERS = frozenset(
    {"pid", "port", "partition", "offset", "seed", "year", "line", "version", "run_id"}
)
"""Keys whose integer values are names, not quantities: shown without separators."""


class CommandError(Exception):
    """An error to show the user, without a traceback, exiting with status 1."""


def emit(result: Mapping[str, Any], *, as_json: bool, title: str = "") -> None:
    """Print a command's result: one JSON object on stdout, or aligned rows for people
    (no frame: nothing to cut or pad, whatever the width)."""
    if as_json:
        print_json(result)
        return
    found = rows(result)
    width = max((len(key) for key, _ in found), default=0)
    lines = [f"[bold]{escape(title)}[/bold]"] if title else []
    lines.extend(f"  {escape(key.ljust(width))}  {escape(value)}" for key, value in found)
    make_console().print("\n".join(line.rstrip() for line in lines), highlight=False)


def print_json(result: Mapping[str, Any]) -> None:
    """One JSON object on one line of stdout."""
    sys.stdout.buffer.write(
        orjson.dumps(result, option=orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY)
    )
    sys.stdout.buffer.write(b"\n")
    sys.stdout.flush()


def fail(message: str, code: int = 1) -> NoReturn:
    """Say what went wrong in one line on stderr, and exit with ``code``."""
    console.print(f"[red]error:[/red] {escape(message)}")
    raise SystemExit(code)


def rows(result: Mapping[str, Any], depth: int = 0) -> list[tuple[str, str]]:
    """The rows of a result's table: a nested object is a named group of indented rows."""
    out: list[tuple[str, str]] = []
    indent = "  " * depth
    for key, value in result.items():
        name = f"{indent}{key}"
        if isinstance(value, Mapping) and value:
            out.append((name, ""))
            out.extend(rows(value, depth + 1))
        else:
            out.append((name, render_value(str(key), value)))
    return out


def render_value(key: str, value: Any) -> str:
    """A value as people read it (see the module's examples)."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1e4 else f"{value:,.0f}"
    if isinstance(value, int):
        identifier = key in IDENTIFIERS or key.endswith(("_pid", "_port", "_id"))
        return str(value) if identifier else f"{value:,}"
    if isinstance(value, Mapping):
        return "-"
    if isinstance(value, list | tuple):
        return ", ".join(render_value(key, v) for v in value) or "-"
    return str(value)
