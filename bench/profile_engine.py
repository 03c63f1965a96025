"""Where the risk engine's time goes: microseconds per declaration, part by part.

The bench_engine.py loop (score, learn, every label revealed 7 days late) with each part
of the engine wrapped in a timer: the figures are means over all declarations (a part
that runs only for some, such as learning a control, is spread over all of them). The
wrappers add about 0.2 us per call; compare parts within one run, the machine is shared.
It times the sources: compiled methods cannot be wrapped, and the compiled engine calls its
parts directly (``perf record`` on ``bench_engine.py`` with ``PYTHONPATH=build/compiled``
profiles the compiled engine, by C function). The engine is built from the settings.

    .venv/bin/python bench/profile_engine.py --n 30000 [--label-share 0.06]
"""

from __future__ import annotations

import argparse
import gc
import heapq
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

import vigie.model.engine as engine_module
from bench_engine import _stream
from vigie.model.engine import RiskEngine
from vigie.settings import get_settings

PARTS = {
    "_memory": {
        "read": "memory.read",
        "observe": "memory.observe",
        "learn_label": "memory.learn",
    },
    "_valuation": {"score_one": "valuation.score", "learn_one": "valuation.learn"},
    "_atypicality": {"surprises": "atypicality.score", "learn_items": "atypicality.learn"},
    "_combiner": {"risk": "combiner.risk", "learn": "combiner.learn"},
    "_quota": {"threshold": "quota.threshold", "observe": "quota.observe"},
}
MODULE_FUNCTIONS = ("explain", "pair_items", "finding", "chain", "compact")


def _timed(target: Any, name: str, label: str, spent: dict[str, float]) -> None:
    function: Callable[..., Any] | None = getattr(target, name, None)
    if function is None:
        return
    clock = time.perf_counter

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        began = clock()
        try:
            return function(*args, **kwargs)
        finally:
            spent[label] = spent.get(label, 0.0) + clock() - began

    setattr(target, name, wrapper)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=30_000)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--label-share", type=float, default=1.0)
    args = parser.parse_args()
    if not str(engine_module.__file__).endswith(".py"):
        sys.exit("profile_engine.py times the sources: run it without PYTHONPATH=build/compiled")
    stream = _stream(args.n, args.seed, args.label_share)
    engine = RiskEngine(**get_settings().engine.options())
    spent: dict[str, float] = {}
    for attribute, methods in PARTS.items():
        for method, label in methods.items():
            _timed(getattr(engine, attribute), method, label, spent)
    for name in MODULE_FUNCTIONS:
        _timed(engine_module, name, name, spent)
    queue: list[tuple[float, int, Any]] = []
    gc.collect()
    gc.freeze()  # as in bench_engine.py: the stream held in memory is not the engine's
    began = time.perf_counter()
    for seq, (decl, control) in enumerate(stream):
        now = decl.lodged_at.timestamp()
        while queue and queue[0][0] <= now:
            engine.learn_control(heapq.heappop(queue)[2])
        engine.score_one(decl)
        engine.learn_one(decl)
        if control is not None:
            heapq.heappush(queue, (now + 7 * 86_400.0, seq, control))
    total = time.perf_counter() - began
    n = len(stream)
    print(f"{total / n * 1e6:.1f} us per declaration ({n / total:,.0f}/s), "
          f"label share {args.label_share:g}")  # fmt: skip
    for label, seconds in sorted(spent.items(), key=lambda kv: -kv[1]):
        print(f"  {label:<20} {seconds / n * 1e6:6.1f} us")
    print(f"  {'(rest of the engine)':<20} {(total - sum(spent.values())) / n * 1e6:6.1f} us")


if __name__ == "__main__":
    main()
