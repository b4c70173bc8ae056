"""Core tables: `sellout` and `inventory`, brought up to date per distributor from staging and the ledger.

The rules live here in one place: loads whose records are in staging (`staged`, `loaded` or
`superseded`) are candidates, `held` and `rejected` ones never count; of several loads of the same
feed and report period, the latest to arrive (`received_at`, the ledger's arrival order) supersedes
the others; a line reported in several loads (same `line_id`) counts once, from the latest load
(within one load, its first record).

Staging and core are partitioned by `distributor_id` and `load_id`, so an update costs what it
changes, not the distributor's history: only the partitions of loads that come, go or share lines
with them are read and rewritten, in one Delta commit. Which earlier loads can share a line with a
load is told by the transaction-date range of each load's staging files (from the Delta log): a
repeated line is found among the loads whose dates overlap. The update is idempotent, so a run
interrupted anywhere is completed by updating again; only then does the ledger move (`staged`
loads become `loaded` or `superseded`). A load that counts but won no line (later loads sent all
its lines again) keeps one empty file in its core partition, written in the same commit: it is
then in core and not added again by every later update, while a partition a killed update took
out is missing and is added again. A load run again also re-decides the lines it held before: the
update takes the exact path when one of them was reported by a neighbour too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl

from schemas.tables import TABLE_COLUMNS
from warehouse.faults import crash_point
from warehouse.ledger import set_status
from warehouse.storage import WarehouseStorage
from warehouse.tables import (
    add_actions,
    distributor_lock,
    link_partitions,
    scan_table,
    write_partitions,
)

Enrich = Callable[[str, pl.LazyFrame], pl.LazyFrame]
"""(dataset, staging rows) -> core rows: the 360-degree model's columns filled from the reference data.
Given by the caller (the ingest use case), so storage never knows where reference data comes from."""

CORE_TABLES = {"sellout": "staging_sellout", "inventory": "staging_inventory"}
DATE_FIELDS = {"sellout": "transaction_date", "inventory": "snapshot_date"}
RECENCY = ["received_at", "source_name", "load_id"]
_RANK = "_arrival_rank"
ENRICH_SLICE_ROWS = 500_000
"""A load's rows pass from staging through enrichment into core in slices of at most this many
source rows, each its own Parquet file: Polars' streaming engine holds more the more rows one sink
writes, so slicing keeps an update's memory flat whatever the size of the file. Against 1,000,000:
a 5M-line CSV ingest peaks at 865-921 MiB instead of 960, a 1M-line-item 867 at 990 MiB instead
of 1,187, in the same time (2026-11-24)."""


@dataclass(frozen=True)
class CoreRebuild:
    """What one update did: rows now in core for the distributor, loads superseded, partitions rewritten."""

    dataset: str
    distributor_id: str
    rows: int
    active_loads: list[str]
    superseded_loads: list[str]
    rewritten_loads: list[str]


def _active_and_superseded(loads: pl.DataFrame) -> tuple[list[str], list[str]]:
    """Of a distributor's candidate loads: which count, and which a later report replaces."""
    if loads.is_empty():
        return [], []
    ranked = loads.sort(RECENCY, descending=True).with_columns(
        pl.when(pl.col("period_start").is_null())
        .then(pl.lit(True))
        .otherwise(pl.col("load_id").cum_count().over(["feed_id", "period_start"]) == 1)
        .alias("is_latest")
    )
    active = ranked.filter("is_latest")["load_id"].to_list()
    superseded = ranked.filter(~pl.col("is_latest"))["load_id"].to_list()
    return sorted(active), sorted(superseded)


@dataclass(frozen=True)
class _Partition:
    load_id: str
    first: date | None
    last: date | None
    rows: int
    first_row: int | None = None
    last_row: int | None = None


def _partitions(
    storage: WarehouseStorage, table: str, distributor_id: str, date_field: str
) -> dict[str, _Partition]:
    """The load partitions of one distributor in a table, with their date range, from the Delta log."""
    files = add_actions(storage, table)
    if files.is_empty():
        return {}
    mine = files.filter(pl.col("partition.distributor_id") == distributor_id)
    if mine.is_empty():
        return {}
    first, last = f"min.{date_field}", f"max.{date_field}"
    grouped = mine.group_by("partition.load_id").agg(
        pl.col(first).min() if first in mine.columns else pl.lit(None, pl.Date),
        pl.col(last).max() if last in mine.columns else pl.lit(None, pl.Date),
        pl.col("num_records").sum(),
        pl.col("min.source_row").min() if "min.source_row" in mine.columns else pl.lit(None, pl.Int64),
        pl.col("max.source_row").max() if "max.source_row" in mine.columns else pl.lit(None, pl.Int64),
    )
    return {
        load_id: _Partition(load_id, start, end, int(rows or 0), first_row, last_row)
        for load_id, start, end, rows, first_row, last_row in grouped.iter_rows()
    }


def _slices(rows: pl.LazyFrame, part: _Partition | None) -> list[pl.LazyFrame]:
    """`rows` of one load partition cut into `ENRICH_SLICE_ROWS` ranges of `source_row` (from the
    staging files' statistics), in order; one frame when the load is small or its range unknown. A
    row without a source row, which staging never holds, would go with the first slice."""
    if part is None or part.first_row is None or part.last_row is None or part.rows <= ENRICH_SLICE_ROWS:
        return [rows]
    row = pl.col("source_row")
    starts = range(part.first_row, part.last_row + 1, ENRICH_SLICE_ROWS)
    return [
        rows.filter(
            row.is_between(start, start + ENRICH_SLICE_ROWS - 1) | (row.is_null() if index == 0 else False)
        )
        for index, start in enumerate(starts)
    ]


def _overlaps(part: _Partition, ranges: list[tuple[date | None, date | None]]) -> bool:
    for first, last in ranges:
        if first is None or last is None or part.first is None or part.last is None:
            return True
        if part.first <= last and first <= part.last:
            return True
    return False


def rebuild_core(
    storage: WarehouseStorage, dataset: str, distributor_id: str, lock_dir: Path, enrich: Enrich | None = None
) -> CoreRebuild:
    """Bring one distributor's rows of `sellout` or `inventory` up to date, and mark superseded loads.

    Rows entering core from staging pass through `enrich` (when given); rows already in core stay as
    they are (`refresh_partitions` brings those up to date when the reference data changes).
    """
    staging_table = CORE_TABLES[dataset]
    date_field = DATE_FIELDS[dataset]
    with distributor_lock(lock_dir, distributor_id):
        loads = (
            scan_table(storage, "loads")
            .filter(
                (pl.col("distributor_id") == distributor_id)
                & (pl.col("dataset") == dataset)
                & pl.col("status").is_in(["loaded", "superseded", "staged"])
            )
            .select("load_id", "feed_id", "period_start", "status", *RECENCY[:2])
            .collect()
        )
        active, superseded = _active_and_superseded(loads)
        staged = set(loads.filter(pl.col("status") == "staged")["load_id"])
        in_core = _partitions(storage, dataset, distributor_id, date_field)
        in_staging = _partitions(storage, staging_table, distributor_id, date_field)
        active_set = set(active)
        # A load all of whose lines went to later loads keeps an empty file in core (`keep_empty`
        # below), so it counts as in core: it is not added again by every update.
        to_add = {load for load in active_set if load not in in_core or load in staged}
        to_remove = {load for load in in_core if load not in active_set or load in staged}
        rewritten: list[str] = []
        if to_add or to_remove:
            # Date ranges come from staging, which keeps every row of a load (core only its winners),
            # and for a load run again also from core, which holds the lines of its earlier run.
            ranges = [(p.first, p.last) for load, p in in_staging.items() if load in to_add | to_remove]
            ranges += [(p.first, p.last) for load, p in in_core.items() if load in to_remove and p.rows]
            neighbours = {
                load
                for load, part in in_staging.items()
                if load in active_set
                and load not in to_add
                and load not in to_remove
                and _overlaps(part, ranges)
            }
            if to_remove <= to_add and _no_shared_lines(
                storage, dataset, staging_table, distributor_id, to_add, neighbours, to_remove
            ):
                rewritten = sorted(to_add)
                if enrich is None:
                    link_partitions(storage, staging_table, dataset, distributor_id, sorted(to_add))
                else:
                    staging = scan_table(storage, staging_table).filter(
                        pl.col("distributor_id") == distributor_id
                    )
                    write_partitions(
                        storage,
                        dataset,
                        distributor_id,
                        {
                            load: [
                                enrich(dataset, rows)
                                for rows in _slices(
                                    staging.filter(pl.col("load_id") == load), in_staging.get(load)
                                )
                            ]
                            for load in rewritten
                        },
                        keep_empty=rewritten,
                    )
                crash_point("after_core_commit")
                set_status(storage, superseded, "superseded", ("loaded", "staged"))
                set_status(storage, active, "loaded", ("superseded", "staged"))
                crash_point("after_status")
                rows = sum(p.rows for p in _partitions(storage, dataset, distributor_id, date_field).values())
                return CoreRebuild(dataset, distributor_id, rows, active, superseded, rewritten)
            rewritten = sorted(to_add | to_remove | neighbours)
            _rewrite(
                storage,
                dataset,
                staging_table,
                distributor_id,
                loads,
                active_set,
                to_add,
                to_remove,
                neighbours,
                enrich,
            )
            crash_point("after_core_commit")
        set_status(storage, superseded, "superseded", ("loaded", "staged"))
        set_status(storage, active, "loaded", ("superseded", "staged"))
        crash_point("after_status")
        rows = sum(p.rows for p in _partitions(storage, dataset, distributor_id, date_field).values())
    return CoreRebuild(dataset, distributor_id, rows, active, superseded, rewritten)


def outdated_core(storage: WarehouseStorage) -> list[tuple[str, str]]:
    """(distributor_id, dataset) pairs whose core holds a partition of a load that does not count
    now (`loaded` or `staged` are the statuses that may be in core): a load run again and
    `rejected`, or a superseded one a killed update left behind. Read from the Delta logs and the
    ledger; an update of the pair takes the partition out."""
    statuses = scan_table(storage, "loads").select("load_id", "status").collect()
    pairs: set[tuple[str, str]] = set()
    for dataset in CORE_TABLES:
        if not storage.table_exists(dataset):
            continue
        files = add_actions(storage, dataset)
        if files.is_empty():
            continue
        partitions = files.select(
            pl.col("partition.distributor_id").alias("distributor_id"),
            pl.col("partition.load_id").alias("load_id"),
        ).unique()
        stray = partitions.join(statuses, on="load_id", how="left").filter(
            pl.col("status").is_null() | ~pl.col("status").is_in(["loaded", "staged"])
        )
        pairs |= {(distributor_id, dataset) for distributor_id in stray["distributor_id"].unique()}
    return sorted(pairs)


def _no_shared_lines(
    storage: WarehouseStorage,
    dataset: str,
    staging_table: str,
    distributor_id: str,
    to_add: set[str],
    neighbours: set[str],
    removed: set[str] | None = None,
) -> bool:
    """True when adding `to_add` whole (after taking out `removed`, loads run again) decides every
    line: no line of the loads being added repeats, among them or in a neighbour's core rows, and
    no line `removed` held in core is one a neighbour reported too (it would go back to that one).

    Compared by 64-bit hashes of `line_id`, sorted in place (8 bytes a line: a hash set of 20 million
    lines held 1 GiB); a collision only sends the update down the exact path.
    """
    mine = pl.col("distributor_id") == distributor_id

    def hashes(table: str, loads: set[str]) -> np.ndarray:
        return (
            scan_table(storage, table)
            .filter(mine & pl.col("load_id").is_in(sorted(loads)))
            .select(pl.col("line_id").hash())
            .collect(engine="streaming")
            .to_series()
            .to_numpy(writable=True)
        )

    keys = np.concatenate(
        [hashes(staging_table, to_add), *([hashes(dataset, neighbours)] if neighbours else [])]
    )
    keys.sort()
    if bool((keys[1:] == keys[:-1]).any()):
        return False
    if not removed or not neighbours:
        return True
    held = hashes(dataset, removed)
    return not bool(np.isin(hashes(staging_table, neighbours), held).any())


def _rewrite(
    storage: WarehouseStorage,
    dataset: str,
    staging_table: str,
    distributor_id: str,
    loads: pl.DataFrame,
    active: set[str],
    to_add: set[str],
    to_remove: set[str],
    neighbours: set[str],
    enrich: Enrich | None,
) -> None:
    """Replace the core partitions of the loads added, removed and their neighbours, in one commit.

    The lines at stake are those the added loads bring and those the removed loads held. For each,
    the winner is chosen among the staging rows of the added loads and the date-overlapping
    neighbours; every other row of a neighbour stays exactly as core has it.

    The choice is made on narrow keys (line, load, source row, arrival rank), so its memory follows
    the number of lines at stake, not their width; each partition's rows are then streamed from
    staging (its winners, enriched) and merged in source-row order with the neighbour's untouched
    core rows, one Parquet file per partition (`write_partitions`), never sorted in memory whole.
    """
    rank = (
        loads.filter(pl.col("load_id").is_in(sorted(active)))
        .sort(RECENCY, descending=True)
        .with_row_index(_RANK)
        .select("load_id", pl.col(_RANK).cast(pl.Int64))
    )
    mine = pl.col("distributor_id") == distributor_id
    staging = scan_table(storage, staging_table).filter(mine)
    core = scan_table(storage, dataset).filter(mine)
    at_stake = (
        pl.concat(
            [
                staging.filter(pl.col("load_id").is_in(sorted(to_add))).select("line_id"),
                core.filter(pl.col("load_id").is_in(sorted(to_remove))).select("line_id"),
            ]
        )
        .unique()
        .collect(engine="streaming")
    )
    contenders = sorted(to_add | neighbours)
    winner_keys = (
        staging.filter(pl.col("load_id").is_in(contenders))
        .select("load_id", "source_row", "line_id")
        .join(at_stake.lazy(), on="line_id", how="semi")
        .join(rank.lazy(), on="load_id", how="inner")
        .sort([_RANK, "source_row"])
        .unique(subset="line_id", keep="first", maintain_order=True)
        .drop(_RANK)
        .collect(engine="streaming")
    )
    conformed = [pl.col(name).cast(dtype) for name, dtype in TABLE_COLUMNS[dataset].items()]
    rows_by_load: dict[str, list[pl.LazyFrame]] = {}
    for load in sorted(to_add | to_remove | neighbours):
        won = winner_keys.filter(pl.col("load_id") == load).select("source_row", "line_id")
        winners = staging.filter(pl.col("load_id") == load).join(
            won.lazy(), on=["source_row", "line_id"], how="semi", maintain_order="left"
        )
        if enrich is not None:
            winners = enrich(dataset, winners)
        winners = winners.select(conformed)
        if load in neighbours:
            untouched = (
                core.filter(pl.col("load_id") == load)
                .join(at_stake.lazy(), on="line_id", how="anti", maintain_order="left")
                .select(conformed)
            )
            winners = winners.merge_sorted(untouched, key="source_row")
        rows_by_load[load] = [winners]
    # A load still counting that won no line keeps an empty file: it stays "in core".
    write_partitions(storage, dataset, distributor_id, rows_by_load, keep_empty=active)


def refresh_partitions(
    storage: WarehouseStorage,
    dataset: str,
    distributor_id: str,
    load_ids: list[str],
    enrich: Enrich,
    lock_dir: Path,
) -> None:
    """Recompute the core rows of the given load partitions from their staging rows with `enrich`, in
    one commit: the same lines stay, their reference columns follow the current reference data.
    Only these partitions are rewritten (an approved alias touches the loads that hold the reseller)."""
    if not load_ids:
        return
    with distributor_lock(lock_dir, distributor_id):
        mine = pl.col("distributor_id") == distributor_id
        staging = scan_table(storage, CORE_TABLES[dataset]).filter(mine)
        core = scan_table(storage, dataset).filter(mine)
        date_field = DATE_FIELDS[dataset]
        in_core = _partitions(storage, dataset, distributor_id, date_field)
        in_staging = _partitions(storage, CORE_TABLES[dataset], distributor_id, date_field)
        # The loads were listed before the lock: an update may have taken some out of core since.
        load_ids = [load for load in load_ids if load in in_core]
        if not load_ids:
            return
        keys = ["load_id", "line_id", "source_row"]
        rows = {}
        for load in sorted(load_ids):
            staged = staging.filter(pl.col("load_id") == load)
            if load in in_core and load in in_staging and in_core[load].rows == in_staging[load].rows:
                # Core holds a subset of the load's staging rows: as many rows means all of them.
                rows[load] = [enrich(dataset, part) for part in _slices(staged, in_staging[load])]
                continue
            kept = (
                staged.join(core.filter(pl.col("load_id") == load).select(keys), on=keys, how="semi")
                .sort("source_row")
                .unique(subset="line_id", keep="first", maintain_order=True)
            )
            rows[load] = [enrich(dataset, kept)]
        write_partitions(storage, dataset, distributor_id, rows, keep_empty=load_ids)
