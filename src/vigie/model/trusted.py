"""Records built on the hot path from values that are valid by construction.

Pydantic validation of a :class:`~vigie.contracts.schemas.Score` and its evidence costs more
than some detectors: the engine builds them from its own floats, already in range, so it
skips the validation, as ``model_construct`` does, and the generic field-by-field work of
``model_construct`` too. Every field must be given (the fast path); otherwise this falls
back to ``model_construct``. The records stay ordinary, immutable pydantic models: they
encode, compare and copy like validated ones (tests/unit/test_engine.py checks that a
Score round-trips through the codec).

Examples
--------
>>> from vigie.contracts.schemas import Contribution
>>> c = trusted(Contribution, {"name": "volume_burst", "value": 7.5, "weight": 0.4})
>>> c == Contribution(name="volume_burst", value=7.5, weight=0.4), sorted(c.model_fields_set)
(True, ['name', 'value', 'weight'])
>>> c.model_dump_json()
'{"name":"volume_burst","value":7.5,"weight":0.4}'
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel

R = TypeVar("R", bound=BaseModel)

_FIELDS: dict[type[BaseModel], tuple[str, ...]] = {}
_set = object.__setattr__


def trusted(cls: type[R], values: dict[str, Any]) -> R:
    """``cls.model_construct(**values)``, faster when ``values`` names every field."""
    names = _FIELDS.get(cls)
    if names is None:
        names = _FIELDS[cls] = tuple(cls.model_fields)
    if len(values) != len(names) or cls.__pydantic_post_init__:
        return cls.model_construct(**values)
    record = cls.__new__(cls)
    _set(record, "__dict__", {name: values[name] for name in names})
    _set(record, "__pydantic_fields_set__", set(names))
    _set(record, "__pydantic_extra__", None)
    _set(record, "__pydantic_private__", None)
    return record
