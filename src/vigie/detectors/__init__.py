"""Pure online detectors (River style): no I/O, picklable, test-then-train."""

from __future__ import annotations

from vigie.detectors.atypicality import AtypicalityDetector
from vigie.detectors.valuation import ValuationDetector

__all__ = [
    "AtypicalityDetector",
    "ValuationDetector",
]
