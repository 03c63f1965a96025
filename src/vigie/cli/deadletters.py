"""``vigie dlq tail``: the last dead letters, with their reason, errors and original bytes."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import typer
from rich.markup import escape
from rich.table import Table

from vigie.cli import output, runs, services, sinkopts, style
from vigie.errors import ConfigurationError

if TYPE_CHECKING:
    from vigie.ingest.deadletters import LetterTail, TailEntry

app = typer.Typer(help="The dead-letter topic: records that were rejected.", no_args_is_help=True)

ORIGINAL_WIDTH = 120


@app.command()
def tail(
    limit: int = style.limit_option(20, "this many of the latest dead letters"),
    follow: bool = style.FOLLOW,
    idle_seconds: float | None = style.idle_option("without a new dead letter (with --follow)"),
    run: str | None = style.RUN,
    as_json: bool = typer.Option(
        False, "--json", help="One JSON object on stdout; with --follow, one JSON line per letter."
    ),
) -> None:
    """List the latest dead letters: why each record was rejected, and the record itself."""
    from vigie.ingest.deadletters import LetterTail

    settings = runs.settings_for(run)
    services.require_kafka(settings)
    topic = settings.topic("declarations.dlq")
    try:
        with LetterTail(settings) as letters:
            entries = letters.latest(limit)
            if as_json and not (follow or idle_seconds is not None):
                dead = [entry.as_dict() for entry in entries]
                output.print_json({"topic": topic, "count": len(dead), "dead_letters": dead})
                return
            if not entries and not as_json:
                output.console.print(f"no dead letter in {topic}")
            _show(entries, as_json, f"last {len(entries)} dead letters in {topic}")
            if follow or idle_seconds is not None:
                _follow(letters, idle_seconds, as_json)
    except ConfigurationError as exc:
        raise output.CommandError(str(exc)) from exc


def _follow(letters: LetterTail, idle_seconds: float | None, as_json: bool) -> None:
    stop = sinkopts.stop_on_signals()
    last = time.monotonic()
    while not stop.is_set():
        if idle_seconds is not None and time.monotonic() - last >= idle_seconds:
            return
        entries = letters.new(timeout=0.5)
        if entries:
            last = time.monotonic()
            _show(entries, as_json, "")


def _show(entries: list[TailEntry], as_json: bool, title: str) -> None:
    if as_json:
        for entry in entries:
            output.print_json(entry.as_dict())
        return
    if not entries:
        return
    table = Table(title=title or None, show_lines=True, title_justify="left")
    table.add_column("where", overflow="fold", max_width=28)
    table.add_column("reason", overflow="fold")
    table.add_column("errors", overflow="fold", ratio=2)
    table.add_column("original", overflow="fold", ratio=2)
    for entry in entries:
        table.add_row(*(escape(cell) for cell in letter_cells(entry)))
    output.make_console().print(table)


def letter_cells(entry: TailEntry) -> tuple[str, str, str, str]:
    """A dead letter's row for people: where and when, reason, errors, original bytes."""
    from vigie.ingest.deadletters import describe_errors

    letter = entry.letter
    original = letter.value
    if len(original) > ORIGINAL_WIDTH:
        original = original[:ORIGINAL_WIDTH] + f"... ({len(original)} chars)"
    where = "\n".join(
        [
            f"offset {entry.partition}:{entry.offset}",
            letter.received_at.strftime("%Y-%m-%d %H:%M:%S UTC"),
            entry.source or letter.source_topic,
        ]
    )
    encoded = original if letter.value_encoding == "utf-8" else f"base64:{original}"
    return where, letter.reason, describe_errors(letter.errors), encoded
