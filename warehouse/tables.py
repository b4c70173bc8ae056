"""Delta tables: create, read, replace and update the warehouse's tables, with retried commits.

Every table is a Delta Lake table whose columns are declared once in `schemas.tables`. Writes
replace by predicate (a load, a distributor, a set of loads), so re-running never appends twice;
a commit that loses an optimistic-concurrency race is retried; a write that fails commits nothing.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
from deltalake import CommitProperties, DeltaTable, write_deltalake
from deltalake.exceptions import CommitFailedError
from deltalake.transaction import AddAction, RemoveAction
from filelock import FileLock
from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_random_exponential

from schemas.tables import TABLE_COLUMNS, empty_frame
from warehouse.storage import WarehouseStorage

log = logging.getLogger(__name__)

LOAD_PARTITIONS = ["distributor_id", "load_id"]
PARTITION_COLUMNS: dict[str, list[str]] = {
    "staging_sellout": LOAD_PARTITIONS,
    "staging_inventory": LOAD_PARTITIONS,
    "sellout": LOAD_PARTITIONS,
    "inventory": LOAD_PARTITIONS,
    "quarantine": LOAD_PARTITIONS,
}
"""Row tables are partitioned per load: replacing, removing or reading one load touches its own
files only, whatever the history (see docs/storage-layout.md)."""
COMMIT_RETRIES = 20
STREAMING_ROW_GROUP_ROWS = 131_072
LOCK_TIMEOUT_SECONDS = 1800

_commit_retry = retry(
    retry=retry_if_exception_type(CommitFailedError),
    stop=stop_after_attempt(8),
    wait=wait_random_exponential(multiplier=0.05, max=2),
    reraise=True,
)


def sql_literal(value: str) -> str:
    """A string as a Delta predicate literal (single quotes doubled)."""
    return "'" + value.replace("'", "''") + "'"


def arrow_schema(table: str) -> pa.Schema:
    return empty_frame(table).to_arrow().schema


def ensure_tables(storage: WarehouseStorage) -> None:
    """Create every warehouse table that does not exist yet, empty, with its declared schema, and bring
    tables an older version created up to date: new columns added, partitioning changed (writers only)."""
    for table in TABLE_COLUMNS:
        if not storage.table_exists(table):
            _create_table(storage, table)
        else:
            _add_missing_columns_and_properties(storage, table)
            _repartition(storage, table)


def _repartition(storage: WarehouseStorage, table: str) -> None:
    wanted = PARTITION_COLUMNS.get(table, [])
    if list(open_table(storage, table).metadata().partition_columns) == wanted:
        return
    log.warning("re-partitioning %s by %s (a table an older version wrote)", table, wanted)
    rows = pl.read_delta(storage.table_uri(table), storage_options=storage.storage_options or None)
    write_deltalake(
        storage.table_uri(table),
        _conform(rows, table),
        mode="overwrite",
        schema_mode="overwrite",
        partition_by=wanted or None,
        storage_options=storage.storage_options,
    )


def add_actions(storage: WarehouseStorage, table: str) -> pl.DataFrame:
    """The table's current data files with their partition values and column statistics (the Delta log)."""
    return _add_actions_of(open_table(storage, table))


def open_table(storage: WarehouseStorage, table: str) -> DeltaTable:
    """The current version of `table`'s Delta log (one open serves a listing and the commit after it)."""
    return DeltaTable(storage.table_uri(table), storage_options=storage.storage_options or None)


def _add_actions_of(delta: DeltaTable) -> pl.DataFrame:
    return pl.DataFrame(delta.get_add_actions(flatten=True))


def warehouse_exists(storage: WarehouseStorage) -> bool:
    """True once a writer has created the tables: reading commands never create them."""
    return all(storage.table_exists(table) for table in TABLE_COLUMNS)


@_commit_retry
def _add_missing_columns_and_properties(storage: WarehouseStorage, table: str) -> None:
    """Give a table an older version created the columns and the properties (`table_properties`)
    new tables get."""
    delta = open_table(storage, table)
    present = set(delta.schema().to_arrow().names)
    missing = [field for field in arrow_schema(table) if field.name not in present]
    if missing:
        from deltalake.schema import Field, Schema

        fields = Schema.from_arrow(pa.schema(missing)).fields
        delta.alter.add_columns([Field(f.name, f.type, nullable=True) for f in fields])
    current = delta.metadata().configuration
    unset = {name: value for name, value in storage.table_properties.items() if current.get(name) != value}
    if unset:
        delta.alter.set_table_properties(
            unset, commit_properties=CommitProperties(max_commit_retries=COMMIT_RETRIES)
        )


@_commit_retry
def _create_table(storage: WarehouseStorage, table: str) -> None:
    if storage.table_exists(table):
        return
    try:
        write_deltalake(
            storage.table_uri(table),
            empty_frame(table).to_arrow(),
            mode="ignore",
            partition_by=PARTITION_COLUMNS.get(table),
            storage_options=storage.storage_options,
            configuration=storage.table_properties or None,
        )
    except CommitFailedError:
        if not storage.table_exists(table):
            raise


def scan_table(storage: WarehouseStorage, table: str) -> pl.LazyFrame:
    """The current version of a table, lazily (never glob a Delta folder's Parquet files)."""
    return pl.scan_delta(storage.table_uri(table), storage_options=storage.storage_options or None)


def read_table(storage: WarehouseStorage, table: str) -> pl.DataFrame:
    return scan_table(storage, table).collect()


def _conform(frame: pl.DataFrame, table: str) -> pa.Table:
    columns = TABLE_COLUMNS[table]
    return frame.select([pl.col(name).cast(dtype) for name, dtype in columns.items()]).to_arrow()


@_commit_retry
def replace_rows(storage: WarehouseStorage, table: str, frame: pl.DataFrame, predicate: str) -> None:
    """Replace the rows matching `predicate` with `frame`, in one commit (retried on conflicts)."""
    write_deltalake(
        storage.table_uri(table),
        _conform(frame, table),
        mode="overwrite",
        predicate=predicate,
        partition_by=PARTITION_COLUMNS.get(table),
        storage_options=storage.storage_options,
        commit_properties=CommitProperties(max_commit_retries=COMMIT_RETRIES),
    )


@_commit_retry
def update_rows(storage: WarehouseStorage, table: str, predicate: str, updates: dict[str, str]) -> None:
    """Set columns (SQL expressions) on the rows matching `predicate`, retried on conflicts."""
    open_table(storage, table).update(
        predicate=predicate,
        updates=updates,
        commit_properties=CommitProperties(max_commit_retries=COMMIT_RETRIES),
    )


@contextmanager
def distributor_lock(lock_dir: Path, distributor_id: str) -> Iterator[None]:
    """Serialize writers of one distributor's rows across processes (loads, core rebuilds, ledger).

    Loads of different distributors run in parallel; two loads of the same distributor take turns
    for their commits, so neither can overwrite the other's rows with a stale rebuild.
    """
    lock_dir.mkdir(parents=True, exist_ok=True)
    with FileLock(str(lock_dir / f"{distributor_id}.lock"), timeout=LOCK_TIMEOUT_SECONDS):
        yield


# --------------------------------------------------------------------------------------------------
# Parquet files written by Polars itself, committed as Delta add actions (the fast write path).


@dataclass(frozen=True)
class DataFile:
    """A Parquet file written into a table's partition folder, not yet committed."""

    table: str
    partition: dict[str, str]
    relative_path: str
    local_path: Path


def new_data_file(storage: WarehouseStorage, table: str, partition: dict[str, str]) -> DataFile:
    """Where to write a new data file of `partition` (Hive layout, the columns' order of PARTITION_COLUMNS)."""
    folder = "/".join(f"{name}={partition[name]}" for name in PARTITION_COLUMNS[table])
    relative = f"{folder}/part-{uuid.uuid4().hex}.parquet"
    return DataFile(table, dict(partition), relative, storage.data_file_path(table, relative))


def data_columns(table: str) -> list[str]:
    """The columns a data file of `table` holds: all but the partition columns (those are in its path)."""
    partition = set(PARTITION_COLUMNS.get(table, []))
    return [name for name in TABLE_COLUMNS[table] if name not in partition]


_TIMESTAMP_TICKS_PER_SECOND = {"milliseconds": 1_000, "microseconds": 1_000_000, "nanoseconds": 1_000_000_000}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _stat_bounds(stats: pq.Statistics) -> tuple[object, object]:
    """(min, max) of a column chunk's statistics as Delta stats hold them. A timestamp's are read from
    its stored integers: pyarrow's `Statistics.min` of a UTC timestamp imports pandas (0.5 s and more
    of every ingest process) to build a time-zone-aware value."""
    if stats.logical_type.type == "TIMESTAMP":
        unit = json.loads(stats.logical_type.to_json())["timeUnit"]
        ticks = _TIMESTAMP_TICKS_PER_SECOND[unit]
        return tuple(  # type: ignore[return-value]
            (_EPOCH + timedelta(microseconds=raw * 1_000_000 // ticks)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            for raw in (stats.min_raw, stats.max_raw)
        )
    return _stat_value(stats.min), _stat_value(stats.max)


def _stat_value(value: object) -> object:
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


def parquet_stats(path: Path) -> tuple[int, str]:
    """(rows, Delta stats JSON) of a Parquet file, from its footer: min, max and null count per column."""
    metadata = pq.ParquetFile(path).metadata
    minimum: dict[str, object] = {}
    maximum: dict[str, object] = {}
    nulls: dict[str, int] = {}
    for group_index in range(metadata.num_row_groups):
        group = metadata.row_group(group_index)
        for column_index in range(group.num_columns):
            column = group.column(column_index)
            name = column.path_in_schema
            stats = column.statistics
            if stats is None:
                continue
            nulls[name] = nulls.get(name, 0) + (stats.null_count or 0)
            if stats.has_min_max:
                low, high = _stat_bounds(stats)
                minimum[name] = low if name not in minimum else min(minimum[name], low)  # type: ignore[type-var]
                maximum[name] = high if name not in maximum else max(maximum[name], high)  # type: ignore[type-var]
    rows = metadata.num_rows
    stats_json = json.dumps(
        {"numRecords": rows, "minValues": minimum, "maxValues": maximum, "nullCount": nulls}
    )
    return rows, stats_json


def _add_action(storage: WarehouseStorage, data_file: DataFile) -> AddAction:
    """The add action of a written data file, once the file is where the table reads it."""
    _, stats = parquet_stats(data_file.local_path)
    status = data_file.local_path.stat()
    storage.publish_data_file(data_file.table, data_file.relative_path, data_file.local_path)
    return AddAction(
        path=data_file.relative_path,
        size=status.st_size,
        partition_values=data_file.partition,
        modification_time=int(status.st_mtime * 1000),
        data_change=True,
        stats=stats,
    )


def _adds_of_written(
    storage: WarehouseStorage, files: list[DataFile], keep_empty: Collection[str] = ()
) -> tuple[list[AddAction], list[DataFile]]:
    """(add actions, files kept) of freshly written data files: a file holding no rows is deleted,
    not committed, except the first of a load partition in `keep_empty` that holds no rows at all
    (it marks the partition as present and empty); each other one is published where the table
    reads it."""
    holding_rows = [data_file for data_file in files if pq_rows(data_file.local_path)]
    loads_with_rows = {data_file.partition.get("load_id") for data_file in holding_rows}
    markers: dict[str, DataFile] = {}
    for data_file in files:
        load_id = data_file.partition.get("load_id", "")
        if data_file in holding_rows:
            continue
        if load_id in keep_empty and load_id not in loads_with_rows and load_id not in markers:
            markers[load_id] = data_file
        else:
            data_file.local_path.unlink()
    kept = [*holding_rows, *markers.values()]
    return [_add_action(storage, data_file) for data_file in kept], kept


def _removals(delta: DeltaTable, distributor_id: str, load_ids: list[str]) -> list[RemoveAction]:
    """Remove actions for every current file of the given load partitions of the table `delta` opens."""
    current = _add_actions_of(delta)
    if current.is_empty():
        return []
    stale = current.filter(
        (pl.col("partition.distributor_id") == distributor_id) & pl.col("partition.load_id").is_in(load_ids)
    )
    now = int(datetime.now(UTC).timestamp() * 1000)
    return [
        RemoveAction(
            path=path,
            data_change=True,
            deletion_timestamp=now,
            size=size,
            partition_values={"distributor_id": distributor_id, "load_id": load_id},
        )
        for path, size, load_id in stale.select("path", "size_bytes", "partition.load_id").iter_rows()
    ]


@_commit_retry
def _commit_replacing(
    storage: WarehouseStorage,
    table: str,
    adds: list[AddAction],
    replaced: tuple[str, list[str]] | None = None,
) -> None:
    """Commit `adds` to `table` as one transaction, with `replaced` = (distributor, load ids) the
    remove actions of those load partitions' current files too (nothing when there is nothing to do).

    The partitions' files are listed from a fresh open at each attempt. delta-rs retries a commit on
    top of another writer's only when it cannot conflict; one that removes files reads the whole table
    to its checker, so another distributor's replacement committed in between fails it ("a concurrent
    transaction deleted data this operation read"). The caller holds the distributor's lock, so no
    other writer touches these partitions: the commit is simply attempted again on a fresh open."""
    delta = open_table(storage, table)
    actions: list[AddAction | RemoveAction] = list(adds)
    if replaced is not None:
        distributor_id, load_ids = replaced
        actions += _removals(delta, distributor_id, load_ids)
    if not actions:
        return
    delta.create_write_transaction(
        actions,
        mode="append",
        schema=arrow_schema(table),
        partition_by=PARTITION_COLUMNS.get(table),
        commit_properties=CommitProperties(max_commit_retries=COMMIT_RETRIES),
    )


def commit_data_files(
    storage: WarehouseStorage, table: str, partition: dict[str, str], files: list[DataFile], *, replace: bool
) -> None:
    """Commit `files` to the load partition `partition` of `table` in one transaction; with `replace`,
    the partition's current files go in the same commit.

    Files holding no rows are deleted, not committed. Callers hold the distributor's lock, so the
    partition's files cannot change between listing them here and the commit.
    """
    adds, kept = _adds_of_written(storage, files)
    replaced = (partition["distributor_id"], [partition["load_id"]]) if replace else None
    _commit_replacing(storage, table, adds, replaced)
    for data_file in kept:
        storage.release_data_file(data_file.local_path)


def write_partitions(
    storage: WarehouseStorage,
    table: str,
    distributor_id: str,
    rows_by_load: dict[str, list[pl.LazyFrame]],
    keep_empty: Collection[str] = (),
) -> None:
    """Make each load partition of `rows_by_load` exactly its rows, all in one commit: Polars streams
    each frame into a new Parquet file of the partition (in the order given), and the partition's
    old files go in the same commit. A partition of `keep_empty` left without rows keeps one file
    holding none, so the table tells it apart from a partition that is not there. Callers hold the
    distributor's lock."""
    types = TABLE_COLUMNS[table]
    written: list[DataFile] = []
    try:
        for load_id, frames in rows_by_load.items():
            for rows in frames:
                data_file = new_data_file(
                    storage, table, {"distributor_id": distributor_id, "load_id": load_id}
                )
                written.append(data_file)
                rows.select([pl.col(name).cast(types[name]) for name in data_columns(table)]).sink_parquet(
                    data_file.local_path, compression="lz4", row_group_size=STREAMING_ROW_GROUP_ROWS
                )
    except BaseException:
        for data_file in written:
            data_file.local_path.unlink(missing_ok=True)
        raise
    adds, kept = _adds_of_written(storage, written, keep_empty)
    _commit_replacing(storage, table, adds, (distributor_id, sorted(rows_by_load)))
    for data_file in kept:
        storage.release_data_file(data_file.local_path)


def pq_rows(path: Path) -> int:
    """Rows of a Parquet file, from its footer."""
    return pq.ParquetFile(path).metadata.num_rows


def link_partitions(
    storage: WarehouseStorage, source: str, target: str, distributor_id: str, load_ids: list[str]
) -> None:
    """Make the `target` partitions of `load_ids` exactly the `source` ones, in one commit, by linking
    the source's data files (no rows are re-encoded; on object storage, copied). Both tables share
    their data columns."""
    files = add_actions(storage, source).filter(
        (pl.col("partition.distributor_id") == distributor_id) & pl.col("partition.load_id").is_in(load_ids)
    )
    adds: list[AddAction] = []
    linked_files: list[DataFile] = []
    for relative, load_id in files.select("path", "partition.load_id").iter_rows():
        partition = {"distributor_id": distributor_id, "load_id": load_id}
        linked = new_data_file(storage, target, partition)
        storage.copy_data_file(source, relative, linked.local_path)
        linked_files.append(linked)
        adds.append(_add_action(storage, linked))
    _commit_replacing(storage, target, adds, (distributor_id, load_ids))
    for linked in linked_files:
        storage.release_data_file(linked.local_path)
