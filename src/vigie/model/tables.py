"""The model's large tables and what changed in them, so a snapshot can save only that.

Every large dict of the model (keyed cells, profiles, pending evidence) is kept with a
*change set*: the keys of its entries inserted, deleted, moved or updated in place since
the last snapshot. A part lists its tables with ``tables()``; each change of an entry
adds the key to that table's set. :mod:`vigie.worker.increments` builds an incremental
snapshot from the sets (:func:`delta_keys`) and empties them once it is saved.

A change set is a dict of keys to None (:data:`ChangeSet`), not a ``set``: the garbage
collector never tracks a dict of strings to None, where it walks every key of a set at
each full collection. Held by an engine that is never snapshotted, the change sets grow
as large as the tables: 29 % of what a full collection walked (100,000 declarations).

The order of a table's entries is state (the model forgets its oldest entries first), and
a delta keeps it exactly: an entry changed in place keeps its position, and the entries
moved to the end or added since the previous snapshot come after every unchanged one, so
they are the table's tail, read backwards until the first unchanged key.

Examples
--------
>>> before = {"a": 1, "b": 2, "c": 3, "d": 4}
>>> after, changed = dict(before), {}
>>> after["b"] = 20; changed["b"] = None                    # updated in place
>>> after["a"] = after.pop("a") + 10; changed["a"] = None   # moved to the end
>>> del after["c"]; changed["c"] = None                     # forgotten
>>> after["e"] = 5; changed["e"] = None                     # added
>>> deleted, in_place, tail, values = delta_keys(after, changed)
>>> deleted, in_place, tail, values
(['c'], ['b'], ['a', 'e'], [11, 5])
>>> apply_delta(before, (deleted, [(k, after[k]) for k in in_place], list(zip(tail, values))))
>>> list(before.items()) == list(after.items())
True
>>> table, changed = {"a": 1, "b": 2}, {}
>>> evict_oldest(table, changed)
>>> table, list(changed)
({'b': 2}, ['a'])
>>> refreshed(table, changed, "c", cap=1), table, list(changed)  # absent, table full
(None, {}, ['a', 'c', 'b'])
"""

from __future__ import annotations

from itertools import islice
from typing import Any, TypeVar

T = TypeVar("T")

ChangeSet = dict[str, None]
"""The keys of a table changed since the last snapshot, in the order of their first change
(a set the garbage collector does not track)."""

Tracked = tuple[dict[str, Any], ChangeSet]
"""A table and the set of its keys changed since the last snapshot."""

Delta = tuple[list[str], list[tuple[str, Any]], list[tuple[str, Any]]]
"""What changed in a table: keys forgotten, entries updated in place, then the tail of
entries moved or added, in table order."""


def delta_keys(
    table: dict[str, Any], changed: ChangeSet
) -> tuple[list[str], list[str], list[str], list[Any]]:
    """What changed in ``table``, given the keys ``changed`` since the previous snapshot:
    the keys forgotten, those changed in place, then the tail's keys and their values, in
    table order.

    The tail's values are read from the end of the table, in order: looking each key up
    in a table of 100,000 entries cost twice as much.
    """
    tail: list[str] = []
    for key in reversed(table):
        if key not in changed:
            break
        tail.append(key)
    values = list(islice(reversed(table.values()), len(tail)))
    tail.reverse()
    values.reverse()
    deleted: list[str] = []
    in_place: list[str] = []
    if len(tail) == len(changed):  # every key changed is in the tail
        return deleted, in_place, tail, values
    in_tail = set(tail)
    for key in changed:
        if key in in_tail:
            continue
        if key in table:
            in_place.append(key)
        else:
            deleted.append(key)
    return deleted, in_place, tail, values


def apply_delta(table: dict[str, Any], delta: Delta) -> None:
    """Bring ``table`` from the previous snapshot to the one of ``delta``."""
    deleted, in_place, tail = delta
    for key in deleted:
        table.pop(key, None)
    for key, value in in_place:
        table[key] = value
    for key, _ in tail:
        table.pop(key, None)
    for key, value in tail:
        table[key] = value


def evict_oldest(table: dict[str, Any], changed: ChangeSet) -> None:
    """Forget the oldest entry of ``table`` (its first key), noting the change."""
    oldest = next(iter(table))
    del table[oldest]
    changed[oldest] = None


def refreshed(table: dict[str, T], changed: ChangeSet, key: str, cap: int) -> T | None:
    """The entry of ``key``, taken out to be put back last (None when absent; the oldest
    entry is evicted then, when the table holds ``cap``); both keys are noted in
    ``changed``."""
    changed[key] = None
    entry = table.pop(key, None)
    if entry is None and len(table) >= cap:
        evict_oldest(table, changed)
    return entry
