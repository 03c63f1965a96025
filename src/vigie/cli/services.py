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
>>> short_reason("...NewConnectionError(... [Errno 111] Connection refused')) executing")
'Connection refused'
"""

from __future__ import annotations

import logging
import os
import re
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from vigie.cli.output import CommandError
from vigie.errors import MissingDependencyError
from vigie.settings import Settings

PROBE_TIMEOUT_S = 5.0
"""How long a service has to answer the first request of a command."""

_ERRNO = re.compile(r"\[Errno -?\d+\] ([^'\")\]]+)")
_CODE = re.compile(r"Code: (\d+)\. (?:DB::Exception: )?([^.(]+)")


def redacted(url: str) -> str:
    """A URL without its password.

    >>> redacted("http://vigie:s3cret@clickhouse:8123"), redacted("chdb:///var/lib/ch")
    ('http://vigie:***@clickhouse:8123', 'chdb:///var/lib/ch')
    """
    parsed = urlparse(url)
    if parsed.password is None:
        return url
    host = parsed.netloc.rsplit("@", 1)[1]
    return parsed._replace(netloc=f"{parsed.username or ''}:***@{host}").geturl()


def short_reason(text: str) -> str:
    """The part of a driver's error a person acts on (``Connection refused``)."""
    found = _ERRNO.search(text) or _CODE.search(text)
    if found is None:
        return text.splitlines()[0][:160] if text else "no answer"
    return " ".join(g.strip() for g in found.groups() if not g.isdigit()) or text[:160]


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
def clickhouse_failure(settings: Settings, exc: BaseException) -> str:
    """One line on why the warehouse cannot be opened, and what to do about it."""
    dsn = settings.clickhouse_dsn
    text = str(exc)
    if dsn.startswith("chdb:"):
        path = dsn.removeprefix("chdb://")
        if isinstance(exc, MissingDependencyError):
            return str(exc)
        if "Cannot lock file" in text or "EmbeddedServer" in text:
            return (
                f"the embedded ClickHouse at {path} is held by another process "
                "(chDB admits one per directory: vigie warehouse write, vigie web?): "
                "stop it, or set VIGIE_CLICKHOUSE_URL to a server"
            )
        return f"the embedded ClickHouse at {path} cannot be opened: {short_reason(text)}"
    where = f"ClickHouse at {redacted(dsn)}"
    if "Authentication failed" in text or "Code: 516" in text:
        return f"{where} refused the credentials: check the user and password in the URL"
    return f"{where} does not answer ({short_reason(text)}): start it or set VIGIE_CLICKHOUSE_URL"


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
        raise CommandError(clickhouse_failure(settings, exc)) from exc
    try:
        yield client
    finally:
        client.close()


def _silent(name: str) -> logging.Logger:
    logger = logging.getLogger(name)
    logger.setLevel(logging.CRITICAL)
    logger.propagate = False
    return logger
