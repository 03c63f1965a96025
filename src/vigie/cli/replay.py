"""``vigie replay FILE...``: produce JSONL or CSV files to Kafka, dead-lettering bad records.

Registered as a single command (``app.command("replay")(replay)``), not a group, so that
options may follow the file arguments.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from vigie.cli import output, runs, services, style
from vigie.errors import ConfigurationError, StackError

if TYPE_CHECKING:
    from vigie.ingest.mappings import ColumnMapping
    from vigie.ingest.pipeline import ReplayReport


def replay(
    files: Annotated[
        list[Path],
        typer.Argument(
            exists=True,
            dir_okay=False,
            readable=True,
            metavar="FILE...",
            help="JSONL or CSV files (by extension).",
        ),
    ],
    mapping: str | None = style.MAPPING,
    rate: float | None = typer.Option(
        None, "--rate", min=0.001, metavar="PER_SECOND", help="At most this many records a second."
    ),
    topic: str = typer.Option(
        "declarations",
        "--topic",
        "-t",
        metavar="TOPIC",
        help="Catalogue topic; its schema validates the records.",
    ),
    as_json: bool = style.JSON,
) -> None:
    """Validate and produce every record; rejects go to the dead-letter topic with reasons.

    Exits with status 1 when a message could not be delivered, and when most records
    were rejected (a wrong or missing mapping?), naming the first rejected lines.
    """
    from vigie.ingest.mappings import load_mapping

    settings = runs.settings_for(None)
    try:
        loaded = load_mapping(mapping) if mapping else None
    except ConfigurationError as exc:
        raise output.CommandError(str(exc)) from exc
    services.require_kafka(settings)
    report = _run(files, topic, loaded, rate, as_json)
    output.emit(report.as_dict(), as_json=as_json, title="replay")
    if report.delivery_errors:
        output.fail(f"{report.delivery_errors} messages were not delivered: {report.errors[:3]}")
    _exit_if_mostly_rejected(report, files, mapping, topic)


def _run(
    files: list[Path], topic: str, mapping: ColumnMapping | None, rate: float | None, quiet: bool
) -> ReplayReport:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from vigie.ingest.pipeline import Replay
    from vigie.ingest.producer import KafkaProducer

    total = sum(path.stat().st_size for path in files)
    columns = (TextColumn("[bold]replay"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
               TimeElapsedColumn())  # fmt: skip
    try:
        job = Replay(KafkaProducer(runs.settings_for(None)), topic=topic, mapping=mapping,
                     rate=rate)  # fmt: skip
        job.check_topics()
        with Progress(*columns, console=output.console, transient=quiet,
                      disable=not output.console.is_terminal) as progress:  # fmt: skip
            task = progress.add_task("replay", total=total)
            return job.run(files, lambda n: progress.advance(task, n))
    except (ConfigurationError, StackError) as exc:
        raise output.CommandError(str(exc)) from exc


def _exit_if_mostly_rejected(
    report: ReplayReport, files: list[Path], mapping: str | None, topic: str
) -> None:
    from vigie.ingest.rejections import Rejections, verdict

    seen = Rejections()
    seen.reasons.update(report.rejected_reasons)
    seen.first.extend(report.first_rejected)
    record = "control result" if topic == "control-results" else "declaration"
    message = verdict(report.produced, seen, files, mapping, record)
    if message is not None:
        output.fail(f"{message}\nEvery rejected record is in the dead-letter topic: vigie dlq tail")
