"""Where the engine's top budget goes on generated data, and why big under-valuations miss it.

The quality gate's generated-data figure is the share of the under-valuations hiding more
than half of the value that the engine catches. A robust z-score of the value catches more
of them in its top 5 %, and less fraud in all. This replays one seed as the gate does
(every control result of the generator revealed, 7 days late), then prints:

* per typology of the generator, its declarations and the share of them in the engine's
  top budget by risk (what the budget is shared between);
* per band of the valuation detector's score, the share of fraud among its declarations,
  the share of them in the top budget, and the big under-valuations in the band, caught or
  not: a band less fraudulent than the top budget's own precision is rightly left below
  it.

Usage::

    PYTHONPATH=build/compiled:dev/src .venv/bin/python bench/generated_top_budget.py \\
        [--n 50000] [--seed 3]

>>> rows = anatomy([0.9, 0.8, 0.1, 0.0], [0.9, 0.2, 0.5, 0.0],
...                ["under_valuation", None, "new_route", None], [0.6, 0, 0, 0], budget=0.5)
>>> rows["precision"], rows["typologies"]["under_valuation"], rows["bands"]["0.7-1.01"]
(0.5, (1, 1.0), (1, 1.0, 1.0, 1, 1))
"""

from __future__ import annotations

import argparse
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from vigie.evaluation.metrics import UNDER_VALUATION_GAP

BANDS = ((0.0, 0.13), (0.13, 0.2), (0.2, 0.4), (0.4, 0.7), (0.7, 1.01))
"""Bands of the valuation detector's score."""


def anatomy(
    risk: Sequence[float], valuation: Sequence[float], typology: Sequence[str | None],
    gap: Sequence[float | None], budget: float,
) -> dict[str, Any]:  # fmt: skip
    """The top ``budget`` by risk: its precision, each typology's (count, share in it), and
    per valuation band (count, fraud share, share in the top, big under-valuations, those
    of them in the top)."""
    scores, values = np.asarray(risk), np.asarray(valuation)
    kinds = np.asarray([t or "-" for t in typology])
    top = scores >= np.quantile(scores, 1.0 - budget)
    fraud = kinds != "-"
    big = (kinds == "under_valuation") & (np.asarray([g or 0.0 for g in gap]) > UNDER_VALUATION_GAP)
    counts, in_top = Counter(kinds.tolist()), Counter(kinds[top].tolist())
    bands = {}
    for low, high in BANDS:
        band = (values >= low) & (values < high)
        n = int(band.sum())
        if n:
            caught = int((band & big & top).sum())
            bands[f"{low:g}-{high:g}"] = (n, round(float(fraud[band].mean()), 3),
                                         round(float(top[band].mean()), 3),
                                         int((band & big).sum()), caught)  # fmt: skip
    return {
        "precision": round(float(fraud[top].mean()), 3),
        "typologies": {k: (n, round(in_top[k] / n, 3)) for k, n in counts.most_common()},
        "bands": bands,
    }


def main() -> None:
    from vigie.evaluation import Example, prequential
    from vigie.model.engine import RiskEngine
    from vigie.settings import get_settings
    from vigie_dev.generator import generate

    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--n", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()
    settings = get_settings().engine
    examples = [Example.from_generated(item) for item in generate(args.n, seed=args.seed)]
    trace = prequential(
        examples,
        RiskEngine(**settings.options()),
        label_delay=timedelta(days=7),
        start=datetime(2026, 1, 15, tzinfo=UTC),
        full_information=True,
    )
    columns = trace.columns
    rows = anatomy(columns["risk"], columns["valuation"], columns["typology"], columns["gap"],
                   settings.budget)  # fmt: skip
    print(f"seed {args.seed}, {len(columns['risk']):,} declarations measured, top "
          f"{settings.budget:.0%} by risk: precision {rows['precision']:.3f}")  # fmt: skip
    for kind, (n, share) in rows["typologies"].items():
        print(f"  {kind:24} {n:6,} declarations, {share:.3f} in the top")
    print("valuation score band: declarations, fraud share, share in the top, "
          "big under-valuations (in the top)")  # fmt: skip
    for band, (n, fraud, share, big, caught) in rows["bands"].items():
        print(f"  {band:9} {n:6,}  {fraud:.3f}  {share:.3f}  {big:4} ({caught})")


if __name__ == "__main__":
    main()
