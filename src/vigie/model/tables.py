"""The model's large tables and what changed in them, so a snapshot can save only that.

Every large dict of the model (keyed cells, profiles, pending evidence) is kept with a
*change set*: the keys of its entries inserted, deleted, moved or updated in place since
the last snapshot. A part lists its tables with ``tables()``; each change of an entry
adds the key to that table's set. :mod:`vigie.worker.increments` builds an incremental
snapshot from the sets and empties them once it is saved.

Examples
--------
>>> table, changed = {"a": 1, "b": 2}, set()
>>> evict_oldest(table, changed)
>>> table, changed
({'b': 2}, {'a'})
"""

from __future__ import annotations

from typing import Any

Tracked = tuple[dict[str, Any], set[str]]
"""A table and the set of its keys changed since the last snapshot."""


def evict_oldest(table: dict[str, Any], changed: set[str]) -> None:
    """Forget the oldest entry of ``table`` (its first key), noting the change."""
    oldest = next(iter(table))
    del table[oldest]
    changed.add(oldest)
