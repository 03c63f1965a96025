"""``vigie generate``: write a synthetic declaration stream with labelled frauds."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from vigie.cli import output, style
from vigie.errors import ConfigurationError

if TYPE_CHECKING:
    from vigie_dev.generator import GeneratorConfig


def generate(
    out: Annotated[
        Path, typer.Option("--out", metavar="FILE", help="Declarations file (JSON lines).")
    ],
    controls: Annotated[
        Path | None,
        typer.Option("--controls", metavar="FILE", help="Control results file (JSON lines)."),
    ] = None,
    truth: Annotated[
        Path | None,
        typer.Option(
            "--truth", metavar="FILE", help="Ground truth file (default: OUT with .truth.jsonl)."
        ),
    ] = None,
    start: Annotated[
        datetime,
        typer.Option(
            "--start",
            formats=["%Y-%m-%d"],
            metavar="DATE",
            show_default="2026-01-01",
            help="First day (UTC).",
        ),
    ] = datetime(2026, 1, 1),
    declarations: int = style.declarations_option(10_000),
    seed: int = typer.Option(
        0, "--seed", min=0, metavar="N", help="Random seed (same seed, same bytes)."
    ),
    inspected_share: float = typer.Option(
        0.05, "--inspected-share", min=0.0, max=1.0, help="Share of declarations inspected."
    ),
    audit_share: float = typer.Option(
        0.01, "--audit-share", min=0.0, max=1.0, help="Share drawn as random audits."
    ),
    fraud_share: float = typer.Option(
        0.04, "--fraud-share", min=0.0, max=0.5, help="Share of fraudulent declarations."
    ),
    days: int = typer.Option(90, "--days", min=1, help="Length of the period in days."),
    export_share: float = typer.Option(
        0.0, "--export-share", min=0.0, max=0.5, help="Share of export declarations."
    ),
    as_json: bool = style.JSON,
) -> None:
    """Write a deterministic stream of declarations, their truth and controls.

    Imports only by default; --export-share adds export declarations of the same
    operators (no fraud, no controls).
    """
    from vigie_dev.generator import GeneratorConfig, write_files

    try:
        config = GeneratorConfig(
            n=declarations, seed=seed, start=start.replace(tzinfo=UTC), days=days,
            fraud_share=fraud_share, inspected_share=inspected_share, audit_share=audit_share,
            export_share=export_share,
        )  # fmt: skip
    except ConfigurationError as exc:
        raise output.CommandError(str(exc)) from exc
    began = time.perf_counter()
    if as_json:
        summary = write_files(config, out, controls, truth)
    else:
        summary = _with_progress(config, out, controls, truth)
    summary["seconds"] = round(time.perf_counter() - began, 3)
    output.emit(summary, as_json=as_json, title="vigie generate")


def _with_progress(
    config: GeneratorConfig, out: Path, controls: Path | None, truth: Path | None
) -> dict[str, Any]:
    from rich.progress import Progress

    from vigie_dev.generator import write_files

    with Progress(
        console=output.console, transient=True, disable=not output.console.is_terminal
    ) as bar:
        task = bar.add_task("generating", total=config.n)
        return write_files(config, out, controls, truth, lambda k: bar.advance(task, k))
