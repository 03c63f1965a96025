"""The ``vigie`` command. Each group of subcommands lives in its own module.

Heavy libraries (Faust, River, Kafka clients) are imported inside the commands, so
``vigie --help`` stays fast. Other installed packages add commands through the
``vigie.commands`` entry point group (the development part adds ``stack``, ``generate``,
``demo`` and ``bench``): each entry point is a function that registers its commands on
``app``. :func:`command` is the finished command line, its help in plain words
(:mod:`vigie.cli.style`).
"""

from __future__ import annotations

import logging
from importlib.metadata import entry_points, version
from typing import Any

import typer

from vigie.cli import output, style

app = typer.Typer(
    name="vigie",
    help="Vigie: a streaming risk engine for customs import declarations.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings=style.HELP_OPTIONS,
)


def _show_version(wanted: bool) -> None:
    if wanted:
        print(f"vigie {version('vigie')}")
        raise typer.Exit()


@app.callback()
def _root(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log at debug level."),
    _version: bool = typer.Option(
        False, "--version", is_eager=True, callback=_show_version, help="Print the version."
    ),
) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


_registered: list[bool] = []


def _register() -> None:
    """Attach every command group (one module each), then the installed plugins', once."""
    if _registered:
        return
    _registered.append(True)
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


def command() -> Any:
    """The whole ``vigie`` command line, every parameter's help in plain words."""
    _register()
    cli = typer.main.get_command(app)
    style.plain_help(cli)
    return cli


def main() -> None:
    """Entry point of the ``vigie`` console script."""
    try:
        command()(prog_name="vigie")
    except output.CommandError as exc:
        output.fail(str(exc))


__all__ = ["app", "command", "main", "output"]
