"""`partner_performance`: one row per partner x month with revenue, growth, quota attainment, the
tier the partner qualifies for, the next tier and what it lacks, certification expiry and
consistency.

The tier here is computed from the rules (`tiers`: trailing-12-month revenue and certifications
held unexpired at the month's end); the tier on record in `partners_history` is shown beside it.
"""

from __future__ import annotations

from datetime import date

import polars as pl

from marts.frames import (
    NO_STRINGS,
    STRINGS,
    ZERO,
    Frame,
    conform,
    date_lit,
    empty,
    lazy,
    pct_change,
    ratio_pct,
)
from marts.partners import partner_months, with_tier_on_record
from schemas.tables import AMOUNT

TRAILING_MONTHS = 12

SCHEMA: dict[str, pl.DataType] = {
    "partner_id": pl.String(),
    "partner_name": pl.String(),
    "month": pl.Date(),
    "revenue_base": AMOUNT,
    "units": pl.Int64(),
    "lines": pl.Int64(),
    "lines_without_base_amount": pl.Int64(),
    "revenue_mom_pct": pl.Float64(),
    "revenue_yoy_pct": pl.Float64(),
    "revenue_t12m": AMOUNT,
    "quota": AMOUNT,
    "attainment_pct": pl.Float64(),
    "tier": pl.String(),
    "tier_on_record": pl.String(),
    "next_tier": pl.String(),
    "gap_to_next_tier": AMOUNT,
    "certifications_held": STRINGS,
    "certifications_missing": STRINGS,
    "next_certification_expiry": pl.Date(),
    "next_expiring_certification": pl.String(),
    "days_to_next_expiry": pl.Int64(),
    "months_on_quota_t12m": pl.Int64(),
    "months_with_quota_t12m": pl.Int64(),
    "consistency_pct": pl.Float64(),
}
"""The columns of `partner_performance`, in order, with their types."""


def build_partner_performance(
    sellout: Frame,
    *,
    partners: Frame,
    quotas: Frame,
    tiers: Frame,
    certifications: Frame,
    as_of: date,
    partners_history: Frame | None = None,
) -> pl.DataFrame:
    """The `partner_performance` mart (columns: `SCHEMA`), sorted by partner and month.

    `sellout`: core sell-out (partner_id, transaction_date, quantity, net_amount_base); `partners`
    (partner_id, legal_name); `quotas` (partner_id, period_start, target_base); `tiers` (tier,
    min_revenue_t12m, certifications, rank); `certifications` (partner_id, certification,
    earned_on, expires_on); `partners_history` (partner_id, tier, valid_from, valid_to), `partners`
    when not given. Rules: docs/marts.md.
    """
    grid = partner_months(sellout, partners)
    if grid.is_empty():
        return empty(SCHEMA)
    base = (
        grid.lazy()
        .join(_names(partners), on="partner_id", how="left")
        .join(_quotas(quotas), on=["partner_id", "month"], how="left")
        .with_columns(
            pl.col("month").dt.month_end().alias("_month_end"),
            (pl.col("quota") > 0).fill_null(False).alias("_has_quota"),
            ((pl.col("quota") > 0) & (pl.col("revenue_base") >= pl.col("quota")))
            .fill_null(False)
            .alias("_on_quota"),
        )
    )
    frame = (
        base.join(_shifted(grid, 1, "_mom_base"), on=["partner_id", "month_index"], how="left")
        .join(_shifted(grid, 12, "_yoy_base"), on=["partner_id", "month_index"], how="left")
        .join(_trailing(base), on=["partner_id", "month_index"], how="left")
        .join(_held(base, certifications), on=["partner_id", "month_index"], how="left")
        .with_columns(
            pct_change(pl.col("revenue_base"), pl.col("_mom_base")).alias("revenue_mom_pct"),
            pct_change(pl.col("revenue_base"), pl.col("_yoy_base")).alias("revenue_yoy_pct"),
            ratio_pct(pl.col("revenue_base"), pl.col("quota")).alias("attainment_pct"),
            ratio_pct(pl.col("months_on_quota_t12m"), pl.col("months_with_quota_t12m")).alias(
                "consistency_pct"
            ),
            pl.col("certifications_held").fill_null(NO_STRINGS),
            pl.min_horizontal(pl.col("_month_end"), date_lit(as_of)).alias("_expiry_day"),
        )
    )
    frame = _with_tiers(frame, tiers)
    frame = _with_next_expiry(frame, certifications)
    frame = with_tier_on_record(
        frame, partners if partners_history is None else partners_history, "_month_end", "tier_on_record"
    )
    return conform(frame.sort("partner_id", "month"), SCHEMA)


def _names(partners: Frame) -> pl.LazyFrame:
    return (
        lazy(partners)
        .select(
            pl.col("partner_id").cast(pl.String), pl.col("legal_name").cast(pl.String).alias("partner_name")
        )
        .unique("partner_id", keep="last", maintain_order=True)
    )


def _quotas(quotas: Frame) -> pl.LazyFrame:
    """One quota per partner and month (several rows for one month add up)."""
    return (
        lazy(quotas)
        .group_by(
            pl.col("partner_id").cast(pl.String), pl.col("period_start").dt.truncate("1mo").alias("month")
        )
        .agg(pl.col("target_base").sum().cast(AMOUNT).alias("quota"))
    )


def _shifted(grid: pl.DataFrame, months: int, alias: str) -> pl.LazyFrame:
    """Each grid row's revenue, keyed by the month `months` later: the base of that month's growth."""
    return grid.lazy().select(
        "partner_id",
        (pl.col("month_index") + months).alias("month_index"),
        pl.col("revenue_base").alias(alias),
    )


def _trailing(base: pl.LazyFrame) -> pl.LazyFrame:
    """Per partner and month, over the trailing 12 months of the grid (this one included): the
    revenue, the months on quota and the months with a quota. Months before the grid's first
    month hold no data and do not count."""
    window = (
        base.select("partner_id", "month_index")
        .with_columns(
            pl.int_ranges(pl.col("month_index") - (TRAILING_MONTHS - 1), pl.col("month_index") + 1).alias(
                "_w"
            )
        )
        .explode("_w")
    )
    values = base.select(
        "partner_id", pl.col("month_index").alias("_w"), "revenue_base", "_has_quota", "_on_quota"
    )
    return (
        window.join(values, on=["partner_id", "_w"])
        .group_by("partner_id", "month_index")
        .agg(
            pl.col("revenue_base").sum().cast(AMOUNT).alias("revenue_t12m"),
            pl.col("_on_quota").sum().cast(pl.Int64).alias("months_on_quota_t12m"),
            pl.col("_has_quota").sum().cast(pl.Int64).alias("months_with_quota_t12m"),
        )
    )


def _certifications(certifications: Frame) -> pl.LazyFrame:
    return lazy(certifications).select(
        pl.col("partner_id").cast(pl.String),
        pl.col("certification").cast(pl.String),
        pl.col("earned_on").cast(pl.Date),
        pl.col("expires_on").cast(pl.Date),
    )


def _held(base: pl.LazyFrame, certifications: Frame) -> pl.LazyFrame:
    """The certifications each partner holds at each month's end: earned_on <= month end <
    expires_on (a null expires_on never expires), as a sorted list."""
    held = pl.col("earned_on") <= pl.col("_month_end")
    unexpired = pl.col("expires_on").is_null() | (pl.col("_month_end") < pl.col("expires_on"))
    return (
        base.select("partner_id", "month_index", "_month_end")
        .join(_certifications(certifications), on="partner_id")
        .filter(held & unexpired)
        .group_by("partner_id", "month_index")
        .agg(pl.col("certification").unique().sort().alias("certifications_held"))
    )


def _with_tiers(frame: pl.LazyFrame, tiers: Frame) -> pl.LazyFrame:
    """Adds `tier` (the highest rank qualified for), `next_tier` (one rank above it; the lowest
    tier when none qualifies), `gap_to_next_tier` and `certifications_missing`."""
    ranked = lazy(tiers).select(
        pl.col("tier").cast(pl.String),
        pl.col("min_revenue_t12m").cast(AMOUNT).alias("_min"),
        pl.col("certifications").cast(STRINGS).fill_null(NO_STRINGS).alias("_required"),
        pl.col("rank").cast(pl.Int64).alias("_rank"),
    )
    lacks = pl.col("_required").list.set_difference(pl.col("certifications_held"))
    qualified = (
        frame.select("partner_id", "month_index", "revenue_t12m", "certifications_held")
        .join(ranked, how="cross")
        .filter((pl.col("_min") <= pl.col("revenue_t12m")) & (lacks.list.len() == 0))
        .group_by("partner_id", "month_index")
        .agg(pl.col("_rank").max().alias("_tier_rank"))
    )
    current = ranked.select(pl.col("_rank").alias("_tier_rank"), "tier")
    following = ranked.select(
        pl.col("_rank").alias("_next_rank"),
        pl.col("tier").alias("next_tier"),
        pl.col("_min").alias("_next_min"),
        pl.col("_required").alias("_next_required"),
    )
    gap = pl.col("_next_min") - pl.col("revenue_t12m")
    missing = pl.col("_next_required").list.set_difference(pl.col("certifications_held")).list.sort()
    return (
        frame.join(qualified, on=["partner_id", "month_index"], how="left")
        .with_columns(pl.coalesce(pl.col("_tier_rank") + 1, pl.lit(1, dtype=pl.Int64)).alias("_next_rank"))
        .join(current, on="_tier_rank", how="left")
        .join(following, on="_next_rank", how="left")
        .with_columns(
            pl.when(pl.col("next_tier").is_null())
            .then(None)
            .when(gap > 0)
            .then(gap)
            .otherwise(ZERO)
            .cast(AMOUNT)
            .alias("gap_to_next_tier"),
            pl.when(pl.col("next_tier").is_null())
            .then(NO_STRINGS)
            .otherwise(missing)
            .alias("certifications_missing"),
        )
    )


def _with_next_expiry(frame: pl.LazyFrame, certifications: Frame) -> pl.LazyFrame:
    """Adds the earliest `expires_on` on or after the reference day (min(month end, as_of)) among the
    certifications the partner earned by that day, its name, and the days until it."""
    day = pl.col("_expiry_day")
    upcoming = (
        frame.select("partner_id", "month_index", "_expiry_day")
        .join(_certifications(certifications), on="partner_id")
        .filter((pl.col("earned_on") <= day) & (pl.col("expires_on") >= day))
        .group_by("partner_id", "month_index")
        .agg(
            pl.col("expires_on").min().alias("next_certification_expiry"),
            pl.col("certification")
            .sort_by("expires_on", "certification")
            .first()
            .alias("next_expiring_certification"),
        )
    )
    return frame.join(upcoming, on=["partner_id", "month_index"], how="left").with_columns(
        (pl.col("next_certification_expiry") - day)
        .dt.total_days()
        .cast(pl.Int64)
        .alias("days_to_next_expiry")
    )
