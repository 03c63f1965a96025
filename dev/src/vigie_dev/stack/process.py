"""Detached service processes tracked by PID files.

A service is started through ``sh`` so that it is re-parented away from the caller at
once: it outlives the ``vigie`` command (or the pytest session) that started it, and the
caller never holds a child to reap. A PID file alone is not trusted: the process must still
be alive and its command line must carry a marker (its config file path) before we report
it as ours or signal it.

>>> import tempfile
>>> root = Path(tempfile.mkdtemp())
>>> proc = spawn(["sleep", "30"], log=root / "sleep.log", pidfile=root / "sleep.pid")
>>> is_ours(proc, "sleep")
True
>>> stop(proc, "sleep", grace_s=5, pidfile=root / "sleep.pid")
True
>>> read_pid(root / "sleep.pid") is None
True
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from vigie.errors import StackError

_SPAWN = 'log=$1; shift; "$@" >>"$log" 2>&1 </dev/null & echo $!'


def spawn(argv: Sequence[str], *, log: Path, pidfile: Path, cwd: Path | None = None) -> int:
    """Start ``argv`` detached in a new session, output appended to ``log``; return its PID."""
    log.parent.mkdir(parents=True, exist_ok=True)
    _rotate(log)
    done = subprocess.run(
        ["sh", "-c", _SPAWN, "vigie-spawn", str(log), *argv],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        start_new_session=True,
    )
    if done.returncode != 0 or not done.stdout.strip().isdigit():
        raise StackError(f"could not start {argv[0]}: {done.stderr.strip() or done.stdout}")
    pid = int(done.stdout.strip())
    pidfile.write_text(f"{pid}\n")
    return pid


def _rotate(log: Path, max_bytes: int = 20 * 1024 * 1024) -> None:
    """Keep one previous log when the current one has grown large."""
    if log.exists() and log.stat().st_size > max_bytes:
        log.replace(log.with_name(log.name + ".1"))


def read_pid(pidfile: Path) -> int | None:
    """The PID recorded in ``pidfile``, or None when there is none."""
    try:
        text = pidfile.read_text().strip()
    except FileNotFoundError:
        return None
    return int(text) if text.isdigit() else None


def cmdline(pid: int) -> str:
    """The process's command line, arguments joined by spaces ('' if it is gone)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode("utf-8", errors="replace").strip()


def is_alive(pid: int) -> bool:
    """True while the process exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    state = stat.rsplit(")", 1)[-1].split()[0]
    return state not in {"Z", "X"}


def is_ours(pid: int | None, marker: str) -> bool:
    """True if ``pid`` is alive and its command line contains ``marker``."""
    return pid is not None and is_alive(pid) and marker in cmdline(pid)


def stop(pid: int, marker: str, *, grace_s: float = 30.0, pidfile: Path | None = None) -> bool:
    """SIGTERM the process if it is ours, SIGKILL it after ``grace_s``; True if it was ours."""
    if not is_ours(pid, marker):
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while is_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    if is_alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        while is_alive(pid):
            time.sleep(0.1)
    if pidfile is not None:
        pidfile.unlink(missing_ok=True)
    return True


def log_tail(log: Path, lines: int = 20) -> str:
    """The last lines of a log file, for error messages."""
    try:
        text = log.read_text(errors="replace")
    except FileNotFoundError:
        return "(no log yet)"
    return "\n".join(text.splitlines()[-lines:])


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` so that two callers never start a service twice."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
