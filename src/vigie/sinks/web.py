"""``/health``, ``/ready`` and ``/metrics`` of a sink command, on a small HTTP server.

Each sink command (``vigie warehouse write``, ``vigie alerts publish``, ``vigie webhooks
dispatch``) serves them with ``--http-port``, on 127.0.0.1 unless told otherwise:

* ``GET /health``: 200 while the process runs.
* ``GET /ready``: the sink's state as JSON (connected to Kafka, failing since, last error,
  lag per partition, figures); 200 when Kafka answers and the sink writes, else 503.
* ``GET /metrics``: Prometheus text, from a registry of the command's own, read from the
  pump's figures when scraped (:class:`PumpCollector`).

Examples
--------
>>> server = serve("127.0.0.1", 0, lambda: {"ready": False, "state": "failing"}, new_registry())
>>> import urllib.request, urllib.error
>>> url = f"http://127.0.0.1:{server.server_address[1]}"
>>> urllib.request.urlopen(url + "/health").read()
b'{"status":"ok"}'
>>> try:
...     urllib.request.urlopen(url + "/ready")
... except urllib.error.HTTPError as exc:
...     print(exc.code, exc.read())
503 b'{"ready":false,"state":"failing"}'
>>> server.shutdown(); server.server_close()
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import orjson
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from vigie.sinks.pump import Pump

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
Readiness = Callable[[], dict[str, Any]]


def new_registry() -> CollectorRegistry:
    """A registry of the command's own (not prometheus-client's global one)."""
    return CollectorRegistry(auto_describe=True)


class PumpCollector(Collector):
    """The figures of a :class:`~vigie.sinks.pump.Pump`, as Prometheus metrics."""

    def __init__(self, pump: Pump) -> None:
        self.pump = pump

    def collect(self) -> Iterator[Metric]:
        pump, stats, sink = self.pump, self.pump.stats, self.pump.name
        yield _counter(
            "vigie_sink_records_consumed", "Records read from Kafka.", sink, stats.consumed
        )
        written = CounterMetricFamily(
            "vigie_sink_records_written", "Records written, by target.", labels=["sink", "target"]
        )
        for target, n in stats.rows.items():
            written.add_metric([sink, target], n)
        yield written
        letters = CounterMetricFamily(
            "vigie_sink_dead_letters",
            "Undecodable records sent to the dead letters, by reason.",
            labels=["sink", "reason"],
        )
        for reason, n in stats.dead_letter_reasons.items():
            letters.add_metric([sink, reason], n)
        yield letters
        yield _counter(
            "vigie_sink_consumer_rejoins",
            "Consumers made anew because their group membership stalled.",
            sink,
            stats.rejoins,
        )
        yield _counter(
            "vigie_sink_checkpoints", "Flushes followed by a commit.", sink, stats.checkpoints
        )
        yield _counter(
            "vigie_sink_write_failures", "Failed write attempts.", sink, pump.health.total_failures
        )
        failing = pump.health.state == "failing"
        yield _gauge("vigie_sink_failing", "1 while writes fail.", sink, float(failing))
        since = pump.health.failing_since
        yield _gauge(
            "vigie_sink_failing_since_seconds",
            "Unix time the current failing spell began (0: healthy).",
            sink,
            since or 0.0,
        )
        yield _gauge(
            "vigie_sink_kafka_connected",
            "1 while Kafka answers.",
            sink,
            float(pump.events.reachable),
        )
        yield _gauge(
            "vigie_sink_buffered_records", "Records not written yet.", sink, pump.pending()
        )
        lag = GaugeMetricFamily(
            "vigie_sink_consumer_lag",
            "Records between a partition's end and the read position.",
            labels=["sink", "topic", "partition"],
        )
        for (topic, partition), n in sorted(pump.events.lag.items()):
            lag.add_metric([sink, topic, str(partition)], n)
        yield lag


def _counter(name: str, doc: str, sink: str, value: float) -> CounterMetricFamily:
    family = CounterMetricFamily(name, doc, labels=["sink"])
    family.add_metric([sink], value)
    return family


def _gauge(name: str, doc: str, sink: str, value: float) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, doc, labels=["sink"])
    family.add_metric([sink], value)
    return family


def serve(
    host: str, port: int, ready: Readiness, registry: CollectorRegistry
) -> ThreadingHTTPServer:
    """Start the endpoints in a daemon thread; ``shutdown()`` the returned server to stop."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            log.debug("http: " + format, *args)

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/health":
                self._send(200, orjson.dumps({"status": "ok"}), "application/json")
            elif path == "/ready":
                body = ready()
                self._send(
                    200 if body.get("ready") else 503, orjson.dumps(body), "application/json"
                )
            elif path == "/metrics":
                self._send(200, generate_latest(registry), CONTENT_TYPE)
            else:
                self._send(404, b'{"error":"not found"}', "application/json")

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="sink-http", daemon=True).start()
    return server


class Endpoints:
    """The endpoints of one command, on ``port`` if one is given (else nothing is served).

    :meth:`serve` may be called again as the command moves on (connecting, then running):
    ``/ready`` then answers from the latest readiness, and the new collectors are added.
    """

    def __init__(self, host: str, port: int | None) -> None:
        self.host = host
        self.port = port
        self.server: ThreadingHTTPServer | None = None
        self.registry = new_registry()
        self._ready: Readiness = lambda: {"ready": False}

    def serve(self, ready: Readiness, *collectors: Collector) -> None:
        """Serve ``ready`` and the collectors' metrics (starting the server if needed)."""
        if self.port is None:
            return
        self._ready = ready
        for collector in collectors:
            self.registry.register(collector)
        if self.server is None:
            self.server = serve(self.host, self.port, lambda: self._ready(), self.registry)
            log.info("serving /health, /ready, /metrics on http://%s:%d", self.host, self.port)

    def serve_pump(self, pump: Pump) -> None:
        """Serve a pump's readiness and figures."""
        self.serve(pump.readiness, PumpCollector(pump))

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None
