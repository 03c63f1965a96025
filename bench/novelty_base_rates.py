"""How often genuine declarations already show what an injected atypical fraud shows.

``vigie evaluate --inject new-chapter`` gives a declaration an HS6 code of a chapter its
importer never declared; ``new-origin`` an origin never seen for its HS6. Such a fraud can
only be told apart by that novelty as far as genuine declarations lack it. This reads a
labelled history, as ``vigie evaluate`` does, and prints for the measured declarations
(from ``--from``) the share of genuine ones that are already novel in each way, by how many
declarations the importer (or the HS6) had lodged before. A share near 1 says the kind's
own signal carries little in that history: what catches its frauds there is what the
change breaks besides (a value that does not fit the new code, a route, an origin).

Usage::

    python bench/novelty_base_rates.py ../shared/data/customs-kr/train.csv \\
        ../shared/data/customs-kr/valid.csv --mapping customs-kr --from 2021-01-01

>>> from datetime import UTC, datetime
>>> rows = [("I1", "620342", "CN"), ("I1", "620343", "CN"), ("I1", "850440", "VN"),
...         ("I2", "620342", "VN")]
>>> at = datetime(2021, 1, 1, tzinfo=UTC)
>>> shares = novelty_shares(rows, [at] * 4, [True] * 4, start=at)
>>> shares["chapter new for the importer"]["all"]
(2, 0.5)
>>> shares["origin new for the HS6"]["all"]
(1, 1.0)
"""

from __future__ import annotations

import argparse
from collections import Counter, defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

BINS = ((1, 1, "1"), (2, 3, "2-3"), (4, 9, "4-9"), (10, 49, "10-49"), (50, 10**12, "50+"))
"""Earlier declarations of the context (importer, or HS6), as bins of the report."""

Shares = dict[str, dict[str, tuple[int, float]]]
"""Per kind, per bin of earlier declarations (and ``all``): rows, share already novel."""


def novelty_shares(
    rows: Sequence[tuple[str, str, str]],
    lodged: Sequence[datetime],
    genuine: Sequence[bool],
    start: datetime,
) -> Shares:
    """For ``rows`` (importer, HS6, origin) in lodging order: per kind, the share of the
    genuine rows lodged from ``start`` whose context was seen before (in any row) that are
    novel in the kind's way."""
    seen_chapters: dict[str, set[str]] = defaultdict(set)
    seen_origins: dict[str, set[str]] = defaultdict(set)
    lodged_by: Counter[str] = Counter()
    counts: dict[str, dict[str, list[int]]] = {
        "chapter new for the importer": defaultdict(lambda: [0, 0]),
        "origin new for the HS6": defaultdict(lambda: [0, 0]),
    }
    for (importer, hs6, origin), at, clean in zip(rows, lodged, genuine, strict=True):
        measured = clean and at >= start
        for kind, context, known, value in (
            ("chapter new for the importer", "i:" + importer, seen_chapters[importer], hs6[:2]),
            ("origin new for the HS6", "h:" + hs6, seen_origins[hs6], origin),
        ):
            earlier = lodged_by[context]
            if measured and earlier:
                for key in ("all", _bin(earlier)):
                    counts[kind][key][0] += 1
                    counts[kind][key][1] += value not in known
            known.add(value)
        lodged_by["i:" + importer] += 1
        lodged_by["h:" + hs6] += 1
    return {kind: {key: (n, round(novel / n, 3)) for key, (n, novel) in bins.items()}
            for kind, bins in counts.items()}  # fmt: skip


def _bin(earlier: int) -> str:
    return next(name for low, high, name in BINS if low <= earlier <= high)


def main() -> None:
    from vigie.cli.evaluate import default_rejects, read_examples
    from vigie.settings import get_settings

    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--mapping", default=None)
    parser.add_argument("--from", dest="start", default="1970-01-01")
    args = parser.parse_args()
    rejects = default_rejects(get_settings())  # where `vigie evaluate` writes its own
    examples, _ = read_examples(args.files, args.mapping, None, None, rejects)
    declarations = [e.declaration for e in examples]
    rows = [(d.importer, d.commodity_code[:6], d.origin) for d in declarations]
    genuine = [not e.label for e in examples]
    start = datetime.fromisoformat(args.start).replace(tzinfo=UTC)
    shares = novelty_shares(rows, [d.lodged_at for d in declarations], genuine, start)
    print(f"declarations: {len(rows):,}, genuine: {sum(genuine):,} (measured from {start.date()})")
    for kind, bins in shares.items():
        n, share = bins["all"]
        print(f"{kind}: {share:.3f} of {n:,} with a context seen before")
        for _, _, name in BINS:
            if name in bins:
                print(f"  {name:>6} earlier: {bins[name][1]:.3f} of {bins[name][0]:,}")


if __name__ == "__main__":
    main()
