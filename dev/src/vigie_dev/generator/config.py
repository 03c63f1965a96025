"""What a generated stream looks like: size, seed, period, fraud and control shares.

>>> cfg = GeneratorConfig(n=1000, seed=3)
>>> for typology, count in cfg.fraud_counts().items():
...     print(typology, count)
under_valuation 16
new_route 4
origin_inconsistent 4
mass_value_incoherence 4
chapter_switch 5
split_consignment 6
>>> cfg.importer_count()
200
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from vigie.contracts.schemas import FUTURE_LIMIT, utc_now
from vigie.errors import ConfigurationError

TYPOLOGIES: tuple[str, ...] = (
    "under_valuation",
    "new_route",
    "origin_inconsistent",
    "mass_value_incoherence",
    "chapter_switch",
    "split_consignment",
)
"""The fraud typologies, in the order they are injected."""

DEFAULT_MIX: dict[str, float] = {
    "under_valuation": 0.40,
    "new_route": 0.11,
    "origin_inconsistent": 0.10,
    "mass_value_incoherence": 0.11,
    "chapter_switch": 0.13,
    "split_consignment": 0.15,
}
"""Share of the fraudulent declarations that belong to each typology."""


MAX_CONTROL_DELAY = timedelta(days=15)
"""Longest time from a declaration to its control result."""


@dataclass(frozen=True)
class GeneratorConfig:
    """Parameters of one stream. The same configuration always yields the same stream.

    ``fraud_share`` is the share of all declarations that are fraudulent, split between
    typologies by ``mix``; ``inspected_share`` the share that is physically controlled,
    of which ``audit_share`` (of all declarations) is drawn uniformly at random and the
    rest targeted by a rule-based profile; ``detection_rate`` the chance an inspection
    of a fraudulent declaration finds the fraud; ``export_share`` the share of the ``n``
    declarations that are exports (:mod:`vigie_dev.generator.exports`), the rest imports.
    """

    n: int = 10_000
    seed: int = 0
    start: datetime = datetime(2026, 1, 1, tzinfo=UTC)
    days: int = 90
    fraud_share: float = 0.04
    inspected_share: float = 0.05
    audit_share: float = 0.01
    detection_rate: float = 0.9
    mix: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_MIX))
    importers: int | None = None
    export_share: float = 0.0

    def __post_init__(self) -> None:
        checks = {
            "n must be >= 1": self.n >= 1,
            "seed must be >= 0": self.seed >= 0,
            "days must be >= 1": self.days >= 1,
            "start must be timezone-aware": self.start.utcoffset() is not None,
            "the stream and its controls must end at most a year from now (later is refused)": (
                self.start.utcoffset() is None
                or self.start + timedelta(days=self.days) + MAX_CONTROL_DELAY
                <= utc_now() + FUTURE_LIMIT
            ),
            "fraud_share must be in [0, 0.5]": 0.0 <= self.fraud_share <= 0.5,
            "inspected_share must be in [0, 1]": 0.0 <= self.inspected_share <= 1.0,
            "audit_share must be in [0, inspected_share]": (
                0.0 <= self.audit_share <= self.inspected_share
            ),
            "detection_rate must be in [0, 1]": 0.0 <= self.detection_rate <= 1.0,
            f"mix keys must be among {TYPOLOGIES}": set(self.mix) <= set(TYPOLOGIES),
            "mix weights must be >= 0": all(v >= 0 for v in self.mix.values()),
            "export_share must be in [0, 0.5]": 0.0 <= self.export_share <= 0.5,
        }
        failed = [message for message, ok in checks.items() if not ok]
        if failed:
            raise ConfigurationError("generator: " + "; ".join(failed))

    def exports(self) -> int:
        """How many of the ``n`` declarations are exports.

        >>> GeneratorConfig(n=1000, export_share=0.15).exports()
        150
        """
        return round(self.n * self.export_share)

    def fraud_counts(self) -> dict[str, int]:
        """How many declarations of each typology to inject."""
        total = sum(self.mix.values()) or 1.0
        frauds = self.n * self.fraud_share
        return {t: round(frauds * self.mix.get(t, 0.0) / total) for t in TYPOLOGIES}

    def importer_count(self) -> int:
        """Importers in the world: given, or about one per 20 declarations (200 to 6,000)."""
        if self.importers is not None:
            return max(10, self.importers)
        return min(6000, max(200, self.n // 20))
