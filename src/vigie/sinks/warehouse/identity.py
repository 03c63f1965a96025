"""Each record stored once, in raw rows: a batch is cut down to what the table lacks.

Before each insert, the writer asks the table which of the batch's identities it already
holds (one query on the sorting key's first column) and drops those rows, and the repeats
inside the batch. A record replayed for any reason (the writer's own batch replayed after
a crash, cut differently; a Score the worker sent again after a restart, at a new offset;
a declaration a producer re-sent) is then never inserted twice, so the raw rows, not only
``FINAL``, hold each record once. Why every batch and not only the first after a restart:
the worker's replays reach the writer as new records, long after any restart of the
writer (docs/warehouse.md).

A *revised* table (declarations) keeps an identity's other contents as revisions: a row
whose digest equals the latest stored revision's is a repeat; another digest is the
next revision (the worker numbers the Scores of amendments the same way).

Examples
--------
>>> from vigie.sinks.warehouse.rows import TABLES
>>> table = TABLES["scores"]
>>> at = {name: i for i, name in enumerate(table.columns)}
>>> def score(did, revision):
...     row = [None] * len(table.columns)
...     row[at["declaration_id"]], row[at["item_number"]], row[at["revision"]] = did, 1, revision
...     return row
>>> stored = {("D-1", 1, 1)}
>>> [r[0] for r in unseen(table, [score("D-1", 1), score("D-2", 1), score("D-2", 1)], stored)]
['D-2']
>>> revised = TABLES["declarations"]
>>> pos = {name: i for i, name in enumerate(revised.columns)}
>>> def decl(did, digest):
...     row = [None] * len(revised.columns)
...     row[pos["declaration_id"]], row[pos["item_number"]], row[pos["digest"]] = did, 1, digest
...     row[pos["revision"]] = 1
...     return row
>>> latest = {("D-1", 1): (1, 7)}
>>> kept = revisions(revised, [decl("D-1", 7), decl("D-1", 8), decl("D-1", 8)], latest)
>>> [(r[pos["declaration_id"]], r[pos["revision"]]) for r in kept]
[('D-1', 2)]
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from vigie.sinks.warehouse.rows import Row, Table

Identity = tuple[Any, ...]


def stored_identities(client: Any, table: Table, rows: Sequence[Row]) -> set[Identity]:
    """The identities among ``rows``' that ``table`` already holds (raw rows, no FINAL)."""
    among = _keys(table, rows)
    if not among:
        return set()
    sql = f"SELECT {', '.join(table.identity)} FROM {table.name} WHERE {among}"
    return {tuple(row) for row in client.query(sql).result_rows}


def latest_revisions(
    client: Any, table: Table, rows: Sequence[Row]
) -> dict[Identity, tuple[int, int]]:
    """Per identity among ``rows``' already stored: its latest (revision, digest)."""
    among = _keys(table, rows)
    if not among:
        return {}
    key = ", ".join(table.identity)
    sql = (
        f"SELECT {key}, max(revision), argMax(digest, revision) FROM {table.name} "
        f"WHERE {among} GROUP BY {key}"
    )
    width = len(table.identity)
    return {
        tuple(row[:width]): (int(row[width]), int(row[width + 1]))
        for row in client.query(sql).result_rows
    }


def fresh_rows(client: Any, table: Table, rows: Sequence[Row]) -> list[Row]:
    """The rows of ``rows`` to insert: none whose record ``table`` already holds."""
    if table.revised:
        return revisions(table, rows, latest_revisions(client, table, rows))
    return unseen(table, rows, stored_identities(client, table, rows))


def unseen(table: Table, rows: Iterable[Row], stored: set[Identity]) -> list[Row]:
    """``rows`` without those whose identity is in ``stored`` or came earlier in ``rows``."""
    at = [table.columns.index(name) for name in table.identity]
    seen = set(stored)
    kept = []
    for row in rows:
        identity = tuple(row[i] for i in at)
        if identity not in seen:
            seen.add(identity)
            kept.append(row)
    return kept


def revisions(
    table: Table, rows: Iterable[Row], latest: dict[Identity, tuple[int, int]]
) -> list[Row]:
    """``rows`` numbered as revisions of their identity; repeats of the latest dropped."""
    at = [table.columns.index(name) for name in table.identity]
    revision_at, digest_at = table.columns.index("revision"), table.columns.index("digest")
    known = dict(latest)
    kept = []
    for row in rows:
        identity = tuple(row[i] for i in at)
        previous = known.get(identity)
        if previous is not None and previous[1] == row[digest_at]:
            continue
        revision = 1 if previous is None else previous[0] + 1
        known[identity] = (revision, row[digest_at])
        kept.append([*row[:revision_at], revision, *row[revision_at + 1 :]])
    return kept


def _keys(table: Table, rows: Sequence[Row]) -> str:
    """``<first identity column> IN ('...', ...)`` for the rows' values ('' for none).

    Written here rather than bound by the driver, whose binding of a few thousand values
    costs more than the query: the values are escaped as ClickHouse string literals.

    >>> from vigie.sinks.warehouse.rows import TABLES
    >>> print(_keys(TABLES["dead_letters"], [["a'b"], ["c"], ["a'b"]]))
    letter_id IN ('a\\'b', 'c')
    """
    at = table.columns.index(table.identity[0])
    values = sorted({str(row[at]) for row in rows})
    if not values:
        return ""
    quoted = ", ".join(_literal(v) for v in values)
    return f"{table.identity[0]} IN ({quoted})"


def _literal(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
