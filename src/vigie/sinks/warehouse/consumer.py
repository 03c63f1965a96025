"""The warehouse writer: Vigie's topics into their ClickHouse tables, through the one pump.

It reads ``declarations``, ``scores``, ``alerts``, ``control-results`` and
``declarations.dlq`` (physical names through ``settings.topic``), each into its table's
:class:`~vigie.sinks.warehouse.writer.TableWriter`, and at each checkpoint flushes every
table, then commits the offsets. A crash between insert and commit replays the batch; the
writer inserts only the records a table lacks (docs/warehouse.md), so each record is
stored once. A failing ClickHouse (full disk, restart) is waited out, with backoff.

A message that does not decode becomes a row of ``dead_letters`` with its original bytes
and the reason: the writer is where the dead-letter topic is stored, so its own dead
letters go straight to that table (the same ``letter_id`` as if they came by the topic).

>>> [Settings(topic_prefix="t-1.").topic(topic.name) for topic, _ in SOURCES][-1]
't-1.declarations.dlq'
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from vigie.contracts.catalogue import ALERTS, CONTROL_RESULTS, DEAD_LETTERS, DECLARATIONS, SCORES
from vigie.contracts.catalogue import Topic as CatalogueTopic
from vigie.errors import SinkError, VigieError
from vigie.kafka import ClientEvents, consumer_config
from vigie.settings import Settings, redacted
from vigie.sinks.clickhouse_client import connect
from vigie.sinks.pump import OUTPUT_MAX_BYTES, Pump, Route
from vigie.sinks.retry import Backoff, SinkHealth, persist
from vigie.sinks.warehouse.migrations import migrate
from vigie.sinks.warehouse.rows import TABLES
from vigie.sinks.warehouse.writer import TableWriter

SOURCES: tuple[tuple[CatalogueTopic, str], ...] = (
    (DECLARATIONS, "declarations"),
    (SCORES, "scores"),
    (ALERTS, "alerts"),
    (CONTROL_RESULTS, "control_results"),
    (DEAD_LETTERS, "dead_letters"),
)
"""Each topic the writer reads, and the table its records go to."""


class WarehouseConsumer(Pump):
    """Consumes Vigie's topics into the warehouse tables, committing after each insert.

    Parameters
    ----------
    settings
        Topic names and the Kafka bootstrap come from here.
    client
        A clickhouse-connect client on a migrated warehouse.
    group_id
        Consumer group; every writer of one warehouse shares it.
    max_records
        A table batch this large triggers a checkpoint (and at most this many per poll).
    max_age_s
        A batch this old (seconds) triggers a checkpoint.
    poll_s
        How long one poll waits for messages.
    overrides
        Extra consumer configuration (``session.timeout.ms``, ...).
    backoff
        Delays between attempts while ClickHouse fails.
    """

    def __init__(
        self,
        settings: Settings,
        client: Any,
        group_id: str = "vigie-warehouse",
        max_records: int = 5000,
        max_age_s: float = 2.0,
        poll_s: float = 0.5,
        overrides: dict[str, Any] | None = None,
        backoff: Backoff | None = None,
    ) -> None:
        self.settings = settings
        self.writers = {
            name: TableWriter(client, table, max_records=max_records, max_age_s=max_age_s)
            for name, table in TABLES.items()
        }
        routes = {
            settings.topic(topic.name): Route(
                schema=topic.schema or BaseModel,
                sink=self.writers[table],
                max_bytes=settings.max_message_bytes if topic is DECLARATIONS else OUTPUT_MAX_BYTES,
            )
            for topic, table in SOURCES
        }
        events = ClientEvents("vigie-warehouse")
        config = consumer_config(
            settings, group_id, client_id="vigie-warehouse", events=events, overrides=overrides
        )
        super().__init__(
            config,
            routes,
            self.writers["dead_letters"],
            events,
            name="warehouse",
            batch_size=max_records,
            poll_s=poll_s,
            backoff=backoff,
        )


def open_warehouse(
    settings: Settings,
    health: SinkHealth,
    wait: Callable[[float], bool],
    backoff: Backoff | None = None,
) -> Any | None:
    """A client on the migrated warehouse, waiting with backoff for a ClickHouse that does
    not answer yet (a server restarting, a chDB directory another process holds).

    Returns None when ``wait`` says to stop first. A migration that cannot work
    (:class:`~vigie.errors.ConfigurationError`) is raised at once: waiting will not help.
    """

    def attempt() -> Any:
        try:
            client = connect(settings)
        except Exception as exc:  # any driver error: chDB or HTTP
            raise SinkError(
                f"ClickHouse at {redacted(settings.clickhouse_dsn)}: {exc}{_hint(settings)}"
            ) from exc
        try:
            migrate(client)
        except VigieError:
            client.close()
            raise
        except Exception as exc:
            client.close()
            raise SinkError(f"migrating the warehouse failed: {exc}") from exc
        return client

    return persist(attempt, health, wait, backoff)


def _hint(settings: Settings) -> str:
    if not settings.clickhouse_dsn.startswith("chdb:"):
        return ""
    return (
        "; embedded chDB admits one process per directory: is another vigie process"
        " (warehouse write?) using it? Share a ClickHouse server via VIGIE_CLICKHOUSE_URL"
    )
