"""Model state per declarations partition, snapshotted to the compacted ``model-state`` topic.

One :class:`PartitionState` per assigned ``declarations`` partition holds that partition's
RiskEngine together with the offsets it has consumed: the last ``declarations`` offset it
learnt and the last control fan-out offset it gave the engine. A snapshot pickles the whole thing,
so the model and its position are always saved *together*: restoring a snapshot and
resuming right after its offsets neither relearns nor forgets a record.

Wire layout of a snapshot (all records of engine partition ``p`` go to ``model-state``
partition ``p % n``, so that the latest one is found by reading that partition's tail):

* ``{p}/{slot}/{i}``: chunk ``i`` of the zlib-compressed pickle (chunks keep every record
  under the broker's 1 MB default); ``slot`` alternates 0/1 between snapshots;
* ``{p}/manifest``: JSON naming the chunk offsets, their SHA-256 and the state's offsets,
  written last, once every chunk is acknowledged.

With compaction (the topic is ``cleanup.policy=compact``) the chunks of the current
manifest are never removed, since they are the latest record of their keys: a worker that
dies while writing snapshot *k+1* only overwrites the other slot, so snapshot *k* stays
whole.

Examples
--------
>>> state = PartitionState(partition=2, engine={"weights": [0.5] * 3})
>>> state.declarations_offset, state.declarations_learnt
(-1, 0)
>>> blob = state.dumps()
>>> chunks = split(blob, size=16)
>>> len(chunks) > 1 and b"".join(chunks) == blob
True
>>> again = PartitionState.loads(blob)
>>> again.partition, again.engine
(2, {'weights': [0.5, 0.5, 0.5]})
>>> manifest_key(2), chunk_key(2, 1, 0)
(b'2/manifest', b'2/1/0')
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import pickle
import zlib
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson

from vigie.contracts.catalogue import MODEL_STATE
from vigie.contracts.schemas import utc_now
from vigie.errors import VigieError
from vigie.settings import Settings

log = logging.getLogger(__name__)

CHUNK_BYTES = 512 * 1024
"""Below the broker's default 1 MB ``max.message.bytes``."""

Send = Callable[[int, bytes, bytes], Awaitable[int]]
"""Produce (partition, key, value) with acks=all and return the record's offset."""


class PartitionState:
    """A partition's engine and the offsets it covers; pickled whole (minus its lock)."""

    def __init__(self, partition: int, engine: Any) -> None:
        self.partition = partition
        self.engine = engine
        self.declarations_offset = -1
        """Offset of the last declarations record learnt (-1: none)."""
        self.controls_offset = -1
        """Offset of the last control fan-out record the engine was given (-1: none)."""
        self.declarations_learnt = 0
        self.controls_learnt = 0
        self.snapshot_id = 0
        self.saved_position: tuple[int, int] | None = None
        """(declarations, controls) offsets of the last snapshot written or restored."""
        self.parked: OrderedDict[str, Any] = OrderedDict()
        """Control results that arrived before their declaration, by declaration id."""
        self.layout: Layout = layout(engine)
        """The engine's layout, as recorded by the snapshot it was restored from."""
        self._transient()

    def _transient(self) -> None:
        """The parts a snapshot leaves out: they are rebuilt by reading the log again."""
        self.lock = asyncio.Lock()
        self.received: list[Any] = []
        """Control results read since the last checkpoint, in fan-out order, not yet given
        to the engine (see :func:`vigie.worker.agents.learn_received`)."""
        self.controls_read = self.controls_offset
        """Offset of the last control fan-out record read (received or given)."""
        self.replaying_until = -1
        """The declarations offset the log had reached when this state was restored: up
        to it, the engine may be scoring again what a previous owner scored, so it is
        given no control result until it gets there."""

    @property
    def position(self) -> tuple[int, int]:
        return (self.declarations_offset, self.controls_offset)

    def __getstate__(self) -> dict[str, Any]:
        state = {k: v for k, v in self.__dict__.items() if k not in TRANSIENT}
        state["layout"] = layout(self.engine)  # what the code that wrote it built
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state.setdefault("layout", layout(state["engine"]))  # from before layouts were kept
        self.__dict__.update(state)
        self._transient()

    def dumps(self) -> bytes:
        """The compressed pickle of this state."""
        return compress(self.pickled())

    def pickled(self) -> bytes:
        """The pickle of this state (take it under the lock; compress it outside)."""
        return pickle.dumps(self, protocol=pickle.HIGHEST_PROTOCOL)

    @staticmethod
    def loads(blob: bytes) -> PartitionState:
        state = pickle.loads(zlib.decompress(blob))
        if not isinstance(state, PartitionState):
            raise VigieError(f"model-state: expected a PartitionState, got {type(state)}")
        return state

    def summary(self) -> dict[str, Any]:
        return {
            "partition": self.partition,
            "declarations_offset": self.declarations_offset,
            "controls_offset": self.controls_offset,
            "declarations_learnt": self.declarations_learnt,
            "controls_learnt": self.controls_learnt,
            "controls_waiting": len(self.received),
            "replaying_until": self.replaying_until,
            "snapshot_id": self.snapshot_id,
        }


TRANSIENT = frozenset({"lock", "received", "controls_read", "replaying_until"})
""":class:`PartitionState` attributes a snapshot leaves out."""


Layout = dict[str, tuple[str, ...]]
"""An object's class and attribute names, and those of its Vigie parts, by path."""


def layout(obj: Any, path: str = "engine") -> Layout:
    """The class and attribute names of ``obj`` and, recursively, of its Vigie parts.

    A snapshot records its engine's layout, so that a restore can compare it with the
    layout of the engine the running code builds (:func:`layout_differences`). Values that
    are not Vigie objects (None, caches, River models) may change type as a model learns.

    >>> class Part:
    ...     def __init__(self) -> None:
    ...         self.n, self.rate = 0, 0.5
    >>> Part.__module__ = "vigie.example"
    >>> layout(Part())
    {'engine': ('Part', 'n', 'rate')}
    """
    names = attributes(obj)
    found = {path: (type(obj).__name__, *sorted(names or ()))}
    for name, value in sorted((names or {}).items()):
        if _is_vigie(value):
            found |= layout(value, f"{path}.{name}")
    return found


def layout_differences(recorded: Layout, fresh: Layout) -> list[str]:
    """How a snapshot's recorded layout differs from a fresh engine's (empty: the same).

    Unpickling does not run ``__init__`` (or, for classes compiled by mypyc, runs it
    before restoring the state), so a snapshot taken before an upgrade that added,
    removed or retyped an attribute would load without error and fail later, on every
    record, or mix fresh defaults into learnt state.

    >>> old = {"engine": ("Engine", "n"), "engine.part": ("Part", "rate")}
    >>> layout_differences(old, {"engine": ("Engine", "n", "seen"), "engine.part": ("Cell",)})
    ['engine.seen: missing', 'engine.part: Part, now Cell']
    """
    found = []
    for path, (kind, *names) in fresh.items():
        if path not in recorded:
            continue  # its parent's difference says it
        old_kind, *old_names = recorded[path]
        if old_kind != kind:
            found.append(f"{path}: {old_kind}, now {kind}")
            continue
        found += [f"{path}.{k}: missing" for k in names if k not in old_names]
        found += [f"{path}.{k}: no longer used" for k in old_names if k not in names]
    return found


def attributes(obj: Any) -> dict[str, Any] | None:
    """An object's attributes by name (None: it has none of its own, as a ``__slots__`` class).

    A class compiled by mypyc has no ``__dict__``: its attributes are those it declares in
    ``__mypyc_attrs__``.

    >>> attributes(ValueError("x")), attributes(1)
    ({}, None)
    """
    declared = getattr(type(obj), "__mypyc_attrs__", None)
    if declared is not None:
        return {name: getattr(obj, name) for name in declared if hasattr(obj, name)}
    return getattr(obj, "__dict__", None)


def _is_vigie(value: Any) -> bool:
    return type(value).__module__.startswith("vigie.")


def compress(raw: bytes) -> bytes:
    return zlib.compress(raw, 3)


def split(blob: bytes, size: int = CHUNK_BYTES) -> list[bytes]:
    """Cut a blob into chunks of at most ``size`` bytes (at least one chunk)."""
    return [blob[i : i + size] for i in range(0, max(len(blob), 1), size)]


def manifest_key(partition: int) -> bytes:
    return f"{partition}/manifest".encode()


def chunk_key(partition: int, slot: int, index: int) -> bytes:
    return f"{partition}/{slot}/{index}".encode()


@dataclass(frozen=True)
class SavedSnapshot:
    """What writing a snapshot produced."""

    partition: int
    snapshot_id: int
    size: int
    chunks: int


class SnapshotStore:
    """Writes snapshots through an async producer, reads them back with confluent-kafka."""

    def __init__(self, settings: Settings, send: Send) -> None:
        self.settings = settings
        self.topic = settings.topic(MODEL_STATE.name)
        self._send = send
        self._partitions: int | None = None

    async def save(self, state: PartitionState, blob: bytes) -> SavedSnapshot:
        """Write ``blob`` (``state.dumps()`` taken under the state's lock) and its manifest."""
        n = await self.state_partitions()
        target = state.partition % n
        snapshot_id = state.snapshot_id + 1
        slot = snapshot_id % 2
        chunks = split(blob)
        offsets = [
            await self._send(target, chunk_key(state.partition, slot, i), chunk)
            for i, chunk in enumerate(chunks)
        ]
        manifest = {
            "partition": state.partition,
            "snapshot_id": snapshot_id,
            "slot": slot,
            "offsets": offsets,
            "sha256": hashlib.sha256(blob).hexdigest(),
            "bytes": len(blob),
            "written_at": utc_now().isoformat(),
            **{k: v for k, v in state.summary().items() if k.endswith("_offset")},
        }
        await self._send(target, manifest_key(state.partition), orjson.dumps(manifest))
        state.snapshot_id = snapshot_id
        return SavedSnapshot(state.partition, snapshot_id, len(blob), len(chunks))

    async def state_partitions(self) -> int:
        if self._partitions is None:
            self._partitions = await asyncio.to_thread(self._count_partitions)
        return self._partitions

    def _count_partitions(self) -> int:
        from confluent_kafka.admin import AdminClient

        admin = AdminClient({"bootstrap.servers": self.settings.bootstrap_servers})
        meta = admin.list_topics(self.topic, timeout=15)
        topic = meta.topics.get(self.topic)
        if topic is None or topic.error is not None or not topic.partitions:
            raise VigieError(
                f"model-state topic {self.topic!r} is missing: create topics first "
                "(`vigie topics create`)"
            )
        return len(topic.partitions)

    def load(self, partition: int) -> PartitionState | None:
        """The latest snapshot of ``partition``, or None (blocking: run it in a thread)."""
        n = self._partitions or self._count_partitions()
        self._partitions = n
        reader = _TailReader(self.settings.bootstrap_servers, self.topic, partition % n)
        try:
            found = reader.latest(manifest_key(partition))
            if found is None:
                return None
            manifest = orjson.loads(found)
            blob = b"".join(reader.read_at(manifest["offsets"]))
        finally:
            reader.close()
        if hashlib.sha256(blob).hexdigest() != manifest["sha256"]:
            raise VigieError(
                f"model-state: snapshot {manifest['snapshot_id']} of partition {partition} "
                "is corrupt (SHA-256 mismatch)"
            )
        state = PartitionState.loads(blob)
        state.snapshot_id = int(manifest["snapshot_id"])
        log.info("restored partition %d from snapshot: %s", partition, state.summary())
        return state


class _TailReader:
    """Reads one model-state partition backwards in growing windows."""

    def __init__(self, bootstrap: str, topic: str, partition: int) -> None:
        from confluent_kafka import Consumer, TopicPartition

        self._tp = TopicPartition
        self.topic, self.partition = topic, partition
        self.consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": "vigie-model-state-reader",
                "enable.auto.commit": False,
                "enable.partition.eof": True,
                "fetch.max.bytes": 8 * CHUNK_BYTES,
            }
        )
        self.low, self.high = self.consumer.get_watermark_offsets(
            TopicPartition(topic, partition), timeout=15
        )

    def latest(self, key: bytes, window: int = 64) -> bytes | None:
        """The value of the last record with ``key``, scanning back from the end."""
        end = self.high
        while end > self.low:
            start = max(self.low, end - window)
            found = None
            for _, k, value in self._range(start, end):
                if k == key:
                    found = value
            if found is not None:
                return found
            end, window = start, window * 4
        return None

    def read_at(self, offsets: list[int]) -> list[bytes]:
        """The values at exactly these offsets, in this order."""
        wanted = set(offsets)
        got = {
            offset: value
            for offset, _, value in self._range(min(offsets), max(offsets) + 1)
            if offset in wanted
        }
        missing = wanted - got.keys()
        if missing:
            raise VigieError(f"model-state: snapshot chunks missing at offsets {sorted(missing)}")
        return [got[o] for o in offsets]

    def _range(self, start: int, end: int) -> list[tuple[int, bytes | None, bytes]]:
        """Records with start <= offset < end (compaction may leave holes)."""
        from confluent_kafka import KafkaError

        self.consumer.assign([self._tp(self.topic, self.partition, start)])
        records: list[tuple[int, bytes | None, bytes]] = []
        while True:
            msg = self.consumer.poll(15)
            if msg is None:
                raise VigieError(f"model-state: timed out reading {self.topic}[{self.partition}]")
            err = msg.error()
            if err is not None:
                if err.code() == KafkaError._PARTITION_EOF:
                    return records
                raise VigieError(f"model-state: {err}")
            offset = int(msg.offset() or 0)
            if offset >= end:
                return records
            records.append((offset, msg.key(), msg.value() or b""))
            if offset == end - 1:
                return records

    def close(self) -> None:
        self.consumer.close()
