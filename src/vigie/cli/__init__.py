"""The ``vigie`` command. Each group of subcommands lives in its own module.

Heavy libraries (Faust, River, Kafka clients) are imported inside the commands, so
``vigie --help`` stays fast.
"""

from __future__ import annotations

import logging

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
    """Attach every command group (one module each)."""
    from vigie.cli import stack, topics, warehouse

    app.add_typer(stack.app, name="stack")
    app.add_typer(topics.app, name="topics")
    app.add_typer(warehouse.app, name="warehouse")
    from vigie.cli import grafana, warehouse_ops

    warehouse_ops.register(warehouse.app)
    app.add_typer(grafana.app, name="grafana")
    from vigie.cli import deadletters, replay

    app.command(name="replay")(replay.replay)
    app.add_typer(deadletters.app, name="dlq")
    from vigie.cli import alerts, webhooks

    app.add_typer(alerts.app, name="alerts")
    app.add_typer(webhooks.app, name="webhooks")
    from vigie.cli import controls, worker

    app.command(name="worker")(worker.worker)
    app.add_typer(controls.app, name="controls")
    from vigie.cli import generate

    app.command(name="generate")(generate.generate)
    from vigie.cli import demo

    app.command(name="demo")(demo.demo)
    from vigie.cli import evaluate

    app.command(name="evaluate")(evaluate.evaluate)


def main() -> None:
    """Entry point of the ``vigie`` console script."""
    _register()
    try:
        app()
    except output.CommandError as exc:
        output.fail(str(exc))


__all__ = ["app", "main", "output"]
