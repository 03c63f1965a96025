"""A local Apache Kafka 3.9 broker: one KRaft node, broker and controller, loopback only.

The jars come from Maven Central through Maven and the ``pom.xml`` next to this module,
copied once into ``<state_dir>/kafka/libs``; the broker runs on the machine's Java 17.
Its storage is formatted on first start with a fresh cluster id.

>>> from vigie.settings import Settings
>>> s = Settings(state_dir=Path("/tmp/vigie-doc"), kafka_port=29092, kafka_controller_port=29093)
>>> props = server_properties(s)
>>> props["listeners"]
'PLAINTEXT://127.0.0.1:29092,CONTROLLER://127.0.0.1:29093'
>>> props["controller.quorum.voters"], props["num.partitions"]
('1@127.0.0.1:29093', '4')
>>> len(new_cluster_id())
22
"""

from __future__ import annotations

import base64
import hashlib
import importlib.resources
import logging
import shutil
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from vigie.errors import MissingDependencyError, StackError
from vigie.settings import Settings
from vigie_dev.stack import process

log = logging.getLogger(__name__)

KAFKA_VERSION = "3.9.1"
HEAP = ("-Xms128m", "-Xmx512m")
_LOG4J = """\
log4j.rootLogger=INFO, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.server.KafkaConfig=WARN
log4j.logger.org.apache.kafka.clients.admin.AdminClientConfig=WARN
log4j.logger.kafka.log.LogCleaner=WARN
"""


@dataclass(frozen=True)
class KafkaPaths:
    """Where the local broker keeps its jars, configuration, data, log and PID."""

    root: Path

    @property
    def libs(self) -> Path:
        return self.root / "libs"

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def config(self) -> Path:
        return self.root / "server.properties"

    @property
    def log4j(self) -> Path:
        return self.root / "log4j.properties"

    @property
    def log(self) -> Path:
        return self.root / "kafka.log"

    @property
    def maven_log(self) -> Path:
        return self.root / "maven.log"

    @property
    def pidfile(self) -> Path:
        return self.root / "kafka.pid"


def paths(settings: Settings) -> KafkaPaths:
    """The broker's files under the state directory."""
    return KafkaPaths(settings.state_dir.resolve() / "kafka")


def server_properties(settings: Settings) -> dict[str, str]:
    """The broker's configuration: one combined KRaft node with a static quorum."""
    port, ctl = settings.kafka_port, settings.kafka_controller_port
    return {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@127.0.0.1:{ctl}",
        "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{ctl}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "log.dirs": str(paths(settings).data),
        "num.partitions": str(settings.topic_partitions),
        # Faust creates its own changelog and repartition topics.
        "auto.create.topics.enable": "true",
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "10",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "transaction.state.log.num.partitions": "4",
        "group.initial.rebalance.delay.ms": "0",
        # The cleaner's default 128 MiB dedupe buffer would not fit a 512 MiB heap well.
        "log.cleaner.dedupe.buffer.size": str(16 * 1024 * 1024),
    }


def new_cluster_id() -> str:
    """A random cluster id in Kafka's format (URL-safe base64 of 16 bytes, no padding),
    never starting with "-": ``kafka-storage format -t -X...`` would read it as an option
    and fail (one id in 64 did). Kafka's own ``Uuid.randomUuid`` redraws such ids too."""
    while True:
        found = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode("ascii")
        if not found.startswith("-"):
            return found


def _require(program: str, package: str) -> str:
    found = shutil.which(program)
    if found is None:
        raise MissingDependencyError(
            f"{program!r} is needed to run the local Kafka broker; install it first "
            f"(Debian: apt-get install -y {package})"
        )
    return found


def _pom_text() -> str:
    return importlib.resources.files("vigie_dev.stack").joinpath("pom.xml").read_text()


def resolve_jars(settings: Settings, *, attempts: int = 3) -> Path:
    """Copy Kafka's jars from Maven Central into the state directory, once per pom version."""
    p = paths(settings)
    pom = _pom_text()
    digest = hashlib.sha256(pom.encode()).hexdigest()
    stamp = p.libs / ".complete"
    if stamp.exists() and stamp.read_text().strip() == digest:
        return p.libs
    mvn = _require("mvn", "maven")
    p.root.mkdir(parents=True, exist_ok=True)
    (p.root / "pom.xml").write_text(pom)
    staging = p.root / "libs.partial"
    for attempt in range(1, attempts + 1):
        shutil.rmtree(staging, ignore_errors=True)
        with p.maven_log.open("a") as out:
            done = subprocess.run(
                [
                    mvn,
                    "-B",
                    "-f",
                    str(p.root / "pom.xml"),
                    "-Dmaven.wagon.http.retryHandler.count=3",
                    "dependency:copy-dependencies",
                    "-DincludeScope=runtime",
                    f"-DoutputDirectory={staging}",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                check=False,
            )
        if done.returncode == 0 and (staging / f"kafka_2.13-{KAFKA_VERSION}.jar").exists():
            shutil.rmtree(p.libs, ignore_errors=True)
            staging.rename(p.libs)
            stamp.write_text(digest + "\n")
            return p.libs
        log.warning("maven attempt %d/%d failed, see %s", attempt, attempts, p.maven_log)
        time.sleep(2 * attempt)
    raise StackError(
        f"Maven could not fetch Kafka {KAFKA_VERSION} jars after {attempts} attempts:\n"
        f"{process.log_tail(p.maven_log)}"
    )


def _java_command(settings: Settings, main: str, *args: str) -> list[str]:
    p = paths(settings)
    return [
        _require("java", "openjdk-17-jre-headless"),
        *HEAP,
        "-XX:+UseG1GC",
        "-Djava.awt.headless=true",
        f"-Dlog4j.configuration=file:{p.log4j}",
        "-cp",
        f"{p.libs}/*",
        main,
        *args,
    ]


def write_config(settings: Settings) -> None:
    """Write ``server.properties`` and ``log4j.properties`` (rewritten on every start)."""
    p = paths(settings)
    p.root.mkdir(parents=True, exist_ok=True)
    props = server_properties(settings)
    p.config.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
    p.log4j.write_text(_LOG4J)


def format_storage(settings: Settings) -> None:
    """Format the KRaft log directory on first start; later starts keep the data."""
    p = paths(settings)
    if (p.data / "meta.properties").exists():
        return
    argv = _java_command(
        settings, "kafka.tools.StorageTool", "format", "-t", new_cluster_id(), "-c", str(p.config)
    )
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise StackError(f"formatting Kafka storage failed:\n{done.stdout}\n{done.stderr}")


def start(settings: Settings) -> int:
    """Fetch the jars if needed, write the configuration, format, and start the broker."""
    resolve_jars(settings)
    write_config(settings)
    format_storage(settings)
    p = paths(settings)
    argv = _java_command(settings, "kafka.Kafka", str(p.config))
    return process.spawn(argv, log=p.log, pidfile=p.pidfile, cwd=p.root)


def marker(settings: Settings) -> str:
    """What the broker's command line carries: its configuration file."""
    return str(paths(settings).config)


def answers(bootstrap: str, timeout_s: float = 2.0) -> bool:
    """True if a broker at ``bootstrap`` answers a metadata request."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    admin = AdminClient(
        {
            "bootstrap.servers": bootstrap,
            "log_level": 0,
            "socket.connection.setup.timeout.ms": max(1000, int(timeout_s * 1000)),
        }
    )
    try:
        metadata = admin.list_topics(timeout=timeout_s)
    except KafkaException:
        return False
    return bool(metadata.brokers)
