"""Figures from raw measurements: percentiles, rates, ratios, megabytes.

Examples
--------
>>> percentiles([float(v) for v in range(1, 1001)])
{'p50': 500.0, 'p99': 990.0, 'p99_9': 999.0, 'max': 1000.0, 'n': 1000}
>>> rate(50_000, 4.0), ratio(7_500.0, 10_000.0), ratio(1.0, None)
(12500.0, 0.75, None)
"""

from __future__ import annotations

QUANTILES = {"p50": 0.50, "p99": 0.99, "p99_9": 0.999}


def percentiles(values: list[float]) -> dict[str, float | int | None]:
    """p50, p99, p99.9 (nearest rank) and max of ``values``, and how many there were.

    With fewer than 1,000 values, p99.9 is the maximum: read it with ``n``.
    """
    if not values:
        return {**dict.fromkeys(QUANTILES), "max": None, "n": 0}
    ordered = sorted(values)
    last = len(ordered) - 1

    def rank(q: float) -> float:
        return round(ordered[min(last, max(0, int(q * len(ordered) + 0.5) - 1))], 2)

    figures: dict[str, float | int | None] = {name: rank(q) for name, q in QUANTILES.items()}
    return {**figures, "max": round(ordered[-1], 2), "n": len(ordered)}


def rate(count: int, seconds: float) -> float | None:
    """``count`` per second, or None when no time passed."""
    return round(count / seconds, 1) if seconds > 0 else None


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """``numerator / denominator`` to three decimals; None when either is missing."""
    if numerator is None or not denominator:
        return None
    return round(numerator / denominator, 3)


def megabytes(kilobytes: int | None) -> float | None:
    """Kilobytes (as /proc and getrusage report them) in MiB.

    >>> megabytes(1_572_864)
    1536.0
    """
    return None if kilobytes is None else round(kilobytes / 1024, 1)
