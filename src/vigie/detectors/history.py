"""What is known of each operator and commodity: smoothed infraction rates and activity.

Two online memories, both pure Python and bounded:

- :class:`InfractionHistory` learns from control results only (labels already received):
  for each key (importer, declarant, seller, HS6/HS4/HS2, origin, office and pairs such as
  importer x HS6) it keeps the weighted number of controls and of infractions, and reads a
  rate smoothed toward the global rate (beta prior of ``prior_strength`` pseudo-controls).
- :class:`ActivityHistory` learns from every declaration (no label): how many declarations
  an importer lodged, since when, and which HS chapters it already imported.

Both keep at most ``max_keys`` entries, forgetting the least recently updated ones.

Examples
--------
>>> from vigie.topics.schemas import EXAMPLE_DECLARATION, Declaration
>>> decl = Declaration.model_validate(EXAMPLE_DECLARATION)
>>> hist = InfractionHistory(prior_strength=5.0)
>>> keys = declaration_keys(decl)
>>> for fraud in (True, True, False):
...     hist.learn_one(keys, fraud)
>>> rate, n = hist.rate("importer", keys["importer"])
>>> print(f"{rate:.3f} over {n:.0f} controls (global {hist.global_rate:.3f})")
0.625 over 3 controls (global 0.600)
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping, Sequence
from datetime import datetime

from vigie.topics.schemas import Declaration

KEYS: tuple[str, ...] = (
    "importer",
    "declarant",
    "seller",
    "hs6",
    "hs4",
    "hs2",
    "origin",
    "office",
    "importer_hs6",
    "importer_hs2",
    "declarant_importer",
    "seller_importer",
    "importer_origin",
    "hs6_origin",
    "hs6_origin_dispatch",
    "hs6_origin_tax_type",
    "hs6_origin_duty",
    "import_type",
    "import_use",
    "payment_type",
    "tax_type",
    "origin_indicator",
    "courier",
    "transport_mode",
    "procedure",
)
"""Every key a rate is kept for, in feature order."""

BASE_FIELDS: tuple[str, ...] = (
    "importer",
    "declarant",
    "seller",
    "hs6",
    "origin",
    "office",
    "dispatch",
    "duty",
    "courier",
    "transport_mode",
    "procedure",
    "import_type",
    "import_use",
    "payment_type",
    "tax_type",
    "origin_indicator",
)
"""The declaration fields every key is built from, in the order of :func:`declaration_base`."""


def declaration_base(decl: Declaration) -> tuple[str, ...]:
    """The fields of :data:`BASE_FIELDS`, interned (missing ones read as ``"-"``).

    Interning lets the pending store share one string per importer, office, ... instead
    of one per declaration.

    >>> from vigie.topics.schemas import EXAMPLE_DECLARATION
    >>> declaration_base(Declaration.model_validate(EXAMPLE_DECLARATION))[:8]
    ('FR12345678901', 'DCL0001', 'CN-SELL-0042', '620342', 'CN', 'FR000730', 'CN', '12')
    """
    attrs = decl.attributes
    get = attrs.get
    return tuple(
        map(
            sys.intern,
            (
                decl.importer,
                decl.declarant,
                decl.seller or "-",
                decl.commodity_code[:6],
                decl.origin,
                decl.office,
                decl.dispatch or "-",
                f"{decl.duty_rate_pct:g}",
                get("courier", "-"),
                decl.transport_mode or "-",
                decl.procedure or "-",
                get("import_type", "-"),
                get("import_use", "-"),
                get("payment_type", "-"),
                get("tax_type", "-"),
                get("origin_indicator", "-"),
            ),
        )
    )


def keys_from_base(base: tuple[str, ...]) -> dict[str, str]:
    """Every history key (:data:`KEYS`) from the base fields, pairs included."""
    imp, dcl, sel, hs6, ori, _office, dis, duty = base[:8]
    keys = dict(zip(BASE_FIELDS, base, strict=True))
    del keys["dispatch"], keys["duty"]
    keys.update(
        hs4=hs6[:4],
        hs2=hs6[:2],
        importer_hs6=f"{imp}|{hs6}",
        importer_hs2=f"{imp}|{hs6[:2]}",
        declarant_importer=f"{dcl}|{imp}",
        seller_importer=f"{sel}|{imp}",
        importer_origin=f"{imp}|{ori}",
        hs6_origin=f"{hs6}|{ori}",
        hs6_origin_dispatch=f"{hs6}|{ori}|{dis}",
        hs6_origin_tax_type=f"{hs6}|{ori}|{base[14]}",
        hs6_origin_duty=f"{hs6}|{ori}|{duty}",
    )
    return keys


def key_values(base: tuple[str, ...]) -> tuple[str, ...]:
    """The value of every history key (:data:`KEYS`, in order) from the base fields.

    The tuple form of :func:`keys_from_base`, for the engine's hot path.

    >>> from vigie.topics.schemas import EXAMPLE_DECLARATION
    >>> base = declaration_base(Declaration.model_validate(EXAMPLE_DECLARATION))
    >>> key_values(base) == tuple(keys_from_base(base)[name] for name in KEYS)
    True
    """
    imp, dcl, sel, hs6, ori, office, dis, duty, cou, mode, proc, ity, ius, pay, tax, oind = base
    hs6_ori = hs6 + "|" + ori
    return (
        imp,
        dcl,
        sel,
        hs6,
        hs6[:4],
        hs6[:2],
        ori,
        office,
        imp + "|" + hs6,
        imp + "|" + hs6[:2],
        dcl + "|" + imp,
        sel + "|" + imp,
        imp + "|" + ori,
        hs6_ori,
        hs6_ori + "|" + dis,
        hs6_ori + "|" + tax,
        hs6_ori + "|" + duty,
        ity,
        ius,
        pay,
        tax,
        oind,
        cou,
        mode,
        proc,
    )


def declaration_keys(decl: Declaration) -> dict[str, str]:
    """The history keys of a declaration (missing optional fields read as ``"-"``)."""
    return keys_from_base(declaration_base(decl))


class InfractionHistory:
    """Smoothed infraction rates per key value, learnt from control results only.

    Parameters
    ----------
    keys
        The key names to keep rates for (see :data:`KEYS`).
    prior_strength
        Pseudo-controls at the global rate added to every key value (beta smoothing).
    max_keys
        Bound on the number of values held per key (least recently updated forgotten
        first).

    Examples
    --------
    >>> hist = InfractionHistory(keys=("importer",), prior_strength=2.0)
    >>> hist.learn_one({"importer": "A"}, True)
    >>> hist.learn_one({"importer": "B"}, False, weight=3.0)
    >>> {k: round(v, 3) for k, v in hist.features({"importer": "A"}).items()}
    {'te:importer': 0.223, 'n:importer': 0.693}
    """

    def __init__(
        self,
        keys: tuple[str, ...] = KEYS,
        prior_strength: float = 0.5,
        max_keys: int = 1_000_000,
    ) -> None:
        self.keys = keys
        self.prior_strength = prior_strength
        self.max_keys = max_keys
        self._tables: list[dict[str, list[float]]] = [{} for _ in keys]
        self._names = [(name, f"te:{name}", f"n:{name}") for name in keys]
        self._total = 0.0
        self._positives = 0.0
        self._updates = 0

    @property
    def global_rate(self) -> float:
        """The weighted infraction rate over every control received (0.5 before any)."""
        return (self._positives + 1.0) / (self._total + 2.0)

    @property
    def n_updates(self) -> int:
        return self._updates

    @property
    def size(self) -> int:
        """Number of key values held."""
        return sum(len(table) for table in self._tables)

    def rate(self, key: str, value: str) -> tuple[float, float]:
        """The smoothed rate of one key value and its (weighted) number of controls."""
        entry = self._tables[self.keys.index(key)].get(value)
        prior = self.global_rate
        if entry is None:
            return prior, 0.0
        n, pos = entry[0], entry[1]
        return (pos + self.prior_strength * prior) / (n + self.prior_strength), n

    def features(self, keys: Mapping[str, str]) -> dict[str, float]:
        """For each key: the smoothed rate as a logit, and log(1 + controls)."""
        values = self.feature_values(tuple(keys[name] for name in self.keys))
        return dict(zip(self.feature_names, values, strict=True))

    @property
    def feature_names(self) -> tuple[str, ...]:
        """The names of :meth:`feature_values`: ``te:<key>``, ``n:<key>`` per key."""
        return tuple(name for _, te, n in self._names for name in (te, n))

    def feature_values(self, values: Sequence[str]) -> list[float]:
        """:meth:`features` for the key values in the order of ``keys`` (no names).

        >>> hist = InfractionHistory(keys=("importer", "office"), prior_strength=2.0)
        >>> hist.learn_values(("A", "X"), True)
        >>> [round(v, 3) for v in hist.feature_values(("A", "Y"))]
        [1.253, 0.693, 0.693, 0.0]
        """
        prior = (self._positives + 1.0) / (self._total + 2.0)
        prior_logit = math.log(prior / (1.0 - prior))
        strength = self.prior_strength
        base = strength * prior
        log, log1p = math.log, math.log1p
        out: list[float] = []
        append = out.append
        for value, table in zip(values, self._tables, strict=True):
            entry = table.get(value)
            if entry is None:
                append(prior_logit)
                append(0.0)
            else:
                n = entry[0]
                good = entry[1] + base
                # logit of (pos + base) / (n + strength)
                append(log(good / (n + strength - good)))
                append(log1p(n))
        return out

    def learn_one(self, keys: Mapping[str, str], fraud: bool, weight: float = 1.0) -> None:
        """Count one control result of weight ``weight`` for every key of the declaration."""
        self.learn_values(tuple(keys[name] for name in self.keys), fraud, weight)

    def learn_values(self, values: Sequence[str], fraud: bool, weight: float = 1.0) -> None:
        """:meth:`learn_one` for the key values in the order of ``keys``.

        Each entry is ``[controls, infractions, update stamp]``: a table over ``max_keys``
        forgets its least recently updated tenth at once (amortised, no reordering per
        update).
        """
        positive = weight if fraud else 0.0
        self._updates += 1
        stamp = self._updates
        for value, table in zip(values, self._tables, strict=True):
            entry = table.get(value)
            if entry is None:
                table[value] = [weight, positive, stamp]
                if len(table) > self.max_keys:
                    _forget_oldest(table, self.max_keys)
            else:
                entry[0] += weight
                entry[1] += positive
                entry[2] = stamp
        self._total += weight
        self._positives += positive

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)
        for table in self._tables:  # snapshots from before the update stamps
            for entry in table.values():
                if len(entry) == 2:
                    entry.append(0)


def _forget_oldest(table: dict[str, list[float]], max_keys: int) -> None:
    """Keep the ``max_keys - max_keys // 10`` most recently updated entries of ``table``."""
    keep = max(max_keys - max_keys // 10, 1)
    newest = sorted(table.items(), key=lambda item: item[1][2], reverse=True)[:keep]
    table.clear()
    table.update(sorted(newest, key=lambda item: item[1][2]))


class ActivityHistory:
    """How active each importer is: declarations lodged, first seen, chapters imported.

    Examples
    --------
    >>> from vigie.topics.schemas import EXAMPLE_DECLARATION, Declaration
    >>> decl = Declaration.model_validate(EXAMPLE_DECLARATION)
    >>> act = ActivityHistory()
    >>> act.features(decl)["act:new_chapter"]
    1.0
    >>> act.learn_one(decl)
    >>> act.features(decl)["act:new_chapter"], act.importer_declarations(decl.importer)
    (0.0, 1)
    """

    def __init__(self, max_keys: int = 1_000_000) -> None:
        self.max_keys = max_keys
        self._importers: dict[str, list[float]] = {}
        self._pairs: dict[str, int] = {}

    @property
    def size(self) -> int:
        return len(self._importers) + len(self._pairs)

    def importer_declarations(self, importer: str) -> int:
        entry = self._importers.get(importer)
        return 0 if entry is None else int(entry[0])

    def is_new_chapter(self, decl: Declaration) -> bool:
        """True when this importer never declared this HS chapter before."""
        return f"{decl.importer}|{decl.commodity_code[:2]}" not in self._pairs

    def features(self, decl: Declaration) -> dict[str, float]:
        """log(1 + declarations), log(1 + days since first seen), new importer, new chapter."""
        entry = self._importers.get(decl.importer)
        stamp = decl.lodged_at.timestamp()
        pair = self._pairs.get(f"{decl.importer}|{decl.commodity_code[:6]}", 0)
        if entry is None:
            return {
                "act:declarations": 0.0,
                "act:days": 0.0,
                "act:new_importer": 1.0,
                "act:new_chapter": 1.0,
                "act:importer_hs6": 0.0,
            }
        days = max(0.0, stamp - entry[1]) / 86400.0
        return {
            "act:declarations": math.log1p(entry[0]),
            "act:days": math.log1p(days),
            "act:new_importer": 0.0,
            "act:new_chapter": 1.0 if self.is_new_chapter(decl) else 0.0,
            "act:importer_hs6": math.log1p(pair),
        }

    def learn_one(self, decl: Declaration) -> None:
        entry = self._importers.pop(decl.importer, None)
        if entry is None:
            entry = [0.0, decl.lodged_at.timestamp()]
        entry[0] += 1.0
        self._importers[decl.importer] = entry
        for pair in (
            f"{decl.importer}|{decl.commodity_code[:2]}",
            f"{decl.importer}|{decl.commodity_code[:6]}",
        ):
            self._pairs[pair] = self._pairs.pop(pair, 0) + 1
        self._evict()

    def first_seen(self, importer: str) -> datetime | None:
        from datetime import UTC

        entry = self._importers.get(importer)
        return None if entry is None else datetime.fromtimestamp(entry[1], UTC)

    def _evict(self) -> None:
        while len(self._importers) > self.max_keys:
            del self._importers[next(iter(self._importers))]
        while len(self._pairs) > self.max_keys:
            del self._pairs[next(iter(self._pairs))]
