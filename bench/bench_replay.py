"""Replay throughput: generated declarations through ``vigie replay``'s pipeline into Kafka.

Measures, on one declarations file (``vigie generate --declarations 100000 --seed 7`` by default):

- ``validate_only``: reading, decoding, validating and re-encoding, no Kafka (the CPU
  ceiling of the Python side);
- ``replay``: the whole replay into the broker, every delivery report awaited (the figure
  ``vigie replay`` reports as ``messages_per_second``), and the process's CPU time, whence
  ``cpu_bound_messages_per_second``: the rate one uncontended core would sustain.

The broker is the configured one (``VIGIE_KAFKA_BOOTSTRAP``) or the dev stack's
(``vigie stack up``). Each run's topics get a unique prefix (``bench-<id>.``), are created
first and deleted afterwards.
The result is one JSON object on stdout; nothing is asserted.

Usage::

    .venv/bin/vigie stack up
    .venv/bin/python bench/bench_replay.py [--n 100000] [--seed 7] [--input FILE]
        [--compression lz4|zstd] [--repeat 1]
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import orjson

from vigie.contracts.catalogue import CATALOGUE, DECLARATIONS
from vigie.ingest.decoding import RecordDecoder
from vigie.ingest.pipeline import Replay
from vigie.ingest.producer import Compression, KafkaProducer
from vigie.ingest.readers import read_records
from vigie.ingest.topics import admin_client, ensure_topics
from vigie.settings import Settings


def generated(n: int, seed: int, directory: Path) -> Path:
    """A declarations file from ``vigie generate``."""
    out = directory / f"declarations-{n}-{seed}.jsonl"
    if not out.exists():
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
    return out


def validate_only(path: Path, settings: Settings) -> dict[str, Any]:
    """Read, validate and re-encode every record, without producing."""
    decoder = RecordDecoder(DECLARATIONS, None, settings.max_message_bytes)
    started = time.perf_counter()
    count = 0
    for record in read_records(path):
        decoder.accept(record)
        count += 1
    seconds = time.perf_counter() - started
    return {"records": count, "seconds": round(seconds, 3), "per_second": round(count / seconds)}


def replay_once(path: Path, settings: Settings, compression: Compression) -> dict[str, Any]:
    """One full replay into fresh topics."""
    run_settings = settings.model_copy(update={"topic_prefix": f"bench-{uuid.uuid4().hex[:8]}."})
    ensure_topics(run_settings)
    cpu = time.process_time()
    try:
        report = Replay(KafkaProducer(run_settings, compression=compression)).run([path])
    finally:
        cpu = time.process_time() - cpu
        drop_topics(run_settings)
    result = report.as_dict()
    result["process_cpu_seconds"] = round(cpu, 3)
    # What one uncontended core would sustain (librdkafka's threads included; the broker's
    # own CPU not): the figure to compare across machines when other work shares the cores.
    result["cpu_bound_messages_per_second"] = round(report.produced / cpu) if cpu else None
    return result


def drop_topics(settings: Settings) -> None:
    """Delete the run's topics: a benchmark leaves no data behind on the broker."""
    admin = admin_client(settings)
    futures = admin.delete_topics([settings.topic(t.name) for t in CATALOGUE])
    for future in futures.values():
        future.result(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--input", type=Path, default=None)
    parser.add_argument("--compression", choices=["lz4", "zstd", "none"], default="lz4")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()

    settings = Settings()
    path = args.input or generated(args.n, args.seed, Path(tempfile.gettempdir()))
    runs = [replay_once(path, settings, args.compression) for _ in range(args.repeat)]
    best = max(runs, key=lambda r: float(r["messages_per_second"]))
    result = {
        "input": str(path),
        "input_bytes": path.stat().st_size,
        "bootstrap": settings.bootstrap_servers,
        "compression": args.compression,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "validate_only": validate_only(path, settings),
        "replay_runs": runs,
        "best_messages_per_second": best["messages_per_second"],
    }
    sys.stdout.buffer.write(orjson.dumps(result, option=orjson.OPT_INDENT_2) + b"\n")


if __name__ == "__main__":
    main()
