"""Which engine a snapshot was written by: the class and attribute names of its parts.

Unpickling does not run ``__init__``, so a snapshot taken before an upgrade that added,
removed or renamed an attribute would load without error and fail later, on every record.
A snapshot therefore records the layout of the engine that wrote it, and a restore
compares it with the layout of a fresh engine of the running code.

Examples
--------
>>> class Part:
...     def __init__(self) -> None:
...         self.n, self.rate = 0, 0.5
>>> Part.__module__ = "vigie.example"
>>> layout(Part())
{'engine': ('Part', 'n', 'rate')}
>>> old = {"engine": ("Engine", "n"), "engine.part": ("Part", "rate")}
>>> layout_differences(old, {"engine": ("Engine", "n", "seen"), "engine.part": ("Cell",)})
['engine.seen: missing', 'engine.part: Part, now Cell']
"""

from __future__ import annotations

from typing import Any

Layout = dict[str, tuple[str, ...]]
"""An object's class and attribute names, and those of its Vigie parts, by path."""


def layout(obj: Any, path: str = "engine") -> Layout:
    """The class and attribute names of ``obj`` and, recursively, of its Vigie parts.

    Values that are not Vigie objects (caches, River models) may change type as a model
    learns, so only their names count.
    """
    names = attributes(obj)
    found = {path: (type(obj).__name__, *sorted(names))}
    for name, value in sorted(names.items()):
        if type(value).__module__.startswith("vigie."):
            found |= layout(value, f"{path}.{name}")
    return found


def layout_differences(recorded: Layout, fresh: Layout) -> list[str]:
    """How a snapshot's recorded layout differs from a fresh engine's (empty: the same)."""
    found = []
    for path, (kind, *names) in fresh.items():
        if path not in recorded:
            continue  # its parent's difference says it
        old_kind, *old_names = recorded[path]
        if old_kind != kind:
            found.append(f"{path}: {old_kind}, now {kind}")
            continue
        found += [f"{path}.{k}: missing" for k in names if k not in old_names]
        found += [f"{path}.{k}: no longer used" for k in old_names if k not in names]
    return found


def attributes(obj: Any) -> dict[str, Any]:
    """The attributes an object pickles, by name (none when it pickles something else).

    ``__getstate__`` answers for plain, slotted and compiled classes alike: a dict, or
    ``(dict or None, slots dict)``; a class that pickles a tuple of its own is opaque.

    >>> attributes(ValueError("x")), attributes(1)
    ({}, {})
    """
    getstate = getattr(obj, "__getstate__", None)
    state = getstate() if getstate is not None else None
    if isinstance(state, dict):
        return state
    if isinstance(state, tuple) and len(state) == 2 and isinstance(state[1], dict):
        return {**(state[0] or {}), **state[1]}
    return {}
