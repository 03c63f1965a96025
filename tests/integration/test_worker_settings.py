"""The engine's settings reach the worker through the environment, as in production."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from vigie.contracts.codec import encode
from vigie.ingest.topics import admin_client, delete_topics, ensure_topics
from vigie.settings import Settings
from vigie_dev.generator import generate
from vigie_dev.testing import TopicReader, WorkerProcess, produce

pytestmark = [pytest.mark.integration, pytest.mark.slow]

N = 3000


@pytest.fixture
def other_settings(isolated_settings: Settings) -> Iterator[Settings]:
    """A second isolated environment: its own topics and state directory."""
    settings = isolated_settings.model_copy(
        update={
            "topic_prefix": f"{isolated_settings.topic_prefix}b.",
            "state_dir": isolated_settings.state_dir / "b",
        }
    )
    ensure_topics(settings)
    yield settings
    delete_topics(admin_client(settings), prefix=settings.topic_prefix)


def selected_share(settings: Settings, budget: float) -> float:
    """The share of the N declarations' imports a worker run with VIGIE_ENGINE__BUDGET
    selects (targeted, audits aside)."""
    decls = [item.declaration for item in generate(N, seed=41)]
    imports = sum(d.direction == "import" for d in decls)
    worker = WorkerProcess(settings, VIGIE_ENGINE__BUDGET=str(budget)).start()
    scores = TopicReader(settings, "scores")
    try:
        worker.wait_ready(partitions=settings.topic_partitions)
        produce(settings, "declarations", [(d.importer.encode(), encode(d)) for d in decls])
        ids = {d.declaration_id for d in decls}
        scores.read_until(lambda r: {v["declaration_id"] for v in r.values()} >= ids, 240, "N")
        selection = {v["declaration_id"]: v.get("selection") for v in scores.values()}
        return float(sum(s == "engine" for s in selection.values()) / imports)
    finally:
        scores.close()
        worker.stop()


def test_the_budget_set_in_the_environment_moves_the_share_the_worker_selects(
    isolated_settings: Settings, other_settings: Settings
) -> None:
    """Each partition's engine holds its daily quota: the share is the budget's."""
    small = selected_share(isolated_settings, 0.02)
    large = selected_share(other_settings, 0.2)
    assert abs(small - 0.02) <= 0.1 * 0.02, f"budget 0.02 selected {small:.4f}"
    assert abs(large - 0.2) <= 0.1 * 0.2, f"budget 0.2 selected {large:.4f}"
