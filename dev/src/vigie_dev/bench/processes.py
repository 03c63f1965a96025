"""Child processes of a run: ``vigie`` commands and Python scripts, each with its own
memory and CPU, and their peak resident memory.

Examples
--------
>>> import os
>>> peak_rss_kb(os.getpid()) >= rss_kb(os.getpid()) > 0
True
>>> peak_rss_kb(2**22 + 1) is None
True
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson

from vigie.errors import VigieError
from vigie.settings import Settings
from vigie_dev.demo.processes import child_env, tail, vigie_command


class BenchError(VigieError):
    """A scenario could not complete: a child failed, or processing did not finish in time."""


def peak_rss_kb(pid: int) -> int | None:
    """The peak resident set size (VmHWM) of a running process, in kB; None if gone."""
    return _status_kb(pid, "VmHWM:")


def rss_kb(pid: int) -> int | None:
    """The resident set size (VmRSS) of a running process now, in kB; None if gone."""
    return _status_kb(pid, "VmRSS:")


def _status_kb(pid: int, field: str) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def env_of(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment of a child: every setting as ``VIGIE_*``, plus ``extra``."""
    return {**child_env(settings, os.environ), **extra}


def run_json(argv: list[str], env: dict[str, str], timeout: float, what: str) -> dict[str, Any]:
    """Run a command to completion and decode the JSON object on its last stdout line."""
    try:
        done = subprocess.run(argv, env=env, capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"{what}: no result after {timeout:.0f} s") from exc
    if done.returncode != 0 or not done.stdout.strip():
        stderr = done.stderr.decode(errors="replace")[-3000:]
        raise BenchError(f"{what} failed (status {done.returncode}):\n{stderr}")
    result: dict[str, Any] = orjson.loads(done.stdout.splitlines()[-1])
    return result


def vigie_json(
    settings: Settings, *args: str, timeout: float, **extra: str
) -> tuple[dict[str, Any], float]:
    """Run ``vigie ARGS --json`` with the settings; its result and how long it took (s)."""
    began = time.monotonic()
    result = run_json(
        [*vigie_command(), *args, "--json"],
        env_of(settings, **extra),
        timeout,
        f"vigie {' '.join(args)}",
    )
    return result, time.monotonic() - began


def python_json(module_or_script: str, *args: str, timeout: float) -> dict[str, Any]:
    """Run a Python module (``-m name``) or script of this interpreter; its JSON result."""
    script = module_or_script.endswith(".py")
    target = [module_or_script] if script else ["-m", module_or_script]
    return run_json([sys.executable, *target, *args], dict(os.environ), timeout, module_or_script)


class Child:
    """A long-running ``vigie`` command (the alert publisher), logging to a file."""

    def __init__(self, settings: Settings, name: str, *args: str) -> None:
        self.name = name
        self.log_path = settings.state_dir / f"{name}.log"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as out:
            self.proc = subprocess.Popen(
                [*vigie_command(), *args],
                env=env_of(settings),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    def alive(self) -> bool:
        return self.proc.poll() is None

    def check(self) -> None:
        if not self.alive():
            raise BenchError(
                f"{self.name} exited with status {self.proc.returncode}:\n{tail(self.log_path)}"
            )

    def stop(self, timeout: float = 45.0) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
