"""``vigie alerts``: the Redis alert feed (publisher from Kafka, tail for people and groups)."""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import time
from typing import TYPE_CHECKING, Any

import orjson
import typer

from vigie.cli import output, runs, services, sinkopts, style

if TYPE_CHECKING:
    from vigie.sinks.alert_feed import AlertFeed, FeedEntry, StreamView

app = typer.Typer(help="The live alert feed in Redis.", no_args_is_help=True)

LATEST = 10
"""Alerts a plain tail shows."""


@app.command()
def publish(
    group: str = typer.Option("vigie-alerts-redis", "--group", help="Kafka consumer group."),
    idle_seconds: float | None = style.idle_option("without an alert (default: until Ctrl-C)"),
    limit: int | None = style.limit_option(None, "this many records, then stop"),
    http_port: int | None = sinkopts.HTTP_PORT,
    http_host: str = sinkopts.HTTP_HOST,
    as_json: bool = style.JSON,
) -> None:
    """Copy the alerts topic into the Redis stream, one entry per alert id.

    A Redis outage is waited out (the offsets stay put meanwhile); an alert that does not
    decode goes to the dead-letter topic.
    """
    from vigie.sinks.redis_alerts import publish as run_publisher
    from vigie.sinks.web import Endpoints

    settings = runs.settings_for(None)
    stop = sinkopts.stop_on_signals()
    web = Endpoints(http_host, http_port)
    try:
        stats = run_publisher(
            settings,
            group_id=group,
            idle_exit_s=idle_seconds,
            max_records=limit,
            should_stop=stop.is_set,
            on_start=web.serve_pump,
        )
    finally:
        web.stop()
    output.emit(stats.as_dict(), as_json=as_json, title="alerts published to Redis")


@app.command()
def republish(
    since: str = typer.Option(
        ...,
        "--since",
        metavar="TIME",
        help="From this time: ISO 8601 (UTC if no offset) or a duration ago (2h).",
    ),
    run: str | None = style.RUN,
    as_json: bool = style.JSON,
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
    settings = runs.settings_for(run)
    services.require_kafka(settings)
    services.require_redis(settings).close()
    stop = sinkopts.stop_on_signals()
    stats = run_republish(settings, start, should_stop=stop.is_set)
    result = {"since": start.isoformat(), **stats.as_dict()}
    output.emit(result, as_json=as_json, title="alerts republished to Redis")


@app.command()
def tail(
    limit: int | None = style.limit_option(
        None,
        f"this many alerts: the latest ones ({LATEST} by default); "
        "with --group, the next ones for the group (default: all waiting)",
    ),
    follow: bool = style.FOLLOW,
    idle_seconds: float | None = style.idle_option("without a new alert (with --follow)"),
    group: str | None = typer.Option(
        None,
        "--group",
        help="Read as the targeting service does: a Redis consumer group, each alert once, "
        "acknowledged.",
    ),
    consumer: str = typer.Option(
        f"{socket.gethostname()}-{os.getpid()}",
        "--consumer",
        show_default=False,
        help="Consumer name within the group (default: host and process id).",
    ),
    start: str = typer.Option(
        "0", "--start", help="Where a new group starts: 0 (the whole stream) or $ (new only)."
    ),
    claim_idle_seconds: float = typer.Option(
        60.0,
        "--claim-idle-seconds",
        min=0.0,
        metavar="SECONDS",
        help="With --group: take over alerts another consumer left unacknowledged this long.",
    ),
    run: str | None = style.RUN,
    as_json: bool = typer.Option(
        False,
        "--json",
        help="One JSON object on stdout; with --follow, one JSON line per alert.",
    ),
) -> None:
    """Show the alerts of the Redis feed: the latest ones, or with --follow as they come.

    Random audits are marked as such: they are drawn whatever the risk. With --group the
    alerts are read as the targeting service reads them (XREADGROUP, XACK, XAUTOCLAIM).
    Once started, a Redis restart is waited out, in one line when it goes and one when it
    is back (on stderr).
    """
    from vigie.sinks.alert_feed import OUTAGES, AlertFeed, StreamView
    from vigie.sinks.alert_feed import follow as read
    from vigie.sinks.redis_alerts import AlertKeys

    settings = runs.settings_for(run)
    client = services.require_redis(settings)
    keys = AlertKeys(settings.redis_prefix)
    feed: AlertFeed | StreamView
    if group is None:
        feed = StreamView(client, keys, limit or LATEST)
        limit = None if follow else limit or LATEST
    else:
        feed = AlertFeed(client, keys, group, consumer, start_id=start,
                         claim_idle_ms=int(claim_idle_seconds * 1000))  # fmt: skip
        feed.ensure_group()
    following = follow or idle_seconds is not None
    reader = _Reader(limit, following, idle_seconds, as_json)
    for entries in read(feed, want=reader.want, block_ms=500 if following else None,
                        should_stop=reader.done, say=_say):  # fmt: skip
        reader.show(entries)
    if isinstance(feed, AlertFeed):
        with contextlib.suppress(*OUTAGES):
            feed.leave()
    client.close()
    reader.finish(keys.stream)


class _Reader:
    """What ``tail`` has shown, when it stops, and how it prints (lines or one object)."""

    def __init__(
        self, limit: int | None, following: bool, idle_s: float | None, as_json: bool
    ) -> None:
        self.limit, self.following, self.idle_s, self.as_json = limit, following, idle_s, as_json
        self.stop = sinkopts.stop_on_signals()
        self.rows: list[dict[str, Any]] = []
        self.shown = 0
        self.last = time.monotonic()
        self.drained = False

    def want(self) -> int:
        return 100 if self.limit is None else min(100, self.limit - self.shown)

    def done(self) -> bool:
        idle = self.idle_s is not None and time.monotonic() - self.last >= self.idle_s
        full = self.limit is not None and self.shown >= self.limit
        return self.stop.is_set() or idle or full or (self.drained and not self.following)

    def show(self, entries: list[FeedEntry]) -> None:
        if not entries:
            self.drained = True
            return
        self.last = time.monotonic()
        self.shown += len(entries)
        for entry in entries:
            row = tail_row(entry)
            if self.as_json and not self.following:
                self.rows.append(row)
            elif self.as_json:
                sys.stdout.buffer.write(orjson.dumps(row) + b"\n")
                sys.stdout.flush()
            else:
                output.make_console().print(alert_line(row), highlight=False)

    def finish(self, stream: str) -> None:
        if self.as_json and not self.following:
            output.print_json({"stream": stream, "count": len(self.rows), "alerts": self.rows})
        elif not self.as_json and not self.shown:
            output.console.print(f"no alert in {stream}")


def _say(line: str) -> None:
    from rich.markup import escape  # an error text like "[Errno 104] ..." is not markup

    output.console.print(f"[yellow]{time.strftime('%H:%M:%S')} {escape(line)}[/yellow]")


def tail_row(entry: FeedEntry) -> dict[str, Any]:
    """An alert as ``tail --json`` prints it: its stream entry, and the alert itself."""
    alert = entry.alert.model_dump(mode="json")
    return {
        "entry_id": entry.entry_id,
        "alert_id": alert["alert_id"],
        "kind": alert["kind"],
        "claimed": entry.claimed,
        "alert": alert,
    }


def alert_line(row: dict[str, Any]) -> str:
    """One alert in one line for people: lodging day, declaration, importer, why.

    >>> from vigie.sinks.alert_feed import FeedEntry
    >>> from vigie.sinks.examples import example_alert
    >>> print(alert_line(tail_row(FeedEntry("1-0", example_alert("D-1")))))
    2026-03-02 D-1 importer FR12345678901 62034231 risk 0.930 VAL_LOW
    >>> print(alert_line(tail_row(FeedEntry("2-0", example_alert("D-2", kind="random_audit")))))
    2026-03-02 D-2 importer FR12345678901 62034231 random audit (risk 0.930)
    """
    score = row["alert"]["score"]
    head = (
        f"{score['lodged_at'][:10]} {score['declaration_id']} importer {score['importer']} "
        f"{score['commodity_code']}"
    )
    if row["kind"] == "random_audit":
        why = f"random audit (risk {score['risk']:.3f})"
    else:
        reasons = ",".join(r["code"] for r in score.get("reasons", ())) or "-"
        why = f"risk {score['risk']:.3f} {reasons}"
    reclaimed = " (reclaimed)" if row["claimed"] else ""
    return f"{head} {why}{reclaimed}"
