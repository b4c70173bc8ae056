"""The load ledger: `landed_files` (what was received) and `loads` (what became of each receipt).

A load's row is written last, after its staging and quarantine rows, and replaced (never
duplicated) when the load is re-run. Statuses: loaded, rejected, duplicate, superseded.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date, datetime

import polars as pl

from warehouse.storage import LandedBytes, WarehouseStorage
from warehouse.tables import read_table, replace_rows, scan_table, sql_literal


@dataclass(frozen=True)
class LandedFile:
    """A file in landing, with how and when it was received."""

    sha256: str
    distributor_id: str
    source_name: str
    source_file: str
    channel: str
    bytes: int
    received_at: datetime

    @classmethod
    def from_row(cls, row: dict) -> LandedFile:
        return cls(**{name: row[name] for name in cls.__dataclass_fields__})


@dataclass
class LoadRow:
    """One row of `loads`."""

    load_id: str
    distributor_id: str
    feed_id: str | None
    dataset: str | None
    channel: str
    source_name: str
    source_file: str
    sha256: str
    bytes: int
    spec_version: str | None
    period_start: date | None
    rows_read: int
    rows_loaded: int
    rows_quarantined: int
    status: str
    error: str | None
    received_at: datetime
    started_at: datetime
    finished_at: datetime


def load_id_for(distributor_id: str, sha256: str) -> str:
    """The stable id of loading one file's bytes for one distributor: re-runs replace, never add."""
    return f"{distributor_id}-{sha256[:16]}"


def duplicate_load_id(distributor_id: str, sha256: str, received_at: datetime) -> str:
    return f"{distributor_id}-{sha256[:16]}-dup-{received_at:%Y%m%dT%H%M%S%f}"


def find_landed(storage: WarehouseStorage, sha256: str) -> LandedFile | None:
    rows = scan_table(storage, "landed_files").filter(pl.col("sha256") == sha256).collect()
    return LandedFile.from_row(rows.row(0, named=True)) if rows.height else None


def register_landed(
    storage: WarehouseStorage,
    landed: LandedBytes,
    *,
    distributor_id: str,
    source_name: str,
    channel: str,
    received_at: datetime,
    landed_at: datetime,
) -> tuple[LandedFile, bool]:
    """Record a received file in `landed_files`; returns it and whether its bytes are new.

    Identical bytes received again keep their first registration (and are reported as duplicates).
    """
    existing = find_landed(storage, landed.sha256)
    if existing is not None:
        return existing, False
    entry = LandedFile(
        sha256=landed.sha256,
        distributor_id=distributor_id,
        source_name=source_name,
        source_file=landed.source_file,
        channel=channel,
        bytes=landed.size,
        received_at=received_at,
    )
    frame = pl.DataFrame([{**asdict(entry), "landed_at": landed_at}])
    replace_rows(storage, "landed_files", frame, f"sha256 = {sql_literal(landed.sha256)}")
    return entry, True


def landed_files_of(storage: WarehouseStorage, distributor_id: str | None = None) -> list[LandedFile]:
    frame = scan_table(storage, "landed_files")
    if distributor_id is not None:
        frame = frame.filter(pl.col("distributor_id") == distributor_id)
    return [
        LandedFile.from_row(row)
        for row in frame.sort("received_at", "source_name").collect().iter_rows(named=True)
    ]


def write_load(storage: WarehouseStorage, row: LoadRow) -> None:
    """Write (or replace) one load's row: the last write of a load."""
    replace_rows(storage, "loads", pl.DataFrame([asdict(row)]), f"load_id = {sql_literal(row.load_id)}")


def read_loads(storage: WarehouseStorage) -> pl.DataFrame:
    return read_table(storage, "loads")
