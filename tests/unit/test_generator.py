"""The synthetic stream: determinism, validity, realism, labelled frauds and controls."""

from __future__ import annotations

import math
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from vigie.contracts.codec import decode
from vigie.contracts.schemas import ControlResult, Declaration
from vigie.errors import ConfigurationError
from vigie_dev.generator import (
    TYPOLOGIES,
    GeneratorConfig,
    generate,
    simulate,
    stream,
    write_files,
)
from vigie_dev.generator.catalogue import LOW_VALUE_LIMIT_EUR, TRANSHIPMENT

N = 20_000
CONFIG = GeneratorConfig(n=N, seed=11)


@dataclass(frozen=True)
class Written:
    declarations: list[Declaration]
    truths: list[dict[str, Any]]
    controls: list[ControlResult]
    paths: tuple[Path, Path, Path]
    summary: dict[str, Any]


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> Written:
    """One 20,000-declaration stream on disk, every line decoded with the codec."""
    tmp = tmp_path_factory.mktemp("generated")
    out, controls, truth = tmp / "d.jsonl", tmp / "c.jsonl", tmp / "t.jsonl"
    summary = write_files(CONFIG, out, controls, truth)
    return Written(
        declarations=[decode(Declaration, line) for line in out.read_bytes().splitlines()],
        truths=[orjson.loads(line) for line in truth.read_bytes().splitlines()],
        controls=[decode(ControlResult, line) for line in controls.read_bytes().splitlines()],
        paths=(out, controls, truth),
        summary=summary,
    )


def _files(tmp: Path, seed: int) -> list[bytes]:
    out, controls, truth = tmp / f"d{seed}.jsonl", tmp / f"c{seed}.jsonl", tmp / f"t{seed}.jsonl"
    write_files(GeneratorConfig(n=3000, seed=seed), out, controls, truth)
    return [p.read_bytes() for p in (out, controls, truth)]


def test_same_seed_writes_identical_bytes_and_another_seed_differs(tmp_path: Path) -> None:
    first, again = _files(tmp_path / "a", 5), _files(tmp_path / "b", 5)
    other = _files(tmp_path / "c", 6)
    assert first == again
    assert all(len(content) > 0 for content in first)
    assert all(a != b for a, b in zip(first, other, strict=True))


def test_every_line_is_a_valid_record_and_files_line_up(written: Written) -> None:
    assert len(written.declarations) == N == len(written.truths)
    assert [d.declaration_id for d in written.declarations] == [
        t["declaration_id"] for t in written.truths
    ]
    assert len({d.declaration_id for d in written.declarations}) == N
    assert written.summary["declarations"] == N
    assert written.summary["controls"] == len(written.controls)


def test_lodging_times_are_ordered_utc_within_the_period(written: Written) -> None:
    times = [d.lodged_at for d in written.declarations]
    assert times == sorted(times)
    assert all(t.utcoffset() == timedelta(0) for t in times)
    assert times[0] >= CONFIG.start
    assert times[-1] < CONFIG.start + timedelta(days=CONFIG.days)
    office_hours = sum(6 <= t.hour < 18 for t in times) / len(times)
    weekend = sum(t.weekday() >= 5 for t in times) / len(times)
    assert office_hours > 0.8
    assert weekend < 0.1


def test_importer_activity_is_heavy_tailed(written: Written) -> None:
    counts = sorted(Counter(d.importer for d in written.declarations).values(), reverse=True)
    top = counts[: max(1, len(counts) // 100)]
    assert len(counts) > 800
    assert sum(top) / N > 0.15
    assert statistics.median(counts) < 0.2 * max(counts)


def test_clean_unit_values_are_log_normal_per_commodity_and_origin(written: Written) -> None:
    cells: dict[tuple[str, str], list[float]] = defaultdict(list)
    for d, t in zip(written.declarations, written.truths, strict=True):
        per = d.unit_value_per_unit or d.unit_value_per_kg
        if t["typology"] is None and per and "additional_procedure" not in d.attributes:
            cells[(d.commodity_code, d.origin)].append(per)
    big = [values for values in cells.values() if len(values) >= 60]
    assert len(big) >= 20
    log_skews = [_skew([math.log(v) for v in values]) for values in big]
    raw_skews = [_skew(values) for values in big]
    spreads = [statistics.stdev([math.log(v) for v in values]) for values in big]
    assert statistics.median(abs(s) for s in log_skews) < 0.5
    assert statistics.median(raw_skews) > 0.3
    assert 0.1 < statistics.median(spreads) < 0.5


def _skew(values: list[float]) -> float:
    mean, sd = statistics.fmean(values), statistics.pstdev(values)
    return statistics.fmean(((v - mean) / sd) ** 3 for v in values)


def test_fraud_counts_match_the_configured_shares(written: Written) -> None:
    counts = Counter(t["typology"] for t in written.truths if t["typology"])
    assert dict(counts) == {k: v for k, v in CONFIG.fraud_counts().items() if v}
    assert sum(counts.values()) == pytest.approx(N * CONFIG.fraud_share, rel=0.02)
    assert written.summary["frauds"] == CONFIG.fraud_counts()
    assert set(counts) == set(TYPOLOGIES)
    clean = [t for t in written.truths if t["typology"] is None]
    assert all(t["severity"] is None and t["duty_gap_eur"] == 0 for t in clean)
    assert all(t["gap"] == 0 and t["event"] is None for t in clean)


def test_under_valued_items_declare_a_fraction_of_the_market_value(written: Written) -> None:
    rows = [t for t in written.truths if t["typology"] == "under_valuation"]
    for t in rows:
        assert 0.2 <= t["gap"] <= 0.9
        expected = t["true_value_eur"] * (1 - t["gap"])
        assert t["declared_value_eur"] == pytest.approx(expected, rel=1e-5, abs=0.02)
        assert t["duty_gap_eur"] == pytest.approx(
            t["true_duty_eur"] - t["declared_duty_eur"], abs=0.02
        )
    gaps = [t["gap"] for t in rows]
    assert 0.45 < statistics.fmean(gaps) < 0.65
    assert all(t["severity"] in ("fraud", "critical") for t in rows)


def test_true_value_of_under_valued_items_is_the_going_price(written: Written) -> None:
    """The truth is the market price: true unit values sit in the clean distribution."""
    clean: dict[str, list[float]] = defaultdict(list)
    for d, t in zip(written.declarations, written.truths, strict=True):
        if t["typology"] is None and d.net_mass_kg > 0:
            clean[d.commodity_code].append(math.log(d.customs_value_eur / d.net_mass_kg))
    true_ratios, declared_ratios = [], []
    for d, t in zip(written.declarations, written.truths, strict=True):
        if t["typology"] == "under_valuation" and len(clean[d.commodity_code]) >= 20:
            ref = statistics.median(clean[d.commodity_code])
            true_ratios.append(math.log(t["true_value_eur"] / d.net_mass_kg) - ref)
            declared_ratios.append(math.log(d.customs_value_eur / d.net_mass_kg) - ref)
    assert abs(statistics.median(true_ratios)) < 0.35
    assert statistics.median(declared_ratios) < -0.6


def test_no_label_leaks_into_declarations(written: Written) -> None:
    keys = {k for d in written.declarations for k in d.attributes}
    assert keys <= {"additional_procedure", "taric_additional_code"}
    text = b"".join(written.paths[0].read_bytes().splitlines()[:5000]).lower()
    for word in (*TYPOLOGIES, "fraud", "critical", "typology"):
        assert word.encode() not in text


def test_typologies_leave_an_honest_trace(written: Written) -> None:
    by_type: dict[str | None, list[int]] = defaultdict(list)
    for i, t in enumerate(written.truths):
        by_type[t["typology"]].append(i)
    decls = written.declarations
    clean_pairs = {(decls[i].chapter, decls[i].origin) for i in by_type[None]}
    assert all(decls[i].origin in TRANSHIPMENT for i in by_type["new_route"])
    odd = [
        i
        for i in by_type["origin_inconsistent"]
        if (decls[i].chapter, decls[i].origin) in clean_pairs
    ]
    assert len(odd) <= 0.05 * len(by_type["origin_inconsistent"])
    assert all(
        decls[i].customs_value_eur < LOW_VALUE_LIMIT_EUR for i in by_type["split_consignment"]
    )
    assert _first_time_share(decls, by_type["chapter_switch"]) > 0.9
    assert _mass_outlier_share(decls, by_type[None], by_type["mass_value_incoherence"]) > 0.9


def _first_time_share(decls: list[Declaration], rows: list[int]) -> float:
    """Share of ``rows`` whose importer never declared that chapter before the switch."""
    first_seen: dict[tuple[str, str], int] = {}
    for i, d in enumerate(decls):
        first_seen.setdefault((d.importer, d.chapter), i)
    events = [i for i in rows if first_seen[(decls[i].importer, decls[i].chapter)] in rows]
    return len(events) / len(rows)


def _mass_outlier_share(decls: list[Declaration], clean: list[int], rows: list[int]) -> float:
    """Share of ``rows`` whose kg per unit or value per kg is 3x off the clean median."""
    norm: dict[str, list[float]] = defaultdict(list)
    for i in clean:
        d = decls[i]
        norm[d.commodity_code].append(
            d.net_mass_kg / (d.supplementary_units or d.customs_value_eur)
        )
    off = 0
    for i in rows:
        d = decls[i]
        ratio = d.net_mass_kg / (d.supplementary_units or d.customs_value_eur)
        ref = statistics.median(norm[d.commodity_code] or [ratio])
        off += not (1 / 3 < ratio / ref < 3)
    return off / len(rows)


def test_controls_cover_the_inspected_share_with_honest_selection(written: Written) -> None:
    controls = written.controls
    assert len(controls) == pytest.approx(N * CONFIG.inspected_share, rel=0.1)
    audits = [c for c in controls if c.selection == "random_audit"]
    assert len(audits) == pytest.approx(N * CONFIG.audit_share, rel=0.25)
    assert all(c.selection_probability == CONFIG.audit_share for c in audits)
    assert all(c.selection == "other" and c.selection_probability is None
               for c in controls if c not in audits)  # fmt: skip
    times = [c.controlled_at for c in controls]
    assert times == sorted(times)
    lodged = {d.declaration_id: d.lodged_at for d in written.declarations}
    delays = [c.controlled_at - lodged[c.declaration_id] for c in controls]
    assert all(timedelta(days=2) <= d <= timedelta(days=15) for d in delays)


def test_control_outcomes_follow_the_truth_and_targeting_beats_chance(written: Written) -> None:
    truth = {t["declaration_id"]: t for t in written.truths}
    fraud_share = sum(t["typology"] is not None for t in written.truths) / N
    inspected_frauds = found = 0
    for c in written.controls:
        t = truth[c.declaration_id]
        if t["typology"] is None:
            assert c.outcome == "compliant" and c.recovered_eur == 0
            continue
        inspected_frauds += 1
        if c.outcome != "compliant":
            found += 1
            assert c.outcome == ("critical" if t["severity"] == "critical" else "infraction")
            assert c.recovered_eur == t["duty_gap_eur"]
    targeted = [c for c in written.controls if c.selection == "other"]
    hit_rate = sum(truth[c.declaration_id]["typology"] is not None for c in targeted) / len(
        targeted
    )
    all_frauds = sum(t["typology"] is not None for t in written.truths)
    assert 0.75 < found / inspected_frauds <= 1.0
    assert hit_rate > 2 * fraud_share
    assert inspected_frauds < all_frauds


def test_generate_api_yields_items_with_truth_and_control() -> None:
    items = list(generate(500, seed=4, days=20, start=datetime(2026, 6, 1, tzinfo=UTC)))
    assert len(items) == 500
    assert items[0].declaration.lodged_at >= datetime(2026, 6, 1, tzinfo=UTC)
    assert {i.truth.declaration_id == i.declaration.declaration_id for i in items} == {True}
    controlled = [i for i in items if i.control is not None]
    assert all(i.control.declaration_id == i.declaration.declaration_id
               for i in controlled if i.control)  # fmt: skip
    assert 5 <= len(controlled) <= 60


@pytest.mark.parametrize(
    "change", [{"n": 0}, {"fraud_share": 0.9}, {"audit_share": 0.2}, {"mix": {"bogus": 1.0}}]
)
def test_impossible_configurations_are_refused(change: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError, match="generator"):
        GeneratorConfig(**change)


def test_cli_prints_one_json_object(tmp_path: Path) -> None:
    import typer

    from vigie_dev.cli.generate import generate as command

    app = typer.Typer()
    app.command()(command)
    out = tmp_path / "x.jsonl"
    args = [
        "--declarations",
        "800",
        "--seed",
        "2",
        "--out",
        str(out),
        "--controls",
        str(tmp_path / "c.jsonl"),
    ]
    result = CliRunner().invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    summary = orjson.loads(result.stdout)
    assert summary["declarations"] == 800
    assert summary["path"] == str(out)
    assert set(summary["frauds"]) == set(TYPOLOGIES)
    assert summary["seconds"] > 0
    assert (tmp_path / "x.truth.jsonl").exists()
    assert len((tmp_path / "c.jsonl").read_bytes().splitlines()) == summary["controls"]


def test_exports_leave_the_imports_as_they_were() -> None:
    both = list(stream(GeneratorConfig(n=2000, seed=4, export_share=0.2)))
    alone = list(stream(GeneratorConfig(n=1600, seed=4)))
    imports = [item for item in both if item.declaration.direction == "import"]
    assert [i.declaration for i in imports] == [i.declaration for i in alone]
    assert [i.control for i in imports] == [i.control for i in alone]
    exports = [item.declaration for item in both if item.declaration.direction == "export"]
    assert len(exports) == 400
    assert all(d.destination and d.destination != "FR" and d.duty_rate_pct == 0 for d in exports)
    assert all(d.declaration_id[16] == "E" for d in exports)
    operators = set(simulate(GeneratorConfig(n=2000, seed=4)).world.importers.ids)
    assert {d.importer for d in exports} <= operators
    importers = {i.declaration.importer for i in alone}
    assert {d.importer for d in exports} & importers, "no operator both imports and exports"


def test_controls_that_find_a_fraud_name_its_typology() -> None:
    found = [
        item
        for item in generate(5000, seed=2)
        if item.control is not None and item.control.is_fraud
    ]
    assert found
    assert all(item.control.typology == item.truth.typology for item in found if item.control)
