"""What each page shows: plain values built from frames, one partner at a time.

`partner_page` turns frames already filtered to one partner into a `PartnerPage` (and refuses a
frame holding any other partner's rows); `overview_page` ranks every partner for the vendor. The
templates receive only these dataclasses, never a frame. No HTML and no file writing here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

import polars as pl

from reports.charts import Chart, MonthValue, NamedValue, progress_chart, ranking_chart, revenue_chart

MONTHS_SHOWN = 12
"""The revenue chart and the top products cover the 12 calendar months ending with as_of's month."""
TOP_PRODUCTS = 10
EXPIRY_WARNING_DAYS = 90
"""A certification expiring within this many days is flagged."""


def _float(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return None if math.isnan(number) else number


def _money(value: Any) -> Decimal | None:
    """Amounts stay exact (Decimal) for display; floats from a mart are rounded to cents."""
    if value is None:
        return None
    if isinstance(value, Decimal):
        return value
    number = float(value)
    return None if math.isnan(number) else Decimal(str(round(number, 2)))


def month_start(day: date) -> date:
    return day.replace(day=1)


def add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def window_start(as_of: date) -> date:
    """First day of the trailing window: the 12 calendar months ending with as_of's month."""
    return add_months(month_start(as_of), -(MONTHS_SHOWN - 1))


def only_partner(frame: pl.DataFrame, partner_id: str, what: str) -> pl.DataFrame:
    """The frame itself, after proving every row is `partner_id`'s (the one-partner-per-page rule)."""
    if "partner_id" not in frame.columns:
        raise ValueError(f"{what} has no partner_id column")
    others = frame.filter(pl.col("partner_id").ne_missing(partner_id))
    if not others.is_empty():
        raise ValueError(f"{what} for partner {partner_id!r} holds rows of other partners")
    return frame


@dataclass(frozen=True)
class MonthRow:
    month: date
    revenue: Decimal | None
    units: int | None
    quota: Decimal | None
    attainment_pct: float | None


@dataclass(frozen=True)
class TierView:
    current: str | None
    """The tier the partner qualifies for at the latest month (the mart's `tier`)."""
    on_record: str | None
    """The tier in the partner's record (`tier_on_record`, else `partners.tier`)."""
    next_tier: str | None
    gap: Decimal | None
    threshold: Decimal | None
    revenue_t12m: Decimal | None
    certifications_missing: tuple[str, ...]
    chart: Chart


@dataclass(frozen=True)
class ProductRow:
    sku: str | None
    name: str
    family: str | None
    units: int
    revenue: Decimal
    share_pct: float | None


@dataclass(frozen=True)
class CertificationRow:
    certification: str
    earned_on: date | None
    expires_on: date | None
    days_left: int | None
    status: str
    """`expired`, `expiring` (within EXPIRY_WARNING_DAYS), `valid` or `no expiry`."""


@dataclass(frozen=True)
class RebateRow:
    program_id: str
    period_start: date | None
    period_end: date | None
    rule_type: str | None
    tier: str | None
    eligible: bool | None
    revenue_qualifying: Decimal | None
    rebate_earned: Decimal | None
    revenue_before: Decimal | None
    revenue_after: Decimal | None


@dataclass(frozen=True)
class PartnerPage:
    """Everything one partner's scorecard shows, and nothing of any other partner."""

    partner_id: str
    name: str
    country: str | None
    as_of: date
    base_currency: str
    window_start: date
    latest_month: date | None
    revenue_latest: Decimal | None
    revenue_mom_pct: float | None
    revenue_yoy_pct: float | None
    revenue_t12m: Decimal | None
    attainment_pct: float | None
    months_on_quota_t12m: int | None
    months_with_quota_t12m: int | None
    """Months of the trailing 12 with a quota (12 when the mart does not say)."""
    consistency_pct: float | None
    days_to_next_expiry: int | None
    months: tuple[MonthRow, ...]
    revenue_chart: Chart | None
    tier: TierView
    products: tuple[ProductRow, ...]
    products_chart: Chart | None
    certifications: tuple[CertificationRow, ...]
    rebates: tuple[RebateRow, ...]
    rebate_total: Decimal

    @property
    def charts(self) -> tuple[Chart, ...]:
        """The charts the page draws (the browser check expects this many drawn)."""
        found = (self.revenue_chart, self.tier.chart, self.products_chart)
        return tuple(chart for chart in found if chart is not None)


def _latest(performance: pl.DataFrame, as_of: date) -> dict[str, Any]:
    upto = performance.filter(pl.col("month") <= as_of).sort("month")
    return upto.row(-1, named=True) if not upto.is_empty() else {}


def _month_rows(performance: pl.DataFrame, as_of: date) -> list[MonthRow]:
    by_month = {row["month"]: row for row in performance.iter_rows(named=True)}
    rows = []
    for offset in range(MONTHS_SHOWN):
        month = add_months(window_start(as_of), offset)
        row = by_month.get(month, {})
        rows.append(
            MonthRow(
                month=month,
                revenue=_money(row.get("revenue_base")),
                units=row.get("units"),
                quota=_money(row.get("quota")),
                attainment_pct=_float(row.get("attainment_pct")),
            )
        )
    return rows


def _month_chart(rows: Sequence[MonthRow], currency: str) -> Chart | None:
    def title(row: MonthRow) -> str:
        parts = [f"{row.month:%B %Y}", f"revenue {_fmt(row.revenue)} {currency}"]
        if row.quota is not None:
            parts.append(f"quota {_fmt(row.quota)} {currency}")
        if row.attainment_pct is not None:
            parts.append(f"attainment {row.attainment_pct:.0f}%")
        return ", ".join(parts)

    return revenue_chart(
        [MonthValue(f"{row.month:%b %y}", _float(row.revenue), _float(row.quota), title(row)) for row in rows]
    )


def _fmt(value: Decimal | None) -> str:
    return "n/a" if value is None else f"{value:,.2f}"


def _tier(latest: dict[str, Any], tier_fallback: str | None, currency: str) -> TierView:
    revenue = _money(latest.get("revenue_t12m"))
    gap = _money(latest.get("gap_to_next_tier"))
    next_tier = latest.get("next_tier")
    threshold = revenue + gap if revenue is not None and gap is not None and next_tier else None
    on_record = latest.get("tier_on_record") or tier_fallback
    current = latest.get("tier") or on_record
    chart = progress_chart(
        _float(revenue) or 0.0,
        _float(threshold),
        f"{_fmt(revenue)} {currency} trailing 12 months",
        f"{next_tier}: {_fmt(threshold)} {currency}"
        if next_tier
        else f"{current or 'top'} tier: highest tier",
    )
    return TierView(
        current=current,
        on_record=on_record,
        next_tier=next_tier,
        gap=gap if next_tier else None,
        threshold=threshold,
        revenue_t12m=revenue,
        certifications_missing=tuple(latest.get("certifications_missing") or ()),
        chart=chart,
    )


def _products(sales: pl.DataFrame, products: pl.DataFrame) -> list[ProductRow]:
    """`sales` is this partner's sell-out summed per sku over the window (sku, units, revenue)."""
    if sales.is_empty():
        return []
    catalogue = products.select("sku", "name", "family").unique("sku", keep="first")
    ranked = (
        sales.join(catalogue, on="sku", how="left")
        .sort(["revenue", "sku"], descending=[True, False], nulls_last=True)
        .head(TOP_PRODUCTS)
    )
    total = _float(sales["revenue"].sum()) or 0.0
    rows = []
    for row in ranked.iter_rows(named=True):
        revenue = _money(row["revenue"]) or Decimal("0.00")
        name = row["name"] or ("Unmapped part numbers" if row["sku"] is None else row["sku"])
        rows.append(
            ProductRow(
                sku=row["sku"],
                name=name,
                family=row["family"],
                units=int(row["units"] or 0),
                revenue=revenue,
                share_pct=float(revenue) / total * 100 if total > 0 else None,
            )
        )
    return rows


def _products_chart(rows: Sequence[ProductRow], currency: str) -> Chart | None:
    return ranking_chart(
        [
            NamedValue(row.name, float(row.revenue), f"{row.name}: {_fmt(row.revenue)} {currency}")
            for row in rows
        ]
    )


def _certifications(certifications: pl.DataFrame, as_of: date) -> list[CertificationRow]:
    rows = []
    for row in certifications.sort("expires_on", "certification", nulls_last=True).iter_rows(named=True):
        expires = row.get("expires_on")
        days = (expires - as_of).days if expires is not None else None
        if days is None:
            status = "no expiry"
        elif days < 0:
            status = "expired"
        elif days <= EXPIRY_WARNING_DAYS:
            status = "expiring"
        else:
            status = "valid"
        rows.append(CertificationRow(row["certification"], row.get("earned_on"), expires, days, status))
    return rows


def _rebates(accruals: pl.DataFrame, as_of: date) -> list[RebateRow]:
    if "period_start" in accruals.columns:
        accruals = accruals.filter(pl.col("period_start").is_null() | (pl.col("period_start") <= as_of))
        accruals = accruals.sort(["period_start", "program_id"], descending=[True, False], nulls_last=True)
    return [
        RebateRow(
            program_id=row["program_id"],
            period_start=row.get("period_start"),
            period_end=row.get("period_end"),
            rule_type=row.get("rule_type"),
            tier=row.get("tier"),
            eligible=row.get("eligible"),
            revenue_qualifying=_money(row.get("revenue_qualifying")),
            rebate_earned=_money(row.get("rebate_earned")),
            revenue_before=_money(row.get("revenue_before")),
            revenue_after=_money(row.get("revenue_after")),
        )
        for row in accruals.iter_rows(named=True)
    ]


def partner_page(
    partner: dict[str, Any],
    *,
    performance: pl.DataFrame,
    accruals: pl.DataFrame,
    sales: pl.DataFrame,
    certifications: pl.DataFrame,
    products: pl.DataFrame,
    as_of: date,
    base_currency: str,
) -> PartnerPage:
    """One partner's page from frames filtered to that partner (`partner` is its `partners` row).

    `sales` holds the partner's sell-out summed per sku over the trailing window (columns
    partner_id, sku, units, revenue); `products` is the product catalogue, which names skus only.
    """
    partner_id = partner["partner_id"]
    performance = only_partner(performance, partner_id, "partner_performance")
    accruals = only_partner(accruals, partner_id, "rebate_accruals")
    sales = only_partner(sales, partner_id, "sellout")
    certifications = only_partner(certifications, partner_id, "certifications")

    latest = _latest(performance, as_of)
    months = _month_rows(performance, as_of)
    product_rows = _products(sales, products)
    rebates = _rebates(accruals, as_of)
    name = partner.get("legal_name") or latest.get("partner_name") or partner_id
    return PartnerPage(
        partner_id=partner_id,
        name=name,
        country=partner.get("country"),
        as_of=as_of,
        base_currency=base_currency,
        window_start=window_start(as_of),
        latest_month=latest.get("month"),
        revenue_latest=_money(latest.get("revenue_base")),
        revenue_mom_pct=_float(latest.get("revenue_mom_pct")),
        revenue_yoy_pct=_float(latest.get("revenue_yoy_pct")),
        revenue_t12m=_money(latest.get("revenue_t12m")),
        attainment_pct=_float(latest.get("attainment_pct")),
        months_on_quota_t12m=latest.get("months_on_quota_t12m"),
        months_with_quota_t12m=latest.get("months_with_quota_t12m", MONTHS_SHOWN if latest else None),
        consistency_pct=_float(latest.get("consistency_pct")),
        days_to_next_expiry=latest.get("days_to_next_expiry"),
        months=tuple(months),
        revenue_chart=_month_chart(months, base_currency),
        tier=_tier(latest, partner.get("tier"), base_currency),
        products=tuple(product_rows),
        products_chart=_products_chart(product_rows, base_currency),
        certifications=tuple(_certifications(certifications, as_of)),
        rebates=tuple(rebates),
        rebate_total=sum(
            (row.rebate_earned for row in rebates if row.eligible is not False and row.rebate_earned),
            Decimal("0.00"),
        ),
    )


@dataclass(frozen=True)
class OverviewRow:
    rank: int
    partner_id: str
    name: str
    country: str | None
    tier: str | None
    revenue_t12m: Decimal | None
    attainment_pct: float | None
    next_tier: str | None
    gap_to_next_tier: Decimal | None
    certifications_missing: int
    href: str


@dataclass(frozen=True)
class OverviewPage:
    """The vendor's page: every partner ranked by trailing 12-month revenue."""

    as_of: date
    base_currency: str
    rows: tuple[OverviewRow, ...]
    total_t12m: Decimal = field(default=Decimal("0.00"))


def overview_page(
    partners: pl.DataFrame,
    performance: pl.DataFrame,
    *,
    hrefs: dict[str, str],
    as_of: date,
    base_currency: str,
) -> OverviewPage:
    """Rank `partners` by their latest (at as_of) trailing revenue; partners with none come last."""
    latest = {
        row["partner_id"]: row
        for row in performance.filter(pl.col("month") <= as_of)
        .sort("month")
        .group_by("partner_id", maintain_order=True)
        .last()
        .iter_rows(named=True)
    }
    entries = []
    for partner in partners.iter_rows(named=True):
        row = latest.get(partner["partner_id"], {})
        next_tier = row.get("next_tier")
        entries.append(
            {
                "partner_id": partner["partner_id"],
                "name": partner.get("legal_name") or row.get("partner_name") or partner["partner_id"],
                "country": partner.get("country"),
                "tier": row.get("tier") or partner.get("tier"),
                "revenue_t12m": _money(row.get("revenue_t12m")),
                "attainment_pct": _float(row.get("attainment_pct")),
                "next_tier": next_tier,
                "gap_to_next_tier": _money(row.get("gap_to_next_tier")) if next_tier else None,
                "certifications_missing": len(row.get("certifications_missing") or ()),
                "href": hrefs[partner["partner_id"]],
            }
        )
    entries.sort(key=lambda e: (e["revenue_t12m"] is None, -(e["revenue_t12m"] or 0), e["partner_id"]))
    rows = tuple(OverviewRow(rank=index + 1, **entry) for index, entry in enumerate(entries))
    total = sum((row.revenue_t12m for row in rows if row.revenue_t12m is not None), Decimal("0.00"))
    return OverviewPage(as_of=as_of, base_currency=base_currency, rows=rows, total_t12m=total)
