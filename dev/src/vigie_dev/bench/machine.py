"""What a benchmark ran on: CPU, cores, memory, load, Python, Kafka, the engine's build.

The Kafka version is the broker's when it runs on this host (the jar in the classpath of
the ``kafka.Kafka`` process whose ``listeners`` name the bootstrap port); otherwise the
version ``vigie stack`` would run, said as such.

Examples
--------
>>> description = describe("127.0.0.1:1")
>>> sorted(description)[:4]
['cores', 'cpu', 'detectors', 'git']
>>> description["cores"] >= 1 and len(description["load_average"]) == 3
True
"""

from __future__ import annotations

import itertools
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

from vigie_dev.stack.kafka import KAFKA_VERSION

REPO = Path(__file__).resolve().parents[4]
"""The source checkout this development part is installed from (editable install)."""


def describe(bootstrap: str) -> dict[str, Any]:
    """The machine and software a run measures, as one JSON-able mapping."""
    import confluent_kafka

    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "memory_gb": memory_gb(),
        "load_average": load_average(),
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "kafka": {
            "bootstrap": bootstrap,
            "broker_version": broker_version(bootstrap),
            "librdkafka": confluent_kafka.libversion()[0],
        },
        "detectors": detectors_build(),
        "git": git_revision(),
    }


def load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages (the machine is shared: read figures with it)."""
    return [round(x, 2) for x in os.getloadavg()]


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (the platform's processor elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def memory_gb() -> float | None:
    """Total memory in GiB (MemTotal of /proc/meminfo)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def detectors_build() -> str:
    """``compiled`` when the engine module is a mypyc extension, else ``sources``."""
    from vigie.model import engine

    return "sources" if str(engine.__file__).endswith(".py") else "compiled"


def git_revision() -> str | None:
    """The checkout's commit (with ``-dirty`` when it has changes), if it is a git one."""
    try:
        done = subprocess.run(
            ["git", "-C", str(REPO), "describe", "--always", "--dirty", "--abbrev=12"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() or None


def broker_version(bootstrap: str) -> str:
    """The Kafka version of the broker listening on the bootstrap's port, if it is local."""
    for _, cmdline in _local_brokers(bootstrap):
        classpath = _classpath(cmdline)
        if classpath is None:
            continue
        for jar in Path(classpath.rstrip("*")).glob("kafka_2.*-*.jar"):
            version = jar.stem.split("-", 1)[1]
            if version[:1].isdigit() and "-" not in version:
                return version
    return f"unknown (not a broker of this host; vigie stack runs {KAFKA_VERSION})"


def broker_pid(bootstrap: str) -> int | None:
    """The process id of the broker listening on the bootstrap's port, if it is local."""
    return next((pid for pid, _ in _local_brokers(bootstrap)), None)


def with_broker(pids: dict[str, int], bootstrap: str) -> dict[str, int]:
    """``pids`` (the processes a CPU window accounts for, by name), and the broker's as
    ``broker`` if it runs on this host."""
    broker = broker_pid(bootstrap)
    return pids if broker is None else {**pids, "broker": broker}


def _local_brokers(bootstrap: str) -> list[tuple[int, list[str]]]:
    """The ``kafka.Kafka`` processes of this host whose ``listeners`` name the port."""
    port = bootstrap.split(",")[0].rsplit(":", 1)[-1]
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            args = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        words = [a.decode(errors="replace") for a in args if a]
        broker = "kafka.Kafka" in words and words[-1].endswith(".properties")
        if broker and _listens_on(Path(words[-1]), port):
            found.append((int(proc.name), words))
    return found


def _classpath(words: list[str]) -> str | None:
    for flag, value in itertools.pairwise(words):
        if flag in ("-cp", "-classpath"):
            return value.split(":")[0]
    return None


def _listens_on(properties: Path, port: str) -> bool:
    try:
        lines = properties.read_text().splitlines()
    except OSError:
        return False
    return any(line.startswith("listeners=") and f":{port}," in line + "," for line in lines)
