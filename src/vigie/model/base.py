"""What every Vigie detector shares, River style: parameters, clone, repr, version; and
event time in days.

A detector's constructor stores its arguments under the same names and nothing else
public; :meth:`Detector.clone` rebuilds a fresh, unlearnt detector from them. Learnt state
lives in attributes that start with an underscore, so parameters and state never mix.
Snapshot and restore are ``pickle.dumps`` / ``pickle.loads``.

Examples
--------
>>> class Counter(Detector):
...     def __init__(self, step: int = 1) -> None:
...         self.step = step
...         self._n = 0
>>> c = Counter(step=3)
>>> c._n = 7
>>> c.clone(), c.clone()._n
(Counter(step=3), 0)
"""

from __future__ import annotations

import inspect
from typing import Any, Final, Self

from vigie.contracts.schemas import Declaration

SECONDS_PER_DAY: Final = 86_400.0


def event_day(decl: Declaration) -> float:
    """The declaration's lodging time in days since 1970-01-01 UTC (a datetime's
    ``timestamp()`` is worth computing once: it goes through a timedelta).

    >>> from vigie.contracts.schemas import EXAMPLE_DECLARATION
    >>> event_day(Declaration.model_validate(EXAMPLE_DECLARATION))
    20514.34375
    """
    return decl.lodged_at.timestamp() / SECONDS_PER_DAY


class Detector:
    """Mixin: parameters read back from the constructor signature."""

    def _get_params(self) -> dict[str, Any]:
        """The constructor arguments, read back from the attributes of the same name."""
        # The class's signature, not its __init__'s: a class compiled by mypyc exposes its
        # parameters there only (its __init__ reads as ``(*args, **kwargs)``).
        signature = inspect.signature(type(self))
        named = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        return {
            name: getattr(self, name)
            for name, parameter in signature.parameters.items()
            if parameter.kind in named
        }

    def clone(self) -> Self:
        """A fresh detector with the same parameters and no learnt state."""
        return type(self)(**self._get_params())

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self._get_params().items())
        return f"{type(self).__name__}({params})"
