"""The risk engine: every detector, the supervised model, the budget and the reasons.

:meth:`RiskEngine.score_one` runs the valuation and atypicality detectors, builds the
supervised features (the detectors' outputs, smoothed infraction rates of the importer,
declarant, seller, commodity, origin, office and their pairs, activity counts, value,
mass and duty), reads the supervised probability, decides on inspection and explains
the decision. The features are kept, with the selection probability, in a bounded store
until the control result arrives: :meth:`RiskEngine.learn_control` then teaches the
supervised model and the infraction rates, weighted by inverse selection probability.

The final risk is the supervised probability, lifted by the valuation and atypicality
scores where their calibration on the same control results shows they add something
(see :class:`~vigie.model.supervised.RiskCombiner`); before ``warm_up`` controls it
is the unsupervised noisy-or ``1 - (1 - valuation)(1 - atypicality)``. When the risk
switches from one to the other, the budget forgets the risks it saw: their scale changed,
and their old quantile (about 0.5, against about 0.2 for the calibrated risk) would select
almost nothing for days.

The budget (:class:`~vigie.model.budget.InspectionBudget`) selects risks above the
``1 - budget`` quantile of recent risks, and audits any other declaration with
probability ``audit_share``; ``Score.selection_probability`` is 1 above the threshold and
``audit_share`` below it, the weight a later control result is learnt with (1 / p,
clipped at ``max_weight``) unless the result carries its own. The expected recoverable
duty is the risk times the valuation detector's duty at risk, or times the declared duty
when the valuation has no reference.

Examples
--------
>>> from vigie.contracts.schemas import EXAMPLE_DECLARATION, ControlResult, Declaration
>>> engine = RiskEngine(budget=0.05, audit_share=0.01, seed=0)
>>> decl = Declaration.model_validate(EXAMPLE_DECLARATION)
>>> score = engine.score_one(decl)
>>> engine.learn_one(decl)
>>> round(score.risk, 3), score.selected, score.selection_probability
(0.0, False, 0.01)
>>> engine.learn_control(ControlResult(declaration_id=decl.declaration_id,
...     controlled_at="2026-03-09T10:00:00Z", outcome="infraction", selection="other"))
True
>>> sorted(engine.versions)
['atypicality', 'budget', 'combiner', 'history', 'supervised', 'valuation']
"""

from __future__ import annotations

import math
import struct
import time
from collections import OrderedDict
from collections.abc import Sequence
from datetime import datetime
from functools import partial
from typing import Final, NamedTuple

import numpy as np

from vigie.contracts.schemas import (
    AtypicalityEvidence,
    ControlResult,
    Declaration,
    Reason,
    Score,
    ValuationEvidence,
    utc_now,
)
from vigie.model.atypicality import IMPORTANCE, AtypicalityDetector
from vigie.model.base import Detector
from vigie.model.budget import InspectionBudget
from vigie.model.history import (
    ACTIVITY_FEATURES,
    BASE_FIELDS,
    KEYS,
    ActivityHistory,
    InfractionHistory,
    declaration_base,
    key_values,
)
from vigie.model.quantiles import SECONDS_PER_DAY
from vigie.model.reasons import HISTORY_SUBJECTS, Facts, explain
from vigie.model.supervised import ControlLearner, RiskCombiner, ipw
from vigie.model.trusted import trusted
from vigie.model.valuation import ValuationDetector

_ONE_HOT: Final = tuple(
    (BASE_FIELDS.index(name), f"cat:{name}=")
    for name in (
        "transport_mode",
        "procedure",
        "import_type",
        "import_use",
        "payment_type",
        "tax_type",
        "origin_indicator",
    )
)
DECLARATION_FEATURES: Final = (
    "num:duty",
    "num:log_value",
    "num:log_mass",
    "num:log_unit_value",
    "num:courier",
)
DETECTOR_FEATURES: Final = (
    "val:score",
    "val:log_ratio",
    "val:z",
    "val:below",
    "val:log_support",
    "atyp:score",
    *(f"atyp:{name}" for name in IMPORTANCE),
)
HISTORY_FEATURES: Final = tuple(f"te:{key}" for key in KEYS)
FEATURES: Final = (
    *DECLARATION_FEATURES,
    *ACTIVITY_FEATURES,
    *DETECTOR_FEATURES,
    "val:importer_flagged",
    *HISTORY_FEATURES,
)
"""The supervised model's numeric features, in the order of the engine's feature vector."""
_AT: Final = {name: i for i, name in enumerate(FEATURES)}
_CONTRIBUTION_AT: Final = {name: i for i, name in enumerate(IMPORTANCE)}
_SUBJECT_AT: Final = {key: KEYS.index(key) for key in HISTORY_SUBJECTS}
# Pending.values: the features, the history rows, the combiner's four scores, the epoch
_PENDING: Final = struct.Struct(f"{len(FEATURES)}f{len(KEYS)}i4fi")
_ROWS_AT: Final = len(FEATURES)
_TAIL_AT: Final = _ROWS_AT + len(KEYS)
REASONS_FROM: Final = 0.5
"""Reasons are written for selected declarations and those with a risk of at least this
share of the threshold (the others are not read by anyone; this saves a third of the
engine's own time)."""


class Pending(NamedTuple):
    """What is kept of a scored declaration until its control result arrives (about
    820 bytes: see bench/bench_engine.py)."""

    values: bytes
    """The numeric features (:data:`FEATURES`, float32), the history's rows of the
    declaration's key values (int32, see :meth:`InfractionHistory.rows`), then the
    supervised score, the valuation depth, the atypicality score and the valuation
    evidence class (the combiner's inputs, float32) and the history's epoch (int32)."""
    base: tuple[str, ...]
    """The interned fields the history keys and one-hot features are built from."""
    selection_probability: float
    lodged: float


def detector_features(valuation: ValuationEvidence, atyp: AtypicalityEvidence) -> list[float]:
    """The unsupervised detectors' outputs as supervised features (:data:`DETECTOR_FEATURES`).

    >>> f = detector_features(ValuationEvidence(score=0.9, ratio=0.25, robust_z=-4.0),
    ...                       AtypicalityEvidence(score=0.3))
    >>> f = dict(zip(DETECTOR_FEATURES, f))
    >>> round(f["val:log_ratio"], 3), f["val:z"], f["atyp:score"]
    (-1.386, -4.0, 0.3)
    """
    ratio = valuation.ratio
    z = valuation.robust_z
    contributions = [0.0] * len(_CONTRIBUTION_AT)
    for c in atyp.contributions:
        contributions[_CONTRIBUTION_AT[c.name]] = c.weight
    return [
        valuation.score,
        max(-5.0, min(5.0, math.log(ratio))) if ratio and ratio > 0 else 0.0,
        max(-10.0, min(10.0, z)) if z is not None else 0.0,
        1.0 if valuation.below_lowest_acceptable else 0.0,
        math.log1p(valuation.support_count),
        atyp.score,
        *contributions,
    ]


DEPTH_Z: Final = 10.0
"""Robust z-score at which the valuation depth saturates (``depth = -z / DEPTH_Z``)."""
SUPPORT_CLASSES: Final[tuple[float, ...]] = (20.0, 100.0)
"""Support (effective comparable declarations) bounds of the valuation evidence classes."""


def valuation_depth(valuation: ValuationEvidence) -> float:
    """How far below its reference a value is, ``-z / DEPTH_Z`` in [0, 1] (0 without one).

    Finer than the valuation score at the top, where the score's logistic saturates: the
    combiner calibrates it, per :func:`valuation_class`, into an infraction probability.

    >>> valuation_depth(ValuationEvidence(score=1.0, ratio=0.2, robust_z=-6.0)), (
    ...     valuation_depth(ValuationEvidence(score=0.0)))
    (0.6, 0.0)
    """
    z = valuation.robust_z
    if z is None:
        return 0.0
    return min(1.0, max(0.0, -z / DEPTH_Z))


OWN_LOWEST: Final = 0.6
"""A value under this share of the importer's own usual price of the same goods is
"below its own price" (the EU 50 % rule, with slack for the noise of a median of a few
declarations)."""
VALUATION_CLASSES: Final = 18


def class_order() -> tuple[list[list[int]], list[list[int]]]:
    """Which valuation classes bound which (:class:`RiskCombiner` ``floors``, ``borrows``).

    A value below half of the reference (odd class) is at least as telling as one above
    it (class - 1), against a denser reference (class - 2) and under the importer's own
    price (class - 6): such a class keeps at least those classes' rates (measured on the
    generated streams: 0.05 / 0.24 / 0.59 infractions in sparse cells for an importer
    in line with its own price / without one / under it). A value above half of the
    reference is only smoothed toward the sparser class and the lower own-price state:
    there the ordering does not hold (honest price noise puts values under an importer's
    own median too), and a class with controls speaks for itself.

    >>> floors, borrows = class_order()
    >>> floors[5], borrows[4], floors[17], borrows[16]
    ([4, 3], [2], [16, 15, 11], [14, 10])
    """
    floors: list[list[int]] = []
    borrows: list[list[int]] = []
    for c in range(VALUATION_CLASSES):
        lower = [c - 2] if c % 6 >= 2 else []
        if c >= 6:
            lower.append(c - 6)
        if c % 2:
            floors.append([c - 1, *lower])
            borrows.append([])
        else:
            floors.append([])
            borrows.append(lower)
    return floors, borrows


def valuation_class(valuation: ValuationEvidence, own_ratio: float | None = None) -> int:
    """The kind of valuation evidence, 0 to 17: ``6 * own + 2 * support class + below``.

    The support class (under 20, 20 to 100, over 100 comparable declarations) says how
    much the reference can be trusted: a sparse fallback cell is often merely the wrong
    market. A value under half of the reference (``below``) is the EU trigger of a value
    check. ``own`` compares the value with the importer's own usual price of the same
    goods (:meth:`~vigie.model.valuation.ValuationDetector.own_ratio`): 0 in line
    with it, 1 no history, 2 under :data:`OWN_LOWEST` of it. An importer who always pays
    a price far below a sparse market reference is usually buying another variety; one
    who suddenly declares half its usual price is not.

    >>> valuation_class(ValuationEvidence(score=1.0, ratio=0.3, robust_z=-5.0,
    ...                                   support_count=400, below_lowest_acceptable=True))
    11
    >>> valuation_class(ValuationEvidence(score=0.9, ratio=0.6, robust_z=-4.0, support_count=8),
    ...                 own_ratio=1.1)
    0
    >>> valuation_class(ValuationEvidence(score=1.0, ratio=0.3, robust_z=-5.0, support_count=8,
    ...                                   below_lowest_acceptable=True), own_ratio=0.3)
    13
    """
    support = valuation.support_count
    level = sum(support >= bound for bound in SUPPORT_CLASSES)
    own = 1 if own_ratio is None else (2 if own_ratio < OWN_LOWEST else 0)
    return 6 * own + 2 * level + (1 if valuation.below_lowest_acceptable else 0)


def declaration_features(decl: Declaration) -> list[float]:
    """Value, mass and duty features (:data:`DECLARATION_FEATURES`)."""
    mass = decl.net_mass_kg
    value = decl.customs_value_eur
    return [
        decl.duty_rate_pct,
        math.log1p(value),
        math.log1p(mass),
        math.log1p(value / mass) if mass > 0 else 0.0,
        1.0 if "courier" in decl.attributes else 0.0,
    ]


def one_hot(base: tuple[str, ...]) -> tuple[str, ...]:
    """The one-hot indicators that are on, for the low-cardinality fields (transport mode
    to origin marking).

    >>> from vigie.contracts.schemas import EXAMPLE_DECLARATION
    >>> sorted(one_hot(declaration_base(Declaration.model_validate(EXAMPLE_DECLARATION))))[:2]
    ['cat:import_type=-', 'cat:import_use=-']
    """
    return tuple([prefix + base[i] for i, prefix in _ONE_HOT])


class RiskEngine(Detector):
    """One final risk per declaration, the inspection decision and its reasons.

    Parameters
    ----------
    budget
        Share of declarations the online threshold selects.
    audit_share
        Probability of a random audit for a declaration the threshold does not select.
    seed
        Seed of the random audits.
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
        self._combined = False  # whether the last risk was the combiner's calibrated one

    @property
    def versions(self) -> dict[str, str]:
        """The version of every learnt part (also in ``Score.model_versions``)."""
        return {
            "valuation": self._valuation.version,
            "atypicality": self._atypicality.version,
            "supervised": self._learner.version,
            "combiner": self._combiner.version,
            "history": f"history-{self._history.n_updates}",
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

    def score_one(self, decl: Declaration, *, now: datetime | None = None) -> Score:
        """Score a declaration (test-then-train: call :meth:`learn_one` after)."""
        started = time.perf_counter()
        valuation = self._valuation.score_one(decl)
        atyp = self._atypicality.score_one(decl)
        base = declaration_base(decl)
        keys = key_values(base)
        values = declaration_features(decl)
        values += self._activity.features(decl)
        values += detector_features(valuation, atyp)
        values.append(self._valuation.importer_flagged_share(decl.importer))
        rows = self._history.rows(keys)
        x = values + self._history.logits(rows)
        learner = self._learner
        supervised = learner.predict_array(x, one_hot(base))
        own = self._valuation.own_ratio(decl, valuation.unit)
        cls = valuation_class(valuation, own)
        scores = (supervised, valuation_depth(valuation), atyp.score, cls)
        risk = min(1.0, max(0.0, self._combiner.predict_proba_one(scores)))
        if self._combined != self._combiner.is_warm:
            self._combined = not self._combined
            self._budget.restart()  # the risk changed scale: the old quantile selects few
        decision = self._budget.decide(risk)
        self._budget.learn_one(risk)
        self._remember(decl, x, rows, base, decision.selection_probability, scores)
        reasons: tuple[Reason, ...] = ()
        if decision.selected or risk >= REASONS_FROM * decision.threshold:
            facts = self._facts(keys, values, supervised if learner.is_warm else None)
            reasons = explain(decl, valuation, atyp, facts)
        duty = valuation.duty_at_risk_eur or decl.customs_value_eur * decl.duty_rate_pct / 100
        return trusted(
            Score,
            {
                "declaration_id": decl.declaration_id,
                "importer": decl.importer,
                "office": decl.office,
                "commodity_code": decl.commodity_code,
                "lodged_at": decl.lodged_at,
                "scored_at": now or utc_now(),
                "valuation": valuation,
                "atypicality": atyp,
                "supervised_probability": supervised,
                "risk": risk,
                "expected_recoverable_eur": risk * duty,
                "selected": decision.selected,
                "selection": decision.selection,
                "selection_probability": decision.selection_probability,
                "threshold": decision.threshold,
                "reasons": reasons,
                "model_versions": self.versions,
                "latency_ms": (time.perf_counter() - started) * 1000.0,
            },
        )

    def learn_one(self, decl: Declaration) -> None:
        """Unsupervised updates: valuation reference, atypicality, activity."""
        self._valuation.learn_one(decl)
        self._atypicality.learn_one(decl)
        self._activity.learn_one(decl)

    def learn_control(self, result: ControlResult) -> bool:
        """Learn a control result; False when the declaration's features are not held."""
        items = self._pending.pop(result.declaration_id, None)
        if items is None:
            return False
        fraud = result.is_fraud
        for item in items:
            weight = ipw(result.selection_probability, item.selection_probability, self.max_weight)
            fields = _PENDING.unpack(item.values)
            x = np.array(fields[:_ROWS_AT])
            self._learner.learn_array(FEATURES, x, one_hot(item.base), fraud, weight)
            rows = fields[_ROWS_AT:_TAIL_AT]
            *scores, epoch = fields[_TAIL_AT:]
            keys = partial(key_values, item.base)
            self._history.learn_rows(rows, epoch, keys, fraud, weight)
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

    def _facts(
        self, keys: tuple[str, ...], values: Sequence[float], supervised: float | None
    ) -> Facts:
        history = self._history
        rates = {key: history.rate(key, keys[at]) for key, at in _SUBJECT_AT.items()}
        return Facts(
            rates=rates,
            global_rate=history.global_rate,
            new_importer=values[_AT["act:new_importer"]] == 1.0,
            new_chapter=values[_AT["act:new_chapter"]] == 1.0,
            supervised=supervised,
        )
