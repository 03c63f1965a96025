"""Row sources for ``vigie replay``: JSON Lines and CSV files, with each record's exact bytes.

A reader yields one :class:`SourceRecord` per line (JSONL) or row (CSV): its line number,
the original bytes without the line terminator (what goes to the dead-letter topic when the
record is rejected), the CSV row by header and, when the row itself is broken (wrong
number of columns, invalid UTF-8, a blank line), the :class:`~vigie.errors.DecodeError`
that says so. Readers never raise on bad content: every line is accounted for.

>>> import tempfile
>>> path = Path(tempfile.mkdtemp()) / "rows.csv"
>>> _ = path.write_bytes(b"a,b\\n1,2\\n3\\n")
>>> for rec in read_records(path):
...     print(rec.line, rec.raw, rec.row, rec.error and rec.error.reason)
2 b'1,2' {'a': '1', 'b': '2'} None
3 b'3' {'a': '3'} csv_columns
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, NamedTuple

from vigie.errors import ConfigurationError, DecodeError

JSONL_SUFFIXES = frozenset({".jsonl", ".ndjson", ".json"})
CSV_SUFFIXES = frozenset({".csv"})

ProgressHook = Callable[[int], None]
"""Called with the number of bytes read since the previous call."""


class SourceRecord(NamedTuple):
    """One line or row of an input file."""

    line: int
    """1-based line number where the record starts."""
    raw: bytes
    """The record's original bytes, without its line terminator."""
    row: dict[str, str] | None
    """CSV: the cells by header name. JSONL: None (``raw`` is the JSON text)."""
    error: DecodeError | None
    """A problem of the row itself, found before any decoding."""


def file_format(path: Path) -> str:
    """``"jsonl"`` or ``"csv"``, from the file's extension.

    >>> file_format(Path("d.jsonl")), file_format(Path("train.CSV"))
    ('jsonl', 'csv')
    """
    suffix = path.suffix.lower()
    if suffix in JSONL_SUFFIXES:
        return "jsonl"
    if suffix in CSV_SUFFIXES:
        return "csv"
    known = ", ".join(sorted(JSONL_SUFFIXES | CSV_SUFFIXES))
    raise ConfigurationError(f"{path}: unknown file type {suffix!r} (expected one of {known})")


def read_records(path: Path, progress: ProgressHook | None = None) -> Iterator[SourceRecord]:
    """Every record of a JSONL or CSV file, chosen by extension."""
    if file_format(path) == "jsonl":
        return read_jsonl(path, progress)
    return read_csv(path, progress)


def read_jsonl(path: Path, progress: ProgressHook | None = None) -> Iterator[SourceRecord]:
    """One record per line; blank lines are records too (they are rejected as empty).

    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "d.jsonl"
    >>> _ = path.write_bytes(b'{"a": 1}\\r\\n\\n[2]')
    >>> [(r.line, r.raw) for r in read_jsonl(path)]
    [(1, b'{"a": 1}'), (2, b''), (3, b'[2]')]
    """
    with path.open("rb") as handle:
        pending = 0
        for number, line in enumerate(handle, start=1):
            pending += len(line)
            if progress is not None and pending >= 1 << 16:
                progress(pending)
                pending = 0
            yield SourceRecord(number, _strip_eol(line), None, None)
        if progress is not None and pending:
            progress(pending)


def read_csv(path: Path, progress: ProgressHook | None = None) -> Iterator[SourceRecord]:
    """One record per CSV row (the first row is the header), keeping each row's bytes.

    A row whose number of cells differs from the header's, a blank line and a row that
    is not valid UTF-8 come with their :class:`DecodeError`.
    """
    with path.open("rb") as handle:
        lines = _LineTracker(handle, progress)
        reader = csv.reader(lines)
        header = next(reader, None)
        if header is None:
            return
        if header:
            header[0] = header[0].removeprefix("\ufeff")
        lines.take()
        for cells in reader:
            start, raw, valid_utf8 = lines.take()
            row = dict(zip(header, cells, strict=False))
            yield SourceRecord(start, raw, row, _check_row(header, cells, valid_utf8))
        lines.finish()


def _check_row(header: list[str], cells: list[str], valid_utf8: bool) -> DecodeError | None:
    if not valid_utf8:
        return invalid_utf8_error()
    if not cells:
        return DecodeError("empty", [{"loc": [], "msg": "blank line", "type": "empty"}])
    if len(cells) != len(header):
        missing = header[len(cells) :]
        detail = f"; missing: {', '.join(repr(c) for c in missing)}" if missing else ""
        msg = f"row has {len(cells)} cells, the header names {len(header)} columns{detail}"
        return DecodeError("csv_columns", [{"loc": [], "msg": msg, "type": "csv_columns"}])
    return None


def invalid_utf8_error() -> DecodeError:
    """The error for bytes that are not UTF-8 text."""
    return DecodeError(
        "invalid_utf8", [{"loc": [], "msg": "bytes are not valid UTF-8 text", "type": "utf8"}]
    )


class _LineTracker:
    """Feeds text lines to :mod:`csv` and remembers the bytes of the row being read.

    Undecodable bytes are carried as surrogate escapes so that the original bytes can be
    given back exactly.
    """

    def __init__(self, handle: IO[bytes], progress: ProgressHook | None) -> None:
        self.handle = handle
        self.progress = progress
        self.buffer: list[bytes] = []
        self.valid = True
        self.line = 0
        self.start = 1
        self.pending = 0

    def __iter__(self) -> _LineTracker:
        return self

    def __next__(self) -> str:
        line = self.handle.readline()
        if not line:
            raise StopIteration
        self.line += 1
        self.buffer.append(line)
        self.pending += len(line)
        if self.progress is not None and self.pending >= 1 << 16:
            self.progress(self.pending)
            self.pending = 0
        try:
            return line.decode("utf-8")
        except UnicodeDecodeError:
            self.valid = False
            return line.decode("utf-8", errors="surrogateescape")

    def take(self) -> tuple[int, bytes, bool]:
        """The current row's start line, bytes and UTF-8 validity; start the next row."""
        taken = (self.start, _strip_eol(b"".join(self.buffer)), self.valid)
        self.buffer.clear()
        self.valid = True
        self.start = self.line + 1
        return taken

    def finish(self) -> None:
        if self.progress is not None and self.pending:
            self.progress(self.pending)
            self.pending = 0


def _strip_eol(line: bytes) -> bytes:
    if line.endswith(b"\n"):
        line = line[:-1]
        if line.endswith(b"\r"):
            line = line[:-1]
    return line
