"""The ledger's tables stay cheap to read: once a table holds `COMPACT_AT_FILES` small files (one per
recorded row), `compact_ledger` rewrites it into one file with the same rows, and new tables get
a checkpoint every 10 commits."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from deltalake import DeltaTable

from warehouse.ledger import COMPACT_AT_FILES, LoadRow, compact_ledger, read_loads, set_status, write_load
from warehouse.storage import LocalStorage
from warehouse.tables import ensure_tables


def _row(number: int) -> LoadRow:
    at = datetime(2026, 11, 2, 8, tzinfo=UTC)
    return LoadRow(
        load_id=f"acme-{number:016x}",
        distributor_id="acme",
        feed_id="acme_sellout",
        dataset="sellout",
        channel="folder",
        source_name=f"ACME_{number}.csv",
        source_file=f"landing/00/{number:064x}.csv",
        sha256=f"{number:064x}",
        bytes=100 + number,
        spec_version="1",
        period_start=None,
        rows_read=number,
        rows_loaded=number,
        rows_quarantined=0,
        status="staged",
        error=None,
        received_at=at,
        started_at=at,
        finished_at=at,
    )


def _files(storage: LocalStorage, table: str) -> int:
    return len(DeltaTable(storage.table_uri(table)).file_uris())


def test_the_loads_table_is_compacted_once_it_holds_many_files_and_keeps_its_rows(tmp_path: Path) -> None:
    storage = LocalStorage(landing_root=tmp_path / "landing", tables_root=tmp_path / "tables")
    ensure_tables(storage)
    assert DeltaTable(storage.table_uri("loads")).metadata().configuration == {
        "delta.checkpointInterval": "10"
    }
    for number in range(COMPACT_AT_FILES - 1):
        write_load(storage, _row(number))
    assert compact_ledger(storage) == {}  # below the threshold: nothing rewritten
    write_load(storage, _row(COMPACT_AT_FILES - 1))
    before = read_loads(storage).sort("load_id")
    held = _files(storage, "loads")
    assert held >= COMPACT_AT_FILES

    assert compact_ledger(storage) == {"loads": held}

    assert _files(storage, "loads") == 1
    assert read_loads(storage).sort("load_id").equals(before)
    # Rows of the compacted file are still updated and replaced one by one.
    set_status(storage, [_row(3).load_id], "loaded", ("staged",))
    write_load(storage, _row(5))
    after = read_loads(storage).sort("load_id")
    assert after.height == COMPACT_AT_FILES
    assert dict(after.select("load_id", "status").iter_rows())[_row(3).load_id] == "loaded"
