"""The raw consumer: confluent-kafka reading and decoding the declarations, nothing else.

The ceiling any Kafka consumer in Python reaches on this machine before it does any work:
consume in batches, validate each record as a
:class:`~vigie.contracts.schemas.Declaration`. Run as its own process, from the
partitions' assignment to the ``n``-th declaration decoded::

    python -m vigie_dev.bench.raw --bootstrap 127.0.0.1:19092 --topic T --n 50000

prints one JSON object: declarations, seconds, per_s, peak_rss_kb.
"""

from __future__ import annotations

import argparse
import resource
import time
import uuid
from typing import Any

import orjson

from vigie.contracts.codec import decode
from vigie.contracts.schemas import Declaration
from vigie.errors import DecodeError


def consume(bootstrap: str, topic: str, n: int, timeout: float) -> dict[str, Any]:
    """Read and decode ``n`` declarations from ``topic``; the figures."""
    from confluent_kafka import Consumer

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bench-raw-{uuid.uuid4().hex[:10]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    assigned: list[float] = []
    consumer.subscribe([topic], on_assign=lambda _c, _p: assigned.append(time.monotonic()))
    decoded = rejected = 0
    deadline = time.monotonic() + timeout
    while decoded + rejected < n and time.monotonic() < deadline:
        for message in consumer.consume(num_messages=1000, timeout=0.5):
            if message.error() is not None:
                continue
            try:
                decode(Declaration, message.value())
                decoded += 1
            except DecodeError:
                rejected += 1
    finished = time.monotonic()
    consumer.close()
    seconds = finished - assigned[0] if assigned else 0.0
    return {
        "declarations": decoded,
        "rejected": rejected,
        "seconds": round(seconds, 3),
        "per_s": round(decoded / seconds, 1) if seconds > 0 else None,
        "peak_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--n", type=int, required=True)
    parser.add_argument("--timeout", type=float, default=3600.0)
    args = parser.parse_args()
    print(orjson.dumps(consume(args.bootstrap, args.topic, args.n, args.timeout)).decode())


if __name__ == "__main__":
    main()
