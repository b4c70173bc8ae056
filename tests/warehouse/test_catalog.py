"""The DuckDB catalog: rebuilt only when its views change, readable by a second process while open,
and a view of the ledger of changes to landing before and after its table exists."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import duckdb

from schemas.tables import LANDING_CHANGES_COLUMNS
from warehouse.catalog import connect, ensure_catalog, load_delta_extension
from warehouse.retention import PURGED, LandingChange, record_changes
from warehouse.storage import storage_for_home
from warehouse.tables import ensure_tables


def test_catalog_is_built_once_and_rebuilt_when_tables_move(tmp_path: Path) -> None:
    storage = storage_for_home(tmp_path / "landing", tmp_path / "warehouse")
    ensure_tables(storage)
    catalog = tmp_path / "catalog.duckdb"
    ensure_catalog(storage, catalog)
    first = catalog.stat().st_mtime_ns
    ensure_catalog(storage, catalog)
    assert catalog.stat().st_mtime_ns == first  # unchanged views: the file is left alone

    moved = storage_for_home(tmp_path / "landing", tmp_path / "elsewhere")
    ensure_tables(moved)
    ensure_catalog(moved, catalog)
    connection = duckdb.connect(str(catalog), read_only=True)
    try:
        load_delta_extension(connection)
        sql = connection.execute("SELECT sql FROM duckdb_views() WHERE view_name = 'sellout'").fetchone()[0]
        assert "elsewhere" in sql
        assert connection.execute("SELECT count(*) FROM sellout").fetchone() == (0,)
    finally:
        connection.close()


def test_landing_changes_is_a_view_before_and_after_the_first_change(tmp_path: Path) -> None:
    storage = storage_for_home(tmp_path / "landing", tmp_path / "warehouse")
    ensure_tables(storage)
    connection = connect(storage)
    try:  # no change yet: the view exists, with the ledger's columns and no row
        empty = connection.sql("SELECT * FROM landing_changes")
        assert empty.columns == list(LANDING_CHANGES_COLUMNS)
        assert [str(t) for t in empty.types] == [
            "VARCHAR", "VARCHAR", "VARCHAR", "VARCHAR", "VARCHAR", "BIGINT", "BIGINT", "BIGINT", "VARCHAR",
            "TIMESTAMP WITH TIME ZONE",
        ]  # fmt: skip
        assert empty.fetchall() == []
    finally:
        connection.close()
    changed_at = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
    record_changes(
        storage,
        [
            LandingChange("northwind_us", "ab" * 32, PURGED, "landing/ab/" + "ab" * 32 + ".csv", None, 120, None,
                          None, "landing retention: 730 days", changed_at),
        ],
    )  # fmt: skip
    catalog = tmp_path / "catalog.duckdb"
    ensure_catalog(storage, catalog)
    for connection in (connect(storage), duckdb.connect(str(catalog), read_only=True)):
        try:
            load_delta_extension(connection)
            rows = connection.sql(
                "SELECT distributor_id, action, bytes_before, reason, changed_at FROM landing_changes"
            ).fetchall()
            assert [row[:4] for row in rows] == [("northwind_us", PURGED, 120, "landing retention: 730 days")]
            assert rows[0][4] == changed_at
        finally:
            connection.close()
