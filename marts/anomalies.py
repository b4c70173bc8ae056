"""`partner_anomalies`: each partner's monthly revenue against its own trailing baseline (the mean
of its previous up-to-6 months with any sell-out), and whether the departure is large enough to
look at.

Rows are the same partner x month grid as `partner_performance` (`marts.partners.partner_months`).
"""

from __future__ import annotations

from decimal import Decimal

import polars as pl

from marts.frames import Frame, conform, empty
from marts.partners import partner_months
from schemas.tables import AMOUNT

DEFAULT_THRESHOLD_PCT = 50.0
BASELINE_MONTHS = 6
MIN_BASELINE_MONTHS = 3

SCHEMA: dict[str, pl.DataType] = {
    "partner_id": pl.String(),
    "month": pl.Date(),
    "revenue_base": AMOUNT,
    "lines": pl.Int64(),
    "baseline_months": pl.Int64(),
    "baseline_revenue": AMOUNT,
    "departure_pct": pl.Float64(),
    "is_anomaly": pl.Boolean(),
}
"""The columns of `partner_anomalies`, in order, with their types."""


def build_partner_anomalies(
    sellout: Frame,
    *,
    partners: Frame,
    threshold_pct: float = DEFAULT_THRESHOLD_PCT,
    baseline_months: int = BASELINE_MONTHS,
    min_baseline_months: int = MIN_BASELINE_MONTHS,
) -> pl.DataFrame:
    """The `partner_anomalies` mart (columns: `SCHEMA`), sorted by partner and month.

    The baseline of a month is the mean revenue of the partner's months with at least one matched
    line among the `baseline_months` before it; with fewer than `min_baseline_months` of them it is
    null. `is_anomaly` when |departure| >= `threshold_pct`, decided on exact decimals.
    """
    grid = partner_months(sellout, partners)
    if grid.is_empty():
        return empty(SCHEMA)
    months = grid.lazy()
    window = (
        months.select("partner_id", "month_index")
        .with_columns(
            pl.int_ranges(pl.col("month_index") - baseline_months, pl.col("month_index")).alias("_w")
        )
        .explode("_w")
    )
    active = months.filter(pl.col("lines") > 0).select(
        "partner_id", pl.col("month_index").alias("_w"), pl.col("revenue_base").alias("_revenue")
    )
    baselines = (
        window.join(active, on=["partner_id", "_w"])
        .group_by("partner_id", "month_index")
        .agg(pl.col("_revenue").sum().alias("_sum"), pl.len().cast(pl.Int64).alias("baseline_months"))
    )
    n, total, revenue = pl.col("baseline_months"), pl.col("_sum"), pl.col("revenue_base")
    enough = n >= min_baseline_months
    # With baseline = total / n: departure = (revenue * n - total) / |total|, exact up to the division.
    change = revenue * n - total
    threshold = pl.lit(Decimal(str(threshold_pct)), dtype=pl.Decimal(38, 6))
    frame = (
        months.join(baselines, on=["partner_id", "month_index"], how="left")
        .with_columns(n.fill_null(0))
        .with_columns(
            pl.when(enough).then(total / n).otherwise(None).alias("baseline_revenue"),
            pl.when(enough & (total != 0))
            .then(change.cast(pl.Float64) / total.abs().cast(pl.Float64) * 100)
            .otherwise(None)
            .alias("departure_pct"),
            (enough & (total != 0) & (change.abs() * 100 >= threshold * total.abs()))
            .fill_null(False)
            .alias("is_anomaly"),
        )
    )
    return conform(frame.sort("partner_id", "month"), SCHEMA)
