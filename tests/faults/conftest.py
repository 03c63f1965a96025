"""Fixtures of the fault suite: a private stack, never the shared one nor the session's.

``private_stack`` starts a Kafka broker and a Redis server of the suite's own, with
:class:`~vigie_dev.testing.private_stack.PrivateStack` (the code of ``vigie stack up``),
under a temporary state directory and on free ports, whatever ``VIGIE_KAFKA_BOOTSTRAP``
and ``VIGIE_REDIS_URL`` say; the faults stop, restart and freeze only these. Kafka's jars
are those of the test sessions' stack (``.vigie-test/``): resolved once for both.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from vigie_dev.testing.private_stack import PrivateStack

REPO = Path(__file__).resolve().parents[2]
JARS = REPO / ".vigie-test"


@pytest.fixture
def private_stack(tmp_path: Path) -> Iterator[PrivateStack]:
    stack = PrivateStack(tmp_path / "stack", jars=JARS)
    try:
        yield stack.up()
    finally:
        stack.down()
