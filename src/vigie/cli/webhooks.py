"""``vigie webhooks``: subscribers, the dispatcher, and dead-lettered deliveries."""

from __future__ import annotations

import asyncio
import dataclasses
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from vigie.cli import output, runs, sinkopts, style
from vigie.errors import ConfigurationError

if TYPE_CHECKING:
    from vigie.sinks.web import Endpoints
    from vigie.sinks.webhooks.dispatcher import RetryPolicy
    from vigie.sinks.webhooks.service import DispatchReport
    from vigie.sinks.webhooks.subscribers import Subscriber

app = typer.Typer(help="Signed alert webhooks.", no_args_is_help=True)

FILE_HELP = "Subscribers file (TOML or JSON); default: VIGIE_WEBHOOKS_FILE."
FILE = typer.Option("--file", metavar="FILE", help=FILE_HELP)


@app.command()
def subscribers(
    file: Annotated[Path | None, FILE] = None,
    as_json: bool = style.JSON,
) -> None:
    """List the configured subscribers and their filters (secrets are not shown)."""
    found = _load(file)
    output.emit(
        {"count": len(found), "subscribers": {s.name: s.public() for s in found}},
        as_json=as_json,
        title="webhook subscribers",
    )


@app.command()
def failed(
    limit: int = style.limit_option(1000, "this many, the most recent first"),
    run: str | None = style.RUN,
    as_json: bool = style.JSON,
) -> None:
    """Deliveries dead-lettered after their last attempt, and the outbox's counts."""
    from vigie.sinks.webhooks.dispatcher import outbox_path
    from vigie.sinks.webhooks.outbox import STATUSES, Outbox

    path = outbox_path(runs.settings_for(run))
    if not path.exists():
        counts: dict[str, int] = dict.fromkeys(STATUSES, 0)
        rows: list[dict[str, object]] = []
    else:
        with Outbox(path) as box:
            rows = [d.as_dict() for d in box.failed(limit)]
            counts = box.counts()
    result = {"outbox": str(path), "deliveries": counts, "count": len(rows), "failed": rows}
    if as_json:
        output.print_json(result)
        return
    if rows:
        _failed_table(rows)
    else:
        output.console.print("no failed delivery")
    output.emit({"outbox": str(path), "deliveries": counts}, as_json=False, title="outbox")


@app.command()
def redrive(
    subscriber: str | None = typer.Option(
        None, "--subscriber", metavar="NAME", help="Only this subscriber's."
    ),
    since: str | None = typer.Option(
        None,
        "--since",
        metavar="TIME",
        help="Only deliveries that failed since: ISO 8601 time or duration (2h).",
    ),
    run: str | None = style.RUN,
    as_json: bool = style.JSON,
) -> None:
    """Failed deliveries back to pending, with a fresh retry horizon (idempotent)."""
    import time

    from vigie.cli.timespec import since as parse_since
    from vigie.sinks.webhooks.dispatcher import outbox_path
    from vigie.sinks.webhooks.outbox import Outbox

    try:
        start = parse_since(since) if since is not None else None
    except ConfigurationError as exc:
        raise output.CommandError(str(exc)) from exc
    path = outbox_path(runs.settings_for(run))
    if not path.exists():
        output.emit({"outbox": str(path), "redriven": 0}, as_json=as_json, title="redrive")
        return
    with Outbox(path) as box:
        moved = box.redrive(
            now=time.time(),
            subscriber=subscriber,
            since=start.timestamp() if start is not None else None,
        )
        counts = box.counts()
    output.emit(
        {"outbox": str(path), "redriven": moved, "deliveries": counts},
        as_json=as_json,
        title="redrive",
    )


@app.command()
def dispatch(
    file: Annotated[Path | None, FILE] = None,
    group: str = typer.Option("vigie-webhooks", "--group", help="Kafka consumer group."),
    max_attempts: int | None = typer.Option(
        None,
        "--max-attempts",
        min=1,
        metavar="N",
        help="Attempts before a delivery fails (default: as many as --horizon-hours allows).",
    ),
    horizon_hours: float | None = typer.Option(
        None,
        "--horizon-hours",
        min=0.0,
        metavar="HOURS",
        help="How long a delivery is retried before it fails (default: 72).",
    ),
    base_delay: float = typer.Option(
        1.0, "--base-delay", min=0.0, metavar="SECONDS", help="First retry delay, then doubled."
    ),
    max_delay: float = typer.Option(
        900.0, "--max-delay", min=0.0, metavar="SECONDS", help="Longest retry delay."
    ),
    idle_seconds: float | None = style.idle_option(
        "without an alert, once nothing is pending (default: until Ctrl-C)"
    ),
    http_port: int | None = sinkopts.HTTP_PORT,
    http_host: str = sinkopts.HTTP_HOST,
    as_json: bool = style.JSON,
) -> None:
    """Consume alerts, queue them in the outbox, deliver them signed, retry, dead-letter.

    Delivered rows are pruned after VIGIE_WEBHOOKS_RETENTION_DAYS (7 by default).
    """
    from vigie.sinks.web import Endpoints
    from vigie.sinks.webhooks.dispatcher import RetryPolicy

    policy = RetryPolicy(base_s=base_delay, cap_s=max_delay, max_attempts=max_attempts)
    if horizon_hours is not None:
        policy = dataclasses.replace(policy, horizon_s=horizon_hours * 3600)
    web = Endpoints(http_host, http_port)
    try:
        report = asyncio.run(_dispatch(_load(file), group, policy, idle_seconds, web))
    finally:
        web.stop()
    output.emit(report.as_dict(), as_json=as_json, title="webhooks dispatched")


async def _dispatch(
    found: tuple[Subscriber, ...],
    group: str,
    policy: RetryPolicy,
    until_idle: float | None,
    web: Endpoints,
) -> DispatchReport:
    import aiohttp

    from vigie.sinks.webhooks.dispatcher import AiohttpTransport
    from vigie.sinks.webhooks.health import serve_dispatcher
    from vigie.sinks.webhooks.service import run_dispatcher

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with aiohttp.ClientSession() as session:
        return await run_dispatcher(
            runs.settings_for(None),
            found,
            AiohttpTransport(session),
            group_id=group,
            policy=policy,
            until_idle_s=until_idle,
            stop=stop,
            on_start=lambda pump, dispatcher: serve_dispatcher(web, pump, dispatcher),
        )


def _load(file: Path | None) -> tuple[Subscriber, ...]:
    from vigie.sinks.webhooks.subscribers import load_subscribers

    path = file or runs.settings_for(None).webhooks_file
    if path is None:
        raise output.CommandError("no subscribers file: set VIGIE_WEBHOOKS_FILE or pass --file")
    try:
        return load_subscribers(path)
    except ConfigurationError as exc:
        raise output.CommandError(str(exc)) from exc


def _failed_table(rows: list[dict[str, object]]) -> None:
    from rich.markup import escape
    from rich.table import Table

    columns = ("webhook_id", "subscriber", "alert_id", "attempts", "last_error")
    table = Table(title="failed deliveries", title_justify="left")
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*(escape(str(row[c])) for c in columns))
    output.make_console().print(table)
