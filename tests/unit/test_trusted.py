"""Records built without validation (vigie.model.trusted) are valid records."""

from __future__ import annotations

from datetime import timedelta

from vigie.contracts.codec import decode, encode
from vigie.contracts.schemas import ControlResult, Score
from vigie.model.engine import RiskEngine
from vigie_dev.generator import generate


def test_engine_scores_round_trip_through_the_codec() -> None:
    """Every Score the engine builds (warm-up, warm, selected with reasons) validates."""
    engine = RiskEngine(warm_up=50)
    selected_with_reasons = 0
    pending: list[ControlResult] = []
    for i, item in enumerate(generate(1500, seed=3)):
        decl = item.declaration
        score = engine.score_one(decl, now=decl.lodged_at)
        engine.learn_one(decl)
        pending.append(
            ControlResult(
                declaration_id=decl.declaration_id,
                controlled_at=decl.lodged_at + timedelta(days=1),
                outcome="infraction" if item.truth.typology else "compliant",
                selection="other",
            )
        )
        if i % 10 == 9:
            for result in pending:
                engine.learn_control(result)
            pending.clear()
        decoded = decode(Score, encode(score))
        assert decoded == score
        assert Score.model_validate(score.model_dump()) == score
        selected_with_reasons += score.selected and bool(score.reasons)
    assert selected_with_reasons > 0
    assert engine.versions["supervised"] != "supervised-0"
