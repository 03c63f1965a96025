"""``vigie controls submit``: feed inspection outcomes (control results) back to the engine.

Records are validated as :class:`~vigie.contracts.schemas.ControlResult` and produced to
``control-results`` keyed by declaration id; the worker's learning agent updates the model
of the partition holding that declaration, and later Scores carry the new model version.
Nothing is produced when any record is invalid.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from vigie.cli import output, runs, services, style
from vigie.contracts.catalogue import CONTROL_RESULTS
from vigie.contracts.codec import decode, decode_object, encode
from vigie.contracts.schemas import ControlResult, utc_now
from vigie.errors import DecodeError, StackError

app = typer.Typer(help="Feed control results back to the engine.", no_args_is_help=True)


def read_controls(path: Path) -> list[ControlResult]:
    """Every control result of a JSONL file; DecodeError naming the line otherwise."""
    results: list[ControlResult] = []
    errors: list[dict[str, Any]] = []
    with path.open("rb") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                results.append(decode(ControlResult, line.strip()))
            except DecodeError as exc:
                errors.extend(
                    {**e, "loc": [f"line {number}", *e.get("loc", ())]} for e in exc.errors
                )
    if errors:
        raise DecodeError("schema", errors)
    return results


def one_control(
    declaration: str,
    outcome: str,
    recovered: float,
    selection: str,
    controlled_at: datetime | None,
) -> ControlResult:
    """A control result from command-line flags (naive times are taken as UTC)."""
    at = controlled_at or utc_now()
    fields: dict[str, Any] = {
        "declaration_id": declaration,
        "controlled_at": at.isoformat() if at.tzinfo else f"{at.isoformat()}+00:00",
        "outcome": outcome,
        "recovered_eur": float(recovered),
        "selection": selection,
    }
    return decode_object(ControlResult, fields)


@app.command("submit")
def submit(
    file: Annotated[
        Path | None,
        typer.Argument(
            exists=True,
            dir_okay=False,
            readable=True,
            metavar="FILE",
            help="JSONL file of control results.",
        ),
    ] = None,
    declaration: str | None = typer.Option(
        None, "--declaration", metavar="ID", help="Declaration id."
    ),
    outcome: str | None = typer.Option(
        None, "--outcome", metavar="OUTCOME", help="compliant, infraction or critical."
    ),
    recovered: float = typer.Option(
        0.0, "--recovered", min=0.0, metavar="EUR", help="Duties recovered (EUR)."
    ),
    selection: str = typer.Option(
        "other",
        "--selection",
        metavar="SOURCE",
        help="How it was selected: engine, random_audit or other.",
    ),
    controlled_at: Annotated[
        datetime | None,
        typer.Option(
            "--controlled-at",
            metavar="TIME",
            help="When the control ended, ISO 8601 (default: now, UTC).",
        ),
    ] = None,
    run: str | None = style.RUN,
    as_json: bool = style.JSON,
) -> None:
    """Submit a JSONL FILE of control results, or a single one with --declaration/--outcome.

    Nothing is sent when any record is invalid: the errors name each line.
    """
    from vigie.ingest.producer import KafkaProducer

    if (file is None) == (declaration is None):
        raise output.CommandError("give either FILE or --declaration with --outcome")
    try:
        if file is not None:
            results = read_controls(file)
        else:
            if outcome is None:
                raise output.CommandError("--declaration needs --outcome")
            assert declaration is not None
            results = [one_control(declaration, outcome, recovered, selection, controlled_at)]
    except DecodeError as exc:
        raise output.CommandError(f"invalid control results, nothing sent: {exc}") from exc
    settings = runs.settings_for(run)
    services.require_kafka(settings)
    topic = settings.topic(CONTROL_RESULTS.name)
    try:
        producer = KafkaProducer(settings)
        if producer.missing_topics([topic]):
            raise output.CommandError(f"topic {topic} does not exist: run vigie topics create")
        for result in results:
            producer.produce(topic, encode(result), key=result.declaration_id.encode())
        report = producer.flush()
    except StackError as exc:
        raise output.CommandError(str(exc)) from exc
    sent = report.delivered(topic)
    output.emit(
        {"topic": topic, "submitted": len(results), "delivered": sent, "failed": report.failures},
        as_json=as_json,
        title="controls",
    )
    if report.failures:
        output.fail(f"{report.failures} control results were not delivered: {report.errors[:3]}")
