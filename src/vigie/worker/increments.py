"""Incremental snapshots: a full snapshot now and then, in between only what changed.

The model keeps its large tables with the keys changed since the last snapshot
(:mod:`vigie.model.tables`). A snapshot is one zstd stream of pickles, compressed as it is
written and decompressed as it is read:

* first ``(FORMAT, kind, core, number of tables)``, where ``core`` is the partition state
  pickled with every large table and change set left out (pickle's persistent ids stand in
  for them): the small parts, always whole;
* then, ``kind`` ``"full"``: each table as an empty table of its type, then its entries
  in order; ``"delta"``: per table, the keys forgotten, then the entries changed in place,
  then the tail of entries moved or added (:func:`vigie.model.tables.delta_keys`). Entries
  come :data:`CHUNK` a pickle, and an empty pickle ends each run of them.

A snapshot can be written a slice at a time while the model goes on learning
(:class:`SlicedSnapshot`): its core and each table's keys to write, in order, are taken at
the start, with the values of a delta's tail (read in table order: no lookups), and each
other entry's value when its slice is written. Such a *fuzzy* snapshot is
consistent only with the delta that follows it: the change sets are emptied at the start,
so that delta holds every entry changed while the slices were written, and the chain's
manifest is written only once it is saved (:mod:`vigie.worker.checkpoint`).

The stream is compressed by a thread of its own while the loop's thread pickles
(:class:`_Compressing`): zstd lets go of the interpreter while it works, and took a third
of a snapshot's time (45 of 150 ms for a partition of 25,000 declarations).

A pickler keeps every object it has written alive until it is done (its memo), with the
intermediate objects it made for them: one pickle of a whole state at 400,000
declarations held 720 MiB more while it was written. Chunks bound that, and the stream
never holds the whole pickle either.

A restore takes a full snapshot, applies its deltas in order, then unpickles the last core
onto the tables (:func:`restore`), each in the exact order of the live one. Writing a
delta costs what changed, not the whole state.

Examples
--------
>>> from vigie.model.engine import RiskEngine
>>> from vigie.contracts.schemas import EXAMPLE_DECLARATION, Declaration
>>> state = PartitionState(0, RiskEngine())
>>> full = dumps(state, full=True); forget_changes(state)
>>> decl = Declaration.model_validate(EXAMPLE_DECLARATION)
>>> _ = state.engine.score_one(decl); state.engine.learn_one(decl)
>>> again = restore([full, dumps(state, full=False)])
>>> sizes = [len(table) for table, _ in tracked(again)]
>>> again.engine.n_pending, sizes == [len(table) for table, _ in tracked(state)]
(1, True)
"""

from __future__ import annotations

import copyreg
import gc
import io
import pickle
import threading
import time
import zlib
from array import array
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, NamedTuple

from backports import zstd

from vigie.errors import VigieError
from vigie.model.tables import ChangeSet, Tracked, apply_delta, delta_keys
from vigie.worker.state import PartitionState

FORMAT = 8
"""2: the first incremental snapshots; 3: the model's small sets became lists; 4: the
pending evidence packed, the memory's pairs complex numbers, the references' values arrays;
5: tables and deltas in chunks, each run ended by an empty pickle (format 4, a full
snapshot's tables with their length and a delta's in one pickle, is still read); 6: the
pending items plain tuples (formats 4 and 5 are still read, their items as tuples); 7: the
replay guard's digests taken over the validated values (a state of an earlier format goes
on with the digests of the canonical JSON, :mod:`vigie.worker.idempotency`); 8: the
pending evidence ends with the customs value and net mass (an item of an earlier
format is learnt without them: :func:`vigie.model.engine.unpack_evidence`). A
snapshot before format 4 is refused: the partition's model is rebuilt from its log. Snapshots
before format 2 were one plain pickle of the state: read, then refused by the
layout check."""
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
"""The first bytes of a zstd frame (a zlib stream starts with 0x78)."""
CHUNK = 2_000
"""Table entries per pickle, at most: a few milliseconds of work for most tables."""
FIRST_CHUNK = 100
"""Entries of a table's first pickle in a slice, before its cost per entry is measured..."""
SMALLEST_CHUNK = 20
"""...and the fewest in a pickle of a slice: then each pickle is sized to the time the
slice has left, at the table's measured cost per entry (an importer's profile costs far
more than a digest: 2,000 of them took 25-50 ms, where a slice was given 5-20)."""
_READ = frozenset({4, 5, 6, 7, FORMAT})
"""The formats a restore reads."""
_PROTOCOL = pickle.HIGHEST_PROTOCOL


def tracked(state: PartitionState) -> list[Tracked]:
    """The state's large tables and their change sets, always in the same order."""
    engine_tables = getattr(state.engine, "tables", None)
    found: list[Tracked] = list(engine_tables()) if engine_tables is not None else []
    return [*found, *state.seen.tables()]


def dumps(state: PartitionState, *, full: bool) -> bytes:
    """A compressed snapshot of ``state``: whole, or what changed since the previous one
    (the change sets are left as they are)."""
    snapshot = SlicedSnapshot(state, full=full)
    snapshot.advance(float("inf"))
    return snapshot.take()


class SlicedSnapshot:
    """A snapshot of ``state``, whole or a delta, written a slice at a time (see the
    module's notes): creating it takes the core and, per table, the keys to write and
    their order; each entry is written as it is when its slice comes.

    >>> from vigie.model.engine import RiskEngine
    >>> state = PartitionState(0, RiskEngine())
    >>> snapshot = SlicedSnapshot(state, full=True)
    >>> while not snapshot.advance(0.0):  # one pickle of entries per call
    ...     pass
    >>> restore([snapshot.take()]).partition
    0
    """

    def __init__(self, state: PartitionState, *, full: bool) -> None:
        tables = tracked(state)
        self._full = full
        self._stream = _Compressing(level=3)
        self._sections: list[_Section] = []
        """Per table, in order: its entries to write (a delta's in place, then its tail)."""
        with _collector_paused():
            head = (FORMAT, "full" if full else "delta", _core(state, tables), len(tables))
            _dump(head, self._stream)
            for table, changed in tables:
                if full:
                    self._sections.append(_Section(table, (type(table)(), None), list(table)))
                else:
                    deleted, in_place, tail, values = delta_keys(table, changed)
                    self._sections.append(_Section(table, deleted, in_place))
                    self._sections.append(_Section(table, None, tail, values))
        self._section = 0
        self._at = 0
        self._entry_s: dict[int, float] = {}
        """Seconds per entry of each section's last pickle, once measured."""
        self.done = not self._sections

    def advance(self, budget_s: float) -> bool:
        """Write entries for about ``budget_s`` seconds (at least one pickle of them);
        True once every table is written. A full snapshot whose rest is written at once
        (an endless budget) is compressed in this thread from there (see :class:`_Compressing`)."""
        if self._full and budget_s == float("inf"):
            self._stream.compress_here()
        deadline = time.perf_counter() + budget_s
        with _collector_paused():
            while not self.done:
                section, started = self._section, time.perf_counter()
                written = self._write_some(self._chunk(section, deadline - started))
                now = time.perf_counter()
                if written:
                    self._entry_s[section] = (now - started) / written
                if now >= deadline:
                    break
        return self.done

    def _chunk(self, section: int, left_s: float) -> int:
        """Entries for the next pickle of ``section``: what ``left_s`` allows at its
        measured cost per entry, between :data:`SMALLEST_CHUNK` and :data:`CHUNK`.

        >>> snapshot = SlicedSnapshot(PartitionState(0, None), full=True)
        >>> snapshot._chunk(0, float("inf")), snapshot._chunk(0, 0.01)
        (2000, 100)
        >>> snapshot._entry_s[0] = 50e-6  # 50 us an entry
        >>> snapshot._chunk(0, 0.01), snapshot._chunk(0, 0.0), snapshot._chunk(0, 1.0)
        (200, 20, 2000)
        """
        if left_s == float("inf"):
            return CHUNK
        cost = self._entry_s.get(section)
        if cost is None:
            return min(CHUNK, FIRST_CHUNK)
        return max(SMALLEST_CHUNK, min(CHUNK, int(left_s / cost) if cost > 0 else CHUNK))

    def take(self) -> bytes:
        """The compressed bytes written since the last take, as far as they are compressed
        (all of them once done: this waits for the compression to end)."""
        if not self.done:
            return self._stream.take()
        if not self._stream.closed:
            self._stream.close()
        return self._stream.take(wait=True)

    def _write_some(self, chunk: int) -> int:
        """Write up to ``chunk`` entries of the current section; how many were looked at."""
        section = self._sections[self._section]
        table, keys = section.table, section.keys
        if self._at == 0 and section.opening is not None:
            _dump(section.opening, self._stream)
        start, end = self._at, min(len(keys), self._at + chunk)
        if section.values is not None:
            # Values taken at the start: one changed since is in the closing delta too.
            entries = list(zip(keys[start:end], section.values[start:end], strict=True))
        else:
            # A key forgotten since the start is left out: the closing delta deletes it.
            entries = [(k, table[k]) for k in keys[start:end] if k in table]
        if entries:  # an empty pickle ends the section
            _dump(entries, self._stream)
        self._at = end
        if end == len(keys):
            _dump([], self._stream)
            self._sections[self._section] = _Section(table, None, [])
            self._section, self._at = self._section + 1, 0
            self.done = self._section == len(self._sections)
        return end - start


class _Section(NamedTuple):
    """One run of a table's entries in a snapshot."""

    table: dict[str, Any]
    opening: Any
    """What is written before the entries (a full snapshot's empty table, a delta's keys
    forgotten), or None."""
    keys: list[str]
    values: list[Any] | None = None
    """The keys' values, taken with them (a delta's tail), or None: looked up as each
    slice is written."""


def _core(state: PartitionState, tables: list[Tracked]) -> bytes:
    """The state pickled with its large tables and change sets left out."""
    refs: dict[int, str] = {}
    for i, (table, changed) in enumerate(tables):
        refs[id(table)] = f"t{i}"
        refs.setdefault(id(changed), f"c{i}")
    core = io.BytesIO()
    with _collector_paused():
        _CorePickler(core, refs).dump(state)
    return core.getvalue()


def changed_entries(state: PartitionState) -> int:
    """Entries changed since the last snapshot (a key of two tables counts twice)."""
    return sum(len(changed) for _, changed in tracked(state))


def next_is_delta(state: PartitionState, changes: int) -> bool:
    """Whether the next snapshot of ``state`` is a delta: there is a chain to extend, the
    chain is not due for a full snapshot (:meth:`vigie.worker.chain.Chain.wants_full`),
    and a delta of the ``changes`` (:func:`changed_entries`) costs less than a full one,
    as the last ones did."""
    chain = state.chain
    if chain is None or chain.wants_full():
        return False
    return state.costs.prefers_delta(changes)


def forget_changes(state: PartitionState) -> None:
    """Empty the change sets: call once a snapshot of ``state`` is saved."""
    for _, changed in tracked(state):
        changed.clear()


Snapshot = bytes | list[bytes]
"""A snapshot's bytes: whole, or in the chunks they were stored in. :func:`restore` empties a
list of chunks as it reads them, so that what it has read no longer takes memory."""


def restore(blobs: Sequence[Snapshot]) -> PartitionState:
    """The state of a full snapshot followed by its deltas, in order (a snapshot of an
    earlier format alone is read as it was written)."""
    if not blobs:
        raise VigieError("model-state: no snapshot to restore")
    with _collector_paused():
        return _restore(blobs)


def _restore(blobs: Sequence[Snapshot]) -> PartitionState:
    with _opened(blobs[0]) as stream:
        head = _load(stream)
        if isinstance(head, PartitionState):
            if len(blobs) > 1:
                raise VigieError("model-state: deltas after a snapshot of an earlier format")
            return head
        fmt, kind, core, n = _header(head)
        if fmt not in _READ or kind != "full":
            raise VigieError(f"model-state: expected a full snapshot, got {kind!r} (format {fmt})")
        tables = [_load_table(stream) for _ in range(n)]
    for blob in blobs[1:]:
        with _opened(blob) as stream:
            fmt, kind, core, n = _header(_load(stream))
            if fmt not in _READ or kind != "delta" or n != len(tables):
                raise VigieError(
                    f"model-state: expected a delta of {len(tables)} tables, got {kind!r} "
                    f"(format {fmt})"
                )
            for table in tables:
                if fmt == 4:  # one pickle per table
                    apply_delta(table, _load(stream))
                else:
                    _apply_delta(table, stream)
    state = _CoreUnpickler(io.BytesIO(core), tables).load()
    if not isinstance(state, PartitionState):
        raise VigieError(f"model-state: expected a PartitionState, got {type(state)}")
    if [id(table) for table, _ in tracked(state)] != [id(table) for table in tables]:
        raise VigieError("model-state: the snapshot's tables do not fit the state's")
    return state


@contextmanager
def _collector_paused() -> Iterator[None]:
    """The cyclic garbage collector off: a snapshot makes or reads millions of objects, in
    no cycle, and each collection would scan them all (a restore at 200,000 declarations:
    3.3 s with it, 1.4 s without)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _array_reduced(values: array[Any]) -> tuple[Any, ...]:
    """An array as its type code and machine bytes: pickled twice as fast as by its own
    reduce, which also records the byte order (snapshots are read on the machine type that
    wrote them: the image's)."""
    return array, (values.typecode, values.tobytes())


_DISPATCH: dict[type, Any] = {**copyreg.dispatch_table, array: _array_reduced}


class _Compressing:
    """A zstd frame compressed by a thread of its own, in the order it is written.

    :meth:`write` queues the bytes; :meth:`take` returns what is compressed so far (with
    ``wait``: all of it). At most :data:`QUEUED` writes wait for the compressor: a slow
    compressor slows the writer down rather than holding every pickle in memory.

    What the thread compresses is allocated in its own malloc arena, which the loop's
    thread does not reuse. A whole full snapshot held there until it is taken (written at
    once: at a stop, a rebalance, a test) raised the peak of a 1,000,000-declaration
    partition from 1,330 to 1,454 MiB; :meth:`compress_here` compresses the rest in the
    caller's thread, as before.

    >>> stream = _Compressing(level=3)
    >>> stream.write(b"abc" * 1000)
    3000
    >>> stream.compress_here()
    >>> stream.write(b"def" * 1000)
    3000
    >>> stream.close()
    >>> zstd.decompress(stream.take(wait=True)) == b"abc" * 1000 + b"def" * 1000
    True
    """

    QUEUED = 64

    _pool: ThreadPoolExecutor | None = None
    _pool_lock = threading.Lock()

    def __init__(self, level: int) -> None:
        self._compressor = zstd.ZstdCompressor(level)
        self._queued: deque[Future[bytes] | bytes] = deque()
        """In order: what the thread compresses, then what this thread compressed."""
        self._here = False
        self.closed = False

    @classmethod
    def _compressing_thread(cls) -> ThreadPoolExecutor:
        with cls._pool_lock:
            if cls._pool is None:
                cls._pool = ThreadPoolExecutor(1, thread_name_prefix="vigie-zstd")
            return cls._pool

    def compress_here(self) -> None:
        """Compress what is written from now on in the caller's thread (what the thread
        has queued is waited for first: a compressor is used by one thread at a time)."""
        if not self._here:
            for queued in self._queued:
                if isinstance(queued, Future):
                    queued.result()
            self._here = True

    def write(self, data: bytes | bytearray | memoryview) -> int:
        if self._here:
            self._queued.append(self._compressor.compress(data))
            return len(data)
        chunk = bytes(data)  # a buffer pickle hands over may be reused after the call
        if len(self._queued) >= self.QUEUED:
            # the thread compresses in order: once this one is done, so are all before it
            limit = self._queued[-self.QUEUED]
            if isinstance(limit, Future):
                limit.result()
        self._queued.append(self._compressing_thread().submit(self._compressor.compress, chunk))
        return len(chunk)

    def close(self) -> None:
        """End the frame (what is queued is still compressed first)."""
        if not self.closed:
            if self._here:
                self._queued.append(self._compressor.flush())
            else:
                self._queued.append(self._compressing_thread().submit(self._compressor.flush))
            self.closed = True

    def take(self, *, wait: bool = False) -> bytes:
        """The compressed bytes not taken yet, in order: those ready, or (``wait``) all."""
        out = []
        while self._queued:
            first = self._queued[0]
            if isinstance(first, Future):
                if not (wait or first.done()):
                    break
                first = first.result()
            out.append(first)
            self._queued.popleft()
        return b"".join(out)


def _dump(obj: Any, stream: Any) -> None:
    """One pickle of the snapshot's stream (its own memo)."""
    pickler = pickle.Pickler(stream, _PROTOCOL)
    pickler.dispatch_table = _DISPATCH
    pickler.dump(obj)


def _opened(blob: Snapshot) -> io.BufferedIOBase:
    """A snapshot's pickles, decompressed as they are read (zlib: an earlier version's)."""
    if isinstance(blob, bytes):
        blob = [blob]
    if blob and blob[0][:4] == ZSTD_MAGIC:
        return zstd.ZstdFile(_Chunks(blob))
    return io.BytesIO(zlib.decompress(b"".join(blob)))


class _Chunks(io.RawIOBase):
    """Reads a list of byte strings as one stream, removing each from the list once read.

    >>> chunks = [b"abc", b"de"]
    >>> reader = _Chunks(chunks)
    >>> reader.read(4), chunks
    (b'abcd', [b'de'])
    >>> reader.read(), chunks
    (b'e', [])
    """

    def __init__(self, chunks: list[bytes]) -> None:
        self._chunks = chunks
        self._at = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        done = 0
        while done < len(view) and self._chunks:
            chunk = memoryview(self._chunks[0])
            n = min(len(view) - done, len(chunk) - self._at)
            view[done : done + n] = chunk[self._at : self._at + n]
            done += n
            self._at += n
            if self._at == len(chunk):
                del self._chunks[0]
                self._at = 0
        return done


def _header(head: Any) -> tuple[int, str, bytes, int]:
    """A snapshot's first pickle: format, kind, core and number of tables (a snapshot of
    format 2 or 3 was one pickle holding its tables: its format is refused after)."""
    fmt, kind, core, tables = head
    return fmt, kind, core, tables if isinstance(tables, int) else len(tables)


def _apply_delta(table: dict[str, Any], stream: io.BufferedIOBase) -> None:
    """Apply a table's delta: the keys forgotten, then the entries changed in place, then
    the tail's, each section in chunks until an empty one (a tail chunk's keys are moved
    to the end in order, so the whole tail ends up there in order)."""
    for key in _load(stream):
        table.pop(key, None)
    while chunk := _load(stream):
        table.update(chunk)
    while chunk := _load(stream):
        for key, _ in chunk:
            table.pop(key, None)
        table.update(chunk)


def _load_table(stream: io.BufferedIOBase) -> dict[str, Any]:
    """A table of a full snapshot: its type, then its entries in chunks until an empty
    one (format 4: its type and length, then chunks up to that length)."""
    table: dict[str, Any]
    table, length = _load(stream)
    if length is not None:
        while len(table) < length:
            table.update(_load(stream))
        return table
    while chunk := _load(stream):
        table.update(chunk)
    return table


def _load(stream: io.BufferedIOBase) -> Any:
    """The next pickle of a snapshot (older snapshots' classes read as they are now)."""
    return _SnapshotUnpickler(stream).load()


class _PendingItemOfFormat5(tuple):  # type: ignore[type-arg]
    """A pending item of a snapshot written before format 6, when it was a NamedTuple
    (``vigie.model.engine.Pending``): read as the plain tuple it is now."""

    def __new__(cls, *fields: Any) -> Any:
        return tuple(fields)


_RENAMED = {("vigie.model.engine", "Pending"): _PendingItemOfFormat5}
"""Classes of older snapshots that are no longer classes, and what reads them."""


class _SnapshotUnpickler(pickle.Unpickler):
    """Reads a snapshot's pickles, older formats' renamed classes included."""

    def find_class(self, module: str, name: str) -> Any:
        return _RENAMED.get((module, name)) or super().find_class(module, name)


class _CorePickler(pickle.Pickler):
    """Pickles the state with its large tables and change sets left out."""

    def __init__(self, file: io.BytesIO, refs: dict[int, str]) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self.refs = refs

    def persistent_id(self, obj: Any) -> str | None:
        return self.refs.get(id(obj))


class _CoreUnpickler(_SnapshotUnpickler):
    """Unpickles a core onto restored tables; each change set starts empty."""

    def __init__(self, file: io.BytesIO, tables: list[Any]) -> None:
        super().__init__(file)
        self.tables = tables
        self.sets: dict[str, ChangeSet] = {}

    def persistent_load(self, pid: Any) -> Any:
        if pid.startswith("t"):
            return self.tables[int(pid[1:])]
        return self.sets.setdefault(pid, {})
