"""The worker's logic without a broker: test-then-train, dead letters, alerts, parked
controls, snapshots that restore a model exactly, and the controls endpoint's parsing.

The scoring loop (``vigie.worker.loop``) calls these functions for each record; it runs on
the real Kafka in tests/integration/test_worker.py.
"""

from __future__ import annotations

import pickle
from datetime import timedelta, timezone
from typing import Any

import orjson
import pytest

from vigie.contracts.codec import encode
from vigie.contracts.schemas import Alert, ControlResult
from vigie.errors import DecodeError
from vigie.model.engine import RiskEngine
from vigie.worker.increments import dumps, restore
from vigie.worker.processing import (
    MAX_PARKED,
    apply_control,
    learn_received,
    receive_control,
    score_and_learn,
)
from vigie.worker.snapshots import chunk_key, manifest_key, split
from vigie.worker.state import TRANSIENT, PartitionState
from vigie.worker.web import authorized, parse_controls
from vigie_dev.generator import generate

ITEMS = list(generate(600, seed=5))


def run(state: PartitionState, items: list, topic: str = "declarations") -> list:  # type: ignore[type-arg]
    return [
        score_and_learn(
            state, i.declaration.importer.encode(), encode(i.declaration), source_topic=topic
        )
        for i in items
    ]


def test_every_valid_declaration_gets_one_score_and_is_learnt_once() -> None:
    state = PartitionState(0, RiskEngine(seed=0))
    outs = run(state, ITEMS[:200])
    assert [o.score.declaration_id for o in outs] == [
        i.declaration.declaration_id for i in ITEMS[:200]
    ]
    assert all(o.dead_letter is None for o in outs)
    assert state.declarations_learnt == 200
    assert {"valuation", "atypicality", "memory"} <= outs[-1].score.model_versions.keys()
    assert all(o.score.latency_ms > 0 for o in outs)


def test_selected_scores_and_only_those_raise_an_alert_with_a_stable_id() -> None:
    state = PartitionState(0, RiskEngine(budget=0.2, seed=1))
    outs = run(state, ITEMS)
    selected = [o for o in outs if o.score.selected]
    assert selected, "a 20 % budget selects some of 600 declarations"
    assert all((o.alert is not None) == o.score.selected for o in outs)
    for o in selected:
        assert o.alert.alert_id == Alert.id_for(o.score.declaration_id)
        assert o.alert.score == o.score


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"{not json", "invalid_json"),
        (b"[1, 2]", "not_an_object"),
        (b"NaN", "not_an_object"),
        (b"", "empty"),
        (b'{"a": 1}', "schema"),
    ],
)
def test_undecodable_records_become_dead_letters_and_teach_nothing(raw: bytes, reason: str) -> None:
    state = PartitionState(3, RiskEngine())
    before = state.engine.versions
    out = score_and_learn(state, b"key", raw, source_topic="t.declarations")
    assert out.score is None and out.alert is None
    assert out.dead_letter is not None
    assert (out.dead_letter.reason, out.dead_letter.key, out.dead_letter.source_topic) == (
        reason,
        "key",
        "t.declarations",
    )
    assert state.declarations_learnt == 0 and state.engine.versions == before


def test_controls_change_the_memory_version_on_later_scores() -> None:
    state = PartitionState(0, RiskEngine(seed=2))
    run(state, ITEMS[:400])
    controls = [i.control for i in ITEMS[:400] if i.control is not None]
    assert controls
    before = run(state, ITEMS[400:401])[0].score.model_versions["memory"]
    assert all(apply_control(state, c) for c in controls)
    after = run(state, ITEMS[401:402])[0].score.model_versions["memory"]
    assert before != after
    assert state.controls_learnt == len(controls)
    # a control result delivered twice (at-least-once) is not learnt twice
    assert not apply_control(state, controls[0])
    assert state.controls_learnt == len(controls)


def test_a_control_arriving_before_its_declaration_is_learnt_when_it_comes() -> None:
    item = next(i for i in ITEMS if i.control is not None)
    assert item.control is not None
    state = PartitionState(0, RiskEngine())
    assert not apply_control(state, item.control)
    assert list(state.parked) == [item.declaration.declaration_id]
    out = run(state, [item])[0]
    assert out.controls_learnt == 1 and state.controls_learnt == 1 and not state.parked


def test_parked_controls_are_bounded_oldest_first() -> None:
    state = PartitionState(0, RiskEngine())
    template = {
        "controlled_at": "2026-03-09T00:00:00Z",
        "outcome": "compliant",
        "selection": "other",
    }
    for n in range(MAX_PARKED + 10):
        apply_control(state, ControlResult.model_validate({**template, "declaration_id": f"X-{n}"}))
    assert len(state.parked) == MAX_PARKED
    assert next(iter(state.parked)) == "X-10"


def test_a_restored_snapshot_scores_exactly_like_the_model_it_was_taken_from() -> None:
    live = PartitionState(1, RiskEngine(seed=4))
    run(live, ITEMS[:300])
    live.declarations_offset, live.controls_offset = 299, 7
    for c in (i.control for i in ITEMS[:300] if i.control is not None):
        apply_control(live, c)
    restored = restore([dumps(live, full=True)])
    assert restored.position == (299, 7)
    assert restored.declarations_learnt == live.declarations_learnt == 300
    a, b = run(live, ITEMS[300:]), run(restored, ITEMS[300:])
    assert [o.score.risk for o in a] == [o.score.risk for o in b]
    assert [o.score.selected for o in a] == [o.score.selected for o in b]
    assert [o.score.model_versions for o in a] == [o.score.model_versions for o in b]


def test_what_the_log_rebuilds_is_not_pickled_and_comes_back_empty() -> None:
    state = PartitionState(0, RiskEngine())
    state.received.append("a control result")
    state.controls_read, state.replaying_until = 12, 40
    assert not TRANSIENT & state.__getstate__().keys()
    again = pickle.loads(pickle.dumps(state))
    assert (again.received, again.controls_read, again.replaying_until) == ([], -1, -1)


def test_snapshot_chunks_and_keys() -> None:
    blob = bytes(range(256)) * 10
    assert b"".join(split(blob, 1000)) == blob
    assert [len(c) for c in split(blob, 1000)] == [1000, 1000, 560]
    assert split(b"") == [b""]
    assert (manifest_key(3), chunk_key(3, 0, 12)) == (b"3/manifest", b"3/0/12")


def test_controls_endpoint_accepts_an_object_an_array_or_json_lines() -> None:
    controls = [i.control for i in ITEMS if i.control is not None][:3]
    lines = b"\n".join(encode(c) for c in controls)
    array = b"[" + b",".join(encode(c) for c in controls) + b"]"
    assert parse_controls(lines) == controls == parse_controls(array)
    assert parse_controls(encode(controls[0])) == controls[:1]


def test_controls_endpoint_rejects_the_whole_body_naming_the_bad_item() -> None:
    good = orjson.loads(encode(next(i.control for i in ITEMS if i.control is not None)))
    with pytest.raises(DecodeError) as err:
        parse_controls(orjson.dumps([good, {**good, "outcome": "maybe"}]))
    assert err.value.errors[0]["loc"][:2] == [1, "outcome"]
    for body in (b"", b"[]", b"not json"):
        with pytest.raises(DecodeError):
            parse_controls(body)


def test_bearer_token_check() -> None:
    assert authorized("Bearer tok", "tok")
    assert not authorized("Bearer tok2", "tok")
    assert not authorized("Basic tok", "tok")
    assert not authorized(None, "tok")


def test_a_replay_from_a_snapshot_scores_as_the_first_pass_whatever_the_interleaving() -> None:
    """A crash after declaration 449: the restored engine scores 301..449 again while
    the control results come in another order relative to the declarations. Since
    controls are learnt at checkpoints only, and not before the replay has caught up,
    every replayed Score (and Alert) is the first one again."""
    items = list(generate(600, seed=8, inspected_share=0.3))
    order = [i for i, item in enumerate(items) if item.control]
    fanout = [
        encode(c) for i in order if (c := items[i].control) is not None
    ]  # each revealed 25 declarations later
    end = 449

    def score(state: PartitionState, d: int) -> Any:
        out = run(state, [items[d]])[0]
        state.declarations_offset = d  # as the agent records it
        return out

    first, snapshot, outs = PartitionState(0, RiskEngine(budget=0.1, seed=6)), b"", {}
    for d in range(end + 1):
        outs[d] = score(first, d)
        while first.controls_read + 1 < len(fanout) and order[first.controls_read + 1] + 25 <= d:
            receive_control(first, first.controls_read + 1, fanout[first.controls_read + 1])
        if d in (150, 300):
            learn_received(first)
            snapshot = dumps(first, full=True)

    def replay(*, at_checkpoints: bool) -> dict[int, Any]:
        state = restore([snapshot])
        assert state.position[0] == 300
        state.replaying_until = end  # the log's end when it was restored
        for offset in range(state.controls_read + 1, len(fanout)):  # the backlog, all at once
            receive_control(state, offset, fanout[offset])
            if not at_checkpoints:  # what learning each result as it is read would do
                apply_control(state, state.received.pop())
        again = {}
        for d in range(301, len(items)):
            again[d] = score(state, d)
            if d % 20 == 0:
                learn_received(state)
        assert state.controls_offset == len(fanout) - 1 and not state.received
        return again

    clock = {"scored_at", "latency_ms"}  # when the Score was made, not what it says

    def said(outs: dict[int, Any], ds: range) -> list[dict[str, Any]]:
        return [outs[d].score.model_dump(exclude=clock) for d in ds]

    replayed = range(301, end + 1)
    again = replay(at_checkpoints=True)
    assert said(again, replayed) == said(outs, replayed)
    assert [again[d].alert is not None for d in replayed] == [
        outs[d].score.selected for d in replayed
    ]
    assert sum(outs[d].alert is not None for d in replayed) > 10
    # learning each result as it was read would have scored the replay differently
    assert said(replay(at_checkpoints=False), replayed) != said(outs, replayed)


def test_a_repeat_with_the_same_content_is_neither_scored_nor_learnt_again() -> None:
    state = PartitionState(0, RiskEngine())
    run(state, ITEMS[:50])
    decl = ITEMS[10].declaration
    versions = state.engine.versions
    # the same item re-sent by another system: keys reordered, another time zone
    fields = orjson.loads(encode(decl))
    fields["lodged_at"] = decl.lodged_at.astimezone(timezone(timedelta(hours=2))).isoformat()
    resent = orjson.dumps(dict(reversed(list(fields.items()))))
    out = score_and_learn(state, b"k", resent, source_topic="declarations")
    assert (out.seen, out.score, out.alert, out.dead_letter) == ("repeat", None, None, None)
    assert state.declarations_learnt == 50 and state.engine.versions == versions


def test_an_amendment_is_scored_as_the_next_revision_and_not_learnt_again() -> None:
    state = PartitionState(0, RiskEngine(budget=0.5))
    run(state, ITEMS[:300])
    decl = ITEMS[10].declaration
    learnt = state.engine.versions["valuation"], state.engine.versions["atypicality"]
    amended = decl.model_copy(update={"customs_value_eur": decl.customs_value_eur / 5})
    out = score_and_learn(state, b"k", encode(amended), source_topic="declarations")
    assert out.seen == "amendment" and out.score is not None
    assert (out.score.declaration_id, out.score.revision) == (decl.declaration_id, 2)
    assert state.declarations_learnt == 300
    assert (state.engine.versions["valuation"], state.engine.versions["atypicality"]) == learnt
    if out.alert is not None:
        assert out.alert.alert_id == Alert.id_for(decl.declaration_id, revision=2)
    again = score_and_learn(state, b"k", encode(amended), source_topic="declarations")
    assert again.seen == "repeat"


def test_random_audits_are_marked_as_such_on_their_alert() -> None:
    state = PartitionState(0, RiskEngine(budget=0.05, audit_share=0.2, seed=3))
    outs = run(state, ITEMS)
    kinds = {(o.score.selection, o.alert.kind) for o in outs if o.alert is not None}
    assert kinds == {("engine", "risk"), ("random_audit", "random_audit")}
