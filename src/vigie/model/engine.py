"""The risk engine: the case memory, the detectors, the combined risk and the daily quota.

:meth:`RiskEngine.score_one` assesses an import declaration: what the case memory knows of
its chain of keys and what inspecting it would teach, the valuation and atypicality
findings, one combined risk, the inspection decision (a random audit, else the daily
quota on the selection score) and its reasons. :meth:`RiskEngine.learn_one` learns the
declaration and keeps what its control result will need; :meth:`RiskEngine.learn_control`
teaches the memory (unweighted) and the combiner (inverse-probability weighted). Exports
are never selected and never learnt as import risk. How the parts fit:
docs/learning-from-controls.md.

Examples
--------
>>> from vigie.contracts.schemas import EXAMPLE_DECLARATION, ControlResult, Declaration
>>> engine = RiskEngine(budget=0.05, audit_share=0.01, seed=0)
>>> decl = Declaration.model_validate(EXAMPLE_DECLARATION)
>>> assessment = engine.score_one(decl)
>>> engine.learn_one(decl)
>>> round(assessment.risk, 3), assessment.selection_probability
(0.1, 1.0)
>>> engine.learn_control(ControlResult(declaration_id=decl.declaration_id,
...     controlled_at="2026-03-09T10:00:00Z", outcome="infraction", selection="other"))
True
>>> sorted(engine.versions)
['atypicality', 'budget', 'combiner', 'memory', 'valuation']
"""

from __future__ import annotations

import math
import random
import struct
import sys
from collections import OrderedDict
from typing import Final, NamedTuple

from vigie.contracts.schemas import ControlResult, Declaration
from vigie.model.assessment import (
    MAX_EUR,
    Assessment,
    AtypicalityFinding,
    Reason,
    Selection,
    ValuationFinding,
)
from vigie.model.atypicality import (
    EVIDENCE,
    AtypicalityDetector,
    Items,
    finding,
    pair_items,
    tax_type,
)
from vigie.model.base import Declared, Detector, declared, event_day
from vigie.model.combiner import RiskCombiner
from vigie.model.memory import CaseMemory, Compact, chain, compact
from vigie.model.operators import ROLES, OperatorHistory
from vigie.model.quota import DailyQuota
from vigie.model.reasons import Facts, explain
from vigie.model.tables import ChangeSet, Tracked
from vigie.model.valuation import ValuationDetector

QUOTA_SLACK: Final = 5.0
"""Items the daily quota may run ahead of (or behind) its target: risky declarations come
in clusters (a shipment in parts, an abrupt switch), which a tighter quota cuts."""
MIN_SELECTION_PROBABILITY: Final = 1e-4
"""Floor of a recorded selection probability (a Score's must be > 0)."""
REASONS_FROM: Final = 0.5
"""Reasons are written for selected declarations and those with a risk of at least this
share of the threshold (nobody reads the others')."""
_EVIDENCE: Final = struct.Struct(f"{8 + len(EVIDENCE) + len(ROLES)}d")
"""Pending evidence: the day lodged, the selection probability, the value and mass bins of
the signature (:func:`vigie.model.memory.compact`), the memory's rate, the valuation z
(NaN: none), each surprise, each operator's log odds ratio, then the customs value and the net mass,
for the valuation to forget the value of a declaration found in infraction. One
bytes object holds them all: a float object costs four times its eight bytes, and 400,000
declarations may be pending."""
_EVIDENCE_7: Final = struct.Struct(f"{6 + len(EVIDENCE) + len(ROLES)}d")
"""The pending evidence of a snapshot of format 7 or before: without the last two numbers."""
_LODGED: Final = struct.Struct("d")
"""The first field of the pending evidence: the day lodged."""


PendingItem = tuple[bytes, str, str, str, str, str]
"""What is kept of a scored declaration item until its control result arrives: the
evidence (the day lodged first, then the numbers of :data:`_EVIDENCE`; an export: the day
alone), the signature's product ("": an export, learnt as nothing), its origin and tax
type, the importer and the declarant. The strings are interned: held once however many
declarations share them. A plain tuple of strings and bytes, which the garbage collector
stops tracking once it has seen it: 400,000 declarations may be pending, and a class's
instances (a NamedTuple's too) would be walked at every full collection."""


class _Scored(NamedTuple):
    """What :meth:`RiskEngine.score_one` computed, for :meth:`RiskEngine.learn_one`."""

    declaration_id: str
    item_number: int
    fields: Compact
    items: Items
    mu: float
    z: float | None
    surprises: list[float]
    operators: list[float]
    selection_score: float
    threshold: float
    targeted: bool
    audited: bool
    selection_probability: float
    day: float
    decl: Declared | None = None
    """The fields read (None in a snapshot before format 7, after a score not learnt)."""


class RiskEngine(Detector):
    """One final risk per declaration, the inspection decision and its reasons.

    The parameters are those of :class:`vigie.settings.EngineSettings`, with the same
    defaults.

    Parameters
    ----------
    budget
        Share of each event-time day's import declarations the quota selects.
    audit_share
        Probability of a random audit of any import declaration, drawn before the quota.
    seed
        Seed of the random audits.
    exploration
        Weight of the knowledge gradient in the selection score (0: greedy).
    label_delay_days
        Expected days before a control result comes back (the exploration's horizon).
    max_weight
        Clip on inverse-probability weights.
    max_pending
        Declarations whose evidence is kept awaiting a control result (oldest dropped).
    max_pending_days
        Event-time days after which a pending declaration is dropped.
    """

    def __init__(
        self,
        budget: float = 0.05,
        audit_share: float = 0.01,
        seed: int = 0,
        exploration: float = 1.0,
        label_delay_days: float = 7.0,
        max_weight: float = 20.0,
        max_pending: int = 400_000,
        max_pending_days: float = 60.0,
    ) -> None:
        self.budget = budget
        self.audit_share = audit_share
        self.seed = seed
        self.exploration = exploration
        self.label_delay_days = label_delay_days
        self.max_weight = max_weight
        self.max_pending = max_pending
        self.max_pending_days = max_pending_days
        self._memory = CaseMemory(exploration=exploration, label_delay_days=label_delay_days)
        self._valuation = ValuationDetector()
        self._atypicality = AtypicalityDetector()
        self._combiner = RiskCombiner(
            n_pairs=len(EVIDENCE), max_weight=max_weight, n_operators=len(ROLES)
        )
        self._operators = OperatorHistory()
        self._quota = DailyQuota(budget=budget, slack=QUOTA_SLACK)
        self._rng = random.Random(seed)
        self._draw = self._rng.random()  # the next audit draw: read by score, spent by learn
        self._pending: OrderedDict[str, tuple[PendingItem, ...]] = OrderedDict()
        self._pending_changed: ChangeSet = {}
        self._last: _Scored | None = None

    @property
    def versions(self) -> dict[str, str]:
        """The version of every learnt part (the Assessment's ``model_versions``)."""
        return {
            "memory": self._memory.version,
            "valuation": self._valuation.version,
            "atypicality": self._atypicality.version,
            "combiner": self._combiner.version,
            "budget": self._quota.version,
        }

    @property
    def version(self) -> str:
        """One string that changes whenever any part learns."""
        return "|".join(self.versions.values())

    def tables(self) -> list[Tracked]:
        """Every large table of the engine and its change set, always in the same order
        (:mod:`vigie.model.tables`)."""
        return [
            *self._memory.tables(),
            *self._valuation.tables(),
            *self._atypicality.tables(),
            *self._operators.tables(),
            (self._pending, self._pending_changed),
        ]

    @property
    def n_pending(self) -> int:
        """Declarations whose evidence awaits a control result."""
        return len(self._pending)

    def score_one(self, decl: Declaration) -> Assessment:
        """Assess a declaration, learning nothing (test-then-train: :meth:`learn_one` next)."""
        if decl.direction == "export":
            return self._export()
        return self._score(declared(decl))

    def _score(self, decl: Declared) -> Assessment:
        day = decl.day
        fields = compact(
            sys.intern(decl.commodity_code[:6]),
            sys.intern(decl.origin),
            sys.intern(tax_type(decl)),
            decl.customs_value_eur,
            decl.net_mass_kg,
        )
        read = self._memory.read(chain(fields), day, self.max_pending_days)
        valuation = self._valuation.score_declared(decl)
        items = pair_items(decl)
        surprises = self._atypicality.surprises(decl, items)
        atypicality = finding(surprises)
        z = valuation.robust_z
        operators = self._operators.read((decl.importer, decl.declarant))
        risk = self._combiner.risk(read.mu, z, surprises, operators)
        selection_score = read.priority + (risk - read.mu)
        threshold = self._quota.threshold(math.floor(day))
        chosen = selection_score >= threshold
        audited = self.audit_share > 0 and self._draw < self.audit_share
        selection: Selection | None = "random_audit" if audited else "engine" if chosen else None
        audit = self.audit_share
        probability = audit + (1.0 - audit) * (1.0 if chosen else 0.0)
        probability = min(max(probability, MIN_SELECTION_PROBABILITY), 1.0)
        shown = min(max(threshold, 0.0), 1.0)
        reasons: tuple[Reason, ...] = ()
        if selection is not None or risk >= REASONS_FROM * shown:
            facts = Facts(
                read.mu,
                read.level,
                read.controls,
                read.infractions,
                self._memory.global_rate,
                read.priority - read.mu,
            )
            reasons = explain(decl, valuation, atypicality, facts)
        duty = valuation.duty_at_risk_eur or min(
            decl.customs_value_eur * decl.duty_rate_pct / 100.0, MAX_EUR
        )
        self._last = _Scored(
            decl.declaration_id,
            decl.item_number,
            fields,
            items,
            read.mu,
            z,
            surprises,
            operators,
            selection_score,
            threshold,
            chosen and not audited,
            audited,
            probability,
            day,
            decl,
        )
        return Assessment(
            valuation=valuation,
            atypicality=atypicality,
            supervised_probability=min(max(read.mu, 0.0), 1.0),
            risk=risk,
            expected_recoverable_eur=min(risk * duty, MAX_EUR),
            selected=selection is not None,
            selection=selection,
            selection_probability=probability,
            threshold=shown,
            reasons=reasons,
            model_versions=self.versions,
        )

    def _export(self) -> Assessment:
        """An export: never selected, no import risk."""
        self._last = None
        return Assessment(
            valuation=ValuationFinding(score=0.0),
            atypicality=AtypicalityFinding(score=0.0),
            supervised_probability=0.0,
            risk=0.0,
            expected_recoverable_eur=0.0,
            selected=False,
            selection=None,
            selection_probability=MIN_SELECTION_PROBABILITY,
            threshold=1.0,
            model_versions=self.versions,
        )

    def learn_one(self, decl: Declaration) -> None:
        """Learn a declaration: the detectors, the signature's arrival rate, the quota,
        the audit draw; and keep its evidence for its control result."""
        if decl.direction == "export":
            day = event_day(decl)
            export = (_LODGED.pack(day), "", "", "", "", "")
            self._remember(decl.declaration_id, decl.item_number, export, day)
            return
        last = self._last
        if (
            last is None
            or last.declaration_id != decl.declaration_id
            or (last.item_number != decl.item_number)
        ):
            self.score_one(decl)
            last = self._last
            assert last is not None
        self._last = None
        signature = chain(last.fields)[-1]
        memory = self._memory
        memory.observe(signature, last.day)
        if last.targeted or last.audited:
            memory.selected(signature, last.day, last.threshold)
        else:
            memory.follow(last.threshold)
        learnt = declared(decl) if last.decl is None else last.decl
        self._valuation.learn_declared(learnt)
        self._atypicality.learn_items(learnt, last.items)
        self._quota.observe(math.floor(last.day), last.selection_score, last.targeted)
        if self.audit_share > 0:
            self._draw = self._rng.random()
        z = math.nan if last.z is None else last.z
        hs6, origin, tax, value_bin, mass_bin = last.fields
        evidence = _EVIDENCE.pack(
            last.day, last.selection_probability, value_bin, mass_bin,
            last.mu, z, *last.surprises, *last.operators,
            learnt.customs_value_eur, learnt.net_mass_kg,
        )  # fmt: skip
        importer, declarant = sys.intern(learnt.importer), sys.intern(learnt.declarant)
        item = (evidence, hs6, origin, tax, importer, declarant)
        self._remember(learnt.declaration_id, learnt.item_number, item, last.day)

    def learn_control(self, result: ControlResult) -> bool:
        """Learn a control result; False when the declaration's evidence is not held.

        An infraction also takes the declaration's unit value out of the valuation's
        references (:meth:`~vigie.model.valuation.ValuationDetector.forget_value`).
        """
        items = self._pending.pop(result.declaration_id, None)
        if items is None:
            return False
        self._pending_changed[result.declaration_id] = None
        fraud = result.is_fraud
        n_surprises, n_operators = len(EVIDENCE), len(ROLES)
        for evidence, hs6, origin, tax, importer, declarant in items:
            if not hs6:
                continue  # an export: no import risk to learn
            _, probability, value_bin, mass_bin, mu, z, *rest = unpack_evidence(evidence)
            surprises = rest[:n_surprises]
            operators = rest[n_surprises : n_surprises + n_operators]
            value, mass = rest[-2], rest[-1]
            if fraud and not math.isnan(value):
                self._valuation.forget_value(hs6, origin, value, mass)
            weight = ipw(result.selection_probability, probability, self.max_weight)
            fields = (hs6, origin, tax, int(value_bin), int(mass_bin))
            self._memory.learn_label(chain(fields), fraud)
            self._operators.learn((importer, declarant), fraud)
            z_or_none = None if math.isnan(z) else z
            self._combiner.learn(mu, z_or_none, surprises, fraud, weight, operators)
        return True

    def _remember(
        self, declaration_id: str, item_number: int, item: PendingItem, lodged: float
    ) -> None:
        """Keep ``item`` (item ``item_number`` of the declaration) for its control result,
        lodged on event-time day ``lodged``."""
        store, changed = self._pending, self._pending_changed
        changed[declaration_id] = None
        items = store.pop(declaration_id, ())
        # A rescored item replaces itself; other items of the declaration are kept.
        store[declaration_id] = (*items[: item_number - 1], item)
        horizon = lodged - self.max_pending_days
        while store and (
            len(store) > self.max_pending
            or _LODGED.unpack_from(next(iter(store.values()))[0][0])[0] < horizon
        ):
            changed[store.popitem(last=False)[0]] = None


def unpack_evidence(evidence: bytes) -> tuple[float, ...]:
    """The numbers of a pending evidence (:data:`_EVIDENCE`); one kept by a snapshot of
    format 7 or before gets NaN for its value and mass."""
    if len(evidence) == _EVIDENCE_7.size:
        return (*_EVIDENCE_7.unpack(evidence), math.nan, math.nan)
    return _EVIDENCE.unpack(evidence)


def ipw(selection_probability: float | None, fallback: float, max_weight: float) -> float:
    """Inverse-probability weight of a control result, clipped to ``[1, max_weight]``.

    The probability the result carries wins; else the one recorded at scoring time.

    >>> ipw(None, 0.01, 20.0), ipw(0.5, 0.01, 20.0), ipw(1.0, 0.01, 20.0)
    (20.0, 2.0, 1.0)
    """
    p = selection_probability if selection_probability is not None else fallback
    if p <= 0:
        return max_weight
    return min(max(1.0 / p, 1.0), max_weight)
