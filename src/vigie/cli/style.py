"""The command line's vocabulary: option help without Python types, and shared options.

Typer names an option's value after its Python type (``<bool>``, ``<list[Path]>``,
``<%Y-%m-%d>``); :func:`plain_help` gives every parameter that has no metavar of its own
a word a person reads instead (nothing for a flag). The options that several commands
share are defined once here, with the same names and short options everywhere:

==================  =====  =========================================================
``--limit``         ``-n``  at most this many records (shown, read or handled)
``--follow``        ``-f``  keep waiting for new records (Ctrl-C stops)
``--idle-seconds``          stop after this many seconds without a new record
``--run``                   a demo run's namespace: its id, or latest
``--mapping``       ``-m``  the column mapping of foreign files
``--json``                  one JSON object on stdout (one line per record when following)
``--declarations``          how many declarations a generated stream has
``--help``          ``-h``
==================  =====  =========================================================
"""

from __future__ import annotations

import inspect
from datetime import datetime
from pathlib import Path
from typing import Any

import typer
from typer.core import TyperArgument

from vigie.cli import output

HELP_NAMES = ["-h", "--help"]
HELP_OPTIONS: dict[str, Any] = {"help_option_names": HELP_NAMES}
"""Context settings of the root command: every subcommand inherits ``-h``."""

_WORDS: dict[type, str] = {int: "N", float: "NUMBER", str: "TEXT", Path: "PATH", datetime: "TIME"}


def plain_help(command: Any) -> None:
    """Give every parameter of ``command`` and its subcommands a plain metavar."""
    context = typer.Context(command, info_name=command.name, help_option_names=HELP_NAMES)
    command.help = reflow(command.help)
    for param in command.get_params(context):
        if isinstance(param, TyperArgument):
            param.__class__ = _PlainArgument
            name = param.metavar or (param.name or "value").upper()
            many = param.nargs != 1 and not name.endswith("...")
            param.metavar = name + ("..." if many else "")
        elif param.metavar is None:
            param.metavar = _word(param)
    for sub in getattr(command, "commands", {}).values():
        plain_help(sub)


def reflow(text: str | None) -> str | None:
    """A docstring's paragraphs each on one line, so that help wraps to the terminal.

    >>> reflow("Title.\\n\\n    First line\\n    and second.\\n")
    'Title.\\n\\nFirst line and second.'
    """
    if text is None:
        return None
    paragraphs = inspect.cleandoc(text).split("\n\n")
    return "\n\n".join(" ".join(line.strip() for line in p.splitlines()) for p in paragraphs)


class _PlainArgument(TyperArgument):
    """An argument shown by its name alone (``FILE...``), without a type beside it."""

    def display_type_rich(self, ctx: Any) -> str | None:
        return None

    def _usage_display_name(self) -> str:
        return self.display_name_raw if self.required else f"[{self.display_name_raw}]"


def _word(param: Any) -> str:
    if getattr(param, "is_flag", False) or getattr(param, "count", False):
        return ""
    annotation = getattr(getattr(param, "type_descriptor", None), "annotation", None)
    for kind, word in _WORDS.items():
        if annotation is kind or (isinstance(annotation, type) and issubclass(annotation, kind)):
            return word
    return "VALUE"


def limit_option(default: int | None, what: str) -> Any:
    """``-n/--limit N``: at most this many records."""
    return typer.Option(default, "--limit", "-n", min=1, metavar="N", help=f"At most {what}.")


def declarations_option(default: int) -> Any:
    """``--declarations N``: how many declarations a generated stream has."""
    return typer.Option(
        default, "--declarations", min=1, metavar="N", help="Declarations to generate."
    )


FOLLOW = typer.Option(
    False, "--follow", "-f", help="Keep waiting for new records after the last (Ctrl-C stops)."
)


def idle_option(what: str) -> Any:
    """``--idle-seconds S``: stop after S seconds without a new record."""
    return typer.Option(
        None, "--idle-seconds", min=0.0, metavar="SECONDS", help=f"Stop after this long {what}."
    )


RUN = typer.Option(
    None,
    "--run",
    metavar="ID",
    help="A demo run: its id (vigie demo prints it) or latest. Default: the settings.",
)

JSON = typer.Option(False, "--json", help=output.JSON_OPTION_HELP)

MAPPING = typer.Option(
    None,
    "--mapping",
    "-m",
    metavar="MAPPING",
    help="Column mapping of foreign files: a shipped name (customs-kr) or a TOML file.",
)
