"""Operations: the workers' own metrics, read by Prometheus from their ``/metrics``.

Consumer lag, throughput, latency and snapshots are not in ClickHouse: the worker
exports them (:mod:`vigie.worker.metrics`), Prometheus scrapes them
(``docker/prometheus/prometheus.yml``) and this Grafana dashboard plots them.

>>> sorted(metric_names())[:2]
['vigie_alerts_total', 'vigie_consumer_lag']
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class PrometheusPanel:
    """A time-series panel of PromQL queries, each with its legend."""

    title: str
    queries: tuple[tuple[str, str], ...]
    unit: str | None = None
    description: str = ""
    panel_width: int = 12
    panel_height: int = 8


OPERATIONS: tuple[PrometheusPanel, ...] = (
    PrometheusPanel(
        "Consumer lag (records behind)",
        (("sum by (topic) (vigie_consumer_lag)", "{{topic}}"),),
        description="Records between each topic's high watermark and the workers' position: "
        "the backlog still to score.",
    ),
    PrometheusPanel(
        "Throughput",
        (
            ("sum(rate(vigie_declarations_total[1m]))", "declarations scored/s"),
            ("sum(rate(vigie_alerts_total[1m]))", "alerts/s"),
            ("sum(rate(vigie_controls_received_total[1m]))", "control results/s"),
        ),
        unit="reqps",
    ),
    PrometheusPanel(
        "Scoring latency p50 / p99",
        (
            (
                "histogram_quantile(0.5, sum by (le) "
                "(rate(vigie_scoring_latency_seconds_bucket[5m])))",
                "p50",
            ),
            (
                "histogram_quantile(0.99, sum by (le) "
                "(rate(vigie_scoring_latency_seconds_bucket[5m])))",
                "p99",
            ),
        ),
        unit="s",
    ),
    PrometheusPanel(
        "Dead letters per minute",
        (("sum by (reason) (rate(vigie_dead_letters_total[5m])) * 60", "{{reason}}"),),
    ),
    PrometheusPanel(
        "Partitions ready and snapshots",
        (
            ("sum(vigie_partitions_ready)", "partitions ready"),
            ("sum(rate(vigie_snapshots_total[5m])) * 60", "snapshots/min"),
        ),
    ),
)

_METRIC = re.compile(r"\b(vigie_[a-z_]+?)(?:_bucket)?\b")


def metric_names() -> set[str]:
    """The metrics the panels read (histograms by their base name)."""
    return {m for p in OPERATIONS for expr, _ in p.queries for m in _METRIC.findall(expr)}
