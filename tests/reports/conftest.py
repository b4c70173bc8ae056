"""Small mart-shaped frames of two partners (and a hostile third) for the scorecard and export tests.

Every value of one partner (ids, names, resellers, skus, amounts, certifications, programs) is
distinct from the other's, so a test can prove one partner's page holds nothing of the other.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

import polars as pl
import pytest

from schemas.tables import SELLOUT_COLUMNS

AS_OF = date(2026, 6, 15)
AMOUNT = pl.Decimal(18, 2)

PERFORMANCE_SCHEMA: dict[str, pl.DataType] = {
    "partner_id": pl.String(),
    "partner_name": pl.String(),
    "month": pl.Date(),
    "revenue_base": AMOUNT,
    "units": pl.Int64(),
    "lines": pl.Int64(),
    "revenue_mom_pct": pl.Float64(),
    "revenue_yoy_pct": pl.Float64(),
    "revenue_t12m": AMOUNT,
    "quota": AMOUNT,
    "attainment_pct": pl.Float64(),
    "tier": pl.String(),
    "next_tier": pl.String(),
    "gap_to_next_tier": AMOUNT,
    "certifications_missing": pl.List(pl.String()),
    "next_certification_expiry": pl.Date(),
    "days_to_next_expiry": pl.Int64(),
    "months_on_quota_t12m": pl.Int64(),
    "consistency_pct": pl.Float64(),
}
ACCRUAL_SCHEMA: dict[str, pl.DataType] = {
    "partner_id": pl.String(),
    "program_id": pl.String(),
    "period_start": pl.Date(),
    "period_end": pl.Date(),
    "rule_type": pl.String(),
    "tier": pl.String(),
    "eligible": pl.Boolean(),
    "revenue_qualifying": AMOUNT,
    "rebate_earned": AMOUNT,
    "revenue_before": AMOUNT,
    "revenue_after": AMOUNT,
}


@dataclass(frozen=True)
class PartnerFacts:
    """What identifies one partner's data in a page: none of it may appear in another's."""

    partner_id: str
    name: str
    reseller_name: str
    sku: str
    product_name: str
    certification: str
    program_id: str
    amounts: tuple[str, ...]
    """Amounts as a page prints them (thousands separators, cents)."""


ALPHA = PartnerFacts(
    partner_id="P0001",
    name="Alpha Systems GmbH",
    reseller_name="ALPHA SYSTEMS MUENCHEN",
    sku="SKU-ALPHA-1",
    product_name="Aurora Switch 24",
    certification="Alpha Network Associate",
    program_id="REB-ALPHA",
    amounts=("11,111.11", "133,333.32", "1,234.56"),
)
BRAVO = PartnerFacts(
    partner_id="P0002",
    name="Bravo Networks Ltd",
    reseller_name="BRAVO NETWORKS LONDON",
    sku="SKU-BRAVO-9",
    product_name="Borealis Router 9000",
    certification="Bravo Security Expert",
    program_id="REB-BRAVO",
    amounts=("77,777.77", "933,333.24", "8,642.97"),
)


def _months(last: date, count: int) -> list[date]:
    index = last.year * 12 + last.month - 1
    return [date((index - k) // 12, (index - k) % 12 + 1, 1) for k in reversed(range(count))]


def performance_rows(
    partner: PartnerFacts, revenue: str, quota: str, t12m: str, gap: str | None
) -> list[dict[str, Any]]:
    rows = []
    for month in _months(date(2026, 6, 1), 14):
        rows.append(
            {
                "partner_id": partner.partner_id,
                "partner_name": partner.name,
                "month": month,
                "revenue_base": Decimal(revenue),
                "units": 40,
                "lines": 8,
                "revenue_mom_pct": 0.0,
                "revenue_yoy_pct": 12.5,
                "revenue_t12m": Decimal(t12m),
                "quota": Decimal(quota),
                "attainment_pct": float(Decimal(revenue) / Decimal(quota) * 100),
                "tier": "Silver",
                "next_tier": "Gold" if gap else None,
                "gap_to_next_tier": Decimal(gap) if gap else None,
                "certifications_missing": [partner.certification + " Pro"] if gap else [],
                "next_certification_expiry": date(2026, 7, 30),
                "days_to_next_expiry": 45,
                "months_on_quota_t12m": 7,
                "consistency_pct": 58.3,
            }
        )
    return rows


def sellout_rows(partner: PartnerFacts, amount: str, other_sku: str) -> list[dict[str, Any]]:
    base = dict.fromkeys(SELLOUT_COLUMNS)
    rows = []
    for index, (sku, quantity, net) in enumerate(
        [
            (partner.sku, 10, Decimal(amount)),
            (other_sku, 3, Decimal("99.00")),
            (partner.sku, -1, Decimal("-5.00")),
        ]
    ):
        rows.append(
            base
            | {
                "line_id": f"{partner.partner_id}-{index}",
                "distributor_id": "northwind_us",
                "feed_id": "northwind_us",
                "period_start": date(2026, 5, 1),
                "transaction_date": date(2026, 5, 10 + index),
                "invoice_number": f"INV-{partner.partner_id}-{index}",
                "invoice_line": index + 1,
                "transaction_type": "sale" if quantity > 0 else "return",
                "partner_id": partner.partner_id,
                "reseller_name": partner.reseller_name,
                "reseller_country": "DE",
                "sku": sku,
                "distributor_sku": f"D-{sku}",
                "quantity": quantity,
                "unit_price": net / quantity,
                "currency": "USD",
                "net_amount": net,
                "net_amount_base": net,
                "source_file": "landing/x.csv",
                "source_row": index + 1,
                "load_id": "load-1",
            }
        )
    return rows


@dataclass(frozen=True)
class Marts:
    partners: pl.DataFrame
    partner_performance: pl.DataFrame
    rebate_accruals: pl.DataFrame
    sellout: pl.DataFrame
    products: pl.DataFrame
    certifications: pl.DataFrame

    def inputs(self) -> dict[str, pl.DataFrame]:
        return {
            "partners": self.partners,
            "partner_performance": self.partner_performance,
            "rebate_accruals": self.rebate_accruals,
            "sellout": self.sellout,
            "products": self.products,
            "certifications": self.certifications,
        }


def make_marts(alpha_name: str = ALPHA.name) -> Marts:
    partners = pl.DataFrame(
        {
            "partner_id": [ALPHA.partner_id, BRAVO.partner_id],
            "legal_name": [alpha_name, BRAVO.name],
            "country": ["DE", "GB"],
            "tier": ["Silver", "Silver"],
        }
    )
    performance = pl.DataFrame(
        performance_rows(ALPHA, "11111.11", "10000.00", "133333.32", "66666.68")
        + performance_rows(BRAVO, "77777.77", "90000.00", "933333.24", None),
        schema=PERFORMANCE_SCHEMA,
    )
    accruals = pl.DataFrame(
        [
            {
                "partner_id": p.partner_id,
                "program_id": p.program_id,
                "period_start": date(2026, 1, 1),
                "period_end": date(2026, 3, 31),
                "rule_type": "percent_above_threshold",
                "tier": "Silver",
                "eligible": True,
                "revenue_qualifying": Decimal(qualifying),
                "rebate_earned": Decimal(earned),
                "revenue_before": Decimal("1000.00"),
                "revenue_after": Decimal("2000.00"),
            }
            for p, qualifying, earned in ((ALPHA, "24691.20", "1234.56"), (BRAVO, "172859.40", "8642.97"))
        ],
        schema=ACCRUAL_SCHEMA,
    )
    shared_sku = "SKU-COMMON-5"
    sellout = pl.DataFrame(
        sellout_rows(ALPHA, "5555.55", shared_sku) + sellout_rows(BRAVO, "44444.44", shared_sku),
        schema=SELLOUT_COLUMNS,
    )
    products = pl.DataFrame(
        {
            "sku": [ALPHA.sku, BRAVO.sku, shared_sku, "SKU-UNSOLD"],
            "name": [ALPHA.product_name, BRAVO.product_name, "Common Cable Kit", "Never Sold Widget"],
            "family": ["Switching", "Routing", "Accessories", "Accessories"],
            "list_price": [Decimal("100.0000")] * 4,
            "currency": ["USD"] * 4,
        },
        schema_overrides={"list_price": pl.Decimal(18, 4)},
    )
    certifications = pl.DataFrame(
        {
            "partner_id": [ALPHA.partner_id, ALPHA.partner_id, BRAVO.partner_id],
            "certification": [ALPHA.certification, "Alpha Legacy Cert", BRAVO.certification],
            "earned_on": [date(2024, 7, 30), date(2023, 1, 1), date(2025, 1, 1)],
            "expires_on": [date(2026, 7, 30), date(2026, 1, 1), date(2027, 12, 31)],
        }
    )
    return Marts(partners, performance, accruals, sellout, products, certifications)


@pytest.fixture
def marts() -> Marts:
    return make_marts()
