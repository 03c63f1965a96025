"""A run's result for people and for the record: rows of figures, a table, a Markdown page.

Each run is written whole to ``bench-<UTC timestamp>.json`` in the results directory, and
``bench-latest.md`` is rewritten from it: the figures a README can quote.

Examples
--------
>>> result = {"run": {"n": 1000, "started_at": "2026-12-04T10:00:00Z"},
...           "machine": {"cpu": "AMD EPYC", "cores": 2, "load_average": [1.0, 1.0, 1.0]},
...           "scenarios": {"peer": {"declarations": 1000, "seconds": 0.5, "per_s": 2000.0,
...                                  "peak_rss_mb": 200.0}},
...           "ratios": {"worker_vs_peer": None}, "targets": {}}
>>> throughput_rows(result)[0]
['peer loop', '1,000', '0.5', '2,000', '200']
>>> print(markdown(result).splitlines()[0])
# vigie bench: 1,000 declarations, 2026-12-04T10:00:00Z
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from vigie_dev.bench.context import utc_stamp

LABELS = {
    "raw": "raw consumer",
    "detectors": "detectors alone",
    "peer": "peer loop",
    "worker": "worker, to last Score",
    "scaling": "workers, to last Score",
}
THROUGHPUT_HEADER = ["scenario", "declarations", "seconds", "per second", "peak RSS MiB"]
LATENCY_HEADER = [
    "rate asked/s", "produced/s", "scored/s", "alerts",
    "to Redis p50/p99/p99.9 ms", "to Score p50/p99/p99.9 ms",
]  # fmt: skip


def _n(value: Any, digits: int = 0) -> str:
    if value is None:
        return "-"
    if isinstance(value, int | float):
        return f"{value:,.{digits}f}"
    return str(value)


def throughput_rows(result: dict[str, Any]) -> list[list[str]]:
    """One row per throughput scenario that ran."""
    rows = []
    for name, label in LABELS.items():
        s = result["scenarios"].get(name)
        if s is None:
            continue
        if name == "scaling":
            label = f"{s.get('workers', '?')} {label}"
        rows.append([label, _n(s.get("declarations")), _n(s.get("seconds"), 1),
                     _n(s.get("per_s")), _n(s.get("peak_rss_mb"))])  # fmt: skip
        if s.get("settled_per_s") is not None:
            label = f"{s.get('workers', '?')} workers, all scoring"
            rows.append([label, _n(s["settled_declarations"]), _n(s.get("settled_seconds"), 1),
                         _n(s["settled_per_s"]), "-"])  # fmt: skip
        store = s.get("warehouse")
        if store:
            rows.append(["worker + writer, to last row", _n(store["rows"].get("scores")),
                         _n(store["to_last_row_s"], 1), _n(store["per_s"]), "-"])  # fmt: skip
    return rows


def latency_rows(result: dict[str, Any]) -> list[list[str]]:
    """One row per steady rate measured."""

    def triple(figures: dict[str, Any]) -> str:
        return " / ".join(_n(figures.get(k)) for k in ("p50", "p99", "p99_9"))

    rows = []
    for r in result["scenarios"].get("latency", []):
        counts = [_n(r[k]) for k in ("rate", "produced_per_s", "scored_per_s", "alerts")]
        rows.append([*counts, triple(r["produced_to_redis_ms"]), triple(r["produced_to_score_ms"])])
    return rows


def summary_lines(result: dict[str, Any]) -> list[str]:
    """The machine, the ratios and the targets, one line each."""
    m = result["machine"]
    load = ", ".join(f"{x:g}" for x in m["load_average"])
    lines = [
        f"machine: {m['cpu']}, {m['cores']} cores, {m.get('memory_gb')} GiB, load {load}, "
        f"Python {m.get('python')}, Kafka {m.get('kafka', {}).get('broker_version')}, "
        f"detectors {m.get('detectors')}, commit {m.get('git')}",
    ]
    backlog = result["run"].get("backlog")
    if backlog:
        lines.append(
            f"backlog: seed {backlog['seed']}, {backlog['importers_seen']:,} importers "
            f"(of {backlog['importers']:,}), {backlog['commodity_codes_seen']:,} commodity codes"
        )
    worker = result["scenarios"].get("worker")
    if worker and worker.get("peak_rss_mb_to_exit") is not None:
        lines.append(
            f"worker peak RSS: {_n(worker['peak_rss_mb'])} MiB after the last Score, "
            f"{_n(worker['peak_rss_mb_to_exit'])} MiB up to its exit (last checkpoint)"
        )
    for name in ("worker", "scaling"):
        cpu = result["scenarios"].get(name, {}).get("cpu")
        if cpu:
            lines.append(f"cpu, {LABELS[name].split(',')[0]}: {cpu_line(cpu)}")
    split = engine_split(result["scenarios"])
    if split:
        lines.append(split)
    ratios = ", ".join(f"{k} {_n(v, 2)}" for k, v in result["ratios"].items() if v is not None)
    lines.append(f"ratios: {ratios or '-'}")
    for name, t in result["targets"].items():
        if t["value"] is not None:
            verdict = "met" if t["met"] else "NOT met"
            lines.append(f"target {name} {t['target']}: {_n(t['value'], 2)} ({verdict})")
    return lines


def engine_split(scenarios: dict[str, Any]) -> str | None:
    """Each loop's time per declaration, in the engine and outside it: the two loops run
    the same engine, so what the worker does beyond the peer loop shows outside it (its
    checkpoints, its replay guard), and an hour that slows the engine shows in both.

    >>> line = engine_split({"peer": {"per_s": 12500.0, "engine_mean_ms": 0.055},
    ...                      "worker": {"per_s": 10000.0, "engine_mean_ms": 0.054}})
    >>> line.split(": ")[1].split(", worker ")
    ['peer loop 80 us (engine 55, outside it 25)', '100 us (engine 54, outside it 46)']
    """
    parts = []
    for name, label in (("peer", "peer loop"), ("worker", "worker")):
        figures = scenarios.get(name, {})
        per_s, engine_ms = figures.get("per_s"), figures.get("engine_mean_ms")
        if not per_s or engine_ms is None:
            return None
        total_us, engine_us = 1e6 / per_s, engine_ms * 1000.0
        parts.append(f"{label} {total_us:,.0f} us (engine {engine_us:,.0f}, "
                     f"outside it {total_us - engine_us:,.0f})")  # fmt: skip
    return "per declaration: " + ", ".join(parts)


def cpu_line(cpu: dict[str, Any]) -> str:
    """A CPU window in one line: each process, its busiest thread, the machine.

    >>> print(cpu_line({"seconds": 7.0, "scaling_bound": 1.54,
    ...   "machine": {"cores": 2, "busy_cores": 1.3, "stolen_cores": 0},
    ...   "processes": {"worker-0": {"cores": 1.1, "busiest_thread": "vigie",
    ...   "busiest_cores": 0.99, "busiest_waiting": 0.01}}}))
    worker-0 1.10 cores (busiest thread 0.99, waiting for a core 0.01);
    machine busy 1.30 of 2 cores (stolen 0.00) over 7.0 s: at most 1.54 x this rate on these cores
    """
    parts = []
    for name, p in cpu["processes"].items():
        if name == "broker":
            parts.append(f"broker {p['cores']:.2f} cores")
            continue
        parts.append(f"{name} {p['cores']:.2f} cores (busiest thread {p['busiest_cores']:.2f}, "
                     f"waiting for a core {p['busiest_waiting']:.2f})")  # fmt: skip
    m = cpu["machine"]
    line = (f"{', '.join(parts)}; machine busy {m['busy_cores']:.2f} of {m['cores']} cores "
            f"(stolen {m['stolen_cores']:.2f}) over {cpu['seconds']:.1f} s")  # fmt: skip
    if cpu.get("scaling_bound") is not None:
        line += f": at most {cpu['scaling_bound']:.2f} x this rate on these cores"
    cost = cpu.get("us_per_declaration")
    if cost:
        names = {"busiest_threads": "scoring threads"}
        parts = [f"{names.get(k, k)} {us:,.0f}" for k, us in cost.items() if k != "machine"]
        line += f"; CPU per declaration {cost['machine']:,.0f} us ({', '.join(parts)})"
    return line


def markdown(result: dict[str, Any], source: str = "its JSON file") -> str:
    """The run as a short Markdown page (``bench-latest.md``), read from ``source``."""
    run = result["run"]
    out = [f"# vigie bench: {run['n']:,} declarations, {run['started_at']}", ""]
    out += [f"- {line}" for line in summary_lines(result)]
    for header, rows in (
        (THROUGHPUT_HEADER, throughput_rows(result)),
        (LATENCY_HEADER, latency_rows(result)),
    ):
        if rows:
            out += ["", "| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
            out += ["| " + " | ".join(row) + " |" for row in rows]
    out += ["", f"Written by `vigie bench` from {source}."]
    return "\n".join(out) + "\n"


def save(result: dict[str, Any], directory: Path) -> Path:
    """Write the run's JSON file and rewrite ``bench-latest.md``; the JSON file's path."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"bench-{utc_stamp()}.json"
    path.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2) + b"\n")
    (directory / "bench-latest.md").write_text(markdown(result, f"`{path.name}`"))
    return path
