"""Core tables: `sellout` and `inventory` rebuilt per distributor from staging and the ledger.

The rules live here in one place: loads whose records are in staging (`staged`, `loaded` or
`superseded`) are candidates, `held` and `rejected` ones never count; of several loads of the same
feed and report period, the latest to arrive (`received_at`, the ledger's arrival order) supersedes
the others; a line reported in several loads (same `line_id`) counts once, from the latest load.
The rebuild replaces the distributor's rows in one Delta commit and only then moves the ledger:
`staged` loads become `loaded` or `superseded`. It is idempotent, so a run interrupted anywhere
is completed by rebuilding again.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl

from warehouse.faults import crash_point
from warehouse.ledger import set_status
from warehouse.storage import WarehouseStorage
from warehouse.tables import distributor_lock, replace_rows, scan_table, sql_literal

CORE_TABLES = {"sellout": "staging_sellout", "inventory": "staging_inventory"}
RECENCY = ["received_at", "source_name", "load_id"]


@dataclass(frozen=True)
class CoreRebuild:
    """What one rebuild did: rows now in core for the distributor, loads superseded and counted."""

    dataset: str
    distributor_id: str
    rows: int
    active_loads: list[str]
    superseded_loads: list[str]


def _active_and_superseded(loads: pl.DataFrame) -> tuple[list[str], list[str]]:
    """Of a distributor's loaded/superseded loads: which count, and which a later report replaces."""
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


def rebuild_core(storage: WarehouseStorage, dataset: str, distributor_id: str, lock_dir: Path) -> CoreRebuild:
    """Rebuild one distributor's rows of `sellout` or `inventory`, and mark superseded loads."""
    staging_table = CORE_TABLES[dataset]
    with distributor_lock(lock_dir, distributor_id):
        loads = (
            scan_table(storage, "loads")
            .filter(
                (pl.col("distributor_id") == distributor_id)
                & (pl.col("dataset") == dataset)
                & pl.col("status").is_in(["loaded", "superseded", "staged"])
            )
            .select("load_id", "feed_id", "period_start", *RECENCY[:2])
            .collect()
        )
        active, superseded = _active_and_superseded(loads)
        recency = loads.select("load_id", pl.col("source_name").alias("_source_name"))
        rows = (
            scan_table(storage, staging_table)
            .filter((pl.col("distributor_id") == distributor_id) & pl.col("load_id").is_in(active))
            .join(recency.lazy(), on="load_id", how="left")
            .sort(
                ["received_at", "_source_name", "load_id", "source_row"], descending=[True, True, True, False]
            )
            .unique(subset="line_id", keep="first", maintain_order=True)
            .drop("_source_name")
            .sort("load_id", "source_row")
            .collect()
        )
        replace_rows(storage, dataset, rows, f"distributor_id = {sql_literal(distributor_id)}")
        crash_point("after_core_commit")
        set_status(storage, superseded, "superseded", ("loaded", "staged"))
        set_status(storage, active, "loaded", ("superseded", "staged"))
        crash_point("after_status")
    return CoreRebuild(dataset, distributor_id, rows.height, active, superseded)
