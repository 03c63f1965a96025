"""``vigie bench``'s arithmetic: percentiles, ratios, the issue's targets, the report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from vigie.settings import Settings
from vigie_dev.bench import latency, report, runner
from vigie_dev.bench.backlog import Backlog
from vigie_dev.bench.context import BenchOptions, Context
from vigie_dev.bench.cpu import CpuWindow
from vigie_dev.bench.stats import percentiles
from vigie_dev.bench.worker import GroupProgress


def latency_run(rate: float, role: str, p99: float) -> dict[str, Any]:
    figures = {"p50": 1.0, "p99": p99, "p99_9": p99, "max": p99, "n": 100}
    return {"rate": rate, "role": role, "produced_per_s": rate, "scored_per_s": rate,
            "alerts": 100, "produced_to_redis_ms": figures,
            "produced_to_score_ms": figures}  # fmt: skip


def result_of(scenarios: dict[str, Any]) -> dict[str, Any]:
    ratios = runner.ratios(scenarios)
    return {
        "run": {"n": 1000, "started_at": "2026-12-04T10:00:00Z"},
        "machine": {"cpu": "x", "cores": 2, "load_average": [1.0, 2.0, 3.0]},
        "scenarios": scenarios,
        "ratios": ratios,
        "targets": runner.targets(scenarios, ratios),
    }


def test_percentiles_are_nearest_rank_and_say_how_many() -> None:
    assert percentiles([]) == {"p50": None, "p99": None, "p99_9": None, "max": None, "n": 0}
    figures = percentiles([float(v) for v in range(10_000, 0, -1)])
    assert figures == {"p50": 5000.0, "p99": 9900.0, "p99_9": 9990.0, "max": 10000.0, "n": 10000}
    assert percentiles([7.0])["p99_9"] == 7.0


def test_targets_read_the_right_figures() -> None:
    scenarios = {
        "peer": {"per_s": 8000.0},
        "detectors": {"per_s": 12000.0},
        "worker": {
            "per_s": 12000.0,
            "peak_rss_mb": 2000.0,
            "cpu": {"machine": {"cores": 2, "busy_cores": 1.25}, "scaling_bound": 1.6},
        },
        "scaling": {"per_s": 15000.0, "settled_per_s": 18000.0},
        "latency": [latency_run(1000.0, "1000/s", 40.0), latency_run(6000.0, "half", 250.0)],
    }
    targets = runner.targets(scenarios, runner.ratios(scenarios))
    assert {k: (t["value"], t["met"]) for k, t in targets.items()} == {
        "worker_per_s": (12000.0, True),
        "worker_vs_peer": (1.5, True),
        "redis_p99_ms_at_1000": (40.0, True),
        "redis_p99_ms_at_half_max": (250.0, False),
        "worker_peak_rss_mb": (2000.0, False),
        "scaling_vs_one_worker": (1.5, False),
    }
    ratios = runner.ratios(scenarios)
    assert ratios["scaling_with_join_vs_one_worker"] == 1.25
    assert ratios["scaling_bound"] == 1.6


def test_the_group_rate_counts_only_while_every_worker_scores() -> None:
    group = GroupProgress([], CpuWindow({}))
    # worker 0 finishes its partitions at t=2 (ahead since the join), worker 1 at t=3
    group.samples = [(0.0, [100.0, 0.0]), (1.0, [1100.0, 900.0]), (2.0, [2000.0, 1800.0]),
                     (3.0, [2000.0, 2700.0]), (4.0, [2000.0, 2700.0])]  # fmt: skip
    assert group.all_scoring() == (3700, 2.0)
    group.samples = group.samples[:1]
    assert group.all_scoring() == (0, 0.0)


def test_a_scenario_not_run_is_no_verdict() -> None:
    scenarios = {"peer": {"per_s": 8000.0}, "latency": [latency_run(300.0, "asked", 10.0)]}
    targets = runner.targets(scenarios, runner.ratios(scenarios))
    assert all(t["value"] is None and t["met"] is None for t in targets.values())
    assert runner.ratios(scenarios)["worker_vs_peer"] is None


def test_latency_rates_follow_the_worker_maximum(tmp_path: Path) -> None:
    backlog = Backlog(tmp_path / "b.tsv", {"n": 10})
    ctx = Context(Settings(state_dir=tmp_path), BenchOptions(n=10), backlog)
    assert latency.rates_to_measure(ctx, 9001.0) == [
        (1000.0, "1000/s"),
        (4500.0, "half of the worker's maximum"),
    ]
    assert latency.rates_to_measure(ctx, None) == [(1000.0, "1000/s")]
    asked = Context(ctx.base, BenchOptions(n=10, rates=(200.0, 5000.0)), backlog)
    assert latency.rates_to_measure(asked, 9001.0) == [(200.0, "asked"), (5000.0, "asked")]


def test_the_report_is_written_and_summarised(tmp_path: Path) -> None:
    scenarios = {
        "worker": {"declarations": 1000, "seconds": 0.5, "per_s": 2000.0, "peak_rss_mb": 300.0,
                   "warehouse": {"rows": {"scores": 1000}, "to_last_row_s": 2.0,
                                 "per_s": 500.0}},
        "latency": [latency_run(1000.0, "1000/s", 40.0)],
    }  # fmt: skip
    result = result_of(scenarios)
    path = report.save(result, tmp_path)
    assert orjson.loads(path.read_bytes()) == result
    page = (tmp_path / "bench-latest.md").read_text()
    assert "| worker, to last Score | 1,000 | 0.5 | 2,000 | 300 |" in page
    assert "| worker + writer, to last row | 1,000 | 2.0 | 500 | - |" in page
    assert "| 1,000 | 1,000 | 1,000 | 100 | 1 / 40 / 40 | 1 / 40 / 40 |" in page
    assert "target redis_p99_ms_at_1000 <= 50: 40.00 (met)" in page
    assert path.name in page
