"""The worker's Prometheus metrics, in a registry of their own (one per worker app).

A registry per app, rather than prometheus-client's global one, lets several apps live in
one process (tests) without "duplicated timeseries" errors. The scoring loop counts each
batch in a :class:`Tally` and adds it to the counters once per batch, and its latencies go
to :class:`LoopHistogram`: prometheus-client takes a lock and a few microseconds for each
``inc`` and ``observe``, as much as a tenth of the engine's time per declaration.

Examples
--------
>>> m = WorkerMetrics()
>>> m.declarations.inc(3)
>>> m.dead_letters.labels(reason="invalid_json").inc()
>>> text = m.render().decode()
>>> [line for line in text.splitlines() if line.startswith("vigie_declarations_total")]
['vigie_declarations_total 3.0']
>>> 'vigie_dead_letters_total{reason="invalid_json"} 1.0' in text
True
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter as Counts
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.metrics_core import HistogramMetricFamily
from prometheus_client.registry import Collector

CONTENT_TYPE = "text/plain; version=0.0.4"

_LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)


class LoopHistogram(Collector):
    """A histogram written by one thread without a lock, read by Prometheus' scrapes.

    >>> h = LoopHistogram("vigie_x_seconds", "X.", (0.1, 1.0))
    >>> for v in (0.05, 0.5, 5.0):
    ...     h.observe(v)
    >>> [(s.labels.get("le"), s.value) for s in next(iter(h.collect())).samples][:3]
    [('0.1', 1.0), ('1.0', 2.0), ('+Inf', 3.0)]
    """

    def __init__(self, name: str, documentation: str, buckets: Sequence[float]) -> None:
        self.name = name
        self.documentation = documentation
        self.bounds = tuple(buckets)
        self.counts = [0] * (len(self.bounds) + 1)
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value

    def collect(self) -> Iterator[HistogramMetricFamily]:
        counts, cumulative, buckets = list(self.counts), 0, []
        for bound, count in zip((*map(str, self.bounds), "+Inf"), counts, strict=True):
            cumulative += count
            buckets.append((bound, float(cumulative)))
        family = HistogramMetricFamily(self.name, self.documentation)
        family.add_metric([], buckets, self.total)
        yield family


@dataclass
class Tally:
    """What one batch of the scoring loop did, added to the counters at its end."""

    declarations: int = 0
    alerts: int = 0
    repeated: int = 0
    amended: int = 0
    skipped: int = 0
    controls_received: int = 0
    controls_learnt: int = 0
    dead_letters: Counts[str] = field(default_factory=Counts)

    def add_to(self, m: WorkerMetrics) -> None:
        """Add the batch to the counters (once per batch, not once per record)."""
        for counter, n in (
            (m.declarations, self.declarations),
            (m.alerts, self.alerts),
            (m.repeated, self.repeated),
            (m.amended, self.amended),
            (m.duplicates, self.skipped),
            (m.controls_received, self.controls_received),
            (m.controls_learnt, self.controls_learnt),
        ):
            if n:
                counter.inc(n)
        for reason, n in self.dead_letters.items():
            m.dead_letters.labels(reason=reason).inc(n)


class WorkerMetrics:
    """Counters, gauges and histograms of one worker."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.declarations = Counter(
            "vigie_declarations", "Declarations scored (rate() gives declarations/s).", registry=r
        )
        self.duplicates = Counter(
            "vigie_declarations_skipped",
            "Redelivered declarations already covered by the model state, skipped.",
            registry=r,
        )
        self.repeated = Counter(
            "vigie_declarations_repeated",
            "Declarations received again with the same content: acknowledged, not rescored.",
            registry=r,
        )
        self.amended = Counter(
            "vigie_declarations_amended",
            "Declarations received again with other content: scored as a new revision.",
            registry=r,
        )
        self.scoring_latency = LoopHistogram(
            "vigie_scoring_latency_seconds",
            "Time spent in the risk engine per declaration (score and learn).",
            _LATENCY_BUCKETS,
        )
        self.end_to_end_latency = LoopHistogram(
            "vigie_end_to_end_latency_seconds",
            "From the declaration's Kafka timestamp to its score being sent.",
            _LATENCY_BUCKETS,
        )
        r.register(self.scoring_latency)
        r.register(self.end_to_end_latency)
        self.dead_letters = Counter(
            "vigie_dead_letters", "Records sent to the dead-letter topic.", ["reason"], registry=r
        )
        self.alerts = Counter("vigie_alerts", "Alerts raised (selected declarations).", registry=r)
        self.controls_received = Counter(
            "vigie_controls_received", "Control results read and fanned out.", registry=r
        )
        self.controls_learnt = Counter(
            "vigie_controls_learnt", "Control results a local model learnt from.", registry=r
        )
        self.controls_unknown = Counter(
            "vigie_controls_not_held",
            "Fanned-out control results whose declaration a local model does not hold.",
            registry=r,
        )
        self.snapshots = Counter(
            "vigie_snapshots",
            "Model snapshots written to the model-state topic, full or deltas.",
            ["kind"],
            registry=r,
        )
        self.snapshot_seconds = Histogram(
            "vigie_snapshot_seconds",
            "Snapshot time by phase: slice (one slice written between batches), closing "
            "(the closing delta and manifest, the loop paused), pickle (a snapshot taken at "
            "once), total (a checkpoint's whole work).",
            ["phase"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.restore_failures = Counter(
            "vigie_snapshot_restore_failures",
            "Snapshots that could not be read back (model rebuilt from the log).",
            registry=r,
        )
        self.snapshot_bytes = Gauge(
            "vigie_snapshot_bytes",
            "Size of the last snapshot of each partition's model (compressed).",
            ["partition"],
            registry=r,
        )
        self.partitions = Gauge(
            "vigie_partitions_ready", "Declaration partitions whose model is restored.", registry=r
        )
        self.consumer_lag = Gauge(
            "vigie_consumer_lag",
            "Records between a partition's high watermark and the worker's read position.",
            ["topic", "partition"],
            registry=r,
        )
        self.model_learnt = Gauge(
            "vigie_model_declarations_learnt",
            "Declarations learnt by each partition's model since it was created.",
            ["partition"],
            registry=r,
        )

    def render(self) -> bytes:
        """The metrics in Prometheus' text exposition format."""
        return generate_latest(self.registry)
