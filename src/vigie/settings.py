"""The one settings object. Nothing else in Vigie reads the environment.

Every field can be set with an environment variable prefixed ``VIGIE_``
(``VIGIE_KAFKA_BOOTSTRAP``, ``VIGIE_REDIS_URL``, ...); the engine's settings with
``VIGIE_ENGINE__`` (``VIGIE_ENGINE__BUDGET=0.1``).

>>> s = Settings(state_dir=Path("/tmp/vigie-doc"))
>>> s.clickhouse_dsn
'chdb:///tmp/vigie-doc/clickhouse'
>>> Settings(clickhouse_url="http://ch:8123").clickhouse_dsn
'http://ch:8123'
>>> Settings(engine={"budget": 0.1}).engine.options()["budget"]
0.1
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from pydantic import BaseModel, ConfigDict, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class EngineSettings(BaseModel):
    """How the risk engine selects and learns, the same for the worker, ``vigie evaluate``
    and the benchmarks. The names are :class:`~vigie.model.engine.RiskEngine`'s
    parameters."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    budget: float = Field(
        default=0.05, ge=0, le=1, description="Share of declarations selected for control."
    )
    audit_share: float = Field(
        default=0.01,
        ge=0,
        le=1,
        description="Probability of a random audit for a declaration the budget leaves.",
    )
    seed: int = Field(default=0, ge=0, description="Seed of the random audits.")
    exploration: float = Field(
        default=1.0,
        ge=0,
        description="Weight of the exploration value (knowledge gradient) in the selection; "
        "0: select on the infraction probability alone.",
    )
    label_delay_days: float = Field(
        default=7.0, ge=0, description="Expected days before a control result comes back."
    )
    max_weight: float = Field(
        default=20.0, ge=1, description="Clip on a control result's inverse-probability weight."
    )
    max_pending: int = Field(
        default=400_000,
        ge=1,
        description="Scored declarations kept per partition awaiting their control result.",
    )
    max_pending_days: float = Field(
        default=60.0, gt=0, description="Event-time days a declaration awaits its control."
    )
    snapshot_interval_s: float = Field(
        default=5.0, gt=0, description="Seconds between two checkpoints of a partition's model."
    )

    def options(self) -> dict[str, Any]:
        """The keyword arguments of :class:`~vigie.model.engine.RiskEngine`."""
        return self.model_dump(exclude={"snapshot_interval_s"})


class Settings(BaseSettings):
    """Vigie's configuration, frozen once read."""

    model_config = SettingsConfigDict(
        env_prefix="VIGIE_", env_nested_delimiter="__", frozen=True, extra="ignore"
    )

    state_dir: Path = Field(
        default=Path(".vigie"),
        description="Where the local stack, models, outboxes and the embedded warehouse live.",
    )
    kafka_bootstrap: str | None = Field(
        default=None,
        description="Kafka bootstrap servers. Unset: the local stack broker (started on demand).",
    )
    redis_url: str | None = Field(
        default=None,
        description="Redis URL. Unset: the local stack's Redis is used (and started).",
    )
    clickhouse_url: str | None = Field(
        default=None,
        description="ClickHouse: http(s)://host:8123 for a server; unset for embedded chDB.",
    )
    kafka_port: int = Field(default=19092, description="Port of the local Kafka broker.")
    kafka_controller_port: int = Field(default=19093, description="Port of its KRaft controller.")
    redis_port: int = Field(default=16379, description="Port of the local Redis server.")
    topic_partitions: int = Field(default=4, ge=1, description="Partitions of input topics.")
    max_message_bytes: int = Field(
        default=64 * 1024, ge=1024, description="Larger declarations are dead-lettered."
    )
    worker_web_port: int = Field(default=6066, description="Worker HTTP port (health, metrics).")
    worker_web_host: str = Field(
        default="127.0.0.1", description="Interface the worker's HTTP server listens on."
    )
    worker_token: SecretStr | None = Field(
        default=None,
        description="Bearer token of the worker's /ready and /metrics (unset: a random one, "
        "written to <state_dir>/worker.token).",
    )
    controls_token: str | None = Field(
        default=None,
        description="Bearer token of the worker's POST /controls endpoint (unset: disabled).",
    )
    topic_prefix: str = Field(
        default="",
        pattern=r"^[A-Za-z0-9._-]*$",
        description="Prefix of every topic name (one cluster shared by several environments).",
    )
    redis_prefix: str = Field(
        default="vigie",
        pattern=r"^[A-Za-z0-9._-]+$",
        description="Prefix of every Redis key (stream <prefix>:alerts, <prefix>:alert:<id>...).",
    )
    alerts_stream_maxlen: int = Field(
        default=100_000, ge=1, description="Approximate bound of the Redis alert stream."
    )
    webhooks_file: Path | None = Field(
        default=None, description="TOML or JSON file declaring the webhook subscribers."
    )
    webhooks_retention_days: float = Field(
        default=7.0,
        gt=0,
        description="Delivered webhooks stay this long in the outbox, then are pruned.",
    )
    engine: EngineSettings = Field(
        default_factory=EngineSettings, description="The risk engine's budget and learning."
    )
    web_host: str = Field(default="127.0.0.1", description="Address `vigie web` listens on.")
    web_port: int = Field(default=8080, ge=1, le=65535, description="Port of `vigie web`.")
    web_accounts_file: Path | None = Field(
        default=None,
        description="TOML file of the web app's accounts (default: <state dir>/web/accounts.toml).",
    )
    web_session_hours: float = Field(
        default=8.0, gt=0, le=24 * 30, description="Lifetime of a web session or API token."
    )
    web_secure_cookies: bool = Field(
        default=False, description="Mark session cookies Secure (set it behind HTTPS)."
    )

    def topic(self, name: str) -> str:
        """The physical name of a catalogue topic: ``topic_prefix`` + logical name.

        >>> Settings(topic_prefix="test-1.").topic("declarations")
        'test-1.declarations'
        """
        return f"{self.topic_prefix}{name}"

    @property
    def bootstrap_servers(self) -> str:
        """Kafka bootstrap servers: the configured ones, or the local broker's."""
        return self.kafka_bootstrap or f"127.0.0.1:{self.kafka_port}"

    @property
    def redis_dsn(self) -> str:
        """Redis URL: the configured one, or the local server's."""
        return self.redis_url or f"redis://127.0.0.1:{self.redis_port}/0"

    @property
    def clickhouse_dsn(self) -> str:
        """ClickHouse DSN: a server URL, or embedded chDB under the state directory."""
        if self.clickhouse_url:
            return self.clickhouse_url
        return f"chdb://{self.state_dir.resolve() / 'clickhouse'}"

    @property
    def web_dir(self) -> Path:
        """Where the web app keeps its accounts and its signing key."""
        return self.state_dir / "web"

    @property
    def accounts_path(self) -> Path:
        """The web app's accounts file."""
        return self.web_accounts_file or self.web_dir / "accounts.toml"

    @property
    def uses_external_kafka(self) -> bool:
        return self.kafka_bootstrap is not None

    @property
    def uses_external_redis(self) -> bool:
        return self.redis_url is not None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read from the environment once."""
    return Settings()


def redacted(url: str) -> str:
    """A service URL without its password, fit for logs and messages.

    >>> redacted("http://vigie:s3cret@clickhouse:8123"), redacted("chdb:///var/lib/ch")
    ('http://vigie:***@clickhouse:8123', 'chdb:///var/lib/ch')
    """
    parsed = urlparse(url)
    if parsed.password is None:
        return url
    host = parsed.netloc.rsplit("@", 1)[1]
    return parsed._replace(netloc=f"{parsed.username or ''}:***@{host}").geturl()
