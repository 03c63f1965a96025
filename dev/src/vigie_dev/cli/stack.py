"""``vigie stack up | down | status``: the local Kafka broker and Redis server."""

from __future__ import annotations

from typing import Any

import typer

from vigie.cli import output, style
from vigie.errors import StackError
from vigie.settings import get_settings

app = typer.Typer(help="Start, stop and inspect the local Kafka and Redis.", no_args_is_help=True)

JSON = style.JSON


def _report() -> dict[str, Any]:
    from vigie_dev.stack import status

    settings = get_settings()
    services = {name: st.as_dict() for name, st in status(settings).items()}
    return {"state_dir": str(settings.state_dir.resolve()), "services": services}


@app.command()
def up(as_json: bool = JSON) -> None:
    """Start Kafka and Redis (if not already running) and wait until both answer."""
    from vigie_dev.stack import up as start

    settings = get_settings()
    with output.console.status("starting Kafka and Redis (first start fetches Kafka's jars)"):
        try:
            services = start(settings)
        except StackError as exc:
            raise output.CommandError(str(exc)) from exc
    for st in services.values():
        if st.log:
            output.console.print(f"{st.name}: {st.state} at {st.address}, log: {st.log}")
    output.emit(
        {
            "state_dir": str(settings.state_dir.resolve()),
            "services": {n: st.as_dict() for n, st in services.items()},
        },
        as_json=as_json,
        title="stack up",
    )


@app.command()
def down(as_json: bool = JSON) -> None:
    """Stop the processes vigie stack up started from this state directory."""
    from vigie_dev.stack import down as stop

    output.emit({"stopped": stop(get_settings())}, as_json=as_json, title="stack down")


@app.command()
def status(as_json: bool = JSON) -> None:
    """Report each service: up, starting or down, with its PID, address and log."""
    output.emit(_report(), as_json=as_json, title="stack status")
