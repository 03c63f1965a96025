"""A delta pickled by a forked child, so the scoring loop does not pause for it.

Pickling a delta costs what changed since the previous one: at 1,000 declarations a
second, 20 to 60 ms a partition, every five seconds, during which nothing was scored.
Those pauses were the latency's 99th percentile. ``os.fork`` gives a child process the
state exactly as it is at the checkpoint, copy-on-write, in about a millisecond per
100 MiB of state. The child pickles it into an unlinked temporary file and exits; the
parent goes on scoring and collects the file once the child has exited with status 0.
Nothing is written to Kafka before that, so the checkpoint's order (outputs flushed,
state saved, positions committed) holds as before (:mod:`vigie.worker.checkpoint`).

The child does nothing but pickle. The parent is threaded (librdkafka's threads, Faust's
event loop): the child takes no lock another thread may hold (it does not log and
touches no Kafka client), keeps SIGTERM and SIGINT blocked, so that a signal sent to the
process group never reaches the parent's handlers through an inherited wake-up file
descriptor, and leaves with ``os._exit``, running no ``atexit`` handler and flushing no
inherited buffer.

Only deltas are forked. A child touches the reference count of each object it pickles,
which copies the page holding it: for a full snapshot that is every page of the state,
twice the memory. A full snapshot is written in the process, as before.

Examples
--------
>>> child = PickledInChild(lambda: b"what the child pickled")
>>> child.result(timeout_s=30)
b'what the child pickled'
>>> failing = PickledInChild(lambda: 1 / 0)
>>> failing.result(timeout_s=30)
Traceback (most recent call last):
...
vigie.errors.VigieError: snapshot child exited with status 1: ZeroDivisionError('division by zero')
"""

from __future__ import annotations

import os
import signal
import struct
import tempfile
import time
from collections.abc import Callable
from typing import NoReturn

from vigie.errors import VigieError

AVAILABLE = hasattr(os, "fork")
"""Whether this platform forks (Linux and macOS do; elsewhere every snapshot is written in
the process)."""
_HEADER = struct.Struct("<d")
"""What the child writes before the bytes: the seconds it spent making them."""
_BLOCKED = {signal.SIGTERM, signal.SIGINT}


class PickledInChild:
    """Runs ``make`` in a forked child and collects the bytes it returns.

    Parameters
    ----------
    make
        Makes the bytes from the state as it was at the fork (in the child).
    """

    def __init__(self, make: Callable[[], bytes]) -> None:
        # closed by result() or cancel(): it outlives this call
        self.file = tempfile.TemporaryFile(prefix="vigie-snapshot-")  # noqa: SIM115
        self.started = time.monotonic()
        self.seconds = 0.0
        """What the child took to make the bytes (known once collected)."""
        self._status: int | None = None
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, _BLOCKED)
        try:
            pid = os.fork()
            if pid == 0:
                _child(make, self.file.fileno())
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)
        self.pid = pid
        self.fork_seconds = time.monotonic() - self.started
        """How long the parent paused to fork."""

    def done(self) -> bool:
        """Whether the child has exited (without waiting)."""
        if self._status is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self._status = status
        return self._status is not None

    def result(self, timeout_s: float) -> bytes:
        """The child's bytes, waiting for it at most ``timeout_s``; raises VigieError if
        it failed or took longer (then it is killed)."""
        deadline = time.monotonic() + timeout_s
        while not self.done():
            if time.monotonic() > deadline:
                self.cancel()
                raise VigieError(f"snapshot child still pickling after {timeout_s:.0f} s")
            time.sleep(0.002)
        assert self._status is not None
        code = os.waitstatus_to_exitcode(self._status)
        try:
            self.file.seek(0)
            made = self.file.read()
        finally:
            self.file.close()
        if code != 0:
            why = made.decode(errors="replace") if code == 1 else "killed"
            raise VigieError(f"snapshot child exited with status {code}: {why}")
        (self.seconds,) = _HEADER.unpack_from(made)
        return made[_HEADER.size :]

    def cancel(self) -> None:
        """Kill the child and drop what it made."""
        if not self.done():
            os.kill(self.pid, signal.SIGKILL)
            _, self._status = os.waitpid(self.pid, 0)
        self.file.close()


def _child(make: Callable[[], bytes], fd: int) -> NoReturn:
    """The child's whole life: make the bytes, write them, exit (1 on any error, its
    description written instead of the bytes)."""
    code = 1
    try:
        started = time.perf_counter()
        made = make()
        _write_all(fd, _HEADER.pack(time.perf_counter() - started))
        _write_all(fd, made)
        code = 0
    except BaseException as exc:
        _write_all(fd, repr(exc).encode(errors="replace")[:1000])
    finally:
        os._exit(code)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
