"""The DuckDB catalog: analyst-facing views over the Delta tables, and read-only query connections.

DuckDB cannot download extensions here, so the delta extension is installed from the
`duckdb-ext-delta` wheel's folder. No process keeps the catalog file open for writing: it is built
into a new file and renamed into place, and `connect` builds the views in an in-memory database,
so queries never wait on, or block, a running load.
"""

from __future__ import annotations

import os
from pathlib import Path

import duckdb

from schemas.tables import TABLE_COLUMNS
from warehouse.storage import WarehouseStorage

EXTENSION_NAME = "delta"

# Analyst-facing views: name -> (Delta table, columns). The contract of CHANNEL_MODEL.md.
VIEW_TABLES: dict[str, str] = {
    "sellout": "sellout",
    "inventory": "inventory",
    "loads": "loads",
    "quarantine": "quarantine",
}
HIDDEN_COLUMNS: dict[str, tuple[str, ...]] = {"sellout": ("received_at",), "inventory": ("received_at",)}


def delta_extension_path() -> Path:
    """The delta extension shipped by the duckdb-ext-delta package, for this DuckDB version and platform."""
    import duckdb_ext

    version = f"v{duckdb.__version__}"
    roots = [Path(path) / "extensions" / version for path in duckdb_ext.__path__]
    found = sorted(path for root in roots for path in root.glob(f"*/{EXTENSION_NAME}.duckdb_extension"))
    if not found:
        raise RuntimeError(
            f"the DuckDB {EXTENSION_NAME} extension for DuckDB {duckdb.__version__} is not installed; "
            "run `make install` (it installs duckdb-ext-delta matching the pinned DuckDB)"
        )
    return found[0]


def load_delta_extension(connection: duckdb.DuckDBPyConnection) -> None:
    """Install the delta extension from its wheel's file (no download) and load it."""
    connection.execute(f"INSTALL '{delta_extension_path()}'")
    connection.execute(f"LOAD {EXTENSION_NAME}")


def view_sql(storage: WarehouseStorage, view: str) -> str:
    table = VIEW_TABLES[view]
    columns = [name for name in TABLE_COLUMNS[table] if name not in HIDDEN_COLUMNS.get(view, ())]
    uri = storage.table_uri(table).replace("'", "''")
    return f"CREATE OR REPLACE VIEW {view} AS SELECT {', '.join(columns)} FROM delta_scan('{uri}')"


def create_views(connection: duckdb.DuckDBPyConnection, storage: WarehouseStorage) -> None:
    for view in VIEW_TABLES:
        connection.execute(view_sql(storage, view))


def build_catalog(storage: WarehouseStorage, catalog_path: Path) -> Path:
    """Write the catalog of views to a new DuckDB file and rename it over `catalog_path` atomically."""
    catalog_path.parent.mkdir(parents=True, exist_ok=True)
    partial = catalog_path.with_name(f".{catalog_path.name}.{os.getpid()}.partial")
    partial.unlink(missing_ok=True)
    connection = duckdb.connect(str(partial))
    try:
        load_delta_extension(connection)
        create_views(connection, storage)
        connection.execute("CHECKPOINT")
    finally:
        connection.close()
    partial.replace(catalog_path)
    return catalog_path


def connect(storage: WarehouseStorage) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with every view defined: reads never lock the catalog file."""
    connection = duckdb.connect(":memory:")
    load_delta_extension(connection)
    create_views(connection, storage)
    return connection
