"""A delta pickled by a forked child: the bytes come back, a failure or a hang is an error
and never a half snapshot, and a signal sent to the child leaves the parent alone."""

from __future__ import annotations

import os
import signal
import time
from typing import Any

import pytest

from vigie.errors import VigieError
from vigie.worker.forked import PickledInChild


def test_the_child_returns_what_it_made_from_the_state_at_the_fork() -> None:
    state = {"learnt": 1}
    child = PickledInChild(lambda: repr(state).encode())
    state["learnt"] = 2  # after the fork: the child does not see it
    assert child.result(timeout_s=30) == b"{'learnt': 1}"
    assert child.seconds >= 0 and child.fork_seconds >= 0


def test_a_failing_child_is_an_error_with_its_reason() -> None:
    child = PickledInChild(lambda: b"".join([b"x", None]))  # type: ignore[list-item]
    with pytest.raises(VigieError, match="status 1: TypeError"):
        child.result(timeout_s=30)


def test_a_child_that_takes_too_long_is_killed() -> None:
    child = PickledInChild(lambda: time.sleep(60) or b"")  # type: ignore[func-returns-value]
    started = time.monotonic()
    with pytest.raises(VigieError, match="still pickling"):
        child.result(timeout_s=0.3)
    assert time.monotonic() - started < 10
    with pytest.raises(ChildProcessError):
        os.waitpid(child.pid, os.WNOHANG)  # reaped


def test_sigterm_sent_to_the_child_reaches_neither_it_nor_the_parent() -> None:
    received: list[int] = []

    def handler(signum: int, frame: Any) -> None:
        received.append(signum)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        child = PickledInChild(lambda: time.sleep(0.5) or b"done")  # type: ignore[func-returns-value]
        time.sleep(0.1)
        os.kill(child.pid, signal.SIGTERM)  # as a stop sent to the whole process group
        assert child.result(timeout_s=30) == b"done"
        assert signal.pthread_sigmask(signal.SIG_BLOCK, []) == set()  # the parent's mask back
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.05)
        assert received == [signal.SIGTERM]  # the parent's handler, for its own signal only
    finally:
        signal.signal(signal.SIGTERM, previous)
