"""The detection figures every change to the detectors must keep, in one command.

Runs the ``vigie evaluate`` protocol (score, then learn; labels 7 days late) on:

* customs-kr (train.csv then valid.csv, metrics from 2021-01-01, every label): issue 3
  asks precision@5 % >= 0.77 and precision@10 % >= 0.66;
* generated data (``--n`` declarations, seeds 3, 7 and 11, metrics from 15 January), once
  learning from the generator's control results ("ctl") and once from the engine's own
  selections only ("own", ``label_share`` 0.05): the share of injected under-valuations
  with a gap above 50 % that the engine selects (target 0.90), and the lowest recall of
  any typology in the top 5 % by risk (chance 0.05).

The engines are built from the settings (``VIGIE_ENGINE__*``; by default a 5 % budget,
1 % audits, seed 0). Each run goes in its own process (two at a time), so the figures come
back in about the time of the longest runs::

    .venv/bin/python bench/quality_gate.py --n 50000
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from vigie.evaluation import Example, metrics, prequential
from vigie.model.engine import RiskEngine
from vigie.settings import get_settings

CUSTOMS_KR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "customs-kr"
DELAY = timedelta(days=7)


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
    began = time.perf_counter()
    trace = prequential(
        examples,
        RiskEngine(**get_settings().engine.options()),
        label_delay=DELAY,
        start=datetime(2026, 1, 15, tzinfo=UTC),
        full_information=label_share >= 1.0,
    )
    elapsed = time.perf_counter() - began
    report = metrics(trace, budget=get_settings().engine.budget)
    typologies = report["typologies"]["risk"]
    worst = min(typologies.items(), key=lambda kv: kv[1]["recall_top"])
    return {
        "run": f"seed {seed} {'ctl' if label_share >= 1.0 else 'own'}",
        "big_selected": typologies["under_valuation_gap>0.5"]["recall_selected"],
        "worst_typology": f"{worst[0]} {worst[1]['recall_top']:.3f}",
        "p@5%": report["detectors"]["risk"]["precision@5%"],
        "decl/s": n / elapsed,
        "selected share": report["selection"]["share"],
    }


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
