"""What every Vigie detector shares, River style: parameters, clone, repr, version; event
time in days; and the declaration's fields as the models read them (:class:`Declared`).

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


class Declared:
    """The fields of a declaration the models read, held by a compiled class.

    Compiled, a model reads an attribute of this class at a fixed place; of the pydantic
    :class:`~vigie.contracts.schemas.Declaration`, through the ``__getattr__`` hook pydantic
    gives its models (about 400 instructions a read, and the models read 87 a declaration:
    9 % of the worker's instructions). The engine takes the fields once (:func:`declared`)
    and hands them to its detectors; a detector's ``score_one`` and ``learn_one`` take a
    Declaration, as a user calls them.

    Every argument has a default only so that pickle can make one: a compiled class's
    constructor runs its ``__init__``.
    """

    def __init__(
        self,
        declaration_id: str = "",
        item_number: int = 1,
        day: float = 0.0,
        office: str = "",
        declarant: str = "",
        importer: str = "",
        seller: str | None = None,
        commodity_code: str = "",
        origin: str = "",
        dispatch: str | None = None,
        customs_value_eur: float = 0.0,
        net_mass_kg: float = 0.0,
        supplementary_units: float | None = None,
        duty_rate_pct: float = 0.0,
        preference: str | None = None,
        attributes: dict[str, str] | None = None,
        direction: str = "import",
    ) -> None:
        self.declaration_id = declaration_id
        self.item_number = item_number
        self.day = day
        """The lodging time in days since 1970-01-01 UTC (:func:`event_day`)."""
        self.office = office
        self.declarant = declarant
        self.importer = importer
        self.seller = seller
        self.commodity_code = commodity_code
        self.origin = origin
        self.dispatch = dispatch
        self.customs_value_eur = customs_value_eur
        self.net_mass_kg = net_mass_kg
        self.supplementary_units = supplementary_units
        self.duty_rate_pct = duty_rate_pct
        self.preference = preference
        self.attributes = {} if attributes is None else attributes
        self.direction = direction


def declared(decl: Declaration) -> Declared:
    """What the models read of ``decl``, read once (from the model's ``__dict__``: one
    attribute read instead of one a field).

    >>> from vigie.contracts.schemas import EXAMPLE_DECLARATION
    >>> d = declared(Declaration.model_validate(EXAMPLE_DECLARATION))
    >>> d.importer, d.commodity_code, d.customs_value_eur, d.day
    ('FR12345678901', '62034231', 25000.0, 20514.34375)
    """
    f = decl.__dict__
    return Declared(
        f["declaration_id"],
        f["item_number"],
        event_day(decl),
        f["office"],
        f["declarant"],
        f["importer"],
        f["seller"],
        f["commodity_code"],
        f["origin"],
        f["dispatch"],
        f["customs_value_eur"],
        f["net_mass_kg"],
        f["supplementary_units"],
        f["duty_rate_pct"],
        f["preference"],
        f["attributes"],
        f["direction"],
    )


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
