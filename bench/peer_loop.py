"""The peer loop: what a user would write instead of Vigie, the reference the worker must beat.

confluent-kafka reads the declarations, one RiskEngine per partition scores then learns
each, and the engine's answer goes out as JSON, keyed by declaration id. No checkpoints, no
snapshots, no dead letters. The engine's calls are timed as the worker times them, so that
the two loops' time outside the engine compares. ``vigie bench`` runs it as its own process
and prints its rate:

    python bench/peer_loop.py --bootstrap 127.0.0.1:19092 --topic T --scores-topic S --n N
"""

from __future__ import annotations

import argparse
import resource
import time
import uuid
from typing import Any

import orjson
from confluent_kafka import Consumer, Producer
from pydantic import BaseModel

from vigie.contracts.codec import decode, encode
from vigie.contracts.schemas import Declaration
from vigie.model.engine import RiskEngine


def to_json(score: Any) -> bytes:
    """The engine's answer on the wire: a pydantic Score, or a plain dataclass."""
    if isinstance(score, BaseModel):
        return encode(score)
    return orjson.dumps(score, option=orjson.OPT_SERIALIZE_DATACLASS)


def main(bootstrap: str, topic: str, scores_topic: str, n: int) -> dict[str, Any]:
    group = f"peer-loop-{uuid.uuid4().hex[:8]}"
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})  # fmt: skip
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    assigned: list[float] = []
    consumer.subscribe([topic], on_assign=lambda _c, _p: assigned.append(time.time()))
    engines: dict[int, RiskEngine] = {}
    done = 0
    engine_s, clock = 0.0, time.perf_counter
    while done < n:
        for msg in consumer.consume(num_messages=500, timeout=0.5):
            if msg.error() is not None:
                continue
            decl = decode(Declaration, msg.value())
            partition = msg.partition() or 0
            if partition not in engines:
                engines[partition] = RiskEngine(seed=partition)
            engine = engines[partition]
            started = clock()
            score = engine.score_one(decl)
            engine.learn_one(decl)
            engine_s += clock() - started
            while True:
                try:
                    producer.produce(scores_topic, to_json(score), decl.declaration_id.encode())
                    break
                except BufferError:
                    producer.poll(0.05)
            done += 1
        producer.poll(0)
    producer.flush(120)
    consumer.close()
    done_at = time.time()
    return {"declarations": done, "assigned_at": assigned[0], "done_at": done_at,
            "per_s": round(done / (done_at - assigned[0]), 1),
            "engine_mean_ms": round(engine_s * 1000 / max(done, 1), 4),
            "peak_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    for name in ("--bootstrap", "--topic", "--scores-topic"):
        parser.add_argument(name, required=True)
    parser.add_argument("--n", type=int, required=True)
    args = parser.parse_args()
    print(orjson.dumps(main(args.bootstrap, args.topic, args.scores_topic, args.n)).decode())
