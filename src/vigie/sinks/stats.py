"""What a pump did: records consumed, written per sink, dead-lettered, checkpoints."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class SinkStats:
    """What a pump did: records consumed, written per sink, dead-lettered, checkpoints."""

    consumed: int = 0
    written: int = 0
    """Records the routes' sinks reported written (replayed duplicates not counted)."""
    rows: dict[str, int] = field(default_factory=dict)
    """What each sink's writes returned, by sink name."""
    dead_lettered: int = 0
    dead_letter_reasons: dict[str, int] = field(default_factory=dict)
    checkpoints: int = 0
    kafka_errors: list[str] = field(default_factory=list)
    rejoins: int = 0
    """Times the consumer was made anew because its group membership had stalled."""
    first_record_at: float | None = None
    last_checkpoint_at: float | None = None

    @property
    def records_per_s(self) -> float | None:
        """Records consumed and written per second, first record to last checkpoint."""
        if self.first_record_at is None or self.last_checkpoint_at is None:
            return None
        elapsed = self.last_checkpoint_at - self.first_record_at
        return round(self.consumed / elapsed, 1) if elapsed > 0 else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "consumed": self.consumed,
            "written": self.written,
            "rows": dict(self.rows),
            "dead_lettered": self.dead_lettered,
            "dead_letter_reasons": dict(self.dead_letter_reasons),
            "checkpoints": self.checkpoints,
            "records_per_s": self.records_per_s,
            "kafka_errors": list(self.kafka_errors),
            "rejoins": self.rejoins,
        }
