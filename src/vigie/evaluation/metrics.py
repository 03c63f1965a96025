"""What an evaluation reports: the selection's figures, the ranking's, per week and per kind.

Selection figures (:func:`selection_metrics`) measure what was selected online: the
precision of the selected set and of its two parts (targeted controls, random audits),
the recall, the hit rate of targeted controls over random audits, the share of the frauds'
duty in the selected declarations, and the selected share. Ranking figures
(:func:`ranking_metrics`) measure a score: precision, recall and duty share in the top
1 %, 5 %, 10 % and at the budget, and ROC AUC. :func:`weekly` gives the selection and
ranking figures per ISO week so that a collapse over time shows; :func:`kind_recall` the
recall of each fraud kind at the budget.

>>> labels = np.array([1.0, 0.0, 1.0, 0.0, 1.0, 0.0])
>>> targeted = np.array([True, True, False, False, False, False])
>>> audited = np.array([False, False, True, False, False, False])
>>> duty = np.array([10.0, 0.0, 30.0, 0.0, 60.0, 0.0])
>>> m = selection_metrics(labels, targeted, audited, duty)
>>> m["precision"], m["precision_targeted"], m["recall"], m["duty_recovered"]
(0.6667, 0.5, 0.6667, 0.4)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any

import numpy as np

FRACTIONS: tuple[float, ...] = (0.01, 0.05, 0.10)
UNDER_VALUATION_GAP = 0.5
"""Under-valuations with a larger gap (1 - declared / true value) are reported apart."""


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


def top_mask(scores: np.ndarray, fraction: float) -> np.ndarray:
    """A boolean mask of the top ``fraction`` by score."""
    mask = np.zeros(len(scores), dtype=bool)
    if len(scores):
        mask[top_k(scores, fraction)] = True
    return mask


def _r(value: float | None) -> float | None:
    return None if value is None or not np.isfinite(value) else round(float(value), 4)


def _share_name(fraction: float) -> str:
    return f"{fraction * 100:g}%"


def ranking_metrics(
    scores: np.ndarray,
    labels: np.ndarray,
    recovered: np.ndarray,
    fractions: Sequence[float] = FRACTIONS,
) -> dict[str, Any]:
    """Precision, recall, duty share at each inspected fraction, and ROC AUC."""
    out: dict[str, Any] = {}
    frauds = labels.sum()
    total = recovered[labels == 1].sum() if len(recovered) else 0.0
    for fraction in sorted(set(fractions)):
        chosen = top_k(scores, fraction)
        name = _share_name(fraction)
        out[f"precision@{name}"] = _r(float(labels[chosen].mean()))
        out[f"recall@{name}"] = _r(float(labels[chosen].sum() / frauds)) if frauds else None
        if total > 0:
            hit = recovered[chosen][labels[chosen] == 1].sum()
            out[f"revenue@{name}"] = _r(float(hit / total))
    out["auc"] = _r(auc(scores, labels))
    return out


def selection_metrics(
    labels: np.ndarray, targeted: np.ndarray, audited: np.ndarray, duty: np.ndarray
) -> dict[str, Any]:
    """The figures of an online selection (targeted controls plus random audits)."""
    selected = targeted | audited
    frauds = labels.sum()
    fraud_duty = duty[labels == 1].sum()
    p_targeted = float(labels[targeted].mean()) if targeted.any() else None
    p_audits = float(labels[audited].mean()) if audited.any() else None
    return {
        "n": len(labels),
        "frauds": int(frauds),
        "selected": int(selected.sum()),
        "share": _r(float(selected.mean())) if len(labels) else None,
        "share_targeted": _r(float(targeted.mean())) if len(labels) else None,
        "precision": _r(float(labels[selected].mean())) if selected.any() else None,
        "precision_targeted": _r(p_targeted),
        "precision_audits": _r(p_audits),
        "hit_ratio": _r(p_targeted / p_audits) if p_targeted is not None and p_audits else None,
        "recall": _r(float(labels[selected].sum() / frauds)) if frauds else None,
        "duty_recovered": _r(float(duty[selected & (labels == 1)].sum() / fraud_duty))
        if fraud_duty > 0
        else None,
    }


def weekly(
    weeks: np.ndarray,
    labels: np.ndarray,
    targeted: np.ndarray,
    audited: np.ndarray,
    duty: np.ndarray,
    risk: np.ndarray,
    budget: float,
) -> dict[str, dict[str, Any]]:
    """The selection figures, and the ranking's precision at the budget and AUC, per ISO
    week (``2021-W03``)."""
    out: dict[str, dict[str, Any]] = {}
    for week in sorted(set(weeks.tolist())):
        m = weeks == week
        row = selection_metrics(labels[m], targeted[m], audited[m], duty[m])
        ranking = ranking_metrics(risk[m], labels[m], duty[m], (budget,))
        row[f"rank_precision@{_share_name(budget)}"] = ranking[f"precision@{_share_name(budget)}"]
        row["rank_auc"] = ranking["auc"]
        out[str(week)] = row
    return out


def partial_weeks(weeks: Iterable[str], days: np.ndarray) -> list[str]:
    """The ISO weeks (``2021-W03``) that the measured days, ordinals of UTC dates from the
    first to the last declaration measured, do not cover whole: a run from Friday
    1 January 2021 begins with three days of ``2020-W53``.

    >>> from datetime import date
    >>> days = np.array([date(2021, 1, 1).toordinal(), date(2021, 1, 13).toordinal()])
    >>> partial_weeks(["2020-W53", "2021-W01", "2021-W02"], days)
    ['2020-W53', '2021-W02']
    """
    if not len(days):
        return []
    first, last = int(days.min()), int(days.max())
    out = []
    for week in weeks:
        year, number = week.split("-W")
        monday = date.fromisocalendar(int(year), int(number), 1).toordinal()
        if monday < first or monday + 6 > last:
            out.append(week)
    return out


def week_extremes(weeks: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The lowest weekly precision (of every week, and of the weeks measured whole), and
    the range of the weekly selected share."""

    def values(name: str, full_only: bool = False) -> list[float]:
        return [
            w[name]
            for w in weeks.values()
            if w[name] is not None and not (full_only and w.get("partial"))
        ]

    precision, share = values("precision"), values("share")
    return {
        "week_min_precision": min(precision) if precision else None,
        "full_week_min_precision": min(values("precision", full_only=True), default=None),
        "week_min_precision_targeted": min(values("precision_targeted"), default=None),
        "week_share_min": min(share) if share else None,
        "week_share_max": max(share) if share else None,
    }


SPREAD_FIGURES: tuple[str, ...] = (
    "precision",
    "precision_targeted",
    "recall",
    "duty_recovered",
    "full_week_min_precision",
)
"""The selection figures whose spread over the engine's seeds is reported."""


def seed_spread(selections: Sequence[dict[str, Any]], seeds: Sequence[int]) -> dict[str, Any]:
    """Each selection figure of runs that differ only by the engine's seed (its random
    audits, hence what it learns in the closed loop): the values, lowest, median, highest.

    >>> spread = seed_spread([{"precision": 0.62}, {"precision": 0.60}, {"precision": 0.63}],
    ...     [0, 1, 2])
    >>> spread["seeds"], spread["precision"]
    ([0, 1, 2], {'values': [0.62, 0.6, 0.63], 'min': 0.6, 'median': 0.62, 'max': 0.63})
    """
    out: dict[str, Any] = {"seeds": list(seeds)}
    for name in SPREAD_FIGURES:
        values = [s.get(name) for s in selections]
        known = [v for v in values if v is not None]
        out[name] = {
            "values": values,
            "min": min(known) if known else None,
            "median": _r(float(np.median(known))) if known else None,
            "max": max(known) if known else None,
        }
    return out


def kind_groups(typologies: Sequence[str | None], gaps: np.ndarray) -> dict[str, np.ndarray]:
    """A mask per fraud kind (typology); large under-valuations also apart; with several
    kinds, ``any`` of them."""
    kinds = np.array(typologies, dtype=object)
    groups: dict[str, np.ndarray] = {
        str(t): kinds == t for t in sorted({t for t in typologies if t is not None})
    }
    several = len(groups) > 1
    if "under_valuation" in groups and gaps.any():
        big = groups["under_valuation"] & (gaps > UNDER_VALUATION_GAP)
        groups[f"under_valuation_gap>{UNDER_VALUATION_GAP:g}"] = big
    if several:
        groups["any"] = np.array([t is not None for t in typologies], dtype=bool)
    return groups


def kind_recall(
    groups: dict[str, np.ndarray],
    scores: np.ndarray,
    budget: float,
    selected: np.ndarray | None = None,
) -> dict[str, Any]:
    """For each kind: its count, the share of it in the top ``budget`` by ``scores``, the
    AUC of ``scores`` for it against the rows of no kind, and (with ``selected``) the
    share of it the online selection caught."""
    chosen = top_mask(scores, budget)
    clean = ~np.any(np.array(list(groups.values())), axis=0) if groups else None
    out: dict[str, Any] = {}
    for name, mask in groups.items():
        row: dict[str, Any] = {
            "n": int(mask.sum()),
            "recall_top": _r(float(chosen[mask].mean())) if mask.any() else None,
        }
        if clean is not None:
            both = mask | clean
            row["auc"] = _r(auc(scores[both], mask[both].astype(float)))
        if selected is not None:
            row["recall_selected"] = _r(float(selected[mask].mean())) if mask.any() else None
        out[name] = row
    return out


def ratio(engine: float | None, baseline: float | None) -> float | None:
    """engine / baseline, None when either is unknown or the baseline is 0.

    >>> ratio(0.6, 0.4), ratio(0.6, 0.0), ratio(None, 0.4)
    (1.5, None, None)
    """
    if engine is None or baseline is None or baseline == 0:
        return None
    return round(engine / baseline, 3)
