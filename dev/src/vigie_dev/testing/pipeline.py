"""The whole engine as real processes on a private stack, with a hand on each of them.

:class:`Pipeline` runs ``vigie worker``, ``vigie warehouse write`` (hosted, see
:mod:`vigie_dev.testing.chdb_host`), ``vigie alerts publish`` and ``vigie webhooks
dispatch`` to a :class:`~vigie_dev.testing.receiver.WebhookReceiver`, all against a
:class:`~vigie_dev.testing.private_stack.PrivateStack`. Each can be killed (SIGKILL) and
started again. :meth:`Pipeline.caught_up` says whether the first *n* declarations of a
:class:`~vigie_dev.testing.live_stream.LiveStream` went all the way: scored, in the
warehouse, their alerts in the warehouse, in Redis and delivered to every subscriber
whose filters they match.
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import orjson

from vigie.contracts.codec import decode
from vigie.contracts.schemas import Alert
from vigie.secretfiles import write_secret
from vigie.settings import Settings
from vigie.sinks.webhooks.signing import new_secret
from vigie.sinks.webhooks.subscribers import Subscriber, load_subscribers
from vigie_dev.demo.processes import Children, child_env
from vigie_dev.testing import TopicReader, WorkerProcess, free_port, wait_for
from vigie_dev.testing.chdb_host import HostedWarehouse
from vigie_dev.testing.receiver import WebhookReceiver

SINK_DELAYS = ("--base-delay", "0.2", "--max-delay", "2")
"""Webhook retries 0.2 s doubling to 2 s (15 min in service): a test waits seconds, not
minutes, once a receiver is back."""


def write_subscribers(path: Path, receiver: WebhookReceiver) -> Path:
    """Two subscribers: every alert, and a desk taking only high valuation evidence."""
    url, secret = receiver.url, receiver.secrets
    return write_secret(
        path,
        f'[[subscribers]]\nname = "all"\nurl = "{url("all")}"\nsecret = "{secret["all"]}"\n\n'
        f'[[subscribers]]\nname = "desk"\nurl = "{url("desk")}"\nsecret = "{secret["desk"]}"\n'
        "min_risk = 0.5\n[subscribers.detectors]\nvaluation = 0.5\n",
    )


class Pipeline:
    """Every process of the engine, on ``settings`` (a private stack's client settings)."""

    def __init__(self, settings: Settings, redis_client: Any) -> None:
        self.settings = settings
        self.redis = redis_client
        self.group = settings.topic_prefix or "faults."
        self.children = Children(settings)
        self.receiver = WebhookReceiver({"all": new_secret(), "desk": new_secret()}).start()
        hooks = write_subscribers(settings.state_dir / "webhooks.toml", self.receiver)
        self.hooks_file = hooks
        self.subscribers: tuple[Subscriber, ...] = load_subscribers(hooks)
        self.worker = WorkerProcess(settings, name="worker")
        self.ports = {name: free_port() for name in ("warehouse", "alerts", "webhooks")}
        self.writer = HostedWarehouse(
            child_env(settings, os.environ),
            settings.state_dir / "logs" / "warehouse.log",
            ["warehouse", "write", "--group", f"{self.group}warehouse", *self._http("warehouse")],
        )
        self.scores = TopicReader(settings, "scores", quiet=True)
        self.alerts = TopicReader(settings, "alerts", quiet=True)
        self.scored: set[str] = set()
        self.raised: dict[str, dict[str, Any]] = {}
        """Alert id -> its first record on Kafka."""
        self.wanted_hooks: dict[str, set[str]] = {s.name: set() for s in self.subscribers}
        self.stored: dict[str, set[str]] = {"declarations": set(), "scores": set(), "alerts": set()}
        """Ids seen in each warehouse table (rows are never deleted: seen once is enough)."""
        self._read = {"scores": 0, "alerts": 0}

    # ------------------------------------------------------------------ processes
    def start(self) -> Pipeline:
        self.worker.start()
        self.writer.start()
        self.start_publisher()
        self.start_dispatcher()
        return self

    def start_publisher(self) -> None:
        self.children.start("alerts", "alerts", "publish", "--group", f"{self.group}alerts",
                            *self._http("alerts"))  # fmt: skip

    def start_dispatcher(self) -> None:
        self.children.start("webhooks", "webhooks", "dispatch", "--file", str(self.hooks_file),
                            "--group", f"{self.group}webhooks", *SINK_DELAYS,
                            *self._http("webhooks"))  # fmt: skip

    def _http(self, sink: str) -> list[str]:
        return ["--http-port", str(self.ports[sink])]

    def ready(self, sink: str) -> dict[str, Any]:
        """A sink's ``/ready`` answer ({} while it does not answer)."""
        url = f"http://127.0.0.1:{self.ports[sink]}/ready"
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                body = response.read()
        except urllib.error.HTTPError as exc:
            body = exc.read()
        except (urllib.error.URLError, OSError):
            return {}
        answer: dict[str, Any] = orjson.loads(body)
        return answer

    def kill(self, name: str) -> None:
        """SIGKILL one child: ``alerts`` (the publisher) or ``webhooks`` (the dispatcher)."""
        child = self.children.children[name]
        child.expected_exit = True
        child.proc.kill()
        child.proc.wait()

    def check(self) -> None:
        """Raise if a process exited on its own."""
        self.children.check()
        if not self.worker.alive():
            raise AssertionError(f"the worker exited:\n{self.worker.log_tail()}")
        if not self.writer.alive():
            raise AssertionError(f"the warehouse writer exited (see {self.writer.log_path})")

    def stop(self) -> None:
        for reader in (self.scores, self.alerts):
            reader.close()
        self.children.stop_all()
        self.writer.stop()
        self.worker.stop()
        self.receiver.stop()

    # ------------------------------------------------------------------ observing
    def poll(self) -> None:
        """Read what the worker produced since the last call."""
        self.scores.poll(0.5)
        self.alerts.poll(0.5)
        for _, score, _ in self.scores.records[self._read["scores"] :]:
            self.scored.add(str(score["declaration_id"]))
        for _, alert, _ in self.alerts.records[self._read["alerts"] :]:
            alert_id = str(alert["alert_id"])
            if alert_id not in self.raised:
                self.raised[alert_id] = alert
                record = decode(Alert, orjson.dumps(alert))
                for sub in self.subscribers:
                    if sub.matches(record):
                        self.wanted_hooks[sub.name].add(alert_id)
        self._read = {"scores": len(self.scores.records), "alerts": len(self.alerts.records)}

    def redis_entries(self) -> Counter[str]:
        """Entries of the Redis alert stream per alert id."""
        from vigie.sinks.redis_alerts import AlertKeys

        counts: Counter[str] = Counter()
        stream = AlertKeys(self.settings.redis_prefix).stream
        for _, fields in self.redis.xrange(stream):
            counts[fields[b"alert_id"].decode()] += 1
        return counts

    def missing(self, ids: list[str]) -> dict[str, int]:
        """What of ``ids`` (declarations already produced) has not gone all the way yet.

        Empty when each is scored and in the warehouse, and each alert raised for them is
        in the warehouse, in Redis, and delivered to every subscriber it matches.
        """
        self.poll()
        wanted = set(ids)
        gaps: dict[str, int] = {"unscored": len(wanted - self.scored)}
        alerts = {a for a, rec in self.raised.items() if rec["score"]["declaration_id"] in wanted}
        if self.writer.answers():
            for table, want in (("declarations", wanted), ("scores", wanted), ("alerts", alerts)):
                gaps[f"warehouse_{table}"] = len(want - self._in_warehouse(table, want))
        else:
            gaps["warehouse"] = 1
        try:
            gaps["redis"] = len(alerts - set(self.redis_entries()))
        except Exception:  # Redis down or frozen: not caught up
            gaps["redis"] = len(alerts) or 1
        delivered = self.receiver.snapshot()
        for name, want in self.wanted_hooks.items():
            gaps[f"webhooks_{name}"] = len((want & alerts) - set(delivered[name].ids_by_alert))
        return {k: v for k, v in gaps.items() if v}

    def caught_up(self, ids: list[str]) -> bool:
        return not self.missing(ids)

    @staticmethod
    def declaration_id(raw: bytes) -> str:
        return str(orjson.loads(raw)["declaration_id"])

    def wait_revisions(self, ids: list[str], revision: int, timeout: float) -> int:
        """Wait until each of ``ids`` has a Score of ``revision`` on Kafka and in the
        warehouse; how many there are."""
        want = {(i, revision) for i in ids}
        values = ", ".join(f"'{i}'" for i in ids)
        sql = (
            "SELECT uniqExact(declaration_id) FROM scores "
            f"WHERE revision = {int(revision)} AND declaration_id IN ({values})"
        )

        def done() -> bool:
            self.poll()
            on_kafka = {(s["declaration_id"], s["revision"]) for _, s, _ in self.scores.records}
            stored = self.writer.answers() and self.writer.scalar(sql) == len(ids)
            return want <= on_kafka and stored

        wait_for(done, timeout, f"revision {revision} of {len(ids)} declarations")
        return len(ids)

    def wait_letters(self, letters: set[str], timeout: float) -> int:
        """Wait until each of ``letters`` (letter ids) is in the warehouse; how many."""
        values = ", ".join(f"'{i}'" for i in sorted(letters))
        sql = f"SELECT uniqExact(letter_id) FROM dead_letters WHERE letter_id IN ({values})"
        wait_for(lambda: self.writer.scalar(sql) == len(letters), timeout, "dead letters stored")
        return len(letters)

    def _in_warehouse(self, table: str, wanted: set[str]) -> set[str]:
        """The ids of ``wanted`` in ``table`` (declaration ids; alert ids for alerts)."""
        known = self.stored[table]
        unknown = sorted(wanted - known)
        if unknown:
            column = "alert_id" if table == "alerts" else "declaration_id"
            values = ", ".join(f"'{i}'" for i in unknown)
            sql = f"SELECT DISTINCT {column} FROM {table} WHERE {column} IN ({values})"
            known.update(str(row[0]) for row in self.writer.query(sql))
        return known & wanted
