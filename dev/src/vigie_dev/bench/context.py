"""One run's options and namespace: its topics, Redis keys and directory.

Every scenario that reads Kafka gets a fresh topic prefix ``bench-<run>-<scenario>.``
(its catalogue topics created, deleted when the scenario ends), so consumer groups,
snapshots and outputs of two scenarios or two runs never mix.

Examples
--------
>>> options = BenchOptions(n=1000)
>>> options.importer_count(1000), options.scenarios[:3]
(200, ('raw', 'detectors', 'peer'))
>>> BenchOptions(n=1000, only=("peer", "raw")).scenarios
('raw', 'peer')
"""

from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vigie.settings import Settings

if TYPE_CHECKING:
    from vigie_dev.bench.backlog import Backlog

SCENARIOS = ("raw", "detectors", "peer", "worker", "latency", "scaling")
"""Every scenario, in the order a run executes them."""


@dataclass(frozen=True)
class BenchOptions:
    """What to measure and how (the ``vigie bench`` options)."""

    n: int = 100_000
    seed: int = 7
    importers: int | None = None
    """Importers in the generated world; None: one per five declarations (at least 200)."""
    only: tuple[str, ...] = SCENARIOS
    workers: int = 2
    """Workers of the scaling scenario, sharing the partitions of one consumer group."""
    rates: tuple[float, ...] = ()
    """Steady rates of the latency scenario; empty: 1,000/s and half the worker's maximum."""
    seconds: float = 30.0
    warmup: int = 2000
    label_share: float = 0.06
    warehouse: bool = True
    results: Path | None = None

    def importer_count(self, n: int) -> int:
        return self.importers if self.importers is not None else max(200, n // 5)

    @property
    def scenarios(self) -> tuple[str, ...]:
        return tuple(s for s in SCENARIOS if s in self.only)

    @property
    def timeout_s(self) -> float:
        """The longest wait for one scenario to process the backlog (200/s at worst)."""
        return 300.0 + self.n / 200.0


@dataclass
class Context:
    """The run's base settings, identity, directory and backlog."""

    base: Settings
    options: BenchOptions
    backlog: Backlog
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    production: dict[str, Any] | None = None
    """How fast the backlog went to Kafka (declarations/s), once produced."""

    @property
    def directory(self) -> Path:
        return self.base.state_dir / "bench" / f"run-{self.run_id}"

    def settings_for(self, scenario: str) -> Settings:
        """Settings of one scenario: own topic prefix, Redis prefix and state directory."""
        name = f"bench-{self.run_id}-{scenario}"
        return self.base.model_copy(
            update={
                "topic_prefix": f"{self.base.topic_prefix}{name}.",
                "redis_prefix": f"{self.base.redis_prefix}.{name}",
                "state_dir": self.directory / scenario,
            }
        )

    @contextmanager
    def topics(self, scenario: str, *extra: str) -> Iterator[Settings]:
        """The scenario's catalogue topics (and ``extra`` ones), deleted on the way out."""
        from vigie.ingest.topics import admin_client, create_topic, delete_topics, ensure_topics

        settings = self.settings_for(scenario)
        settings.state_dir.mkdir(parents=True, exist_ok=True)
        ensure_topics(settings)
        admin = admin_client(settings)
        for name in extra:
            create_topic(admin, settings.topic(name), settings.topic_partitions)
        try:
            yield settings
        finally:
            delete_topics(admin, prefix=settings.topic_prefix)

    def cleanup(self) -> None:
        """Remove the run's directory (logs, snapshots, warehouse) after a good run."""
        shutil.rmtree(self.directory, ignore_errors=True)


def utc_stamp() -> str:
    """A UTC timestamp for file names: 20261201T101500Z."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
