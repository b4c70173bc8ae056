"""Publishing: build the marts from core and reference tables, store them, write the scorecards,
and export one partner's lines.

What belongs here: reading what the marts need from the warehouse, in one place, and deciding what
a report's delivery time is. What a mart means is `marts/`'s; pages and exports are `reports/`'s;
storing is `warehouse/`'s.

A report's delivery time, for lateness in `distributor_data_quality`, is the file's modification
time as it was received (when the distributor wrote or uploaded it) where the channel keeps it,
else when Throughline received it: a report the distributor delivered on time is not late because
a run picked it up a day later. Arrival order (which report wins) still follows `received_at`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl

from ingest.context import IngestContext
from ingest.enrichment import stored_table
from marts import MART_NAMES, SCHEMAS, MartInputs, build_marts
from reports import ReportsWritten, export_partner, write_reports
from schemas.tables import TABLE_COLUMNS, empty_frame
from warehouse.faults import crash_point
from warehouse.reference_tables import write_reference_table
from warehouse.tables import distributor_lock, scan_table

MART_SCHEMAS = SCHEMAS
"""Every mart's columns and Polars types (what the Dagster checks compare the stored tables with)."""
REPORTS_LOCK = "_reports"
"""The lock the writer of the scorecards holds (so stray temporary files are a killed run's)."""
HIDDEN_SELLOUT_COLUMNS = ("received_at",)
"""Not in the `sellout` view, so not in an export either."""


@dataclass(frozen=True)
class Published:
    """What one publication wrote: rows per mart, and the scorecards."""

    as_of: date
    mart_rows: dict[str, int]
    reports: ReportsWritten


def _core(context: IngestContext, table: str) -> pl.DataFrame:
    if not context.storage.table_exists(table):
        return empty_frame(table)
    return scan_table(context.storage, table).collect()


def loads_with_delivery_time(context: IngestContext) -> pl.DataFrame:
    """`loads`, with `received_at` replaced by the delivery time (see the module docstring)."""
    loads = _core(context, "loads")
    if not context.storage.table_exists("landed_files") or loads.is_empty():
        return loads
    landed = (
        scan_table(context.storage, "landed_files")
        .select("distributor_id", "sha256", "source_mtime", pl.col("received_at").alias("_landed_received"))
        .collect()
    )
    return (
        loads.join(landed, on=["distributor_id", "sha256"], how="left")
        .with_columns(pl.min_horizontal(pl.col("source_mtime"), pl.col("received_at")).alias("received_at"))
        .select(list(TABLE_COLUMNS["loads"]))
    )


def publish(context: IngestContext, as_of: date | None = None) -> Published:
    """Build every mart as of `as_of` (default: today, UTC), store each whole, write the scorecards."""
    as_of = as_of or datetime.now(UTC).date()
    sellout = _core(context, "sellout")
    inputs = MartInputs(
        sellout=sellout,
        inventory=_core(context, "inventory"),
        loads=loads_with_delivery_time(context),
        distributors=stored_table(context, "distributors"),
        partners=stored_table(context, "partners"),
        partners_history=stored_table(context, "partners_history"),
        products=stored_table(context, "products"),
        quotas=stored_table(context, "quotas"),
        tiers=stored_table(context, "tiers"),
        certifications=stored_table(context, "certifications"),
        rebate_programs=stored_table(context, "rebate_programs"),
        as_of=as_of,
    )
    marts = build_marts(inputs)
    for name in MART_NAMES:
        write_reference_table(context.storage, name, marts[name])
        crash_point("publish_after_first_mart")
    crash_point("publish_after_marts")
    with distributor_lock(context.lock_dir, REPORTS_LOCK):  # one writer of the report files at a time
        written = write_reports(
            context.settings.reports_dir,
            partners=inputs.partners,
            partner_performance=marts["partner_performance"],
            rebate_accruals=marts["rebate_accruals"],
            sellout=sellout,
            products=inputs.products,
            certifications=inputs.certifications,
            as_of=as_of,
            base_currency=context.settings.base_currency,
        )
    crash_point("publish_after_reports")
    return Published(as_of, {name: marts[name].height for name in MART_NAMES}, written)


def export_partner_lines(context: IngestContext, partner_id: str, out_dir: Path) -> tuple[Path, Path]:
    """Write one partner's sell-out lines (the `sellout` view's columns) as CSV and Parquet."""
    sellout = scan_table(context.storage, "sellout").drop(HIDDEN_SELLOUT_COLUMNS)
    return export_partner(sellout, partner_id, out_dir, partners=stored_table(context, "partners"))
