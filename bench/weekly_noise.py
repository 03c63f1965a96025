"""How much of the lowest weekly precision is sampling noise alone.

A week of the closed loop holds a few dozen selections, so its precision is a binomial
draw around the engine's own, and the lowest of a dozen such weeks falls well below it
even when nothing changes from week to week. This reads the weeks of a ``vigie evaluate
--json`` result (their selected counts), draws each full week's precision as
``Binomial(selected, p) / selected`` for a constant ``p``, and prints how often no full
week falls under the bound, and the median lowest week. If the run's own weeks look like
those draws at its own precision, the weekly minimum says nothing of a collapse over
time: only the precision itself moves it.

Usage::

    vigie evaluate train.csv valid.csv -m customs-kr --from 2021-01-01 --json > run.json
    python bench/weekly_noise.py run.json [--bound 0.5] [--draws 20000]

>>> weeks = {"W1": {"selected": 40, "precision": 0.6}, "W2": {"selected": 2, "partial": True}}
>>> full_weeks(weeks)
[40]
>>> chance, median = no_week_under([40] * 12, 0.95, bound=0.5, draws=200)
>>> chance, median > 0.8
(1.0, True)
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
from pathlib import Path
from typing import Any

PRECISIONS = (0.60, 0.625, 0.65, 0.70, 0.75, 0.80)
"""The constant weekly precisions simulated, beside the run's own."""


def full_weeks(weeks: dict[str, dict[str, Any]]) -> list[int]:
    """The selected count of every full week (partial weeks left out, as in
    ``full_week_min_precision``)."""
    return [int(w["selected"]) for w in weeks.values() if not w.get("partial") and w["selected"]]


def no_week_under(
    selected: list[int], precision: float, *, bound: float, draws: int, seed: int = 0
) -> tuple[float, float]:
    """Over ``draws`` runs with every week at ``precision``: the share of runs with no week
    under ``bound``, and the median lowest week."""
    rng = random.Random(seed)
    lowest = []
    for _ in range(draws):
        lowest.append(min(sum(rng.random() < precision for _ in range(n)) / n for n in selected))
    return sum(m >= bound for m in lowest) / draws, statistics.median(lowest)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("result", type=Path, help="a `vigie evaluate --json` result")
    parser.add_argument("--bound", type=float, default=0.5)
    parser.add_argument("--draws", type=int, default=20_000)
    args = parser.parse_args()
    result = json.loads(args.result.read_text())
    selected = full_weeks(result["weeks"])
    own = float(result["selection"]["precision"])
    observed = result["selection"]["full_week_min_precision"]
    print(f"{len(selected)} full weeks, {min(selected)}-{max(selected)} selections each")
    print(f"this run: precision {own:.3f}, lowest full week {observed:.3f}")
    for p in sorted({round(own, 3), *PRECISIONS}):
        chance, median = no_week_under(selected, p, bound=args.bound, draws=args.draws)
        print(
            f"every week at {p:.3f}: no full week under {args.bound:g} in {chance:.0%} of "
            f"runs, lowest week {median:.3f} (median)"
        )


if __name__ == "__main__":
    main()
