"""Static reference tables of the synthetic world: chapters, countries, offices, currencies.

The figures are plausible orders of magnitude for EU (French) import traffic, not
official data: MFN duty rates per chapter, median unit values in EUR per kg, the main
supplier countries per chapter, a few anti-dumping measures on Chinese goods, the
preferential regimes (free-trade agreements, GSP) and French customs offices. Office
codes other than Roissy, Le Havre and Marseille are illustrative.

>>> CHAPTERS["61"].duty_rates, CHAPTERS["61"].origins["CN"], CHAPTERS["61"].headings[0]
((12.0,), 35, '6104')
>>> sorted(c for c in CHAPTERS if CHAPTERS[c].unit_kg is not None)
['61', '62', '64', '84', '85', '87', '94', '95']
>>> OFFICES[0]
Office(code='FR000730', name='Roissy-CDG fret', mode='4', weight=30)
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Chapter:
    """One HS chapter: what it costs, who makes it, how it travels and what it pays.

    ``price_eur_kg`` bounds the median unit value of its commodities; ``unit_kg`` bounds
    the mass of one supplementary unit (pieces, pairs) when the chapter declares units,
    ``unit_share`` is the share of its commodities that do; ``anti_dumping`` maps HS4
    headings to the extra duty (percentage points) on goods originating in China.
    """

    name: str
    headings_text: str
    duty_rates: tuple[float, ...]
    price_eur_kg: tuple[float, float]
    origins_text: str
    weight: float
    air_share: float
    unit_kg: tuple[float, float] | None = None
    unit_share: float = 0.0
    anti_dumping: dict[str, float] | None = None

    @property
    def headings(self) -> tuple[str, ...]:
        """The HS4 headings its commodities belong to."""
        return tuple(self.headings_text.split())

    @property
    def origins(self) -> dict[str, int]:
        """Supplier countries and their relative weights."""
        pairs = (item.split(":") for item in self.origins_text.split())
        return {country: int(weight) for country, weight in pairs}


CHAPTERS: dict[str, Chapter] = {
    "08": Chapter(
        "fruit and nuts",
        "0803 0804 0805 0806 0802 0810",
        (0.0, 3.2, 8.0, 12.0, 16.0),
        (0.8, 8.0),
        "EC:12 CR:12 CO:10 MA:10 ZA:10 TR:10 CL:8 PE:8 US:8 EG:6 IL:4",
        weight=5,
        air_share=0.05,
    ),
    "09": Chapter(
        "coffee, tea and spices",
        "0901 0902 0904 0906 0908 0910",
        (0.0, 3.2, 7.5, 12.5),
        (2.0, 25.0),
        "BR:25 VN:15 IN:15 CO:10 ET:6 HN:6 ID:6 CN:6 LK:5 UG:4",
        weight=3,
        air_share=0.03,
    ),
    "20": Chapter(
        "prepared fruit and vegetables",
        "2001 2002 2005 2007 2008 2009",
        (12.0, 14.4, 16.0, 17.0),
        (0.8, 4.0),
        "TR:20 CN:20 TH:12 MA:8 PE:8 US:8 CL:6 ZA:6 VN:6 IN:6",
        weight=4,
        air_share=0.02,
    ),
    "29": Chapter(
        "organic chemicals",
        "2905 2915 2917 2922 2933 2941",
        (0.0, 3.7, 5.5, 6.5),
        (1.5, 60.0),
        "CN:40 IN:20 US:15 CH:8 GB:6 JP:6 KR:5",
        weight=6,
        air_share=0.1,
    ),
    "39": Chapter(
        "plastics",
        "3901 3903 3907 3917 3920 3923 3924 3926",
        (6.5,),
        (1.2, 8.0),
        "CN:30 US:15 KR:10 SA:8 IN:8 TW:6 TR:6 GB:6 TH:5 JP:4",
        weight=9,
        air_share=0.05,
    ),
    "61": Chapter(
        "knitted apparel",
        "6104 6105 6109 6110 6115",
        (12.0,),
        (8.0, 40.0),
        "CN:35 BD:20 TR:12 IN:8 VN:8 PK:5 KH:4 MA:4 TN:3 LK:2 MM:2",
        weight=9,
        air_share=0.25,
        unit_kg=(0.12, 0.6),
        unit_share=1.0,
    ),
    "62": Chapter(
        "woven apparel",
        "6201 6203 6204 6205 6206 6211",
        (12.0,),
        (10.0, 50.0),
        "CN:35 BD:20 TR:10 IN:10 VN:8 PK:5 KH:4 MA:5 TN:3",
        weight=8,
        air_share=0.25,
        unit_kg=(0.2, 1.2),
        unit_share=1.0,
    ),
    "64": Chapter(
        "footwear",
        "6402 6403 6404 6405",
        (8.0, 12.0, 16.9, 17.0),
        (8.0, 60.0),
        "CN:40 VN:30 ID:10 IN:5 KH:4 BR:3 TR:3",
        weight=6,
        air_share=0.15,
        unit_kg=(0.4, 1.5),
        unit_share=1.0,
    ),
    "72": Chapter(
        "iron and steel",
        "7207 7208 7210 7213 7219 7225",
        (0.0,),
        (0.5, 3.0),
        "TR:15 CN:15 IN:12 KR:10 UA:8 JP:8 TW:6 VN:6 BR:6 ZA:5 GB:5",
        weight=5,
        air_share=0.0,
        anti_dumping={"7208": 25.0, "7219": 24.0, "7225": 27.0},
    ),
    "73": Chapter(
        "articles of iron or steel",
        "7304 7306 7307 7318 7323 7326",
        (0.0, 2.7, 3.2, 3.7),
        (1.5, 10.0),
        "CN:40 TR:15 IN:10 TW:8 KR:6 VN:6 MY:4 TH:4 US:3",
        weight=6,
        air_share=0.02,
        anti_dumping={"7307": 58.6, "7318": 64.0, "7304": 39.2},
    ),
    "84": Chapter(
        "machinery",
        "8413 8414 8415 8418 8422 8443 8450 8471 8481",
        (0.0, 1.7, 2.2, 2.7),
        (8.0, 120.0),
        "CN:45 US:15 JP:8 CH:6 KR:6 TW:6 GB:6 TH:3 MY:3 VN:2",
        weight=12,
        air_share=0.2,
        unit_kg=(1.0, 80.0),
        unit_share=0.5,
    ),
    "85": Chapter(
        "electrical equipment",
        "8504 8516 8517 8518 8528 8536 8541 8544",
        (0.0, 2.7, 3.7, 14.0),
        (10.0, 200.0),
        "CN:50 VN:10 KR:6 JP:6 TW:6 MY:6 US:6 TH:4 MX:2 PH:2 IN:2",
        weight=14,
        air_share=0.35,
        unit_kg=(0.1, 15.0),
        unit_share=0.6,
    ),
    "87": Chapter(
        "vehicle parts and cycles",
        "8708 8711 8712 8714 8716",
        (3.0, 4.5, 6.0, 14.0),
        (3.0, 30.0),
        "CN:35 TR:10 JP:10 KR:8 US:8 GB:8 MA:6 TW:6 IN:5 TH:4",
        weight=7,
        air_share=0.05,
        unit_kg=(12.0, 30.0),
        unit_share=0.4,
        anti_dumping={"8711": 55.0, "8712": 48.5},
    ),
    "94": Chapter(
        "furniture and lighting",
        "9401 9403 9404 9405",
        (0.0, 2.7, 3.7, 4.7),
        (2.0, 15.0),
        "CN:50 VN:12 TR:8 IN:6 MY:6 ID:6 UA:4 BA:4 GB:4",
        weight=6,
        air_share=0.02,
        unit_kg=(2.0, 40.0),
        unit_share=0.6,
    ),
    "95": Chapter(
        "toys and games",
        "9503 9504 9505 9506",
        (0.0, 1.7, 2.7, 4.7),
        (4.0, 30.0),
        "CN:75 VN:8 US:4 GB:4 ID:3 IN:3 TH:3",
        weight=6,
        air_share=0.15,
        unit_kg=(0.05, 2.0),
        unit_share=0.7,
    ),
}

HUBS: tuple[str, ...] = ("NL", "BE", "AE", "HK", "SG")
"""Transit hubs goods are often dispatched from when the origin is far away."""

TRANSHIPMENT: tuple[str, ...] = ("MY", "VN", "TH", "KR", "TW", "ID")
"""Countries through which Chinese goods are re-labelled to dodge anti-dumping duties."""

FREE_TRADE: frozenset[str] = frozenset(
    {
        "CH",
        "GB",
        "JP",
        "KR",
        "VN",
        "SG",
        "MA",
        "TN",
        "TR",
        "CO",
        "PE",
        "EC",
        "CL",
        "MX",
        "ZA",
        "EG",
        "IL",
        "CA",
        "UA",
        "BA",
        "CR",
        "HN",
    }
)
"""Origins with a free-trade agreement or customs union: preference 300, duty 0."""

GSP_ZERO: frozenset[str] = frozenset({"BD", "KH", "MM", "ET", "UG", "PK", "LK", "PH"})
"""Everything-but-arms and GSP+ beneficiaries: preference 200, duty 0."""

GSP_STANDARD: frozenset[str] = frozenset({"IN", "ID"})
"""Standard GSP beneficiaries: preference 200, ad valorem duty reduced by 3.5 points."""

FALSE_ORIGIN_CANDIDATES: tuple[str, ...] = (
    *("CH", "IL", "CA", "CL", "NO", "IS", "SG", "MX", "ZA"),
    *("EG", "PE", "CO", "UA", "GB", "JP", "KR", "NZ", "AU"),
)
"""Origins claimed falsely, for goods of chapters they do not produce."""

NEAR: frozenset[str] = frozenset({"TR", "MA", "TN", "GB", "CH", "UA", "BA"})
"""Origins that reach France mostly by road (or ro-ro ferry)."""

EXTRA_COUNTRIES: tuple[str, ...] = ("NO", "IS", "CA", "SG", "HK", "AE", "NZ", "AU")
"""Countries that trade but produce little of some chapters (candidates for false origins)."""


@dataclass(frozen=True)
class Office:
    """A customs office of lodgement and the transport mode it mostly handles."""

    code: str
    name: str
    mode: str
    weight: float


OFFICES: tuple[Office, ...] = (
    Office("FR000730", "Roissy-CDG fret", "4", 30),
    Office("FR002300", "Le Havre port", "1", 35),
    Office("FR001280", "Marseille-Fos port", "1", 20),
    Office("FR003310", "Dunkerque port", "1", 10),
    Office("FR004400", "Nantes-Saint-Nazaire", "1", 5),
    Office("FR009400", "Orly", "4", 5),
    Office("FR006900", "Lyon Saint-Exupery", "4", 6),
    Office("FR003100", "Toulouse Blagnac", "4", 3),
    Office("FR005900", "Lille Lesquin", "3", 12),
    Office("FR006700", "Strasbourg", "3", 8),
    Office("FR006600", "Le Boulou", "3", 8),
    Office("FR007400", "Mont-Blanc", "3", 4),
)

EUR_PER_UNIT: dict[str, float] = {
    "EUR": 1.0,
    "USD": 0.92,
    "CNY": 0.127,
    "GBP": 1.17,
    "JPY": 0.0061,
    "CHF": 1.05,
    "TRY": 0.027,
    "INR": 0.011,
}
"""Exchange rates at the start of the stream (EUR for one unit); they drift daily."""

CURRENCY_BY_ORIGIN: dict[str, dict[str, int]] = {
    "CN": {"USD": 78, "CNY": 15, "EUR": 7},
    "US": {"USD": 95, "EUR": 5},
    "GB": {"GBP": 70, "EUR": 30},
    "JP": {"JPY": 60, "USD": 30, "EUR": 10},
    "CH": {"CHF": 60, "EUR": 40},
    "TR": {"EUR": 55, "USD": 35, "TRY": 10},
    "IN": {"USD": 75, "INR": 10, "EUR": 15},
}
DEFAULT_CURRENCY: dict[str, int] = {"USD": 70, "EUR": 30}

INCOTERMS: dict[str, tuple[float, float]] = {
    "FOB": (45, 1.06),
    "CIF": (20, 1.0),
    "EXW": (13, 1.09),
    "FCA": (10, 1.05),
    "DAP": (10, 0.98),
    "DDP": (2, 0.93),
}
"""Incoterm: (weight, customs value / invoice price). The customs value is the CIF value at
the EU border, so freight and insurance are added to FOB/EXW/FCA prices and deducted from
delivered (DAP/DDP) prices."""

PROCEDURES: dict[str, float] = {"4000": 88, "4200": 8, "4071": 4}
"""Release for free circulation, with onward intra-EU supply, after customs warehousing."""

PREFERENCE_CLAIM_RATE = 0.75
"""Share of eligible declarations that actually claim their preference."""

LOW_VALUE_LIMIT_EUR = 150.0
"""Consignments of negligible value are relieved of duty (additional procedure C07)."""
