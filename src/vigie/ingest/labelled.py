"""Labelled files for an offline evaluation, read as ``vigie replay`` reads them.

:class:`LabelledFiles` reads declarations (JSONL, or CSV and JSONL through a column
mapping that may also yield each row's control result), control results (JSONL) and the
generator's ground truth (JSONL). Every record goes through the same readers and
validation as a replay (:mod:`~vigie.ingest.readers`, :class:`RecordDecoder`); a rejected
one becomes a dead letter, with its file and line, written to a JSON lines file (the
records of the dead-letter topic) instead of Kafka, and counted in :attr:`rejections`.

>>> import tempfile
>>> from vigie.contracts.schemas import EXAMPLE_DECLARATION
>>> folder = Path(tempfile.mkdtemp())
>>> good = orjson.dumps(EXAMPLE_DECLARATION)
>>> _ = (folder / "d.jsonl").write_bytes(good + b"\\n{broken\\n")
>>> files = LabelledFiles(None, folder / "rejected.jsonl")
>>> [d.declaration_id for d, _ in files.declarations([folder / "d.jsonl"])]
['FR26IM0000001']
>>> print(files.rejections.first[0])
/...d.jsonl:2: invalid_json: <record>: not valid JSON: ...
>>> files.close(); len((folder / "rejected.jsonl").read_bytes().splitlines())
1
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import orjson

from vigie.contracts.catalogue import CONTROL_RESULTS, DECLARATIONS, Topic
from vigie.contracts.codec import dead_letter
from vigie.contracts.schemas import ControlResult, Declaration
from vigie.errors import ConfigurationError, DecodeError
from vigie.ingest.deadletters import encode_letter
from vigie.ingest.decoding import RecordDecoder
from vigie.ingest.mappings import ColumnMapping
from vigie.ingest.readers import read_records
from vigie.ingest.rejections import Rejections

MAX_BYTES = 1 << 20
"""Records larger than this are rejected (files, not Kafka messages: a generous bound)."""


class LabelledFiles:
    """Declarations, control results and truth from files; rejects to ``rejects_path``.

    Parameters
    ----------
    mapping
        Column mapping of the declaration files, or None for JSONL declarations.
    rejects_path
        Where the dead letters of rejected records go (created on the first one).
    """

    def __init__(self, mapping: ColumnMapping | None, rejects_path: Path) -> None:
        self.mapping = mapping
        self.rejects_path = rejects_path
        self.rejections = Rejections()
        self._rejects: IO[bytes] | None = None

    def declarations(
        self, paths: Sequence[Path]
    ) -> Iterator[tuple[Declaration, ControlResult | None]]:
        """Every valid declaration, with the control result its row carries (mappings)."""
        decoder = RecordDecoder(DECLARATIONS, self.mapping, MAX_BYTES)
        for path, record in self._records(paths):
            try:
                declaration, control = decoder.validated(record)
            except DecodeError as error:
                self._reject(DECLARATIONS, f"{path}:{record.line}", record.raw, error)
                continue
            assert isinstance(declaration, Declaration)
            assert control is None or isinstance(control, ControlResult)
            yield declaration, control

    def controls(self, path: Path) -> dict[str, ControlResult]:
        """The valid control results of a JSONL file, by declaration id."""
        decoder = RecordDecoder(CONTROL_RESULTS, None, MAX_BYTES)
        results: dict[str, ControlResult] = {}
        for _, record in self._records([path]):
            try:
                result, _ = decoder.validated(record)
            except DecodeError as error:
                self._reject(CONTROL_RESULTS, f"{path}:{record.line}", record.raw, error)
                continue
            assert isinstance(result, ControlResult)
            results[result.declaration_id] = result
        return results

    @staticmethod
    def truths(path: Path) -> dict[str, dict[str, Any]]:
        """The generator's ground truth by declaration id; a broken line is an error
        naming the file and line (the truth is ours, not an input to tolerate)."""
        truths: dict[str, dict[str, Any]] = {}
        with path.open("rb") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    row = orjson.loads(line)
                    truths[str(row["declaration_id"])] = row
                except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
                    raise ConfigurationError(
                        f"{path}:{number}: not a truth record ({exc})"
                    ) from exc
        return truths

    def close(self) -> None:
        if self._rejects is not None:
            self._rejects.close()
            self._rejects = None

    def _records(self, paths: Sequence[Path]) -> Iterator[tuple[Path, Any]]:
        for path in paths:
            for record in read_records(path):
                yield path, record

    def _reject(self, topic: Topic, source: str, raw: bytes, error: DecodeError) -> None:
        self.rejections.add(source, error)
        if self._rejects is None:
            self.rejects_path.parent.mkdir(parents=True, exist_ok=True)
            self._rejects = self.rejects_path.open("wb")
        letter = dead_letter(topic.name, None, raw, error)
        line = {"source": source, **orjson.loads(encode_letter(letter))}
        self._rejects.write(orjson.dumps(line) + b"\n")
