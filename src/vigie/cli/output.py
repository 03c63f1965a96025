"""How commands talk: tables and progress bars for people, one JSON object for machines."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any, NoReturn

import orjson
from rich.console import Console
from rich.table import Table

console = Console(stderr=True)
"""Human output goes to stderr so that stdout carries only results."""

JSON_OPTION_HELP = "Print one JSON object on stdout instead of a table."


class CommandError(Exception):
    """An error to show the user, without a traceback, exiting with status 1."""


def emit(result: Mapping[str, Any], *, as_json: bool, title: str = "") -> None:
    """Print a command's result: one JSON object on stdout, or a table for people."""
    if as_json:
        sys.stdout.buffer.write(
            orjson.dumps(result, option=orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY)
        )
        sys.stdout.buffer.write(b"\n")
        sys.stdout.flush()
        return
    table = Table(title=title or None, show_header=False)
    table.add_column("key", style="bold")
    table.add_column("value")
    for key, value in _flatten(result):
        table.add_row(key, _human(value))
    Console().print(table)


def fail(message: str, code: int = 1) -> NoReturn:
    console.print(f"[red]error:[/red] {message}")
    raise SystemExit(code)


def _flatten(result: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    rows: list[tuple[str, Any]] = []
    for key, value in result.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            rows.extend(_flatten(value, name + "."))
        else:
            rows.append((name, value))
    return rows


def _human(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1e4 else f"{value:,.0f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    if isinstance(value, list | tuple):
        return ", ".join(_human(v) for v in value)
    return str(value)
