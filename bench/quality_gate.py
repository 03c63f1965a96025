"""The detection figures every change to the detectors must keep, in one command.

Runs the ``vigie evaluate`` protocol (score, then learn; labels 7 days late) on:

* customs-kr (train.csv then valid.csv, metrics from 2021-01-01, every label): issue 3
  asks precision@5 % >= 0.77 and precision@10 % >= 0.66;
* generated data (``--n`` declarations, seeds 3, 7 and 11, metrics from 15 January), once
  learning from the generator's control results ("ctl") and once from the engine's own
  selections only ("own", ``label_share`` 0.05): the share of injected under-valuations
  with a gap above 50 % that the engine selects (target 0.90), and the lowest recall of
  any typology in the top 5 % by risk (chance 0.05). Beside them, the naive baselines of
  ``vigie evaluate --baselines`` run on the same stream under the same label regime: for
  precision@5 % and for the big under-valuations in the top 5 %, the best baseline of the
  run and the ratio engine / baseline.

The engines are built from the settings (``VIGIE_ENGINE__*``; by default a 5 % budget,
1 % audits, seed 0). Each run goes in its own process (two at a time), so the figures come
back in about the time of the longest runs::

    .venv/bin/python bench/quality_gate.py --n 50000
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from vigie.evaluation import Example, compare, metrics, prequential
from vigie.evaluation.comparison import run_baselines
from vigie.evaluation.metrics import UNDER_VALUATION_GAP
from vigie.evaluation.protocol import Window
from vigie.model.engine import RiskEngine
from vigie.settings import get_settings

CUSTOMS_KR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "customs-kr"
DELAY = timedelta(days=7)
BIG = f"under_valuation_gap>{UNDER_VALUATION_GAP:g}"
"""The injected under-valuations hiding more than half of the value."""


def customs_kr() -> dict[str, Any]:
    import tempfile

    from vigie.cli.evaluate import read_examples

    files = [CUSTOMS_KR / "train.csv", CUSTOMS_KR / "valid.csv"]
    rejects = Path(tempfile.mkdtemp()) / "rejected.jsonl"
    examples, _ = read_examples(files, "customs-kr", None, None, rejects)
    began = time.perf_counter()
    trace = prequential(
        examples,
        RiskEngine(**get_settings().engine.options()),
        label_delay=DELAY,
        start=datetime(2021, 1, 1, tzinfo=UTC),
        full_information=True,
    )
    elapsed = time.perf_counter() - began
    risk = metrics(trace)["detectors"]["risk"]
    return {
        "run": "customs-kr",
        "p@5%": risk["precision@5%"],
        "p@10%": risk["precision@10%"],
        "auc": risk["auc"],
        "decl/s": len(examples) / elapsed,
    }


def generated(n: int, seed: int, label_share: float) -> dict[str, Any]:
    from vigie_dev.generator import generate

    examples = [Example.from_generated(item) for item in generate(n, seed=seed)]
    start, budget = datetime(2026, 1, 15, tzinfo=UTC), get_settings().engine.budget
    full_information = label_share >= 1.0
    began = time.perf_counter()
    trace = prequential(
        examples,
        RiskEngine(**get_settings().engine.options()),
        label_delay=DELAY,
        start=start,
        full_information=full_information,
    )
    elapsed = time.perf_counter() - began
    report = metrics(trace, budget=budget)
    typologies = report["typologies"]["risk"]
    worst = min(typologies.items(), key=lambda kv: kv[1]["recall_top"])
    baselines = compare(
        report,
        trace,
        run_baselines(
            examples,
            trace.audits,
            budget=budget,
            label_delay=DELAY,
            window=Window(start),
            full_information=full_information,
        ),
        budget,
    )
    at = f"precision@{budget * 100:g}%"
    precise = best(baselines, lambda b: b["ranking"][at])
    big = best(baselines, lambda b: b.get("kinds", {}).get(BIG, {}).get("recall_top"))
    return {
        "run": f"seed {seed} {'ctl' if full_information else 'own'}",
        "big_selected": typologies[BIG]["recall_selected"],
        "worst_typology": f"{worst[0]} {worst[1]['recall_top']:.3f}",
        "p@5%": report["detectors"]["risk"][at],
        "decl/s": n / elapsed,
        "selected share": report["selection"]["share"],
        "baseline_p@5%": f"{precise} {baselines[precise]['ranking'][at]:.3f}",
        "ratio_p@5%": baselines[precise]["ratio"][f"rank_{at}"],
        "big_top": typologies[BIG]["recall_top"],
        "baseline_big_top": f"{big} {baselines[big]['kinds'][BIG]['recall_top']:.3f}",
        "ratio_big_top": baselines[big]["ratio"][f"recall_top[{BIG}]"],
    }


def best(baselines: dict[str, Any], figure: Callable[[dict[str, Any]], float | None]) -> str:
    """The name of the baseline with the highest ``figure`` (None counts as lowest).

    >>> best({"a": {"x": 0.2}, "b": {"x": 0.5}, "c": {"x": None}}, lambda b: b["x"])
    'b'
    """
    return max(baselines, key=lambda name: figure(baselines[name]) or 0.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=50_000)
    parser.add_argument("--seeds", type=int, nargs="*", default=[3, 7, 11])
    parser.add_argument("--no-kr", action="store_true", help="skip customs-kr")
    args = parser.parse_args()
    with ProcessPoolExecutor(max_workers=2) as pool:
        jobs = [] if args.no_kr else [pool.submit(customs_kr)]
        for seed in args.seeds:
            for share in (1.0, 0.05):
                jobs.append(pool.submit(generated, args.n, seed, share))
        for job in jobs:
            row = job.result()
            print("  ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}"
                            for k, v in row.items()), flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
