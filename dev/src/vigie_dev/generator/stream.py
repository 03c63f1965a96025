"""The deterministic stream: declarations in lodging order, each with its truth and control.

:func:`simulate` draws everything as columns (world, structure, frauds, prices, duties,
inspections) from one ``numpy.random.Generator`` seeded by ``config.seed``;
:func:`stream` then turns each row into a validated
:class:`~vigie.contracts.schemas.Declaration`, its :class:`Truth` and, when inspected, its
:class:`~vigie.contracts.schemas.ControlResult`.

Examples
--------
>>> items = list(generate(2000, seed=1))
>>> len(items), items[0].declaration.lodged_at.isoformat()[:10]
(2000, '2026-01-01')
>>> all(a.declaration.lodged_at <= b.declaration.lodged_at for a, b in zip(items, items[1:]))
True
>>> sum(item.truth.typology is not None for item in items)
80
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import numpy as np

from vigie.contracts.schemas import ControlResult, Declaration
from vigie_dev.generator import catalogue as cat
from vigie_dev.generator import typologies as typ
from vigie_dev.generator.config import TYPOLOGIES, GeneratorConfig
from vigie_dev.generator.controls import Inspections, inspect
from vigie_dev.generator.draft import (
    AIR,
    CURRENCIES,
    INCOTERM_NAMES,
    PREFERENCES,
    PROCEDURES,
    Draft,
    draw_structure,
)
from vigie_dev.generator.exports import EXPORT_PROCEDURE, Exports, draw_exports
from vigie_dev.generator.pricing import apply_duties, exchange_rates, invoice_amounts, price
from vigie_dev.generator.split import draw_splits
from vigie_dev.generator.world import COUNTRIES, MODES, FloatArray, World, build_world

CRITICAL_DUTY_GAP_EUR = 5000.0
CRITICAL_GAP = 0.7
"""A fraud is critical when it dodges at least EUR 5,000 of duty or hides 70 % of the value."""

Severity = Literal["fraud", "critical"]


@dataclass(frozen=True)
class Truth:
    """The ground truth of one declaration (never visible in the declaration itself).

    ``gap`` is ``1 - declared value / true value`` (0 when the value is right);
    duties are in EUR; ``event`` groups the items of one fraud (a split shipment, an
    importer's switch), ``None`` for clean items.
    """

    declaration_id: str
    typology: str | None
    severity: Severity | None
    gap: float
    true_value_eur: float
    declared_value_eur: float
    true_duty_eur: float
    declared_duty_eur: float
    duty_gap_eur: float
    event: int | None

    def as_dict(self) -> dict[str, Any]:
        """The truth as one JSON-ready mapping (a line of the truth file)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class GeneratedItem:
    """One declaration, its ground truth and its inspection (``None`` if not inspected)."""

    declaration: Declaration
    truth: Truth
    control: ControlResult | None


@dataclass(frozen=True)
class Simulation:
    """Every column of a stream, sorted by lodging time, and how it was made."""

    config: GeneratorConfig
    world: World
    draft: Draft
    fx: FloatArray
    inspections: Inspections
    exports: Exports

    def __len__(self) -> int:
        """Declarations in the stream, imports and exports."""
        return len(self.draft) + len(self.exports)


def simulate(config: GeneratorConfig) -> Simulation:
    """Draw the whole stream as columns. Same configuration, same columns.

    The imports are drawn first, from ``config.seed``; the exports from a generator of
    their own, so that adding exports leaves the imports' draws as they were.
    """
    imports = replace(config, n=config.n - config.exports(), export_share=0.0)
    sim = _simulate_imports(imports)
    start = config.start.astimezone(UTC).date()
    exports = draw_exports(
        np.random.default_rng([config.seed, 1]), sim.world, config.exports(), config.days, start
    )
    return replace(sim, config=config, exports=exports)


def _simulate_imports(config: GeneratorConfig) -> Simulation:
    rng = np.random.default_rng(config.seed)
    world = build_world(rng, config.importer_count(), config.days)
    counts = config.fraud_counts()
    n_split = min(counts["split_consignment"], config.n)
    start = config.start.astimezone(UTC).date()
    draft = draw_structure(rng, world, config.n - n_split, config.days, start)
    events = typ.Events()
    typ.new_route(rng, world, draft, counts["new_route"], events)
    typ.origin_inconsistent(rng, world, draft, counts["origin_inconsistent"], events)
    typ.chapter_switch(rng, world, draft, counts["chapter_switch"], events)
    price(rng, world, draft)
    apply_duties(rng, world, draft)
    rerouted = [typ.CODE["new_route"], typ.CODE["origin_inconsistent"]]
    altered = np.flatnonzero(np.isin(draft.typology, rerouted))
    apply_duties(rng, world, draft, altered, claim_rate=1.0)
    typ.settle_due_rates(rng, world, draft)
    typ.under_valuation(rng, world, draft, counts["under_valuation"], events)
    typ.mass_value_incoherence(rng, world, draft, counts["mass_value_incoherence"], events)
    splits = draw_splits(rng, world, draft, n_split, config.days, events)
    draft = _top_up(rng, world, draft.extend(splits), config)
    draft = draft.take(np.argsort(draft.t, kind="stable"))
    fx = exchange_rates(rng, config.days)
    inspections = inspect(rng, world, draft, config)
    return Simulation(config, world, draft, fx, inspections, Exports.none())


def _top_up(rng: np.random.Generator, world: World, draft: Draft, config: GeneratorConfig) -> Draft:
    """Clean declarations to reach exactly ``n`` when fewer split parts could be drawn."""
    missing = config.n - len(draft)
    if missing <= 0:
        return draft
    start = config.start.astimezone(UTC).date()
    extra = draw_structure(rng, world, missing, config.days, start)
    price(rng, world, extra)
    apply_duties(rng, world, extra)
    return draft.extend(extra)


def generate(
    n: int,
    seed: int = 0,
    *,
    start: datetime = datetime(2026, 1, 1, tzinfo=UTC),
    days: int = 90,
    fraud_share: float = 0.04,
    inspected_share: float = 0.05,
    audit_share: float = 0.01,
) -> Iterator[GeneratedItem]:
    """``n`` declarations in lodging order, each with its truth and control, from ``seed``.

    A shortcut for ``stream(GeneratorConfig(...))``; see :class:`GeneratorConfig`.
    """
    config = GeneratorConfig(
        n=n,
        seed=seed,
        start=start,
        days=days,
        fraud_share=fraud_share,
        inspected_share=inspected_share,
        audit_share=audit_share,
    )
    return stream(config)


def stream(config: GeneratorConfig) -> Iterator[GeneratedItem]:
    """The items of the stream described by ``config``, in lodging order."""
    yield from items(simulate(config))


def items(sim: Simulation) -> Iterator[GeneratedItem]:
    """Turn the columns of a simulation into validated records, in lodging order."""
    rows, exports = _Rows(sim), _ExportRows(sim)
    merged = heapq.merge(
        ((t, 0, i) for i, t in enumerate(rows.t)),
        ((t, 1, i) for i, t in enumerate(exports.t)),
    )
    for _, kind, i in merged:
        if kind == 1:
            yield exports.item(i)
            continue
        declaration = Declaration.model_validate(rows.declaration(i))
        yield GeneratedItem(declaration, rows.truth(i), rows.control(i, declaration))


def mrns(prefix: str, n: int, kind: str = "I") -> list[str]:
    """18-character MRN-like ids: year, country, seed, sequence, type, check digit.

    The type is ``I`` for imports, ``E`` for exports. The check digit is the sum of the
    digits after the country code, modulo 10.

    >>> mrns("26FR0001", 2)
    ['26FR000100000000I1', '26FR000100000001I2']
    >>> mrns("26FR0001", 1, kind="E")
    ['26FR000100000000E1']
    """
    seq = np.arange(n, dtype=np.int64)
    digits = sum((seq // 10**k) % 10 for k in range(8))
    base = sum(int(c) for c in prefix[4:])
    checks = ((digits + base) % 10).tolist()
    return [f"{prefix}{i:08d}{kind}{c}" for i, c in zip(range(n), checks, strict=True)]


class _Rows:
    """Per-row record builders over precomputed Python lists (fast to index)."""

    def __init__(self, sim: Simulation) -> None:
        d, w, cfg = sim.draft, sim.world, sim.config
        self.sim = sim
        self.start = cfg.start.astimezone(UTC)
        self.prefix = f"{self.start.year % 100:02d}FR{cfg.seed % 10000:04d}"
        self.t = d.t.tolist()
        self.office = [cat.OFFICES[i].code for i in d.office.tolist()]
        self.importer = [w.importers.ids[i] for i in d.importer.tolist()]
        self.declarant = [w.declarants[i] for i in d.declarant.tolist()]
        self.seller = [w.sellers.names[i] for i in d.seller.tolist()]
        self.commodity = [w.goods.codes[i] for i in d.commodity.tolist()]
        self.origin = [COUNTRIES[i] for i in d.origin.tolist()]
        self.dispatch = [COUNTRIES[i] for i in d.dispatch.tolist()]
        self.mode = [MODES[i] for i in d.mode.tolist()]
        self.incoterm = [INCOTERM_NAMES[i] for i in d.incoterm.tolist()]
        self.currency = [CURRENCIES[i] for i in d.currency.tolist()]
        self.procedure = [PROCEDURES[i] for i in d.procedure.tolist()]
        self.preference = [PREFERENCES[i] for i in d.preference.tolist()]
        self.invoice = invoice_amounts(d, sim.fx).tolist()
        self.value, self.true_value = d.value.tolist(), d.true_value.tolist()
        self.mass, self.units = d.mass.tolist(), d.units.tolist()
        self.rate, self.true_rate = d.rate.tolist(), d.true_rate.tolist()
        self.ad, self.low = d.anti_dumping.tolist(), d.low_value.tolist()
        self.typology, self.event = d.typology.tolist(), d.event.tolist()
        self.ids = mrns(self.prefix, len(d))

    def declaration(self, i: int) -> dict[str, Any]:
        units = self.units[i]
        record: dict[str, Any] = {
            "declaration_id": self.ids[i],
            "lodged_at": self.start + timedelta(seconds=round(self.t[i])),
            "office": self.office[i],
            "declarant": self.declarant[i],
            "importer": self.importer[i],
            "seller": self.seller[i],
            "commodity_code": self.commodity[i],
            "origin": self.origin[i],
            "dispatch": self.dispatch[i],
            "procedure": self.procedure[i],
            "transport_mode": self.mode[i],
            "incoterm": self.incoterm[i],
            "invoice_currency": self.currency[i],
            "invoice_amount": self.invoice[i],
            "customs_value_eur": self.value[i],
            "net_mass_kg": self.mass[i],
            "supplementary_units": None if units != units else units,
            "duty_rate_pct": round(self.rate[i], 3),
            "preference": self.preference[i],
            "attributes": self._attributes(i),
        }
        return record

    def _attributes(self, i: int) -> dict[str, str]:
        if self.low[i]:
            return {"additional_procedure": "C07"}
        if self.ad[i]:
            return {"taric_additional_code": "C999"}
        return {}

    def truth(self, i: int) -> Truth:
        declared = round(self.value[i] * self.rate[i] / 100.0, 2)
        due = round(self.true_value[i] * self.true_rate[i] / 100.0, 2)
        gap = 1.0 - self.value[i] / self.true_value[i] if self.true_value[i] > 0 else 0.0
        code = self.typology[i]
        duty_gap = round(max(0.0, due - declared), 2)
        severity: Severity | None = None
        if code:
            critical = duty_gap >= CRITICAL_DUTY_GAP_EUR or gap >= CRITICAL_GAP
            severity = "critical" if critical else "fraud"
        return Truth(
            declaration_id=self.ids[i],
            typology=TYPOLOGIES[code - 1] if code else None,
            severity=severity,
            gap=round(gap, 6),
            true_value_eur=self.true_value[i],
            declared_value_eur=self.value[i],
            true_duty_eur=due,
            declared_duty_eur=declared,
            duty_gap_eur=duty_gap,
            event=self.event[i] if code else None,
        )

    def control(self, i: int, declaration: Declaration) -> ControlResult | None:
        ins = self.sim.inspections
        if not (ins.audited[i] or ins.targeted[i]):
            return None
        found = bool(ins.found[i])
        truth = self.truth(i)
        audit = bool(ins.audited[i])
        return ControlResult(
            declaration_id=self.ids[i],
            controlled_at=declaration.lodged_at + timedelta(seconds=round(float(ins.delay[i]))),
            outcome=("critical" if truth.severity == "critical" else "infraction")
            if found
            else "compliant",
            recovered_eur=truth.duty_gap_eur if found else 0.0,
            selection="random_audit" if audit else "other",
            selection_probability=self.sim.config.audit_share if audit else None,
            inspector=f"{self.office[i]}-INSP{i % 17 + 1:02d}",
            typology=truth.typology if found else None,
        )


class _ExportRows:
    """Export records (no fraud, no control) over the simulation's export columns."""

    def __init__(self, sim: Simulation) -> None:
        ex, w, cfg = sim.exports, sim.world, sim.config
        self.start = cfg.start.astimezone(UTC)
        prefix = f"{self.start.year % 100:02d}FR{cfg.seed % 10000:04d}"
        self.ids = mrns(prefix, len(ex), kind="E")
        self.t = ex.t.tolist()
        self.exporter = [w.importers.ids[i] for i in ex.exporter.tolist()]
        self.declarant = [w.declarants[i] for i in ex.declarant.tolist()]
        self.office = [cat.OFFICES[i].code for i in ex.office.tolist()]
        self.commodity = [w.goods.codes[i] for i in ex.commodity.tolist()]
        self.origin = [
            "FR" if french else COUNTRIES[o]
            for french, o in zip(ex.french.tolist(), ex.origin.tolist(), strict=True)
        ]
        self.destination = [COUNTRIES[i] for i in ex.destination.tolist()]
        self.mode = [MODES[i] for i in ex.mode.tolist()]
        self.air = (ex.mode == AIR).tolist()
        self.mass, self.units, self.value = ex.mass.tolist(), ex.units.tolist(), ex.value.tolist()

    def item(self, i: int) -> GeneratedItem:
        units = self.units[i]
        declaration = Declaration.model_validate(
            {
                "declaration_id": self.ids[i],
                "lodged_at": self.start + timedelta(seconds=round(self.t[i])),
                "office": self.office[i],
                "declarant": self.declarant[i],
                "importer": self.exporter[i],
                "commodity_code": self.commodity[i],
                "origin": self.origin[i],
                "dispatch": "FR",
                "destination": self.destination[i],
                "procedure": EXPORT_PROCEDURE,
                "transport_mode": self.mode[i],
                "incoterm": "FCA" if self.air[i] else "FOB",
                "invoice_currency": "EUR",
                "invoice_amount": self.value[i],
                "customs_value_eur": self.value[i],
                "net_mass_kg": self.mass[i],
                "supplementary_units": None if units != units else units,
                "duty_rate_pct": 0.0,
                "direction": "export",
            }
        )
        value = self.value[i]
        truth = Truth(self.ids[i], None, None, 0.0, value, value, 0.0, 0.0, 0.0, None)
        return GeneratedItem(declaration, truth, None)
