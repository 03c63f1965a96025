"""The risk engine: every detector, the supervised model, the budget and the reasons.

:meth:`RiskEngine.score_one` assesses a declaration: the valuation and atypicality
findings, the supervised probability of an infraction, one final risk, the inspection
decision and its reasons. :meth:`RiskEngine.learn_one` learns the declaration and keeps
its features until its control result arrives; :meth:`RiskEngine.learn_control` then
teaches the supervised model, the infraction rates and the calibration, weighted by
inverse selection probability. How the parts fit: docs/learning-from-controls.md.

Examples
--------
>>> from vigie.contracts.schemas import EXAMPLE_DECLARATION, ControlResult, Declaration
>>> engine = RiskEngine(budget=0.05, audit_share=0.01, seed=0)
>>> decl = Declaration.model_validate(EXAMPLE_DECLARATION)
>>> assessment = engine.score_one(decl)
>>> engine.learn_one(decl)
>>> assessment.risk, assessment.selected, assessment.selection_probability
(0.0, False, 0.01)
>>> engine.learn_control(ControlResult(declaration_id=decl.declaration_id,
...     controlled_at="2026-03-09T10:00:00Z", outcome="infraction", selection="other"))
True
>>> sorted(engine.versions)
['atypicality', 'budget', 'combiner', 'history', 'supervised', 'valuation']
"""

from __future__ import annotations

import struct
from collections import OrderedDict
from collections.abc import Sequence
from functools import partial
from typing import Final, NamedTuple

from vigie.contracts.schemas import ControlResult, Declaration
from vigie.model.activity import ActivityHistory
from vigie.model.assessment import MAX_EUR, Assessment, Reason
from vigie.model.atypicality import AtypicalityDetector
from vigie.model.base import Detector
from vigie.model.budget import Decision, InspectionBudget
from vigie.model.calibration import RiskCombiner
from vigie.model.features import (
    FEATURES,
    VALUATION_CLASSES,
    class_order,
    declaration_features,
    detector_features,
    one_hot,
    valuation_class,
    valuation_depth,
)
from vigie.model.infractions import InfractionHistory
from vigie.model.keys import KEYS, declaration_base, key_values
from vigie.model.learner import ControlLearner, ipw
from vigie.model.quantiles import SECONDS_PER_DAY
from vigie.model.reasons import HISTORY_SUBJECTS, Facts, explain
from vigie.model.valuation import ValuationDetector

_AT: Final = {name: i for i, name in enumerate(FEATURES)}
_SUBJECT_AT: Final = {key: KEYS.index(key) for key in HISTORY_SUBJECTS}
# Pending.values: the features, the history rows, the combiner's four scores, the epoch
_PENDING: Final = struct.Struct(f"{len(FEATURES)}f{len(KEYS)}i4fi")
_ROWS_AT: Final = len(FEATURES)
_TAIL_AT: Final = _ROWS_AT + len(KEYS)
REASONS_FROM: Final = 0.5
"""Reasons are written for selected declarations and those with a risk of at least this
share of the threshold (nobody reads the others')."""

_Scored = tuple[
    str,  # declaration id
    int,  # item number
    list[float],  # the numeric features
    list[int],  # the history rows of the key values
    tuple[str, ...],  # the base fields
    tuple[float, float, float, int],  # the combiner's scores
    Decision,
]


class Pending(NamedTuple):
    """What is kept of a scored declaration until its control result arrives."""

    values: bytes
    """The numeric features (float32), the history rows of the declaration's key values
    (int32), the combiner's four scores (float32) and the history's epoch (int32)."""
    base: tuple[str, ...]
    """The interned fields the history keys and one-hot features are built from."""
    selection_probability: float
    lodged: float


class RiskEngine(Detector):
    """One final risk per declaration, the inspection decision and its reasons.

    The parameters are those of :class:`vigie.settings.EngineSettings`, with the same
    defaults.

    Parameters
    ----------
    budget
        Share of declarations the online threshold selects.
    audit_share
        Probability of a random audit for a declaration the threshold does not select.
    seed
        Seed of the random audits and of the atypicality trees.
    warm_up
        Controls learnt before the combined risk replaces the unsupervised one.
    prior_strength
        Beta smoothing of the infraction rates (pseudo-controls at the global rate).
    learning_rate
        SGD step of the supervised logistic regression.
    max_weight
        Clip on inverse-probability weights.
    max_pending
        Declarations whose features are kept awaiting a control result (oldest dropped).
    max_pending_days
        Event-time days after which a pending declaration is dropped.
    """

    def __init__(
        self,
        budget: float = 0.05,
        audit_share: float = 0.01,
        seed: int = 0,
        warm_up: int = 200,
        prior_strength: float = 0.5,
        learning_rate: float = 0.01,
        max_weight: float = 20.0,
        max_pending: int = 400_000,
        max_pending_days: float = 60.0,
    ) -> None:
        self.budget = budget
        self.audit_share = audit_share
        self.seed = seed
        self.warm_up = warm_up
        self.prior_strength = prior_strength
        self.learning_rate = learning_rate
        self.max_weight = max_weight
        self.max_pending = max_pending
        self.max_pending_days = max_pending_days
        self._valuation = ValuationDetector()
        self._atypicality = AtypicalityDetector(seed=seed)
        self._history = InfractionHistory(prior_strength=prior_strength)
        self._activity = ActivityHistory()
        self._learner = ControlLearner(
            learning_rate=learning_rate, max_weight=max_weight, warm_up=warm_up
        )
        floors, borrows = class_order()
        self._combiner = RiskCombiner(
            warm_up=warm_up, valuation_classes=VALUATION_CLASSES, floors=floors, borrows=borrows
        )
        self._budget = InspectionBudget(budget=budget, audit_share=audit_share, seed=seed)
        self._pending: OrderedDict[str, tuple[Pending, ...]] = OrderedDict()
        self._combined = False  # whether the last risk learnt was the combiner's calibrated one
        self._last: _Scored | None = None  # what score_one computed, for learn_one

    @property
    def versions(self) -> dict[str, str]:
        """The version of every learnt part (the Assessment's ``model_versions``)."""
        return {
            "valuation": self._valuation.version,
            "atypicality": self._atypicality.version,
            "supervised": self._learner.version,
            "combiner": self._combiner.version,
            "history": self._history.version,
            "budget": self._budget.version,
        }

    @property
    def version(self) -> str:
        """One string that changes whenever any part learns."""
        return "|".join(self.versions.values())

    @property
    def n_pending(self) -> int:
        """Declarations whose features await a control result."""
        return len(self._pending)

    def score_one(self, decl: Declaration) -> Assessment:
        """Assess a declaration, learning nothing (test-then-train: :meth:`learn_one` next)."""
        valuation = self._valuation.score_one(decl)
        atyp = self._atypicality.score_one(decl)
        base = declaration_base(decl)
        values = declaration_features(decl)
        values += self._activity.features(decl)
        values += detector_features(valuation, atyp)
        values.append(self._valuation.importer_flagged_share(decl.importer))
        rows = self._history.rows(key_values(base))
        x = values + self._history.logits(rows)
        supervised = self._learner.predict_proba_one(x, one_hot(base))
        own = self._valuation.own_ratio(decl, valuation.unit)
        scores = (
            supervised,
            valuation_depth(valuation),
            atyp.score,
            valuation_class(valuation, own),
        )
        risk = min(1.0, max(0.0, self._combiner.predict_proba_one(scores)))
        decision = self._budget.decide(risk)
        reasons: tuple[Reason, ...] = ()
        if decision.selected or risk >= REASONS_FROM * decision.threshold:
            warm = supervised if self._learner.is_warm else None
            reasons = explain(decl, valuation, atyp, self._facts(rows, values, warm))
        duty = valuation.duty_at_risk_eur or min(
            decl.customs_value_eur * decl.duty_rate_pct / 100, MAX_EUR
        )
        self._last = (decl.declaration_id, decl.item_number, x, rows, base, scores, decision)
        return Assessment(
            valuation=valuation,
            atypicality=atyp,
            supervised_probability=supervised,
            risk=risk,
            expected_recoverable_eur=risk * duty,
            selected=decision.selected,
            selection=decision.selection,
            selection_probability=decision.selection_probability,
            threshold=decision.threshold,
            reasons=reasons,
            model_versions=self.versions,
        )

    def learn_one(self, decl: Declaration) -> None:
        """Learn a declaration: the detectors, the activity, the budget's window; and keep
        its features for its control result."""
        last = self._last
        if last is None or last[0] != decl.declaration_id or last[1] != decl.item_number:
            self.score_one(decl)
            last = self._last
            assert last is not None
        self._last = None
        _, _, x, rows, base, scores, decision = last
        self._valuation.learn_one(decl)
        self._atypicality.learn_one(decl)
        self._activity.learn_one(decl)
        if self._combined != self._combiner.is_warm:
            self._combined = not self._combined
            self._budget.restart()  # the risk changed scale: the old quantile selects few
        self._budget.learn_one(decision)
        self._remember(decl, x, rows, base, decision.selection_probability, scores)

    def learn_control(self, result: ControlResult) -> bool:
        """Learn a control result; False when the declaration's features are not held."""
        items = self._pending.pop(result.declaration_id, None)
        if items is None:
            return False
        fraud = result.is_fraud
        for item in items:
            weight = ipw(result.selection_probability, item.selection_probability, self.max_weight)
            fields = _PENDING.unpack(item.values)
            self._learner.learn_one(fields[:_ROWS_AT], one_hot(item.base), fraud, weight)
            rows = fields[_ROWS_AT:_TAIL_AT]
            *scores, epoch = fields[_TAIL_AT:]
            keys = partial(key_values, item.base)
            self._history.learn_one(rows, epoch, keys, fraud, weight)
            self._combiner.learn_one(scores, fraud, weight)
        return True

    def _remember(
        self,
        decl: Declaration,
        x: list[float],
        rows: list[int],
        base: tuple[str, ...],
        selection_probability: float,
        scores: tuple[float, float, float, int],
    ) -> None:
        lodged = decl.lodged_at.timestamp()
        values = _PENDING.pack(*x, *rows, *scores, self._history.epoch)
        item = Pending(values, base, selection_probability, lodged)
        store = self._pending
        items = store.pop(decl.declaration_id, ())
        # A rescored item replaces itself; other items of the declaration are kept.
        store[decl.declaration_id] = (*items[: decl.item_number - 1], item)
        horizon = lodged - self.max_pending_days * SECONDS_PER_DAY
        while store and (
            len(store) > self.max_pending or next(iter(store.values()))[0].lodged < horizon
        ):
            store.popitem(last=False)

    def _facts(self, rows: list[int], values: Sequence[float], supervised: float | None) -> Facts:
        history = self._history
        return Facts(
            rates={key: history.rate(rows[at]) for key, at in _SUBJECT_AT.items()},
            global_rate=history.global_rate,
            new_importer=values[_AT["act:new_importer"]] == 1.0,
            new_chapter=values[_AT["act:new_chapter"]] == 1.0,
            supervised=supervised,
        )
