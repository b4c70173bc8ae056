"""`distributor_data_quality`: one row per distributor x dataset x report period: which reports were
expected from the distributor's cadence, which arrived (through which feed), on time or late,
which are missing, and how clean the ones in effect were (rows read, quarantined, unmatched
resellers, unmapped SKUs).

Expected periods come from `distributors.cadence` and the periods the distributor's feeds of the
dataset have reported (`loads.period_start`); any of those feeds may deliver a period (a distributor
moving from file drops to its API keeps one schedule). Nothing here reads the feed specs or the
clock (`as_of` is given).
"""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl

from marts.frames import Frame, conform, empty, lazy
from schemas.tables import TIMESTAMP

DEFAULT_GRACE_DAYS = 3
CADENCES = ("daily", "weekly", "monthly")
DELIVERED = ("loaded", "superseded", "held", "staged")
"""Load statuses of a file that delivered its period's report (rejected files did not; a
duplicate repeats bytes already received)."""
IN_EFFECT = ("loaded", "staged")
"""Load statuses of the report in effect for a period: its rows are what `sellout` shows."""

SCHEMA: dict[str, pl.DataType] = {
    "distributor_id": pl.String(),
    "feed_id": pl.String(),
    "dataset": pl.String(),
    "cadence": pl.String(),
    "period_start": pl.Date(),
    "period_end": pl.Date(),
    "due_on": pl.Date(),
    "status": pl.String(),
    "received_at": TIMESTAMP,
    "days_late": pl.Int64(),
    "files": pl.Int64(),
    "rejected_files": pl.Int64(),
    "held_files": pl.Int64(),
    "rows_read": pl.Int64(),
    "rows_loaded": pl.Int64(),
    "rows_quarantined": pl.Int64(),
    "quarantined_pct": pl.Float64(),
    "unmatched_reseller_lines": pl.Int64(),
    "unmapped_sku_lines": pl.Int64(),
}
"""The columns of `distributor_data_quality`, in order, with their types."""

_KEY = ["distributor_id", "dataset", "period_start"]
"""A report is expected per distributor and dataset: any of its feeds of that dataset may deliver it
(a distributor moving from file drops to its API keeps one schedule)."""


def build_distributor_data_quality(
    loads: Frame,
    *,
    distributors: Frame,
    sellout: Frame,
    inventory: Frame,
    as_of: date,
    grace_days: int = DEFAULT_GRACE_DAYS,
) -> pl.DataFrame:
    """The `distributor_data_quality` mart (columns: `SCHEMA`), sorted by distributor, dataset, period.

    Loads count when they carry `period_start`; a distributor's expected periods of a dataset run
    from the first reported one, stepping by its cadence, to the last period due by `as_of` (due
    `grace_days` after the period's end); periods reported outside that run are added. `feed_id` is
    the feed that delivered the period first (null when it is missing).
    """
    if grace_days < 0:
        raise ValueError(f"grace_days must be 0 or more, not {grace_days}")
    received = (
        lazy(loads)
        .filter(pl.col("period_start").is_not_null() & pl.col("feed_id").is_not_null())
        .select(
            "distributor_id",
            "feed_id",
            "dataset",
            "period_start",
            "status",
            pl.col("received_at").cast(TIMESTAMP),
            "rows_read",
            "rows_loaded",
            "rows_quarantined",
        )
        .collect()
    )
    cadences = dict(lazy(distributors).select("distributor_id", "cadence").collect().iter_rows())
    periods = _periods(received, cadences, as_of, grace_days)
    if periods.is_empty():
        return empty(SCHEMA)
    frame = (
        periods.lazy()
        .with_columns((pl.col("period_end") + pl.duration(days=grace_days)).alias("due_on"))
        .join(_receipts(received), on=_KEY, how="left")
        .join(_line_counts(sellout, inventory), on=_KEY, how="left")
    )
    received_on = pl.col("received_at").dt.date()
    missing = pl.col("received_at").is_null()
    late = received_on > pl.col("due_on")
    counts = ("files", "rejected_files", "held_files", "rows_read", "rows_loaded", "rows_quarantined")
    frame = frame.with_columns(
        pl.when(missing)
        .then(pl.lit("missing"))
        .when(late)
        .then(pl.lit("late"))
        .otherwise(pl.lit("received"))
        .alias("status"),
        pl.when(missing)
        .then((pl.lit(as_of) - pl.col("due_on")).dt.total_days())
        .when(late)
        .then((received_on - pl.col("due_on")).dt.total_days())
        .otherwise(0)
        .alias("days_late"),
        *[pl.col(name).fill_null(0) for name in counts],
        pl.col("unmapped_sku_lines").fill_null(0),
        pl.when(pl.col("dataset") == "sellout")
        .then(pl.col("unmatched_reseller_lines").fill_null(0))
        .otherwise(None)
        .alias("unmatched_reseller_lines"),
    ).with_columns(
        pl.when(pl.col("rows_read") > 0)
        .then(pl.col("rows_quarantined").cast(pl.Float64) / pl.col("rows_read").cast(pl.Float64) * 100)
        .otherwise(None)
        .alias("quarantined_pct")
    )
    return conform(frame.sort(_KEY), SCHEMA)


def period_end(cadence: str, start: date) -> date:
    """The last day of the report period that starts on `start`."""
    if cadence == "daily":
        return start
    if cadence == "weekly":
        return start + timedelta(days=6)
    return _next_month(start) - timedelta(days=1)


def expected_periods(cadence: str, first: date, as_of: date, grace_days: int) -> list[date]:
    """Period starts from `first` (monthly: its month's first day) stepping by the cadence, up to
    the last period due (`period_end + grace_days`) on or before `as_of`."""
    start = first.replace(day=1) if cadence == "monthly" else first
    out = []
    while period_end(cadence, start) + timedelta(days=grace_days) <= as_of:
        out.append(start)
        start = (
            _next_month(start)
            if cadence == "monthly"
            else start + timedelta(days=1 if cadence == "daily" else 7)
        )
    return out


def _next_month(day: date) -> date:
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)


def _periods(received: pl.DataFrame, cadences: dict[str, str], as_of: date, grace_days: int) -> pl.DataFrame:
    """Every (distributor, dataset, period) to report on: the expected ones and any other a file was
    received for."""
    rows = []
    feeds = (
        received.filter(pl.col("dataset").is_not_null())
        .group_by("distributor_id", "dataset")
        .agg(pl.col("period_start").unique().sort().alias("reported"))
    )
    for feed in feeds.iter_rows(named=True):
        cadence = cadences.get(feed["distributor_id"])
        if cadence not in CADENCES:
            continue  # a distributor without a known cadence (its spec removed): nothing is expected
        reported = feed["reported"]
        expected = expected_periods(cadence, reported[0], as_of, grace_days)
        for start in sorted(set(expected) | set(reported)):
            rows.append(
                {
                    "distributor_id": feed["distributor_id"],
                    "dataset": feed["dataset"],
                    "cadence": cadence,
                    "period_start": start,
                    "period_end": period_end(cadence, start),
                }
            )
    schema = {
        name: SCHEMA[name] for name in ("distributor_id", "dataset", "cadence", "period_start", "period_end")
    }
    return pl.DataFrame(rows, schema=schema, orient="row")


def _receipts(received: pl.DataFrame) -> pl.LazyFrame:
    """Per distributor, dataset and period: the first delivering file's feed and arrival, file counts,
    and the rows of the report in effect."""
    status = pl.col("status")
    delivered, in_effect = status.is_in(DELIVERED), status.is_in(IN_EFFECT)
    return (
        received.lazy()
        .group_by(_KEY)
        .agg(
            pl.col("feed_id").filter(delivered).sort_by(pl.col("received_at").filter(delivered)).first(),
            pl.col("received_at").filter(delivered).min(),
            delivered.sum().cast(pl.Int64).alias("files"),
            (status == "rejected").sum().cast(pl.Int64).alias("rejected_files"),
            (status == "held").sum().cast(pl.Int64).alias("held_files"),
            *[
                pl.col(name).filter(in_effect).sum().cast(pl.Int64).alias(name)
                for name in ("rows_read", "rows_loaded", "rows_quarantined")
            ],
        )
    )


def _line_counts(sellout: Frame, inventory: Frame) -> pl.LazyFrame:
    """Per distributor, dataset and period: core lines without a partner and without a vendor SKU."""
    key = ["distributor_id", "period_start"]
    sold = (
        lazy(sellout)
        .group_by(key)
        .agg(
            pl.col("partner_id").is_null().sum().cast(pl.Int64).alias("unmatched_reseller_lines"),
            pl.col("sku").is_null().sum().cast(pl.Int64).alias("unmapped_sku_lines"),
        )
        .with_columns(pl.lit("sellout").alias("dataset"))
    )
    stocked = (
        lazy(inventory)
        .group_by(key)
        .agg(
            pl.lit(None, dtype=pl.Int64).alias("unmatched_reseller_lines"),
            pl.col("sku").is_null().sum().cast(pl.Int64).alias("unmapped_sku_lines"),
        )
        .with_columns(pl.lit("inventory").alias("dataset"))
    )
    return pl.concat([sold, stocked], how="vertical_relaxed").with_columns(
        pl.col("distributor_id").cast(pl.String),
        pl.col("period_start").cast(pl.Date),
    )
