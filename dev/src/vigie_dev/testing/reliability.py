"""The fault suite's invariants, checked per fault, and the reliability table they make.

A fault's :class:`Window` is the declarations produced while it lasted (from the fault
until the engine had recovered). :func:`verdict` checks, for those declarations only,
against everything observed at the end of the run (:class:`Observed`):

* every Score the declarations topic calls for is on Kafka, and in ClickHouse exactly
  once in raw rows (no ``FINAL``); so is each declaration revision;
* every selected Score has its Alert and every Alert its selected Score;
* every Alert is in ClickHouse once (raw rows), in Redis once, and delivered to each
  subscriber it matches under one ``webhook-id`` (a 2xx answer repeated for the same
  ``webhook-id`` is counted apart: Standard Webhooks receivers drop it);
* nothing learnt twice: each Score's count of learnt declarations is what the ledger says;
* a Score sent again (after a restart) says what it said the first time;
* every message that must be rejected is in the dead-letter topic, and once in ClickHouse.

``lost`` sums what is missing, ``duplicated`` what is there more than once (or should
not be there at all).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from vigie.contracts.schemas import Alert, DeadLetter
from vigie.sinks.warehouse.rows import letter_id
from vigie_dev.testing.ledger import Identity, Ledger, identity, learnt_before
from vigie_dev.testing.receiver import Deliveries

UNCOMPARED = ("scored_at", "latency_ms")
"""What a Score sent again may change: when it was made, and how long that took."""


@dataclass
class Window:
    """One fault, and the declarations produced while it lasted."""

    fault: str
    ids: set[str]
    in_flight: int
    recover_s: float | None
    letters: set[str] = field(default_factory=set)
    """letter_ids of messages this fault sent that must be dead-lettered."""
    notes: dict[str, Any] = field(default_factory=dict)


@dataclass
class Observed:
    """Everything the run left behind, read once at its end."""

    book: Ledger
    scores: list[dict[str, Any]]
    alerts: list[dict[str, Any]]
    letters: list[dict[str, Any]]
    warehouse: dict[str, Counter[Any]]
    """Raw rows per identity: declarations, scores ((id, item, revision)); alerts,
    dead_letters (alert_id, letter_id)."""
    redis: Counter[str]
    hooks: dict[str, Deliveries]
    wanted_hooks: dict[str, set[str]]


@dataclass
class Verdict:
    fault: str
    declarations: int
    in_flight: int
    lost: int
    duplicated: int
    learnt_twice: int
    recover_s: float | None
    redelivered: int
    details: dict[str, int]
    notes: dict[str, Any]

    @property
    def clean(self) -> bool:
        return self.lost == 0 and self.duplicated == 0 and self.learnt_twice == 0


def verdict(window: Window, seen: Observed) -> Verdict:
    """Check the invariants for ``window``'s declarations (see the module's docstring)."""
    lost: Counter[str] = Counter()
    dup: Counter[str] = Counter()
    due = {k: n for k, n in seen.book.scores.items() if k[0] in window.ids}
    mine = [s for s in seen.scores if s["declaration_id"] in window.ids]
    by_identity: dict[Identity, list[dict[str, Any]]] = defaultdict(list)
    for score in mine:
        by_identity[identity(score)].append(score)
    lost["scores on Kafka"] = len(due.keys() - by_identity.keys())
    dup["Scores not due"] = len(by_identity.keys() - due.keys())
    learnt_twice = sum(learnt_before(s) != due[k] for k, ss in by_identity.items()
                       if k in due for s in ss)  # fmt: skip
    dup["Scores changed when sent again"] = sum(len({_said(s) for s in ss}) > 1
                                                for ss in by_identity.values())  # fmt: skip
    for table in ("declarations", "scores"):
        rows = seen.warehouse[table]
        _count(lost, dup, f"{table} in ClickHouse", rows, set(due))
        dup[f"{table} in ClickHouse, not due"] = sum(
            1 for k in rows if k[0] in window.ids and k not in due
        )
    selected = {Alert.id_for(*k) for k, ss in by_identity.items() if any(s["selected"] for s in ss)}
    raised = {a["alert_id"] for a in seen.alerts if a["score"]["declaration_id"] in window.ids}
    lost["selected Scores without Alert"] = len(selected - raised)
    lost["Alerts without selected Score"] = len(raised - selected)
    _count(lost, dup, "alerts in ClickHouse", seen.warehouse["alerts"], raised)
    _count(lost, dup, "alerts in Redis", seen.redis, raised)
    redelivered = 0
    for name, got in seen.hooks.items():
        wanted = seen.wanted_hooks[name] & raised
        lost[f"webhooks to {name}"] = len(wanted - got.ids_by_alert.keys())
        dup[f"webhooks to {name}"] = sum(len(got.ids_by_alert[a]) > 1 for a in wanted)
        ids = {i for a in wanted for i in got.ids_by_alert.get(a, ())}
        redelivered += sum(got.answered[i] - 1 for i in ids)
    if window.letters:
        on_topic = {_letter_id(letter) for letter in seen.letters}
        lost["rejects not in the dead-letter topic"] = len(window.letters - on_topic)
        _count(lost, dup, "dead letters in ClickHouse", seen.warehouse["dead_letters"],
               window.letters)  # fmt: skip
    details = {f"lost: {k}": v for k, v in lost.items() if v}
    details |= {f"duplicated: {k}": v for k, v in dup.items() if v}
    return Verdict(
        window.fault, len(window.ids), window.in_flight, sum(lost.values()), sum(dup.values()),
        learnt_twice, window.recover_s, redelivered, details, window.notes,
    )  # fmt: skip


def _count(
    lost: Counter[str], dup: Counter[str], what: str, rows: Counter[Any], due: set[Any]
) -> None:
    lost[what] += sum(1 for k in due if rows[k] == 0)
    dup[what] += sum(rows[k] - 1 for k in due if rows[k] > 1)


def _said(score: dict[str, Any]) -> bytes:
    return orjson.dumps({k: v for k, v in score.items() if k not in UNCOMPARED},
                        option=orjson.OPT_SORT_KEYS)  # fmt: skip


def _letter_id(letter: dict[str, Any]) -> str:
    return letter_id(DeadLetter.model_validate_json(orjson.dumps(letter)))  # JSON mode


# ---------------------------------------------------------------------- the table
def table(verdicts: list[Verdict]) -> str:
    """The reliability table, in Markdown."""
    lines = [
        "| fault | declarations in flight | lost | duplicated | learnt twice | time to recover |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for v in verdicts:
        recover = "-" if v.recover_s is None else f"{v.recover_s:.1f} s"
        lines.append(
            f"| {v.fault} | {v.in_flight:,} | {v.lost} | {v.duplicated} | {v.learnt_twice} "
            f"| {recover} |"
        )
    return "\n".join(lines)


def write_report(
    directory: Path, verdicts: list[Verdict], run: dict[str, Any], stem: str = "faults-latest"
) -> tuple[Path, Path]:
    """``<stem>.md`` (the table and how it was made) and ``<stem>.json`` (every figure)."""
    directory.mkdir(parents=True, exist_ok=True)
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    markdown = directory / f"{stem}.md"
    markdown.write_text(
        f"# Fault suite: reliability\n\nRun of {when}: {run['summary']}\n\n"
        f"{table(verdicts)}\n\n{run['legend']}\n"
    )
    data = directory / f"{stem}.json"
    body = {"run": {**run, "at": when}, "faults": [asdict(v) for v in verdicts]}
    data.write_bytes(orjson.dumps(body, option=orjson.OPT_INDENT_2) + b"\n")
    return markdown, data
