"""The worker's agents: thin loops around two plain functions that hold the logic.

* ``score`` reads ``declarations`` (raw bytes), and for each record calls
  :func:`score_and_learn` on its partition's state, then sends the Score (key: declaration
  id), an Alert for a selected declaration, or a DeadLetter for a record that cannot be
  decoded. It never crashes on input.
* ``fan_out`` reads ``control-results``, validates each one and copies it to every
  partition of the fan-out topic (see :mod:`vigie.worker.app` for why).
* ``learn`` reads the fan-out topic and keeps each control result with the state of the
  same partition number; :func:`learn_received` gives them to its engine at the next
  snapshot (see :mod:`vigie.worker.app` for why then).

Every agent runs with concurrency 1: an engine is test-then-train and order matters.

Examples
--------
>>> from vigie.worker.state import PartitionState
>>> state = PartitionState(0, engine=None)
>>> out = score_and_learn(state, b"k", b"{not json", source_topic="declarations")
>>> out.score is None, out.dead_letter.reason, out.dead_letter.value
(True, 'invalid_json', '{not json')
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from vigie.contracts.codec import DEFAULT_MAX_BYTES, dead_letter, decode, encode
from vigie.contracts.schemas import Alert, ControlResult, DeadLetter, Declaration, Score, utc_now
from vigie.errors import DecodeError
from vigie.worker.records import alert_record, score_record
from vigie.worker.state import PartitionState

if TYPE_CHECKING:
    from vigie.worker.app import Runtime

log = logging.getLogger(__name__)

MAX_PARKED = 4096
"""Control results kept per partition while waiting for their declaration."""


@dataclass(frozen=True)
class Scored:
    """What one declarations record produced."""

    score: Score | None = None
    alert: Alert | None = None
    dead_letter: DeadLetter | None = None
    engine_seconds: float = 0.0
    controls_learnt: int = 0


def score_and_learn(
    state: PartitionState,
    key: bytes | None,
    value: bytes | None,
    *,
    source_topic: str,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Scored:
    """Decode, score then learn (test-then-train); a bad record becomes a DeadLetter."""
    try:
        decl = decode(Declaration, value, max_bytes=max_bytes)
    except DecodeError as exc:
        return Scored(dead_letter=dead_letter(source_topic, key, value, exc))
    started = time.perf_counter()
    try:
        assessment = state.engine.score_one(decl)
        state.engine.learn_one(decl)
        elapsed = time.perf_counter() - started
        score = score_record(decl, assessment, utc_now(), elapsed * 1000.0)
    except Exception as exc:  # a poison record must not stop the partition
        log.exception("engine failed on declaration %s", decl.declaration_id)
        error = DecodeError(
            "processing_error", [{"loc": (), "msg": repr(exc), "type": type(exc).__name__}]
        )
        return Scored(dead_letter=dead_letter(source_topic, key, value, error))
    state.declarations_learnt += 1
    learnt = 0
    parked = state.parked.pop(decl.declaration_id, None)
    if parked is not None and state.engine.learn_control(parked):
        state.controls_learnt += 1
        learnt = 1
    alert = alert_record(score) if score.selected else None
    return Scored(score=score, alert=alert, engine_seconds=elapsed, controls_learnt=learnt)


def apply_control(state: PartitionState, result: ControlResult) -> bool:
    """Teach the engine a control result; park it if the declaration is not known yet.

    Examples
    --------
    >>> from vigie.model.engine import RiskEngine
    >>> from vigie.contracts.schemas import EXAMPLE_DECLARATION
    >>> state = PartitionState(0, RiskEngine())
    >>> r = ControlResult(declaration_id=EXAMPLE_DECLARATION["declaration_id"],
    ...                   controlled_at="2026-03-09T00:00:00Z", outcome="infraction",
    ...                   selection="engine")
    >>> apply_control(state, r), list(state.parked)  # the declaration has not come yet
    (False, ['FR26IM0000001'])
    >>> raw = encode(Declaration.model_validate(EXAMPLE_DECLARATION))
    >>> out = score_and_learn(state, b"FR12345678901", raw, source_topic="declarations")
    >>> out.controls_learnt, state.controls_learnt, list(state.parked)  # learnt on arrival
    (1, 1, [])
    """
    if state.engine.learn_control(result):
        state.controls_learnt += 1
        return True
    state.parked[result.declaration_id] = result
    state.parked.move_to_end(result.declaration_id)
    while len(state.parked) > MAX_PARKED:
        state.parked.popitem(last=False)
    return False


async def on_declaration(rt: Runtime, message: Any) -> None:
    state = await rt.registry.get(message.partition)
    if state is None:
        log.warning("declarations[%d] is not held here; record skipped", message.partition)
        return
    async with state.lock:
        if message.offset <= state.declarations_offset:
            rt.metrics.duplicates.inc()
            return
        out = score_and_learn(
            state,
            message.key,
            message.value,
            source_topic=rt.declarations.get_topic_name(),
            max_bytes=rt.settings.max_message_bytes,
        )
        state.declarations_offset = message.offset
        await _send(rt, message, out)


async def _send(rt: Runtime, message: Any, out: Scored) -> None:
    m, p = rt.metrics, message.partition
    if out.dead_letter is not None:
        await rt.emit(p, rt.dead_letters, message.key, encode(out.dead_letter))
        m.dead_letters.labels(reason=out.dead_letter.reason).inc()
        return
    assert out.score is not None
    key = out.score.declaration_id.encode()
    await rt.emit(p, rt.scores, key, encode(out.score))
    if out.alert is not None:
        await rt.emit(p, rt.alerts, key, encode(out.alert))
        m.alerts.inc()
    m.declarations.inc()
    m.controls_learnt.inc(out.controls_learnt)
    m.scoring_latency.observe(out.engine_seconds)
    if message.timestamp:
        m.end_to_end_latency.observe(max(0.0, time.time() - float(message.timestamp)))


async def on_control(rt: Runtime, message: Any) -> None:
    """Validate a control result and copy it to every partition of the fan-out topic."""
    try:
        result = decode(ControlResult, message.value, max_bytes=rt.settings.max_message_bytes)
    except DecodeError as exc:
        letter = dead_letter(rt.controls.get_topic_name(), message.key, message.value, exc)
        await rt.dead_letters.send(key=message.key, value=encode(letter))
        rt.metrics.dead_letters.labels(reason=letter.reason).inc()
        return
    key, value = result.declaration_id.encode(), encode(result)
    for p in range(rt.settings.topic_partitions):
        await rt.fanout.send(key=key, value=value, partition=p)
    rt.metrics.controls_received.inc()


def learn_received(state: PartitionState) -> tuple[int, int]:
    """Give the engine the control results received since the last checkpoint.

    Called at each snapshot, under the state's lock, so that every point where the engine
    learnt controls is saved with the state it produced: a restored engine replaying the
    declarations after its snapshot then scores each one exactly as it was scored before
    (the two topics' records interleave differently on every run; this order does not).
    Nothing is given while the state is replaying what a previous owner may have scored
    (``replaying_until``). Returns (learnt, not learnt here: parked or already learnt).

    Examples
    --------
    >>> from vigie.model.engine import RiskEngine
    >>> from vigie.contracts.schemas import EXAMPLE_DECLARATION
    >>> state = PartitionState(0, RiskEngine())
    >>> raw = encode(Declaration.model_validate(EXAMPLE_DECLARATION))
    >>> _ = score_and_learn(state, b"k", raw, source_topic="declarations")
    >>> state.declarations_offset = 0  # as the agent records it
    >>> result = ControlResult(declaration_id=EXAMPLE_DECLARATION["declaration_id"],
    ...     controlled_at="2026-03-09T00:00:00Z", outcome="infraction", selection="engine")
    >>> receive_control(state, 0, encode(result))
    >>> state.replaying_until = 5  # restored when the log held 6 declarations: wait
    >>> learn_received(state), state.controls_offset
    ((0, 0), -1)
    >>> state.replaying_until = 0
    >>> learn_received(state), state.controls_offset, state.received
    ((1, 0), 0, [])
    """
    if state.declarations_offset < state.replaying_until:
        return 0, 0
    learnt = sum(apply_control(state, result) for result in state.received)
    others = len(state.received) - learnt
    state.received.clear()
    state.controls_offset = state.controls_read
    return learnt, others


def receive_control(state: PartitionState, offset: int, value: bytes | None) -> None:
    """Keep the control result of fan-out record ``offset`` for the next checkpoint (a
    record already read, redelivered after a rebalance, is skipped)."""
    if offset <= state.controls_read:
        return
    state.controls_read = offset
    try:
        result = decode(ControlResult, value)
    except DecodeError:  # only this worker writes the fan-out topic: not expected
        log.exception("fan-out[%d]@%d is not a control result", state.partition, offset)
        return
    state.received.append(result)


async def on_fanout(rt: Runtime, message: Any) -> None:
    """Receive a control result; the engine learns it at the partition's next snapshot."""
    state = await rt.registry.get(message.partition)
    if state is None:
        log.warning("fan-out[%d] is not held here; record skipped", message.partition)
        return
    async with state.lock:
        receive_control(state, message.offset, message.value)


def attach(rt: Runtime) -> None:
    """Register the three agents on the runtime's app."""

    @rt.app.agent(rt.declarations, name="vigie.score", concurrency=1)
    async def score(stream: Any) -> None:
        async for event in stream.events():
            await on_declaration(rt, event.message)

    @rt.app.agent(rt.controls, name="vigie.fan_out", concurrency=1)
    async def fan_out(stream: Any) -> None:
        async for event in stream.events():
            await on_control(rt, event.message)

    @rt.app.agent(rt.fanout, name="vigie.learn", concurrency=1)
    async def learn(stream: Any) -> None:
        async for event in stream.events():
            await on_fanout(rt, event.message)
