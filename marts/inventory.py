"""`inventory_health`: one row per distributor x SKU: the latest stock on hand, what the
distributor sold of it in the four weeks up to that snapshot, and how many weeks the stock lasts
at that rate.

Stock whose part number maps to no vendor SKU is kept, by its part number, so unmapped stock shows.
"""

from __future__ import annotations

import polars as pl

from marts.frames import Frame, conform, empty, lazy

SELL_RATE_DAYS = 28
WEEKS = SELL_RATE_DAYS // 7

SCHEMA: dict[str, pl.DataType] = {
    "distributor_id": pl.String(),
    "sku": pl.String(),
    "distributor_sku": pl.String(),
    "snapshot_date": pl.Date(),
    "locations": pl.Int64(),
    "quantity_on_hand": pl.Int64(),
    "quantity_on_order": pl.Int64(),
    "units_sold_4w": pl.Int64(),
    "weekly_sell_rate": pl.Float64(),
    "weeks_of_supply": pl.Float64(),
}
"""The columns of `inventory_health`, in order, with their types."""


def build_inventory_health(inventory: Frame, *, sellout: Frame) -> pl.DataFrame:
    """The `inventory_health` mart (columns: `SCHEMA`), sorted by distributor, SKU, part number.

    Per distributor and SKU (or part number, where the SKU is null): the stock of the latest
    snapshot_date, summed over locations; `units_sold_4w` is the net sell-out quantity (sales less
    returns) of that distributor and SKU with transaction_date in the 28 days ending on the
    snapshot date; `weeks_of_supply` = on hand / (units_sold_4w / 4), null unless that rate is positive.
    """
    stock = lazy(inventory).select(
        pl.col("distributor_id").cast(pl.String),
        pl.col("sku").cast(pl.String),
        pl.col("distributor_sku").cast(pl.String),
        "snapshot_date",
        "location_id",
        "quantity_on_hand",
        "quantity_on_order",
    )
    # Mapped stock is one item per SKU (whatever part numbers it was reported under); unmapped, per part number.
    item = pl.when(pl.col("sku").is_null()).then(pl.col("distributor_sku")).otherwise(None).alias("_part")
    keyed = stock.with_columns(item)
    key = ["distributor_id", "sku", "_part"]
    latest = keyed.filter(pl.col("snapshot_date") == pl.col("snapshot_date").max().over(key))
    positions = (
        latest.group_by(key)
        .agg(
            pl.col("snapshot_date").first(),
            pl.col("distributor_sku").min(),
            pl.col("location_id").n_unique().cast(pl.Int64).alias("locations"),
            pl.col("quantity_on_hand").sum().cast(pl.Int64),
            pl.when(pl.col("quantity_on_order").is_null().all())
            .then(None)
            .otherwise(pl.col("quantity_on_order").sum())
            .cast(pl.Int64)
            .alias("quantity_on_order"),
        )
        .collect()
    )
    if positions.is_empty():
        return empty(SCHEMA)
    sold = (
        lazy(sellout)
        .select(
            pl.col("distributor_id").cast(pl.String),
            pl.col("sku").cast(pl.String),
            pl.when(pl.col("sku").is_null())
            .then(pl.col("distributor_sku"))
            .otherwise(None)
            .cast(pl.String)
            .alias("_part"),
            "transaction_date",
            "quantity",
        )
        .join(positions.lazy().select(*key, "snapshot_date"), on=key, nulls_equal=True)
        .filter(
            pl.col("transaction_date").is_between(
                pl.col("snapshot_date") - pl.duration(days=SELL_RATE_DAYS - 1), pl.col("snapshot_date")
            )
        )
        .group_by(key)
        .agg(pl.col("quantity").sum().cast(pl.Int64).alias("units_sold_4w"))
    )
    rate = pl.col("units_sold_4w").cast(pl.Float64) / WEEKS
    frame = (
        positions.lazy()
        .join(sold, on=key, how="left", nulls_equal=True)
        .with_columns(pl.col("units_sold_4w").fill_null(0))
        .with_columns(rate.alias("weekly_sell_rate"))
        .with_columns(
            pl.when(pl.col("weekly_sell_rate") > 0)
            .then(pl.col("quantity_on_hand").cast(pl.Float64) / pl.col("weekly_sell_rate"))
            .otherwise(None)
            .alias("weeks_of_supply")
        )
    )
    return conform(frame.sort("distributor_id", "sku", "distributor_sku", nulls_last=True), SCHEMA)
