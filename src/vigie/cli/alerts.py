"""``vigie alerts``: the Redis alert feed (publisher from Kafka, consumer-group tail)."""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading
import time
from typing import Any

import orjson
import typer

from vigie.cli import output
from vigie.settings import get_settings

app = typer.Typer(help="The live alert feed in Redis.", no_args_is_help=True)


@app.command()
def publish(
    group: str = typer.Option("vigie-alerts-redis", help="Kafka consumer group."),
    until_idle: float | None = typer.Option(
        None, help="Exit after this many seconds without alerts (default: run until Ctrl-C)."
    ),
    count: int | None = typer.Option(None, min=1, help="Exit after this many records."),
    as_json: bool = typer.Option(False, "--json", help=output.JSON_OPTION_HELP),
) -> None:
    """Copy the alerts topic into the Redis stream, one entry per alert id."""
    from vigie.sinks.redis_alerts import publish as run_publisher

    stop = _stop_on_signals()
    stats = run_publisher(
        get_settings(),
        group_id=group,
        idle_exit_s=until_idle,
        max_records=count,
        should_stop=stop.is_set,
    )
    output.emit(stats.as_dict(), as_json=as_json, title="alerts published to Redis")


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
    """Read alerts as the targeting service does: XREADGROUP, XACK, XAUTOCLAIM."""
    from vigie.sinks.redis_alerts import AlertFeed, AlertKeys, redis_client

    settings = get_settings()
    feed = AlertFeed(
        redis_client(settings),
        AlertKeys(settings.redis_prefix),
        group,
        consumer,
        start_id=start,
        claim_idle_ms=claim_idle_ms,
    )
    feed.ensure_group()
    stop = _stop_on_signals()
    one_object = as_json and count is not None
    rows: list[dict[str, Any]] = []
    shown = 0
    last = time.monotonic()
    while not stop.is_set() and (count is None or shown < count):
        if timeout is not None and time.monotonic() - last >= timeout:
            break
        want = 100 if count is None else min(100, count - shown)
        entries = feed.next_batch(want, block_ms=500)
        for entry in entries:
            row = _row(entry.entry_id, entry.alert.model_dump(mode="json"), entry.claimed)
            if one_object:
                rows.append(row)
            else:
                _print(row, as_json=as_json)
        feed.ack(entries)
        shown += len(entries)
        if entries:
            last = time.monotonic()
    feed.leave()
    if one_object:
        output.emit({"count": len(rows), "alerts": rows}, as_json=True)


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


def _stop_on_signals() -> threading.Event:
    """An event set by Ctrl-C or SIGTERM, so loops end between batches."""
    stop = threading.Event()

    def handler(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    return stop
