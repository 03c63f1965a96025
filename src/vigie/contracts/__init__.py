"""Data contracts: the topic catalogue, record schemas and the codec."""

from __future__ import annotations

from vigie.contracts.catalogue import (
    ALERTS,
    CATALOGUE,
    CONTROL_FANOUT,
    CONTROL_RESULTS,
    DEAD_LETTERS,
    DECLARATIONS,
    MODEL_STATE,
    SCORES,
    Topic,
    topic_named,
)
from vigie.contracts.codec import dead_letter, decode, decode_object, encode, original_bytes
from vigie.contracts.schemas import (
    Alert,
    AtypicalityEvidence,
    Contribution,
    ControlResult,
    DeadLetter,
    Declaration,
    Reason,
    Score,
    ValuationEvidence,
)

__all__ = [
    "ALERTS",
    "CATALOGUE",
    "CONTROL_FANOUT",
    "CONTROL_RESULTS",
    "DEAD_LETTERS",
    "DECLARATIONS",
    "MODEL_STATE",
    "SCORES",
    "Alert",
    "AtypicalityEvidence",
    "Contribution",
    "ControlResult",
    "DeadLetter",
    "Declaration",
    "Reason",
    "Score",
    "Topic",
    "ValuationEvidence",
    "dead_letter",
    "decode",
    "decode_object",
    "encode",
    "original_bytes",
    "topic_named",
]
