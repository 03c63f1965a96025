"""A fingerprint of the engine's decisions: the sha1 of (risk, selected, reasons) per declaration.

Scores ``--n`` generated declarations (``vigie_dev.generator.generate``, ``--seed``) with
the engine of the settings (the defaults unless ``VIGIE_ENGINE__*`` says otherwise),
test-then-train, and learns the generator's control results 7 days after their
declarations were lodged. A change that keeps the maths must keep the fingerprint: run it
before and after a refactoring and compare the two lines.

    .venv/bin/python bench/engine_fingerprint.py --n 20000 --seed 7
"""

from __future__ import annotations

import argparse
import hashlib
import heapq
from datetime import timedelta

from vigie.contracts.schemas import ControlResult
from vigie.model.engine import RiskEngine
from vigie.settings import get_settings
from vigie_dev.generator import generate

DELAY = timedelta(days=7)


def fingerprint(n: int, seed: int) -> tuple[str, int, int]:
    """The sha1, the declarations selected and the controls learnt."""
    engine = RiskEngine(**get_settings().engine.options())
    digest = hashlib.sha1()
    queue: list[tuple[float, int, ControlResult]] = []
    selected = learnt = 0
    for seq, item in enumerate(generate(n, seed=seed)):
        decl = item.declaration
        now = decl.lodged_at.timestamp()
        while queue and queue[0][0] <= now:
            learnt += engine.learn_control(heapq.heappop(queue)[2])
        out = engine.score_one(decl)
        engine.learn_one(decl)
        reasons = tuple((r.code, r.text) for r in out.reasons)
        digest.update(repr((out.risk, out.selected, reasons)).encode())
        selected += out.selected
        if item.control is not None:
            heapq.heappush(queue, (now + DELAY.total_seconds(), seq, item.control))
    return digest.hexdigest(), selected, learnt


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    sha1, selected, learnt = fingerprint(args.n, args.seed)
    print(f"{sha1}  n={args.n} seed={args.seed} selected={selected} controls_learnt={learnt}")


if __name__ == "__main__":
    main()
