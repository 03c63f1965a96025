"""Warehouse migrations: versioned files, idempotent on a real chDB, recorded, guarded.

chDB runs in-process (no service); each test opens its own directory and closes it.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import clickhouse_connect
import pytest

from vigie.contracts.schemas import EXAMPLE_DECLARATION, Declaration
from vigie.errors import ConfigurationError
from vigie.sinks.warehouse.migrations import (
    MIGRATIONS_DIR,
    load_migrations,
    migrate,
    split_statements,
)
from vigie.sinks.warehouse.rows import SERVICE_TABLES, TABLES, declaration_row


@pytest.fixture
def client(tmp_path: Path) -> Iterator[Any]:
    with closing(clickhouse_connect.get_client(dsn=f"chdb://{tmp_path / 'ch'}")) as ch:
        yield ch


def test_versions_are_contiguous_and_statements_idempotent() -> None:
    migrations = load_migrations()
    assert [m.version for m in migrations] == list(range(1, len(migrations) + 1))
    for migration in migrations:
        for statement in migration.statements:
            assert "IF NOT EXISTS" in statement, f"{migration.name}: {statement[:60]}"


def test_split_keeps_semicolons_inside_strings() -> None:
    sql = "-- header; not a statement\nCREATE TABLE a (x String DEFAULT ';');\nSELECT 1;\n"
    assert split_statements(sql) == ["CREATE TABLE a (x String DEFAULT ';')", "SELECT 1"]


def test_migrate_twice_applies_once_and_records_versions(client: Any) -> None:
    first = migrate(client)
    second = migrate(client)
    versions = [m.version for m in load_migrations()]
    assert first.applied == versions and first.already == []
    assert second.applied == [] and second.already == versions
    recorded = client.query("SELECT version, name FROM schema_migrations FINAL ORDER BY version")
    assert [row[0] for row in recorded.result_rows] == versions
    tables = {row[0] for row in client.query("SHOW TABLES").result_rows}
    assert set(TABLES) | {"schema_migrations"} <= tables


def test_tables_are_deduplicating_and_partitioned_by_month(client: Any) -> None:
    migrate(client)
    rows = client.query(
        "SELECT name, engine, partition_key, create_table_query FROM system.tables "
        "WHERE database = currentDatabase() AND name IN %(names)s",
        parameters={"names": list(TABLES)},
    ).result_rows
    assert len(rows) == len(TABLES)
    for name, engine, partition_key, ddl in rows:
        assert engine == "ReplacingMergeTree", name
        assert partition_key.startswith("toYYYYMM("), name
        assert "non_replicated_deduplication_window = 10000" in ddl, name


def test_inserted_columns_exist_in_the_ddl(client: Any) -> None:
    migrate(client)
    for table in TABLES.values():
        found = client.query(
            "SELECT name, default_kind FROM system.columns "
            "WHERE database = currentDatabase() AND table = %(t)s",
            parameters={"t": table.name},
        ).result_rows
        insertable = [name for name, kind in found if kind not in ("MATERIALIZED", "DEFAULT")]
        assert tuple(insertable) == table.columns, table.name


def test_edited_migration_is_refused(client: Any, tmp_path: Path) -> None:
    copy = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, copy)
    migrate(client, copy)
    first = next(copy.glob("0001_*.sql"))
    first.write_text(first.read_text() + "\n-- an innocent-looking edit\n")
    with pytest.raises(ConfigurationError, match="add a new migration"):
        migrate(client, copy)


def test_new_migration_is_applied_on_top(client: Any, tmp_path: Path) -> None:
    copy = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, copy)
    migrate(client, copy)
    latest = max(m.version for m in load_migrations(copy))
    extra = copy / f"{latest + 1:04d}_declarations_note.sql"
    extra.write_text("ALTER TABLE declarations ADD COLUMN IF NOT EXISTS note String DEFAULT '';\n")
    report = migrate(client, copy)
    assert report.applied == [latest + 1] and report.current == latest + 1
    columns = client.query("DESCRIBE TABLE declarations").result_rows
    assert "note" in {row[0] for row in columns}


def test_misnamed_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "1_tables.sql").write_text("SELECT 1")
    with pytest.raises(ConfigurationError, match=re.escape("NNNN_name.sql")):
        load_migrations(tmp_path)


def test_service_tables_are_deduplicating_and_their_columns_inserted(client: Any) -> None:
    migrate(client)
    for table in SERVICE_TABLES.values():
        engine, partition_key, ddl = client.query(
            "SELECT engine, partition_key, create_table_query FROM system.tables "
            "WHERE database = currentDatabase() AND name = %(t)s",
            parameters={"t": table.name},
        ).first_row
        assert engine == "ReplacingMergeTree" and partition_key.startswith("toYYYYMM(")
        assert "non_replicated_deduplication_window = 10000" in ddl
        found = client.query(
            "SELECT name FROM system.columns WHERE database = currentDatabase() AND table = %(t)s",
            parameters={"t": table.name},
        ).result_rows
        assert tuple(row[0] for row in found) == table.columns


def test_declarations_written_before_direction_read_as_imports(client: Any) -> None:
    first = [m for m in load_migrations() if m.version <= 2]
    for migration in first:
        for statement in migration.statements:
            client.command(statement)
    old_columns = TABLES["declarations"].columns[:-2]
    row = declaration_row(Declaration.model_validate(EXAMPLE_DECLARATION))[:-2]
    client.insert("declarations", [row], column_names=list(old_columns))
    migrate(client)
    direction, destination = client.query(
        "SELECT direction, destination FROM declarations"
    ).first_row
    assert (direction, destination) == ("import", None)


def test_every_generated_office_has_its_region(client: Any) -> None:
    from vigie_dev.generator.catalogue import OFFICES

    migrate(client)
    regions = dict(client.query("SELECT office, region FROM office_regions FINAL").result_rows)
    assert {office.code for office in OFFICES} == set(regions)
    assert all(region.startswith("DI-") for region in regions.values())
