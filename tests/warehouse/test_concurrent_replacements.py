"""Two distributors' loads replace their own partitions of one table at the same time (two backfills,
two Dagster runs): every replacement commits, none fails on the other's, and each partition ends
holding exactly its last rows."""

from __future__ import annotations

import multiprocessing
from multiprocessing.synchronize import Event
from pathlib import Path

import polars as pl
import pytest

from schemas.settings import ThroughlineSettings
from schemas.tables import TABLE_COLUMNS
from tests.guarantees import Figures
from warehouse.storage import WarehouseStorage, storage_for
from warehouse.tables import ensure_tables, scan_table, write_partitions

pytestmark = pytest.mark.system

TABLE = "sellout"
DISTRIBUTORS = ["acme", "globex"]
LOADS = ["load-1", "load-2"]
REPLACEMENTS = 25


def _storage(home: Path) -> WarehouseStorage:
    return storage_for(ThroughlineSettings.for_home(home, {}))


def _rows(distributor_id: str, load_id: str, round_number: int) -> pl.LazyFrame:
    """Two rows of the load, marked with the round that wrote them (its `source_row`)."""
    empty = pl.DataFrame(schema=TABLE_COLUMNS[TABLE])
    rows = pl.DataFrame(
        {
            "distributor_id": [distributor_id] * 2,
            "load_id": [load_id] * 2,
            "line_id": [f"{distributor_id}-{load_id}-{row}" for row in range(2)],
            "source_row": [round_number, round_number],
        }
    )
    return pl.concat([empty, rows], how="diagonal_relaxed").lazy()


def _replace_repeatedly(home: Path, distributor_id: str, start: Event) -> None:
    storage = _storage(home)
    start.wait()
    for round_number in range(REPLACEMENTS):
        write_partitions(
            storage,
            TABLE,
            distributor_id,
            {load_id: [_rows(distributor_id, load_id, round_number)] for load_id in LOADS},
        )


def test_two_distributors_replacing_their_partitions_at_once_all_commit(
    tmp_path: Path, figures: Figures
) -> None:
    home = tmp_path / "home"
    ensure_tables(_storage(home))
    spawn = multiprocessing.get_context("spawn")
    start = spawn.Event()
    writers = [
        spawn.Process(target=_replace_repeatedly, args=(home, distributor_id, start))
        for distributor_id in DISTRIBUTORS
    ]
    for writer in writers:
        writer.start()
    start.set()
    for writer in writers:
        writer.join(timeout=300)
    assert [writer.exitcode for writer in writers] == [0, 0]

    stored = scan_table(_storage(home), TABLE).select("distributor_id", "load_id", "source_row").collect()
    expected = {(d, load, REPLACEMENTS - 1) for d in DISTRIBUTORS for load in LOADS}
    figures.add(
        trials=len(DISTRIBUTORS) * REPLACEMENTS,
        rows_checked=stored.height,
        rows_lost=2 * len(expected - set(stored.iter_rows())),
    )
    assert stored.height == 2 * len(expected)
    assert set(stored.iter_rows()) == expected
