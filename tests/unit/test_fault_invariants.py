"""The fault suite's checker finds what it is there to find: a clean run is clean, and
each kind of loss or duplicate is counted (tests/faults relies on it)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import orjson
import pytest

from vigie.contracts.schemas import EXAMPLE_DECLARATION, Alert
from vigie_dev.testing.ledger import Message, ledger
from vigie_dev.testing.receiver import Deliveries
from vigie_dev.testing.reliability import Observed, Window, verdict

IDS = ("D-1", "D-2", "D-3")
SELECTED = "D-2"


def score(decl_id: str, learnt: int, risk: float = 0.1) -> dict[str, Any]:
    return {
        "declaration_id": decl_id,
        "item_number": 1,
        "revision": 1,
        "risk": risk,
        "selected": decl_id == SELECTED,
        "model_versions": {"atypicality": f"atypicality-{learnt}"},
        "scored_at": "2026-12-04T10:00:00Z",
    }


def clean_run() -> Observed:
    raws = [orjson.dumps({**EXAMPLE_DECLARATION, "declaration_id": i}) for i in IDS]
    messages = [Message(0, n, b"FR1", raw) for n, raw in enumerate(raws)]
    scores = [score(i, n) for n, i in enumerate(IDS)]
    alert_id = Alert.id_for(SELECTED)
    alert = {"alert_id": alert_id, "score": scores[1]}
    rows = Counter({(i, 1, 1): 1 for i in IDS})
    hooks = Deliveries()
    hooks.answered["msg_1"] = 1
    hooks.ids_by_alert[alert_id].add("msg_1")
    return Observed(
        book=ledger(messages, max_bytes=65536),
        scores=scores,
        alerts=[alert],
        letters=[],
        warehouse={
            "declarations": rows,
            "scores": Counter(rows),
            "alerts": Counter({alert_id: 1}),
            "dead_letters": Counter(),
        },
        redis=Counter({alert_id: 1}),
        hooks={"all": hooks},
        wanted_hooks={"all": {alert_id}},
    )


WINDOW = Window("test", set(IDS), in_flight=3, recover_s=1.0)


def test_a_clean_run_is_clean() -> None:
    result = verdict(WINDOW, clean_run())
    assert result.clean, result.details
    assert (result.lost, result.duplicated, result.learnt_twice) == (0, 0, 0)


def _twice_in_scores(seen: Observed) -> None:
    seen.warehouse["scores"][("D-1", 1, 1)] += 1


def _missing_in_redis(seen: Observed) -> None:
    seen.redis.clear()


def _undelivered(seen: Observed) -> None:
    seen.hooks["all"] = Deliveries()


def _alert_without_selection(seen: Observed) -> None:
    seen.scores[1]["selected"] = False


def _rescored_otherwise(seen: Observed) -> None:
    seen.scores.append(score("D-3", 2, risk=0.9))


def _unscored(seen: Observed) -> None:
    del seen.scores[0]


@pytest.mark.parametrize(
    ("fault", "lost", "duplicated"),
    [
        (_twice_in_scores, 0, 1),
        (_missing_in_redis, 1, 0),
        (_undelivered, 1, 0),
        (_alert_without_selection, 1, 0),
        (_rescored_otherwise, 0, 1),
        (_unscored, 1, 0),
    ],
)
def test_each_loss_or_duplicate_is_counted(fault: Any, lost: int, duplicated: int) -> None:
    seen = clean_run()
    fault(seen)
    result = verdict(WINDOW, seen)
    assert (result.lost, result.duplicated) == (lost, duplicated), result.details


def test_a_score_learnt_twice_is_counted() -> None:
    seen = clean_run()
    seen.scores[2]["model_versions"] = {"atypicality": "atypicality-3"}
    assert verdict(WINDOW, seen).learnt_twice == 1
