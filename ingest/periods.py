"""Report periods: which period (load partition) each load belongs to, and which periods each
distributor has delivered, delivered late or still owes as of a day.

What belongs here: the use-case view of report periods that the orchestrator draws as partitions
and checks for lateness. A file's period is `ingest.route`'s decision (`route(...).report_date`);
what is expected, due, late or missing is the `distributor_data_quality` mart's rule
(`marts.data_quality`), reused here so the UI's late-report check and the mart never disagree.
Nothing here writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import polars as pl

from ingest.context import IngestContext
from ingest.enrichment import distributors_frame
from ingest.publish import loads_with_delivery_time
from ingest.route import route
from marts.data_quality import DEFAULT_GRACE_DAYS, build_distributor_data_quality
from schemas.tables import empty_frame
from warehouse.tables import scan_table

STATUS_ORDER = ("received", "late", "missing")
"""A period's status is its worst dataset's: a distributor that sent sell-out but owes inventory
still owes a report for the period."""


@dataclass(frozen=True)
class ReportPeriod:
    """One distributor's report period as of a day, over every dataset it reports.

    `status`: `received` (on time), `late` (delivered after `due_on`) or `missing` (due, not
    delivered); `datasets` gives each dataset's own status. `last_received_*` are the
    distributor's latest delivered period and delivery time, whichever period this is.
    """

    distributor_id: str
    period_start: date
    period_end: date
    cadence: str
    status: str
    due_on: date
    received_at: datetime | None
    days_late: int
    datasets: dict[str, str]
    feeds: list[str]
    last_received_period: date | None
    last_received_at: datetime | None


def loads_with_partition(context: IngestContext) -> pl.DataFrame:
    """`loads`, each row with `report_date`: the load partition's date, as `ingest.route` decides it."""
    if not context.storage.table_exists("loads"):
        return empty_frame("loads").with_columns(pl.lit(None, dtype=pl.Date).alias("report_date"))
    loads = scan_table(context.storage, "loads").collect()
    dates = [
        route(context.catalog, row["distributor_id"], row["source_name"], row["received_at"]).report_date
        for row in loads.select("distributor_id", "source_name", "received_at").iter_rows(named=True)
    ]
    return loads.with_columns(pl.Series("report_date", dates, dtype=pl.Date))


def report_periods(
    context: IngestContext, as_of: date, *, grace_days: int = DEFAULT_GRACE_DAYS
) -> list[ReportPeriod]:
    """Every period each distributor has reported or owes as of `as_of`, oldest first per distributor.

    The periods, due dates and statuses are `distributor_data_quality`'s (from each distributor's
    cadence, its first reported period, and the delivery times of its loads); the line counts of
    that mart are not needed here, so core is not read.
    """
    if not context.storage.table_exists("loads"):
        return []
    quality = build_distributor_data_quality(
        loads_with_delivery_time(context),
        distributors=distributors_frame(context.catalog),
        sellout=empty_frame("sellout"),
        inventory=empty_frame("inventory"),
        as_of=as_of,
        grace_days=grace_days,
    )
    if quality.is_empty():
        return []
    delivered = quality.filter(pl.col("status") != "missing")
    latest = delivered.group_by("distributor_id").agg(
        pl.col("period_start").max().alias("last_received_period"),
        pl.col("received_at").max().alias("last_received_at"),
    )
    rank = {status: index for index, status in enumerate(STATUS_ORDER)}
    per_period = (
        quality.with_columns(pl.col("status").replace_strict(rank, return_dtype=pl.Int8).alias("_rank"))
        .group_by("distributor_id", "period_start")
        .agg(
            pl.col("period_end").max(),
            pl.col("cadence").first(),
            pl.col("_rank").max(),
            pl.col("due_on").min(),
            pl.col("received_at").min(),
            pl.col("days_late").max(),
            pl.col("dataset"),
            pl.col("status").alias("dataset_status"),
            pl.col("feed_id").drop_nulls().unique().sort().alias("feeds"),
        )
        .join(latest, on="distributor_id", how="left")
        .sort("distributor_id", "period_start")
    )
    return [
        ReportPeriod(
            distributor_id=row["distributor_id"],
            period_start=row["period_start"],
            period_end=row["period_end"],
            cadence=row["cadence"],
            status=STATUS_ORDER[row["_rank"]],
            due_on=row["due_on"],
            received_at=row["received_at"],
            days_late=row["days_late"],
            datasets=dict(zip(row["dataset"], row["dataset_status"], strict=True)),
            feeds=row["feeds"],
            last_received_period=row["last_received_period"],
            last_received_at=row["last_received_at"],
        )
        for row in per_period.iter_rows(named=True)
    ]
