"""The development part's commands, added to ``vigie`` through the ``vigie.commands``
entry point: ``vigie stack``, ``vigie generate``, ``vigie demo`` and ``vigie bench``."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Attach the development commands to the ``vigie`` application."""
    from vigie_dev.bench.command import bench
    from vigie_dev.cli import demo, generate, stack

    app.add_typer(stack.app, name="stack")
    app.command(name="generate")(generate.generate)
    app.command(name="demo")(demo.demo)
    app.command(name="bench")(bench)
