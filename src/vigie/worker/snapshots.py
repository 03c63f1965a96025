"""Snapshots of partition states in the compacted ``model-state`` topic.

A partition's snapshots form a *chain*: a full snapshot, then deltas, each holding what
changed since the one before (:mod:`vigie.worker.increments`). A new full snapshot starts
a new chain once the deltas weigh as much as the full one, so a restore reads at most
about twice the state and each change is written about twice at most.

All records of engine partition ``p`` go to ``model-state`` partition ``p % n``:

* ``{p}/{slot}/{i}``: chunk ``i`` of a full snapshot (chunks keep every record under the
  broker's 1 MB default); ``slot`` alternates 0/1 between chains;
* ``{p}/{slot}/d{j}/{i}``: chunk ``i`` of the chain's delta ``j``;
* ``{p}/manifest``: JSON naming the chain's chunk offsets, their SHA-256 and the state's
  offsets, written last, once every chunk is acknowledged.

Compaction keeps the latest record of each key, so the chunks of the current manifest stay:
a worker that dies while writing a snapshot only wrote keys that manifest does not name
(the other slot, or the chain's next delta).

Examples
--------
>>> blob = bytes(range(256)) * 10
>>> [len(c) for c in split(blob, 1000)], split(b"")
([1000, 1000, 560], [b''])
>>> manifest_key(2), chunk_key(2, 1, 0), chunk_key(2, 1, 0, delta=3)
(b'2/manifest', b'2/1/0', b'2/1/d3/0')
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from vigie.contracts.catalogue import MODEL_STATE
from vigie.contracts.schemas import utc_now
from vigie.errors import ConfigurationError, VigieError
from vigie.kafka import admin_config, consumer_config, watermarks
from vigie.settings import Settings
from vigie.worker.chain import Chain, Part
from vigie.worker.increments import Snapshot, restore
from vigie.worker.state import PartitionState

log = logging.getLogger(__name__)

CHUNK_BYTES = 512 * 1024
"""Below the broker's default 1 MB ``max.message.bytes``."""
TIMEOUT_S = 60.0
MANIFEST_FORMAT = 2
"""Manifests naming a chain (a full snapshot and its deltas); earlier ones named one
snapshot, of the plain format, without a ``format`` field."""


def split(blob: bytes, size: int = CHUNK_BYTES) -> list[bytes]:
    """Cut a blob into chunks of at most ``size`` bytes (at least one chunk)."""
    return [blob[i : i + size] for i in range(0, max(len(blob), 1), size)]


def manifest_key(partition: int) -> bytes:
    return f"{partition}/manifest".encode()


def chunk_key(partition: int, slot: int, index: int, delta: int | None = None) -> bytes:
    if delta is None:
        return f"{partition}/{slot}/{index}".encode()
    return f"{partition}/{slot}/d{delta}/{index}".encode()


@dataclass(frozen=True)
class SavedSnapshot:
    """What writing a snapshot produced."""

    partition: int
    snapshot_id: int
    size: int
    chunks: int
    full: bool = True


class SnapshotStore:
    """Writes snapshots with a confluent-kafka producer and reads them back.

    Parameters
    ----------
    settings
        Where the broker and the ``model-state`` topic are.
    producer
        A confluent-kafka ``Producer`` of its own (acks=all, every delivery reported).
    """

    def __init__(self, settings: Settings, producer: Any) -> None:
        self.settings = settings
        self.topic = settings.topic(MODEL_STATE.name)
        self.producer = producer
        self._partitions: int | None = None

    def save(
        self,
        state: PartitionState,
        blob: bytes,
        *,
        delta: bool = False,
    ) -> SavedSnapshot:
        """Write ``blob`` (a snapshot of the state, taken now: a delta on ``state.chain``
        when ``delta``, else a full one starting a new chain), then the manifest."""
        chain = state.chain
        if delta and chain is None:
            raise VigieError("model-state: a delta needs the chain it follows")
        writer = self.delta_writer(state) if delta else self.full_writer(state)
        writer.write(blob)
        part = writer.close()
        saved = chain.with_delta(part) if delta and chain is not None else Chain(writer.slot, part)
        return self.name_chain(state, saved)

    def full_writer(self, state: PartitionState) -> PartWriter:
        """Writes a full snapshot of ``state``: the first of a new chain, in the slot the
        manifest does not name."""
        chain = state.chain
        slot = (1 - chain.slot) if chain is not None else (state.snapshot_id + 1) % 2
        return PartWriter(self, state.partition, slot)

    def delta_writer(self, state: PartitionState, chain: Chain | None = None) -> PartWriter:
        """Writes the next delta of ``chain`` (by default ``state.chain``, the one the
        manifest names)."""
        chain = chain or state.chain
        if chain is None:
            raise VigieError("model-state: a delta needs the chain it follows")
        return PartWriter(self, state.partition, chain.slot, len(chain.deltas))

    def name_chain(self, state: PartitionState, chain: Chain) -> SavedSnapshot:
        """Write the manifest naming ``chain``, every part of it written, as the snapshot
        of ``state`` as it is now."""
        snapshot_id = state.snapshot_id + 1
        manifest = {
            "format": MANIFEST_FORMAT,
            "partition": state.partition,
            "snapshot_id": snapshot_id,
            "slot": chain.slot,
            "offsets": chain.full.offsets,
            "sha256": chain.full.sha256,
            "bytes": chain.full.bytes,
            "deltas": [vars(d) for d in chain.deltas],
            "written_at": utc_now().isoformat(),
            "declarations_offset": state.declarations_offset,
            "controls_offset": state.controls_offset,
        }
        target = self.target(state.partition)
        self._write(target, [(manifest_key(state.partition), orjson.dumps(manifest))])
        state.snapshot_id = snapshot_id
        state.chain = chain
        last = chain.deltas[-1] if chain.deltas else chain.full
        return SavedSnapshot(
            state.partition, snapshot_id, last.bytes, len(last.offsets), not chain.deltas
        )

    def target(self, partition: int) -> int:
        """The ``model-state`` partition of engine partition ``partition``."""
        return partition % self.state_partitions()

    def _write(self, partition: int, records: Sequence[tuple[bytes, bytes]]) -> list[int]:
        """Produce ``records`` to one partition and wait for them: their offsets, in order."""
        offsets: list[int] = [-1] * len(records)
        errors: list[str] = []
        for i, (key, value) in enumerate(records):
            self.produce(partition, key, value, _delivered(offsets, errors, i))
        self.wait(offsets, errors)
        return offsets

    def produce(self, partition: int, key: bytes, value: bytes, on_delivery: Any) -> None:
        """Queue one record (waiting while the local queue is full)."""
        while True:
            try:
                self.producer.produce(
                    self.topic, value, key, partition=partition, on_delivery=on_delivery
                )
                return
            except BufferError:
                self.producer.poll(0.1)

    def wait(self, offsets: list[int], errors: list[str]) -> None:
        """Wait for every record queued; raise unless all of ``offsets`` were written."""
        if self.producer.flush(TIMEOUT_S) or errors or -1 in offsets:
            raise VigieError(f"model-state: snapshot not written ({errors[:3] or 'timed out'})")

    def state_partitions(self) -> int:
        """How many partitions ``model-state`` has (asked once)."""
        if self._partitions is None:
            from confluent_kafka.admin import AdminClient

            admin = AdminClient(admin_config(self.settings, client_id="vigie-snapshots"))
            topic = admin.list_topics(self.topic, timeout=15).topics.get(self.topic)
            if topic is None or topic.error is not None or not topic.partitions:
                raise ConfigurationError(
                    f"model-state topic {self.topic!r} is missing: create topics first "
                    "(`vigie topics create`)"
                )
            self._partitions = len(topic.partitions)
        return self._partitions

    def load(self, partition: int) -> PartitionState | None:
        """The latest snapshot of ``partition``, or None when there is none."""
        reader = _TailReader(self.settings, self.topic, partition % self.state_partitions())
        try:
            found = reader.latest(manifest_key(partition))
            if found is None:
                return None
            manifest = orjson.loads(found)
            chain = Chain(
                int(manifest["slot"]),
                Part(manifest["offsets"], manifest["sha256"], int(manifest["bytes"])),
                [
                    Part(d["offsets"], d["sha256"], int(d["bytes"]))
                    for d in manifest.get("deltas", [])
                ],
            )
            offsets = [o for part in chain.parts() for o in part.offsets]
            values = dict(zip(offsets, reader.read_at(offsets), strict=True))
        finally:
            reader.close()
        snapshots: list[Snapshot] = []
        for part in chain.parts():
            chunks = [values.pop(o) for o in part.offsets]
            digest = hashlib.sha256()
            for chunk in chunks:
                digest.update(chunk)
            if digest.hexdigest() != part.sha256:
                raise VigieError(
                    f"model-state: snapshot {manifest['snapshot_id']} of partition {partition} "
                    "is corrupt (SHA-256 mismatch)"
                )
            snapshots.append(chunks)  # not joined: restore frees each chunk once read
        state = restore(snapshots)
        state.snapshot_id = int(manifest["snapshot_id"])
        # a snapshot of an earlier format is followed by a full one
        state.chain = chain if manifest.get("format") == MANIFEST_FORMAT else None
        log.info(
            "restored partition %d from a snapshot and %d deltas: %s",
            partition,
            len(chain.deltas),
            state.summary(),
        )
        return state


class PartWriter:
    """Writes one snapshot's bytes as they come, in chunks of :data:`CHUNK_BYTES`, each
    sent as soon as it is full; :meth:`close` waits for them all and names them.

    Parameters
    ----------
    store
        The store whose producer and topic are used.
    partition
        The engine partition.
    slot
        The chain's slot.
    delta
        The index of the delta in its chain (None: the chain's full snapshot).
    """

    def __init__(
        self, store: SnapshotStore, partition: int, slot: int, delta: int | None = None
    ) -> None:
        self.store, self.partition, self.slot, self.delta = store, partition, slot, delta
        self.target = store.target(partition)
        self._pending = bytearray()
        self._sha256 = hashlib.sha256()
        self._bytes = 0
        self._offsets: list[int] = []
        self._errors: list[str] = []

    def write(self, data: bytes) -> None:
        """Add ``data`` to the snapshot, sending every chunk it completes."""
        self._pending += data
        self._sha256.update(data)
        self._bytes += len(data)
        while len(self._pending) >= CHUNK_BYTES:
            self._send(bytes(self._pending[:CHUNK_BYTES]))
            del self._pending[:CHUNK_BYTES]

    def close(self) -> Part:
        """Send the last chunk (at least one in all), wait for every chunk to be written,
        and return what names them."""
        if self._pending or not self._offsets:
            self._send(bytes(self._pending))
            self._pending.clear()
        self.store.wait(self._offsets, self._errors)
        return Part(list(self._offsets), self._sha256.hexdigest(), self._bytes)

    def _send(self, chunk: bytes) -> None:
        i = len(self._offsets)
        self._offsets.append(-1)
        key = chunk_key(self.partition, self.slot, i, self.delta)
        self.store.produce(self.target, key, chunk, _delivered(self._offsets, self._errors, i))


def _delivered(offsets: list[int], errors: list[str], i: int) -> Any:
    """A delivery report that records record ``i``'s offset, or its error."""

    def report(err: Any, msg: Any) -> None:
        if err is not None:
            errors.append(str(err))
        else:
            offsets[i] = int(msg.offset())

    return report


class _TailReader:
    """Reads one model-state partition backwards in growing windows."""

    def __init__(self, settings: Settings, topic: str, partition: int) -> None:
        from confluent_kafka import Consumer, TopicPartition

        self._tp = TopicPartition
        self.topic, self.partition = topic, partition
        config = consumer_config(
            settings,
            "vigie-model-state-reader",
            client_id="vigie-worker-restore",
            overrides={
                "enable.partition.eof": True,
                "fetch.max.bytes": 8 * CHUNK_BYTES,
                # Once at the end, a fetch waits at the broker for new records (500 ms by
                # default), and seeking back waits for it: each restore took 0.5 s more.
                "fetch.wait.max.ms": 10,
            },
        )
        self.consumer = Consumer(config)
        self.low, self.high = watermarks(
            self.consumer, TopicPartition(topic, partition), timeout_s=30
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
