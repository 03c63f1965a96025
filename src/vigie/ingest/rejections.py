"""What was rejected, and whether a whole input looks wrong rather than a few records.

:class:`Rejections` counts rejected records by reason and keeps the first few, described
with their file and line. :func:`verdict` says when most records of an input were
rejected (a wrong or missing column mapping, the wrong kind of file), with those first
reasons and a hint; ``vigie replay`` and ``vigie evaluate`` then exit with status 1.

>>> from vigie.errors import DecodeError
>>> seen = Rejections()
>>> for line in (2, 3):
...     seen.add(f"kr.csv:{line}", DecodeError("mapping", [
...         {"loc": ["declaration_id"], "msg": "column 'ID' is missing or empty"}]))
>>> print(verdict(0, seen, [Path("kr.csv")], "my-mapping"))
2 of 2 records rejected, none accepted. The first:
  kr.csv:2: mapping: declaration_id: column 'ID' is missing or empty
  kr.csv:3: mapping: declaration_id: column 'ID' is missing or empty
Wrong mapping? my-mapping does not fit these files: check its column names against \
the files' header (shipped mappings: customs-kr).
>>> verdict(5, seen, [Path("kr.csv")], "my-mapping") is None
True
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from vigie.errors import DecodeError

FIRST = 3
"""Rejections described in a verdict."""
ERRORS = 3
"""Errors described per rejection (a record without a mapping may have dozens)."""


@dataclass
class Rejections:
    """Rejected records: how many of each reason, and the first few described."""

    reasons: Counter[str] = field(default_factory=Counter)
    first: list[str] = field(default_factory=list)

    @property
    def count(self) -> int:
        return sum(self.reasons.values())

    def add(self, source: str, error: DecodeError) -> None:
        """Count one rejected record, from ``source`` (``file:line``)."""
        self.reasons[error.reason] += 1
        if len(self.first) < FIRST:
            self.first.append(f"{source}: {describe(error)}")


def describe(error: DecodeError) -> str:
    """A rejection in one line: its reason and its first few errors.

    >>> many = [{"loc": [f"f{i}"], "msg": "Field required"} for i in range(5)]
    >>> describe(DecodeError("schema", many))
    'schema: f0: Field required; f1: Field required; f2: Field required; and 2 more'
    """
    shown = [
        f"{'.'.join(str(p) for p in e.get('loc', ())) or '<record>'}: {e.get('msg', '')}"
        for e in error.errors[:ERRORS]
    ]
    more = len(error.errors) - ERRORS
    return f"{error.reason}: " + "; ".join(shown) + (f"; and {more} more" if more > 0 else "")


def verdict(
    accepted: int,
    rejections: Rejections,
    files: Sequence[Path],
    mapping: str | None,
    record: str = "declaration",
) -> str | None:
    """The error to exit with when most records were rejected, or None; ``record`` names
    what each line should be."""
    rejected = rejections.count
    if rejected <= accepted:
        return None
    total = rejected + accepted
    head = f"{rejected:,} of {total:,} records rejected, " + (
        "none accepted." if not accepted else f"{accepted:,} accepted."
    )
    lines = [f"{head} The first:", *(f"  {line}" for line in rejections.first)]
    lines.append(_hint(files, mapping, record))
    return "\n".join(lines)


def _hint(files: Sequence[Path], mapping: str | None, record: str) -> str:
    from vigie.ingest.mappings import shipped_mappings

    shipped = ", ".join(shipped_mappings())
    if mapping is not None:
        return (
            f"Wrong mapping? {mapping} does not fit these files: check its column names "
            f"against the files' header (shipped mappings: {shipped})."
        )
    if any(path.suffix.lower() == ".csv" for path in files):
        return (
            f"Missing mapping? Without --mapping, a CSV header must name the {record}'s "
            f"fields: give -m/--mapping (shipped: {shipped}) or a TOML mapping file."
        )
    return (
        f"Are these {record}s? Each line must be one {record} in JSON, with the fields "
        "of its schema, or give -m/--mapping for another format."
    )
