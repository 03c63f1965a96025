"""Reference code lists used to validate records (countries, currencies, commodity codes).

Country and currency codes come from ISO 3166-1 and ISO 4217 through ``pycountry``.
Customs also uses a few user-assigned country codes: ``ZZ`` (unknown: accepted, and
flagged on the Score, see :mod:`vigie.contracts.quality`), ``EU``, ``XK`` (Kosovo),
``XC``/``XL``/``XS`` (Ceuta, Melilla, Serbia in older lists) and the ``QU``-``QZ`` range
of the EU's statistical nomenclature. An invoice is paid in a currency: ISO 4217's
codes for precious metals, funds, units of account and tests (``XAU``, ``XDR``,
``XTS``, ``XXX`` ...) are refused.

>>> is_country("CN"), is_country("ZZ"), is_country("XX")
(True, True, False)
>>> is_currency("EUR"), is_currency("XOF"), is_currency("XXX"), is_currency("ABC")
(True, True, False, False)
>>> normalise_commodity_code("90121")
'090121'
"""

from __future__ import annotations

from functools import lru_cache

import pycountry

_USER_ASSIGNED_COUNTRIES = frozenset(
    {"ZZ", "EU", "XK", "XC", "XL", "XS", "QU", "QV", "QW", "QX", "QY", "QZ"}
)
COMMODITY_CODE_LENGTHS = (6, 8, 10)
"""HS6, CN8, TARIC10."""


@lru_cache(maxsize=1)
def country_codes() -> frozenset[str]:
    """Every country code a record may carry."""
    return frozenset(c.alpha_2 for c in pycountry.countries) | _USER_ASSIGNED_COUNTRIES


_NOT_MONEY = frozenset(
    {"XAG", "XAU", "XPD", "XPT", "XBA", "XBB", "XBC", "XBD", "XDR", "XSU", "XUA", "XTS", "XXX"}
    | {"BOV", "CHE", "CHW", "CLF", "COU", "MXV", "USN", "UYI", "UYW"}
)
"""ISO 4217 codes that are not a currency an invoice is paid in: metals, units of
account, test and "no currency" codes, and funds codes."""


@lru_cache(maxsize=1)
def currency_codes() -> frozenset[str]:
    """Every ISO 4217 code of a currency an invoice can be paid in."""
    return frozenset(c.alpha_3 for c in pycountry.currencies) - _NOT_MONEY


def is_country(code: str) -> bool:
    return code in country_codes()


def is_currency(code: str) -> bool:
    return code in currency_codes()


def is_commodity_code(code: str) -> bool:
    """Whether ``code`` is 6, 8 or 10 ASCII digits (HS6, CN8 or TARIC10).

    >>> is_commodity_code("620342"), is_commodity_code("6203A2"), is_commodity_code("620342\\n")
    (True, False, False)
    """
    return len(code) in COMMODITY_CODE_LENGTHS and code.isascii() and code.isdigit()


def normalise_commodity_code(raw: str) -> str:
    """Pad a commodity code whose leading zero was lost in a spreadsheet.

    HS codes have an even number of digits (6, 8 or 10); an odd count means a lost zero.
    """
    digits = raw.strip().replace(".", "").replace(" ", "")
    if digits.isdigit() and len(digits) % 2 == 1:
        digits = "0" + digits
    return digits


def hs_prefixes(code: str) -> tuple[str, ...]:
    """The commodity code and its coarser levels, finest first.

    >>> hs_prefixes("62034231")
    ('62034231', '620342', '6203', '62')
    """
    levels = [code] + [code[:n] for n in (6, 4, 2) if len(code) > n]
    return tuple(dict.fromkeys(levels))
