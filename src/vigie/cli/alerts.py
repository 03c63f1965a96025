"""``vigie alerts``: the Redis alert feed (publisher from Kafka, consumer-group tail)."""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import time
from typing import Any

import orjson
import typer

from vigie.cli import output, sinkopts
from vigie.settings import get_settings

app = typer.Typer(help="The live alert feed in Redis.", no_args_is_help=True)


@app.command()
def publish(
    group: str = typer.Option("vigie-alerts-redis", help="Kafka consumer group."),
    until_idle: float | None = typer.Option(
        None, help="Exit after this many seconds without alerts (default: run until Ctrl-C)."
    ),
    count: int | None = typer.Option(None, min=1, help="Exit after this many records."),
    http_port: int | None = sinkopts.HTTP_PORT,
    http_host: str = sinkopts.HTTP_HOST,
    as_json: bool = typer.Option(False, "--json", help=output.JSON_OPTION_HELP),
) -> None:
    """Copy the alerts topic into the Redis stream, one entry per alert id.

    A Redis outage is waited out (the offsets stay put meanwhile); an alert that does not
    decode goes to the dead-letter topic.
    """
    from vigie.sinks.redis_alerts import publish as run_publisher
    from vigie.sinks.web import Endpoints

    stop = sinkopts.stop_on_signals()
    web = Endpoints(http_host, http_port)
    try:
        stats = run_publisher(
            get_settings(),
            group_id=group,
            idle_exit_s=until_idle,
            max_records=count,
            should_stop=stop.is_set,
            on_start=web.serve_pump,
        )
    finally:
        web.stop()
    output.emit(stats.as_dict(), as_json=as_json, title="alerts published to Redis")


@app.command()
def republish(
    since: str = typer.Option(
        ..., "--since", help="From this time: ISO 8601 (UTC if no offset) or a duration ago (2h)."
    ),
    as_json: bool = typer.Option(False, "--json", help=output.JSON_OPTION_HELP),
) -> None:
    """Rebuild the Redis feed from the alerts topic, from the offsets of that time.

    Writes through the same idempotent script as the publisher: alerts already in the feed
    are left alone, so running it twice adds nothing. No consumer group offset moves.
    """
    from vigie.cli.timespec import since as parse_since
    from vigie.errors import ConfigurationError
    from vigie.sinks.redis_alerts import republish as run_republish

    try:
        start = parse_since(since)
    except ConfigurationError as exc:
        raise output.CommandError(str(exc)) from exc
    stop = sinkopts.stop_on_signals()
    stats = run_republish(get_settings(), start, should_stop=stop.is_set)
    result = {"since": start.isoformat(), **stats.as_dict()}
    output.emit(result, as_json=as_json, title="alerts republished to Redis")


@app.command()
def tail(
    group: str = typer.Option("vigie-tail", help="Redis consumer group."),
    consumer: str = typer.Option(
        f"{socket.gethostname()}-{os.getpid()}", help="Consumer name within the group."
    ),
    count: int | None = typer.Option(None, min=1, help="Stop after this many alerts."),
    start: str = typer.Option("0", help="Where a new group starts: 0 (all) or $ (new only)."),
    claim_idle_ms: int = typer.Option(
        60_000, help="Take over alerts left unacknowledged this long by another consumer."
    ),
    timeout: float | None = typer.Option(
        None, help="Stop after this many seconds without a new alert."
    ),
    as_json: bool = typer.Option(
        False, "--json", help="JSON: one object with --count, else one JSON line per alert."
    ),
) -> None:
    """Read alerts as the targeting service does: XREADGROUP, XACK, XAUTOCLAIM.

    Survives a Redis restart: it reconnects with backoff and says so in one line when
    Redis goes away and one when it is back (on stderr).
    """
    from vigie.sinks.alert_feed import OUTAGES, AlertFeed, follow
    from vigie.sinks.redis_alerts import AlertKeys, redis_client

    settings = get_settings()
    feed = AlertFeed(
        redis_client(settings),
        AlertKeys(settings.redis_prefix),
        group,
        consumer,
        start_id=start,
        claim_idle_ms=claim_idle_ms,
    )
    stop = sinkopts.stop_on_signals()
    one_object = as_json and count is not None
    rows: list[dict[str, Any]] = []
    shown = 0
    last = time.monotonic()

    def done() -> bool:
        idle = timeout is not None and time.monotonic() - last >= timeout
        return stop.is_set() or idle or (count is not None and shown >= count)

    def want() -> int:
        return 100 if count is None else min(100, count - shown)

    for entries in follow(feed, want=want, block_ms=500, should_stop=done, say=_say):
        for entry in entries:
            row = _row(entry.entry_id, entry.alert.model_dump(mode="json"), entry.claimed)
            if one_object:
                rows.append(row)
            else:
                _print(row, as_json=as_json)
        shown += len(entries)
        if entries:
            last = time.monotonic()
    with contextlib.suppress(*OUTAGES):
        feed.leave()
    if one_object:
        output.emit({"count": len(rows), "alerts": rows}, as_json=True)


def _say(line: str) -> None:
    from rich.markup import escape  # an error text like "[Errno 104] ..." is not markup

    output.console.print(f"[yellow]{time.strftime('%H:%M:%S')} {escape(line)}[/yellow]")


def _row(entry_id: str, alert: dict[str, Any], claimed: bool) -> dict[str, Any]:
    score = alert["score"]
    return {
        "entry_id": entry_id,
        "alert_id": alert["alert_id"],
        "declaration_id": score["declaration_id"],
        "importer": score["importer"],
        "risk": score["risk"],
        "reasons": [r["code"] for r in score.get("reasons", [])],
        "claimed": claimed,
        "alert": alert,
    }


def _print(row: dict[str, Any], *, as_json: bool) -> None:
    if as_json:
        sys.stdout.buffer.write(orjson.dumps(row) + b"\n")
        sys.stdout.flush()
        return
    tag = " [yellow](reclaimed)[/yellow]" if row["claimed"] else ""
    output.console.print(
        f"[dim]{row['alert']['raised_at']}[/dim] [bold]{row['alert_id']}[/bold] "
        f"importer={row['importer']} risk=[red]{row['risk']:.3f}[/red] "
        f"{','.join(row['reasons'])}{tag}"
    )
