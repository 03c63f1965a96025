"""Operator compliance history: infraction rates of importers and declarants.

Each operator's control results are counted; its rate is smoothed toward the global rate
with a prior strength estimated from the labels (empirical Bayes, the case memory's
machinery on one level): the intra-class correlation of the outcomes of one operator's
controls. Where operator identifiers carry nothing, the correlation goes to zero and the
strength to :data:`MAX_STRENGTH`, so the history stays inert; where they do, an
operator's record counts. The evidence is the log odds ratio of each operator's rate to
the global rate. Why: docs/learning-from-controls.md.

Examples
--------
>>> history = OperatorHistory()
>>> for i in range(400):
...     history.learn(("BAD", f"D{i % 7}"), i % 2 == 0)
...     history.learn((f"OK{i % 50}", f"D{i % 7}"), False)
>>> bad, ok = history.read(("BAD", "D1")), history.read(("OK3", "D1"))
>>> bad[0] > 1.0 > 0.0 > ok[0]
True
"""

from __future__ import annotations

import math
from typing import Final

from vigie.model.tables import ChangeSet, Tracked, evict_oldest

ROLES: Final[tuple[str, ...]] = ("importer", "declarant")
"""The operators whose history is kept, in the order of the keys."""
MAX_STRENGTH: Final = 1_000.0
"""Prior strength (pseudo-controls) when operators' outcomes are uncorrelated."""
_MIN_STRENGTH: Final = 0.5
_ICC_PRIOR_WEIGHT: Final = 5.0
_PAIRS_PER_UPDATE: Final = 32
_EPS: Final = 1e-6


def _logit(p: float) -> float:
    p = min(max(p, _EPS), 1.0 - _EPS)
    return math.log(p / (1.0 - p))


class OperatorHistory:
    """Smoothed infraction rates per operator of each role of :data:`ROLES`.

    Parameters
    ----------
    max_keys
        Operators remembered per role (least recently learnt forgotten).
    """

    def __init__(self, max_keys: int = 500_000) -> None:
        self.max_keys = max_keys
        # operator -> controls + infractions j: two numbers in one object (as the memory's)
        self._cells: list[dict[str, complex]] = [{} for _ in ROLES]
        self._cells_changed: list[ChangeSet] = [{} for _ in ROLES]
        self._cov = [0.0] * len(ROLES)
        self._var = [0.0] * len(ROLES)
        self._strength = [MAX_STRENGTH] * len(ROLES)
        self._controls = 0.0
        self._infractions = 0.0
        self._pairs = 0

    def tables(self) -> list[Tracked]:
        """The cells of each role and their change sets (:mod:`vigie.model.tables`)."""
        return list(zip(self._cells, self._cells_changed, strict=True))

    @property
    def strengths(self) -> list[float]:
        """The learnt prior strength of each role."""
        return list(self._strength)

    def read(self, keys: tuple[str, ...]) -> list[float]:
        """Per role, the log odds ratio of the operator's smoothed rate to the global one."""
        root = (self._infractions + 1.0) / (self._controls + 2.0)
        out = [0.0] * len(ROLES)
        for k in range(len(ROLES)):
            cell = self._cells[k].get(keys[k])
            if cell is None:
                continue
            m = self._strength[k]
            out[k] = _logit((cell.imag + m * root) / (cell.real + m)) - _logit(root)
        return out

    def learn(self, keys: tuple[str, ...], fraud: bool) -> None:
        """Count one control result of the declaration of these operators."""
        y = 1.0 if fraud else 0.0
        root = (self._infractions + 1.0) / (self._controls + 2.0)
        for k in range(len(ROLES)):
            cells, changed = self._cells[k], self._cells_changed[k]
            changed[keys[k]] = None
            cell = cells.pop(keys[k], None)
            if cell is None:
                if len(cells) >= self.max_keys:
                    evict_oldest(cells, changed)
                n = s = 0.0
            else:
                n, s = cell.real, cell.imag
                self._cov[k] += (y - root) * (s - n * root)
                self._var[k] += n * root * (1.0 - root)
                self._pairs += 1
            cells[keys[k]] = complex(n + 1.0, s + y)
        self._controls += 1.0
        self._infractions += y
        if self._pairs >= _PAIRS_PER_UPDATE:
            self._pairs = 0
            for k in range(len(ROLES)):
                icc = self._cov[k] / (self._var[k] + _ICC_PRIOR_WEIGHT)
                m = (1.0 - icc) / icc if icc > 1.0 / MAX_STRENGTH else MAX_STRENGTH
                self._strength[k] = min(max(m, _MIN_STRENGTH), MAX_STRENGTH)
