"""Which declarations are inspected, and what the inspection finds.

Two channels, as in a real customs service:

- random audits: every declaration is audited with probability ``audit_share``
  (``selection="random_audit"``, ``selection_probability=audit_share``), the unbiased
  sample a supervised model needs;
- targeted controls (``selection="other"``): the highest scores of a simple rule-based
  profile that reads only declared fields and a public reference price list, never the
  ground truth, so it catches many frauds and misses others.

An inspection of a fraudulent declaration finds the fraud with probability
``detection_rate``; the amount recovered is the customs duty gap (due duty minus declared
duty). Import VAT on the gap is left out: VAT-registered importers deduct it.

Examples
--------
>>> import numpy as np
>>> risk = profile_score(np.array([12.0, 0.0]), np.array([2.0, 20.0]), np.array([10.0, 10.0]),
...                      np.array([True, False]), np.array([False, False]))
>>> bool(risk[0] > risk[1])
True
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vigie_dev.generator.config import MAX_CONTROL_DELAY, GeneratorConfig
from vigie_dev.generator.draft import DAY, Draft
from vigie_dev.generator.world import BoolArray, FloatArray, World, floats


@dataclass(frozen=True)
class Inspections:
    """Per declaration: audited, targeted, fraud found, and the control delay in seconds."""

    audited: BoolArray
    targeted: BoolArray
    found: BoolArray
    delay: FloatArray

    @property
    def inspected(self) -> BoolArray:
        return self.audited | self.targeted


def profile_score(
    rate: FloatArray,
    value_per_kg: FloatArray,
    reference_per_kg: FloatArray,
    route_break: BoolArray,
    newcomer: BoolArray,
) -> FloatArray:
    """A targeting officer's rules: high duty, cheap for its kind, odd route, new trader."""
    cheap = value_per_kg < 0.5 * reference_per_kg
    dear = value_per_kg > 4.0 * reference_per_kg
    return floats(
        1.0 * (rate >= 8.0) + 1.5 * cheap + 0.8 * dear + 0.6 * route_break + 0.6 * newcomer
    )


def inspect(
    rng: np.random.Generator, world: World, draft: Draft, config: GeneratorConfig
) -> Inspections:
    """Draw audits, pick targeted controls by profile, and the inspections' findings."""
    n = len(draft)
    audited = rng.random(n) < config.audit_share
    value_per_kg = draft.value / np.maximum(draft.mass, 1e-3)
    score = profile_score(
        draft.rate,
        value_per_kg,
        world.goods.median_eur_kg[draft.commodity],
        draft.origin != draft.dispatch,
        world.importers.entry_day[draft.importer] > 0,
    )
    score = score + 0.4 * (draft.preference >= 2) + 0.3 * draft.low_value + rng.normal(0, 0.8, n)
    budget = round(n * max(0.0, config.inspected_share - config.audit_share))
    targeted = np.zeros(n, dtype=bool)
    order = np.argsort(-np.where(audited, -np.inf, score), kind="stable")
    targeted[order[: min(budget, int((~audited).sum()))]] = True
    fraud = draft.typology > 0
    found = fraud & (rng.random(n) < config.detection_rate)
    delay = rng.uniform(2.0 * DAY, MAX_CONTROL_DELAY.total_seconds(), n)
    return Inspections(audited=audited, targeted=targeted, found=found, delay=delay)
