"""A local Redis server: Debian's ``redis-server`` on loopback, data under the state dir.

Persistence is the append-only file, fsynced every second (no RDB snapshots): a restart
keeps the alert feed, its consumer groups and the dedup markers, losing at most the last
second of writes, which the publisher rewrites (its offsets are committed only after
Redis acknowledged). What a restart without its files loses, ``vigie alerts republish``
rebuilds from the ``alerts`` topic.

>>> from vigie.settings import Settings
>>> conf = redis_conf(Settings(state_dir=Path("/tmp/vigie-doc"), redis_port=26379))
>>> print(conf.splitlines()[0])
bind 127.0.0.1
>>> "port 26379" in conf, "appendonly yes" in conf, "appendfsync everysec" in conf
(True, True, True)
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from vigie.errors import MissingDependencyError
from vigie.settings import Settings
from vigie_dev.stack import process

REDIS_BINARY = "redis-server"


@dataclass(frozen=True)
class RedisPaths:
    """Where the local Redis keeps its configuration, data, log and PID."""

    root: Path

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def config(self) -> Path:
        return self.root / "redis.conf"

    @property
    def log(self) -> Path:
        return self.root / "redis.log"

    @property
    def pidfile(self) -> Path:
        return self.root / "redis.pid"


def paths(settings: Settings) -> RedisPaths:
    """Redis's files under the state directory."""
    return RedisPaths(settings.state_dir.resolve() / "redis")


def redis_conf(settings: Settings) -> str:
    """The server's configuration file: loopback only, append-only file, in the foreground."""
    data = paths(settings).data
    lines = [
        "bind 127.0.0.1",
        f"port {settings.redis_port}",
        "protected-mode yes",
        "daemonize no",
        'logfile ""',
        f"dir {data}",
        'save ""',
        "appendonly yes",
        "appendfsync everysec",
        'appendfilename "appendonly.aof"',
        "databases 16",
    ]
    return "\n".join(lines) + "\n"


def binary() -> str:
    """Path of ``redis-server``, installed with apt when missing and running as root."""
    found = shutil.which(REDIS_BINARY) or _existing("/usr/bin/redis-server")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for argv in (["apt-get", "update"], ["apt-get", "install", "-y", "redis-server"]):
            done = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
            if done.returncode != 0:
                raise MissingDependencyError(
                    f"installing redis-server failed ({' '.join(argv)}):\n{done.stderr[-2000:]}"
                )
        found = shutil.which(REDIS_BINARY) or _existing("/usr/bin/redis-server")
        if found:
            return found
    raise MissingDependencyError(
        "redis-server is needed for the local stack: install it first "
        "(Debian: sudo apt-get install -y redis-server), or point VIGIE_REDIS_URL at a server"
    )


def _existing(path: str) -> str | None:
    return path if Path(path).exists() else None


def start(settings: Settings) -> int:
    """Write the configuration and start ``redis-server`` detached."""
    exe = binary()
    p = paths(settings)
    p.data.mkdir(parents=True, exist_ok=True)
    p.config.write_text(redis_conf(settings))
    return process.spawn([exe, str(p.config)], log=p.log, pidfile=p.pidfile, cwd=p.root)


def marker(settings: Settings) -> str:
    """What the server's process title carries (redis rewrites its argv to ``host:port``)."""
    return f"redis-server 127.0.0.1:{settings.redis_port}"


def answers(url: str, timeout_s: float = 2.0) -> bool:
    """True if the Redis at ``url`` answers PING."""
    import redis

    client = redis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()
