"""Alert latency end to end: a declaration produced to Kafka -> its alert in the Redis stream.

Runs the real ``vigie worker`` and ``vigie alerts publish`` as child processes (each run
has its own topic prefix ``bench-<id>.``, Redis prefix and state directory), warms them up
with ``--warmup`` declarations, then produces generated declarations at a steady
``--rate`` per second for ``--seconds``, each stamped with its production time (the Kafka
message timestamp, set at ``produce()``). The alert's time in Redis is the XADD time in its
stream entry id (same host clock). Figures: p50/p99 of production -> alert in Redis (alerts
only) and production -> score on Kafka (every declaration), the achieved production rate
and the scoring throughput. A rate above what the worker sustains measures the backlog,
not the engine: compare with a lower ``--rate``.

The broker and Redis are the configured ones (``VIGIE_KAFKA_BOOTSTRAP``,
``VIGIE_REDIS_URL``) or the dev stack's (started if needed). The run's topics are deleted
afterwards. The result is one JSON object on stdout; nothing is asserted.

Usage::

    .venv/bin/python bench/bench_alert_latency.py [--rate 1000] [--seconds 30]
        [--warmup 3000] [--seed 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from vigie.contracts.catalogue import DECLARATIONS
from vigie.contracts.codec import encode
from vigie.ingest.topics import admin_client, delete_topics, ensure_topics
from vigie.settings import Settings
from vigie.sinks.redis_alerts import AlertKeys, redis_client
from vigie_dev.demo import Children, TopicWatcher, Watch, free_port
from vigie_dev.generator import generate
from vigie_dev.stack import up


def bench_settings(base: Settings, state_dir: Path) -> Settings:
    run = f"bench-{uuid.uuid4().hex[:8]}"
    return base.model_copy(
        update={
            "state_dir": state_dir,
            "kafka_bootstrap": base.bootstrap_servers,
            "redis_url": base.redis_dsn,
            "topic_prefix": f"{base.topic_prefix}{run}.",
            "redis_prefix": f"{base.redis_prefix}.{run}",
            "worker_web_port": free_port(),
        }
    )


class Feed:
    """XREAD of the run's alert stream into a :class:`Watch`."""

    def __init__(self, settings: Settings, watch: Watch) -> None:
        self.client = redis_client(settings)
        self.stream = AlertKeys(settings.redis_prefix).stream
        self.watch = watch
        self.last = "0-0"

    def poll(self, block_ms: int = 20) -> int:
        block = block_ms if block_ms > 0 else None  # BLOCK 0 would wait forever
        response: Any = self.client.xread({self.stream: self.last}, count=1000, block=block)
        n = 0
        for _stream, entries in response or []:
            for entry_id, fields in entries:
                self.last = entry_id
                n += self.watch.on_redis(fields["declaration_id"], entry_id)
        return n


def produce_steady(settings: Settings, decls: list[Any], rate: float, pump: Any) -> float:
    """Produce ``decls`` at ``rate`` per second (10 ms ticks); the achieved rate."""
    from confluent_kafka import Producer

    producer = Producer(
        {"bootstrap.servers": settings.bootstrap_servers, "linger.ms": 1, "acks": "all"}
    )
    topic = settings.topic(DECLARATIONS.name)
    started = time.monotonic()
    sent = 0
    while sent < len(decls):
        due = min(len(decls), int((time.monotonic() - started) * rate) + 1)
        for decl in decls[sent:due]:
            now_ms = int(time.time() * 1000)
            producer.produce(topic, encode(decl), decl.importer.encode(), timestamp=now_ms)
        sent = due
        producer.poll(0)
        pump()
        time.sleep(0.005)
    producer.flush(30)
    return round(sent / (time.monotonic() - started), 1)


def wait_processed(
    watch: Watch, n: int, watcher: TopicWatcher, feed: Feed, children: Children, timeout: float
) -> None:
    """Until ``n`` declarations are scored and every alert among them is in Redis."""
    deadline = time.monotonic() + timeout
    while not (len(watch.scored) >= n and watch.selected <= watch.in_redis):
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"after {timeout:.0f} s: scored {len(watch.scored)}/{n}, "
                f"alerts {len(watch.selected)}, in Redis {len(watch.in_redis)}"
            )
        children.check()
        watcher.poll()
        feed.poll()


def run(args: argparse.Namespace) -> dict[str, Any]:
    base = Settings()
    up(base)
    with tempfile.TemporaryDirectory(prefix="vigie-bench-") as tmp:
        settings = bench_settings(base, Path(tmp))
        ensure_topics(settings)
        total = args.warmup + int(args.rate * args.seconds)
        decls = [item.declaration for item in generate(total, seed=args.seed)]
        watch = Watch()
        children = Children(settings)
        watcher = TopicWatcher(settings, watch)
        feed = Feed(settings, watch)
        pump = lambda: (watcher.poll(0), feed.poll(0))  # noqa: E731
        try:
            children.start("worker", "worker")
            children.start("alerts", "alerts", "publish", "--group", f"{settings.topic_prefix}a")
            produce_steady(settings, decls[: args.warmup], 5000.0, pump)
            wait_processed(watch, args.warmup, watcher, feed, children, 600)
            began = time.monotonic()
            achieved = produce_steady(settings, decls[args.warmup :], args.rate, pump)
            wait_processed(watch, total, watcher, feed, children, 900)
            elapsed = time.monotonic() - began
        finally:
            children.stop_all()
            watcher.close()
            feed.client.close()
            delete_topics(admin_client(settings), prefix=settings.topic_prefix)
    measured = total - args.warmup
    latencies = watch.latencies({d.declaration_id for d in decls[args.warmup :]})
    return {
        "rate_asked": args.rate,
        "rate_achieved": achieved,
        "declarations": measured,
        "alerts": latencies["produced_to_redis"]["n"],
        "produced_to_redis_ms": latencies["produced_to_redis"],
        "produced_to_score_ms": latencies["produced_to_score"],
        "scored_per_s": round(measured / elapsed, 1),
        "warmup": args.warmup,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--warmup", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=3)
    import orjson

    print(orjson.dumps(run(parser.parse_args())).decode())


if __name__ == "__main__":
    main()
