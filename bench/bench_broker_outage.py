"""A broker outage under a running sink: log lines during it, seconds to resume after it.

Needs a Kafka of its own that this script may stop and start: the local stack of
``--state-dir`` (started first with ``VIGIE_STATE_DIR=<dir> VIGIE_KAFKA_PORT=...
vigie stack up``), never a shared one. It runs ``vigie alerts publish`` against that
broker and its Redis, produces alerts at a steady rate throughout, stops the broker for
``--outage`` seconds and starts it again, then prints:

* the publisher's log lines during the outage, per minute;
* the seconds from the broker answering again to the first alert written to Redis after
  it, and to the last of the alerts produced meanwhile.

``--python-path`` runs the publisher from another source tree (an older commit unpacked
with ``git archive``), for a before/after comparison.

    python bench/bench_broker_outage.py --state-dir .vigie-exp --kafka-port 39092 \\
        --controller-port 39093 --redis-port 36379 --outage 60
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import redis
from confluent_kafka import Producer

from vigie.contracts.codec import encode
from vigie.ingest.topics import ensure_topics
from vigie.settings import Settings
from vigie.sinks.examples import example_alert
from vigie_dev.stack import kafka, process


def main() -> None:
    args = parse()
    settings = Settings(
        state_dir=Path(args.state_dir),
        kafka_port=args.kafka_port,
        kafka_controller_port=args.controller_port,
        redis_port=args.redis_port,
        topic_prefix=f"outage-{uuid.uuid4().hex[:8]}.",
        redis_prefix=f"outage-{uuid.uuid4().hex[:8]}",
    )
    ensure_topics(settings)
    log_path = Path(args.state_dir) / f"publisher-{settings.topic_prefix}log"
    publisher = start_publisher(settings, log_path, args.python_path)
    client = redis.Redis.from_url(settings.redis_dsn, decode_responses=True)
    stream = f"{settings.redis_prefix}:alerts"
    producing = threading.Event()
    producing.set()
    sent = [0]
    thread = threading.Thread(target=produce, args=(settings, args.rate, producing, sent))
    thread.start()
    try:
        wait_for(lambda: client.xlen(stream) > 0, 120, "the first alert in Redis")
        time.sleep(args.warmup)
        lines_before = count_lines(log_path)
        stop_broker(settings)
        stopped_at = time.monotonic()
        time.sleep(args.outage)
        lines_during = count_lines(log_path) - lines_before
        outage_s = time.monotonic() - stopped_at
        length = client.xlen(stream)
        kafka.start(settings)
        wait_for(lambda: kafka.answers(settings.bootstrap_servers, 1.0), 180, "the broker")
        back_at = time.monotonic()
        wait_for(lambda: client.xlen(stream) > length, 300, "an alert after the outage")
        first_s = time.monotonic() - back_at
        producing.clear()
        thread.join()
        wait_for(lambda: client.xlen(stream) >= sent[0], 300, "every alert in Redis")
        all_s = time.monotonic() - back_at
        print(
            f"outage {outage_s:.0f} s: publisher log {lines_during} lines "
            f"({lines_during / outage_s * 60:.0f} per minute); after the broker answered: "
            f"first alert in Redis {first_s:.1f} s, all {sent[0]} alerts {all_s:.1f} s"
        )
    finally:
        producing.clear()
        thread.join()
        publisher.terminate()
        publisher.wait(60)
        keys = list(client.scan_iter(f"{settings.redis_prefix}:*"))
        if keys:
            client.delete(*keys)


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--state-dir", required=True)
    parser.add_argument("--kafka-port", type=int, required=True)
    parser.add_argument("--controller-port", type=int, required=True)
    parser.add_argument("--redis-port", type=int, required=True)
    parser.add_argument("--outage", type=float, default=60.0)
    parser.add_argument("--warmup", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=20.0, help="alerts per second")
    parser.add_argument("--python-path", default=None)
    return parser.parse_args()


def start_publisher(
    settings: Settings, log: Path, python_path: str | None
) -> subprocess.Popen[bytes]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("VIGIE_")},
        "VIGIE_KAFKA_BOOTSTRAP": settings.bootstrap_servers,
        "VIGIE_REDIS_URL": settings.redis_dsn,
        "VIGIE_TOPIC_PREFIX": settings.topic_prefix,
        "VIGIE_REDIS_PREFIX": settings.redis_prefix,
    }
    if python_path:
        env["PYTHONPATH"] = python_path
    argv = [sys.executable, "-c", "from vigie.cli import main; main()", "alerts", "publish"]
    with log.open("wb") as out:
        return subprocess.Popen([*argv, "--group", f"{settings.topic_prefix}g"], env=env,
                                stdout=out, stderr=subprocess.STDOUT)  # fmt: skip


def produce(settings: Settings, rate: float, producing: threading.Event, sent: list[int]) -> None:
    """Alerts at ``rate`` per second while ``producing`` is set; kept in memory during the
    outage (a long message timeout) and delivered when the broker is back."""
    producer = Producer(
        {
            "bootstrap.servers": settings.bootstrap_servers,
            "message.timeout.ms": 900_000,
            "log_level": 0,
            "linger.ms": 5,
        }
    )
    topic = settings.topic("alerts")
    started = time.monotonic()
    while producing.is_set():
        alert = example_alert(f"D-{sent[0]}")
        producer.produce(topic, encode(alert), alert.score.declaration_id.encode())
        sent[0] += 1
        ahead = sent[0] / rate - (time.monotonic() - started)
        producer.poll(max(0.0, ahead))
    producer.flush(900)


def stop_broker(settings: Settings) -> None:
    paths = kafka.paths(settings)
    pid = process.read_pid(paths.pidfile)
    if not process.stop(pid or -1, kafka.marker(settings), grace_s=60, pidfile=paths.pidfile):
        raise SystemExit(f"no Kafka of ours under {settings.state_dir}: start it first")


def count_lines(path: Path) -> int:
    return len(path.read_bytes().splitlines()) if path.exists() else 0


def wait_for(check: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.2)
    raise SystemExit(f"timed out after {timeout:.0f} s waiting for {what}")


if __name__ == "__main__":
    main()
