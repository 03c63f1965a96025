"""The topic catalogue: every Kafka topic Vigie reads or writes, declared once.

>>> [t.name for t in CATALOGUE]
['declarations', 'declarations.dlq', 'control-results', 'control-results.by-partition',
 'scores', 'alerts', 'model-state']
>>> DECLARATIONS.key_field
'importer'
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import BaseModel

from vigie.contracts.schemas import Alert, ControlResult, DeadLetter, Declaration, Score

DAY_MS = 24 * 3600 * 1000


@dataclass(frozen=True)
class Topic:
    """A topic's name, record type, key and configuration."""

    name: str
    schema: type[BaseModel] | None
    key_field: str | None
    partitions: int | None
    """None: the configured number of partitions for input topics (``topic_partitions``)."""
    config: dict[str, str] = field(default_factory=dict)
    description: str = ""


DECLARATIONS = Topic(
    name="declarations",
    schema=Declaration,
    key_field="importer",
    partitions=None,
    config={"retention.ms": str(30 * DAY_MS), "max.message.bytes": str(1024 * 1024)},
    description="Input import declarations, keyed by importer so that each importer's "
    "behavioural state lives on one partition.",
)
DEAD_LETTERS = Topic(
    name="declarations.dlq",
    schema=DeadLetter,
    key_field=None,
    partitions=1,
    config={"retention.ms": str(90 * DAY_MS)},
    description="Records that could not be accepted: original bytes, errors and time.",
)
CONTROL_RESULTS = Topic(
    name="control-results",
    schema=ControlResult,
    key_field="declaration_id",
    partitions=None,
    config={"retention.ms": str(365 * DAY_MS)},
    description="Inspection outcomes (labels), arriving days after the declaration.",
)
CONTROL_FANOUT = Topic(
    name="control-results.by-partition",
    schema=ControlResult,
    key_field=None,
    partitions=None,
    config={"retention.ms": str(365 * DAY_MS)},
    description="Internal: each control result, sent by the worker to the partition of "
    "the declaration it concerns (co-partitioned with declarations), so that the engine "
    "that scored the declaration learns from it.",
)
SCORES = Topic(
    name="scores",
    schema=Score,
    key_field="declaration_id",
    partitions=None,
    config={"retention.ms": str(30 * DAY_MS)},
    description="One score per declaration: every detector's output and the decision.",
)
ALERTS = Topic(
    name="alerts",
    schema=Alert,
    key_field="declaration_id",
    partitions=None,
    config={"retention.ms": str(90 * DAY_MS)},
    description="Declarations selected for control, with reason codes.",
)
MODEL_STATE = Topic(
    name="model-state",
    schema=None,
    key_field=None,
    partitions=None,
    # segments roll every hour, so that superseded snapshots are compacted away within
    # hours rather than the default week
    config={
        "cleanup.policy": "compact",
        "min.compaction.lag.ms": "60000",
        "segment.ms": str(3_600_000),
    },
    description="Compacted state topic: the latest model snapshot per partition.",
)

CATALOGUE: tuple[Topic, ...] = (
    DECLARATIONS,
    DEAD_LETTERS,
    CONTROL_RESULTS,
    CONTROL_FANOUT,
    SCORES,
    ALERTS,
    MODEL_STATE,
)


def topic_named(name: str) -> Topic:
    """The catalogue entry for a topic name.

    >>> topic_named("alerts").schema.__name__
    'Alert'
    """
    for topic in CATALOGUE:
        if topic.name == name:
            return topic
    raise KeyError(f"unknown topic {name!r}; known: {', '.join(t.name for t in CATALOGUE)}")
