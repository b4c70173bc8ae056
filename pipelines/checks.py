"""Asset checks of a load: row reconciliation, quarantine rate and a validation summary.

Each check recounts from the tables themselves (not from the loader's own counters) and returns
an `AssetCheckResult` with metadata on every path, so the UI always shows what was measured.
"""

from __future__ import annotations

import dagster as dg
import polars as pl

from schemas.settings import ThroughlineSettings
from warehouse.ledger import LoadRow
from warehouse.storage import WarehouseStorage
from warehouse.tables import scan_table

LOADS_KEY = dg.AssetKey(["ops", "loads"])
ROW_RECONCILIATION = "row_reconciliation"
QUARANTINE_RATE = "quarantine_rate"
VALIDATION_SUMMARY = "validation_summary"
QUARANTINE_RATE_WARN = ThroughlineSettings.model_fields["quarantine_rate_warn"].default

LOAD_CHECK_SPECS = [
    dg.AssetCheckSpec(
        ROW_RECONCILIATION,
        asset=LOADS_KEY,
        blocking=True,
        description="rows_read = rows_loaded + rows_quarantined for every load, recounted from staging and quarantine.",
    ),
    dg.AssetCheckSpec(
        QUARANTINE_RATE,
        asset=LOADS_KEY,
        description=f"Warns when more than {QUARANTINE_RATE_WARN:.0%} of a load's records are quarantined.",
    ),
    dg.AssetCheckSpec(
        VALIDATION_SUMMARY,
        asset=LOADS_KEY,
        description="Failed records per rule, and files rejected whole.",
    ),
]


def markdown_table(frame: pl.DataFrame) -> str:
    """A small frame as a Markdown table for Dagster metadata."""
    header = "| " + " | ".join(frame.columns) + " |"
    rule = "| " + " | ".join("---" for _ in frame.columns) + " |"
    body = [
        "| " + " | ".join("" if v is None else str(v).replace("|", "/") for v in row) + " |"
        for row in frame.rows()
    ]
    return "\n".join([header, rule, *body])


def _recount(storage: WarehouseStorage, rows: list[LoadRow]) -> pl.DataFrame:
    loaded = [r for r in rows if r.status not in ("rejected", "duplicate")]
    load_ids = [r.load_id for r in loaded]
    staged = pl.concat(
        [
            scan_table(storage, table).filter(pl.col("load_id").is_in(load_ids)).group_by("load_id").len()
            for table in ("staging_sellout", "staging_inventory")
        ]
    ).collect()
    quarantined = (
        scan_table(storage, "quarantine")
        .filter(pl.col("load_id").is_in(load_ids))
        .group_by("load_id")
        .len()
        .collect()
    )
    ledger = pl.DataFrame(
        {
            "load_id": load_ids,
            "source_name": [r.source_name for r in loaded],
            "rows_read": [r.rows_read for r in loaded],
        },
        schema={"load_id": pl.String, "source_name": pl.String, "rows_read": pl.Int64},
    )
    return (
        ledger.join(staged.rename({"len": "staged"}), on="load_id", how="left")
        .join(quarantined.rename({"len": "quarantined"}), on="load_id", how="left")
        .with_columns(pl.col("staged", "quarantined").fill_null(0).cast(pl.Int64))
        .with_columns((pl.col("rows_read") - pl.col("staged") - pl.col("quarantined")).alias("unaccounted"))
    )


def load_check_results(storage: WarehouseStorage, rows: list[LoadRow]):
    """The three load checks for the loads of one run."""
    recount = _recount(storage, rows)
    unaccounted = int(recount["unaccounted"].abs().sum()) if recount.height else 0
    yield dg.AssetCheckResult(
        check_name=ROW_RECONCILIATION,
        asset_key=LOADS_KEY,
        passed=unaccounted == 0,
        metadata={
            "loads": recount.height,
            "rows_unaccounted": unaccounted,
            "detail": dg.MetadataValue.md(
                markdown_table(recount.drop("load_id")) if recount.height else "(no loads)"
            ),
        },
    )
    worst = max(
        ((r.rows_quarantined / r.rows_read, r.source_name) for r in rows if r.rows_read), default=(0.0, "-")
    )
    yield dg.AssetCheckResult(
        check_name=QUARANTINE_RATE,
        asset_key=LOADS_KEY,
        passed=worst[0] <= QUARANTINE_RATE_WARN,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"worst_rate": float(worst[0]), "worst_file": worst[1], "threshold": QUARANTINE_RATE_WARN},
    )
    load_ids = [r.load_id for r in rows]
    per_rule = (
        scan_table(storage, "quarantine")
        .filter(pl.col("load_id").is_in(load_ids))
        .group_by("rule")
        .len()
        .sort("len", descending=True)
        .collect()
    )
    rejected = [f"{r.source_name}: {r.error}" for r in rows if r.status == "rejected"]
    yield dg.AssetCheckResult(
        check_name=VALIDATION_SUMMARY,
        asset_key=LOADS_KEY,
        passed=not rejected,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "records_quarantined": int(per_rule["len"].sum()) if per_rule.height else 0,
            "by_rule": dg.MetadataValue.json(
                dict(zip(per_rule["rule"].to_list(), per_rule["len"].to_list(), strict=True))
            ),
            "files_rejected": dg.MetadataValue.json(rejected),
        },
    )
