"""What the demo sees: produce times and scores on Kafka, alerts read from Redis."""

from __future__ import annotations

from collections import Counter
from collections.abc import KeysView
from dataclasses import dataclass, field

import orjson

from vigie.contracts.catalogue import DECLARATIONS, SCORES
from vigie.kafka import consumer_config
from vigie.settings import Settings


def percentiles(values: list[float]) -> dict[str, float | int | None]:
    """p50 and p99 (nearest rank) of ``values``, and how many there were."""
    if not values:
        return {"p50": None, "p99": None, "n": 0}
    ordered = sorted(values)

    def rank(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, max(0, int(q * len(ordered) + 0.5) - 1))], 1)

    return {"p50": rank(0.5), "p99": rank(0.99), "n": len(ordered)}


@dataclass
class Watch:
    """What the demo has seen: produce times, scores on Kafka, alerts read from Redis.

    Times are epoch milliseconds: the Kafka message timestamps of a declaration (set when
    it was produced) and of its first score, and the XADD time of its alert's stream entry.
    Each Score's duty at risk is kept, and each alert's kind (risk or random audit).

    Examples
    --------
    >>> w = Watch()
    >>> w.on_score(b'{"declaration_id": "D-1", "selected": true,'
    ...            b' "valuation": {"duty_at_risk_eur": 12.5}}', 1_000_250)
    >>> w.on_declaration("D-1", 1_000_000)
    >>> w.on_redis("D-1", "1000400-0", "random_audit"), w.on_redis("D-1", "1000900-0", "risk")
    (True, False)
    >>> w.latencies()["produced_to_score"], w.latencies()["produced_to_redis"]["p50"]
    ({'p50': 250.0, 'p99': 250.0, 'n': 1}, 400.0)
    >>> w.duty_at_risk, w.kinds()
    ({'D-1': 12.5}, Counter({'random_audit': 1}))
    """

    produced_ms: dict[str, int] = field(default_factory=dict)
    scored_ms: dict[str, int] = field(default_factory=dict)
    redis_ms: dict[str, int] = field(default_factory=dict)
    selected: set[str] = field(default_factory=set)
    duty_at_risk: dict[str, float] = field(default_factory=dict)
    kind: dict[str, str] = field(default_factory=dict)

    @property
    def scored(self) -> KeysView[str]:
        return self.scored_ms.keys()

    @property
    def in_redis(self) -> KeysView[str]:
        return self.redis_ms.keys()

    def on_declaration(self, declaration_id: str, timestamp_ms: int) -> None:
        self.produced_ms.setdefault(declaration_id, timestamp_ms)

    def on_score(self, value: bytes, timestamp_ms: int) -> None:
        score = orjson.loads(value)
        did = score["declaration_id"]
        if did in self.scored_ms:
            return
        self.scored_ms[did] = timestamp_ms
        self.duty_at_risk[did] = float(score.get("valuation", {}).get("duty_at_risk_eur", 0.0))
        if score["selected"]:
            self.selected.add(did)

    def on_redis(self, declaration_id: str, entry_id: str, kind: str) -> bool:
        """Record an alert read from the stream; False if it was seen before."""
        if declaration_id in self.redis_ms:
            return False
        self.redis_ms[declaration_id] = int(entry_id.split("-")[0])
        self.kind[declaration_id] = kind
        return True

    def kinds(self) -> Counter[str]:
        """Alerts read from Redis, by kind (``risk``, ``random_audit``)."""
        return Counter(self.kind.values())

    def scoring_rate(self) -> float | None:
        """Declarations the worker scored per second, from its first Score to its last.

        >>> w = Watch(scored_ms={"a": 0, "b": 500, "c": 1000})
        >>> w.scoring_rate()
        2.0
        """
        if len(self.scored_ms) < 2:
            return None
        span_s = (max(self.scored_ms.values()) - min(self.scored_ms.values())) / 1000
        return round((len(self.scored_ms) - 1) / span_s, 1) if span_s > 0 else None

    def latencies(self, ids: set[str] | None = None) -> dict[str, dict[str, float | int | None]]:
        """Production -> score on Kafka, production -> alert in Redis (of ``ids``, or all)."""
        return {
            "produced_to_score": percentiles(self._since_produced(self.scored_ms, ids)),
            "produced_to_redis": percentiles(self._since_produced(self.redis_ms, ids)),
        }

    def _since_produced(self, times: dict[str, int], ids: set[str] | None) -> list[float]:
        produced = self.produced_ms
        return [
            float(t - produced[d])
            for d, t in times.items()
            if d in produced and (ids is None or d in ids)
        ]


class TopicWatcher:
    """Reads ``declarations`` (produce times) and ``scores`` of the run from the start."""

    def __init__(self, settings: Settings, watch: Watch) -> None:
        from confluent_kafka import Consumer

        self.watch = watch
        self.declarations = settings.topic(DECLARATIONS.name)
        group = f"{settings.topic_prefix}demo-watch"
        self.consumer = Consumer(consumer_config(settings, group, client_id="vigie-demo-watch"))
        self.consumer.subscribe([self.declarations, settings.topic(SCORES.name)])

    def poll(self, timeout: float = 0.05) -> int:
        """Consume what is there; how many messages were read."""
        messages = self.consumer.consume(num_messages=2000, timeout=timeout)
        for m in messages:
            value = m.value()
            if m.error() is not None or value is None:
                continue
            timestamp = int(m.timestamp()[1])
            if m.topic() == self.declarations:
                self.watch.on_declaration(orjson.loads(value)["declaration_id"], timestamp)
            else:
                self.watch.on_score(value, timestamp)
        return len(messages)

    def close(self) -> None:
        self.consumer.close()
