"""The partner x month revenue grid that `partner_performance` and `partner_anomalies` share, and
the partner's tier on record (`partners_history`) on a given day.

Only matched sell-out counts here (partner_id set); which months and which partners a grid holds
is decided once, in `partner_months`, so the two marts always have the same rows.
"""

from __future__ import annotations

import polars as pl

from marts.frames import ZERO, Frame, columns, lazy, month_index
from schemas.tables import AMOUNT

GRID_SCHEMA: dict[str, pl.DataType] = {
    "partner_id": pl.String(),
    "month": pl.Date(),
    "month_index": pl.Int64(),
    "revenue_base": AMOUNT,
    "units": pl.Int64(),
    "lines": pl.Int64(),
    "lines_without_base_amount": pl.Int64(),
}


def partner_months(sellout: Frame, partners: Frame) -> pl.DataFrame:
    """One row per partner x month, from the first to the last month of matched sell-out (by
    transaction_date), for every partner of `partners` and every partner_id the sell-out names
    (so the revenue of the grid always adds up to the matched lines'), zeros where nothing sold.

    Columns: `GRID_SCHEMA`. `revenue_base` is the exact sum of `net_amount_base` (lines whose base
    amount is null add nothing and are counted in `lines_without_base_amount`).
    """
    matched = (
        lazy(sellout)
        .filter(pl.col("partner_id").is_not_null())
        .with_columns(pl.col("transaction_date").dt.truncate("1mo").alias("month"))
        .group_by("partner_id", "month")
        .agg(
            pl.col("net_amount_base").sum().cast(AMOUNT).alias("revenue_base"),
            pl.col("quantity").sum().cast(pl.Int64).alias("units"),
            pl.len().cast(pl.Int64).alias("lines"),
            pl.col("net_amount_base").is_null().sum().cast(pl.Int64).alias("lines_without_base_amount"),
        )
        .collect()
    )
    if matched.is_empty():
        return pl.DataFrame(schema=GRID_SCHEMA)
    first, last = matched["month"].min(), matched["month"].max()
    months = pl.DataFrame({"month": pl.date_range(first, last, "1mo", eager=True)})
    ids = (
        pl.concat(
            [lazy(partners).select(pl.col("partner_id").cast(pl.String)), matched.lazy().select("partner_id")]
        )
        .unique()
        .collect()
    )
    grid = ids.join(months, how="cross").join(matched, on=["partner_id", "month"], how="left")
    return (
        grid.with_columns(
            month_index(pl.col("month")).alias("month_index"),
            pl.col("revenue_base").fill_null(ZERO),
            *[pl.col(name).fill_null(0) for name in ("units", "lines", "lines_without_base_amount")],
        )
        .select([pl.col(name).cast(dtype) for name, dtype in GRID_SCHEMA.items()])
        .sort("partner_id", "month")
    )


def with_tier_on_record(frame: pl.LazyFrame, history: Frame, day: str, alias: str) -> pl.LazyFrame:
    """`frame` plus `alias`: the tier of the partner's version in `history` (partners_history)
    valid on the date column `day` (valid_from inclusive, valid_to exclusive, null = open); null
    when no version covers the day. History without validity columns is one open version each."""
    names = columns(history)
    if "tier" not in names:
        return frame.with_columns(pl.lit(None, dtype=pl.String).alias(alias))
    versions = lazy(history).select(
        pl.col("partner_id").cast(pl.String),
        (pl.col("valid_from") if "valid_from" in names else pl.lit(None, dtype=pl.Date)).alias("_from"),
        (pl.col("valid_to") if "valid_to" in names else pl.lit(None, dtype=pl.Date)).alias("_to"),
        pl.col("tier").cast(pl.String).alias(alias),
    )
    keys = frame.select("partner_id", day).unique()
    covering = (
        keys.join(versions, on="partner_id")
        .filter(
            (pl.col("_from").is_null() | (pl.col("_from") <= pl.col(day)))
            & (pl.col("_to").is_null() | (pl.col(day) < pl.col("_to")))
        )
        .group_by("partner_id", day)
        .agg(pl.col(alias).first())
    )
    return frame.join(covering, on=["partner_id", day], how="left")
