"""``vigie evaluate``: prequential evaluation of the risk engine on labelled files.

Files are CSV through a column mapping (``--mapping customs-kr``: declarations and labels
from the same rows), or JSON lines of declarations with ``--controls`` (control results)
and/or ``--truth`` (the generator's ground truth: typology, gap, duty gap).

Reading the files (:func:`read_examples`) is ``vigie replay``'s: the same validation, and
rejected records kept as dead letters with their file and line (in a JSON lines file:
an evaluation needs no Kafka); :func:`_stop_if_mostly_rejected` ends a run whose inputs
look wrong.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from vigie.cli import output, style
from vigie.errors import VigieError

if TYPE_CHECKING:
    from vigie.contracts.schemas import ControlResult, Declaration
    from vigie.ingest.rejections import Rejections
    from vigie.model.evaluation import Example
    from vigie.settings import Settings

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([dhms]?)\s*$")
_UNITS = {"d": 86_400.0, "h": 3_600.0, "m": 60.0, "s": 1.0, "": 86_400.0}


def parse_duration(text: str) -> timedelta:
    """``7d``, ``12h``, ``30m``, ``45s`` (a bare number is days).

    >>> parse_duration("7d"), parse_duration("36h")
    (datetime.timedelta(days=7), datetime.timedelta(days=1, seconds=43200))
    """
    found = _DURATION.match(text)
    if found is None:
        raise output.CommandError(f"--label-delay: {text!r} is not a duration like 7d or 12h")
    return timedelta(seconds=float(found.group(1)) * _UNITS[found.group(2)])


def read_examples(
    files: list[Path],
    mapping: str | None,
    controls: Path | None,
    truth: Path | None,
    rejects: Path,
) -> tuple[list[Example], Rejections]:
    """The examples of labelled files in time order, read as ``vigie replay`` reads them:
    a rejected record is written to ``rejects`` as a dead letter naming its file and line,
    and counted. :class:`~vigie.cli.output.CommandError` for a mapping, control or truth
    file that cannot work."""
    from vigie.ingest.labelled import LabelledFiles
    from vigie.ingest.mappings import load_mapping

    try:
        reader = LabelledFiles(load_mapping(mapping) if mapping else None, rejects)
        try:
            results = reader.controls(controls) if controls is not None else {}
            truths = reader.truths(truth) if truth is not None else {}
            examples = [
                _example(d, control or results.get(d.declaration_id), truths.get(d.declaration_id))
                for d, control in reader.declarations(files)
            ]
        finally:
            reader.close()
    except (VigieError, OSError) as exc:
        raise output.CommandError(str(exc)) from exc
    examples.sort(key=lambda e: e.declaration.lodged_at)
    return examples, reader.rejections


def _example(
    declaration: Declaration, control: ControlResult | None, known: dict[str, Any] | None
) -> Example:
    from vigie.model.evaluation import Example

    if known is None:
        return Example(declaration, control)
    return Example(
        declaration,
        control,
        known.get("typology") is not None,
        float(known.get("duty_gap_eur") or 0.0),
        known.get("typology"),
        float(known.get("gap") or 0.0),
    )


def _stop_if_mostly_rejected(
    accepted: int, rejections: Rejections, files: list[Path], mapping: str | None, rejects: Path
) -> None:
    """Exit with status 1, the first reasons and a hint, when most records were rejected;
    otherwise say where the rejected ones are."""
    from vigie.ingest.rejections import verdict

    message = verdict(accepted, rejections, files, mapping)
    if message is not None:
        raise output.CommandError(f"{message}\nEvery rejected record is in {rejects}")
    if rejections.count:
        output.console.print(
            f"{rejections.count:,} records rejected (first: {rejections.first[0]}); "
            f"all of them in {rejects}"
        )


def default_rejects(settings: Settings) -> Path:
    """Where an evaluation's rejected records go: ``<state dir>/evaluate/<UTC time>.jsonl``."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return settings.state_dir / "evaluate" / f"rejected-{stamp}.jsonl"


def evaluate(
    files: Annotated[
        list[Path],
        typer.Argument(
            exists=True,
            dir_okay=False,
            readable=True,
            metavar="FILE...",
            help="Declarations: JSONL, or CSV (or JSONL) through --mapping.",
        ),
    ],
    mapping: str | None = style.MAPPING,
    controls: Annotated[
        Path | None,
        typer.Option(
            "--controls",
            exists=True,
            dir_okay=False,
            metavar="FILE",
            help="Control results (JSONL).",
        ),
    ] = None,
    truth: Annotated[
        Path | None,
        typer.Option(
            "--truth",
            exists=True,
            dir_okay=False,
            metavar="FILE",
            help="Ground truth (vigie generate's JSONL).",
        ),
    ] = None,
    rejects: Annotated[
        Path | None,
        typer.Option(
            "--rejects",
            dir_okay=False,
            metavar="FILE",
            help="Where rejected records go, as dead letters (JSONL). "
            "Default: the state directory's evaluate folder.",
        ),
    ] = None,
    label_delay: str = typer.Option(
        "7d", "--label-delay", metavar="DURATION", help="Delay before a label is seen (7d, 12h)."
    ),
    start: Annotated[
        datetime | None,
        typer.Option(
            "--from", formats=["%Y-%m-%d"], metavar="DATE", help="Measure from this day (UTC)."
        ),
    ] = None,
    label_share: float = typer.Option(
        1.0,
        "--label-share",
        min=0.0,
        max=1.0,
        help="1: every label is seen. Below 1: only the labels of the declarations the "
        "engine selects, with this share as its budget (plus random audits).",
    ),
    budget: float | None = typer.Option(
        None, "--budget", min=0.0, max=1.0, help="Inspection budget (default: the settings')."
    ),
    audit_share: float | None = typer.Option(
        None, "--audit-share", min=0.0, max=1.0, help="Random audits (default: the settings')."
    ),
    seed: int | None = typer.Option(
        None, "--seed", min=0, help="Seed of the random audits (default: the settings')."
    ),
    as_json: bool = style.JSON,
) -> None:
    """Score then learn each declaration in time order, labels revealed after the delay.

    The engine is the worker's (the settings, VIGIE_ENGINE__*), with the options given.
    Records are read and validated as vigie replay reads them; rejected ones are written
    as dead letters to the --rejects file, and when most are rejected the command stops
    with status 1, naming the first rejected lines.
    """
    from vigie.model.engine import RiskEngine
    from vigie.model.evaluation import metrics, prequential
    from vigie.settings import get_settings

    rejects = rejects or default_rejects(get_settings())
    examples, rejections = read_examples(files, mapping, controls, truth, rejects)
    _stop_if_mostly_rejected(len(examples), rejections, files, mapping, rejects)
    given = {"budget": budget, "audit_share": audit_share, "seed": seed}
    options = get_settings().engine.options() | {k: v for k, v in given.items() if v is not None}
    budget = options["budget"]
    if label_share < 1.0:
        options["budget"] = label_share
    engine = RiskEngine(**options)
    trace = prequential(
        _progress(examples, as_json),
        engine,
        label_delay=parse_duration(label_delay),
        start=start.replace(tzinfo=UTC) if start else None,
        label_share=label_share,
    )
    report = metrics(trace, budget=budget)
    report["rejected"] = {"count": rejections.count, "by_reason": dict(rejections.reasons),
                          "file": str(rejects) if rejections.count else None}  # fmt: skip
    report["engine"] = {k: options[k] for k in ("budget", "audit_share", "seed")}
    report["memory"] = {"pending_declarations": engine.n_pending}
    if as_json:
        output.emit(report, as_json=True)
    else:
        _tables(report)


def _progress(examples: list[Example], quiet: bool) -> Iterator[Example]:
    if quiet:
        yield from examples
        return
    from rich.progress import Progress

    with Progress(
        console=output.console, transient=True, disable=not output.console.is_terminal
    ) as bar:
        task = bar.add_task("scoring", total=len(examples))
        for i, example in enumerate(examples):
            yield example
            if i % 1000 == 999:
                bar.advance(task, 1000)


def _tables(report: dict[str, Any]) -> None:
    from rich.table import Table

    detectors = report.pop("detectors")
    typologies = report.pop("typologies", {})
    metric_names = sorted({k for row in detectors.values() for k in row}, key=_metric_order)
    table = Table(title="ranking quality (declarations from --from on)")
    table.add_column("metric", style="bold")
    for detector in detectors:
        table.add_column(detector, justify="right")
    for name in metric_names:
        table.add_row(name, *(_cell(row.get(name)) for row in detectors.values()))
    output.console.print(table)
    if typologies:
        typo = Table(title="recall per typology: in the top --budget by each score")
        typo.add_column("typology", style="bold")
        typo.add_column("n", justify="right")
        for detector in typologies:
            typo.add_column(detector, justify="right")
        typo.add_column("selected online", justify="right")
        first = next(iter(typologies.values()))
        for name, row in first.items():
            cells = [_cell(typologies[d][name]["recall_top"]) for d in typologies]
            typo.add_row(name, str(row["n"]), *cells, _cell(row["recall_selected"]))
        output.console.print(typo)
    output.emit(report, as_json=False, title="vigie evaluate")


def _metric_order(name: str) -> tuple[int, float]:
    kind, _, share = name.partition("@")
    order = {"precision": 0, "recall": 1, "revenue": 2, "auc": 3}
    return order.get(kind, 4), float(share.rstrip("%") or 0)


def _cell(value: Any) -> str:
    return "-" if value is None else f"{value:.3f}"
