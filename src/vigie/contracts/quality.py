"""Data-quality flags: what is valid but unusual in a declaration, said on its Score.

A declaration that breaks the contract is refused (a dead letter). Some values are valid
yet worth a look, because real declarations carry them: an unknown origin (``ZZ``, used by
Korea's customs for 0.05 % of items), a net mass of 0 (0.8 % of the same data), a duty rate
far above the usual range of its regime. Such declarations are scored like any other, and
their Score and Alert carry the flags, so a targeting agent and the dashboards see them.

Duty rates, by regime (the EU's preference code: ``1xx`` third-country duty, ``2xx`` the
generalised scheme of preferences, ``3xx`` and ``4xx`` preferential agreements and
tariff quotas): a third-country rate above 300 % and a preferential rate above 100 % are
flagged; other codes (national systems) use the third-country bound.

>>> from vigie.contracts.schemas import EXAMPLE_DECLARATION, Declaration
>>> decl = Declaration.model_validate(EXAMPLE_DECLARATION)
>>> flags(decl)
()
>>> flags(decl.model_copy(update={"origin": "ZZ", "net_mass_kg": 0.0, "duty_rate_pct": 420.0}))
('ORIGIN_UNKNOWN', 'NET_MASS_MISSING', 'DUTY_RATE_UNUSUAL')
>>> flags(decl.model_copy(update={"preference": "300", "duty_rate_pct": 150.0}))
('DUTY_RATE_UNUSUAL',)
"""

from __future__ import annotations

from typing import Final

from vigie.contracts.schemas import Declaration

UNKNOWN_COUNTRIES: Final = frozenset({"ZZ", "QU", "QV", "QW", "QX", "QY", "QZ"})
"""User-assigned codes that say "not known" or "not specified"."""
THIRD_COUNTRY_MAX_PCT: Final = 300.0
PREFERENTIAL_MAX_PCT: Final = 100.0
FLAGS: Final = (
    "ORIGIN_UNKNOWN",
    "DISPATCH_UNKNOWN",
    "NET_MASS_MISSING",
    "VALUE_ZERO",
    "DUTY_RATE_UNUSUAL",
)
"""Every flag, in the order they are reported."""


def usual_duty_rate_max(preference: str | None) -> float:
    """The highest duty rate (%) that is usual under a preference regime."""
    if preference and preference[:1] in "234" and preference[:3].isdigit():
        return PREFERENTIAL_MAX_PCT
    return THIRD_COUNTRY_MAX_PCT


def flags(decl: Declaration) -> tuple[str, ...]:
    """The data-quality flags of a valid declaration, in the order of :data:`FLAGS`."""
    found = []
    if decl.origin in UNKNOWN_COUNTRIES:
        found.append("ORIGIN_UNKNOWN")
    if decl.dispatch in UNKNOWN_COUNTRIES:
        found.append("DISPATCH_UNKNOWN")
    if decl.net_mass_kg == 0:
        found.append("NET_MASS_MISSING")
    if decl.customs_value_eur == 0:
        found.append("VALUE_ZERO")
    if decl.duty_rate_pct > usual_duty_rate_max(decl.preference):
        found.append("DUTY_RATE_UNUSUAL")
    return tuple(found)
