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
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from vigie.cli import output, style
from vigie.errors import VigieError

if TYPE_CHECKING:
    from vigie.contracts.schemas import ControlResult, Declaration
    from vigie.evaluation import Example
    from vigie.ingest.rejections import Rejections
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
    from vigie.evaluation import Example

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
        "7d",
        "--label-delay",
        "--delay-days",
        metavar="DURATION",
        help="Delay from lodging to the control result (7d, 12h; a bare number is days).",
    ),
    start: Annotated[
        datetime | None,
        typer.Option(
            "--from", formats=["%Y-%m-%d"], metavar="DATE", help="Measure from this day (UTC)."
        ),
    ] = None,
    end: Annotated[
        datetime | None,
        typer.Option(
            "--to",
            formats=["%Y-%m-%d"],
            metavar="DATE",
            help="Measure up to this day included (UTC); later declarations are not read.",
        ),
    ] = None,
    budget: float | None = typer.Option(
        None, "--budget", min=0.0, max=1.0, help="Inspection budget (default: the settings')."
    ),
    audit_share: float | None = typer.Option(
        None, "--audit-share", min=0.0, max=1.0, help="Random audits (default: the settings')."
    ),
    full_information: bool = typer.Option(
        False,
        "--full-information",
        help="Reveal every label of the files, not only those of the declarations the "
        "engine selected (the closed loop, as in service).",
    ),
    inject: str | None = typer.Option(
        None,
        "--inject",
        metavar="KIND[:SHARE[:LO-HI]],...",
        help="Inject known frauds: under-valuation, new-origin, new-chapter, mass-value, "
        "split (docs/evaluation.md).",
    ),
    keep_labels: bool = typer.Option(
        False, "--keep-labels", help="With --inject: keep the files' own labels too."
    ),
    baselines: bool = typer.Option(
        False, "--baselines", help="Run the naive baselines on the same stream, beside."
    ),
    seed: int | None = typer.Option(
        None,
        "--seed",
        min=0,
        help="Seed of the random audits and of the injections (default: the settings').",
    ),
    seeds: int = typer.Option(
        1,
        "--seeds",
        min=1,
        help="Replay the stream with this many engine seeds (--seed, then the next ones) and "
        "report the spread of the selection figures: the closed loop depends on the random "
        "audits. The other figures are those of the first seed.",
    ),
    limit: int | None = style.limit_option(None, "this many declarations (the first in time)"),
    as_json: bool = style.JSON,
) -> None:
    """Replay labelled declarations through the engine, in time order, as in service.

    Closed loop by default: the engine selects its budget (plus random audits) and only
    those declarations' labels come back, after the delay. The engine is the worker's
    (the settings, VIGIE_ENGINE__*), with the options given. Records are read and
    validated as vigie replay reads them; rejected ones are written as dead letters to
    the --rejects file, and when most are rejected the command stops with status 1.
    """
    from vigie.evaluation import compare, metrics, prequential
    from vigie.evaluation.comparison import run_baselines
    from vigie.evaluation.injection import inject as inject_frauds
    from vigie.evaluation.injection import parse_specs
    from vigie.evaluation.metrics import seed_spread
    from vigie.evaluation.protocol import Window
    from vigie.model.engine import RiskEngine
    from vigie.settings import get_settings

    try:
        specs = parse_specs(inject) if inject else ()
    except ValueError as exc:
        raise output.CommandError(f"--inject: {exc}") from exc
    delay = parse_duration(label_delay)
    settings = get_settings()
    rejects = rejects or default_rejects(settings)
    examples, rejections = read_examples(files, mapping, controls, truth, rejects)
    _stop_if_mostly_rejected(len(examples), rejections, files, mapping, rejects)
    window = Window(
        start.replace(tzinfo=UTC) if start else None,
        end.replace(tzinfo=UTC) + timedelta(days=1) if end else None,
    )
    if window.end is not None:
        examples = [e for e in examples if e.declaration.lodged_at < window.end]
    examples = examples[:limit] if limit else examples
    given = {"budget": budget, "audit_share": audit_share, "seed": seed}
    options = settings.engine.options() | {k: v for k, v in given.items() if v is not None}
    if specs:
        examples = inject_frauds(examples, specs, options["seed"], keep_labels)
    replay = partial(
        prequential,
        label_delay=delay,
        start=window.start,
        end=window.end,
        full_information=full_information,
    )
    engine = RiskEngine(**options)
    trace = replay(_progress(examples, as_json), engine)
    report = metrics(trace, budget=options["budget"])
    if baselines:
        columns = run_baselines(
            examples,
            trace.audits,
            budget=options["budget"],
            label_delay=delay,
            window=window,
            full_information=full_information,
        )
        report["baselines"] = compare(report, trace, columns, options["budget"])
    if seeds > 1:
        others = [
            metrics(
                replay(examples, RiskEngine(**(options | {"seed": options["seed"] + k}))),
                budget=options["budget"],
            )["selection"]
            for k in range(1, seeds)
        ]
        report["seeds"] = seed_spread(
            [report["selection"], *others], [options["seed"] + k for k in range(seeds)]
        )
    report["injected"] = [f"{s.kind}:{s.share:g}:{s.low:g}-{s.high:g}" for s in specs]
    report["keep_labels"] = keep_labels if specs else None
    report["rejected"] = {"count": rejections.count, "by_reason": dict(rejections.reasons),
                          "file": str(rejects) if rejections.count else None}  # fmt: skip
    report["engine"] = {k: options[k] for k in ("budget", "audit_share", "seed")}
    report["label_delay_days"] = round(delay.total_seconds() / 86_400, 4)
    report["memory"] = {"pending_declarations": engine.n_pending}
    if as_json:
        output.emit(report, as_json=True)
    else:
        from vigie.cli.evaluate_view import show

        show(report)


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
