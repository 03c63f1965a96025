"""A declaration item's id is the idempotency key of the whole system.

The worker remembers, per partition, a digest of the content of every item it scored
(the last ``capacity`` of them). A record whose id it already scored is:

* a **repeat** when its content is the same: acknowledged, neither scored nor learnt
  again (a producer that re-sends after a failure changes nothing);
* an **amendment** when its content differs: scored again as the next revision (a new
  Score, and an Alert with its own id if selected), never learnt again; a later control
  result is learnt on the features of the revision the engine learnt (the first).

An amendment keeps the lodging time of the declaration it amends; one that changes the
importer reaches another partition and is scored there as a new declaration. The rules
and their reasons: docs/idempotency.md.

Examples
--------
>>> from vigie.contracts.schemas import EXAMPLE_DECLARATION, Declaration
>>> seen = SeenItems(capacity=2)
>>> first = Declaration.model_validate(EXAMPLE_DECLARATION)
>>> item = seen.classify(first)
>>> item.kind, item.revision
('new', 1)
>>> seen.remember(item)
>>> seen.classify(first).kind
'repeat'
>>> amended = seen.classify(first.model_copy(update={"customs_value_eur": 100.0}))
>>> amended.kind, amended.revision
('amendment', 2)

The digest is taken over the validated values (:func:`digest`). Items remembered by a
worker before it (snapshot format 6 and earlier) carry the digest of the canonical JSON
(:func:`~vigie.contracts.codec.content_digest`, the warehouse's); a state restored from
such a snapshot goes on with that one, so a repeat of an item scored before an upgrade is
still a repeat.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Literal, NamedTuple

import orjson

from vigie.contracts.codec import content_digest, digest64
from vigie.contracts.schemas import Declaration
from vigie.model.tables import ChangeSet, Tracked


class Item(NamedTuple):
    """What is known of a declaration item arriving now."""

    kind: Literal["new", "repeat", "amendment"]
    revision: int
    """The revision it is scored as (a repeat: the revision it repeats)."""
    key: str
    digest: int


def identity(decl: Declaration) -> str:
    """The item's idempotency key: declaration id and item number."""
    return f"{decl.declaration_id}/{decl.item_number}"


def digest(decl: Declaration) -> int:
    """A 64-bit digest of the item's validated values, in the order of the fields (key
    order, number formats and time zones of the original bytes do not matter: validation
    made every amount a float and every time UTC).

    orjson writes the values as they are, a third of the work of the record's JSON
    (:func:`~vigie.contracts.codec.content_digest`), over half the bytes.

    >>> from vigie.contracts.schemas import EXAMPLE_DECLARATION
    >>> resent = {**EXAMPLE_DECLARATION, "lodged_at": "2026-03-02T09:15:00+01:00",
    ...     "customs_value_eur": 25000}
    >>> digest(Declaration.model_validate(resent)) == digest(
    ...     Declaration.model_validate(EXAMPLE_DECLARATION))
    True
    """
    return digest64(orjson.dumps(list(decl.__dict__.values())))


DIGESTS: dict[int, Callable[[Declaration], int]] = {1: content_digest, 2: digest}
"""The digests by scheme: a state keeps the scheme its remembered items were taken with."""


class SeenItems:
    """The digest and last revision of the latest ``capacity`` items scored.

    Parameters
    ----------
    capacity
        Items remembered; the oldest are forgotten first (a repeat of an item this old is
        scored again as new).
    """

    def __init__(self, capacity: int = 400_000) -> None:
        self.capacity = capacity
        self._items: OrderedDict[str, tuple[int, int]] = OrderedDict()
        self._changed: ChangeSet = {}
        self._digest_scheme = max(DIGESTS)

    def tables(self) -> list[Tracked]:
        """The items and their change set (:mod:`vigie.model.tables`)."""
        return [(self._items, self._changed)]

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)
        self.__dict__.setdefault("_changed", {})  # snapshots before incremental ones
        self.__dict__.setdefault("_digest_scheme", 1)  # items digested as JSON (format <= 6)

    def __len__(self) -> int:
        return len(self._items)

    def classify(self, decl: Declaration) -> Item:
        """Whether ``decl`` is new, a repeat of an item scored, or an amendment of one."""
        key, content = identity(decl), DIGESTS[self._digest_scheme](decl)
        known = self._items.get(key)
        if known is None:
            return Item("new", 1, key, content)
        if known[0] == content:
            return Item("repeat", known[1], key, content)
        return Item("amendment", known[1] + 1, key, content)

    def remember(self, item: Item) -> None:
        """Record that ``item`` was scored."""
        self._items[item.key] = (item.digest, item.revision)
        self._items.move_to_end(item.key)
        self._changed[item.key] = None
        while len(self._items) > self.capacity:
            self._changed[self._items.popitem(last=False)[0]] = None
