"""The load ledger: `landed_files` (what arrived, in arrival order) and `loads` (what became of it).

The ledger is the memory that makes a crash harmless. A file is first landed (bytes at their
content address), then registered in `landed_files`, then loaded; its `loads` row is written only
after its staging and quarantine rows, first as `staged`, and becomes `loaded` or `superseded`
once core holds it. So after a crash at any point:

- a landed file with no `loads` row of its own is *pending*: the next run loads it (it is never
  taken for a duplicate);
- a `staged` load is in staging but not yet in core: the next run rebuilds core for it.

Identical bytes arriving again for the same distributor are a `duplicate` only when their first
load finished; arrival order (`landed_files.received_at`, strictly increasing per distributor)
decides which report of a period wins, never a file's modification time.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta

import polars as pl
from deltalake import CommitProperties
from deltalake.exceptions import CommitFailedError

from schemas.tables import FINISHED_STATUSES
from warehouse.storage import LandedBytes, WarehouseStorage
from warehouse.tables import open_table, read_table, replace_rows, scan_table, sql_literal, update_rows

ONE_MICROSECOND = timedelta(microseconds=1)
LEDGER_TABLES = ("landed_files", "loads")
COMPACT_AT_FILES = 32
"""The ledger's tables gain a small data file with each row they record; every load reads them a
few times, so once they hold this many files they are rewritten into one (`compact_ledger`)."""

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LandedFile:
    """A file in landing, with how and when it arrived."""

    sha256: str
    distributor_id: str
    source_name: str
    source_file: str
    channel: str
    bytes: int
    received_at: datetime
    source_mtime: datetime | None = None

    @classmethod
    def from_row(cls, row: dict) -> LandedFile:
        return cls(**{name: row.get(name) for name in cls.__dataclass_fields__})

    @property
    def load_id(self) -> str:
        """The id of loading these bytes for this distributor: re-runs replace it, never add."""
        return load_id_for(self.distributor_id, self.sha256)


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
    rows_skipped: int = 0
    skipped_detail: str | None = None
    warnings: str | None = None
    schema_drift: str | None = None
    source_columns: str | None = None
    extra: dict = field(default_factory=dict, repr=False)

    def as_record(self) -> dict:
        record = asdict(self)
        record.pop("extra")
        return record


def load_id_for(distributor_id: str, sha256: str) -> str:
    """The stable id of loading one file's bytes for one distributor: re-runs replace, never add."""
    return f"{distributor_id}-{sha256[:16]}"


def duplicate_load_id(distributor_id: str, sha256: str, received_at: datetime) -> str:
    return f"{distributor_id}-{sha256[:16]}-dup-{received_at:%Y%m%dT%H%M%S%f}"


def find_landed(storage: WarehouseStorage, distributor_id: str, sha256: str) -> LandedFile | None:
    rows = (
        scan_table(storage, "landed_files")
        .filter((pl.col("sha256") == sha256) & (pl.col("distributor_id") == distributor_id))
        .collect()
    )
    return LandedFile.from_row(rows.row(0, named=True)) if rows.height else None


def next_arrival(storage: WarehouseStorage, distributor_id: str, now: datetime) -> datetime:
    """`now`, or just after the distributor's latest arrival: arrival times never tie or go back.

    Callers hold the distributor's lock, so two receivers cannot take the same instant.
    """
    latest = (
        scan_table(storage, "landed_files")
        .filter(pl.col("distributor_id") == distributor_id)
        .select(pl.col("received_at").max())
        .collect()
        .item()
    )
    return _arrival_after(latest, now)


def _arrival_after(latest: datetime | None, now: datetime) -> datetime:
    if latest is not None and latest >= now:
        return latest + ONE_MICROSECOND
    return now


def find_landed_and_next_arrival(
    storage: WarehouseStorage, distributor_id: str, sha256: str, now: datetime
) -> tuple[LandedFile | None, datetime]:
    """`find_landed` and `next_arrival` in one read of `landed_files` (receiving a file asks both)."""
    rows = (
        scan_table(storage, "landed_files")
        .filter(pl.col("distributor_id") == distributor_id)
        .filter((pl.col("sha256") == sha256) | (pl.col("received_at") == pl.col("received_at").max()))
        .collect()
    )
    found = rows.filter(pl.col("sha256") == sha256)
    existing = LandedFile.from_row(found.row(0, named=True)) if found.height else None
    return existing, _arrival_after(rows["received_at"].max(), now)


def register_landed(
    storage: WarehouseStorage, landed: LandedBytes, entry: LandedFile, landed_at: datetime
) -> None:
    """Record a file in `landed_files` (one row per distributor and content; idempotent)."""
    frame = pl.DataFrame([{**asdict(entry), "landed_at": landed_at}])
    predicate = (
        f"sha256 = {sql_literal(landed.sha256)} AND distributor_id = {sql_literal(entry.distributor_id)}"
    )
    replace_rows(storage, "landed_files", frame, predicate)


def landed_files_of(storage: WarehouseStorage, distributor_id: str | None = None) -> list[LandedFile]:
    """Landed files in arrival order (optionally of one distributor)."""
    frame = scan_table(storage, "landed_files")
    if distributor_id is not None:
        frame = frame.filter(pl.col("distributor_id") == distributor_id)
    return [
        LandedFile.from_row(row)
        for row in frame.sort("received_at", "source_name").collect().iter_rows(named=True)
    ]


def load_statuses(storage: WarehouseStorage, load_ids: list[str]) -> dict[str, str]:
    """The current status of each of `load_ids` that has a row."""
    if not load_ids:
        return {}
    frame = (
        scan_table(storage, "loads")
        .filter(pl.col("load_id").is_in(load_ids))
        .select("load_id", "status")
        .collect()
    )
    return dict(frame.iter_rows())


def pending_landed(storage: WarehouseStorage, landed_before: datetime | None = None) -> list[LandedFile]:
    """Landed files whose own load never finished (no row, or still `staged`), in arrival order;
    with `landed_before`, only those landed earlier (younger ones may be in another run's hands).

    A `staged` load needs only its core step; one with no row at all needs loading.
    """
    landed = scan_table(storage, "landed_files")
    if landed_before is not None:
        landed = landed.filter(pl.col("landed_at") < landed_before)
    landed = landed.with_columns(
        pl.concat_str([pl.col("distributor_id"), pl.lit("-"), pl.col("sha256").str.slice(0, 16)]).alias(
            "load_id"
        )
    )
    finished = (
        scan_table(storage, "loads").filter(pl.col("status").is_in(FINISHED_STATUSES)).select("load_id")
    )
    rows = landed.join(finished, on="load_id", how="anti").sort("received_at", "source_name").collect()
    return [LandedFile.from_row(row) for row in rows.iter_rows(named=True)]


def staged_distributors(storage: WarehouseStorage) -> list[tuple[str, str]]:
    """(distributor_id, dataset) pairs holding `staged` loads: core must still be rebuilt for them."""
    frame = (
        scan_table(storage, "loads")
        .filter(pl.col("status") == "staged")
        .select("distributor_id", "dataset")
        .unique()
        .sort("distributor_id", "dataset")
        .collect()
    )
    return [(d, s) for d, s in frame.iter_rows() if s]


def write_load(storage: WarehouseStorage, row: LoadRow) -> None:
    """Write (or replace) one load's row."""
    replace_rows(storage, "loads", pl.DataFrame([row.as_record()]), f"load_id = {sql_literal(row.load_id)}")


def set_status(
    storage: WarehouseStorage, load_ids: list[str], status: str, from_statuses: tuple[str, ...]
) -> None:
    """Move loads to `status`, only from one of `from_statuses` (a finished load is never reopened)."""
    if not load_ids:
        return
    listed = ", ".join(sql_literal(load_id) for load_id in load_ids)
    allowed = ", ".join(sql_literal(value) for value in from_statuses)
    update_rows(
        storage,
        "loads",
        f"load_id IN ({listed}) AND status IN ({allowed})",
        {"status": sql_literal(status)},
    )


def load_warnings(storage: WarehouseStorage, load_id: str) -> str | None:
    """The `warnings` of load `load_id`'s row (None when it has no row or no warnings)."""
    frame = scan_table(storage, "loads").filter(pl.col("load_id") == load_id).select("warnings").collect()
    return frame["warnings"][0] if frame.height else None


def previous_header(
    storage: WarehouseStorage, feed_id: str, received_before: datetime
) -> tuple[str, str, str] | None:
    """(load_id, source_name, source_columns) of the latest load of feed `feed_id` received before
    `received_before` whose file was read (not rejected, not a duplicate): the baseline its next
    file's header is compared with. None when there is none."""
    frame = (
        scan_table(storage, "loads")
        .filter(
            (pl.col("feed_id") == feed_id)
            & (pl.col("received_at") < received_before)
            & pl.col("source_columns").is_not_null()
            & ~pl.col("status").is_in(["rejected", "duplicate"])
        )
        .sort("received_at", "load_id")
        .select("load_id", "source_name", "source_columns")
        .tail(1)
        .collect()
    )
    return frame.row(0) if frame.height else None


def read_loads(storage: WarehouseStorage) -> pl.DataFrame:
    return read_table(storage, "loads")


def compact_ledger(storage: WarehouseStorage) -> dict[str, int]:
    """Rewrite each ledger table holding `COMPACT_AT_FILES` data files or more into one file (a
    Delta optimize: same rows, one commit); returns the files each compacted table held.

    Best effort: a writer changing the same rows at that moment wins, and the compaction is left
    for the next call (the writer's own commit is retried when the compaction wins instead)."""
    compacted = {}
    for table in LEDGER_TABLES:
        if not storage.table_exists(table):
            continue
        delta = open_table(storage, table)
        files = len(delta.file_uris())
        if files < COMPACT_AT_FILES:
            continue
        try:
            delta.optimize.compact(commit_properties=CommitProperties(max_commit_retries=0))
        except CommitFailedError as conflict:
            log.info("compaction of %s left for later: %s", table, conflict)
            continue
        compacted[table] = files
    return compacted
