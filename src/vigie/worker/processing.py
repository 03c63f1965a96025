"""What the worker does with one record, without Kafka: plain functions on a partition state.

* :func:`score_and_learn`: decode a declaration, score it, then learn it (test-then-train);
  a record that cannot be decoded or scored becomes a dead letter. Its two steps,
  :func:`decode_record` and :func:`score_decoded`, let the worker decode a batch first.
* :func:`receive_control` keeps a control result read from the fan-out topic;
  :func:`learn_received` gives what was kept to the engine at a checkpoint, so that a
  replay after a crash scores every declaration as the first pass did (docs/recovery.md).

Examples
--------
>>> state = PartitionState(0, engine=None)
>>> out = score_and_learn(state, b"k", b"{not json", source_topic="declarations")
>>> out.score is None, out.dead_letter.reason, out.dead_letter.value
(True, 'invalid_json', '{not json')
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Literal

from vigie.contracts.codec import DEFAULT_MAX_BYTES, dead_letter, decode
from vigie.contracts.schemas import Alert, ControlResult, DeadLetter, Declaration, Score, utc_now
from vigie.errors import DecodeError
from vigie.worker.records import alert_json, score_json
from vigie.worker.state import PartitionState

log = logging.getLogger(__name__)

MAX_PARKED = 4096
"""Control results kept per partition while waiting for their declaration."""


@dataclass(slots=True)
class Scored:
    """What one declarations record produced (nothing at all: a repeat)."""

    key: bytes = b""
    """The declaration id: the key of the Score and Alert."""
    score_json: bytes | None = None
    alert_json: bytes | None = None
    dead_letter: DeadLetter | None = None
    engine_seconds: float = 0.0
    controls_learnt: int = 0
    seen: Literal["new", "repeat", "amendment"] = "new"

    @property
    def score(self) -> Score | None:
        """The Score, read back through the contract."""
        return None if self.score_json is None else decode(Score, self.score_json)

    @property
    def alert(self) -> Alert | None:
        """The Alert, read back through the contract."""
        return None if self.alert_json is None else decode(Alert, self.alert_json)


def score_and_learn(
    state: PartitionState,
    key: bytes | None,
    value: bytes | None,
    *,
    source_topic: str,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Scored:
    """Decode, score then learn; a bad record becomes a DeadLetter and teaches nothing.

    A repeat of an item already scored produces nothing; an amendment is scored as the
    next revision and not learnt again (:mod:`vigie.worker.idempotency`).
    """
    decoded = decode_record(key, value, source_topic=source_topic, max_bytes=max_bytes)
    if isinstance(decoded, Scored):
        return decoded
    return score_decoded(state, decoded, key, value, source_topic=source_topic)


def decode_record(
    key: bytes | None,
    value: bytes | None,
    *,
    source_topic: str,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Declaration | Scored:
    """The declaration of a record, or the Scored of its dead letter.

    The first step of :func:`score_and_learn`. The worker decodes a whole batch before
    scoring any of it: the engine's calls then follow one another, their tables still in
    the processor's caches (8 us a declaration, in process).

    >>> decode_record(None, b"[]", source_topic="declarations").dead_letter.reason
    'not_an_object'
    """
    try:
        return decode(Declaration, value, max_bytes=max_bytes)
    except DecodeError as exc:
        return Scored(dead_letter=dead_letter(source_topic, key, value, exc))


def score_decoded(
    state: PartitionState,
    decl: Declaration,
    key: bytes | None,
    value: bytes | None,
    *,
    source_topic: str,
) -> Scored:
    """Score then learn a decoded declaration: the rest of :func:`score_and_learn` (``key``
    and ``value``, the record's, go to a dead letter if the engine fails on it)."""
    item = state.seen.classify(decl)
    if item.kind == "repeat":
        return Scored(seen="repeat")
    started = time.perf_counter()
    try:
        assessment = state.engine.score_one(decl)
        if item.kind == "new":
            state.engine.learn_one(decl)
        elapsed = time.perf_counter() - started
        scored_at = utc_now()
        score = score_json(decl, assessment, scored_at, elapsed * 1000.0, item.revision)
    except Exception as exc:  # a poison record must not stop the partition
        log.exception("engine failed on declaration %s", decl.declaration_id)
        error = DecodeError(
            "processing_error", [{"loc": (), "msg": repr(exc), "type": type(exc).__name__}]
        )
        return Scored(dead_letter=dead_letter(source_topic, key, value, error))
    state.seen.remember(item)
    state.declarations_learnt += item.kind == "new"
    learnt = 0
    parked = state.parked.pop(decl.declaration_id, None)
    if parked is not None and state.engine.learn_control(parked):
        state.controls_learnt += 1
        learnt = 1
    alert = None
    if assessment.selected:
        alert = alert_json(decl, assessment, score, scored_at, item.revision)
    return Scored(decl.declaration_id.encode(), score, alert, None, elapsed, learnt, item.kind)


def apply_control(state: PartitionState, result: ControlResult) -> bool:
    """Teach the engine a control result; park it if the declaration has not come yet."""
    if state.engine.learn_control(result):
        state.controls_learnt += 1
        return True
    state.parked[result.declaration_id] = result
    state.parked.move_to_end(result.declaration_id)
    while len(state.parked) > MAX_PARKED:
        state.parked.popitem(last=False)
    return False


def receive_control(state: PartitionState, offset: int, value: bytes | None) -> None:
    """Keep the control result of fan-out record ``offset`` for the next checkpoint (a
    record already read, redelivered after a rebalance, is skipped)."""
    if offset <= state.controls_read:
        return
    state.controls_read = offset
    try:
        result = decode(ControlResult, value)
    except DecodeError:  # only the worker writes the fan-out topic: not expected
        log.exception("fan-out[%d]@%d is not a control result", state.partition, offset)
        return
    state.received.append(result)


def learn_received(state: PartitionState) -> tuple[int, int]:
    """Give the engine the control results received since the last checkpoint, in order.

    Nothing is given while the state replays what a previous owner may have scored
    (``replaying_until``). Returns (learnt, not learnt here: parked or already learnt).
    """
    if state.declarations_offset < state.replaying_until:
        return 0, 0
    learnt = sum(apply_control(state, result) for result in state.received)
    others = len(state.received) - learnt
    state.received.clear()
    state.controls_offset = state.controls_read
    return learnt, others
