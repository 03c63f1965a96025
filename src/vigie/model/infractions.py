"""Smoothed infraction rates per key value, learnt from control results only.

For each key value (an importer, a commodity and origin, ...: see :mod:`vigie.model.keys`)
the history keeps the weighted number of controls and of infractions, and reads a rate
smoothed toward the global rate. Key values are looked up once, as rows, when a
declaration is scored; the rates are read, and learnt later, from those rows (see
docs/learning-from-controls.md).

Examples
--------
>>> hist = InfractionHistory(keys=("importer", "office"), prior_strength=2.0)
>>> seen = ("A", "X")
>>> for fraud in (True, True, False):
...     hist.learn_one(hist.rows(seen), hist.epoch, lambda: seen, fraud)
>>> rows = hist.rows(("A", "Y"))
>>> rate, controls = hist.rate(rows[0])
>>> print(f"{rate:.3f} over {controls:.0f} controls (global {hist.global_rate:.3f})")
0.640 over 3 controls (global 0.600)
>>> [round(v, 3) for v in hist.logits(rows)]  # the unseen office reads the global rate
[0.575, 0.405]
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Callable, Sequence

import numpy as np

from vigie.model.base import Detector
from vigie.model.keys import KEYS


class InfractionHistory(Detector):
    """Weighted controls and infractions per key value, read as smoothed rates.

    Parameters
    ----------
    keys
        The key names to keep rates for (see :data:`vigie.model.keys.KEYS`).
    prior_strength
        Pseudo-controls at the global rate added to every key value (beta smoothing).
    max_keys
        Bound on the number of values held per key (least recently updated forgotten
        first, a tenth at a time).
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
        self._rows: list[dict[str, int]] = [{} for _ in keys]
        # weighted controls and infractions, and update stamp, per row (row 0 stays empty)
        self._control_weights = array("d", bytes(8 * 1024))
        self._infraction_weights = array("d", bytes(8 * 1024))
        self._updated = array("q", bytes(8 * 1024))
        self._free: list[int] = []
        self._used = 1
        self._epoch = 0
        self._total = 0.0
        self._positives = 0.0
        self._updates = 0

    @property
    def version(self) -> str:
        """Changes with every control learnt."""
        return f"history-{self._updates}"

    @property
    def global_rate(self) -> float:
        """The weighted infraction rate over every control received (0.5 before any)."""
        return (self._positives + 1.0) / (self._total + 2.0)

    @property
    def size(self) -> int:
        """Number of key values held."""
        return sum(len(rows) for rows in self._rows)

    @property
    def epoch(self) -> int:
        """Changes whenever a key forgets values (their rows may then be reused)."""
        return self._epoch

    def rows(self, values: Sequence[str]) -> list[int]:
        """The row of every key value, in the order of ``keys`` (0: never learnt)."""
        by_key = self._rows
        return [by_key[k].get(values[k], 0) for k in range(len(by_key))]

    def logits(self, rows: Sequence[int]) -> list[float]:
        """The smoothed rate of each row, as a logit: the supervised model's features."""
        strength = self.prior_strength
        prior = strength * ((self._positives + 1.0) / (self._total + 2.0))
        controls, infractions = self._control_weights, self._infraction_weights
        out = []
        for row in rows:
            good = infractions[row] + prior
            # logit of (pos + strength * prior) / (n + strength)
            out.append(math.log(good / (controls[row] + strength - good)))
        return out

    def rate(self, row: int) -> tuple[float, float]:
        """The smoothed rate of one row and its weighted number of controls."""
        prior = self.global_rate
        if row == 0:
            return prior, 0.0
        n, pos = self._control_weights[row], self._infraction_weights[row]
        return (pos + self.prior_strength * prior) / (n + self.prior_strength), n

    def learn_one(
        self,
        rows: Sequence[int],
        epoch: int,
        values: Callable[[], Sequence[str]],
        fraud: bool,
        weight: float = 1.0,
    ) -> None:
        """Count one control result of weight ``weight`` for every key of a declaration.

        ``rows`` and ``epoch`` are those read when the declaration was scored; the key
        values (``values()``) are built and looked up again only for the rows unseen then,
        or all of them when the history forgot values since.
        """
        if epoch != self._epoch:  # a row read then may hold another value now
            now = values()
            self._learn(list(map(dict.get, self._rows, now)), now, fraud, weight)
            return
        found: list[int | None] = list(rows)
        if 0 not in found:
            self._learn(found, (), fraud, weight)
            return
        now = values()
        for k, row in enumerate(found):
            if row == 0:
                found[k] = self._rows[k].get(now[k])
        self._learn(found, now, fraud, weight)

    def _learn(
        self, found: list[int | None], values: Sequence[str], fraud: bool, weight: float
    ) -> None:
        """Count one control in the rows ``found``, new rows for the values of ``None``."""
        positive = weight if fraud else 0.0
        self._updates += 1
        stamp = self._updates
        if None in found:
            for k, row in enumerate(found):
                if row is None:
                    found[k] = self._new_row(k, values[k], stamp)
        controls, infractions, updated = (
            self._control_weights,
            self._infraction_weights,
            self._updated,
        )
        for row in found:
            assert row is not None  # filled above
            controls[row] += weight
            infractions[row] += positive
            updated[row] = stamp
        self._total += weight
        self._positives += positive

    def _new_row(self, key: int, value: str, stamp: int) -> int:
        if self._free:
            row = self._free.pop()
        else:
            if self._used == len(self._updated):
                zeros = bytes(8 * self._used)  # doubles the three arrays
                self._control_weights.frombytes(zeros)
                self._infraction_weights.frombytes(zeros)
                self._updated.frombytes(zeros)
            row = self._used
            self._used += 1
        self._updated[row] = stamp
        rows = self._rows[key]
        rows[value] = row
        if len(rows) > self.max_keys:
            self._forget_oldest(rows)
        return row

    def _forget_oldest(self, rows: dict[str, int]) -> None:
        """Keep the ``max_keys - max_keys // 10`` most recently updated values of a key."""
        keep = max(self.max_keys - self.max_keys // 10, 1)
        values = list(rows)
        held = np.fromiter(rows.values(), np.intp, len(rows))
        updated = np.array(self._updated, dtype=np.int64)
        oldest = np.argsort(updated[held], kind="stable")[: len(rows) - keep]
        for i in oldest.tolist():
            del rows[values[i]]
        forgotten: list[int] = held[oldest].tolist()
        self._epoch += 1
        for row in forgotten:
            self._control_weights[row] = 0.0
            self._infraction_weights[row] = 0.0
        self._free.extend(forgotten)
