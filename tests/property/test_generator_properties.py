"""Any configuration yields valid, ordered, round-tripping records with consistent truth."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from vigie.contracts.codec import decode, encode
from vigie.contracts.schemas import FUTURE_LIMIT, ControlResult, Declaration
from vigie_dev.generator import TYPOLOGIES, GeneratorConfig, stream
from vigie_dev.generator.config import MAX_CONTROL_DELAY

configs = st.builds(
    GeneratorConfig,
    n=st.integers(1, 400),
    seed=st.integers(0, 2**32 - 1),
    start=st.datetimes(  # streams and their controls end at most a year ahead
        min_value=datetime(2020, 1, 1),
        max_value=datetime.now()
        + FUTURE_LIMIT
        - timedelta(days=60)
        - MAX_CONTROL_DELAY
        - timedelta(days=2),
        timezones=st.just(UTC),
    ),
    days=st.integers(1, 60),
    fraud_share=st.floats(0.0, 0.3),
    inspected_share=st.floats(0.02, 0.3),
    audit_share=st.floats(0.0, 0.02),
)


@settings(max_examples=25, deadline=None)
@given(configs)
def test_any_configuration_yields_valid_records(config: GeneratorConfig) -> None:
    items = list(stream(config))
    assert len(items) == config.n
    end = config.start + timedelta(days=config.days)
    previous = config.start
    for item in items:
        decl = item.declaration
        assert decode(Declaration, encode(decl)) == decl
        assert previous <= decl.lodged_at < end
        previous = decl.lodged_at
        assert item.truth.declaration_id == decl.declaration_id
        assert item.truth.typology is None or item.truth.typology in TYPOLOGIES
        assert item.truth.duty_gap_eur >= 0
        assert decl.customs_value_eur > 0 and decl.net_mass_kg > 0
        if item.control is not None:
            assert decode(ControlResult, encode(item.control)) == item.control
            assert item.control.controlled_at > decl.lodged_at
    frauds = sum(item.truth.typology is not None for item in items)
    assert frauds <= sum(config.fraud_counts().values())
