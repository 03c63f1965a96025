"""The ``vigie`` command. Each group of subcommands lives in its own module.

Heavy libraries (Faust, River, Kafka clients) are imported inside the commands, so
``vigie --help`` stays fast. Other installed packages add commands through the
``vigie.commands`` entry point group (the development part adds ``stack``, ``generate``
and ``demo``): each entry point is a function that registers its commands on ``app``.
"""

from __future__ import annotations

import logging
from importlib.metadata import entry_points

import typer

from vigie.cli import output

app = typer.Typer(
    name="vigie",
    help="Vigie: a streaming risk engine for customs import declarations.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log at debug level."),
) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def _register() -> None:
    """Attach every command group (one module each), then the installed plugins'."""
    from vigie.cli import (
        alerts,
        controls,
        deadletters,
        evaluate,
        grafana,
        replay,
        topics,
        warehouse,
        warehouse_ops,
        web,
        webhooks,
        worker,
    )

    app.add_typer(topics.app, name="topics")
    app.add_typer(warehouse.app, name="warehouse")
    warehouse_ops.register(warehouse.app)
    app.add_typer(grafana.app, name="grafana")
    app.command(name="replay")(replay.replay)
    app.add_typer(deadletters.app, name="dlq")
    app.add_typer(alerts.app, name="alerts")
    app.add_typer(webhooks.app, name="webhooks")
    app.command(name="worker")(worker.worker)
    app.add_typer(controls.app, name="controls")
    app.command(name="evaluate")(evaluate.evaluate)
    app.add_typer(web.app, name="web")
    for plugin in entry_points(group="vigie.commands"):
        plugin.load()(app)


def main() -> None:
    """Entry point of the ``vigie`` console script."""
    _register()
    try:
        app()
    except output.CommandError as exc:
        output.fail(str(exc))


__all__ = ["app", "main", "output"]
