"""``vigie worker``: run the streaming worker (scoring, learning, HTTP endpoints).

Registered as a single command. Several workers with the same settings form one consumer
group and share the partitions; each needs its own ``--web-port`` on one machine.
"""

from __future__ import annotations

import typer

from vigie.cli import output
from vigie.contracts.catalogue import DECLARATIONS
from vigie.errors import StackError
from vigie.settings import Settings, get_settings


def worker(
    web_port: int | None = typer.Option(
        None, "--web-port", help="HTTP port of /health, /ready, /metrics, /controls."
    ),
    loglevel: str = typer.Option("warning", "--loglevel", help="Faust log level."),
) -> None:
    """Score every declaration, learn from control results, serve health and metrics.

    Creates the catalogue topics if they are missing. Stops on SIGTERM or Ctrl-C after
    snapshotting its models.
    """
    settings = get_settings()
    if web_port is not None:
        settings = settings.model_copy(update={"worker_web_port": web_port})
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
