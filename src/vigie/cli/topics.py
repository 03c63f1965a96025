"""``vigie topics create``: every topic of the catalogue, idempotently."""

from __future__ import annotations

import typer

from vigie.cli import output, runs, services, style
from vigie.errors import StackError

app = typer.Typer(help="Kafka topics of the catalogue.", no_args_is_help=True)


@app.command()
def create(as_json: bool = style.JSON) -> None:
    """Create the catalogue's topics (existing ones are kept, and grown if needed)."""
    from vigie.ingest.topics import ensure_topics

    settings = runs.settings_for(None)
    services.require_kafka(settings)
    try:
        report = ensure_topics(settings)
    except StackError as exc:
        raise output.CommandError(str(exc)) from exc
    output.emit(report, as_json=as_json, title="topics")
