"""``vigie warehouse check``: is the ClickHouse warehouse (chDB or a server) reachable."""

from __future__ import annotations

import typer

from vigie.cli import output, runs, services, style
from vigie.settings import redacted

app = typer.Typer(help="The ClickHouse warehouse.", no_args_is_help=True)


@app.command()
def check(run: str | None = style.RUN, as_json: bool = style.JSON) -> None:
    """Connect to the warehouse and print the ClickHouse engine version."""
    settings = runs.settings_for(run)
    engine = "chdb" if settings.clickhouse_dsn.startswith("chdb:") else "server"
    with services.open_clickhouse(settings) as client:
        version = str(client.command("SELECT version()"))
    output.emit(
        {"dsn": redacted(settings.clickhouse_dsn), "engine": engine, "version": version},
        as_json=as_json,
        title="warehouse",
    )
