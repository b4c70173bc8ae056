"""The DuckDB catalog: rebuilt only when its views change, readable by a second process while open."""

from __future__ import annotations

from pathlib import Path

import duckdb

from warehouse.catalog import ensure_catalog, load_delta_extension
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
