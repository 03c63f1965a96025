"""``vigie warehouse check``: is the ClickHouse warehouse (chDB or a server) reachable."""

from __future__ import annotations

import typer

from vigie.cli import output
from vigie.settings import get_settings

app = typer.Typer(help="The ClickHouse warehouse.", no_args_is_help=True)


@app.command()
def check(as_json: bool = typer.Option(False, "--json", help=output.JSON_OPTION_HELP)) -> None:
    """Connect to the warehouse and print the ClickHouse engine version."""
    from vigie.sinks.clickhouse_client import server_version

    settings = get_settings()
    engine = "chdb" if settings.clickhouse_dsn.startswith("chdb:") else "server"
    try:
        version = server_version(settings)
    except Exception as exc:  # any driver error: report it, no traceback
        raise output.CommandError(f"ClickHouse at {settings.clickhouse_dsn}: {exc}") from exc
    output.emit(
        {"dsn": settings.clickhouse_dsn, "engine": engine, "version": version},
        as_json=as_json,
        title="warehouse",
    )
