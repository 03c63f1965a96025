"""Versioned, idempotent schema migrations for the ClickHouse warehouse.

Migrations are the files ``src/vigie/sinks/migrations/NNNN_name.sql``, applied in version
order at start and recorded in ``schema_migrations`` (version, name, checksum, time).
Each statement is idempotent (``IF NOT EXISTS``, or a table rebuilt from itself by
``REPLACE TABLE t ... AS SELECT ... FROM t``), so a migration interrupted half-way and
run again converges on the same schema and rows. A recorded migration whose file has
since changed is refused: the schema would no longer say what the files say.

Examples
--------
>>> for m in load_migrations():
...     print(m.version, m.name, len(m.statements))
1 tables 5
2 importer_index 2
3 flows_regions_audit 5
4 identity_keys 13
>>> split_statements("-- a comment; still a comment\\nSELECT 1;\\n\\nSELECT ';'")
['SELECT 1', "SELECT ';'"]
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from vigie.errors import ConfigurationError

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
_FILE_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")

LEDGER_DDL = """
CREATE TABLE IF NOT EXISTS schema_migrations
(
    version UInt32,
    name String,
    checksum String,
    applied_at DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(applied_at)
ORDER BY version
"""


@dataclass(frozen=True)
class Migration:
    """One migration file: its version, name, statements and content checksum."""

    version: int
    name: str
    statements: tuple[str, ...]
    checksum: str


@dataclass
class MigrationReport:
    """What :func:`migrate` did: versions applied now, and those found already applied."""

    applied: list[int] = field(default_factory=list)
    already: list[int] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"applied": self.applied, "already": self.already, "current": self.current}

    @property
    def current(self) -> int:
        """The schema version now in place (0 when empty)."""
        return max([*self.applied, *self.already], default=0)


def split_statements(sql: str) -> list[str]:
    """SQL statements of a migration file, without comments or empty statements."""
    statements: list[str] = []
    current: list[str] = []
    quoted = False
    for line in sql.splitlines():
        if not quoted and line.lstrip().startswith("--"):
            continue
        for char in line:
            if char == "'":
                quoted = not quoted
            if char == ";" and not quoted:
                statements.append("".join(current))
                current = []
            else:
                current.append(char)
        current.append("\n")
    statements.append("".join(current))
    return [s.strip() for s in statements if s.strip()]


def load_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """Every migration in ``directory``, by version; duplicated versions are refused."""
    migrations: dict[int, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        match = _FILE_NAME.match(path.name)
        if match is None:
            raise ConfigurationError(f"migration file {path.name!r}: expected NNNN_name.sql")
        version = int(match.group(1))
        if version in migrations:
            raise ConfigurationError(f"migration version {version} appears twice in {directory}")
        text = path.read_text(encoding="utf-8")
        migrations[version] = Migration(
            version=version,
            name=match.group(2),
            statements=tuple(split_statements(text)),
            checksum=hashlib.sha256(text.encode("utf-8")).hexdigest()[:16],
        )
    return [migrations[v] for v in sorted(migrations)]


def applied_migrations(client: Any) -> dict[int, str]:
    """Version to checksum of the migrations recorded in ``schema_migrations``."""
    client.command(LEDGER_DDL)
    result = client.query(
        "SELECT version, argMax(checksum, applied_at) FROM schema_migrations GROUP BY version"
    )
    return {int(version): str(checksum) for version, checksum in result.result_rows}


def migrate(client: Any, directory: Path = MIGRATIONS_DIR) -> MigrationReport:
    """Apply the migrations not yet recorded, in order, and record each one."""
    report = MigrationReport()
    done = applied_migrations(client)
    for migration in load_migrations(directory):
        if migration.version in done:
            if done[migration.version] != migration.checksum:
                raise ConfigurationError(
                    f"migration {migration.version:04d}_{migration.name} was applied with "
                    f"checksum {done[migration.version]} but the file now has "
                    f"{migration.checksum}: add a new migration instead of editing this one"
                )
            report.already.append(migration.version)
            continue
        for statement in migration.statements:
            client.command(statement)
        client.insert(
            "schema_migrations",
            [[migration.version, migration.name, migration.checksum, datetime.now(UTC)]],
            column_names=["version", "name", "checksum", "applied_at"],
        )
        log.info("applied migration %04d_%s", migration.version, migration.name)
        report.applied.append(migration.version)
    return report
