"""``vigie bench``: every throughput and latency figure of the engine in one run.

Registered as a single command by :mod:`vigie_dev.cli`. Progress and the tables go to
stderr; ``--json`` prints the result as one JSON object on stdout. Every run is also
written to ``bench/results/bench-<UTC timestamp>.json`` and summarised in
``bench/results/bench-latest.md`` (``--results`` elsewhere).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from vigie.cli import output, style
from vigie.settings import get_settings
from vigie_dev.bench.context import SCENARIOS, BenchOptions
from vigie_dev.bench.machine import REPO

RESULTS = REPO / "bench" / "results"


def bench(
    declarations: int = typer.Option(
        100_000,
        "--declarations",
        min=100,
        metavar="N",
        help="Declarations of every throughput run.",
    ),
    only: str = typer.Option(
        ",".join(SCENARIOS),
        "--only",
        metavar="SCENARIOS",
        show_default=False,
        help=f"Scenarios to run, comma-separated, among: {', '.join(SCENARIOS)} (default: all).",
    ),
    seed: int = typer.Option(7, "--seed", min=0, help="Generator seed."),
    importers: int | None = typer.Option(
        None,
        "--importers",
        min=10,
        metavar="N",
        help="Importers in the generated world (default: declarations / 5).",
    ),
    workers: int = typer.Option(2, "--workers", min=2, help="Workers of the scaling scenario."),
    rates: str = typer.Option(
        "",
        "--rates",
        metavar="RATES",
        help="Steady rates of the latency runs, comma-separated (default: 1000 and half the max).",
    ),
    seconds: float = typer.Option(30.0, "--seconds", min=1.0, help="Length of a latency run."),
    warmup: int = typer.Option(2000, "--warmup", min=0, help="Declarations before a latency run."),
    label_share: float = typer.Option(
        0.06, "--label-share", min=0.0, max=1.0, help="Share controlled (detectors alone)."
    ),
    no_warehouse: bool = typer.Option(
        False, "--no-warehouse", help="Skip the ClickHouse writer after the worker."
    ),
    results: Annotated[
        Path,
        typer.Option(
            "--results",
            metavar="FOLDER",
            show_default=False,
            help="Where each run's result is written (default: bench/results).",
        ),
    ] = RESULTS,
    as_json: bool = style.JSON,
) -> None:
    """Raw consumer, detectors alone, peer loop, worker end to end, latency, scaling.

    Throughput runs read the same N generated declarations, produced to fresh topics
    before their consumer starts (a backlog: the maximum rate). Uses the configured Kafka
    and Redis (VIGIE_KAFKA_BOOTSTRAP, VIGIE_REDIS_URL) or the local stack's.
    """
    from vigie.errors import VigieError
    from vigie_dev.bench import report, runner

    chosen = tuple(s.strip() for s in only.split(",") if s.strip())
    unknown = set(chosen) - set(SCENARIOS)
    if unknown or not chosen:
        raise output.CommandError(
            f"--only: unknown {', '.join(sorted(unknown))}; choose among {', '.join(SCENARIOS)}"
        )
    try:
        steady = tuple(float(r) for r in rates.split(",") if r.strip())
    except ValueError as exc:
        raise output.CommandError(f"--rates: {exc}") from exc
    options = BenchOptions(
        n=declarations, seed=seed, importers=importers, only=chosen, workers=workers, rates=steady,
        seconds=seconds, warmup=warmup, label_share=label_share, warehouse=not no_warehouse,
    )  # fmt: skip
    try:
        result = runner.run(get_settings(), options, progress=_progress)
    except VigieError as exc:
        raise output.CommandError(str(exc)) from exc
    path = report.save(result, results)
    _show(result)
    output.console.print(f"written to {path}")
    if as_json:
        output.emit(result, as_json=True)


def _progress(step: str) -> None:
    output.console.print(f"[dim]bench:[/dim] {step}")


def _show(result: dict[str, Any]) -> None:
    from vigie_dev.bench import report

    for title, header, rows in (
        ("throughput (backlog)", report.THROUGHPUT_HEADER, report.throughput_rows(result)),
        ("latency (steady rate)", report.LATENCY_HEADER, report.latency_rows(result)),
    ):
        if not rows:
            continue
        table = Table(title=title)
        for column in header:
            table.add_column(column, justify="left" if column == header[0] else "right")
        for row in rows:
            table.add_row(*row)
        output.console.print(table)
    for line in report.summary_lines(result):
        output.console.print(line)
