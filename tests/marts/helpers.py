"""Small builders of the frames the marts read, for hand-made cases: any subset of a table's
columns, the rest null, in the table's exact schema."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import polars as pl

from schemas.tables import INVENTORY_COLUMNS, LOADS_COLUMNS, SELLOUT_COLUMNS

AMOUNT = pl.Decimal(18, 2)


def frame(rows: list[dict[str, Any]], schema: dict[str, pl.DataType]) -> pl.DataFrame:
    """`rows` (any subset of the columns) as a frame of the full schema, other cells null."""
    return pl.DataFrame(
        [{name: row.get(name) for name in schema} for row in rows], schema=schema, orient="row"
    )


def monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def sale(partner_id: str | None, day: date, amount: str, *, quantity: int = 1, sku: str | None = "AX-1000",
         distributor_id: str = "dist", distributor_sku: str = "D-1") -> dict[str, Any]:  # fmt: skip
    """One sell-out line in the base currency."""
    return {
        "line_id": f"{partner_id}-{day}-{amount}-{sku}-{quantity}",
        "distributor_id": distributor_id,
        "feed_id": distributor_id,
        "period_start": monday(day),
        "transaction_date": day,
        "transaction_type": "sale" if quantity >= 0 else "return",
        "partner_id": partner_id,
        "sku": sku,
        "distributor_sku": distributor_sku,
        "quantity": quantity,
        "currency": "USD",
        "net_amount": Decimal(amount),
        "net_amount_base": Decimal(amount),
    }


def sellout(*lines: dict[str, Any]) -> pl.DataFrame:
    return frame(list(lines), SELLOUT_COLUMNS)


def inventory(*rows: dict[str, Any]) -> pl.DataFrame:
    return frame(list(rows), INVENTORY_COLUMNS)


def load(feed_id: str, period: date, received: datetime | date, *, status: str = "loaded", rows_read: int = 10,
         rows_quarantined: int = 0, dataset: str = "sellout", distributor_id: str | None = None) -> dict[str, Any]:  # fmt: skip
    """One row of `loads`; a date for `received` means 08:00 UTC that day."""
    at = (
        received
        if isinstance(received, datetime)
        else datetime(received.year, received.month, received.day, 8, tzinfo=UTC)
    )
    return {
        "load_id": f"{feed_id}-{period}-{at:%Y%m%d%H%M%S}-{status}",
        "distributor_id": distributor_id or feed_id,
        "feed_id": feed_id,
        "dataset": dataset,
        "period_start": period,
        "rows_read": rows_read,
        "rows_loaded": rows_read - rows_quarantined,
        "rows_quarantined": rows_quarantined,
        "status": status,
        "received_at": at,
    }


def loads(*rows: dict[str, Any]) -> pl.DataFrame:
    return frame(list(rows), LOADS_COLUMNS)


def distributors(**cadences: str) -> pl.DataFrame:
    """distributor_id -> cadence, as the `distributors` table holds them."""
    return pl.DataFrame(
        {
            "distributor_id": list(cadences),
            "name": list(cadences),
            "country": ["US"] * len(cadences),
            "currency": ["USD"] * len(cadences),
            "cadence": list(cadences.values()),
            "feeds": [[name] for name in cadences],
            "datasets": [["sellout"] for _ in cadences],
        }
    )


def partners(*ids: str, tiers: dict[str, str] | None = None) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "partner_id": list(ids),
            "legal_name": [f"Partner {pid}" for pid in ids],
            "tier": [(tiers or {}).get(pid) for pid in ids],
            "valid_from": [None] * len(ids),
            "valid_to": [None] * len(ids),
        },
        schema={"partner_id": pl.String, "legal_name": pl.String, "tier": pl.String, "valid_from": pl.Date,
                "valid_to": pl.Date},
    )  # fmt: skip


def tiers(*levels: tuple[str, str, list[str]]) -> pl.DataFrame:
    """(tier, min_revenue_t12m, certifications), lowest first, with `rank` as ReferenceData has it."""
    return pl.DataFrame(
        {
            "tier": [level[0] for level in levels],
            "min_revenue_t12m": [Decimal(level[1]) for level in levels],
            "certifications": [level[2] for level in levels],
            "rank": list(range(1, len(levels) + 1)),
        },
        schema={
            "tier": pl.String,
            "min_revenue_t12m": AMOUNT,
            "certifications": pl.List(pl.String),
            "rank": pl.Int32,
        },
    )


def certifications(*rows: tuple[str, str, date, date | None]) -> pl.DataFrame:
    return pl.DataFrame(
        [list(row) for row in rows],
        schema={
            "partner_id": pl.String,
            "certification": pl.String,
            "earned_on": pl.Date,
            "expires_on": pl.Date,
        },
        orient="row",
    )


def quotas(*rows: tuple[str, date, str]) -> pl.DataFrame:
    return pl.DataFrame(
        [[pid, f"{month:%Y-%m}", Decimal(target), month] for pid, month, target in rows],
        schema={"partner_id": pl.String, "period": pl.String, "target_base": AMOUNT, "period_start": pl.Date},
        orient="row",
    )
