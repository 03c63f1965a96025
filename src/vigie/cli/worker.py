"""``vigie worker``: run the streaming worker (scoring, learning, HTTP endpoints).

Registered as a single command. Several workers with the same settings form one consumer
group and share the partitions; each needs its own ``--http-port`` on one machine.
"""

from __future__ import annotations

import typer

from vigie.cli import output, services
from vigie.contracts.catalogue import DECLARATIONS
from vigie.errors import StackError
from vigie.settings import Settings, get_settings


def worker(
    http_port: int | None = typer.Option(
        None,
        "--http-port",
        metavar="PORT",
        help="Serve /health, /ready, /metrics and /controls on this port "
        "(default: VIGIE_WORKER_WEB_PORT, 6066).",
    ),
    loglevel: str = typer.Option(
        "warning", "--loglevel", metavar="LEVEL", help="Faust log level: warning, info, debug."
    ),
) -> None:
    """Score every declaration, learn from control results, serve health and metrics.

    Creates the catalogue topics if they are missing. Stops on SIGTERM or Ctrl-C after
    snapshotting its models.
    """
    settings = get_settings()
    if http_port is not None:
        settings = settings.model_copy(update={"worker_web_port": http_port})
    services.require_kafka(settings)
    _check_topics(settings)
    from vigie.worker.app import run

    run(settings, loglevel=loglevel)


def _check_topics(settings: Settings) -> None:
    from vigie.ingest.topics import admin_client, current_partitions, ensure_topics

    try:
        ensure_topics(settings)
        name = settings.topic(DECLARATIONS.name)
        have = current_partitions(admin_client(settings), name)
    except StackError as exc:
        raise output.CommandError(str(exc)) from exc
    if have != settings.topic_partitions:
        raise output.CommandError(
            f"{name} has {have} partitions but topic_partitions is {settings.topic_partitions}:"
            " set VIGIE_TOPIC_PARTITIONS to the topic's partition count"
        )
