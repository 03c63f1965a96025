"""The worker process: a Faust application around the scoring loop.

Faust is the application framework: process lifecycle and signals, services, the HTTP
server and its views. Kafka I/O is confluent-kafka's (:mod:`vigie.worker.loop`), in a
thread of its own. Faust's streams cost more per record than the engine (a raw aiokafka
loop under Faust ran at a third of a plain confluent-kafka loop), and its consumer can
neither start a partition at the offsets of our own model snapshot nor commit chosen
offsets through a public API; librdkafka does both and batches for free.

Examples
--------
>>> from vigie.settings import Settings
>>> app_id(Settings(topic_prefix="t-1."))
't-1.vigie-worker'
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import threading
from pathlib import Path

import faust
from faust.app.base import BootStrategy
from mode import Service

from vigie.kafka import producer_config
from vigie.secretfiles import write_secret
from vigie.settings import Settings
from vigie.worker import web
from vigie.worker.loop import EngineFactory, ScoringLoop
from vigie.worker.metrics import WorkerMetrics

log = logging.getLogger(__name__)


def app_id(settings: Settings) -> str:
    return f"{settings.topic_prefix}vigie-worker"


class _NoKafka(BootStrategy):
    """Faust starts no Kafka client of its own: the scoring loop owns Kafka I/O."""

    enable_kafka = False


class _App(faust.App):
    BootStrategy = _NoKafka


class Worker:
    """One worker process: the scoring loop, its HTTP endpoints and its lifecycle.

    Parameters
    ----------
    settings
        Everything configurable (engine settings included).
    new_engine
        Builds a fresh engine for a partition (default: RiskEngine with the settings).
    """

    def __init__(self, settings: Settings, new_engine: EngineFactory | None = None) -> None:
        from confluent_kafka import Producer

        settings.state_dir.mkdir(parents=True, exist_ok=True)
        self.settings = settings
        self.metrics = WorkerMetrics()
        self.loop = ScoringLoop(settings, self.metrics, new_engine)
        self.app = _App(
            app_id(settings),
            broker=f"kafka://{settings.bootstrap_servers.split(',')[0]}",
            datadir=str(settings.state_dir.resolve() / "worker"),
            web_bind=settings.worker_web_host,
            web_host=settings.worker_web_host,
            web_port=settings.worker_web_port,
            web_router_enabled=False,
            web_tables_enabled=False,
            autodiscover=False,
        )
        self.app.service(_scoring_service(self.loop))
        controls = Producer(producer_config(settings, client_id="vigie-worker-controls"))
        web.attach(
            self.app,
            web.Endpoints(
                token=worker_token(settings),
                controls_token=settings.controls_token,
                status=lambda: self.loop.status,
                metrics=self.metrics,
                controls_topic=self.loop.topics.controls,
                producer=controls,
            ),
        )


def worker_token(settings: Settings) -> str:
    """The configured bearer token, or a random one written to ``<state_dir>/worker.token``
    (readable by its owner only)."""
    if settings.worker_token is not None:
        return settings.worker_token.get_secret_value()
    path = Path(settings.state_dir) / "worker.token"
    token = secrets.token_urlsafe(32)
    write_secret(path, token + "\n")
    log.warning("no VIGIE_WORKER_TOKEN: /ready and /metrics take the token in %s", path)
    return token


def _scoring_service(loop: ScoringLoop) -> type[Service]:
    """A Faust service that runs ``loop`` in a thread and stops it with the app."""

    class Scoring(Service):
        _thread: threading.Thread | None = None

        async def on_start(self) -> None:
            self._thread = threading.Thread(target=loop.run, name="vigie-scoring", daemon=True)
            self._thread.start()
            self.add_future(self._watch(self._thread))

        async def _watch(self, thread: threading.Thread) -> None:
            await asyncio.to_thread(thread.join)
            if loop.error is not None:
                await self.crash(loop.error)

        async def on_stop(self) -> None:
            loop.stop()
            if self._thread is not None:
                await asyncio.to_thread(self._thread.join)

    return Scoring


class _Process(faust.Worker):
    """Faust's worker without its terminal spinner, which puts the root logger at DEBUG
    so that every log record spins it: every library's debug call would build a record."""

    def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
        return None


def run(settings: Settings, *, loglevel: str = "warning") -> None:
    """Run a worker in the foreground until SIGTERM/SIGINT (checkpoints on the way out)."""
    worker = Worker(settings)
    _Process(worker.app, loglevel=loglevel, quiet=True).execute_from_commandline()
