"""The engine's state at national scale: memory, snapshots and restore.

One partition's engine learns ``--n`` declarations (1,000,000 by default) from 200,000
importers and 5,000 commodity codes (Zipf-like activity: a few importers and codes lodge
most declarations), 6 % of them controlled, results 7 days late. It is snapshotted as the
worker snapshots a partition that receives ``--rate`` declarations a second
(:mod:`vigie.worker.increments`, the chain policy of :mod:`vigie.worker.snapshots`, the
interval of :mod:`vigie.worker.loop`: 5 s, or 20 times the last delta's time, here in
declarations: rate x interval), in files instead of Kafka. Prints, at each quarter of
the stream: resident memory, the importers and pending declarations held, the last full
snapshot and the deltas (size, and the work they took: the worker's own
:class:`~vigie.worker.checkpoint.Checkpoint` writes them in slices between turns of the
loop, then closes each with a delta of what changed meanwhile), the pauses of the loop for
them (99th percentile and longest), the share of the stream's time spent snapshotting,
and the time to restore the chain in a fresh process (a restarted worker: its resident
memory once restored, and its peak while restoring); then the peak resident memory of
this process (the worker's: learning and snapshots; the world's arrays drawn here, about
50 MiB, included; the chain's snapshots are kept in files, as the broker keeps them) and
bytes per importer and per pending declaration from a traced pass over the first
``--traced`` declarations.

    PYTHONPATH=build/compiled .venv/bin/python bench/bench_state.py [--n 1000000] [--json F]

The generator of ``vigie_dev`` draws about 380 commodity codes; this world is drawn here
to reach the 5,000 codes of a national tariff.
"""

from __future__ import annotations

import argparse
import gc
import heapq
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import orjson

import vigie.model.engine
from vigie.contracts.schemas import EXAMPLE_DECLARATION, ControlResult, Declaration
from vigie.model.engine import RiskEngine
from vigie.settings import get_settings
from vigie.worker.chain import Chain, Part
from vigie.worker.checkpoint import Checkpoint
from vigie.worker.increments import Snapshot, forget_changes, restore
from vigie.worker.loop import SNAPSHOT_COST_FACTOR
from vigie.worker.metrics import WorkerMetrics
from vigie.worker.snapshots import CHUNK_BYTES, SavedSnapshot
from vigie.worker.state import PartitionState
from vigie_dev.bench.processes import peak_rss_kb, rss_kb

IMPORTERS, CODES = 200_000, 5_000
ORIGINS = ["CN", "US", "DE", "IT", "ES", "GB", "TR", "IN", "VN", "JP", "KR", "BR", "MA", "TN",
           "PL", "NL", "BE", "TH", "ID", "MX"]  # fmt: skip


def world(n: int, seed: int) -> Iterator[tuple[Declaration, ControlResult | None]]:
    """``n`` declarations over 90 days, each with its control result when controlled."""
    rng = np.random.default_rng(seed)
    chapters = rng.integers(1, 98, CODES)
    codes = [f"{c:02d}{rng.integers(0, 10**6):06d}" for c in chapters]
    weights = 1.0 / np.arange(1, IMPORTERS + 1) ** 0.8
    importer = rng.choice(IMPORTERS, n, p=weights / weights.sum())
    weights = 1.0 / np.arange(1, CODES + 1) ** 0.9
    code = rng.choice(CODES, n, p=weights / weights.sum())
    origin = rng.integers(0, len(ORIGINS), n)
    seconds = np.sort(rng.uniform(0, 90 * 86_400, n))
    value, mass = rng.lognormal(8, 1.5, n), rng.lognormal(5, 1.5, n)
    controls = random.Random(seed)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for i in range(n):
        imp, com = int(importer[i]), int(code[i])
        # an importer buys each code from a usual origin, now and then from another
        usual = ORIGINS[(imp + com) % len(ORIGINS)]
        decl = Declaration.model_validate({
            **EXAMPLE_DECLARATION, "declaration_id": f"D{i:09d}",
            "lodged_at": start + timedelta(seconds=float(seconds[i])),
            "importer": f"FR{imp:011d}", "declarant": f"DCL{imp % 5000:05d}",
            "seller": f"S{(imp * 7 + com) % 300_000:07d}", "commodity_code": codes[com],
            "origin": usual if origin[i] < 16 else ORIGINS[origin[i]], "dispatch": "CN",
            "office": f"FR{imp % 60:06d}", "customs_value_eur": float(value[i]),
            "invoice_amount": float(value[i]), "net_mass_kg": float(mass[i]),
        })  # fmt: skip
        control = None
        if controls.random() < 0.06:
            control = ControlResult(
                declaration_id=decl.declaration_id,
                controlled_at=decl.lodged_at + timedelta(days=7),
                outcome="infraction" if controls.random() < 0.1 else "compliant",
                selection="other",
                selection_probability=1.0,
            )
        yield decl, control


def rss_mib() -> float:
    return (rss_kb(os.getpid()) or 0) / 1024


def peak_rss_mib() -> float:
    """This process's peak resident memory (``VmHWM``; ``ru_maxrss`` would count, in a child
    started by ``subprocess``, what its parent held when it forked)."""
    return (peak_rss_kb(os.getpid()) or 0) / 1024


def learn(state: PartitionState, stream: Iterator[tuple[Declaration, ControlResult | None]],
          queue: list[tuple[float, int, ControlResult]], seq: int) -> int:  # fmt: skip
    """Score and learn the stream, control results as they come due; the next sequence."""
    engine = state.engine
    for decl, control in stream:
        now = decl.lodged_at.timestamp()
        while queue and queue[0][0] <= now:
            engine.learn_control(heapq.heappop(queue)[2])
        engine.score_one(decl)
        engine.learn_one(decl)
        state.declarations_offset += 1
        if control is not None:
            heapq.heappush(queue, (now + 7 * 86_400.0, seq, control))
        seq += 1
    return seq


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--rate", type=float, default=1000.0, help="declarations a second")
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between snapshots")
    parser.add_argument("--traced", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--json", type=Path, help="write the figures there")
    parser.add_argument("--restore", type=Path, nargs="+", help=argparse.SUPPRESS)  # child's
    args = parser.parse_args()
    if args.restore is not None:
        restore_alone(args.restore)
        return
    with tempfile.TemporaryDirectory() as chain_dir:
        run(args, Path(chain_dir))


TURN = 100
"""Declarations learnt between two turns of the loop (a checkpoint in flight goes on at
each turn: a slice of a full snapshot, or collecting a child's delta)."""


class FileStore:
    """The chain in files, written as :class:`vigie.worker.snapshots.SnapshotStore` writes
    it to ``model-state`` (the parts as they come, the chain named once complete)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.named: list[Path] = []
        """The files of the chain named last: what a restarted worker would read."""
        self._paths: dict[int, Path] = {}
        self._written = 0

    def save(self, state: PartitionState, blob: bytes, *, delta: bool = False) -> SavedSnapshot:
        writer = self.delta_writer(state) if delta else self.full_writer(state)
        writer.write(blob)
        part = writer.close()
        chain = state.chain.with_delta(part) if delta and state.chain else Chain(writer.slot, part)
        return self.name_chain(state, chain)

    def full_writer(self, state: PartitionState) -> FileWriter:
        return FileWriter(self, 1 - state.chain.slot if state.chain else 0)

    def delta_writer(self, state: PartitionState, chain: Chain | None = None) -> FileWriter:
        chain = chain or state.chain
        assert chain is not None
        return FileWriter(self, chain.slot)

    def name_chain(self, state: PartitionState, chain: Chain) -> SavedSnapshot:
        named = [self._paths[id(part)] for part in chain.parts()]
        for old in set(self.named) - set(named):
            old.unlink()
        self.named = named
        state.snapshot_id += 1
        state.chain = chain
        last = chain.deltas[-1] if chain.deltas else chain.full
        return SavedSnapshot(state.partition, state.snapshot_id, last.bytes, 1, not chain.deltas)

    def path(self) -> Path:
        self._written += 1
        return self.directory / f"{self._written}.zst"


class FileWriter:
    """One snapshot part written to a file as it comes."""

    def __init__(self, store: FileStore, slot: int) -> None:
        self.store, self.slot = store, slot
        self.path = store.path()
        self.file = self.path.open("wb")

    def write(self, data: bytes) -> None:
        self.file.write(data)

    def close(self) -> Part:
        self.file.close()
        part = Part([], "", self.path.stat().st_size)
        self.store._paths[id(part)] = self.path
        return part


class NoOutputs:
    """The worker's outputs, of which this benchmark of the state has none to flush."""

    def flush(self) -> None:
        pass


def run(args: argparse.Namespace, chain_dir: Path) -> None:
    """Learn the stream and checkpoint it with the worker's own :class:`Checkpoint`
    (snapshots in slices between turns of the loop, each closed by a delta); the chain kept
    in files under ``chain_dir``, as the broker keeps it."""
    compiled = not str(vigie.model.engine.__file__).endswith(".py")
    print(f"model: {'compiled (mypyc)' if compiled else 'sources'}")
    state = PartitionState(0, RiskEngine(**get_settings().engine.options()))
    store = FileStore(chain_dir)
    checkpoint = Checkpoint(NoOutputs(), store, lambda states: None, WorkerMetrics())  # type: ignore[arg-type]
    stream = world(args.n, args.seed)
    queue: list[tuple[float, int, ControlResult]] = []
    fulls: list[tuple[float, int]] = []  # (seconds of work, bytes), closing delta included
    deltas: list[tuple[float, int]] = []
    pauses: list[float] = []  # each call of the checkpoint made in the loop's thread
    marks = [args.n // 4, args.n // 2, 3 * args.n // 4, args.n]
    report: list[dict[str, Any]] = []
    seq, learning, spent_in_loop = 0, 0.0, 0.0
    due = round(args.rate * args.interval)  # the declarations arrived at the next snapshot
    while seq < args.n:
        t0 = time.perf_counter()
        seq = learn(state, _take(stream, min(TURN, marks[len(report)] - seq)), queue, seq)
        learning += time.perf_counter() - t0
        t0 = time.perf_counter()
        done = checkpoint.collect()
        if done is None and checkpoint.in_flight is None and seq >= due:
            done = checkpoint.start(state)
        pause = time.perf_counter() - t0
        pauses.append(pause)
        spent_in_loop += pause
        if done is not None:
            gc.collect(1)  # as the worker does after a checkpoint
            gc.freeze()
            (fulls if done.full else deltas).append((done.seconds, done.bytes))
            spent = 0.0 if done.full else done.seconds  # as the worker's loop
            due = seq + round(args.rate * max(args.interval, SNAPSHOT_COST_FACTOR * spent))
        if seq == marks[len(report)]:
            checkpoint.finish()
            figures = mark(state, store.named, fulls, deltas, seq / args.rate, learning)
            figures |= {
                "loop_pause_ms_p99": round(1000 * float(np.quantile(pauses, 0.99)), 1),
                "loop_pause_ms_max": round(1000 * max(pauses), 1),
                "snapshot_share_of_loop_time": round(spent_in_loop / (learning + spent_in_loop), 3),
            }
            pauses.clear()
            report.append(figures)
            print(orjson.dumps(report[-1]).decode(), flush=True)
    peak = peak_rss_mib()
    print(f"peak RSS {peak:.0f} MiB (learning and snapshots; restores run apart)")
    memory = traced(args.traced, args.seed)
    print(orjson.dumps(memory).decode())
    if args.json:
        figures = {
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "model": "compiled (mypyc)" if compiled else "sources",
            "options": {k: v for k, v in vars(args).items() if k != "json"},
            "world": {"importers": IMPORTERS, "codes": CODES, "controlled": 0.06},
            "marks": report,
            "peak_rss_mib": round(peak),
            "memory": memory,
        }
        args.json.write_bytes(orjson.dumps(figures, option=orjson.OPT_INDENT_2))


def mark(
    state: PartitionState,
    blobs: list[Path],
    fulls: list[tuple[float, int]],
    deltas: list[tuple[float, int]],
    stream_s: float,
    learning: float,
) -> dict[str, Any]:
    """The figures at this point of the stream."""
    rss = rss_mib()
    restored = restore_apart(blobs)
    engine = state.engine
    seq = state.declarations_offset + 1
    snapshots = sum(s for s, _ in fulls + deltas)
    return {
        "declarations": seq,
        "learn_per_s": round(seq / learning),
        "rss_mib": round(rss),
        "importers": len(engine._atypicality._behaviour._importers),
        "pending": engine.n_pending,
        "full_snapshots": len(fulls),
        "full_mib": round(fulls[-1][1] / 2**20, 1) if fulls else None,
        "full_s": round(fulls[-1][0], 2) if fulls else None,
        "deltas": len(deltas),
        "deltas_in_chain": len(blobs) - 1,
        "delta_mib_p50": _median_mib(deltas),
        "delta_s_p50": _median_s(deltas),
        "delta_s_max": round(max((s for s, _ in deltas), default=0.0), 3),
        "snapshot_share_of_stream_time": round(snapshots / stream_s, 3),
        **restored,
    }


def restore_apart(blobs: list[Path]) -> dict[str, float]:
    """Restore the chain in a fresh process, as a restarted worker does (a copy restored
    here would count in this process's memory): its time and memory."""
    child = [sys.executable, __file__, "--restore", *map(str, blobs)]
    out = subprocess.run(child, check=True, capture_output=True).stdout
    figures: dict[str, float] = orjson.loads(out.splitlines()[-1])
    return figures


def _chunks(path: Path) -> list[bytes]:
    """A snapshot file in the chunks the worker stores snapshots in."""
    with path.open("rb") as f:
        return list(iter(lambda: f.read(CHUNK_BYTES), b""))


def restore_alone(chain: list[Path]) -> None:
    """The child's part of :func:`restore_apart`: reads the chain's snapshots in chunks (as
    a worker reads them from ``model-state``), restores; prints time, resident and peak
    memory."""
    blobs: list[Snapshot] = [_chunks(path) for path in chain]
    t0 = time.perf_counter()
    state = restore(blobs)
    seconds = time.perf_counter() - t0
    del blobs
    gc.collect()
    figures = {
        "restore_s": round(seconds, 1),
        "restored_rss_mib": round(rss_mib()),
        "restore_peak_rss_mib": round(peak_rss_mib()),
        "restored_pending": state.engine.n_pending,
    }
    print(orjson.dumps(figures).decode())


def _take(
    stream: Iterator[tuple[Declaration, ControlResult | None]], k: int
) -> Iterator[tuple[Declaration, ControlResult | None]]:
    for _ in range(k):
        yield next(stream)


def _median_s(parts: list[tuple[float, int]]) -> float | None:
    return round(statistics.median(s for s, _ in parts), 3) if parts else None


def _median_mib(parts: list[tuple[float, int]]) -> float | None:
    return round(statistics.median(b for _, b in parts) / 2**20, 2) if parts else None


def traced(n: int, seed: int) -> dict[str, float]:
    """Bytes per importer and per pending declaration, traced over the first ``n``."""
    stream = list(world(n, seed))
    gc.collect()
    tracemalloc.start()
    state = PartitionState(0, RiskEngine(**get_settings().engine.options()))
    base = tracemalloc.get_traced_memory()[0]
    learn(state, iter(stream), [], 0)
    forget_changes(state)
    gc.collect()
    total = tracemalloc.get_traced_memory()[0] - base
    engine = state.engine
    pending = engine.n_pending
    engine._pending.clear()
    gc.collect()
    pending_bytes = total - (tracemalloc.get_traced_memory()[0] - base)
    tracemalloc.stop()
    importers = len(engine._atypicality._behaviour._importers)
    return {
        "traced_declarations": n,
        "importers": importers,
        "bytes_per_pending": round(pending_bytes / max(pending, 1)),
        "bytes_per_importer": round((total - pending_bytes) / importers),
    }


if __name__ == "__main__":
    main()
