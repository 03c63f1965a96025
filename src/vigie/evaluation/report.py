"""The evaluation report: one JSON-ready mapping of the engine's figures and its baselines'.

:func:`metrics` measures a :class:`Trace`; :func:`compare` adds the baselines of the same
run, each with the ratio engine / baseline of its comparable figures. Ranking figures
are computed over the measured declarations with a known label; the budget's share is
always among the fractions reported.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from vigie.evaluation.metrics import (
    FRACTIONS,
    kind_groups,
    kind_recall,
    partial_weeks,
    ranking_metrics,
    ratio,
    selection_metrics,
    week_extremes,
    weekly,
)
from vigie.evaluation.protocol import DETECTORS, Trace

SELECTION_RATIOS = ("precision", "precision_targeted", "recall", "duty_recovered")


def _columns(trace: Trace) -> dict[str, np.ndarray]:
    cols = trace.columns
    arrays = {name: np.array(cols[name], dtype=float) for name in (*DETECTORS, "recovered", "gap")}
    arrays["label"] = np.array(cols["label"], dtype=float)
    for name in ("selected", "targeted", "audited"):
        arrays[name] = np.array(cols[name], dtype=bool)
    arrays["week"] = np.array(cols["week"], dtype=object)
    arrays["day"] = np.array(cols["day"], dtype=np.int64)
    return arrays


def metrics(trace: Trace, budget: float = 0.05) -> dict[str, Any]:
    """The engine's figures: selection, ranking of each detector, per week, per kind."""
    a = _columns(trace)
    known = ~np.isnan(a["label"])
    labels = a["label"][known]
    duty = a["recovered"][known]
    fractions = (*FRACTIONS, budget)
    selection = selection_metrics(labels, a["targeted"][known], a["audited"][known], duty)
    weeks = weekly(
        a["week"][known],
        labels,
        a["targeted"][known],
        a["audited"][known],
        duty,
        a["risk"][known],
        budget,
    )
    for week in partial_weeks(weeks, a["day"]):
        weeks[week]["partial"] = True
    selection.update(week_extremes(weeks))
    selection["share_all"] = round(float(a["selected"].mean()), 4) if len(known) else None
    report: dict[str, Any] = {
        "label_regime": trace.regime,
        "n": len(a["label"]),
        "labelled": int(known.sum()),
        "base_rate": round(float(labels.mean()), 4) if len(labels) else None,
        "budget": budget,
        "selection": selection,
        "detectors": {},
        "weeks": weeks,
        "scored": trace.scored,
        "labels_revealed": trace.revealed,
        "unknown_controls": trace.unknown_controls,
        "seconds": round(trace.seconds, 2),
        "throughput_per_s": round(trace.scored / trace.seconds, 1) if trace.seconds else None,
    }
    groups = kind_groups([t for t, k in zip(trace.columns["typology"], known, strict=True) if k],
                         a["gap"][known])  # fmt: skip
    for name in DETECTORS:
        scores = a[name][known]
        if len(labels) and not np.isnan(scores).all():
            report["detectors"][name] = ranking_metrics(scores, labels, duty, fractions)
            if groups:
                selected = a["selected"][known] if name == "risk" else None
                kinds = kind_recall(groups, scores, budget, selected)
                report.setdefault("typologies", {})[name] = kinds
    return report


def compare(
    report: dict[str, Any],
    trace: Trace,
    baselines: dict[str, dict[str, np.ndarray]],
    budget: float,
) -> dict[str, Any]:
    """Each baseline's figures beside the engine's, with the ratios engine / baseline."""
    a = _columns(trace)
    known = ~np.isnan(a["label"])
    labels, duty = a["label"][known], a["recovered"][known]
    groups = kind_groups([t for t, k in zip(trace.columns["typology"], known, strict=True) if k],
                         a["gap"][known])  # fmt: skip
    engine_rank = report["detectors"].get("risk", {})
    engine_kinds = report.get("typologies", {}).get("risk", {})
    out: dict[str, Any] = {}
    for name, cols in baselines.items():
        scores = cols["score"][known]
        entry: dict[str, Any] = {}
        ratios: dict[str, Any] = {}
        if "targeted" in cols:
            sel = selection_metrics(labels, cols["targeted"][known], cols["audited"][known], duty)
            entry["selection"] = sel
            for key in SELECTION_RATIOS:
                ratios[key] = ratio(report["selection"][key], sel[key])
        ranking = ranking_metrics(scores, labels, duty, (*FRACTIONS, budget))
        entry["ranking"] = ranking
        at = f"precision@{budget * 100:g}%"
        ratios[f"rank_{at}"] = ratio(engine_rank.get(at), ranking[at])
        ratios["rank_auc"] = ratio(engine_rank.get("auc"), ranking["auc"])
        if groups:
            kinds = kind_recall(groups, scores, budget)
            entry["kinds"] = kinds
            for kind, row in kinds.items():
                mine = engine_kinds.get(kind, {})
                ratios[f"recall_top[{kind}]"] = ratio(mine.get("recall_top"), row["recall_top"])
        entry["ratio"] = ratios
        out[name] = entry
    return out
