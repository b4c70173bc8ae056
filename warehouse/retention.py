"""Changes to landing after a file was received, and erasing values from a Delta table's history.

A load never edits landing. Two use cases may still change it, and each change is one row of
`landing_changes` (`schemas.tables.LANDING_CHANGES_COLUMNS`), written before the bytes go:

- `redacted`: an erasure (`throughline forget`) wrote a redacted copy of a landed file at its own
  content address; the ledger (`landed_files`, `loads`) is pointed at the copy and the original
  bytes are deleted. The delivery keeps its SHA-256 and load id, so the same bytes sent again
  are still a duplicate, and re-running the load reads the copy;
- `purged`: the retention period (`throughline retention`) deleted a landed file; its rows stay
  in the warehouse and it can no longer be re-run.

Nothing here decides what to change (that is `ingest.forget` and `ingest.retention`); it stores
changes, finds the addresses whose bytes must not come back, and removes values from a table's
older versions: a vacuum keeps nothing, and the old commits of the Delta log go too, since their
add actions carry each file's column statistics (minimum and maximum values).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

import polars as pl
from deltalake import CommitProperties, DeltaTable, write_deltalake
from deltalake.exceptions import CommitFailedError
from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_random_exponential

from schemas.tables import LANDING_CHANGES_COLUMNS
from warehouse.storage import WarehouseStorage
from warehouse.tables import (
    COMMIT_RETRIES,
    distributor_lock,
    open_table,
    scan_table,
    sql_literal,
    update_rows,
)

LANDING_CHANGES = "landing_changes"
REDACTED = "redacted"
PURGED = "purged"
LOG_RETENTION = "delta.logRetentionDuration"
DISTRIBUTOR_FOLDER = "distributor_id="
"""The Hive folder of one distributor's rows in a partitioned table (`warehouse.tables.PARTITION_COLUMNS`)."""
DEFAULT_LOG_RETENTION = "interval 30 days"
"""delta-rs's default, put back once an erasure has dropped the old log files."""

_retry = retry(
    retry=retry_if_exception_type(CommitFailedError),
    stop=stop_after_attempt(8),
    wait=wait_random_exponential(multiplier=0.05, max=2),
    reraise=True,
)


@dataclass(frozen=True)
class LandingChange:
    """One row of `landing_changes`."""

    distributor_id: str
    sha256: str
    action: str
    source_file: str
    replaced_by: str | None
    bytes_before: int | None
    bytes_after: int | None
    records_changed: int | None
    reason: str | None
    changed_at: datetime


@_retry
def record_changes(storage: WarehouseStorage, changes: list[LandingChange]) -> None:
    """Append `changes` to `landing_changes` in one commit (the table is created by its first change)."""
    if not changes:
        return
    frame = pl.DataFrame([asdict(change) for change in changes], schema=LANDING_CHANGES_COLUMNS)
    write_deltalake(
        storage.table_uri(LANDING_CHANGES),
        frame.to_arrow(),
        mode="append",
        storage_options=storage.storage_options,
        commit_properties=CommitProperties(max_commit_retries=COMMIT_RETRIES),
    )


def read_changes(storage: WarehouseStorage) -> pl.DataFrame:
    """Every change to landing, oldest first (empty when there was none)."""
    if not storage.table_exists(LANDING_CHANGES):
        return pl.DataFrame(schema=LANDING_CHANGES_COLUMNS)
    return scan_table(storage, LANDING_CHANGES).sort("changed_at").collect()


def purged_files(storage: WarehouseStorage) -> set[tuple[str, str]]:
    """(distributor_id, sha256) of every landed file the retention period deleted."""
    changes = read_changes(storage).filter(pl.col("action") == PURGED)
    return set(changes.select("distributor_id", "sha256").iter_rows())


def live_addresses(storage: WarehouseStorage) -> set[str]:
    """The landing addresses a landed file reads from now: not redacted away, not purged."""
    if not storage.table_exists("landed_files"):
        return set()
    gone = purged_files(storage)
    landed = scan_table(storage, "landed_files").select("distributor_id", "sha256", "source_file").collect()
    return {address for distributor, sha, address in landed.iter_rows() if (distributor, sha) not in gone}


def landing_copies(storage: WarehouseStorage, sha256: str) -> list[str]:
    """Every address landing holds for these bytes (one per file-name suffix they arrived with)."""
    return storage.landing_copies(sha256)


def remove_landed(storage: WarehouseStorage, source_file: str) -> bool:
    """Delete one landing file (they are read-only, not undeletable); False when it was not there."""
    return storage.remove_landing(source_file)


def discard_stray_copy(storage: WarehouseStorage, source_file: str) -> bool:
    """After identical bytes were received again: delete what landing just stored at `source_file`
    unless a landed file reads from there, so bytes an erasure or the retention period removed
    never come back (and a second copy under another suffix is not kept either)."""
    if source_file in live_addresses(storage):
        return False
    return remove_landed(storage, source_file)


def repoint_landed(storage: WarehouseStorage, distributor_id: str, sha256: str, source_file: str) -> None:
    """Make the ledger read a delivery's bytes from `source_file` (its `landed_files` row and every
    `loads` row of it, duplicates included)."""
    predicate = f"distributor_id = {sql_literal(distributor_id)} AND sha256 = {sql_literal(sha256)}"
    for table in ("landed_files", "loads"):
        update_rows(
            storage,
            table,
            f"{predicate} AND source_file <> {sql_literal(source_file)}",
            {"source_file": sql_literal(source_file)},
        )


def erase_keys(storage: WarehouseStorage, table: str, distributor_id: str, keys: list[str]) -> int:
    """Set `end_customer_key` to null on the distributor's rows of `table` holding one of `keys`;
    the number of rows changed. Callers hold the distributor's lock."""
    if not keys or not storage.table_exists(table):
        return 0
    chosen = pl.col("end_customer_key").is_in(keys) & (pl.col("distributor_id") == distributor_id)
    found = scan_table(storage, table).filter(chosen).select(pl.len()).collect().item()
    if found:
        listed = ", ".join(sql_literal(key) for key in keys)
        update_rows(
            storage,
            table,
            f"distributor_id = {sql_literal(distributor_id)} AND end_customer_key IN ({listed})",
            {"end_customer_key": "NULL"},
        )
    return int(found)


def forget_history(storage: WarehouseStorage, table: str, lock_dir: Path) -> int:
    """Remove every earlier version of `table`: its replaced data files (a vacuum keeping nothing),
    the files of writes killed before their commit (`remove_uncommitted_files`), and the log
    commits before a new checkpoint. Time travel to those versions ends. Returns how many data
    files were deleted. Run it when no reader holds an older version open."""
    if not storage.table_exists(table):
        return 0
    uri = storage.table_uri(table)
    options = storage.storage_options or None
    removed = DeltaTable(uri, storage_options=options).vacuum(
        retention_hours=0, enforce_retention_duration=False, dry_run=False
    )
    removed += remove_uncommitted_files(storage, table, lock_dir)
    _set_log_retention(storage, table, "interval 0 seconds")
    try:
        delta = DeltaTable(uri, storage_options=options)
        delta.create_checkpoint()
        delta.cleanup_metadata()
    finally:
        _set_log_retention(storage, table, DEFAULT_LOG_RETENTION)
    return len(removed)


def remove_uncommitted_files(storage: WarehouseStorage, table: str, lock_dir: Path) -> list[str]:
    """Delete the data files of `table` that its current version does not hold: what a writer
    killed between writing a file and committing it left (its rows in the clear), and what a
    vacuum keeping nothing has just made unreferenced. Each distributor's folder is swept under
    that distributor's lock, so no running writer's new, not yet committed file is touched.
    Returns the removed files (relative paths)."""
    by_distributor: dict[str, list[str]] = {}
    for relative in storage.data_files_in(table, ""):
        top = relative.split("/", 1)[0]
        if top.startswith(DISTRIBUTOR_FOLDER):
            by_distributor.setdefault(top.removeprefix(DISTRIBUTOR_FOLDER), []).append(relative)
    removed: list[str] = []
    prefix = storage.table_uri(table).rstrip("/") + "/"
    for distributor_id in sorted(by_distributor):
        with distributor_lock(lock_dir, distributor_id):
            held = {uri.removeprefix(prefix) for uri in open_table(storage, table).file_uris()}
            folder = f"{DISTRIBUTOR_FOLDER}{distributor_id}"
            stray = [relative for relative in storage.data_files_in(table, folder) if relative not in held]
            storage.remove_data_files(table, stray)
            removed += stray
    return removed


@_retry
def _set_log_retention(storage: WarehouseStorage, table: str, duration: str) -> None:
    DeltaTable(
        storage.table_uri(table), storage_options=storage.storage_options or None
    ).alter.set_table_properties(
        {LOG_RETENTION: duration}, commit_properties=CommitProperties(max_commit_retries=COMMIT_RETRIES)
    )
