"""The declarations a run measures: generated once, kept in a file, produced to Kafka.

Every throughput scenario reads the same ``n`` declarations (:mod:`vigie_dev.generator`,
fixed seed), produced to a fresh topic before its consumer starts: a backlog, so the
figure is the consumer's maximum throughput, not the producer's pace. The file is a cache
under ``<state dir>/bench/``: one line per declaration, ``importer TAB declaration id TAB
fraud (0/1) TAB wire JSON``, the importer being the topic's key. The fraud flag lets the
detectors scenario build control results as :mod:`bench.bench_engine` does.

Examples
--------
>>> import tempfile
>>> from pathlib import Path
>>> backlog = Backlog.build(Path(tempfile.mkdtemp()), n=300, seed=3, importers=50)
>>> backlog.n, backlog.meta["importers_seen"] <= 50
(300, True)
>>> first = next(backlog.lines())
>>> first.key.startswith(b"FR"), first.value[:1]
(True, b'{')
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import orjson

from vigie.contracts.codec import encode
from vigie.errors import VigieError
from vigie.settings import Settings

log = logging.getLogger(__name__)

PRODUCER = {"linger.ms": 20, "compression.type": "lz4", "acks": "all"}
"""As ``vigie replay`` produces: batched, compressed, every record acknowledged."""


class Line(NamedTuple):
    key: bytes
    declaration_id: str
    fraud: bool
    value: bytes


@dataclass(frozen=True)
class Backlog:
    """A file of generated declarations and what the generator made of them."""

    path: Path
    meta: dict[str, Any]

    @property
    def n(self) -> int:
        return int(self.meta["n"])

    @classmethod
    def build(cls, directory: Path, *, n: int, seed: int, importers: int | None) -> Backlog:
        """The cached file for these parameters, generated first if missing."""
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"backlog-n{n}-s{seed}-i{importers or 'default'}.tsv"
        meta_path = path.with_suffix(".json")
        if path.exists() and meta_path.exists():
            return cls(path, orjson.loads(meta_path.read_bytes()))
        # in a process of its own: at a million declarations the generator's columns take
        # about a gigabyte, which this long-running process need not keep
        spawn = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(1, mp_context=spawn) as pool:
            meta = pool.submit(_generate, path, n=n, seed=seed, importers=importers).result()
        meta_path.write_bytes(orjson.dumps(meta))
        return cls(path, meta)

    def lines(self, limit: int | None = None) -> Iterator[Line]:
        """The declarations in lodging order (the first ``limit`` only, if given)."""
        with self.path.open("rb") as handle:
            for count, raw in enumerate(handle):
                if limit is not None and count >= limit:
                    return
                key, did, fraud, value = raw.rstrip(b"\n").split(b"\t", 3)
                yield Line(key, did.decode(), fraud == b"1", value)


def _generate(path: Path, *, n: int, seed: int, importers: int | None) -> dict[str, Any]:
    from vigie_dev.generator import GeneratorConfig, stream

    config = GeneratorConfig(n=n, seed=seed, importers=importers)
    log.info("generating %d declarations (seed %d, %s importers)", n, seed, importers)
    began = time.perf_counter()
    seen_importers: set[str] = set()
    codes: set[str] = set()
    partial = path.with_suffix(f".partial-{os.getpid()}")
    with partial.open("wb") as out:
        for item in stream(config):
            d = item.declaration
            seen_importers.add(d.importer)
            codes.add(d.commodity_code)
            fraud = b"1" if item.truth.typology else b"0"
            fields = (d.importer.encode(), d.declaration_id.encode(), fraud, encode(d))
            out.write(b"\t".join(fields) + b"\n")
    partial.replace(path)
    return {
        "n": n,
        "seed": seed,
        "importers": config.importer_count(),
        "importers_seen": len(seen_importers),
        "commodity_codes_seen": len(codes),
        "generated_in_s": round(time.perf_counter() - began, 1),
    }


def kafka_producer(settings: Settings, **overrides: Any) -> Any:
    from confluent_kafka import Producer

    return Producer({"bootstrap.servers": settings.bootstrap_servers, **PRODUCER, **overrides})


def send(producer: Any, topic: str, key: bytes, value: bytes, **options: Any) -> None:
    """Produce one record, waiting for room when librdkafka's queue is full."""
    while True:
        try:
            producer.produce(topic, value, key, **options)
            return
        except BufferError:
            producer.poll(0.05)


def produce_backlog(settings: Settings, backlog: Backlog, topic: str) -> dict[str, Any]:
    """Produce every declaration to ``topic`` and wait until all are acknowledged."""
    failed: list[str] = []

    def report(err: Any, _msg: Any) -> None:
        if err is not None:
            failed.append(str(err))

    producer = kafka_producer(settings)
    began = time.perf_counter()
    count = 0
    for line in backlog.lines():
        send(producer, topic, line.key, line.value, on_delivery=report)
        count += 1
        if count % 1000 == 0:
            producer.poll(0)
    left = producer.flush(300)
    if left or failed:
        raise VigieError(f"backlog to {topic}: {left} unsent, {len(failed)} failed {failed[:3]}")
    seconds = time.perf_counter() - began
    return {"produced": count, "seconds": round(seconds, 2), "per_s": round(count / seconds)}


def produce_steady(
    settings: Settings,
    lines: Iterator[Line],
    topic: str,
    per_second: float,
    tick: Callable[[], None] = lambda: None,
) -> tuple[dict[str, int], float]:
    """Produce at ``per_second`` (10 ms ticks), each record stamped with its production
    time; the production time (epoch ms) of each declaration id, and the achieved rate."""
    producer = kafka_producer(settings, **{"linger.ms": 1, "compression.type": "none"})
    produced: dict[str, int] = {}
    began = time.monotonic()
    pending = next(lines, None)
    while pending is not None:
        due = int((time.monotonic() - began) * per_second) + 1
        while pending is not None and len(produced) < due:
            now_ms = int(time.time() * 1000)
            send(producer, topic, pending.key, pending.value, timestamp=now_ms)
            produced[pending.declaration_id] = now_ms
            pending = next(lines, None)
        producer.poll(0)
        tick()
        time.sleep(0.01)
    if producer.flush(60):
        raise VigieError(f"steady production to {topic}: records left unsent")
    return produced, round(len(produced) / (time.monotonic() - began), 1)
