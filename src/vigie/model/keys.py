"""The keys an infraction rate is kept for, and the declaration fields they are built from.

A declaration is read once into its base fields (:func:`declaration_base`, interned
strings); every key value, pairs included, is then built from them (:func:`key_values`).

Examples
--------
>>> from vigie.contracts.schemas import EXAMPLE_DECLARATION, Declaration
>>> base = declaration_base(Declaration.model_validate(EXAMPLE_DECLARATION))
>>> keys = dict(zip(KEYS, key_values(base)))
>>> keys["importer_hs6"], keys["hs6_origin_dispatch"], keys["courier"]
('FR12345678901|620342', '620342|CN|CN', '-')
"""

from __future__ import annotations

import sys
from typing import Final

from vigie.contracts.schemas import Declaration

KEYS: Final[tuple[str, ...]] = (
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

BASE_FIELDS: Final[tuple[str, ...]] = (
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

    Interned, the pending store shares one string per importer, office, ... instead of
    one per declaration.

    >>> from vigie.contracts.schemas import EXAMPLE_DECLARATION
    >>> declaration_base(Declaration.model_validate(EXAMPLE_DECLARATION))[:8]
    ('FR12345678901', 'DCL0001', 'CN-SELL-0042', '620342', 'CN', 'FR000730', 'CN', '12')
    """
    get = decl.attributes.get
    intern = sys.intern
    return (
        intern(decl.importer),
        intern(decl.declarant),
        intern(decl.seller or "-"),
        intern(decl.commodity_code[:6]),
        intern(decl.origin),
        intern(decl.office),
        intern(decl.dispatch or "-"),
        intern(f"{decl.duty_rate_pct:g}"),
        intern(get("courier", "-")),
        intern(decl.transport_mode or "-"),
        intern(decl.procedure or "-"),
        intern(get("import_type", "-")),
        intern(get("import_use", "-")),
        intern(get("payment_type", "-")),
        intern(get("tax_type", "-")),
        intern(get("origin_indicator", "-")),
    )


def key_values(base: tuple[str, ...]) -> tuple[str, ...]:
    """The value of every key of :data:`KEYS`, in order, from the base fields."""
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
