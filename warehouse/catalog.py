"""The DuckDB catalog: analyst-facing views over the Delta tables, and read-only query connections.

DuckDB cannot download extensions here, so the delta extension is installed from the
`duckdb-ext-delta` wheel's folder, and for a warehouse on object storage the httpfs extension from
`duckdb-ext-httpfs`'s, with a temporary S3 secret built from the settings (never written to the
catalog file). No process keeps the catalog file open for writing: it is built into a new file and
renamed into place, and `connect` builds the views in an in-memory database, so queries never wait
on, or block, a running load.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from urllib.parse import urlsplit

import duckdb
import polars as pl

from schemas.tables import LANDING_CHANGES_COLUMNS, TABLE_COLUMNS, TIMESTAMP
from warehouse.reference_tables import MART_TABLES, REFERENCE_TABLES
from warehouse.storage import ObjectStorage, WarehouseStorage

EXTENSION_NAME = "delta"
HTTPFS_EXTENSION = "httpfs"
S3_SECRET = "throughline_warehouse"

# Analyst-facing views: name -> (Delta table, columns). The contract of CHANNEL_MODEL.md.
VIEW_TABLES: dict[str, str] = {
    "sellout": "sellout",
    "inventory": "inventory",
    "loads": "loads",
    "quarantine": "quarantine",
}
REFERENCE_VIEWS = REFERENCE_TABLES
"""Reference and resolution tables (`warehouse.reference_tables`): each a view of the same name, all columns."""
LEDGER_VIEWS: dict[str, dict[str, pl.DataType]] = {"landing_changes": LANDING_CHANGES_COLUMNS}
"""Ledger tables created by their first row (`warehouse.retention`): each a view of the same name,
all columns; with no rows (and the same columns) until the table exists."""
DUCKDB_TYPES = {pl.String(): "VARCHAR", pl.Int64(): "BIGINT", TIMESTAMP: "TIMESTAMPTZ"}
"""The DuckDB type of each column type a ledger view has (what delta_scan reads them as)."""


def _shell_quoted(column: str) -> str:
    """SQL giving `column`'s text single-quoted for a POSIX shell (a quote inside becomes '"'"')."""
    return "'''' || replace(" + column + ", '''', '''\"''\"''') || ''''"


EXCEPTION_VIEWS: dict[str, str] = {
    "unmatched_resellers": f"""
        SELECT s.distributor_id, s.reseller_name, s.reseller_postal_code, s.reseller_country,
               count(*) AS lines, sum(s.net_amount_base) AS revenue_base,
               min(s.transaction_date) AS first_date, max(s.transaction_date) AS last_date,
               any_value(a.method) AS method, any_value(a.score) AS best_score,
               any_value(a.candidates[1].partner_id) AS best_candidate,
               any_value(a.candidates[1].name) AS best_candidate_name,
               'throughline partners approve ' || s.distributor_id
                 || ' --name ' || {_shell_quoted("coalesce(s.reseller_name, '')")}
                 || coalesce(' --postal-code ' || {_shell_quoted("s.reseller_postal_code")}, '')
                 || coalesce(' --country ' || s.reseller_country, '')
                 || ' --partner ' || coalesce(any_value(a.candidates[1].partner_id), 'PARTNER_ID') AS fix
        FROM sellout s
        LEFT JOIN partner_aliases a
          ON a.distributor_id = s.distributor_id
         AND a.reseller_name IS NOT DISTINCT FROM s.reseller_name
         AND a.reseller_postal_code IS NOT DISTINCT FROM s.reseller_postal_code
         AND a.reseller_country IS NOT DISTINCT FROM s.reseller_country
        WHERE s.partner_id IS NULL
        GROUP BY s.distributor_id, s.reseller_name, s.reseller_postal_code, s.reseller_country
        ORDER BY revenue_base DESC NULLS LAST, lines DESC, s.distributor_id, s.reseller_name""",
    "unmapped_skus": f"""
        SELECT distributor_id, distributor_sku, count(*) AS lines, sum(quantity) AS quantity,
               sum(net_amount_base) AS revenue_base,
               min(transaction_date) AS first_date, max(transaction_date) AS last_date,
               'throughline skus map ' || distributor_id
                 || ' --part ' || {_shell_quoted("coalesce(distributor_sku, '')")}
                 || ' --sku SKU --units 1' AS fix
        FROM sellout
        WHERE sku IS NULL
        GROUP BY distributor_id, distributor_sku
        ORDER BY revenue_base DESC NULLS LAST, lines DESC, distributor_id, distributor_sku""",
    "missing_fx_rates": """
        SELECT currency, count(*) AS lines, sum(net_amount) AS net_amount,
               min(transaction_date) AS first_date, max(transaction_date) AS last_date,
               CASE WHEN currency IS NULL
                    THEN 'set the currency: a `currency` column or constant in the feed spec'
                    ELSE 'throughline rates add ' || currency || ' --date '
                         || strftime(min(transaction_date), '%Y-%m-%d') || ' --rate RATE_TO_BASE'
               END AS fix
        FROM sellout
        WHERE net_amount_base IS NULL AND net_amount IS NOT NULL
        GROUP BY currency
        ORDER BY abs(sum(net_amount)) DESC NULLS LAST, currency""",
}
"""What the 360-degree model could not resolve, ranked by the revenue it holds back, each row with
the command that fixes it (`throughline exceptions` prints them)."""
EXCEPTION_NEEDS = {
    "unmatched_resellers": ("sellout", "partner_aliases"),
    "unmapped_skus": ("sellout",),
    "missing_fx_rates": ("sellout",),
}
CATALOG_INFO = "catalog_info"
"""A one-row table in the catalog file: the fingerprint of its view definitions and when it was built."""
HIDDEN_COLUMNS: dict[str, tuple[str, ...]] = {"sellout": ("received_at",), "inventory": ("received_at",)}


def extension_path(name: str) -> Path:
    """A DuckDB extension shipped by its duckdb-ext-<name> package, for this DuckDB version and platform."""
    import duckdb_ext

    version = f"v{duckdb.__version__}"
    roots = [Path(path) / "extensions" / version for path in duckdb_ext.__path__]
    found = sorted(path for root in roots for path in root.glob(f"*/{name}.duckdb_extension"))
    if not found:
        raise RuntimeError(
            f"the DuckDB {name} extension for DuckDB {duckdb.__version__} is not installed; "
            f"run `make install` (it installs duckdb-ext-{name} matching the pinned DuckDB)"
        )
    return found[0]


def delta_extension_path() -> Path:
    """The delta extension shipped by the duckdb-ext-delta package."""
    return extension_path(EXTENSION_NAME)


def load_extension(connection: duckdb.DuckDBPyConnection, name: str) -> None:
    """Install an extension from its wheel's file (no download) and load it."""
    connection.execute(f"INSTALL '{extension_path(name)}'")
    connection.execute(f"LOAD {name}")


def load_delta_extension(connection: duckdb.DuckDBPyConnection) -> None:
    """Install the delta extension from its wheel's file (no download) and load it."""
    load_extension(connection, EXTENSION_NAME)


def _sql_text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def s3_secret_sql(storage: ObjectStorage) -> str:
    """The CREATE SECRET statement that lets httpfs and delta read `storage`'s bucket: temporary (in
    memory only, never in the catalog file), scoped to the bucket. It holds the credentials: run it,
    never log it."""
    connection = storage.connection
    options = {
        "TYPE": "s3",
        "REGION": _sql_text(connection.region),
        "SCOPE": _sql_text(f"s3://{storage.bucket}"),
    }
    for option, secret in (
        ("KEY_ID", connection.access_key_id),
        ("SECRET", connection.secret_access_key),
        ("SESSION_TOKEN", connection.session_token),
    ):
        if secret is not None:
            options[option] = _sql_text(secret.get_secret_value())
    if connection.endpoint_url:
        endpoint = urlsplit(connection.endpoint_url)
        options["ENDPOINT"] = _sql_text(endpoint.netloc)
        options["USE_SSL"] = "false" if endpoint.scheme == "http" else "true"
    options["URL_STYLE"] = _sql_text("vhost" if connection.virtual_addressing else "path")
    listed = ", ".join(f"{name} {value}" for name, value in options.items())
    return f"CREATE OR REPLACE TEMPORARY SECRET {S3_SECRET} ({listed})"


def prepare_connection(connection: duckdb.DuckDBPyConnection, storage: WarehouseStorage) -> None:
    """Load what reading `storage`'s tables needs: httpfs and an S3 secret for object storage, then delta."""
    if isinstance(storage, ObjectStorage):
        load_extension(connection, HTTPFS_EXTENSION)
        connection.execute(s3_secret_sql(storage))
    load_delta_extension(connection)


def view_sql(storage: WarehouseStorage, view: str) -> str:
    table = VIEW_TABLES[view]
    columns = [name for name in TABLE_COLUMNS[table] if name not in HIDDEN_COLUMNS.get(view, ())]
    uri = storage.table_uri(table).replace("'", "''")
    return f"CREATE OR REPLACE VIEW {view} AS SELECT {', '.join(columns)} FROM delta_scan('{uri}')"


def _delta_uri(storage: WarehouseStorage, table: str) -> str:
    return storage.table_uri(table).replace("'", "''")


def ledger_view_sql(storage: WarehouseStorage, view: str) -> str:
    """A ledger view: the table's columns, or none of its rows before the table exists."""
    columns = LEDGER_VIEWS[view]
    if storage.table_exists(view):
        uri = _delta_uri(storage, view)
        return f"CREATE OR REPLACE VIEW {view} AS SELECT {', '.join(columns)} FROM delta_scan('{uri}')"
    empty = ", ".join(f"CAST(NULL AS {DUCKDB_TYPES[dtype]}) AS {name}" for name, dtype in columns.items())
    return f"CREATE OR REPLACE VIEW {view} AS SELECT {empty} WHERE false"


def all_view_sql(storage: WarehouseStorage) -> list[str]:
    """Every view's CREATE statement, in dependency order: core and the ledger, then the reference
    tables that exist, then the exception views whose inputs exist."""
    statements = [view_sql(storage, view) for view in VIEW_TABLES]
    statements += [ledger_view_sql(storage, view) for view in LEDGER_VIEWS]
    present = {*VIEW_TABLES, *LEDGER_VIEWS}
    for view in (*REFERENCE_VIEWS, *MART_TABLES):
        if storage.table_exists(view):
            uri = _delta_uri(storage, view)
            statements.append(f"CREATE OR REPLACE VIEW {view} AS SELECT * FROM delta_scan('{uri}')")
            present.add(view)
    for view, query in EXCEPTION_VIEWS.items():
        if all(need in present for need in EXCEPTION_NEEDS[view]):
            statements.append(f"CREATE OR REPLACE VIEW {view} AS {query}")
    return statements


def view_names(storage: WarehouseStorage) -> list[str]:
    """The views the catalog of this warehouse holds, in creation order."""
    return [statement.split()[4] for statement in all_view_sql(storage)]


def create_views(connection: duckdb.DuckDBPyConnection, storage: WarehouseStorage) -> None:
    for statement in all_view_sql(storage):
        connection.execute(statement)


def build_catalog(storage: WarehouseStorage, catalog_path: Path) -> Path:
    """Write the catalog of views to a new DuckDB file and rename it over `catalog_path` atomically."""
    catalog_path.parent.mkdir(parents=True, exist_ok=True)
    partial = catalog_path.with_name(f".{catalog_path.name}.{os.getpid()}.partial")
    partial.unlink(missing_ok=True)
    connection = duckdb.connect(str(partial))
    try:
        prepare_connection(connection, storage)
        create_views(connection, storage)
        connection.execute(
            f"CREATE TABLE {CATALOG_INFO} AS SELECT ? AS fingerprint, now() AS built_at",
            [_fingerprint(storage)],
        )
        connection.execute("CHECKPOINT")
    finally:
        connection.close()
    partial.replace(catalog_path)
    return catalog_path


def _fingerprint(storage: WarehouseStorage) -> str:
    """Identifies the view definitions this version writes (they name absolute table paths)."""
    return hashlib.sha256("\n".join(all_view_sql(storage)).encode()).hexdigest()


def _catalog_is_current(storage: WarehouseStorage, catalog_path: Path) -> bool:
    """True when the catalog file was built with exactly the views this version would write."""
    if not catalog_path.exists():
        return False
    try:
        connection = duckdb.connect(str(catalog_path), read_only=True)
        try:
            found = connection.execute(f"SELECT fingerprint FROM {CATALOG_INFO}").fetchone()
        finally:
            connection.close()
    except duckdb.Error:
        return False
    return found is not None and found[0] == _fingerprint(storage)


def ensure_catalog(storage: WarehouseStorage, catalog_path: Path) -> Path:
    """Build the catalog only when it is missing or its views differ from this version's."""
    if _catalog_is_current(storage, catalog_path):
        return catalog_path
    return build_catalog(storage, catalog_path)


def connect(storage: WarehouseStorage) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with every view defined: reads never lock the catalog file."""
    connection = duckdb.connect(":memory:")
    prepare_connection(connection, storage)
    create_views(connection, storage)
    return connection


READ_ONLY_STATEMENTS = frozenset({duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN})


class ReadOnlyQueryError(ValueError):
    """A statement `throughline query` refuses: only SELECT (and EXPLAIN) over the views."""


def connect_read_only(storage: WarehouseStorage) -> duckdb.DuckDBPyConnection:
    """A connection that can only read the warehouse's tables through the views.

    Once the views exist, DuckDB's external access is switched off except for the tables' folder
    (or their object-storage prefix: no landing file, no other path or bucket, no database to
    attach, no extension to install) and the
    configuration is locked; `run_read_only` also refuses every statement but SELECT and EXPLAIN,
    so nothing can be written, not even inside the tables folder.
    """
    connection = connect(storage)
    connection.execute("SET allowed_directories = ?", [[storage.tables_location]])
    connection.execute("SET autoinstall_known_extensions = false")
    connection.execute("SET autoload_known_extensions = false")
    connection.execute("SET enable_external_access = false")
    connection.execute("SET lock_configuration = true")
    return connection


def run_read_only(connection: duckdb.DuckDBPyConnection, sql: str) -> duckdb.DuckDBPyRelation:
    """Run one read-only statement; ReadOnlyQueryError for anything else (checked before it runs)."""
    statements = duckdb.extract_statements(sql)
    if len(statements) != 1:
        raise ReadOnlyQueryError(f"give exactly one statement (got {len(statements)})")
    kind = statements[0].type
    if kind not in READ_ONLY_STATEMENTS:
        raise ReadOnlyQueryError(
            f"`query` only reads: a {kind.name} statement is refused; use SELECT over the views "
            f"({', '.join(VIEW_TABLES)})"
        )
    relation = connection.sql(sql)
    if relation is None:
        raise ReadOnlyQueryError("the statement returned no rows: `query` is for SELECT statements")
    return relation
