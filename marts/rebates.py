"""`rebate_accruals`: one row per partner x rebate program (each program has one period): the
covered revenue so far, the rebate it has earned under the program's rule, and the covered
revenue in as many days before the program started.

Program rules are `reference.documents` models (`percent_above_threshold`, `growth_kicker`),
flattened into `ReferenceData.rebate_programs`. Money is exact: Decimal sums, rebates rounded half
to even to the cent.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import ROUND_HALF_EVEN, Decimal

import polars as pl

from marts.frames import NO_STRINGS, STRINGS, Frame, conform, empty, lazy
from marts.partners import with_tier_on_record
from schemas.tables import AMOUNT

CENT = Decimal("0.01")

SCHEMA: dict[str, pl.DataType] = {
    "partner_id": pl.String(),
    "program_id": pl.String(),
    "program_name": pl.String(),
    "period_start": pl.Date(),
    "period_end": pl.Date(),
    "revenue_through": pl.Date(),
    "days_counted": pl.Int64(),
    "is_final": pl.Boolean(),
    "rule_type": pl.String(),
    "tier": pl.String(),
    "eligible": pl.Boolean(),
    "revenue_qualifying": AMOUNT,
    "baseline": pl.String(),
    "baseline_revenue": AMOUNT,
    "growth_pct": pl.Float64(),
    "rebate_earned": AMOUNT,
    "revenue_before": AMOUNT,
    "revenue_after": AMOUNT,
}
"""The columns of `rebate_accruals`, in order, with their types."""


def build_rebate_accruals(
    sellout: Frame,
    *,
    partners: Frame,
    partners_history: Frame,
    rebate_programs: Frame,
    products: Frame,
    as_of: date,
) -> pl.DataFrame:
    """The `rebate_accruals` mart (columns: `SCHEMA`), sorted by program and partner.

    Rows: every partner of `partners` x every program that started on or before `as_of`. Revenue
    is matched sell-out (`net_amount_base`) of covered products (the program's `skus`, or products
    whose `family` is among its `families`) with transaction_date from period_start to
    `revenue_through` = min(period_end, as_of). Rules: docs/marts.md.
    """
    programs = _programs(rebate_programs, as_of)
    if not programs:
        return empty(SCHEMA)
    windows = pl.DataFrame(
        [
            {
                "program_id": p["program_id"],
                "_start": p["period_start"],
                "_through": p["revenue_through"],
                "_before_start": p["period_start"] - timedelta(days=p["days_counted"]),
                "_baseline_start": p["_baseline_start"],
                "_baseline_end": p["_baseline_end"],
            }
            for p in programs
        ],
        schema={
            "program_id": pl.String,
            "_start": pl.Date,
            "_through": pl.Date,
            "_before_start": pl.Date,
            "_baseline_start": pl.Date,
            "_baseline_end": pl.Date,
        },
    )
    revenue = _covered_revenue(sellout, products, rebate_programs, windows)
    ids = lazy(partners).select(pl.col("partner_id").cast(pl.String)).unique()
    program_frame = pl.DataFrame(
        [{k: v for k, v in p.items() if not k.startswith("_") and k in _PROGRAM_SCHEMA} for p in programs],
        schema=_PROGRAM_SCHEMA,
    )
    rows = (
        ids.join(program_frame.lazy(), how="cross")
        .join(revenue, on=["partner_id", "program_id"], how="left")
        .pipe(with_tier_on_record, partners_history, "revenue_through", "tier")
        .collect()
    )
    rules = {p["program_id"]: p for p in programs}
    accrued = [_accrue(row, rules[row["program_id"]]) for row in rows.iter_rows(named=True)]
    if not accrued:
        return empty(SCHEMA)
    frame = pl.DataFrame(accrued, schema={**rows.schema, **_ACCRUED_SCHEMA})
    return conform(frame.sort("program_id", "partner_id"), SCHEMA)


_PROGRAM_SCHEMA = {
    "program_id": pl.String(),
    "program_name": pl.String(),
    "period_start": pl.Date(),
    "period_end": pl.Date(),
    "revenue_through": pl.Date(),
    "days_counted": pl.Int64(),
    "is_final": pl.Boolean(),
    "rule_type": pl.String(),
    "baseline": pl.String(),
    "eligible_tiers": STRINGS,
}
_ACCRUED_SCHEMA = {
    name: SCHEMA[name]
    for name in (
        "eligible",
        "revenue_qualifying",
        "baseline_revenue",
        "growth_pct",
        "rebate_earned",
        "revenue_before",
        "revenue_after",
    )
}


def _programs(rebate_programs: Frame, as_of: date) -> list[dict]:
    """The programs started by `as_of`, each with its counted window and growth baseline window."""
    out = []
    for program in lazy(rebate_programs).collect().sort("program_id").iter_rows(named=True):
        start, end = program["period_start"], program["period_end"]
        if start > as_of:
            continue  # not started: nothing to accrue yet
        through = min(end, as_of)
        days = (through - start).days + 1
        rule = program["rule_type"]
        baseline = (program.get("baseline") or "previous_period") if rule == "growth_kicker" else None
        if baseline == "prior_year":
            baseline_window = (_year_earlier(start), _year_earlier(through))
        else:
            baseline_window = (start - timedelta(days=days), start - timedelta(days=1))
        out.append(
            {
                **program,
                "program_name": program.get("name"),
                "revenue_through": through,
                "days_counted": days,
                "is_final": end <= as_of,
                "baseline": baseline,
                "eligible_tiers": list(program.get("eligible_tiers") or []),
                "_baseline_start": baseline_window[0],
                "_baseline_end": baseline_window[1],
            }
        )
    return out


def _year_earlier(day: date) -> date:
    try:
        return day.replace(year=day.year - 1)
    except ValueError:  # 29 February
        return day.replace(year=day.year - 1, day=28)


def _covered_revenue(
    sellout: Frame, products: Frame, rebate_programs: Frame, windows: pl.DataFrame
) -> pl.LazyFrame:
    """Per partner and program: covered revenue in the counted window (`_qualifying`), in the same
    number of days before period_start (`_before`) and in the growth baseline window (`_baseline`)."""
    families = lazy(products).select(pl.col("sku").cast(pl.String), pl.col("family").cast(pl.String))
    coverage = (
        lazy(rebate_programs)
        .select(
            pl.col("program_id").cast(pl.String),
            pl.col("skus").cast(STRINGS).fill_null(NO_STRINGS),
            pl.col("families").cast(STRINGS).fill_null(NO_STRINGS),
        )
        .join(windows.lazy(), on="program_id")
    )
    lines = (
        lazy(sellout)
        .filter(pl.col("partner_id").is_not_null() & pl.col("sku").is_not_null())
        .select(
            pl.col("partner_id").cast(pl.String),
            pl.col("sku").cast(pl.String),
            "transaction_date",
            "net_amount_base",
        )
        .join(families, on="sku", how="left")
    )
    covered = pl.col("skus").list.contains(pl.col("sku")) | pl.col("families").list.contains(
        pl.col("family")
    ).fill_null(False)
    day, amount = pl.col("transaction_date"), pl.col("net_amount_base")

    def within(start: str, end: str) -> pl.Expr:
        return amount.filter(day.is_between(pl.col(start), pl.col(end))).sum().cast(AMOUNT)

    return (
        lines.join(coverage, how="cross")
        .filter(covered)
        .group_by("partner_id", "program_id")
        .agg(
            within("_start", "_through").alias("_qualifying"),
            amount.filter((day >= pl.col("_before_start")) & (day < pl.col("_start")))
            .sum()
            .cast(AMOUNT)
            .alias("_before"),
            within("_baseline_start", "_baseline_end").alias("_baseline"),
        )
    )


def _accrue(row: dict, program: dict) -> dict:
    """One accrual row: eligibility, the rebate under the program's rule, the growth figures."""
    revenue = row["_qualifying"] or Decimal(0)
    before = row["_before"] or Decimal(0)
    eligible = row["tier"] is not None and row["tier"] in program["eligible_tiers"]
    percent = Decimal(program["percent"])
    baseline_revenue = growth = None
    if program["rule_type"] == "growth_kicker":
        baseline_revenue = row["_baseline"] or Decimal(0)
        # No growth can be measured over a baseline of nothing: no kicker then.
        if baseline_revenue > 0:
            growth = float((revenue - baseline_revenue) / baseline_revenue * 100)
            grew = (revenue - baseline_revenue) * 100 >= Decimal(
                program["min_growth_percent"] or 0
            ) * baseline_revenue
        else:
            grew = False
        earned = percent * revenue / 100 if grew else Decimal(0)
    else:
        threshold = Decimal(program.get("threshold") or 0)
        earned = percent * max(Decimal(0), revenue - threshold) / 100
    return {
        **row,
        "eligible": eligible,
        "revenue_qualifying": revenue,
        "baseline_revenue": baseline_revenue,
        "growth_pct": growth,
        "rebate_earned": (earned if eligible else Decimal(0)).quantize(CENT, ROUND_HALF_EVEN),
        "revenue_before": before,
        "revenue_after": revenue,
    }
