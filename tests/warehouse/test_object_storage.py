"""The warehouse on object storage (the local S3 server of `tests/conftest.py`): the settings that
choose it, the storage primitives, commits that cannot overwrite each other, the read-only catalog
over httpfs, and readers other than DuckDB (Polars, pandas through deltalake, pyarrow datasets)
getting the same numbers as the DuckDB views.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from deltalake import CommitProperties, DeltaTable, write_deltalake
from deltalake.exceptions import CommitFailedError

from schemas.settings import SettingsError, ThroughlineSettings
from tests.conftest import OBJECT_STORE_CREDENTIALS, REPO_ROOT, ObjectStoreServer, SampleWarehouse
from warehouse.catalog import ReadOnlyQueryError, connect_read_only, run_read_only
from warehouse.storage import LocalStorage, ObjectStorage, storage_for

pytestmark = pytest.mark.system

CORE_QUERIES = {
    "sellout": "select count(*) as rows, count(distinct line_id) as lines, sum(quantity) as quantity, "
    "sum(net_amount) as net_amount from sellout",
    "inventory": "select count(*) as rows, count(distinct line_id) as lines, sum(quantity_on_hand) as quantity, "
    "null as net_amount from inventory",
    "loads": "select count(*) as rows, count(distinct load_id) as lines, sum(rows_loaded) as quantity, "
    "null as net_amount from loads",
    "quarantine": "select count(*) as rows, count(distinct load_id) as lines, sum(source_row) as quantity, "
    "null as net_amount from quarantine",
}
"""The figures each reader must agree on: rows, distinct keys, a quantity and (sell-out) an amount."""
FIGURE_COLUMNS = {
    "sellout": ("line_id", "quantity", "net_amount"),
    "inventory": ("line_id", "quantity_on_hand", None),
    "loads": ("load_id", "rows_loaded", None),
    "quarantine": ("load_id", "source_row", None),
}


def _figures(table: pa.Table, name: str) -> tuple[object, ...]:
    key, quantity, amount = FIGURE_COLUMNS[name]
    total = pc.sum(table[amount]).as_py() if amount else None
    return (
        table.num_rows,
        len(pc.unique(table[key])),
        pc.sum(table[quantity]).as_py(),
        None if total is None else round(float(total), 2),
    )


def _duckdb_figures(warehouse: SampleWarehouse, name: str) -> tuple[object, ...]:
    rows, lines, quantity, amount = warehouse.query(CORE_QUERIES[name]).row(0)
    return rows, lines, quantity, None if amount is None else round(float(amount), 2)


@pytest.mark.parametrize("table", sorted(CORE_QUERIES))
def test_polars_pandas_and_pyarrow_read_the_same_numbers_as_the_views(
    sample_warehouse_on_s3: SampleWarehouse, table: str
) -> None:
    warehouse = sample_warehouse_on_s3
    storage = warehouse.storage
    assert isinstance(storage, ObjectStorage)
    uri, options = storage.table_uri(table), storage.storage_options
    assert uri.startswith("s3://")
    expected = _duckdb_figures(warehouse, table)
    assert expected[0] > 0
    with_polars = pl.scan_delta(uri, storage_options=options).collect().to_arrow()
    with_pandas = pa.Table.from_pandas(DeltaTable(uri, storage_options=options).to_pandas())
    with_pyarrow = DeltaTable(uri, storage_options=options).to_pyarrow_dataset().to_table()
    assert _figures(with_polars, table) == expected
    assert _figures(with_pandas, table) == expected
    assert _figures(with_pyarrow, table) == expected


def test_the_sample_on_object_storage_equals_the_sample_on_disk(
    sample_warehouse: SampleWarehouse, sample_warehouse_on_s3: SampleWarehouse
) -> None:
    query = (
        "select distributor_id, count(*) as n, sum(quantity) as q, sum(net_amount) as net from sellout "
        "group by all order by all"
    )
    assert sample_warehouse_on_s3.query(query).equals(sample_warehouse.query(query))
    statuses = "select status, count(*) as n, sum(rows_loaded) as r from loads group by all order by all"
    assert sample_warehouse_on_s3.query(statuses).equals(sample_warehouse.query(statuses))


def test_the_read_only_catalog_reads_the_tables_and_nothing_else(
    sample_warehouse_on_s3: SampleWarehouse,
) -> None:
    warehouse = sample_warehouse_on_s3
    source_file = warehouse.query("select source_file from loads where status = 'loaded' limit 1").item()
    landing_object = f"{warehouse.environ['THROUGHLINE_WAREHOUSE_URI']}/{source_file}"
    assert warehouse.storage.landing_exists(source_file)
    connection = connect_read_only(warehouse.storage)
    try:
        assert run_read_only(connection, "select count(*) from sellout").fetchone()[0] > 0
        secrets = str(run_read_only(connection, "select * from duckdb_secrets()").fetchall())
        assert "throughline_warehouse" in secrets
        assert OBJECT_STORE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"] not in secrets  # redacted
        with pytest.raises(duckdb.PermissionException):
            run_read_only(connection, f"select * from read_text('{landing_object}')").fetchall()
        with pytest.raises(ReadOnlyQueryError):
            run_read_only(connection, "drop secret throughline_warehouse")
    finally:
        connection.close()


def test_settings_choose_the_storage_and_keep_the_secrets_out_of_sight(tmp_path: Path) -> None:
    environ = {
        "THROUGHLINE_WAREHOUSE_URI": "s3://bucket-name/some/prefix/",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9000",
        **OBJECT_STORE_CREDENTIALS,
    }
    settings = ThroughlineSettings.for_home(tmp_path, environ)
    storage = storage_for(settings)
    assert isinstance(storage, ObjectStorage)
    assert storage.table_uri("sellout") == "s3://bucket-name/some/prefix/tables/sellout"
    assert storage.landing_root_uri == "s3://bucket-name/some/prefix/landing"
    assert storage.storage_options["AWS_ALLOW_HTTP"] == "true"
    secret = OBJECT_STORE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"]
    assert storage.storage_options["AWS_SECRET_ACCESS_KEY"] == secret
    for shown in (repr(settings), repr(storage), str(settings.model_dump()), settings.model_dump_json()):
        assert secret not in shown
    landing = ThroughlineSettings.for_home(tmp_path, {**environ, "THROUGHLINE_LANDING_URI": "s3://raw-files"})
    assert storage_for(landing).landing_root_uri == "s3://raw-files"  # type: ignore[attr-defined]
    assert isinstance(storage_for(ThroughlineSettings.for_home(tmp_path, {})), LocalStorage)
    with pytest.raises(SettingsError, match="THROUGHLINE_WAREHOUSE_URI must be an S3 location"):
        ThroughlineSettings.for_home(tmp_path, {"THROUGHLINE_WAREHOUSE_URI": "/mnt/warehouse"})
    with pytest.raises(SettingsError, match="set THROUGHLINE_WAREHOUSE_URI too"):
        ThroughlineSettings.for_home(tmp_path, {"THROUGHLINE_LANDING_URI": "s3://raw-files"})


def test_landing_on_object_storage_is_content_addressed_and_removable(
    object_store: ObjectStoreServer, tmp_path: Path
) -> None:
    storage = storage_for(ThroughlineSettings.for_home(tmp_path / "home", object_store.environment()))
    received = tmp_path / "NW_SALES_20261019.CSV"
    received.write_bytes(b"a,b\n1,2\n")
    first = storage.land(received)
    again = storage.land(received)
    assert first == again
    assert first.source_file == f"landing/{first.sha256[:2]}/{first.sha256}.csv"
    assert storage.landing_copies(first.sha256) == [first.source_file]
    assert storage.local_path(first.source_file).read_bytes() == b"a,b\n1,2\n"
    link = tmp_path / "link.csv"
    link.symlink_to(received)
    with pytest.raises(OSError):
        storage.land(link)
    assert storage.remove_landing(first.source_file)
    assert not storage.landing_exists(first.source_file)
    assert not storage.local_path(first.source_file).exists()  # the spool copy is not served either
    assert not storage.remove_landing(first.source_file)


def test_a_commit_to_a_version_another_writer_took_is_refused_not_overwritten(
    object_store: ObjectStoreServer, tmp_path: Path
) -> None:
    """delta-rs commits a log entry with a put-if-absent: the store must refuse the second writer of a
    version (a store that ignored `If-None-Match` would let it overwrite the first one's commit)."""
    storage = storage_for(ThroughlineSettings.for_home(tmp_path / "home", object_store.environment()))
    uri, options = storage.table_uri("race"), storage.storage_options
    write_deltalake(uri, pa.table({"writer": ["first"]}), storage_options=options)
    stale = DeltaTable(uri, storage_options=options)
    write_deltalake(uri, pa.table({"writer": ["second"]}), mode="append", storage_options=options)
    with pytest.raises(CommitFailedError):
        stale.create_write_transaction(
            [],
            mode="append",
            schema=pa.schema([("writer", pa.string())]),
            commit_properties=CommitProperties(max_commit_retries=0),
        )
    current = DeltaTable(uri, storage_options=options)
    assert current.version() == 1
    assert sorted(current.to_pyarrow_table()["writer"].to_pylist()) == ["first", "second"]


def test_concurrent_appends_on_object_storage_all_land(
    object_store: ObjectStoreServer, tmp_path: Path
) -> None:
    storage = storage_for(ThroughlineSettings.for_home(tmp_path / "home", object_store.environment()))
    uri, options = storage.table_uri("appends"), storage.storage_options
    write_deltalake(uri, pa.table({"writer": [-1], "n": [-1]}), storage_options=options)

    def append(writer: int) -> None:
        for n in range(4):
            write_deltalake(
                uri,
                pa.table({"writer": [writer], "n": [n]}),
                mode="append",
                storage_options=options,
                commit_properties=CommitProperties(max_commit_retries=50),
            )

    threads = [threading.Thread(target=append, args=(writer,)) for writer in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    current = DeltaTable(uri, storage_options=options)
    assert current.version() == 12
    assert current.to_pyarrow_table().num_rows == 13


def test_the_settings_in_deploy_md_are_the_ones_the_tests_use(object_store: ObjectStoreServer) -> None:
    section = (REPO_ROOT / "docs" / "deploy.md").read_text(encoding="utf-8").split("## Object storage", 1)[1]
    shown = re.findall(r"```sh\n(.*?)```", section, flags=re.S)[1]
    documented = dict(line.split("=", 1) for line in shown.split())
    used = object_store.environment("<prefix>")
    used["AWS_ENDPOINT_URL"] = re.sub(r":\d+$", ":<port>", object_store.endpoint)
    assert documented == used
