"""The checks every Vigie model passes: River's ``check_estimator``, for our detectors.

A model scores a :class:`~vigie.contracts.schemas.Declaration` with ``score_one`` (a
finding or an :class:`~vigie.model.assessment.Assessment`), learns it with
``learn_one``, has a ``version`` that changes when it learns, and clones from its
parameters. :func:`check_model` runs every check of :data:`CHECKS` on fresh models from a
factory, on a small market built here; a model that also learns control results
(``learn_control``) is taught them as it goes. A failed check raises
:class:`AssertionError` naming the check.

Examples
--------
>>> from vigie.model.valuation import ValuationDetector
>>> check_model(lambda: ValuationDetector(window=16))
>>> [check.__name__ for check in CHECKS][:3]
['check_learn_one_changes_the_version', 'check_score_one_learns_nothing', 'check_pickle_round_trip']
"""

from __future__ import annotations

import inspect
import math
import pickle
import random
from collections.abc import Callable, Iterator
from dataclasses import fields, is_dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Protocol

from vigie.contracts.schemas import ControlResult, Declaration
from vigie.model.assessment import Assessment, AtypicalityFinding, ValuationFinding

Output = ValuationFinding | AtypicalityFinding | Assessment


class Model(Protocol):
    """What :func:`check_model` needs of a model."""

    @property
    def version(self) -> str: ...

    def score_one(self, decl: Declaration) -> Output: ...

    def learn_one(self, decl: Declaration) -> None: ...

    def clone(self) -> Model: ...


Factory = Callable[[], Model]

_PRODUCTS: Final = (
    ("62034231", "CN", 12.5, 2.0),
    ("85171300", "VN", 900.0, 0.2),
    ("080390", "EC", 0.9, 0.0),
)
_START: Final = datetime(2026, 1, 5, 8, tzinfo=UTC)
_CHEAT_SHARE: Final = 0.05
"""Share of the market's declarations at a third of their price (labelled infractions)."""
ODD: Final[tuple[dict[str, Any], ...]] = (
    {"net_mass_kg": 0.0, "customs_value_eur": 0.0},
    {"net_mass_kg": 5.0, "customs_value_eur": 0.0},
    {"net_mass_kg": 0.0, "customs_value_eur": 1e9},
    {"net_mass_kg": 1e-6, "customs_value_eur": 1e12, "supplementary_units": 1e-6},
    {"net_mass_kg": 1e-300, "customs_value_eur": 1e308, "supplementary_units": 5e-324},
    {"customs_value_eur": 1.7e308, "duty_rate_pct": 1000.0},
    {"lodged_at": datetime(1, 1, 2, tzinfo=UTC)},
    {"lodged_at": datetime(9999, 12, 30, tzinfo=UTC)},
)
"""Valid but extreme changes to a declaration: every output must stay finite and in range."""


def market(n: int, seed: int = 0) -> Iterator[tuple[Declaration, bool]]:
    """A small market and the truth: three products, twenty importers, log-normal prices,
    5 % of the declarations at a third of their price (True: an infraction)."""
    rng = random.Random(seed)
    for i in range(n):
        code, origin, price, kg_per_unit = rng.choice(_PRODUCTS)
        mass = round(rng.uniform(50, 5000), 1)
        cheat = rng.random() < _CHEAT_SHARE
        value = mass * price * rng.lognormvariate(0, 0.25) * (1 / 3 if cheat else 1.0)
        record: dict[str, Any] = {
            "declaration_id": f"C{seed}-{i}",
            "lodged_at": _START + timedelta(minutes=37 * i),
            "office": rng.choice(["FR000730", "FR002300"]),
            "declarant": "DCL1",
            "importer": f"IMP{rng.randrange(20)}",
            "seller": f"S{rng.randrange(5)}",
            "commodity_code": code,
            "origin": origin,
            "dispatch": origin,
            "customs_value_eur": round(value, 2),
            "net_mass_kg": mass,
            "duty_rate_pct": 12.0,
        }
        if kg_per_unit:
            record["supplementary_units"] = round(mass / kg_per_unit)
        yield Declaration.model_validate(record), cheat


def bare_declaration() -> Declaration:
    """A declaration with every optional field missing."""
    return Declaration.model_validate(
        {
            "declaration_id": "BARE",
            "lodged_at": "2026-02-01T00:00:00Z",
            "office": "FR000730",
            "declarant": "D",
            "importer": "IMP1",
            "commodity_code": "620342",
            "origin": "CN",
            "customs_value_eur": 100.0,
            "net_mass_kg": 10.0,
            "duty_rate_pct": 0.0,
        }
    )


def check_learn_one_changes_the_version(factory: Factory) -> None:
    """``learn_one`` returns nothing and changes the version."""
    model = factory()
    before = model.version
    decl, _ = next(market(1))
    _expect(model.learn_one(decl) is None, "learn_one returned something")  # type: ignore[func-returns-value]
    _expect(model.version != before, f"the version stayed {before!r} after learn_one")


def check_score_one_learns_nothing(factory: Factory) -> None:
    """Scoring twice gives the same output and version, and scoring declarations that are
    never learnt changes nothing of what the model learns afterwards."""
    model = _trained(factory)
    twin = _copy(model)
    for decl, _ in market(20, seed=5):
        version = model.version
        first = model.score_one(decl)
        _expect(model.score_one(decl) == first, f"scoring {decl.declaration_id} twice differed")
        _expect(model.version == version, "score_one changed the version")
    _expect_same_run(model, twin, "after scoring declarations it never learnt")


def check_pickle_round_trip(factory: Factory) -> None:
    """A pickled and restored model goes on exactly as the original."""
    model = _trained(factory)
    _expect_same_run(model, pickle.loads(pickle.dumps(model)), "restored from its pickle")


def check_clone_is_fresh(factory: Factory) -> None:
    """A clone has the same parameters and nothing learnt."""
    model = _trained(factory)
    clone, fresh = model.clone(), factory()
    _expect(repr(clone) == repr(model), f"clone {clone!r} is not {model!r}")
    _expect(clone.version == fresh.version, f"clone version {clone.version!r} is not fresh")
    _expect(clone.version != model.version, "the trained model's version is the fresh one's")
    _expect_same_run(clone, fresh, "a clone against a fresh model")


def check_repr_shows_the_parameters(factory: Factory) -> None:
    """``repr`` is the class name and every constructor parameter, learnt or not."""
    model = factory()
    text = repr(model)
    _expect(text.startswith(f"{type(model).__name__}("), f"repr {text!r} names another class")
    for name in inspect.signature(type(model)).parameters:
        shown = f"{name}={getattr(model, name)!r}"
        _expect(shown in text, f"repr {text!r} does not show {shown}")
    _expect(repr(_trained(factory)) == text, "learning changed the repr")


def check_warm_up_is_neutral(factory: Factory) -> None:
    """A fresh model's first outputs are neutral: a detector's score is 0; an engine's
    findings are neutral and its risk, learnt from controls only, says no declaration is
    more likely an infraction than not."""
    model = factory()
    for decl, _ in market(5, seed=3):
        output = model.score_one(decl)
        if isinstance(output, Assessment):
            neutral = output.valuation.score == output.atypicality.score == 0.0
            neutral = neutral and output.risk < 0.5
        else:
            neutral = output.score == 0.0
        _expect(neutral, f"warm-up output {output!r} is not neutral")
        _learn(model, decl, False)


def check_same_seed_same_outputs(factory: Factory) -> None:
    """Two models built alike and fed alike answer alike."""
    _expect_same_run(_trained(factory), _trained(factory), "two models from the factory")


def check_missing_optional_fields(factory: Factory) -> None:
    """A declaration without any optional field is scored and learnt."""
    model = _trained(factory)
    decl = bare_declaration()
    _expect_in_range(model.score_one(decl), "a bare declaration")
    _learn(model, decl, False)


def check_outputs_finite_and_in_range(factory: Factory) -> None:
    """Every float is finite and every score in range, for odd declarations too."""
    model = _trained(factory)
    for decl, cheat in market(20, seed=4):
        for change in ({}, *ODD):
            probe = decl.model_copy(update=change)
            _expect_in_range(model.score_one(probe), f"{probe.declaration_id} with {change}")
            _learn(model, probe, cheat)


CHECKS: Final[tuple[Callable[[Factory], None], ...]] = (
    check_learn_one_changes_the_version,
    check_score_one_learns_nothing,
    check_pickle_round_trip,
    check_clone_is_fresh,
    check_repr_shows_the_parameters,
    check_warm_up_is_neutral,
    check_same_seed_same_outputs,
    check_missing_optional_fields,
    check_outputs_finite_and_in_range,
)


def check_model(factory: Factory) -> None:
    """Run every check of :data:`CHECKS` on models from ``factory``."""
    for check in CHECKS:
        try:
            check(factory)
        except AssertionError as failed:
            raise AssertionError(f"{check.__name__}: {failed}") from None


def _expect(condition: bool, message: str) -> None:
    if not condition:
        raise AssertionError(message)


def _headline(output: Output) -> float:
    return output.risk if isinstance(output, Assessment) else output.score


def _learn(model: Model, decl: Declaration, cheat: bool) -> None:
    """Learn a declaration, and its control result when the model learns them."""
    model.learn_one(decl)
    learn_control = getattr(model, "learn_control", None)
    if learn_control is not None:
        learn_control(  # unchecked: the declaration may be dated in year 1 or 9999
            ControlResult.model_construct(
                declaration_id=decl.declaration_id,
                controlled_at=decl.lodged_at,
                outcome="infraction" if cheat else "compliant",
                selection="other",
                selection_probability=1.0,
            )
        )


def _trained(factory: Factory, n: int = 300) -> Model:
    model = factory()
    for decl, cheat in market(n):
        model.score_one(decl)
        _learn(model, decl, cheat)
    return model


def _copy(model: Model) -> Model:
    copy: Model = pickle.loads(pickle.dumps(model))
    return copy


def _expect_same_run(a: Model, b: Model, what: str) -> None:
    """Score and learn the same declarations with both models: the same outputs."""
    for decl, cheat in market(40, seed=1):
        out_a, out_b = a.score_one(decl), b.score_one(decl)
        _expect(out_a == out_b, f"{what}: {decl.declaration_id} scored {out_a!r}, {out_b!r}")
        _learn(a, decl, cheat)
        _learn(b, decl, cheat)
    _expect(a.version == b.version, f"{what}: versions {a.version!r}, {b.version!r}")


def _expect_in_range(output: Output, what: str) -> None:
    bad = [x for x in _floats(output) if not math.isfinite(x)]
    _expect(not bad, f"{what}: non-finite outputs {bad} in {output!r}")
    _expect(0.0 <= _headline(output) <= 1.0, f"{what}: {output!r} out of [0, 1]")
    if isinstance(output, Assessment):
        _expect(0.0 <= output.supervised_probability <= 1.0, f"{what}: {output!r}")
        _expect(0.0 < output.selection_probability <= 1.0, f"{what}: {output!r}")
        _expect(output.expected_recoverable_eur >= 0.0, f"{what}: {output!r}")
        _expect(output.selected == (output.selection is not None), f"{what}: {output!r}")
        _expect_in_range(output.valuation, what)
        _expect_in_range(output.atypicality, what)
    elif isinstance(output, ValuationFinding):
        _expect(output.duty_at_risk_eur >= 0.0 and output.support_count >= 0, f"{what}")
    else:
        weights = [c.weight for c in output.contributions]
        _expect(all(0.0 <= w <= 1.0 for w in weights), f"{what}: weights {weights}")


def _floats(value: object) -> Iterator[float]:
    """Every float in a (nested) output."""
    if isinstance(value, float):
        yield value
    elif is_dataclass(value) and not isinstance(value, type):
        for field in fields(value):
            yield from _floats(getattr(value, field.name))
    elif isinstance(value, tuple):
        for item in value:
            yield from _floats(item)
