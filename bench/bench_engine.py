"""Speed and memory of the whole risk engine, in process, on one core.

Per declaration: ``score_one`` then ``learn_one``, and the control results revealed by
then, 7 days late: every label by default (the worst case: the supervised model, the
infraction rates and the calibration learn from every declaration), or a share of them
with ``--label-share`` (in service, only inspected declarations come back: about the
inspection budget plus audits, 6 %). Prints declarations/s, p50/p99 latency of each step,
then a second, traced pass for memory: bytes per importer, per commodity code and per
pending declaration.

    .venv/bin/python bench/bench_engine.py --n 50000 [--label-share 0.06] [--repeat 5]

The engine is built from the settings (``VIGIE_ENGINE__*``). It runs the sources; with
``PYTHONPATH=build/compiled`` (``make compiled``), the compiled model (the line ``model:``
says which). The machines are shared and noisy (the same pass varies by 20 %): compare
medians of ``--repeat`` passes, sources and compiled in one session.
"""

from __future__ import annotations

import argparse
import gc
import heapq
import random
import time
import tracemalloc
from datetime import timedelta

import numpy as np

import vigie.model.engine
from vigie.contracts.schemas import ControlResult, Declaration
from vigie.model.engine import RiskEngine
from vigie.settings import get_settings
from vigie_dev.generator import generate

Stream = list[tuple[Declaration, ControlResult | None]]


def _stream(n: int, seed: int, label_share: float = 1.0) -> Stream:
    """The declarations, each with its control result (None: never controlled)."""
    rng = random.Random(seed)
    out: Stream = []
    for item in generate(n, seed=seed):
        d = item.declaration
        if rng.random() >= label_share:
            out.append((d, None))
            continue
        out.append((d, ControlResult(
            declaration_id=d.declaration_id, controlled_at=d.lodged_at + timedelta(days=7),
            outcome="infraction" if item.truth.typology else "compliant", selection="other",
            selection_probability=1.0,
        )))  # fmt: skip
    return out


def run(stream: Stream, engine: RiskEngine, timings: dict[str, list[float]] | None) -> None:
    queue: list[tuple[float, int, ControlResult]] = []
    clock = time.perf_counter
    for seq, (decl, control) in enumerate(stream):
        now = decl.lodged_at.timestamp()
        t0 = clock()
        while queue and queue[0][0] <= now:
            engine.learn_control(heapq.heappop(queue)[2])
        t1 = clock()
        engine.score_one(decl)
        t2 = clock()
        engine.learn_one(decl)
        t3 = clock()
        if control is not None:
            heapq.heappush(queue, (now + 7 * 86_400.0, seq, control))
        if timings is not None:
            timings["controls"].append(t1 - t0)
            timings["score_one"].append(t2 - t1)
            timings["learn_one"].append(t3 - t2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--label-share", type=float, default=1.0)
    parser.add_argument("--repeat", type=int, default=1, help="passes, each with a fresh engine")
    parser.add_argument("--skip-memory", action="store_true")
    args = parser.parse_args()
    stream = _stream(args.n, args.seed, args.label_share)
    gc.collect()
    gc.freeze()  # the worker decodes one declaration at a time; the collector need not
    # scan the bench's whole stream, held in memory, again and again
    compiled = not str(vigie.model.engine.__file__).endswith(".py")
    print(f"model: {'compiled (mypyc)' if compiled else 'sources'} ({vigie.model.engine.__file__})")
    rates = []
    for _ in range(args.repeat):
        engine = RiskEngine(**get_settings().engine.options())
        timings: dict[str, list[float]] = {"controls": [], "score_one": [], "learn_one": []}
        began = time.perf_counter()
        run(stream, engine, timings)
        elapsed = time.perf_counter() - began
        rates.append(args.n / elapsed)
        print(f"{args.n} declarations in {elapsed:.2f} s: {rates[-1]:,.0f} declarations/s "
              f"(label share {args.label_share:g})")  # fmt: skip
        del engine
        gc.collect()
    if args.repeat > 1:
        print(f"median of {args.repeat} passes: {np.median(rates):,.0f} declarations/s "
              f"(range {min(rates):,.0f}-{max(rates):,.0f}); latencies: the last pass")  # fmt: skip
    total = np.sum([timings[k] for k in timings], axis=0)
    for name, values in [*timings.items(), ("total", list(total))]:
        us = np.array(values) * 1e6
        p50, p99 = np.percentile(us, 50), np.percentile(us, 99)
        print(f"  {name:<10} p50 {p50:7.1f} us  p99 {p99:8.1f} us  mean {us.mean():7.1f} us")
    if not args.skip_memory:
        _memory(stream)


def _memory(stream: Stream) -> None:
    importers = {d.importer for d, _ in stream}
    codes = {d.commodity_code for d, _ in stream}
    gc.collect()
    tracemalloc.start()
    engine = RiskEngine(**get_settings().engine.options())
    base = tracemalloc.take_snapshot()
    run(stream, engine, None)
    gc.collect()
    total = sum(s.size_diff for s in tracemalloc.take_snapshot().compare_to(base, "filename"))
    pending = engine.n_pending
    before = tracemalloc.get_traced_memory()[0]
    engine._pending.clear()
    gc.collect()
    pending_bytes = before - tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    learnt = total - pending_bytes
    print(f"engine state {total / 2**20:.1f} MiB: {pending} pending declarations "
          f"({pending_bytes / max(pending, 1):,.0f} B each), learnt state "
          f"{learnt / 2**20:.1f} MiB for {len(importers)} importers and {len(codes)} codes "
          f"({learnt / len(importers):,.0f} B per importer, "
          f"{learnt / len(codes):,.0f} B per code, both counted whole)")  # fmt: skip


if __name__ == "__main__":
    main()
