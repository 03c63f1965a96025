"""Kafka, Redis and ClickHouse as a command meets them: answering, or one line saying not.

Every command that needs a service checks it first (:func:`require_kafka`,
:func:`require_redis`, :func:`open_clickhouse`), so that a service that is down costs one
line naming the service, its address and the next step, and no traceback nor driver
noise:

>>> from vigie.settings import Settings
>>> print(kafka_down(Settings(kafka_bootstrap="k1:9092")))
Kafka at k1:9092 does not answer: start it (vigie stack up) or set VIGIE_KAFKA_BOOTSTRAP
>>> print(redis_down(Settings(redis_url="redis://:secret@r:6379/0")))
Redis at redis://:***@r:6379/0 does not answer: start it (vigie stack up) or set VIGIE_REDIS_URL
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from vigie.cli.output import CommandError
from vigie.settings import Settings, redacted
from vigie.sinks.clickhouse_client import clickhouse_failure

PROBE_TIMEOUT_S = 5.0
"""How long a service has to answer the first request of a command."""


# ---------------------------------------------------------------------------- Kafka
def kafka_down(settings: Settings) -> str:
    return (
        f"Kafka at {settings.bootstrap_servers} does not answer: "
        "start it (vigie stack up) or set VIGIE_KAFKA_BOOTSTRAP"
    )


def require_kafka(settings: Settings, timeout: float = PROBE_TIMEOUT_S) -> None:
    """Return once a Kafka broker answers; :class:`CommandError` in one line if none does
    in ``timeout`` seconds, or at once when every broker refused the connection."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    from vigie.kafka import ClientEvents, admin_config

    quiet = ClientEvents("vigie-probe", logger=_silent("vigie.kafka.probe"))
    admin = AdminClient(admin_config(settings, client_id="vigie-probe", events=quiet))
    deadline = time.monotonic() + timeout
    while True:
        try:
            admin.list_topics(timeout=0.5)
            return
        except KafkaException as exc:
            admin.poll(0)  # serves the error callback: all brokers down?
            if not quiet.reachable or time.monotonic() > deadline:
                raise CommandError(kafka_down(settings)) from exc


# ---------------------------------------------------------------------------- Redis
def redis_down(settings: Settings) -> str:
    return (
        f"Redis at {redacted(settings.redis_dsn)} does not answer: "
        "start it (vigie stack up) or set VIGIE_REDIS_URL"
    )


def require_redis(settings: Settings) -> Any:
    """A Redis client that answered a PING; :class:`CommandError` in one line otherwise."""
    import redis

    from vigie.sinks.redis_alerts import redis_client

    client = redis_client(settings)
    try:
        client.ping()
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        client.close()
        raise CommandError(redis_down(settings)) from exc
    except redis.AuthenticationError as exc:
        client.close()
        raise CommandError(
            f"Redis at {redacted(settings.redis_dsn)} refused the credentials: "
            "check the password in VIGIE_REDIS_URL"
        ) from exc
    return client


# ----------------------------------------------------------------------- ClickHouse


@contextmanager
def quiet_drivers() -> Iterator[None]:
    """The drivers' own lines silenced while connecting (HTTP: "Retrying...", "Unexpected
    Http Driver Exception"; chDB writes its exceptions to the process's stderr): the
    command says what failed, once."""
    loggers = [logging.getLogger(name) for name in ("clickhouse_connect", "urllib3")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL)
    sys.stderr.flush()
    saved = os.dup(2)
    with Path(os.devnull).open("wb") as devnull:
        os.dup2(devnull.fileno(), 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


@contextmanager
def open_clickhouse(settings: Settings) -> Iterator[Any]:
    """A clickhouse-connect client on the warehouse, closed on exit; one line if it fails."""
    from vigie.sinks.clickhouse_client import connect

    try:
        with quiet_drivers():
            client = connect(settings)
    except Exception as exc:  # the drivers' errors vary: chDB, HTTP, a missing module
        raise CommandError(clickhouse_failure(settings.clickhouse_dsn, exc)) from exc
    try:
        yield client
    finally:
        client.close()


def _silent(name: str) -> logging.Logger:
    logger = logging.getLogger(name)
    logger.setLevel(logging.CRITICAL)
    logger.propagate = False
    return logger
