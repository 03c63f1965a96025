"""How well each unsupervised detector separates the frauds, prequentially.

Streams declarations in event-time order through ``score_one`` then ``learn_one`` of the
valuation and atypicality detectors (test-then-train) and reports:

- on generated data (``vigie_dev.generator.generate``): the AUC of each detector's score per
  injected typology against the clean declarations, and the share of under-valuations
  with a gap above 50 % that rank in the top 5 % by valuation score;
- on customs-kr train (``--customs-kr``): the AUC of each score against the Fraud label
  (every row was inspected) and against critical fraud; informative only, the data are
  CTGAN-synthesised and their labels weakly tied to prices.

The result is one JSON object on stdout; nothing is asserted (see
tests/unit/test_detector_quality.py for the asserted targets).

Usage::

    .venv/bin/python bench/eval_detectors.py [--n 100000] [--seed 7] [--customs-kr]
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import orjson

from vigie.contracts.codec import decode_object
from vigie.contracts.schemas import Declaration
from vigie.ingest.mappings import load_mapping
from vigie.model.atypicality import PAIRS, AtypicalityDetector
from vigie.model.valuation import ValuationDetector
from vigie_dev.generator import generate

CUSTOMS_KR = Path(__file__).resolve().parents[2] / "shared" / "data" / "customs-kr" / "train.csv"


def auc(positives: Sequence[float], negatives: Sequence[float]) -> float:
    """Area under the ROC curve (Mann-Whitney, ties counted half).

    >>> auc([0.9, 0.8], [0.1, 0.8])
    0.875
    """
    ranked = sorted([(s, 1) for s in positives] + [(s, 0) for s in negatives])
    rank_sum, i = 0.0, 0
    while i < len(ranked):
        j = i
        while j < len(ranked) and ranked[j][0] == ranked[i][0]:
            j += 1
        average = (i + j + 1) / 2.0
        rank_sum += average * sum(label for _, label in ranked[i:j])
        i = j
    n_pos, n_neg = len(positives), len(negatives)
    return (rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)


def prequential(declarations: Iterable[Declaration]) -> list[dict[str, Any]]:
    """Score then learn every declaration; one row of scores per declaration."""
    valuation, atypicality = ValuationDetector(), AtypicalityDetector()
    rows = []
    for decl in declarations:
        v = valuation.score_one(decl)
        a = atypicality.score_one(decl)
        valuation.learn_one(decl)
        atypicality.learn_one(decl)
        weights = {c.name: c.weight for c in a.contributions}
        rows.append({"valuation": v.score, "atypicality": a.score, **weights})
    return rows


def generated_report(n: int, seed: int) -> dict[str, Any]:
    items = list(generate(n, seed=seed))
    rows = prequential(item.declaration for item in items)
    truths = [item.truth for item in items]
    clean = [i for i, t in enumerate(truths) if t.typology is None]
    typologies = sorted({t.typology for t in truths if t.typology is not None})
    report: dict[str, Any] = {"declarations": n, "seed": seed, "auc": {}}
    for typology in typologies:
        frauds = [i for i, t in enumerate(truths) if t.typology == typology]
        report["auc"][typology] = {"count": len(frauds)} | {
            name: round(
                auc(
                    [rows[i].get(name, 0.0) for i in frauds],
                    [rows[i].get(name, 0.0) for i in clean],
                ),
                3,
            )
            for name in ("valuation", "atypicality", *PAIRS)
        }
    report["under_valuation_gap50_top5"] = top_share(rows, truths)
    return report


def top_share(
    rows: list[dict[str, Any]], truths: list[Any], budget: float = 0.05
) -> dict[str, Any]:
    """Share of under-valuations with gap > 50 % ranked in the top ``budget`` by valuation."""
    order = sorted(range(len(rows)), key=lambda i: rows[i]["valuation"], reverse=True)
    top = set(order[: int(budget * len(rows))])
    big = [i for i, t in enumerate(truths) if t.typology == "under_valuation" and t.gap > 0.5]
    caught = sum(1 for i in big if i in top)
    return {"frauds": len(big), "in_top": caught, "share": round(caught / max(len(big), 1), 3)}


def customs_kr_report() -> dict[str, Any]:
    if not CUSTOMS_KR.is_file():
        sys.exit(f"customs-kr not found at {CUSTOMS_KR} (expected ../shared/data/customs-kr/)")
    mapping = load_mapping("customs-kr")
    labelled = []
    with CUSTOMS_KR.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            declaration, control = mapping.convert(row)
            assert control is not None
            labelled.append((decode_object(Declaration, declaration), control["outcome"]))
    labelled.sort(key=lambda pair: pair[0].lodged_at)
    rows = prequential(decl for decl, _ in labelled)
    report: dict[str, Any] = {"declarations": len(rows)}
    for target, positive in (("fraud", {"infraction", "critical"}), ("critical", {"critical"})):
        pos = [i for i, (_, outcome) in enumerate(labelled) if outcome in positive]
        neg = [i for i, (_, outcome) in enumerate(labelled) if outcome not in positive]
        report[f"auc_{target}"] = {
            name: round(auc([rows[i][name] for i in pos], [rows[i][name] for i in neg]), 3)
            for name in ("valuation", "atypicality")
        }
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--customs-kr", action="store_true")
    args = parser.parse_args()
    result = {"generated": generated_report(args.n, args.seed)}
    if args.customs_kr:
        result["customs_kr"] = customs_kr_report()
    sys.stdout.write(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode() + "\n")


if __name__ == "__main__":
    main()
