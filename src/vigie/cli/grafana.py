"""``vigie grafana push``: publish the datasources and Vigie's dashboards.

The ClickHouse dashboards are built from :mod:`vigie.indicators` (or read from
``--dashboards``); ``--prometheus-url`` adds the Prometheus datasource and the
operations dashboard."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from vigie.cli import output, style
from vigie.settings import get_settings

app = typer.Typer(help="Grafana dashboards for managers.", no_args_is_help=True)


@app.command()
def push(
    url: str = typer.Option(
        ..., "--url", metavar="URL", help="Grafana base URL, e.g. http://localhost:3000"
    ),
    token: str | None = typer.Option(
        None,
        "--token",
        metavar="TOKEN",
        help="Service-account token (or put user:password in the URL).",
    ),
    clickhouse_url: str | None = typer.Option(
        None,
        "--clickhouse-url",
        metavar="URL",
        help="ClickHouse URL as Grafana reaches it (default: VIGIE_CLICKHOUSE_URL).",
    ),
    dashboards: Annotated[
        Path | None,
        typer.Option(
            "--dashboards",
            metavar="FOLDER",
            help="Dashboard JSON folder (default: built from vigie.indicators, the same SQL).",
        ),
    ] = None,
    prometheus_url: str | None = typer.Option(
        None,
        "--prometheus-url",
        metavar="URL",
        help="Prometheus URL as Grafana reaches it: adds the operations dashboard.",
    ),
    as_json: bool = style.JSON,
) -> None:
    """Create or update the datasource, the Vigie folder and every dashboard."""
    from grafana_client.api import GrafanaApi

    from vigie.errors import ConfigurationError, SinkError
    from vigie.indicators import grafana as boards
    from vigie.sinks.grafana import (
        datasource,
        load_dashboards,
        prometheus_datasource,
        push_dashboards,
    )

    target = clickhouse_url or get_settings().clickhouse_url
    if not target:
        raise output.CommandError(
            "Grafana needs a ClickHouse server: pass --clickhouse-url or set VIGIE_CLICKHOUSE_URL"
        )
    try:
        chosen = load_dashboards(dashboards) if dashboards else boards.dashboards()
        api = GrafanaApi.from_url(url, credential=token)
        report = push_dashboards(api, chosen, datasource(target))
        if prometheus_url:
            operations = [boards.operations_dashboard()]
            extra = push_dashboards(api, operations, prometheus_datasource(prometheus_url))
            report.dashboards.extend(extra.dashboards)
    except (ConfigurationError, SinkError) as exc:
        raise output.CommandError(str(exc)) from exc
    output.emit(report.as_dict(), as_json=as_json, title=f"grafana {url}")
