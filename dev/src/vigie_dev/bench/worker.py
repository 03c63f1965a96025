"""The worker end to end on a backlog: to the last Score in Kafka, then to ClickHouse.

The backlog is complete before the worker starts. Times:

* ``startup_s``: process start to the moment the worker is ready: ``/ready`` answering
  ready (every partition assigned, its model restored or new), or the first Score in
  Kafka if that came first (the worker refreshes ``/ready`` between batches);
* ``seconds``: from that moment to the last Score in Kafka (the Kafka timestamp its
  producer stamped), whence ``per_s``; ``total_s`` adds the startup;
* ``peak_rss_mb``: the worker's VmHWM once the last Score is out, and
  ``peak_rss_mb_to_exit`` including its stop (the last checkpoint pickles every model).

Several workers (the scaling scenario) share one consumer group; their time starts when
the first is ready (it may score before the others join), ``settled_s`` says when the
group had shared every partition. From then on each worker's count of declarations
scored (its ``/metrics``) is read twice a second: ``settled_per_s`` is the group's rate
while every worker was still scoring, each on its share of the partitions. That leaves out
the join (the first worker scores alone, then the group rebalances) and the end, where the
first worker, ahead from the join, has finished its partitions while the other has not.

``cpu``: where the machine's cores went over the same window (from ready to the last Score
counted for one worker) (:mod:`vigie_dev.bench.cpu`): each worker, its scoring thread and
that thread's wait for a core, the broker when it runs here, the whole machine,
``scaling_bound``, the most several workers could add on this machine, and
``us_per_declaration``, the CPU microseconds each declaration cost, process by process.

ClickHouse: once the worker is done, ``vigie warehouse write --drain`` reads the
topics into its own embedded chDB directory, then ``vigie warehouse summary`` counts the
rows (chDB admits one process per directory, so they run one after the other, and not
while the worker runs: the worker's figure stays its own). ``to_last_row_s`` is the
worker's time plus the writer's, an upper bound of a pipeline where both run at once.
"""

from __future__ import annotations

import signal
import time
from typing import Any

from vigie.contracts.catalogue import SCORES
from vigie.errors import VigieError
from vigie.settings import Settings
from vigie_dev.bench.context import Context
from vigie_dev.bench.cpu import CpuWindow, cost_per_record, scaling_bound
from vigie_dev.bench.machine import with_broker
from vigie_dev.bench.processes import BenchError, peak_rss_kb, vigie_json
from vigie_dev.bench.stats import megabytes, rate
from vigie_dev.bench.topics import TopicScan, consumer, record_count, wait_until
from vigie_dev.testing import WorkerProcess

READY_POLL_S = 0.05


def run_workers(ctx: Context, settings: Settings, count: int = 1) -> dict[str, Any]:
    """``count`` workers on the scenario's backlog, until every declaration is scored."""
    n, timeout = ctx.backlog.n, ctx.options.timeout_s
    began = time.time()
    workers = [
        WorkerProcess(settings, name=f"worker-{i}", loglevel="warning").start()
        for i in range(count)
    ]
    try:
        ready_at, settled_at = _wait_ready(workers, settings.topic_partitions)
        group = GroupProgress(workers, CpuWindow(_watched(workers, settings.bootstrap_servers)))
        watermarks = consumer(settings.bootstrap_servers)
        scores = settings.topic(SCORES.name)
        alive = lambda: all(w.alive() for w in workers)  # noqa: E731

        def all_scored() -> bool:
            group.sample()
            return record_count(watermarks, scores) >= n

        wait_until(all_scored, timeout, "the Scores", alive)
        cpu_figures = group.close()
        peaks = [peak_rss_kb(w.proc.pid) if w.proc else None for w in workers]
        watermarks.close()
        scan = TopicScan(settings.bootstrap_servers, scores).catch_up()
        wait_until(lambda: len(scan.catch_up().first_ms) >= n, 120, "distinct Scores", alive)
        scan.close()
        engine_ms = engine_mean_ms(workers)
    finally:
        stopped = stop_watching_memory(workers)
    codes = [code for code, _ in stopped]
    final_peaks = [peak for _, peak in stopped]
    ready_at = min(ready_at, (scan.earliest_ms or scan.last_ms) / 1000.0)
    seconds = scan.last_ms / 1000.0 - ready_at
    result: dict[str, Any] = {
        "declarations": len(scan.first_ms),
        "scores": scan.records,
        "startup_s": round(ready_at - began, 2),
        "seconds": round(seconds, 3),
        "per_s": rate(len(scan.first_ms), seconds),
        "total_s": round(scan.last_ms / 1000.0 - began, 3),
        "peak_rss_mb": megabytes(_largest(peaks)),
        "peak_rss_mb_to_exit": megabytes(_largest(final_peaks)),
        "engine_mean_ms": engine_ms,
        "exit_codes": codes,
        "cpu": {**cpu_figures, "scaling_bound": scaling_bound(cpu_figures)},
    }
    if count > 1:
        scored, seconds = group.all_scoring()
        result["workers"] = count
        result["settled_s"] = round(settled_at - began, 2)
        result["settled_declarations"] = scored
        result["settled_seconds"] = round(seconds, 2)
        result["settled_per_s"] = rate(scored, seconds)
        result["peak_rss_mb_each"] = [megabytes(p) for p in peaks]
    window_per_s = result.get("settled_per_s") or result["per_s"]
    names = [w.name for w in workers]
    result["cpu"]["us_per_declaration"] = cost_per_record(cpu_figures, window_per_s, names)
    return result


def stop_watching_memory(
    workers: list[WorkerProcess], timeout: float = 120.0
) -> list[tuple[int | None, int | None]]:
    """SIGTERM to all, then each one's exit status and last VmHWM read before it ended."""
    procs = [w.proc for w in workers if w.proc is not None]
    peaks = {p.pid: peak_rss_kb(p.pid) for p in procs}
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while any(p.poll() is None for p in procs) and time.monotonic() < deadline:
        for proc in procs:
            peaks[proc.pid] = peak_rss_kb(proc.pid) or peaks[proc.pid]
        time.sleep(0.05)
    return [(w.stop(), peaks.get(w.proc.pid) if w.proc else None) for w in workers]


class GroupProgress:
    """Each worker's declarations scored, read from its ``/metrics`` every half second,
    and a CPU window closed when the first worker stops scoring (for one worker: at the
    end)."""

    INTERVAL_S = 0.5

    def __init__(self, workers: list[WorkerProcess], cpu: CpuWindow) -> None:
        self.workers = workers
        self.cpu = cpu
        self.samples: list[tuple[float, list[float]]] = []
        self.cpu_figures: dict[str, Any] | None = None

    def sample(self) -> None:
        """Read every worker's count, if half a second has passed since the last reading."""
        now = time.time()
        if len(self.workers) < 2 or (self.samples and now - self.samples[-1][0] < self.INTERVAL_S):
            return
        try:
            counts = [w.metric("vigie_declarations_total") for w in self.workers]
        except VigieError:  # a worker busy or stopping: the next reading will do
            return
        stopped = self.samples and not _all_moved(self.samples[-1][1], counts)
        if stopped and self.cpu_figures is None:
            self.cpu_figures = self.cpu.close()
        self.samples.append((now, counts))

    def close(self) -> dict[str, Any]:
        """The CPU window's figures (closed now if no worker stopped before)."""
        if self.cpu_figures is None:
            self.cpu_figures = self.cpu.close()
        return self.cpu_figures

    def all_scoring(self) -> tuple[int, float]:
        """Declarations scored, and seconds, from the first reading to the last one at
        which every worker had scored more than at the reading before."""
        last = 0
        for i in range(1, len(self.samples)):
            if not _all_moved(self.samples[i - 1][1], self.samples[i][1]):
                break
            last = i
        if last == 0:
            return 0, 0.0
        (t0, first), (t1, end) = self.samples[0], self.samples[last]
        return int(sum(end) - sum(first)), t1 - t0


def _all_moved(before: list[float], after: list[float]) -> bool:
    return all(b > a for a, b in zip(before, after, strict=True))


def _watched(workers: list[WorkerProcess], bootstrap: str) -> dict[str, int]:
    """The processes a CPU window accounts for: each worker, and the broker if local."""
    return with_broker({w.name: w.proc.pid for w in workers if w.proc is not None}, bootstrap)


def _largest(values: list[int | None]) -> int | None:
    return max((v for v in values if v is not None), default=None)


def _wait_ready(workers: list[WorkerProcess], partitions: int) -> tuple[float, float]:
    """When the first worker said ready, and when the group held every partition."""
    first: float | None = None

    def settled() -> bool:
        nonlocal first
        bodies = [w.ready() for w in workers]
        if first is None and any(b and b.get("ready") for b in bodies):
            first = time.time()
        held = sum(len(b.get("partitions", [])) for b in bodies if b and b.get("ready"))
        return all(b and b.get("ready") for b in bodies) and held == partitions

    deadline = time.monotonic() + 300
    while not settled():
        for w in workers:
            if not w.alive():
                raise BenchError(f"{w.name} exited before it was ready:\n{w.log_tail()}")
        if time.monotonic() > deadline:
            raise BenchError("workers not ready after 300 s:\n" + workers[0].log_tail())
        time.sleep(READY_POLL_S)
    settled_at = time.time()
    return (first or settled_at), settled_at


def engine_mean_ms(workers: list[WorkerProcess]) -> float | None:
    """The workers' own mean engine time per declaration, when their metrics say it."""
    try:
        total = sum(w.metric("vigie_scoring_latency_seconds_sum") for w in workers)
        count = sum(w.metric("vigie_scoring_latency_seconds_count") for w in workers)
    except VigieError:
        return None
    return round(1000 * total / count, 3) if count else None


def warehouse(ctx: Context, settings: Settings, worker_seconds: float) -> dict[str, Any]:
    """The writer drains the scenario's topics into a fresh chDB; its time and rows."""
    chdb = settings.model_copy(
        update={"clickhouse_url": f"chdb://{(settings.state_dir / 'clickhouse').resolve()}"}
    )
    group = f"{settings.topic_prefix}bench-warehouse"
    timeout = ctx.options.timeout_s * 3
    stats, seconds = vigie_json(
        chdb, "warehouse", "write", "--drain", "--group", group, timeout=timeout
    )
    summary, _ = vigie_json(chdb, "warehouse", "summary", timeout=600)
    rows = {k: summary.get(k) for k in ("declarations", "scores", "alerts")}
    stored = sum(v for v in rows.values() if isinstance(v, int))
    to_last_row = worker_seconds + seconds
    return {
        "rows": rows,
        "writer_s": round(seconds, 2),
        "writer_rows_per_s": rate(stored, seconds),
        "to_last_row_s": round(to_last_row, 2),
        "per_s": rate(int(rows["scores"] or 0), to_last_row),
        "writer": stats,
    }
