"""``vigie warehouse migrate | write | summary``: the warehouse writer and its figures.

Registered on the ``warehouse`` group of :mod:`vigie.cli.warehouse` by :func:`register`.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import TYPE_CHECKING, Any

import typer

from vigie.cli import output, runs, services, sinkopts, style
from vigie.settings import redacted

if TYPE_CHECKING:
    from vigie.settings import Settings
    from vigie.sinks.warehouse.migrations import MigrationReport


def register(app: typer.Typer) -> None:
    """Add the writer's commands to the ``warehouse`` group."""
    app.command("migrate")(migrate)
    app.command("write")(write)
    app.command("summary")(summary)


@contextmanager
def _warehouse(settings: Settings) -> Iterator[tuple[Any, MigrationReport]]:
    """A migrated warehouse client, closed on exit (chDB: one owner process at a time)."""
    from vigie.errors import ConfigurationError
    from vigie.sinks.warehouse.migrations import migrate as apply_migrations

    with services.open_clickhouse(settings) as client:
        try:
            report = apply_migrations(client)
        except ConfigurationError as exc:
            raise output.CommandError(str(exc)) from exc
        yield client, report


def migrate(run: str | None = style.RUN, as_json: bool = style.JSON) -> None:
    """Create or update the warehouse tables (versioned, idempotent)."""
    settings = runs.settings_for(run)
    with _warehouse(settings) as (_, migrations):
        report = migrations.as_dict()
    report["dsn"] = redacted(settings.clickhouse_dsn)
    output.emit(report, as_json=as_json, title="warehouse migrations")


def write(
    once: bool = typer.Option(
        False, "--once", help="Write and commit one poll (up to --batch-size), then stop."
    ),
    drain: bool = typer.Option(
        False, "--drain", help="Stop once every topic is read to its end and written."
    ),
    idle_seconds: float | None = style.idle_option("without a record (default: until Ctrl-C)"),
    group: str = typer.Option("vigie-warehouse", "--group", help="Kafka consumer group."),
    batch_size: int = typer.Option(
        5000, "--batch-size", min=1, metavar="N", help="Rows per insert."
    ),
    max_age: float = typer.Option(
        2.0, "--max-age", min=0.0, metavar="SECONDS", help="Longest wait before a flush."
    ),
    http_port: int | None = sinkopts.HTTP_PORT,
    http_host: str = sinkopts.HTTP_HOST,
    as_json: bool = style.JSON,
) -> None:
    """Consume Vigie's topics into the warehouse, committing offsets after each insert.

    A failing ClickHouse (a full disk, a restart) is waited out with backoff, for as long
    as it takes; the offsets stay put meanwhile.
    """
    from vigie.sinks.retry import SinkHealth
    from vigie.sinks.stats import SinkStats
    from vigie.sinks.warehouse.consumer import WarehouseConsumer, open_warehouse
    from vigie.sinks.web import Endpoints

    settings = runs.settings_for(None)
    stop = _StopFlag()
    web = Endpoints(http_host, http_port)
    health = SinkHealth("warehouse")
    shown = redacted(settings.clickhouse_dsn)
    with stop.installed():
        web.serve(lambda: {"ready": False, "sink": "warehouse", **health.as_dict()})
        client = open_warehouse(settings, health, stop.sleep)
        if client is None:  # stopped before ClickHouse answered
            web.stop()
            output.emit(SinkStats().as_dict(), as_json=as_json, title="warehouse writer")
            return
        try:
            writer = WarehouseConsumer(
                settings, client, group_id=group, max_records=batch_size, max_age_s=max_age
            )
            web.serve_pump(writer)
            output.console.print(f"writing {', '.join(writer.topics)} to {shown}")
            try:
                stats = writer.run(once=once, until_idle=drain, idle_exit_s=idle_seconds,
                                   should_stop=stop)  # fmt: skip
            finally:
                writer.close()
        finally:
            web.stop()
            client.close()
    output.emit(stats.as_dict(), as_json=as_json, title="warehouse writer")


def summary(run: str | None = style.RUN, as_json: bool = style.JSON) -> None:
    """Declarations, scores, alerts, hit rate of controls, duties and latency percentiles."""
    from vigie.sinks.warehouse.summary import summary as figures

    settings = runs.settings_for(run)
    with _warehouse(settings) as (client, _):
        result = figures(client)
    output.emit(result, as_json=as_json, title=f"warehouse summary: {_where(settings)}")


def _where(settings: Settings) -> str:
    return redacted(settings.clickhouse_dsn).removeprefix("chdb://")


class _StopFlag:
    """Set by SIGINT/SIGTERM, so the writer checkpoints and leaves its group cleanly."""

    def __init__(self) -> None:
        self.stopped = False

    def __call__(self) -> bool:
        return self.stopped

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.stopped = True

    def sleep(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; False if stopped meanwhile."""
        deadline = time.monotonic() + seconds
        while not self.stopped and time.monotonic() < deadline:
            time.sleep(min(0.1, max(0.0, deadline - time.monotonic())))
        return not self.stopped

    @contextmanager
    def installed(self) -> Iterator[None]:
        previous = {
            sig: signal.signal(sig, self._handle) for sig in (signal.SIGINT, signal.SIGTERM)
        }
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
