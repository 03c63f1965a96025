"""``/ready`` and ``/metrics`` of the webhook dispatcher: its intake, outbox and receivers.

The dispatcher is ready when its intake writes the outbox and Kafka answers; a receiver
that fails does not make it unready (its deliveries wait in the outbox), but ``/ready``
says which subscriber fails, since when and why.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from vigie.sinks.pump import Pump
from vigie.sinks.web import Endpoints, PumpCollector
from vigie.sinks.webhooks.dispatcher import Dispatcher
from vigie.sinks.webhooks.outbox import Outbox


class DispatcherState(Collector):
    """Reads the outbox (on a connection of its own) and the subscribers' health."""

    def __init__(self, pump: Pump, dispatcher: Dispatcher) -> None:
        self.pump = pump
        self.dispatcher = dispatcher
        self.outbox = Outbox(dispatcher.outbox.path)
        self._lock = threading.Lock()

    def counts(self) -> dict[str, int]:
        with self._lock:
            return self.outbox.counts()

    def readiness(self) -> dict[str, Any]:
        body = self.pump.readiness()
        body["outbox"] = self.counts()
        body["subscribers"] = {n: h.as_dict() for n, h in self.dispatcher.health.items()}
        return body

    def collect(self) -> Iterator[Metric]:
        outbox = GaugeMetricFamily(
            "vigie_webhook_outbox", "Deliveries in the outbox, by status.", labels=["status"]
        )
        for status, n in self.counts().items():
            outbox.add_metric([status], n)
        yield outbox
        failing = GaugeMetricFamily(
            "vigie_webhook_subscriber_failing",
            "1 while deliveries to the subscriber fail.",
            labels=["subscriber"],
        )
        failures = CounterMetricFamily(
            "vigie_webhook_delivery_failures", "Failed delivery attempts.", labels=["subscriber"]
        )
        for name, health in self.dispatcher.health.items():
            failing.add_metric([name], float(health.state == "failing"))
            failures.add_metric([name], health.total_failures)
        yield failing
        yield failures


def serve_dispatcher(web: Endpoints, pump: Pump, dispatcher: Dispatcher) -> None:
    """Serve the dispatcher's readiness and metrics on ``web`` (if it has a port)."""
    if web.port is None:
        return
    state = DispatcherState(pump, dispatcher)
    web.serve(state.readiness, PumpCollector(pump), state)
