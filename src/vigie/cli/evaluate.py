"""``vigie evaluate``: prequential evaluation of the risk engine on labelled files.

Files are CSV through a column mapping (``--mapping customs-kr``: declarations and labels
from the same rows), or JSON lines of declarations with ``--controls`` (control results)
and/or ``--truth`` (the generator's ground truth: typology, gap, duty gap).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import orjson
import typer

from vigie.cli import output
from vigie.errors import VigieError

if TYPE_CHECKING:
    from vigie.model.evaluation import Example

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


def mapped_examples(files: list[Path], mapping_name: str, rejected: list[int]) -> Iterator[Example]:
    """Examples from CSV files through a column mapping; rows that do not decode are
    counted in ``rejected[0]`` and left out."""
    from vigie.contracts.codec import decode_object
    from vigie.contracts.schemas import ControlResult, Declaration
    from vigie.errors import DecodeError
    from vigie.ingest.mappings import load_mapping
    from vigie.model.evaluation import Example

    mapping = load_mapping(mapping_name)
    for path in files:
        with path.open(newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                try:
                    decl, control = mapping.convert(row)
                    declaration = decode_object(Declaration, decl)
                    result = None if control is None else decode_object(ControlResult, control)
                except DecodeError:
                    rejected[0] += 1
                    continue
                yield Example(declaration, result)


def _jsonl(path: Path) -> Iterator[dict[str, Any]]:
    with path.open("rb") as handle:
        for line in handle:
            if line.strip():
                yield orjson.loads(line)


def _from_jsonl(
    files: list[Path], controls: Path | None, truth: Path | None, rejected: list[int]
) -> Iterator[Example]:
    from vigie.contracts.codec import decode_object
    from vigie.contracts.schemas import ControlResult, Declaration
    from vigie.errors import DecodeError
    from vigie.model.evaluation import Example

    results = {}
    if controls is not None:
        for obj in _jsonl(controls):
            result = decode_object(ControlResult, obj)
            results[result.declaration_id] = result
    truths = {obj["declaration_id"]: obj for obj in _jsonl(truth)} if truth else {}
    for path in files:
        for obj in _jsonl(path):
            try:
                decl = decode_object(Declaration, obj)
            except DecodeError:
                rejected[0] += 1
                continue
            known = truths.get(decl.declaration_id)
            if known is None:
                yield Example(decl, results.get(decl.declaration_id))
                continue
            yield Example(
                decl,
                results.get(decl.declaration_id),
                known.get("typology") is not None,
                float(known.get("duty_gap_eur") or 0.0),
                known.get("typology"),
                float(known.get("gap") or 0.0),
            )


def evaluate(
    files: Annotated[list[Path], typer.Argument(help="CSV (with --mapping) or JSONL files.")],
    mapping: Annotated[
        str | None, typer.Option("--mapping", help="Column mapping of CSV files.")
    ] = None,
    controls: Annotated[
        Path | None, typer.Option("--controls", help="Control results (JSONL).")
    ] = None,
    truth: Annotated[
        Path | None, typer.Option("--truth", help="Ground truth (generator JSONL).")
    ] = None,
    label_delay: str = typer.Option("7d", "--label-delay", help="Delay before a label is seen."),
    start: Annotated[
        datetime | None,
        typer.Option("--from", formats=["%Y-%m-%d"], help="Measure from this day (UTC)."),
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
        None, "--budget", min=0.0, max=1.0, help="Inspection budget [default: the settings']."
    ),
    audit_share: float | None = typer.Option(
        None, "--audit-share", min=0.0, max=1.0, help="Random audits [default: the settings']."
    ),
    seed: int | None = typer.Option(
        None, "--seed", min=0, help="Seed of the random audits [default: the settings']."
    ),
    as_json: bool = typer.Option(False, "--json", help=output.JSON_OPTION_HELP),
) -> None:
    """Score then learn each declaration in time order, labels revealed after the delay.

    The engine is the worker's (the settings, ``VIGIE_ENGINE__*``), with the options given.
    """
    from vigie.model.engine import RiskEngine
    from vigie.model.evaluation import metrics, prequential
    from vigie.settings import get_settings

    missing = [str(p) for p in [*files, controls, truth] if p is not None and not p.is_file()]
    if missing:
        raise output.CommandError(f"no such file: {', '.join(missing)}")
    rejected = [0]
    source = (
        mapped_examples(files, mapping, rejected)
        if mapping
        else _from_jsonl(files, controls, truth, rejected)
    )
    try:
        examples = sorted(source, key=lambda e: e.declaration.lodged_at)
    except (VigieError, OSError, ValueError) as exc:  # a bad mapping, control or truth file
        raise output.CommandError(str(exc)) from exc
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
    report["rejected"] = rejected[0]
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

    with Progress(console=output.console, transient=True) as bar:
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
