"""Creating the catalogue's topics on a Kafka cluster, idempotently.

Each topic of :data:`vigie.contracts.CATALOGUE` is created with its partitions (the
configured ``topic_partitions`` when the catalogue says None) and configuration. An
existing topic is reported as such; it gains partitions if it has fewer than wanted and
its configuration is brought in line with the catalogue (never shrunk, never deleted).

>>> from vigie.settings import Settings
>>> from vigie.contracts import MODEL_STATE, DEAD_LETTERS
>>> wanted_partitions(MODEL_STATE, Settings(topic_partitions=6))
6
>>> wanted_partitions(DEAD_LETTERS, Settings())
1
"""

from __future__ import annotations

import logging
import time
from typing import Any

from confluent_kafka import KafkaError, KafkaException

# confluent-kafka re-exports these without __all__, which strict mypy does not accept.
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewPartitions,
    NewTopic,
    ResourceType,
)

from vigie.contracts import CATALOGUE, Topic
from vigie.errors import StackError
from vigie.kafka import admin_config
from vigie.settings import Settings

log = logging.getLogger(__name__)

TIMEOUT_S = 30.0


def admin_client(settings: Settings) -> AdminClient:
    """An admin client for the configured cluster (librdkafka's logging routed, once)."""
    return AdminClient(admin_config(settings))


def wanted_partitions(topic: Topic, settings: Settings) -> int:
    """The number of partitions a catalogue topic should have."""
    return topic.partitions if topic.partitions is not None else settings.topic_partitions


def current_partitions(admin: AdminClient, name: str) -> int | None:
    """The topic's partition count, or None if it does not exist."""
    metadata = admin.list_topics(topic=name, timeout=TIMEOUT_S)
    found = metadata.topics.get(name)
    if found is None or found.error is not None:
        return None
    return len(found.partitions)


def create_topic(
    admin: AdminClient, name: str, partitions: int, config: dict[str, str] | None = None
) -> str:
    """Create a topic, or grow an existing one; return ``created``, ``exists`` or ``extended``.

    The replication factor is the cluster's default (one on the local broker).
    """
    new = NewTopic(name, num_partitions=partitions, replication_factor=-1, config=config or {})
    future = admin.create_topics([new], operation_timeout=TIMEOUT_S, request_timeout=TIMEOUT_S)
    try:
        future[name].result()
        _wait_visible(admin, name, partitions)
        return "created"
    except KafkaException as exc:
        if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
            raise StackError(f"creating topic {name!r} failed: {exc}") from exc
    have = current_partitions(admin, name) or 0
    outcome = "exists"
    if have < partitions:
        grown = admin.create_partitions(
            [NewPartitions(name, partitions)], request_timeout=TIMEOUT_S
        )
        grown[name].result()
        _wait_visible(admin, name, partitions)
        outcome = "extended"
    if config:
        _align_config(admin, name, config)
    return outcome


def _wait_visible(admin: AdminClient, name: str, partitions: int) -> None:
    """Wait until the topic's new partitions show in the metadata of the broker we ask."""
    deadline = time.monotonic() + TIMEOUT_S
    while (current_partitions(admin, name) or 0) < partitions:
        if time.monotonic() > deadline:
            raise StackError(
                f"topic {name!r}: {partitions} partitions not visible after {TIMEOUT_S} s"
            )
        time.sleep(0.1)


def _differences(admin: AdminClient, name: str, config: dict[str, str]) -> dict[str, str]:
    effective = topic_config(admin, name)
    return {k: v for k, v in config.items() if effective.get(k) != v}


def _align_config(admin: AdminClient, name: str, config: dict[str, str]) -> None:
    """Set the configuration entries that differ, and wait until the broker shows them."""
    changes = _differences(admin, name, config)
    if not changes:
        return
    log.info("topic %s: aligning config %s", name, sorted(changes))
    entries = [
        ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET) for k, v in changes.items()
    ]
    target = ConfigResource(ResourceType.TOPIC, name, incremental_configs=entries)
    admin.incremental_alter_configs([target], request_timeout=TIMEOUT_S)[target].result()
    deadline = time.monotonic() + TIMEOUT_S
    while _differences(admin, name, changes):
        if time.monotonic() > deadline:
            raise StackError(f"topic {name!r}: config {changes} not applied after {TIMEOUT_S} s")
        time.sleep(0.1)


def topic_config(admin: AdminClient, name: str) -> dict[str, str]:
    """The topic's effective configuration, as strings."""
    resource = ConfigResource(ResourceType.TOPIC, name)
    described = admin.describe_configs([resource], request_timeout=TIMEOUT_S)[resource].result()
    return {k: str(v.value) for k, v in described.items()}


def ensure_topics(settings: Settings) -> dict[str, Any]:
    """Create every catalogue topic that is missing; report each topic's status.

    Topic names carry the settings' ``topic_prefix`` (see :meth:`Settings.topic`).
    """
    admin = admin_client(settings)
    report: dict[str, Any] = {}
    for topic in CATALOGUE:
        name = settings.topic(topic.name)
        partitions = wanted_partitions(topic, settings)
        outcome = create_topic(admin, name, partitions, dict(topic.config))
        report[name] = {
            "status": outcome,
            "partitions": current_partitions(admin, name),
            "config": dict(topic.config),
        }
    return {"bootstrap": settings.bootstrap_servers, "topics": report}


def delete_topics(admin: AdminClient, *, prefix: str) -> list[str]:
    """Delete every topic whose name starts with ``prefix`` (a test's or an environment's).

    Returns the deleted names. An empty prefix is refused: it would mean every topic.
    """
    if not prefix:
        raise ValueError("refusing to delete topics with an empty prefix")
    names = [t for t in admin.list_topics(timeout=TIMEOUT_S).topics if t.startswith(prefix)]
    if names:
        futures = admin.delete_topics(names, operation_timeout=TIMEOUT_S)
        for future in futures.values():
            future.result()
    return sorted(names)
