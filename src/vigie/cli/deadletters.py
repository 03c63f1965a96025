"""``vigie dlq tail``: the last dead letters, with their reason, errors and original bytes."""

from __future__ import annotations

import typer
from rich.table import Table

from vigie.cli import output
from vigie.errors import ConfigurationError, StackError
from vigie.settings import get_settings

app = typer.Typer(help="The dead-letter topic: records that were rejected.", no_args_is_help=True)

ORIGINAL_WIDTH = 120


@app.command()
def tail(
    n: int = typer.Option(20, "--n", "-n", min=1, help="How many of the latest dead letters."),
    as_json: bool = typer.Option(False, "--json", help=output.JSON_OPTION_HELP),
) -> None:
    """List the latest dead letters: why each record was rejected, and the record itself."""
    from confluent_kafka import KafkaException

    from vigie.ingest.deadletters import describe_errors
    from vigie.ingest.deadletters import tail as read_tail

    settings = get_settings()
    try:
        entries = read_tail(settings, n)
    except (ConfigurationError, StackError, KafkaException) as exc:
        raise output.CommandError(str(exc)) from exc
    if as_json:
        result = {
            "topic": settings.topic("declarations.dlq"),
            "count": len(entries),
            "dead_letters": [entry.as_dict() for entry in entries],
        }
        output.emit(result, as_json=True)
        return
    table = Table(title=f"last {len(entries)} dead letters", show_lines=True)
    table.add_column("where", overflow="fold", max_width=28)
    table.add_column("reason")
    table.add_column("errors", overflow="fold", ratio=2)
    table.add_column("original", overflow="fold", ratio=2)
    for entry in entries:
        letter = entry.letter
        original = letter.value
        if len(original) > ORIGINAL_WIDTH:
            original = original[:ORIGINAL_WIDTH] + f"... ({len(original)} chars)"
        where = "\n".join(
            [
                f"offset {entry.partition}:{entry.offset}",
                letter.received_at.strftime("%Y-%m-%d %H:%M:%S"),
                entry.source or letter.source_topic,
            ]
        )
        encoded = original if letter.value_encoding == "utf-8" else f"base64:{original}"
        table.add_row(where, letter.reason, describe_errors(letter.errors), encoded)
    output.console.print(table)
