"""Detector throughput and memory: declarations through ``score_one`` + ``learn_one``.

For each detector alone and for both in sequence (valuation then atypicality, as the
RiskEngine runs them), streams the declarations in event-time order and reports
declarations per second, microseconds per declaration and, measured with tracemalloc,
the memory held by the learnt state: per valuation cell, per distinct importer and per
distinct commodity code. Times are CPU times of this process (best of two runs); the wall
time is reported beside them.

Sources: ``customs-kr`` (the shared Korean data set, read in place), ``generated`` (runs
``vigie generate``) or ``--input FILE`` (declarations JSONL). Decoding is not timed.
The result is one JSON object on stdout; nothing is asserted.

Usage::

    .venv/bin/python bench/bench_detectors.py [--source customs-kr|generated]
        [--input FILE] [--n 50000] [--seed 7]
"""

from __future__ import annotations

import argparse
import csv
import gc
import pickle
import platform
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from vigie.contracts.codec import decode_object
from vigie.contracts.schemas import Declaration
from vigie.ingest.mappings import load_mapping
from vigie.model.atypicality import AtypicalityDetector
from vigie.model.valuation import ValuationDetector

ROOT = Path(__file__).resolve().parents[1]
CUSTOMS_KR = ROOT.parent / "shared" / "data" / "customs-kr" / "train.csv"


def customs_kr(n: int) -> list[Declaration]:
    """The first ``n`` rows of customs-kr train, as Declarations in date order."""
    if not CUSTOMS_KR.is_file():
        sys.exit(f"customs-kr not found at {CUSTOMS_KR} (expected ../shared/data/customs-kr/)")
    mapping = load_mapping("customs-kr")
    out = []
    with CUSTOMS_KR.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            out.append(decode_object(Declaration, mapping.convert(row)[0]))
            if len(out) >= n:
                break
    return sorted(out, key=lambda d: d.lodged_at)


def from_jsonl(path: Path, n: int) -> list[Declaration]:
    out = []
    with path.open("rb") as handle:
        for line in handle:
            if line.strip():
                out.append(decode_object(Declaration, orjson.loads(line)))
            if len(out) >= n:
                break
    return sorted(out, key=lambda d: d.lodged_at)


def generated(n: int, seed: int) -> list[Declaration]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "declarations.jsonl"
        vigie = Path(sys.executable).with_name("vigie")
        command = [
            str(vigie),
            "generate",
            "--declarations",
            str(n),
            "--seed",
            str(seed),
            "--out",
            str(out),
        ]
        subprocess.run([*command, "--json"], check=True, stdout=subprocess.DEVNULL)
        return from_jsonl(out, n)


def throughput(factories: list[Callable[[], Any]], stream: list[Declaration]) -> dict[str, Any]:
    """Time score_one + learn_one of every detector over the stream (best of two runs).

    CPU time of this process is the headline: the machine may be shared, and wall time
    then measures the neighbours as much as the detectors.
    """
    best_cpu = best_wall = float("inf")
    for _ in range(2):
        detectors = [factory() for factory in factories]
        gc.collect()
        wall, cpu = time.perf_counter(), time.process_time()
        for decl in stream:
            for detector in detectors:
                detector.score_one(decl)
                detector.learn_one(decl)
        best_cpu = min(best_cpu, time.process_time() - cpu)
        best_wall = min(best_wall, time.perf_counter() - wall)
    return {
        "declarations_per_cpu_second": round(len(stream) / best_cpu),
        "cpu_us_per_declaration": round(best_cpu / len(stream) * 1e6, 1),
        "wall_us_per_declaration": round(best_wall / len(stream) * 1e6, 1),
    }


def memory(factory: Callable[[], Any], stream: list[Declaration]) -> dict[str, Any]:
    """Bytes held by a detector's learnt state (tracemalloc), and its pickled size."""
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    detector = factory()
    for decl in stream:
        detector.score_one(decl)
        detector.learn_one(decl)
    gc.collect()
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    out: dict[str, Any] = {"bytes": held, "snapshot_bytes": len(pickle.dumps(detector))}
    if isinstance(detector, ValuationDetector):
        out["cells"] = detector.n_cells
        out["bytes_per_cell"] = round(held / max(detector.n_cells, 1))
    if isinstance(detector, AtypicalityDetector):
        contexts = detector.n_contexts
        out["contexts"] = contexts
        out["bytes_per_context"] = round(held / max(contexts, 1))
    return out


def deep_size(obj: Any) -> int:
    """Bytes of an object and its containers (interned strings shared between profiles
    are not counted)."""
    size = sys.getsizeof(obj)
    if isinstance(obj, dict):
        size += sum(sys.getsizeof(v) for v in obj.values())
    elif isinstance(obj, list | tuple):
        size += sum(deep_size(item) for item in obj if not isinstance(item, str))
    elif hasattr(obj, "__slots__"):
        size += sum(deep_size(getattr(obj, name)) for name in obj.__slots__)
    return size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", choices=["customs-kr", "generated"], default="customs-kr")
    parser.add_argument("--input", type=Path)
    parser.add_argument("--n", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    if args.input:
        stream, source = from_jsonl(args.input, args.n), str(args.input)
    elif args.source == "generated":
        stream, source = generated(args.n, args.seed), f"generated seed {args.seed}"
    else:
        stream, source = customs_kr(args.n), "customs-kr train"
    importers = len({d.importer for d in stream})
    codes = len({d.commodity_code for d in stream})
    result: dict[str, Any] = {
        "source": source,
        "declarations": len(stream),
        "distinct_importers": importers,
        "distinct_commodity_codes": codes,
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    factories: dict[str, list[Callable[[], Any]]] = {
        "valuation": [ValuationDetector],
        "atypicality": [AtypicalityDetector],
        "both": [ValuationDetector, AtypicalityDetector],
    }
    for name, group in factories.items():
        print(f"timing {name} ...", file=sys.stderr)
        result[name] = throughput(group, stream)
    for name, factory in (("valuation", ValuationDetector), ("atypicality", AtypicalityDetector)):
        print(f"memory {name} ...", file=sys.stderr)
        result[name]["memory"] = memory(factory, stream)
    held = result["valuation"]["memory"]["bytes"] + result["atypicality"]["memory"]["bytes"]
    result["both"]["bytes_per_commodity_code"] = round(held / max(codes, 1))
    result["both"]["bytes_per_importer"] = round(held / max(importers, 1))
    sys.stdout.write(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode() + "\n")


if __name__ == "__main__":
    main()
