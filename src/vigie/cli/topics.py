"""``vigie topics create``: every topic of the catalogue, idempotently."""

from __future__ import annotations

import typer

from vigie.cli import output
from vigie.errors import StackError
from vigie.settings import get_settings

app = typer.Typer(help="Kafka topics of the catalogue.", no_args_is_help=True)


@app.command()
def create(as_json: bool = typer.Option(False, "--json", help=output.JSON_OPTION_HELP)) -> None:
    """Create the catalogue's topics (existing ones are kept, and grown if needed)."""
    from vigie.ingest.topics import ensure_topics

    try:
        report = ensure_topics(get_settings())
    except StackError as exc:
        raise output.CommandError(str(exc)) from exc
    output.emit(report, as_json=as_json, title="topics")
