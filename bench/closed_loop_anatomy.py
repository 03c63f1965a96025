"""Where the closed loop's precision comes from: what was known of each declaration's
template when the engine chose.

customs-kr's rows are copies of templates (the same HS6, origin, tax type, declared value
and net mass; docs/evaluation.md). This replays the closed loop with ``vigie evaluate``'s
:func:`~vigie.evaluation.protocol.prequential` (labels only for the engine's selections,
7 days late), then follows the same labels back to their templates, and sorts every measured
declaration by what the labels returned so far said of its template:

- ``known fraud``: an infraction of the template had come back;
- ``known clean``: results had come back, none an infraction;
- ``seen``: the template had been declared before, never inspected (or not back yet);
- ``first time``: never declared before.

For each class: the declarations, their fraud rate, the engine's targeted selections and
their precision. Then two ceilings of the selected set's precision given the same labels:
every known-fraud infraction caught by a perfect exploitation, the other targeted slots
at the precision the engine's exploration reached (the ``seen`` class), or at its best
class (``first time``), the random audits as they were. They bound what a better use of
the returned labels could reach; a different exploration would have returned other labels.

Usage::

    PYTHONPATH=build/compiled .venv/bin/python bench/closed_loop_anatomy.py [--seed 0]
"""

from __future__ import annotations

import argparse
import heapq
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from vigie.cli.evaluate import read_examples
from vigie.contracts.schemas import Declaration
from vigie.evaluation.protocol import prequential
from vigie.model.engine import RiskEngine
from vigie.settings import EngineSettings

CUSTOMS_KR = Path(__file__).resolve().parents[2] / "shared" / "data" / "customs-kr"
CLASSES = ("known fraud", "known clean", "seen", "first time")


def template(decl: Declaration) -> tuple[Any, ...]:
    """What customs-kr's copies of one template share."""
    tax = decl.attributes.get("tax_type")
    value, mass = round(decl.customs_value_eur, 2), round(decl.net_mass_kg, 3)
    return decl.commodity_code[:6], decl.origin, tax, value, mass


def anatomy(seed: int, start: datetime, delay: timedelta) -> dict[str, Any]:
    files = [CUSTOMS_KR / "train.csv", CUSTOMS_KR / "valid.csv"]
    examples, _ = read_examples(files, "customs-kr", None, None, Path("/dev/null"))
    engine = RiskEngine(**(EngineSettings().options() | {"seed": seed}))
    trace = prequential(examples, engine, label_delay=delay)  # every import is measured
    columns = zip(*(trace.columns[name] for name in ("selected", "audited", "label")), strict=True)
    returned: list[tuple[datetime, int, tuple[Any, ...], bool]] = []
    labels: dict[tuple[Any, ...], list[bool]] = {}
    declared: set[tuple[Any, ...]] = set()
    rows, targeted, frauds, hits = Counter[str](), Counter[str](), Counter[str](), Counter[str]()
    audits = audit_hits = 0
    for seq, example in enumerate(examples):
        decl = example.declaration
        while returned and returned[0][0] <= decl.lodged_at:
            _, _, returned_key, label = heapq.heappop(returned)
            labels.setdefault(returned_key, []).append(label)
        key = template(decl)
        known, seen = labels.get(key), key in declared
        declared.add(key)
        if not example.is_import:
            continue
        selected, audited, label = next(columns)
        if selected and example.label is not None:  # its label comes back, as to the engine
            heapq.heappush(returned, (decl.lodged_at + delay, seq, key, bool(example.label)))
        if decl.lodged_at < start or example.label is None:
            continue
        kind = (
            ("known fraud" if any(known) else "known clean") if known
            else "seen" if seen else "first time"
        )  # fmt: skip
        fraud = label == 1.0
        rows[kind] += 1
        frauds[kind] += fraud
        if audited:
            audits += 1
            audit_hits += fraud
        elif selected:
            targeted[kind] += 1
            hits[kind] += fraud
    slots = sum(targeted.values())
    exploit = frauds["known fraud"]

    def summary(kind: str) -> dict[str, Any]:
        return {
            "declarations": rows[kind],
            "fraud_rate": rate(frauds[kind], rows[kind]),
            "targeted": targeted[kind],
            "precision": rate(hits[kind], targeted[kind]),
            "frauds_caught": hits[kind],
            "frauds": frauds[kind],
        }

    return {
        "seed": seed,
        "classes": {kind: summary(kind) for kind in CLASSES},
        "audits": audits,
        "audit_precision": rate(audit_hits, audits),
        "precision": rate(sum(hits.values()) + audit_hits, slots + audits),
        "precision_targeted": rate(sum(hits.values()), slots),
        "ceiling_exploring_as_seen": ceiling(
            exploit, slots, audits, audit_hits, hits["seen"] / max(targeted["seen"], 1)
        ),
        "ceiling_exploring_as_first_time": ceiling(
            exploit, slots, audits, audit_hits, hits["first time"] / max(targeted["first time"], 1)
        ),
    }


def ceiling(exploit: int, slots: int, audits: int, audit_hits: int, explore: float) -> float:
    """The selected set's precision if the ``slots`` targeted selections caught every one of
    the ``exploit`` known-fraud infractions first, and the other slots were right at the
    rate ``explore``; the audits as they were.

    >>> ceiling(exploit=250, slots=400, audits=80, audit_hits=20, explore=0.25)
    0.641
    """
    caught = min(exploit, slots) + max(slots - exploit, 0) * explore
    return round((caught + audit_hits) / (slots + audits), 3)


def rate(hits: int, n: int) -> float | None:
    """``hits / n`` to three decimals (None for no declaration)."""
    return round(hits / n, 3) if n else None


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seed", type=int, default=0, help="The engine's seed (its audits).")
    parser.add_argument("--from", dest="start", default="2021-01-01")
    parser.add_argument("--delay-days", type=float, default=7.0)
    args = parser.parse_args()
    start = datetime.fromisoformat(args.start).replace(tzinfo=UTC)
    result = anatomy(args.seed, start, timedelta(days=args.delay_days))
    print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())


if __name__ == "__main__":
    main()
