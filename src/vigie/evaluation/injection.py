"""Known frauds injected into real declarations, to measure what the engine catches.

A spec is ``KIND[:SHARE[:LO-HI]]``, several separated by commas
(``under-valuation:0.04,new-origin:0.02``). SHARE is the share of the imports picked
(default 0.02); LO-HI the kind's range. Picks are drawn with ``random.Random(seed)``, so an
injection is deterministic; each import is picked at most once. Injected declarations are
frauds of their kind (the typology); the others keep the file's labels with
``keep_labels``, else they are compliant (the files' labels dropped).

- ``under-valuation``: customs value (and invoice amount) x U(LO, HI), default 0.15-0.5;
  the duty at stake is the duty on the hidden part of the value.
- ``new-origin``: an origin never seen for the declaration's HS6 anywhere in the data (nor
  given by an earlier injection), drawn by the origins' frequency; the dispatch country
  follows when it was the origin.
- ``new-chapter``: among declarations whose importer lodged an earlier one, an HS6 code
  (drawn by the codes' frequency) of a chapter the importer declares nowhere in the data.
- ``mass-value``: the net mass multiplied or divided (even odds) by U(LO, HI), default
  5-20: the value per kilogram is far from the product's norm, above or below, while the
  declared value is the usual one.
- ``split``: a consignment worth more than the threshold (the median customs value of the
  imports) is lodged as K declarations of the same importer, HS6 and origin the same day
  (at the same time), K ~ U{LO..HI} (default 2-5) raised until every part is under the
  threshold; values and masses split by random weights; consignments that would need more
  than HI parts are not picked. Every part is a fraud.

>>> parse_specs("under-valuation:0.04:0.2-0.6,new-origin")  # doctest: +NORMALIZE_WHITESPACE
(Injection(kind='under-valuation', share=0.04, low=0.2, high=0.6),
 Injection(kind='new-origin', share=0.02, low=0.0, high=0.0))
"""

from __future__ import annotations

import math
import random
import re
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from vigie.evaluation.examples import Example

DEFAULT_SHARE = 0.02
RANGES: dict[str, tuple[float, float]] = {
    "under-valuation": (0.15, 0.5),
    "new-origin": (0.0, 0.0),
    "new-chapter": (0.0, 0.0),
    "mass-value": (5.0, 20.0),
    "split": (2.0, 5.0),
}
ORDER = ("new-chapter", "new-origin", "under-valuation", "mass-value", "split")
"""Kinds are applied in this order: a new chapter changes a code before origins are drawn."""
MIN_MASS_KG = 0.001
TRIES = 1000
_SPEC = re.compile(r"^([a-z-]+)(?::([0-9.]*))?(?::([0-9.]+)-([0-9.]+))?$")


class Injection(NamedTuple):
    """One kind of fraud to inject, in ``share`` of the imports, with its range."""

    kind: str
    share: float
    low: float
    high: float

    @property
    def typology(self) -> str:
        return self.kind.replace("-", "_")


def parse_specs(text: str) -> tuple[Injection, ...]:
    """The injections of a ``--inject`` value; ValueError naming what is wrong."""
    specs = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        found = _SPEC.match(part)
        if found is None or found.group(1) not in RANGES:
            raise ValueError(
                f"{part!r}: expected KIND[:SHARE[:LO-HI]], KIND one of {', '.join(RANGES)}"
            )
        kind, share, low, high = found.groups()
        value = float(share) if share else DEFAULT_SHARE
        lo, hi = (float(low), float(high)) if low else RANGES[kind]
        if not 0 < value <= 0.5 or lo > hi or (kind == "split" and lo < 2):
            raise ValueError(f"{part!r}: share in (0, 0.5], LO <= HI (split: at least 2 parts)")
        specs.append(Injection(kind, value, lo, hi))
    if len({s.kind for s in specs}) != len(specs):
        raise ValueError(f"{text!r}: a kind given twice")
    return tuple(specs)


@dataclass
class _Data:
    """What the whole data says: origins per HS6, chapters per importer, the pools."""

    origins: dict[str, set[str]]
    chapters: dict[str, set[str]]
    origin_pool: list[str]
    code_pool: list[str]
    has_earlier: list[bool]
    threshold: float

    @classmethod
    def of(cls, examples: Sequence[Example]) -> _Data:
        origins: dict[str, set[str]] = {}
        chapters: dict[str, set[str]] = {}
        earlier: list[bool] = []
        for e in examples:
            d = e.declaration
            origins.setdefault(d.commodity_code[:6], set()).add(d.origin)
            earlier.append(d.importer in chapters)
            chapters.setdefault(d.importer, set()).add(d.chapter)
        values = [e.declaration.customs_value_eur for e in examples]
        return cls(
            origins,
            chapters,
            [e.declaration.origin for e in examples],
            [e.declaration.commodity_code for e in examples],
            earlier,
            statistics.median(values) if values else 0.0,
        )


def inject(
    examples: Sequence[Example], specs: Sequence[Injection], seed: int, keep_labels: bool = False
) -> list[Example]:
    """The examples with the frauds of ``specs`` injected (see the module), in time order."""
    rng = random.Random(seed)
    out: list[list[Example]] = [
        [e if keep_labels or not e.is_import else e._replace(fraud=False, typology=None)]
        for e in examples
    ]
    imports = [i for i, e in enumerate(examples) if e.is_import]
    data = _Data.of([examples[i] for i in imports])
    position = {i: n for n, i in enumerate(imports)}
    free = set(imports)
    for spec in sorted(specs, key=lambda s: ORDER.index(s.kind)):
        change = _CHANGES[spec.kind]
        wanted = round(spec.share * len(imports))
        for i in rng.sample(sorted(free), len(free)):
            if wanted == 0:
                break
            injected = change(examples[i], spec, rng, data, position[i])
            if injected:
                out[i], wanted = injected, wanted - 1
                free.discard(i)
    return [e for group in out for e in group]


def _fraud(example: Example, spec: Injection, recovered: float = 0.0, gap: float = 0.0) -> Example:
    return example._replace(fraud=True, typology=spec.typology, recovered=recovered, gap=gap)


def _under_value(
    e: Example, spec: Injection, rng: random.Random, _: _Data, __: int
) -> list[Example]:
    decl = e.declaration
    if decl.customs_value_eur <= 0:
        return []
    factor = rng.uniform(spec.low, spec.high)
    amount = decl.invoice_amount
    update = {"customs_value_eur": decl.customs_value_eur * factor,
              "invoice_amount": None if amount is None else amount * factor}  # fmt: skip
    hidden = decl.customs_value_eur * (1 - factor) * decl.duty_rate_pct / 100
    return [
        _fraud(e._replace(declaration=decl.model_copy(update=update)), spec, hidden, 1 - factor)
    ]


def _new_origin(
    e: Example, spec: Injection, rng: random.Random, data: _Data, _: int
) -> list[Example]:
    decl = e.declaration
    known = data.origins.setdefault(decl.commodity_code[:6], set())
    origin = _draw(rng, data.origin_pool, lambda o: o not in known)
    if origin is None:
        return []
    known.add(origin)
    update = {
        "origin": origin,
        "dispatch": origin if decl.dispatch == decl.origin else decl.dispatch,
    }
    return [_fraud(e._replace(declaration=decl.model_copy(update=update)), spec)]


def _new_chapter(
    e: Example, spec: Injection, rng: random.Random, data: _Data, at: int
) -> list[Example]:
    decl = e.declaration
    if not data.has_earlier[at]:
        return []
    known = data.chapters[decl.importer]
    code = _draw(rng, data.code_pool, lambda c: c[:2] not in known)
    if code is None:
        return []
    known.add(code[:2])
    data.origins.setdefault(code[:6], set()).add(decl.origin)
    return [_fraud(e._replace(declaration=decl.model_copy(update={"commodity_code": code})), spec)]


def _mass_value(
    e: Example, spec: Injection, rng: random.Random, _: _Data, __: int
) -> list[Example]:
    decl = e.declaration
    if decl.net_mass_kg <= 0 or decl.customs_value_eur <= 0:
        return []
    factor = rng.uniform(spec.low, spec.high)
    heavier = rng.random() < 0.5 or decl.net_mass_kg / factor < MIN_MASS_KG
    mass = decl.net_mass_kg * factor if heavier else decl.net_mass_kg / factor
    return [_fraud(e._replace(declaration=decl.model_copy(update={"net_mass_kg": mass})), spec)]


def _split(e: Example, spec: Injection, rng: random.Random, data: _Data, _: int) -> list[Example]:
    decl = e.declaration
    threshold, most = data.threshold, int(spec.high)
    needed = math.ceil(decl.customs_value_eur / threshold) if threshold > 0 else most + 1
    if decl.customs_value_eur <= threshold or needed > most:
        return []
    parts = max(needed, rng.randint(int(spec.low), most))
    weights = [rng.uniform(0.8, 1.2) for _ in range(parts)]
    shares = [w / sum(weights) for w in weights]
    if max(shares) * decl.customs_value_eur >= threshold:
        shares = [1.0 / parts] * parts
    out = []
    for n, share in enumerate(shares, start=1):
        update = {
            "declaration_id": f"{decl.declaration_id}-S{n}"[-64:],
            "customs_value_eur": decl.customs_value_eur * share,
            "invoice_amount": None if decl.invoice_amount is None else decl.invoice_amount * share,
            "net_mass_kg": max(decl.net_mass_kg * share, MIN_MASS_KG) if decl.net_mass_kg else 0.0,
        }
        part = decl.model_copy(update=update)
        control = e.control
        if control is not None:
            control = control.model_copy(update={"declaration_id": part.declaration_id})
        out.append(_fraud(e._replace(declaration=part, control=control), spec))
    return out


def _draw(rng: random.Random, pool: Sequence[str], fits: Callable[[str], bool]) -> str | None:
    for _ in range(TRIES):
        choice = rng.choice(pool)
        if fits(choice):
            return choice
    return None


_CHANGES: dict[str, Callable[[Example, Injection, random.Random, _Data, int], list[Example]]] = {
    "under-valuation": _under_value,
    "new-origin": _new_origin,
    "new-chapter": _new_chapter,
    "mass-value": _mass_value,
    "split": _split,
}
