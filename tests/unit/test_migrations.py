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

from vigie.contracts.schemas import EXAMPLE_DECLARATION, Alert, Declaration
from vigie.errors import ConfigurationError
from vigie.sinks.examples import example_alert
from vigie.sinks.warehouse import TableWriter
from vigie.sinks.warehouse.migrations import (
    MIGRATIONS_DIR,
    load_migrations,
    migrate,
    split_statements,
)
from vigie.sinks.warehouse.rows import SERVICE_TABLES, TABLES, declaration_row

EXAMPLE = Declaration.model_validate(EXAMPLE_DECLARATION)
V1_DECLARATION_COLUMNS = (
    "declaration_id item_number lodged_at office declarant importer seller commodity_code "
    "origin dispatch procedure transport_mode incoterm invoice_currency invoice_amount "
    "customs_value_eur net_mass_kg supplementary_units duty_rate_pct preference attributes"
)


@pytest.fixture
def client(tmp_path: Path) -> Iterator[Any]:
    with closing(clickhouse_connect.get_client(dsn=f"chdb://{tmp_path / 'ch'}")) as ch:
        yield ch


REBUILD = re.compile(r"^REPLACE TABLE (\w+)\s.*\sAS SELECT\s.*\sFROM (\w+)\s", re.DOTALL)
"""``REPLACE TABLE t ... AS SELECT ... FROM t``: t rebuilt from itself, atomically."""


def test_versions_are_contiguous_and_statements_idempotent() -> None:
    migrations = load_migrations()
    assert [m.version for m in migrations] == list(range(1, len(migrations) + 1))
    for migration in migrations:
        for statement in migration.statements:
            rebuild = REBUILD.match(statement)
            if rebuild is not None:  # run again, it copies the same rows (tested below)
                assert rebuild.group(1) == rebuild.group(2), f"{migration.name}: {statement[:60]}"
                continue
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


def apply_up_to(client: Any, version: int) -> None:
    """Run the statements of the migrations up to ``version``, as an older Vigie did."""
    for migration in load_migrations():
        if migration.version <= version:
            for statement in migration.statements:
                client.command(statement)


def test_declarations_written_before_direction_read_as_imports(client: Any) -> None:
    apply_up_to(client, 2)
    row = dict(zip(TABLES["declarations"].columns, declaration_row(EXAMPLE), strict=True))
    old_columns = V1_DECLARATION_COLUMNS.split()
    client.insert("declarations", [[row[c] for c in old_columns]], column_names=old_columns)
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


OLD_SCORE = (
    "INSERT INTO scores (declaration_id, importer, office, commodity_code, lodged_at, "
    "scored_at, valuation_score, support_count, below_lowest_acceptable, duty_at_risk_eur, "
    "atypicality_score, contributions, supervised_probability, risk, expected_recoverable_eur, "
    "selected, selection_probability, threshold, reason_codes, reason_texts, model_versions, "
    "latency_ms) VALUES ('D-1', 'I-1', 'O', '62034231', '2026-01-05 10:00:00', {scored}, 0.1, "
    "0, 0, 0, 0, [], 0.1, 0.9, 0, 1, 1, 0.5, [], [], {{}}, 1)"
)
OLD_ALERT = (
    "INSERT INTO alerts (alert_id, declaration_id, raised_at, lodged_at, risk, "
    "expected_recoverable_eur, duty_at_risk_eur, importer, office, commodity_code, selection, "
    "reason_codes, reason_texts) VALUES ('{alert_id}', 'D-1', '2026-01-05 10:00:01', "
    "'2026-01-05 10:00:00', 0.9, 0, 0, 'I-1', 'O', '62034231', '{selection}', [], [])"
)


def fill_version_3(client: Any) -> None:
    """Rows as Vigie wrote them before the identity keys: a declaration re-sent with
    another importer and lodging time, a Score replayed, alerts of an item and revisions."""
    apply_up_to(client, 3)
    row = dict(zip(TABLES["declarations"].columns, declaration_row(EXAMPLE), strict=True))
    columns = V1_DECLARATION_COLUMNS.split()
    resent = {**row, "importer": "FR98765432109", "lodged_at": EXAMPLE.lodged_at.replace(day=9)}
    for values in (row, resent):
        client.insert("declarations", [[values[c] for c in columns]], column_names=columns)
    for scored in ("'2026-01-05 10:00:01'", "'2026-01-05 10:00:02'"):
        client.command(OLD_SCORE.format(scored=scored))
    alerts = [("alert:D-1", "engine"), ("alert:D-1:r2", "engine"),
              ("alert:D-1/2", "random_audit"), ("alert:D-1", "engine")]  # fmt: skip
    for alert_id, selection in alerts:
        client.command(OLD_ALERT.format(alert_id=alert_id, selection=selection))


def table_rows(client: Any) -> dict[str, list[tuple[Any, ...]]]:
    return {
        name: sorted(client.query(f"SELECT * EXCEPT ingested_at FROM {name}").result_rows)
        for name in ("declarations", "scores", "alerts")
    }


def test_identity_keys_keep_one_row_per_record_written_before(client: Any) -> None:
    fill_version_3(client)
    migrate(client)
    keys = dict(
        client.query(
            "SELECT name, sorting_key FROM system.tables WHERE database = currentDatabase()"
        ).result_rows
    )
    assert keys["declarations"] == "declaration_id, item_number"
    assert keys["scores"] == keys["alerts"] == "declaration_id, item_number, revision"
    # raw rows, no FINAL: the re-sent declaration and the replayed Score collapsed
    declarations = client.query(
        "SELECT declaration_id, revision, digest, lodged_at FROM declarations"
    ).result_rows
    assert [(d, r, digest, at.day) for d, r, digest, at in declarations] == [
        (EXAMPLE.declaration_id, 1, 0, 9)
    ]
    scores = client.query("SELECT declaration_id, item_number, revision, scored_at FROM scores")
    assert [row[:3] for row in scores.result_rows] == [("D-1", 1, 1)]
    assert scores.result_rows[0][3].second == 2  # the latest
    alerts = client.query(
        "SELECT alert_id, item_number, revision, kind, flags FROM alerts ORDER BY alert_id"
    ).result_rows
    assert alerts == [
        ("alert:D-1", 1, 1, "risk", []),
        ("alert:D-1/2", 2, 1, "random_audit", []),
        ("alert:D-1:r2", 1, 2, "risk", []),
    ]


def test_identity_keys_run_again_copy_the_same_rows(client: Any) -> None:
    fill_version_3(client)
    migrate(client)
    # written since: an amendment and the Score and Alert of a revision, with flags
    amended = EXAMPLE.model_copy(update={"customs_value_eur": 100.0})
    alert = example_alert("D-1")
    score = alert.score.model_copy(update={"revision": 3, "flags": ("mass_unknown",)})
    alert = alert.model_copy(update={"alert_id": Alert.id_for("D-1", 1, 3), "score": score})
    for name, record in (("declarations", amended), ("scores", score), ("alerts", alert)):
        writer = TableWriter(client, TABLES[name])
        writer.add(record)
        assert writer.flush() == 1
    written = table_rows(client)
    assert len(written["declarations"]) == len(written["scores"]) == 2
    assert len(written["alerts"]) == 4
    rebuild = next(m for m in load_migrations() if m.name == "identity_keys")
    for statement in rebuild.statements:  # interrupted before it was recorded: run again
        client.command(statement)
    assert table_rows(client) == written
    assert migrate(client).applied == []
