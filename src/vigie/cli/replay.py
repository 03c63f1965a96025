"""``vigie replay FILE...``: produce JSONL or CSV files to Kafka, dead-lettering bad records.

Registered as a single command (``app.command("replay")(replay)``), not a group, so that
options may follow the file arguments.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from vigie.cli import output
from vigie.errors import ConfigurationError, StackError
from vigie.settings import get_settings

app = typer.Typer(help="Replay declaration files into Kafka.")


@app.command()
def replay(
    files: Annotated[
        list[Path],
        typer.Argument(
            exists=True, dir_okay=False, readable=True, help="JSONL or CSV files (by extension)."
        ),
    ],
    mapping: str | None = typer.Option(
        None, "--mapping", "-m", help="Column mapping: a shipped name (customs-kr) or a TOML file."
    ),
    rate: float | None = typer.Option(
        None, "--rate", min=0.001, help="At most this many records per second."
    ),
    topic: str = typer.Option(
        "declarations", "--topic", "-t", help="Catalogue topic; its schema validates the records."
    ),
    as_json: bool = typer.Option(False, "--json", help=output.JSON_OPTION_HELP),
) -> None:
    """Validate and produce every record; rejects go to the dead-letter topic with reasons.

    Exits with status 1 when a message could not be delivered.
    """
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from vigie.ingest.mappings import load_mapping
    from vigie.ingest.pipeline import Replay
    from vigie.ingest.producer import KafkaProducer

    settings = get_settings()
    total = sum(path.stat().st_size for path in files)
    columns = (
        TextColumn("[bold]replay"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
    )
    try:
        loaded = load_mapping(mapping) if mapping else None
        producer = KafkaProducer(settings)
        job = Replay(producer, topic=topic, mapping=loaded, rate=rate)
        job.check_topics()
        with Progress(*columns, console=output.console, transient=as_json) as progress:
            task = progress.add_task("replay", total=total)
            report = job.run(files, lambda n: progress.advance(task, n))
    except (ConfigurationError, StackError) as exc:
        raise output.CommandError(str(exc)) from exc
    output.emit(report.as_dict(), as_json=as_json, title="replay")
    if report.delivery_errors:
        output.fail(f"{report.delivery_errors} messages were not delivered: {report.errors[:3]}")
