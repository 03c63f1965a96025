"""Demo runs: the namespace each ``vigie demo`` works in, and ``--run`` to reach it.

A run ``R`` of the state directory ``S`` has its own topics (``<topic prefix>demo-R.*``),
Redis keys (``<redis prefix>.demo-R:*``) and directory ``S/demo/R/`` (generated files,
logs, the worker's state, the webhook outbox, the embedded warehouse). The commands that
read what a run left (``alerts tail``, ``dlq tail``, ``warehouse summary``, ``webhooks
failed``, ``vigie web``...) take ``--run R`` or ``--run latest`` and resolve it here, in
one place, into the run's settings.

>>> from pathlib import Path
>>> s = run_settings(Settings(state_dir=Path("/tmp/v")), "r1")
>>> s.topic("declarations"), s.redis_prefix, str(s.state_dir)
('demo-r1.declarations', 'vigie.demo-r1', '/tmp/v/demo/r1')
>>> run_options(s)
'--run r1'
"""

from __future__ import annotations

from vigie.cli.output import CommandError
from vigie.settings import Settings, get_settings

RUNS_DIR = "demo"
LATEST = "latest"


def run_settings(base: Settings, run_id: str) -> Settings:
    """The settings of one demo run: its own topics, Redis keys and directory."""
    return base.model_copy(
        update={
            "state_dir": base.state_dir / RUNS_DIR / run_id,
            "kafka_bootstrap": base.bootstrap_servers,
            "redis_url": base.redis_dsn,
            # an embedded warehouse belongs to one run (chDB: one process per directory)
            "clickhouse_url": None if _embedded(base) else base.clickhouse_url,
            "topic_prefix": f"{base.topic_prefix}demo-{run_id}.",
            "redis_prefix": f"{base.redis_prefix}.demo-{run_id}",
        }
    )


def run_ids(base: Settings) -> list[str]:
    """The runs kept under the state directory, oldest first (ids sort by time)."""
    runs = base.state_dir / RUNS_DIR
    if not runs.is_dir():
        return []
    return sorted(path.name for path in runs.iterdir() if path.is_dir())


def resolve(base: Settings, run: str | None) -> Settings:
    """``base`` itself when no run is named, else that run's settings (``latest``: the
    newest); :class:`CommandError` naming the runs there are when it does not exist."""
    if run is None:
        return base
    runs = run_ids(base)
    where = base.state_dir / RUNS_DIR
    if not runs:
        raise CommandError(
            f"no demo run in {where}: run vigie demo (or make demo) first, "
            "or set VIGIE_STATE_DIR to the state directory it used"
        )
    chosen = runs[-1] if run == LATEST else run
    if chosen not in runs:
        raise CommandError(f"no demo run {run!r} in {where}: there is {', '.join(runs)}")
    return run_settings(base, chosen)


def settings_for(run: str | None) -> Settings:
    """The settings a command works with: the environment's, or a demo run's."""
    return resolve(get_settings(), run)


def run_options(settings: Settings) -> str:
    """The ``--run`` option that reaches ``settings`` again, if it is a run's."""
    return f"--run {settings.state_dir.name}" if settings.state_dir.parent.name == RUNS_DIR else ""


def _embedded(settings: Settings) -> bool:
    return settings.clickhouse_dsn.startswith("chdb:")
