"""The files a writer killed before its commit leaves in a table (rows in the clear, no Delta version
holding them) are found and deleted by an erasure's history removal, on local disk and on S3."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from deltalake import DeltaTable

from schemas.settings import ThroughlineSettings
from warehouse.retention import forget_history
from warehouse.storage import storage_for

pytestmark = pytest.mark.system

TABLE = "sellout"


def _rows(load_id: str, names: list[str]) -> pl.DataFrame:
    return pl.DataFrame(
        {"distributor_id": ["acme"] * len(names), "load_id": [load_id] * len(names), "name": names}
    )


def _stored(storage, table: str) -> set[str]:
    return set(storage.data_files_in(table, ""))


def _committed(storage, table: str) -> set[str]:
    prefix = storage.table_uri(table).rstrip("/") + "/"
    delta = DeltaTable(storage.table_uri(table), storage_options=storage.storage_options or None)
    return {uri.removeprefix(prefix) for uri in delta.file_uris()}


def test_history_removal_deletes_uncommitted_and_replaced_files_and_keeps_the_table(
    warehouse_env: dict[str, str], tmp_path: Path
) -> None:
    storage = storage_for(ThroughlineSettings.for_home(tmp_path / "home", warehouse_env))
    uri, options = storage.table_uri(TABLE), storage.storage_options or None
    write = {"partition_by": ["distributor_id", "load_id"]}
    _rows("acme-1", ["Jane Doe"]).write_delta(uri, storage_options=options, delta_write_options=write)
    _rows("acme-2", ["John Roe"]).write_delta(
        uri, mode="append", storage_options=options, delta_write_options=write
    )
    # The first load re-run: its first file is replaced (held by an older version only).
    _rows("acme-1", ["Jane Doe, redacted"]).write_delta(
        uri,
        mode="overwrite",
        storage_options=options,
        delta_write_options={**write, "predicate": "load_id = 'acme-1'"},
    )
    # A writer killed after writing (and, on S3, uploading) its file, before its commit; another
    # killed while it still wrote, leaving an empty file.
    published = "distributor_id=acme/load_id=acme-3/part-killed.parquet"
    _rows("acme-3", ["Killed Writer"]).drop("distributor_id", "load_id").write_parquet(
        storage.data_file_path(TABLE, published)
    )
    storage.publish_data_file(TABLE, published, storage.data_file_path(TABLE, published))
    half_written = "distributor_id=acme/load_id=acme-4/part-half.parquet"
    storage.data_file_path(TABLE, half_written).write_bytes(b"")
    committed = _committed(storage, TABLE)
    assert {published, half_written} <= _stored(storage, TABLE)
    assert len(_stored(storage, TABLE) - committed) == 3  # the two killed writes and the replaced file

    removed = forget_history(storage, TABLE, tmp_path / "locks")

    assert removed == 3
    assert _stored(storage, TABLE) == committed
    assert _committed(storage, TABLE) == committed
    names = pl.read_delta(uri, storage_options=options).sort("load_id")["name"].to_list()
    assert names == ["Jane Doe, redacted", "John Roe"]
    if warehouse_env:  # the spool copies a killed writer left are gone too
        assert not [path for path in (tmp_path / "home").rglob("*.parquet") if "acme-3" in str(path)]
