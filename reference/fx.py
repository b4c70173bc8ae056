"""Currency conversion: `net_amount` to the base currency at the rate of the transaction date.

The rate used is the one of the transaction date, or else the latest earlier one: an as-of join
per currency (Polars `join_asof`, strategy backward), so a weekend or holiday line takes the last
published rate before it. A rate is never taken from a later date. The base currency's rate is 1.
A line with no usable rate (no rate on or before its date, an unknown or empty currency, or a rate
older than `max_age_days` when given) gets `net_amount_base` null and `fx_missing` true: an
exception to list, never a silent zero. Pure Polars with exact Decimal products.
"""

from __future__ import annotations

import polars as pl

AMOUNT = pl.Decimal(18, 2)
"""`sellout.net_amount` and `net_amount_base` (schemas.tables.AMOUNT)."""
RATE = pl.Decimal(20, 10)
"""`fx_rates.rate_to_base` (reference.schemas.RATE)."""
_PRODUCT = pl.Decimal(38, 12)
"""An amount (2 places) times a rate (10 places) is exact at 12 places; rounded once to 2."""

LINE_COLUMNS = ("transaction_date", "currency", "net_amount")
RATE_COLUMNS = ("rate_date", "currency", "rate_to_base")
ADDED_COLUMNS = ("fx_rate", "fx_rate_date", "net_amount_base", "fx_missing")


def convert(
    lines: pl.DataFrame | pl.LazyFrame,
    fx_rates: pl.DataFrame,
    base: str = "USD",
    *,
    max_age_days: int | None = None,
) -> pl.DataFrame | pl.LazyFrame:
    """Add `fx_rate`, `fx_rate_date`, `net_amount_base` and `fx_missing` to `lines`.

    `lines` has `LINE_COLUMNS` (other columns pass through, row order kept); `fx_rates` has
    `RATE_COLUMNS`, `rate_to_base` being base-currency units per unit of `currency`, so
    `net_amount_base = round(net_amount * rate_to_base, 2)`, half to even. `fx_rate_date` is the
    date of the rate used (the transaction date or earlier; null for the base currency).
    """
    lazy = lines.lazy() if isinstance(lines, pl.DataFrame) else lines
    missing = [name for name in LINE_COLUMNS if name not in lazy.collect_schema()]
    if missing:
        raise ValueError(f"lines lack the column(s) {', '.join(missing)}")
    rates = (
        fx_rates.lazy()
        .select(
            pl.col("currency").cast(pl.String).alias("_currency"),
            pl.col("rate_date").cast(pl.Date).alias("_rate_date"),
            pl.col("rate_to_base").cast(RATE).alias("_rate"),
        )
        .filter(pl.col("_currency") != base)
        .drop_nulls()
        .sort("_currency", "_rate_date")
    )
    numbered = lazy.with_row_index("_line")
    keyed = (
        numbered.select(
            "_line",
            pl.col("transaction_date").cast(pl.Date).alias("_day"),
            pl.col("currency").cast(pl.String).alias("_currency"),
        )
        .filter(
            pl.col("_day").is_not_null() & pl.col("_currency").is_not_null() & (pl.col("_currency") != base)
        )
        .sort("_currency", "_day")
    )
    found = keyed.join_asof(
        rates,
        left_on="_day",
        right_on="_rate_date",
        by="_currency",
        strategy="backward",
        check_sortedness=False,
    )
    if max_age_days is not None:
        stale = (pl.col("_day") - pl.col("_rate_date")).dt.total_days() > max_age_days
        found = found.with_columns(
            pl.when(stale).then(None).otherwise(pl.col("_rate")).alias("_rate"),
            pl.when(stale).then(None).otherwise(pl.col("_rate_date")).alias("_rate_date"),
        )
    is_base = pl.col("currency") == base
    rate = pl.when(is_base).then(pl.lit(1, dtype=RATE)).otherwise(pl.col("_rate"))
    amount_base = (pl.col("net_amount").cast(_PRODUCT) * rate.cast(_PRODUCT)).round(2).cast(AMOUNT)
    result = (
        numbered.join(
            found.select("_line", "_rate", "_rate_date"), on="_line", how="left", maintain_order="left"
        )
        .with_columns(rate.cast(RATE).alias("fx_rate"), pl.col("_rate_date").alias("fx_rate_date"))
        .with_columns(amount_base.alias("net_amount_base"))
        .with_columns(
            (pl.col("net_amount_base").is_null() & pl.col("net_amount").is_not_null()).alias("fx_missing")
        )
        .drop("_line", "_rate", "_rate_date")
    )
    return result.collect() if isinstance(lines, pl.DataFrame) else result
