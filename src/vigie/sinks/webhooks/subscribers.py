"""Webhook subscribers, declared in a TOML or JSON file (``Settings.webhooks_file``).

TOML::

    [[subscribers]]
    name = "valuation-desk"
    url = "https://targeting.example/hooks/vigie"
    secret = "whsec_..."            # Standard Webhooks secret: whsec_ + base64
    min_risk = 0.8                  # final risk at least this
    chapters = ["61", "62"]         # HS chapters (2 digits); empty: all
    offices = ["FR000730"]          # customs offices; empty: all
    [subscribers.detectors]         # every listed detector must score at least this
    valuation = 0.7                 # valuation | atypicality | supervised

JSON: ``{"subscribers": [{...}, ...]}`` with the same fields. Every filter must hold.

>>> from vigie.sinks.examples import example_alert
>>> desk = Subscriber(name="desk", url="http://127.0.0.1:9/h", secret=new_secret(),
...                   min_risk=0.8, detectors={"valuation": 0.7}, chapters=("62",))
>>> desk.matches(example_alert(risk=0.93, valuation=0.9))
True
>>> desk.matches(example_alert(risk=0.93, valuation=0.5)), desk.matches(example_alert(risk=0.7))
(False, False)
>>> desk.matches(example_alert(commodity_code="61091000"))
False
"""

from __future__ import annotations

import json
import logging
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from vigie.contracts.schemas import Alert
from vigie.errors import ConfigurationError
from vigie.sinks.webhooks.signing import new_secret, secret_bytes

DetectorName = Literal["valuation", "atypicality", "supervised"]


log = logging.getLogger(__name__)


class Subscriber(BaseModel):
    """One receiver of alert webhooks, with its secret and filters."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, max_length=64, pattern=r"^[\w.-]+$")
    url: str = Field(pattern=r"^https?://\S+$")
    secret: str = Field(repr=False)
    min_risk: float = Field(default=0.0, ge=0, le=1)
    detectors: dict[DetectorName, float] = Field(default_factory=dict)
    chapters: tuple[str, ...] = ()
    offices: tuple[str, ...] = ()

    @field_validator("secret")
    @classmethod
    def _valid_secret(cls, value: str) -> str:
        try:
            secret_bytes(value)
        except ConfigurationError as exc:
            raise ValueError(str(exc)) from exc
        return value

    @field_validator("chapters")
    @classmethod
    def _two_digits(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        bad = [c for c in value if len(c) != 2 or not c.isdigit()]
        if bad:
            raise ValueError(f"chapters are 2-digit HS chapters, got {bad}")
        return value

    def matches(self, alert: Alert) -> bool:
        """True if every filter of this subscriber holds for the alert."""
        score = alert.score
        scores = {
            "valuation": score.valuation.score,
            "atypicality": score.atypicality.score,
            "supervised": score.supervised_probability,
        }
        return (
            score.risk >= self.min_risk
            and all(scores[name] >= floor for name, floor in self.detectors.items())
            and (not self.chapters or score.commodity_code[:2] in self.chapters)
            and (not self.offices or score.office in self.offices)
        )

    def public(self) -> dict[str, Any]:
        """The subscriber without its secret, for listings."""
        return self.model_dump(mode="json", exclude={"secret"})


def load_subscribers(path: Path) -> tuple[Subscriber, ...]:
    """Read and validate the subscribers file (``.toml`` or ``.json``)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(f"cannot read webhooks file {path}: {exc}") from exc
    try:
        data = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise ConfigurationError(f"webhooks file {path} does not parse: {exc}") from exc
    if path.stat().st_mode & 0o077:
        log.warning("webhooks file %s holds secrets and is readable by others: chmod 600 it", path)
    return parse_subscribers(data, source=str(path))


def parse_subscribers(data: Any, *, source: str = "<config>") -> tuple[Subscriber, ...]:
    """Validate ``{"subscribers": [...]}``; names must be unique.

    >>> parse_subscribers({"subscribers": [{"name": "a", "url": "ftp://x", "secret": "k"}]})
    Traceback (most recent call last):
    ...
    vigie.errors.ConfigurationError: <config>: subscriber #0 (a): url: String should match ...
    """
    if not isinstance(data, Mapping) or not isinstance(data.get("subscribers"), list):
        raise ConfigurationError(f"{source}: expected a list under 'subscribers'")
    subscribers = []
    for i, item in enumerate(data["subscribers"]):
        name = item.get("name", "?") if isinstance(item, Mapping) else "?"
        try:
            subscribers.append(Subscriber.model_validate(item))
        except ValidationError as exc:
            raise ConfigurationError(f"{source}: subscriber #{i} ({name}): {_brief(exc)}") from exc
    names = [s.name for s in subscribers]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigurationError(f"{source}: subscriber names must be unique: {duplicates}")
    return tuple(subscribers)


def _brief(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors(include_url=False)
    )


__all__ = ["Subscriber", "load_subscribers", "new_secret", "parse_subscribers"]
