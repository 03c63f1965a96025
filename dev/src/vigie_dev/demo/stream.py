"""The demo's stream, cut by day with each day's control results after its declarations,
and replayed through one producer off the display's thread."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from vigie.contracts.catalogue import CONTROL_RESULTS, DECLARATIONS
from vigie.settings import Settings


def _day(line: bytes, field_name: str) -> str:
    return str(orjson.loads(line)[field_name])[:10]


def interleave(declarations: Path, controls: Path, out_dir: Path) -> list[tuple[Path, Path]]:
    """Cut the stream by lodging day; each day's control results follow its declarations.

    Returns (declarations, controls) file pairs to replay in order: the controls file of a
    day holds the results controlled on or before that day (the rest follow the last day).
    Both input files are in event-time order, as ``vigie generate`` writes them.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    pending = iter(controls.read_bytes().splitlines())
    control = next(pending, None)
    pairs: list[tuple[Path, Path]] = []
    for day, lines in _by_day(declarations):
        decl_path, ctl_path = out_dir / f"{day}.jsonl", out_dir / f"{day}.controls.jsonl"
        decl_path.write_bytes(b"\n".join(lines) + b"\n")
        due: list[bytes] = []
        while control is not None and _day(control, "controlled_at") <= day:
            due.append(control)
            control = next(pending, None)
        ctl_path.write_bytes(b"".join(c + b"\n" for c in due))
        pairs.append((decl_path, ctl_path))
    rest = [] if control is None else [control, *pending]
    if pairs:
        pairs[-1][1].write_bytes(pairs[-1][1].read_bytes() + b"".join(c + b"\n" for c in rest))
    return pairs


def _by_day(path: Path) -> Iterator[tuple[str, list[bytes]]]:
    day, lines = "", list[bytes]()
    with path.open("rb") as f:
        for raw in f:
            line = raw.rstrip(b"\n")
            if not line:
                continue
            this = _day(line, "lodged_at")
            if lines and this != day:
                yield day, lines
                lines = []
            day = this
            lines.append(line)
    if lines:
        yield day, lines


class ReplayThread(threading.Thread):
    """Replays the interleaved stream through one producer, off the display's thread."""

    def __init__(self, settings: Settings, pairs: list[tuple[Path, Path]], rate: float) -> None:
        super().__init__(name="demo-replay", daemon=True)
        self.settings, self.pairs, self.rate = settings, pairs, rate
        self.stopping = threading.Event()
        self.report: dict[str, Any] | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.report = self._replay()
        except BaseException as exc:  # reported by the demo's loop, on its own thread
            self.error = exc

    def _replay(self) -> dict[str, Any]:
        from vigie.ingest.pipeline import Replay
        from vigie.ingest.producer import KafkaProducer

        producer = KafkaProducer(self.settings)
        declarations = Replay(producer, topic=DECLARATIONS.name, rate=self.rate)
        controls = Replay(producer, topic=CONTROL_RESULTS.name)
        declarations.check_topics()
        for decl_path, control_path in self.pairs:
            if self.stopping.is_set():
                break
            declarations.replay_file(decl_path)
            controls.replay_file(control_path)
        done, ctl = declarations.finish(), controls.finish()
        return {
            "declarations": done.produced,
            "controls": ctl.produced,
            "rejected": done.rejected + ctl.rejected,
            "delivery_errors": done.delivery_errors + ctl.delivery_errors,
            "seconds": done.seconds,
            "declarations_per_s": round(done.produced / done.seconds, 1) if done.seconds else None,
        }
