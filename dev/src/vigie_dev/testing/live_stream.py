"""A live stream of declarations, produced at a steady rate while faults come and go.

:class:`LiveStream` replays a generated stream, cut by day with each day's control results
after its declarations (:func:`vigie_dev.demo.stream.interleave`), through Vigie's own
bulk producer (:class:`vigie.ingest.producer.KafkaProducer`: idempotent, ``acks=all``),
at ``rate`` declarations per second, until its files end or it is told to stop. It
remembers when each declaration was handed to the producer, so that a fault's window
(the declarations produced while it lasted) can be told apart from the others. While the
broker is down the producer keeps the messages and delivers them once it is back
(``message.timeout.ms`` is raised to ten minutes: nothing is given up).
"""

from __future__ import annotations

import bisect
import threading
import time
from pathlib import Path
from typing import Any

import orjson

from vigie.contracts.catalogue import CONTROL_RESULTS, DECLARATIONS
from vigie.settings import Settings

DELIVERY_TIMEOUT_MS = 600_000


class LiveStream(threading.Thread):
    """Produces ``pairs`` (declarations file, control results file) at ``rate`` per second."""

    def __init__(self, settings: Settings, pairs: list[tuple[Path, Path]], rate: float) -> None:
        super().__init__(name="live-stream", daemon=True)
        self.settings, self.pairs, self.rate = settings, pairs, rate
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self._ids: list[str] = []
        self._times: list[float] = []
        self.controls = 0
        self.failures: int | None = None
        """Messages not acknowledged once flushed (None until the stream ended)."""
        self.errors: list[str] = []
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._stream()
        except BaseException as exc:  # reported by the scenario on its own thread
            self.error = exc

    def _stream(self) -> None:
        from vigie.ingest.producer import KafkaProducer

        producer = KafkaProducer(
            self.settings, overrides={"message.timeout.ms": DELIVERY_TIMEOUT_MS}, poll_every=50
        )
        declarations = self.settings.topic(DECLARATIONS.name)
        controls = self.settings.topic(CONTROL_RESULTS.name)
        began = time.monotonic()
        for decl_path, control_path in self.pairs:
            for line in decl_path.read_bytes().splitlines():
                if self.stopping.is_set():
                    break
                ahead = len(self._ids) / self.rate - (time.monotonic() - began)
                if ahead > 0:
                    producer.poll(ahead)
                record: dict[str, Any] = orjson.loads(line)
                producer.produce(declarations, line, str(record["importer"]).encode())
                with self.lock:
                    self._ids.append(str(record["declaration_id"]))
                    self._times.append(time.monotonic())
            if self.stopping.is_set():
                break
            for line in control_path.read_bytes().splitlines():
                result: dict[str, Any] = orjson.loads(line)
                producer.produce(controls, line, str(result["declaration_id"]).encode())
                self.controls += 1
        report = producer.flush(DELIVERY_TIMEOUT_MS / 1000)
        self.failures, self.errors = report.failures, list(report.errors)

    def stop(self, timeout: float = 660.0) -> None:
        """Stop producing and wait until every message is acknowledged (or given up)."""
        self.stopping.set()
        self.join(timeout)

    def count(self) -> int:
        """Declarations handed to the producer so far."""
        with self.lock:
            return len(self._ids)

    def ids(self, start: int = 0, end: int | None = None) -> list[str]:
        """The ids of declarations ``start`` to ``end`` (exclusive), in production order."""
        with self.lock:
            return self._ids[start:end]

    def produced_since(self, moment: float) -> int:
        """The index of the first declaration produced at or after ``moment`` (monotonic)."""
        with self.lock:
            return bisect.bisect_left(self._times, moment)
