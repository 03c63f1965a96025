"""Row sources of ``vigie replay``: every line accounted for, original bytes kept exactly."""

from __future__ import annotations

from pathlib import Path

import pytest

from vigie.errors import ConfigurationError
from vigie.ingest.readers import file_format, read_csv, read_jsonl, read_records


def write(tmp_path: Path, name: str, content: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content)
    return path


def test_jsonl_keeps_each_line_exactly_without_its_terminator(tmp_path: Path) -> None:
    lines = [b'{"a": 1}', b"", b"  ", b"\xff\xfe{", b'{"b": "\xc3\xa9"}']
    path = write(tmp_path, "d.jsonl", b"\r\n".join(lines[:2]) + b"\n" + b"\n".join(lines[2:]))
    records = list(read_jsonl(path))
    assert [r.raw for r in records] == lines
    assert [r.line for r in records] == [1, 2, 3, 4, 5]
    assert all(r.row is None and r.error is None for r in records)


def test_jsonl_final_newline_is_not_a_record(tmp_path: Path) -> None:
    path = write(tmp_path, "d.ndjson", b"{}\n{}\n")
    assert len(list(read_records(path))) == 2


def test_progress_hook_sees_every_byte(tmp_path: Path) -> None:
    content = b"".join(b'{"n": %d}\n' % i for i in range(20_000))
    for name in ("d.jsonl", "d.csv"):
        path = write(tmp_path, name, b"n\n" + content if name.endswith("csv") else content)
        seen: list[int] = []
        list(read_records(path, seen.append))
        assert sum(seen) == path.stat().st_size
        assert len(seen) > 1


def test_csv_rows_by_header_with_their_bytes(tmp_path: Path) -> None:
    content = b'\xef\xbb\xbfid,note\r\n1,plain\r\n2,"two\nlines, quoted"\r\n3,last'
    records = list(read_csv(write(tmp_path, "d.csv", content)))
    assert [r.row for r in records] == [
        {"id": "1", "note": "plain"},
        {"id": "2", "note": "two\nlines, quoted"},
        {"id": "3", "note": "last"},
    ]
    assert [r.raw for r in records] == [b"1,plain", b'2,"two\nlines, quoted"', b"3,last"]
    assert [r.line for r in records] == [2, 3, 5]
    assert all(r.error is None for r in records)


def test_csv_broken_rows_come_with_their_error(tmp_path: Path) -> None:
    content = b"a,b,c\n1,2\n\n1,2,3,4\n1,\xff,3\n1,2,3\n"
    records = list(read_csv(write(tmp_path, "d.csv", content)))
    reasons = [r.error.reason if r.error else None for r in records]
    assert reasons == ["csv_columns", "empty", "csv_columns", "invalid_utf8", None]
    assert records[0].error is not None
    assert "missing: 'c'" in records[0].error.errors[0]["msg"]
    assert records[3].raw == b"1,\xff,3"


def test_empty_csv_has_no_records(tmp_path: Path) -> None:
    assert list(read_csv(write(tmp_path, "d.csv", b""))) == []
    assert list(read_csv(write(tmp_path, "h.csv", b"a,b\n"))) == []


def test_file_format_by_extension() -> None:
    assert file_format(Path("x.JSONL")) == "jsonl"
    with pytest.raises(ConfigurationError, match=r"unknown file type '\.parquet'"):
        file_format(Path("x.parquet"))
