"""Prequential evaluation: score, then learn, with labels revealed only after a delay.

The protocol (:func:`prequential`) walks the declarations in lodging order. Before
scoring a declaration it reveals every control result whose reveal time (lodging time
plus ``label_delay``) has come; it scores the declaration, then lets the engine learn it.
Nothing computed for a declaration depends on data later than it: labels arrive only
through :meth:`RiskEngine.learn_control`, and the engine's statistics learn only from
what it was given. With ``label_share < 1`` a label is revealed only when the engine
selected the declaration (threshold or random audit), as in service.

:func:`metrics` then measures the declarations lodged from ``start`` on: precision and
recall when the top 1 %, 5 % or 10 % by score are inspected, ROC AUC, the share of the
recovered duty captured, for the final risk and for each detector alone; with ground
truth, the recall of each fraud typology at the budget.

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
>>> trace = prequential([example(i) for i in range(2000)], RiskEngine(),
...                     label_delay=timedelta(days=7))
>>> report = metrics(trace, budget=0.05)
>>> report["n"], report["base_rate"], report["labels_revealed"]
(2000, 0.025, 1832)
>>> report["detectors"]["risk"]["precision@1%"], round(report["detectors"]["risk"]["auc"], 2)
(1.0, 0.98)
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NamedTuple, Protocol

import numpy as np

from vigie.contracts.schemas import ControlResult, Declaration
from vigie.model.engine import RiskEngine

FRACTIONS: tuple[float, ...] = (0.01, 0.05, 0.10)
DETECTORS: tuple[str, ...] = ("risk", "supervised", "valuation", "atypicality")
UNDER_VALUATION_GAP = 0.5
"""Under-valuations with a larger gap (1 - declared / true value) are reported apart."""


class _Generated(Protocol):
    @property
    def declaration(self) -> Declaration: ...
    @property
    def control(self) -> ControlResult | None: ...
    @property
    def truth(self) -> Any: ...


class Example(NamedTuple):
    """A declaration, its inspection (if any) and its ground truth (if known)."""

    declaration: Declaration
    control: ControlResult | None
    fraud: bool | None = None
    """Ground truth for the metrics; None: the control's outcome, or unknown."""
    recovered: float = 0.0
    typology: str | None = None
    gap: float = 0.0

    @classmethod
    def from_generated(cls, item: _Generated) -> Example:
        """From a generator item: its control, and its truth for the metrics."""
        truth = item.truth
        return cls(
            item.declaration,
            item.control,
            truth.typology is not None,
            float(truth.duty_gap_eur),
            truth.typology,
            float(truth.gap),
        )

    @property
    def label(self) -> bool | None:
        if self.fraud is not None:
            return self.fraud
        return None if self.control is None else self.control.is_fraud


@dataclass
class Trace:
    """Per-declaration outputs of a prequential run (declarations from ``start`` on)."""

    columns: dict[str, list[Any]] = field(
        default_factory=lambda: {
            name: [] for name in (*DETECTORS, "label", "recovered", "selected", "typology", "gap")
        }
    )
    scored: int = 0
    revealed: int = 0
    unknown_controls: int = 0
    seconds: float = 0.0

    def add(self, example: Example, risk: Sequence[float], selected: bool) -> None:
        cols = self.columns
        for name, value in zip(DETECTORS, risk, strict=True):
            cols[name].append(value)
        label = example.label
        cols["label"].append(np.nan if label is None else float(label))
        recovered = example.recovered
        if not recovered and example.control is not None:
            recovered = example.control.recovered_eur
        cols["recovered"].append(recovered)
        cols["selected"].append(selected)
        cols["typology"].append(example.typology)
        cols["gap"].append(example.gap)


def _control_for(example: Example, selection: str | None, share: float) -> ControlResult | None:
    """The control result revealed to the engine, with its selection stated."""
    control = example.control
    if share >= 1.0:
        if control is not None and control.selection_probability is None:
            return control.model_copy(update={"selection_probability": 1.0})
        return control
    if control is None:
        label = example.label
        if label is None:
            return None
        control = ControlResult(
            declaration_id=example.declaration.declaration_id,
            controlled_at=example.declaration.lodged_at,
            outcome="infraction" if label else "compliant",
            recovered_eur=example.recovered,
            selection="other",
        )
    return control.model_copy(update={"selection": selection, "selection_probability": None})


def prequential(
    examples: Iterable[Example],
    engine: RiskEngine,
    *,
    label_delay: timedelta,
    start: datetime | None = None,
    label_share: float = 1.0,
) -> Trace:
    """Run the test-then-train protocol; ``examples`` must be in lodging order."""
    trace = Trace()
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
        if label_share >= 1.0 or assessment.selected:
            revealed = _control_for(example, assessment.selection, label_share)
            if revealed is not None:
                heapq.heappush(queue, (decl.lodged_at + label_delay, seq, revealed))
        if start is None or decl.lodged_at >= start:
            outputs = (
                assessment.risk,
                assessment.supervised_probability,
                assessment.valuation.score,
                assessment.atypicality.score,
            )
            trace.add(example, outputs, assessment.selected)
    trace.seconds = time.perf_counter() - started
    return trace


def auc(scores: np.ndarray, labels: np.ndarray) -> float | None:
    """ROC AUC with ties counted half (None without both classes).

    >>> auc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0.0, 0.0, 1.0, 1.0]))
    0.75
    """
    positives = int(labels.sum())
    negatives = len(labels) - positives
    if positives == 0 or negatives == 0:
        return None
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    average_rank = ends - (counts - 1) / 2.0
    ranks = average_rank[inverse]
    u = ranks[labels == 1].sum() - positives * (positives + 1) / 2.0
    return float(u / (positives * negatives))


def top_k(scores: np.ndarray, fraction: float) -> np.ndarray:
    """Indices of the top ``fraction`` by score (ties: earliest first).

    >>> top_k(np.array([0.2, 0.9, 0.5, 0.9]), 0.5).tolist()
    [1, 3]
    """
    k = max(1, round(fraction * len(scores)))
    return np.argsort(-scores, kind="stable")[:k]


def ranking_metrics(
    scores: np.ndarray, labels: np.ndarray, recovered: np.ndarray
) -> dict[str, Any]:
    """Precision, recall, revenue share at each inspected fraction, and ROC AUC."""
    out: dict[str, Any] = {}
    frauds = labels.sum()
    total_recovered = recovered.sum()
    for fraction in FRACTIONS:
        chosen = top_k(scores, fraction)
        name = f"{fraction * 100:g}%"
        out[f"precision@{name}"] = round(float(labels[chosen].mean()), 4)
        out[f"recall@{name}"] = round(float(labels[chosen].sum() / frauds), 4) if frauds else None
        if total_recovered > 0:
            out[f"revenue@{name}"] = round(float(recovered[chosen].sum() / total_recovered), 4)
    score_auc = auc(scores, labels)
    out["auc"] = None if score_auc is None else round(score_auc, 4)
    return out


def typology_recall(trace: Trace, scores: np.ndarray, budget: float) -> dict[str, Any]:
    """For each typology: the share of its declarations in the top ``budget``, and the
    share the engine selected online."""
    cols = trace.columns
    typologies = np.array(cols["typology"], dtype=object)
    chosen = np.zeros(len(scores), dtype=bool)
    chosen[top_k(scores, budget)] = True
    selected = np.array(cols["selected"], dtype=bool)
    gaps = np.array(cols["gap"], dtype=float)
    groups: dict[str, np.ndarray] = {
        str(t): typologies == t for t in sorted({t for t in typologies if t is not None})
    }
    if "under_valuation" in groups:
        big = groups["under_valuation"] & (gaps > UNDER_VALUATION_GAP)
        groups[f"under_valuation_gap>{UNDER_VALUATION_GAP:g}"] = big
    return {
        name: {
            "n": int(mask.sum()),
            "recall_top": round(float(chosen[mask].mean()), 4) if mask.any() else None,
            "recall_selected": round(float(selected[mask].mean()), 4) if mask.any() else None,
        }
        for name, mask in groups.items()
    }


def metrics(trace: Trace, budget: float = 0.05) -> dict[str, Any]:
    """The evaluation report: one JSON-ready mapping."""
    cols = trace.columns
    labels_all = np.array(cols["label"], dtype=float)
    known = ~np.isnan(labels_all)
    labels = labels_all[known]
    recovered = np.array(cols["recovered"], dtype=float)[known]
    selected = np.array(cols["selected"], dtype=bool)
    report: dict[str, Any] = {
        "n": len(labels_all),
        "labelled": int(known.sum()),
        "base_rate": round(float(labels.mean()), 4) if len(labels) else None,
        "detectors": {},
        "selection": {
            "share": round(float(selected.mean()), 4) if len(selected) else None,
            "precision": round(float(labels_all[selected & known].mean()), 4)
            if (selected & known).any()
            else None,
        },
        "scored": trace.scored,
        "labels_revealed": trace.revealed,
        "unknown_controls": trace.unknown_controls,
        "seconds": round(trace.seconds, 2),
        "throughput_per_s": round(trace.scored / trace.seconds, 1) if trace.seconds else None,
    }
    for name in DETECTORS:
        scores = np.array(cols[name], dtype=float)
        if len(labels):
            report["detectors"][name] = ranking_metrics(scores[known], labels, recovered)
        if any(t is not None for t in cols["typology"]):
            report.setdefault("typologies", {})[name] = typology_recall(trace, scores, budget)
    return report
