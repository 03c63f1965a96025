"""Child processes of the demo: environment, start, health, orderly stop."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from pydantic import BaseModel, SecretStr

from vigie.errors import VigieError
from vigie.settings import Settings

log = logging.getLogger(__name__)

STOP_TIMEOUT_S = 45.0
"""A child gets this long to stop after SIGTERM (the worker snapshots its models)."""
READY_TIMEOUT_S = 180.0
"""The worker gets this long to say it is ready."""


class DemoError(VigieError):
    """The demo could not complete: a child died, or processing did not finish in time."""


def child_env(settings: Settings, environ: Mapping[str, str]) -> dict[str, str]:
    """The environment of a child process: ``environ`` with every setting as ``VIGIE_*``."""
    env = {k: v for k, v in environ.items() if not k.startswith("VIGIE_")}
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        elif isinstance(value, BaseModel):  # a nested model (engine): JSON, as settings read it
            value = value.model_dump_json()
        elif isinstance(value, bool):
            value = str(value).lower()
        if value is not None:
            env[f"VIGIE_{name.upper()}"] = str(value)
    return env


def vigie_command() -> list[str]:
    """The ``vigie`` command of this interpreter's environment."""
    script = Path(sys.executable).with_name("vigie")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from vigie.cli import main; main()"]


# ---------------------------------------------------------------------- child processes
@dataclass
class Child:
    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path
    expected_exit: bool = False


class Children:
    """The demo's child processes, each logging to ``<run dir>/logs/<name>.log``.

    Children run in their own session, so a Ctrl-C in the terminal reaches the demo only,
    which then stops them in order with SIGTERM (SIGKILL after :data:`STOP_TIMEOUT_S`).
    """

    def __init__(self, settings: Settings) -> None:
        self.env = child_env(settings, os.environ)
        self.log_dir = settings.state_dir / "logs"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.children: dict[str, Child] = {}

    def start(self, name: str, *args: str) -> Child:
        log_path = self.log_dir / f"{name}.log"
        with log_path.open("ab") as out:
            proc = subprocess.Popen(
                [*vigie_command(), *args],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.children[name] = child = Child(name, proc, log_path)
        return child

    def run(self, *args: str, timeout: float = 600.0) -> dict[str, Any]:
        """Run a ``vigie ... --json`` command to completion; its JSON result."""
        done = subprocess.run(
            [*vigie_command(), *args, "--json"],
            env=self.env,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
        if done.returncode != 0:
            raise DemoError(f"vigie {' '.join(args)} failed: {done.stderr.decode()[-2000:]}")
        result: dict[str, Any] = orjson.loads(done.stdout.splitlines()[-1])
        return result

    def check(self) -> None:
        """Raise :class:`DemoError` if a child exited on its own, with its log's end."""
        for child in self.children.values():
            code = child.proc.poll()
            if code is not None and not child.expected_exit:
                raise DemoError(
                    f"{child.name} exited with status {code}; end of {child.log_path}:\n"
                    + tail(child.log_path)
                )

    def stop(self, name: str) -> int | None:
        """SIGTERM, wait, SIGKILL if needed; the exit status."""
        child = self.children.get(name)
        if child is None:
            return None
        child.expected_exit = True
        if child.proc.poll() is None:
            with suppress(ProcessLookupError):
                child.proc.send_signal(signal.SIGTERM)
            try:
                child.proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop in %.0f s: killed", name, STOP_TIMEOUT_S)
                child.proc.kill()
                child.proc.wait()
        return child.proc.returncode

    def stop_all(self) -> None:
        for name in reversed(list(self.children)):
            self.stop(name)

    def wait_worker_ready(self, settings: Settings, partitions: int) -> None:
        """Wait until the worker's ``/ready`` says it holds ``partitions`` partitions, all
        restored: the replay starts then, so that latencies are not the worker's start."""
        assert settings.worker_token is not None
        request = urllib.request.Request(
            f"http://127.0.0.1:{settings.worker_web_port}/ready",
            headers={"Authorization": f"Bearer {settings.worker_token.get_secret_value()}"},
        )
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            self.check()
            try:
                with urllib.request.urlopen(request, timeout=5) as answer:
                    body = orjson.loads(answer.read())
                if body.get("ready") and len(body.get("partitions", ())) == partitions:
                    return
            except (OSError, ValueError):
                pass  # not listening yet, or 503 while restoring
            time.sleep(0.5)
        raise DemoError(f"the worker was not ready after {READY_TIMEOUT_S:.0f} s")


def tail(path: Path, lines: int = 20) -> str:
    """The last ``lines`` lines of a log file."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError as exc:
        return f"({exc})"
