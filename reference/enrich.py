"""Enrichment: a distributor's facts (staging rows) -> the 360-degree model's core rows.

What belongs here: the pure functions that add `partner_id` (from the resolution of reported
resellers), `sku` and pack conversion (from `sku_map`), and `net_amount_base` (from `fx_rates`) to
sell-out rows, `sku` and pack conversion to inventory rows, and the test that tells a stored core
row is out of date with the reference data. Lazy Polars in, lazy Polars out; what is stored where,
and when, is the caller's.

Core rows are always computed from staging rows, never from core rows, so applying the reference
data again (an approved alias, a new SKU mapping, a late rate) gives the same result as loading
the files again: enrichment is a function of (staging row, reference data).
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from reference.partners import REPORTED_KEYS
from reference.skus import map_skus

UNITS = "units_per_distributor_unit"
AMOUNT = pl.Decimal(18, 2)
_RATE = pl.Decimal(20, 10)
_PRODUCT = pl.Decimal(38, 12)
RESOLUTION_COLUMNS = (*REPORTED_KEYS, "partner_id")
"""What enrichment needs of the resolution (`partner_aliases`): one row per reported reseller key."""


@dataclass(frozen=True)
class Enrichment:
    """The reference data enrichment applies: small frames, read once per core update."""

    base_currency: str
    resolution: pl.DataFrame
    """`RESOLUTION_COLUMNS`: every reported reseller key seen, with its partner_id (null: unmatched)."""
    sku_map: pl.DataFrame
    fx_rates: pl.DataFrame

    def apply(self, dataset: str, rows: pl.LazyFrame) -> pl.LazyFrame:
        """`rows` (staging columns) with the enriched columns replaced; columns and row order kept."""
        if dataset == "sellout":
            return enrich_sellout(rows, self)
        return enrich_inventory(rows, self)


def _resolution_keys(resolution: pl.DataFrame) -> pl.LazyFrame:
    return (
        resolution.lazy()
        .select(
            *[pl.col(name).cast(pl.String) for name in REPORTED_KEYS], pl.col("partner_id").alias("_partner")
        )
        .unique(subset=list(REPORTED_KEYS), keep="first")
    )


def _sku_table(enrichment: Enrichment) -> pl.LazyFrame:
    """`sku_map` keyed for a join: `_sku` and `_units` by distributor and part number."""
    return enrichment.sku_map.lazy().select(
        pl.col("distributor_id").cast(pl.String),
        pl.col("distributor_sku").cast(pl.String),
        pl.col("sku").cast(pl.String).alias("_sku"),
        pl.col(UNITS).cast(pl.Int64).alias("_units"),
    )


def _rates(enrichment: Enrichment) -> pl.DataFrame:
    """The usable rates, `reference.fx.convert`'s way: base currency left out, nulls dropped, sorted."""
    return (
        enrichment.fx_rates.select(
            pl.col("currency").cast(pl.String),
            pl.col("rate_date").cast(pl.Date),
            pl.col("rate_to_base").cast(_RATE),
        )
        .filter(pl.col("currency") != enrichment.base_currency)
        .drop_nulls()
        .unique(subset=["currency", "rate_date"], keep="last", maintain_order=True)
        .sort("currency", "rate_date")
    )


def rate_calendar(enrichment: Enrichment) -> pl.DataFrame:
    """(currency, transaction_date) -> `_calendar_rate` for every day from a currency's first rate to
    its latest: that day's rate or the latest earlier one, as `reference.fx.convert` picks it."""
    rates = _rates(enrichment)
    if rates.is_empty():
        return pl.DataFrame(
            schema={"currency": pl.String, "transaction_date": pl.Date, "_calendar_rate": _RATE}
        )
    days = (
        rates.group_by("currency")
        .agg(pl.date_ranges(pl.col("rate_date").min(), pl.col("rate_date").max(), "1d").first())
        .explode("rate_date")
        .rename({"rate_date": "transaction_date"})
        .sort("currency", "transaction_date")
    )
    return days.join_asof(
        rates.rename({"rate_date": "transaction_date", "rate_to_base": "_calendar_rate"}),
        on="transaction_date",
        by="currency",
        strategy="backward",
        check_sortedness=False,
    )


def _latest_rates(enrichment: Enrichment) -> pl.DataFrame:
    """currency -> its latest rate (`_latest_rate`) and that rate's date (`_latest_date`)."""
    return (
        _rates(enrichment)
        .group_by("currency")
        .agg(
            pl.col("rate_date").last().alias("_latest_date"),
            pl.col("rate_to_base").last().alias("_latest_rate"),
        )
    )


def with_fx_rate(rows: pl.LazyFrame, enrichment: Enrichment) -> pl.LazyFrame:
    """`rows` with `_fx_rate`: 1 for the base currency, else the rate of the transaction date or the
    latest earlier one (a day after a currency's latest rate takes that rate), null where none is
    usable. Two hash joins with small tables (a calendar of currencies x days, the latest rates): no
    pass over `rows` to find their dates first, so the rows stream through once."""
    after_latest = pl.col("transaction_date") > pl.col("_latest_date")
    return (
        rows.join(
            rate_calendar(enrichment).lazy(),
            on=["currency", "transaction_date"],
            how="left",
            maintain_order="left",
        )
        .join(_latest_rates(enrichment).lazy(), on="currency", how="left", maintain_order="left")
        .with_columns(
            pl.when(pl.col("currency") == enrichment.base_currency)
            .then(pl.lit(1, _RATE))
            .when(after_latest)
            .then(pl.col("_latest_rate"))
            .otherwise(pl.col("_calendar_rate"))
            .alias("_fx_rate")
        )
        .drop("_calendar_rate", "_latest_date", "_latest_rate")
    )


def _base_amount() -> pl.Expr:
    """net_amount x `_fx_rate`, exact, rounded once to cents (half to even)."""
    return (pl.col("net_amount").cast(_PRODUCT) * pl.col("_fx_rate").cast(_PRODUCT)).round(2).cast(AMOUNT)


def enrich_sellout(rows: pl.LazyFrame, enrichment: Enrichment) -> pl.LazyFrame:
    """Sell-out rows with `partner_id`, `sku`, `units_per_distributor_unit`, converted `quantity` and
    `unit_price`, and `net_amount_base`, from the staging values (`quantity` and `unit_price` as the
    distributor reported them, after the feed's own unit codes)."""
    columns = rows.collect_schema().names()
    keys = list(REPORTED_KEYS)
    with_partner = rows.join(
        _resolution_keys(enrichment.resolution), on=keys, how="left", nulls_equal=True, maintain_order="left"
    ).with_columns(pl.col("_partner").alias("partner_id"))
    mapped = map_skus(with_partner.drop("sku", UNITS, strict=False), enrichment.sku_map)
    assert isinstance(mapped, pl.LazyFrame)
    converted = with_fx_rate(mapped, enrichment).with_columns(_base_amount().alias("net_amount_base"))
    return converted.select(columns)


def enrich_inventory(rows: pl.LazyFrame, enrichment: Enrichment) -> pl.LazyFrame:
    """Inventory rows with `sku`, `units_per_distributor_unit` and quantities in vendor units."""
    columns = rows.collect_schema().names()
    units = pl.col("_units")
    joined = rows.drop("sku", UNITS, strict=False).join(
        _sku_table(enrichment), on=["distributor_id", "distributor_sku"], how="left", maintain_order="left"
    )
    return joined.with_columns(
        pl.col("_sku").alias("sku"),
        units.alias(UNITS),
        *[
            pl.when(units.is_null()).then(pl.col(name)).otherwise(pl.col(name) * units).alias(name)
            for name in ("quantity_on_hand", "quantity_on_order")
        ],
    ).select(columns)


def stale_sellout_rows(core: pl.LazyFrame, enrichment: Enrichment) -> pl.LazyFrame:
    """The core sell-out rows whose stored partner, SKU mapping or base amount differs from what the
    reference data gives now (`load_id` and `source_row` of each), read from core alone."""
    keys = list(REPORTED_KEYS)
    sku_table = _sku_table(enrichment)
    expected_base = _base_amount()
    checked = (
        core.join(_resolution_keys(enrichment.resolution), on=keys, how="left", nulls_equal=True)
        .join(sku_table, on=["distributor_id", "distributor_sku"], how="left")
        .pipe(with_fx_rate, enrichment)
    )
    differs = (
        pl.col("partner_id").ne_missing(pl.col("_partner"))
        | pl.col("sku").ne_missing(pl.col("_sku"))
        | pl.col(UNITS).ne_missing(pl.col("_units"))
        | pl.col("net_amount_base").ne_missing(expected_base)
    )
    return checked.filter(differs).select("load_id", "source_row")


def stale_inventory_rows(core: pl.LazyFrame, enrichment: Enrichment) -> pl.LazyFrame:
    """The core inventory rows whose SKU mapping differs from `sku_map` now."""
    sku_table = _sku_table(enrichment)
    checked = core.join(sku_table, on=["distributor_id", "distributor_sku"], how="left")
    differs = pl.col("sku").ne_missing(pl.col("_sku")) | pl.col(UNITS).ne_missing(pl.col("_units"))
    return checked.filter(differs).select("load_id", "source_row")
