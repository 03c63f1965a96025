"""Atypicality (atypie): graded novelty of the declared facts in their contexts.

Each pair of :data:`PAIRS` is a coherence the declared facts keep: a product has its usual
origins, an importer its usual chapters, a tariff regime is origin-specific, a duty rate
code-specific, a consignment keeps its classification and origin. Per context the detector
counts the declarations and the distinct values seen; a value never seen in a context is
surprising by ``-log((d + 1) / (n + 2))`` (``d`` distinct values in ``n`` declarations: a
Good-Turing-like chance that the next value is new), a familiar value or a context
without history not at all. The score grows with the sum of the surprises. Why:
docs/detectors.md.

Examples
--------
>>> from vigie.contracts.schemas import EXAMPLE_DECLARATION, Declaration
>>> det = AtypicalityDetector()
>>> for i in range(30):
...     det.learn_one(Declaration.model_validate(dict(EXAMPLE_DECLARATION,
...         declaration_id=f"D{i}", customs_value_eur=20_000.0 + 10 * i)))
>>> odd = Declaration.model_validate(dict(EXAMPLE_DECLARATION, origin="BR", dispatch="BR"))
>>> finding = det.score_one(odd)
>>> round(finding.score, 2), [(c.name, round(c.value, 2)) for c in finding.contributions]
(0.75, [('origin_new_for_product', 2.77), ('origin_new_for_product_regime', 2.77)])
"""

from __future__ import annotations

import math
import sys
from typing import Any, Final, cast

from vigie.contracts.schemas import Declaration
from vigie.model.assessment import AtypicalityFinding, Contribution
from vigie.model.base import Declared, Detector, declared
from vigie.model.behaviour import SIGNALS, Behaviour
from vigie.model.tables import ChangeSet, Tracked, refreshed

PAIRS: Final[tuple[str, ...]] = (
    "origin_new_for_product",
    "chapter_new_for_importer",
    "regime_new_for_origin",
    "duty_rate_new_for_product",
    "dispatch_new_for_origin",
    "origin_new_for_product_regime",
    "product_new_for_consignment",
    "origin_new_for_consignment",
)
"""The (context -> value) pairs, in the order of :func:`pair_items`."""
EVIDENCE: Final[tuple[str, ...]] = PAIRS + SIGNALS
"""Every surprise the detector gives: the pairs, then the behaviour signals."""
SCORE_SCALE: Final = 4.0
"""The score is ``1 - exp(-total surprise / SCORE_SCALE)``."""
MAX_CONTRIBUTIONS: Final = 3
_CONSIGNMENT_WIDTH: Final = 0.01
_NEUTRAL: Final = AtypicalityFinding(score=0.0)

Context = tuple[Any, ...]
"""A context's declarations counted, then its distinct values: ``(3, "CN", "VN")``."""
Items = list[tuple[str | None, str]]
"""Per pair, its context (None: no context) and the declared value."""


def tax_type(decl: Declared) -> str:
    """The declared tariff regime (tax type, else the preference claimed; ``-``: none)."""
    return decl.attributes.get("tax_type") or decl.preference or "-"


def consignment(decl: Declared) -> str | None:
    """Declared value and net mass to 1 %: the same consignment lodged again."""
    if decl.customs_value_eur <= 0 or decl.net_mass_kg <= 0:
        return None
    v = round(math.log(decl.customs_value_eur) / _CONSIGNMENT_WIDTH)
    m = round(math.log(decl.net_mass_kg) / _CONSIGNMENT_WIDTH)
    return f"{v}|{m}"


def pair_items(decl: Declared) -> Items:
    """Each pair's context and value, in the order of :data:`PAIRS`.

    >>> from vigie.contracts.schemas import EXAMPLE_DECLARATION
    >>> pair_items(declared(Declaration.model_validate(EXAMPLE_DECLARATION)))[:3]
    [('620342', 'CN'), ('FR12345678901', '62'), ('CN', '100')]
    """
    hs6 = decl.commodity_code[:6]
    origin = decl.origin
    regime = tax_type(decl)
    cons = consignment(decl)
    return [
        (hs6, origin),
        (decl.importer, hs6[:2]),
        (origin, regime),
        (hs6, f"{decl.duty_rate_pct:g}"),
        (origin, decl.dispatch or "-"),
        (hs6 + "|" + regime, origin),
        (cons, hs6),
        (cons, origin),
    ]


def surprise(n: int, distinct: int) -> float:
    """Surprise of an unseen value in a context of ``n`` declarations with ``distinct``
    values: ``-log((distinct + 1) / (n + 2))``.

    >>> round(surprise(100, 1), 2), round(surprise(10, 9), 2)
    (3.93, 0.18)
    """
    return -math.log(min((distinct + 1.0) / (n + 2.0), 1.0))


class AtypicalityDetector(Detector):
    """Graded novelty over the coherence pairs of :data:`PAIRS`.

    Parameters
    ----------
    cap
        Distinct values remembered per context (beyond, new ones are only counted).
    max_contexts
        At most this many contexts per pair (least recently used forgotten).
    """

    def __init__(self, cap: int = 64, max_contexts: int = 1_000_000) -> None:
        self.cap = cap
        self.max_contexts = max_contexts
        self._behaviour = Behaviour(max_keys=max_contexts)
        self._contexts: list[dict[str, Context]] = [{} for _ in PAIRS]
        """Per pair, each context's count then its distinct values: one tuple per context
        (most hold one or two values: 56 bytes, 8 more a value, where a set takes 216
        and more), each value interned (held once however many contexts hold it). One
        table per pair, not a table of counts beside a table of values: each context is
        looked up once, and these tables, keyed by consignment among others, are the
        engine's largest."""
        self._contexts_changed: list[ChangeSet] = [{} for _ in PAIRS]
        self._updates = 0

    @property
    def version(self) -> str:
        """Changes with every declaration learnt."""
        return f"atypicality-{self._updates}"

    def tables(self) -> list[Tracked]:
        """The large tables and their change sets (:mod:`vigie.model.tables`)."""
        contexts = list(zip(self._contexts, self._contexts_changed, strict=True))
        return [*self._behaviour.tables(), *contexts]

    @property
    def n_contexts(self) -> int:
        """Contexts held, every pair."""
        return sum(len(contexts) for contexts in self._contexts)

    def surprises(self, decl: Declared, items: Items) -> list[float]:
        """The surprise of each of :data:`EVIDENCE` (0: familiar, or no history)."""
        out = self.pair_surprises(items)
        behaviour = self._behaviour.surprises(decl)
        if out[0] > 0.0:
            behaviour[1] = 0.0  # a route new because its origin is new for the product: once
        out.extend(behaviour)
        return out

    def pair_surprises(self, items: Items) -> list[float]:
        """The surprise of each pair (0: familiar, or a context without history)."""
        out = [0.0] * len(PAIRS)
        for k in range(len(PAIRS)):
            context, value = items[k]
            if context is None:
                continue
            entry = self._contexts[k].get(context)
            if entry is not None and value not in entry:  # entry[0], a count, is no value
                out[k] = surprise(cast(int, entry[0]), len(entry) - 1)
        return out

    def score_one(self, decl: Declaration) -> AtypicalityFinding:
        """How surprising the declaration's facts are, and which pairs say so."""
        fields = declared(decl)
        return finding(self.surprises(fields, pair_items(fields)))

    def learn_one(self, decl: Declaration) -> None:
        """Count the declaration in each pair's context, and its behaviour."""
        fields = declared(decl)
        self.learn_items(fields, pair_items(fields))

    def learn_items(self, decl: Declared, items: Items) -> None:
        """Learn one declaration whose :func:`pair_items` are ``items``."""
        self._updates += 1
        self._behaviour.learn_one(decl)
        for k in range(len(PAIRS)):
            context, value = items[k]
            if context is None:
                continue
            table = self._contexts[k]
            entry = refreshed(table, self._contexts_changed[k], context, self.max_contexts)
            if entry is None:
                entry = (0,)
            n = cast(int, entry[0]) + 1
            if len(entry) <= self.cap and value not in entry:
                table[context] = (n, *entry[1:], sys.intern(value))
            else:
                table[context] = (n, *entry[1:])


def finding(surprises: list[float]) -> AtypicalityFinding:
    """The finding of a declaration's surprises: score and strongest pairs.

    >>> f = finding([0.0, 2.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    >>> round(f.score, 3), f.contributions[0].name, round(f.contributions[0].weight, 3)
    (0.393, 'chapter_new_for_importer', 0.632)
    """
    total = sum(surprises)
    if total <= 0.0:
        return _NEUTRAL
    ranked = sorted([(s, k) for k, s in enumerate(surprises) if s > 0.0], key=lambda item: -item[0])
    contributions = tuple(
        [
            Contribution(EVIDENCE[k], s, 1.0 - math.exp(-s / 2.0))
            for s, k in ranked[:MAX_CONTRIBUTIONS]
        ]
    )
    return AtypicalityFinding(
        score=1.0 - math.exp(-total / SCORE_SCALE), contributions=contributions
    )
