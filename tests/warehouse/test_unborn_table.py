"""A table whose first commit never happened (its writer killed between creating `_delta_log/` and
committing version 0) is no table: it reads as absent and the next write creates it."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from warehouse.reference_tables import read_reference_table, write_reference_table
from warehouse.storage import LocalStorage


def test_a_log_folder_without_a_version_is_no_table_and_the_next_write_creates_it(tmp_path: Path) -> None:
    storage = LocalStorage(landing_root=tmp_path / "landing", tables_root=tmp_path / "tables")
    log = tmp_path / "tables" / "partners" / "_delta_log"
    log.mkdir(parents=True)
    (log / "_commit_5f0c1e.json.tmp").write_text("{}", encoding="utf-8")  # what a kill leaves behind
    assert not storage.table_exists("partners")
    assert read_reference_table(storage, "partners") is None
    frame = pl.DataFrame({"partner_id": ["P0001", "P0002"]})
    assert write_reference_table(storage, "partners", frame)
    assert storage.table_exists("partners")
    stored = read_reference_table(storage, "partners")
    assert stored is not None and stored.equals(frame)
    assert not write_reference_table(storage, "partners", frame)  # the same rows: nothing written
