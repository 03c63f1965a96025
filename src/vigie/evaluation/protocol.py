"""Prequential evaluation: score, then learn, with labels revealed only after a delay.

:func:`prequential` walks the declarations in lodging order. Before scoring one it reveals
every control result whose reveal time (the lodging time of its declaration plus
``label_delay``) has come; it scores the declaration, then lets the engine learn it.
Nothing computed for a declaration depends on data later than it: labels arrive only
through :meth:`RiskEngine.learn_control`.

Two label regimes:

- **closed loop** (the default, as in service): a label comes back only for a declaration
  the engine selected, targeted (``selection`` of the assessment) or random audit, as a
  :class:`ControlResult` with that selection;
- **full information** (``full_information=True``): every control result of the files is
  revealed, with inclusion probability 1.

The :class:`Trace` keeps, for the measured imports (lodged in ``[start, end)``), the
scores, the decision and the truth; and, for every declaration of the stream, whether
the engine audited it at random (the baselines learn from the same audits).

Examples
--------
Forty importers of shirts for three months, one of them declaring a third of the price,
every declaration controlled:

>>> import random
>>> from datetime import UTC
>>> from vigie.contracts.schemas import EXAMPLE_DECLARATION
>>> rng, start = random.Random(0), datetime(2026, 1, 1, tzinfo=UTC)
>>> def example(i: int) -> Example:
...     cheat = i % 40 == 7
...     decl = Declaration.model_validate(dict(EXAMPLE_DECLARATION, declaration_id=f"D{i}",
...         importer=f"IMP{i % 40}", lodged_at=start + timedelta(hours=i),
...         customs_value_eur=(800.0 if cheat else 2400.0) * rng.lognormvariate(0, 0.2)))
...     control = ControlResult(declaration_id=decl.declaration_id,
...         controlled_at=decl.lodged_at, selection="other",
...         outcome="infraction" if cheat else "compliant")
...     return Example(decl, control)
>>> stream = [example(i) for i in range(2000)]
>>> full = prequential(stream, RiskEngine(), label_delay=timedelta(days=7),
...                    full_information=True)
>>> full.revealed, full.scored
(1832, 2000)
>>> closed = prequential(stream, RiskEngine(), label_delay=timedelta(days=7))
>>> closed.revealed <= sum(closed.columns["selected"])
True
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from vigie.contracts.schemas import ControlResult, Declaration
from vigie.evaluation.examples import Example, duty
from vigie.model.assessment import Assessment
from vigie.model.engine import RiskEngine

DETECTORS: tuple[str, ...] = ("risk", "supervised", "valuation", "atypicality")
COLUMNS: tuple[str, ...] = (
    *DETECTORS,
    "label",
    "recovered",
    "selected",
    "targeted",
    "audited",
    "typology",
    "gap",
    "week",
    "day",
)
AUDIT = "random_audit"
"""The selection of a random audit; any other selection of a selected declaration is targeted."""

NAN = float("nan")
EVERY_LABEL = "full information: every label revealed"
CLOSED_LOOP = "closed loop: labels only for the declarations the engine selected"


@dataclass(frozen=True)
class Window:
    """The lodging times measured: from ``start`` (included) to ``end`` (excluded)."""

    start: datetime | None = None
    end: datetime | None = None

    def __contains__(self, decl: object) -> bool:
        assert isinstance(decl, Declaration)
        at = decl.lodged_at
        return (self.start is None or at >= self.start) and (self.end is None or at < self.end)


@dataclass
class Trace:
    """Per-declaration outputs of a prequential run (measured imports only), and the
    random audits of the whole stream."""

    columns: dict[str, list[Any]] = field(default_factory=lambda: {name: [] for name in COLUMNS})
    audits: list[bool] = field(default_factory=list)
    """For every declaration of the stream, in order: whether the engine audited it."""
    full_information: bool = False
    scored: int = 0
    revealed: int = 0
    unknown_controls: int = 0
    seconds: float = 0.0

    def add(
        self,
        example: Example,
        risk: Sequence[float],
        selected: bool,
        selection: str | None = None,
    ) -> None:
        """Record a measured declaration: its scores, the engine's decision, its truth."""
        cols = self.columns
        for name, value in zip(DETECTORS, risk, strict=True):
            cols[name].append(value)
        label = example.label
        cols["label"].append(float("nan") if label is None else float(label))
        cols["recovered"].append(duty(example))
        cols["selected"].append(selected)
        cols["targeted"].append(selected and selection != AUDIT)
        cols["audited"].append(selected and selection == AUDIT)
        cols["typology"].append(example.typology)
        cols["gap"].append(example.gap)
        year, week, _ = example.declaration.lodged_at.isocalendar()
        cols["week"].append(f"{year}-W{week:02d}")
        cols["day"].append(example.declaration.lodged_at.date().toordinal())

    @property
    def regime(self) -> str:
        return EVERY_LABEL if self.full_information else CLOSED_LOOP


def revealed_control(
    example: Example, assessment: Assessment, full_information: bool
) -> ControlResult | None:
    """The control result the engine receives for ``example``, or None when none comes
    back: in closed loop only a selected declaration with a known label is inspected; in
    full information every control result of the files comes back. The outcome is the
    example's label (an injected fraud replaces the file's outcome)."""
    label = example.label
    if label is None:
        return None
    decl = example.declaration
    control = example.control
    if full_information:
        if control is None:
            return None
        return control.model_copy(
            update={
                "outcome": _outcome(control, label),
                "selection_probability": control.selection_probability or 1.0,
            }
        )
    if not assessment.selected or assessment.selection is None:
        return None
    if control is None:
        control = ControlResult(
            declaration_id=decl.declaration_id,
            controlled_at=decl.lodged_at,
            outcome="infraction" if label else "compliant",
            recovered_eur=example.recovered,
            selection="other",
        )
    return control.model_copy(
        update={
            "outcome": _outcome(control, label),
            "selection": assessment.selection,
            "selection_probability": None,
        }
    )


def _outcome(control: ControlResult, label: bool) -> str:
    if label == control.is_fraud:
        return control.outcome
    return "infraction" if label else "compliant"


def prequential(
    examples: Iterable[Example],
    engine: RiskEngine,
    *,
    label_delay: timedelta,
    start: datetime | None = None,
    end: datetime | None = None,
    full_information: bool = False,
) -> Trace:
    """Run the test-then-train protocol; ``examples`` must be in lodging order."""
    trace = Trace(full_information=full_information)
    window = Window(start, end)
    queue: list[tuple[datetime, int, ControlResult]] = []
    started = time.perf_counter()
    for seq, example in enumerate(examples):
        decl = example.declaration
        while queue and queue[0][0] <= decl.lodged_at:
            control = heapq.heappop(queue)[2]
            trace.revealed += 1
            trace.unknown_controls += not engine.learn_control(control)
        assessment = engine.score_one(decl)
        engine.learn_one(decl)
        trace.scored += 1
        trace.audits.append(assessment.selected and assessment.selection == AUDIT)
        revealed = revealed_control(example, assessment, full_information)
        if revealed is not None:
            heapq.heappush(queue, (decl.lodged_at + label_delay, seq, revealed))
        if example.is_import and decl in window:
            outputs = (
                assessment.risk,
                getattr(assessment, "supervised_probability", NAN),
                assessment.valuation.score,
                assessment.atypicality.score,
            )
            trace.add(example, outputs, assessment.selected, assessment.selection)
    trace.seconds = time.perf_counter() - started
    return trace
