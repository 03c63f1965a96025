"""Session fixtures: the real local stack, started by the same code as ``vigie stack up``.

The test stack lives in ``.vigie-test/`` at the repository root, on its own ports (Kafka
29092/29093, Redis 26379), so it never collides with a developer's ``vigie stack up``.
Several pytest sessions may share it: each holds a lease, and the last one to leave stops
the stack, and only if a test session started it (see :func:`vigie_dev.stack.session`).
``VIGIE_KAFKA_BOOTSTRAP`` / ``VIGIE_REDIS_URL`` point the tests at external services.

Fixtures for other tests:

- ``stack_settings``: the session's Settings (test ports, base topics, session warehouse).
- ``kafka_bootstrap``: starts the stack if needed, creates the catalogue topics.
- ``isolated_settings``: per test, a Settings with its own state dir and a unique topic
  prefix whose catalogue topics exist: produce/consume without seeing other tests.
- ``kafka_admin`` and ``make_topic(name, partitions=1, config=None)``: ad-hoc topics with
  unique names.
- ``unique_name(prefix)``: a name no other test or session uses.
- ``redis_client``: a client of the stack's Redis (shared: use unique keys).
- ``clickhouse_dsn``: one fresh chDB directory per session (chDB allows one path per
  process; isolate tests with their own database or table names).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from hypothesis import settings as hypothesis_settings

from vigie.settings import Settings

if TYPE_CHECKING:
    import redis
    from confluent_kafka.admin import AdminClient

    from vigie_dev.stack import ServiceStatus

REPO = Path(__file__).resolve().parents[1]
TEST_STATE_DIR = REPO / ".vigie-test"
KAFKA_PORT, KAFKA_CONTROLLER_PORT, REDIS_PORT = 29092, 29093, 26379

MakeTopic = Callable[..., str]

# No per-example deadline: these shared 2-core machines are noisy. CI explores a fixed
# sequence of examples, so that a red run can be replayed; developers explore new ones.
hypothesis_settings.register_profile("dev", deadline=None)
hypothesis_settings.register_profile("ci", deadline=None, derandomize=True)
hypothesis_settings.load_profile("ci" if os.environ.get("CI") else "dev")


def unique(prefix: str) -> str:
    """A name no other test or session uses (topics, consumer groups, keys)."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="session")
def unique_name() -> Callable[[str], str]:
    """``unique_name("group")`` -> ``"group-3f2a..."``: consumer groups, keys, databases."""
    return unique


@pytest.fixture(scope="session")
def stack_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """The test session's settings: the shared test stack, a session-private warehouse."""
    warehouse = tmp_path_factory.mktemp("warehouse") / "clickhouse"
    defaults = Settings()
    return Settings(
        state_dir=TEST_STATE_DIR,
        clickhouse_url=defaults.clickhouse_url or f"chdb://{warehouse}",
        kafka_port=KAFKA_PORT,
        kafka_controller_port=KAFKA_CONTROLLER_PORT,
        redis_port=REDIS_PORT,
    )


@pytest.fixture(scope="session")
def stack(stack_settings: Settings) -> Iterator[dict[str, ServiceStatus]]:
    """Kafka and Redis up for the session (started here only if not running)."""
    from vigie_dev.stack import session

    with session(stack_settings) as statuses:
        yield statuses


@pytest.fixture(scope="session")
def kafka_bootstrap(stack: dict[str, ServiceStatus], stack_settings: Settings) -> str:
    """Bootstrap servers of the test broker, with every catalogue topic created."""
    from vigie.ingest.topics import ensure_topics

    ensure_topics(stack_settings)
    return stack_settings.bootstrap_servers


@pytest.fixture(scope="session")
def kafka_admin(kafka_bootstrap: str) -> AdminClient:
    """An admin client of the test broker."""
    from confluent_kafka.admin import AdminClient

    return AdminClient({"bootstrap.servers": kafka_bootstrap})


@pytest.fixture
def isolated_settings(
    kafka_admin: AdminClient, stack_settings: Settings, tmp_path: Path
) -> Iterator[Settings]:
    """Settings for one test: own state dir, unique topic prefix with the catalogue created.

    Every topic starting with the prefix (Faust's internal ones too, if its app id uses
    the prefix) is deleted after the test.
    """
    from vigie.ingest.topics import delete_topics, ensure_topics

    fields = stack_settings.model_dump()
    fields.update(state_dir=tmp_path / "state", topic_prefix=unique("t") + ".")
    settings = Settings(**fields)
    ensure_topics(settings)
    yield settings
    delete_topics(kafka_admin, prefix=settings.topic_prefix)


@pytest.fixture
def make_topic(kafka_admin: AdminClient) -> Iterator[MakeTopic]:
    """Create a topic with a unique name built from ``name``; return that name.

    The topics are deleted after the test.
    """
    from vigie.ingest.topics import create_topic, delete_topics

    made: list[str] = []

    def make(name: str, partitions: int = 1, config: dict[str, str] | None = None) -> str:
        topic = unique(name)
        create_topic(kafka_admin, topic, partitions, config)
        made.append(topic)
        return topic

    yield make
    for topic in made:
        delete_topics(kafka_admin, prefix=topic)


@pytest.fixture(scope="session")
def redis_client(
    stack: dict[str, ServiceStatus], stack_settings: Settings
) -> Iterator[redis.Redis]:
    """A client of the test Redis (shared by sessions: use unique keys)."""
    import redis as redis_lib

    client = redis_lib.Redis.from_url(stack_settings.redis_dsn)
    yield client
    client.close()


@pytest.fixture(scope="session")
def clickhouse_dsn(stack_settings: Settings) -> str:
    """The session's embedded warehouse (a fresh chDB directory)."""
    return stack_settings.clickhouse_dsn
