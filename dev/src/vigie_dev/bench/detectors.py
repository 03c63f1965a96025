"""The detectors alone: one RiskEngine in process, no Kafka, as ``bench/bench_engine.py``.

Per declaration, the control results due by its lodging time are learnt
(``learn_control``), then ``score_one`` and ``learn_one``; a ``--label-share`` of the
declarations (6 % by default: about what service inspects, budget plus audits) get a
control result 7 days after lodging, an infraction when the generator made them
fraudulent. Only the engine's calls are timed: reading and decoding the backlog file is
not. Whatever ``score_one`` returns is left alone. Run as its own process::

    python -m vigie_dev.bench.detectors --backlog FILE --n 50000 [--label-share 0.06]

prints one JSON object: declarations, seconds (engine calls), per_s, score_learn_per_s
(``score_one`` + ``learn_one`` only), controls_learnt, peak_rss_kb.
"""

from __future__ import annotations

import argparse
import heapq
import random
import resource
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson

from vigie.contracts.codec import decode
from vigie.contracts.schemas import ControlResult, Declaration
from vigie.settings import Settings
from vigie_dev.bench.backlog import Backlog

LABEL_DELAY = timedelta(days=7)


def control_for(decl: Declaration, fraud: bool) -> ControlResult:
    """The inspection outcome bench_engine.py reveals for a controlled declaration."""
    return ControlResult(
        declaration_id=decl.declaration_id,
        controlled_at=decl.lodged_at + LABEL_DELAY,
        outcome="infraction" if fraud else "compliant",
        selection="other",
        selection_probability=1.0,
    )


def run(backlog: Backlog, n: int, label_share: float, seed: int) -> dict[str, Any]:
    """Score then learn ``n`` declarations of ``backlog`` with one engine; the figures."""
    from vigie.model.engine import RiskEngine

    engine = RiskEngine(**Settings().engine.options())
    rng = random.Random(seed)
    due: list[tuple[float, int, ControlResult]] = []
    clock = time.perf_counter
    controls_time = score_learn_time = 0.0
    learnt = count = 0
    for seq, line in enumerate(backlog.lines(n)):
        decl = decode(Declaration, line.value)
        now = decl.lodged_at.timestamp()
        t0 = clock()
        while due and due[0][0] <= now:
            learnt += engine.learn_control(heapq.heappop(due)[2])
        t1 = clock()
        engine.score_one(decl)
        engine.learn_one(decl)
        t2 = clock()
        controls_time += t1 - t0
        score_learn_time += t2 - t1
        count += 1
        if rng.random() < label_share:
            control = control_for(decl, line.fraud)
            heapq.heappush(due, (now + LABEL_DELAY.total_seconds(), seq, control))
    seconds = controls_time + score_learn_time
    return {
        "declarations": count,
        "label_share": label_share,
        "controls_learnt": learnt,
        "seconds": round(seconds, 3),
        "per_s": round(count / seconds, 1) if seconds else None,
        "score_learn_per_s": round(count / score_learn_time, 1) if score_learn_time else None,
        "peak_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--backlog", type=Path, required=True)
    parser.add_argument("--n", type=int, required=True)
    parser.add_argument("--label-share", type=float, default=0.06)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    meta = orjson.loads(args.backlog.with_suffix(".json").read_bytes())
    result = run(Backlog(args.backlog, meta), args.n, args.label_share, args.seed)
    print(orjson.dumps(result).decode())


if __name__ == "__main__":
    main()
