"""What a delta snapshot costs the scoring thread: written in it, or by a forked child.

A Redis-style snapshot forks the process and lets the child write what the parent held
at the fork, while the parent goes on. Under CPython every object read is written to (its
reference count), so the parent's pages are copied on its next touch as long as the child
lives, and each fork copies the page tables. This runs one partition's state in process
(scoring and learning the same generated declarations as ``vigie bench``) and takes a
delta every ``--every`` declarations, three ways, alternated:

* ``none``: no snapshot (the peer loop's case);
* ``inline``: :func:`vigie.worker.increments.dumps` in the scoring thread, as the worker's
  slices do (compressed by the zstd thread);
* ``fork``: ``os.fork()``; the child writes the same delta (compressed in its own thread)
  and exits; the parent forgets the changes and scores on.

It prints the parent's microseconds a declaration, those spent in the snapshot calls
themselves, and the parent's minor page faults a declaration (the copies on write).

Usage::

    PYTHONPATH=build/compiled:dev/src .venv/bin/python bench/snapshot_fork.py \\
        [--warm 100000] [--n 40000] [--every 10000] [--repeat 2]

>>> decls = declarations(300, seed=1, importers=50)
>>> state = scored_state(islice(decls, 200))
>>> figures = run(state, list(decls), "fork", every=50)
>>> figures["us_per_declaration"] > 0, figures["children_failed"]
(True, 0)
"""

from __future__ import annotations

import argparse
import gc
import os
import resource
import signal
import statistics
import time
from collections.abc import Iterable, Iterator
from itertools import islice
from typing import Any

from vigie.contracts.schemas import Declaration
from vigie.model.engine import RiskEngine
from vigie.worker import increments
from vigie.worker.processing import score_decoded
from vigie.worker.state import PartitionState
from vigie_dev.bench.processes import rss_kb
from vigie_dev.generator import GeneratorConfig, stream

MODES = ("none", "inline", "fork")


def declarations(n: int, seed: int, importers: int) -> Iterator[Declaration]:
    """The generator's declarations, as ``vigie bench`` draws its backlog (drawn as they
    are read: a list of them all would weigh on the fork)."""
    config = GeneratorConfig(n=n, seed=seed, importers=importers)
    return (item.declaration for item in stream(config))


def scored_state(decls: Iterable[Declaration]) -> PartitionState:
    """A partition's state after scoring and learning ``decls``, its changes forgotten."""
    state = PartitionState(0, RiskEngine())
    for decl in decls:
        score_decoded(state, decl, None, None, source_topic="declarations")
    increments.forget_changes(state)
    return state


def run(state: PartitionState, decls: list[Declaration], mode: str, every: int) -> dict[str, Any]:
    """Score ``decls`` on ``state`` with a delta every ``every`` declarations, ``mode``'s way."""
    children: list[int] = []
    failed = 0
    in_snapshots = 0.0
    faults_before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    began = time.perf_counter()
    for i, decl in enumerate(decls, start=1):
        score_decoded(state, decl, None, None, source_topic="declarations")
        if mode == "none" or i % every:
            continue
        started = time.perf_counter()
        if mode == "inline":
            increments.dumps(state, full=False)
        else:
            failed += _reap(children, block=False)
            children.append(_fork_delta(state))
        increments.forget_changes(state)
        in_snapshots += time.perf_counter() - started
    failed += _reap(children, block=True)
    seconds = time.perf_counter() - began
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults_before
    return {
        "us_per_declaration": seconds / len(decls) * 1e6,
        "in_snapshots_us": in_snapshots / len(decls) * 1e6,
        "faults_per_declaration": faults / len(decls),
        "children_failed": failed,
    }


def _fork_delta(state: PartitionState) -> int:
    """Fork a child that writes the delta of ``state`` and exits; its pid."""
    pid = os.fork()
    if pid == 0:  # the child: the parent's compressing thread does not exist here
        code = 1
        try:
            gc.disable()
            increments._Compressing._pool = None
            code = 0 if increments.dumps(state, full=False) else 1
        finally:
            os._exit(code)
    return pid


def _reap(children: list[int], *, block: bool, timeout_s: float = 120.0) -> int:
    """Collect the children done (``block``: all, those still alive after ``timeout_s``
    killed); how many failed."""
    failed = 0
    deadline = time.monotonic() + timeout_s
    while children:
        for pid in list(children):
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                children.remove(pid)
                failed += os.waitstatus_to_exitcode(status) != 0
        if not block or not children:
            break
        if time.monotonic() > deadline:
            for pid in children:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            failed += len(children)
            children.clear()
            break
        time.sleep(0.005)
    return failed


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--warm", type=int, default=100_000)
    parser.add_argument("--n", type=int, default=40_000)
    parser.add_argument("--every", type=int, default=10_000)
    parser.add_argument("--importers", type=int, default=30_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    total = args.warm + args.n * len(MODES) * args.repeat
    decls = declarations(total, args.seed, args.importers)
    state = scored_state(islice(decls, args.warm))
    gc.collect()
    gc.freeze()  # as the worker does after a checkpoint
    rss_mib = (rss_kb(os.getpid()) or 0) / 1024
    print(f"state: {args.warm:,} declarations; a delta every {args.every:,}; "
          f"{args.n:,} declarations a pass; RSS {rss_mib:,.0f} MiB")  # fmt: skip
    results: dict[str, list[dict[str, Any]]] = {mode: [] for mode in MODES}
    for _ in range(args.repeat):
        for mode in MODES:
            figures = run(state, list(islice(decls, args.n)), mode, args.every)
            results[mode].append(figures)
            print(f"{mode:6} {figures['us_per_declaration']:6.1f} us a declaration, "
                  f"{figures['in_snapshots_us']:5.1f} in the snapshot calls, "
                  f"{figures['faults_per_declaration']:5.2f} page faults "
                  f"(children failed: {figures['children_failed']})", flush=True)  # fmt: skip
    print("medians:", ", ".join(
        f"{mode} {statistics.median(f['us_per_declaration'] for f in runs):.1f} us"
        for mode, runs in results.items()))  # fmt: skip


if __name__ == "__main__":
    main()
