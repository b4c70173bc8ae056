"""Hand-made cases of `distributor_data_quality`, `inventory_health` and `rebate_accruals`, and of
every mart over empty inputs."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import polars as pl
import pytest

from marts import (
    SCHEMAS,
    MartInputs,
    build_distributor_data_quality,
    build_inventory_health,
    build_marts,
    build_rebate_accruals,
)
from schemas.tables import INVENTORY_COLUMNS, LOADS_COLUMNS, SELLOUT_COLUMNS
from tests.marts.helpers import (
    AMOUNT,
    certifications,
    distributors,
    inventory,
    load,
    loads,
    partners,
    quotas,
    sale,
    sellout,
    tiers,
)

NO_LINES = sellout()
NO_STOCK = inventory()

# --------------------------------------------------------------------------------------------------
# distributor_data_quality


def quality(load_rows: list[dict], as_of: date, *, lines: pl.DataFrame = NO_LINES, grace_days: int = 3,
            **cadences: str) -> dict[tuple[str, date], dict]:  # fmt: skip
    mart = build_distributor_data_quality(
        loads(*load_rows), distributors=distributors(**cadences), sellout=lines, inventory=NO_STOCK,
        as_of=as_of, grace_days=grace_days,
    )  # fmt: skip
    return {(row["distributor_id"], row["period_start"]): row for row in mart.iter_rows(named=True)}


def test_a_report_received_after_its_due_day_is_late() -> None:
    # Weeks from Monday 5 Jan 2026; week 1 ends Sunday 11 Jan and is due Wednesday 14 Jan.
    rows = quality(
        [
            load("w", date(2026, 1, 5), datetime(2026, 1, 14, 23, 59, tzinfo=UTC)),
            load("w", date(2026, 1, 12), date(2026, 1, 22)),
        ],
        date(2026, 1, 31),
        w="weekly",
    )
    assert [(p, r["period_end"], r["due_on"], r["status"], r["days_late"]) for (_, p), r in rows.items()] == [
        (date(2026, 1, 5), date(2026, 1, 11), date(2026, 1, 14), "received", 0),
        (date(2026, 1, 12), date(2026, 1, 18), date(2026, 1, 21), "late", 1),
        (date(2026, 1, 19), date(2026, 1, 25), date(2026, 1, 28), "missing", 3),
    ]  # the week of 26 Jan is due on 4 Feb: not expected yet


def test_grace_days_move_the_due_day() -> None:
    rows = quality(
        [load("w", date(2026, 1, 5), date(2026, 1, 15))], date(2026, 1, 15), grace_days=4, w="weekly"
    )
    assert [(r["due_on"], r["status"]) for r in rows.values()] == [(date(2026, 1, 15), "received")]
    with pytest.raises(ValueError, match="grace_days"):
        quality([], date(2026, 1, 15), grace_days=-1, w="weekly")


def test_only_delivering_files_count_and_the_report_in_effect_gives_the_rows() -> None:
    week = date(2026, 1, 5)
    rows = quality(
        [
            load("w", week, date(2026, 1, 12), status="rejected", rows_read=0),
            load("w", week, date(2026, 1, 16), status="superseded", rows_read=50, rows_quarantined=5),
            load("w", week, date(2026, 1, 17), status="duplicate", rows_read=0),
            load("w", week, date(2026, 1, 18), rows_read=40, rows_quarantined=1),
            load("w", week, date(2026, 1, 19), status="held", rows_read=2),
            load("w", date(2026, 1, 12), date(2026, 1, 19), status="rejected", rows_read=0),
        ],
        date(2026, 1, 22),
        w="weekly",
    )
    first, second = rows[("w", week)], rows[("w", date(2026, 1, 12))]
    assert (first["status"], first["days_late"], first["received_at"]) == (
        "late",
        2,
        datetime(2026, 1, 16, 8, tzinfo=UTC),
    )
    assert (first["files"], first["rejected_files"], first["held_files"]) == (3, 1, 1)
    assert (
        first["rows_read"],
        first["rows_loaded"],
        first["rows_quarantined"],
        first["quarantined_pct"],
    ) == (40, 39, 1, 2.5)
    assert (second["status"], second["files"], second["rejected_files"], second["rows_read"]) == (
        "missing",
        0,
        1,
        0,
    )
    assert second["quarantined_pct"] is None


def test_monthly_and_daily_cadences() -> None:
    rows = quality(
        [
            load("m", date(2026, 1, 1), date(2026, 2, 2)),
            load("d", date(2026, 3, 1), date(2026, 3, 1)),
            load("d", date(2026, 3, 3), date(2026, 3, 4)),
        ],
        date(2026, 3, 4),
        grace_days=0,
        m="monthly",
        d="daily",
    )
    assert [(p, r["period_end"], r["status"]) for (feed, p), r in rows.items() if feed == "m"] == [
        (date(2026, 1, 1), date(2026, 1, 31), "late"),
        (date(2026, 2, 1), date(2026, 2, 28), "missing"),
    ]
    assert [(p, r["status"], r["days_late"]) for (feed, p), r in rows.items() if feed == "d"] == [
        (date(2026, 3, 1), "received", 0),
        (date(2026, 3, 2), "missing", 2),
        (date(2026, 3, 3), "late", 1),
        (date(2026, 3, 4), "missing", 0),  # due on as_of itself, nothing received yet
    ]


def test_a_report_received_before_it_is_due_is_listed_and_feeds_without_periods_are_not() -> None:
    rows = quality(
        [
            load("w", date(2026, 1, 5), date(2026, 1, 12)),
            load("w", date(2026, 1, 12), date(2026, 1, 19)),  # due 21 Jan, after as_of
            {**load("w", date(2026, 1, 5), date(2026, 1, 12)), "period_start": None, "load_id": "no-period"},
            load("unknown", date(2026, 1, 5), date(2026, 1, 12)),  # no distributor cadence
        ],
        date(2026, 1, 19),
        w="weekly",
    )
    assert [(key, r["status"]) for key, r in rows.items()] == [
        (("w", date(2026, 1, 5)), "received"),
        (("w", date(2026, 1, 12)), "received"),
    ]


def test_unmatched_resellers_and_unmapped_skus_per_period() -> None:
    week = date(2026, 1, 5)
    lines = sellout(
        sale(None, date(2026, 1, 6), "1.00", distributor_id="w"),
        sale(None, date(2026, 1, 7), "1.00", sku=None, distributor_id="w"),
        sale("A", date(2026, 1, 7), "1.00", sku=None, distributor_id="w"),
        sale("A", date(2026, 1, 8), "1.00", distributor_id="w"),
    )
    stock = inventory(
        {
            "distributor_id": "w",
            "feed_id": "w_stock",
            "period_start": week,
            "sku": None,
            "distributor_sku": "X",
        }
    )
    mart = build_distributor_data_quality(
        loads(load("w", week, date(2026, 1, 12)), load("w_stock", week, date(2026, 1, 12), dataset="inventory", distributor_id="w")),
        distributors=distributors(w="weekly"), sellout=lines, inventory=stock, as_of=date(2026, 1, 14),
    )  # fmt: skip
    counts = {
        row["feed_id"]: (row["unmatched_reseller_lines"], row["unmapped_sku_lines"])
        for row in mart.iter_rows(named=True)
    }
    assert counts == {"w": (2, 2), "w_stock": (None, 1)}


# --------------------------------------------------------------------------------------------------
# inventory_health


def stock(
    day: date, sku: str | None, part: str, location: str, on_hand: int, on_order: int | None = 0
) -> dict:
    return {
        "distributor_id": "dist", "feed_id": "dist_stock", "period_start": day, "snapshot_date": day, "sku": sku,
        "distributor_sku": part, "location_id": location, "quantity_on_hand": on_hand, "quantity_on_order": on_order,
    }  # fmt: skip


def test_weeks_of_supply_from_the_latest_snapshot_and_four_weeks_of_sell_out() -> None:
    snapshot = date(2026, 3, 29)
    positions = inventory(
        stock(date(2026, 3, 22), "AX-1000", "D-1", "L1", 999),  # an older snapshot: ignored
        stock(snapshot, "AX-1000", "D-1", "L1", 60, None),
        stock(snapshot, "AX-1000", "D-1", "L2", 20, None),
        stock(snapshot, "SW-24P", "D-2", "L1", 5),
        stock(snapshot, None, "D-9", "L1", 12, 3),  # unmapped: kept by its part number
    )
    lines = sellout(
        sale("A", date(2026, 3, 2), "1.00", quantity=30),  # 27 days before the snapshot: counted
        sale("A", date(2026, 3, 1), "1.00", quantity=500),  # 28 days before: not
        sale("A", snapshot, "1.00", quantity=12),
        sale("A", date(2026, 3, 30), "1.00", quantity=700),  # after the snapshot: not
        sale("A", date(2026, 3, 10), "1.00", quantity=-2),  # a return
        sale("A", date(2026, 3, 10), "1.00", quantity=9, distributor_id="other"),
        sale("A", date(2026, 3, 10), "1.00", quantity=4, sku=None, distributor_sku="D-9"),
    )
    rows = {
        (r["sku"], r["distributor_sku"]): r
        for r in build_inventory_health(positions, sellout=lines).iter_rows(named=True)
    }
    ax, sw, unmapped = rows[("AX-1000", "D-1")], rows[("SW-24P", "D-2")], rows[(None, "D-9")]
    assert (ax["snapshot_date"], ax["locations"], ax["quantity_on_hand"], ax["quantity_on_order"]) == (
        snapshot,
        2,
        80,
        None,
    )
    assert (ax["units_sold_4w"], ax["weekly_sell_rate"], ax["weeks_of_supply"]) == (40, 10.0, 8.0)
    assert (sw["units_sold_4w"], sw["weekly_sell_rate"], sw["weeks_of_supply"]) == (0, 0.0, None)
    assert (unmapped["quantity_on_hand"], unmapped["units_sold_4w"], unmapped["weeks_of_supply"]) == (
        12,
        4,
        12.0,
    )


# --------------------------------------------------------------------------------------------------
# rebate_accruals

PRODUCTS = pl.DataFrame(
    {"sku": ["AX-1000", "SW-24P", "FW-500"], "family": ["Wireless", "Switching", "Security"]}
)


def program(program_id: str, rule_type: str, start: date, end: date, *, skus=(), families=(), percent="2",
            threshold=None, min_growth=None, baseline=None, tiers_=("Silver",)) -> dict:  # fmt: skip
    return {
        "program_id": program_id, "name": program_id, "skus": list(skus), "families": list(families),
        "period_start": start, "period_end": end, "eligible_tiers": list(tiers_), "rule_type": rule_type,
        "percent": Decimal(percent), "threshold": None if threshold is None else Decimal(threshold),
        "min_growth_percent": None if min_growth is None else Decimal(min_growth), "baseline": baseline,
    }  # fmt: skip


PROGRAM_SCHEMA = {
    "program_id": pl.String, "name": pl.String, "skus": pl.List(pl.String), "families": pl.List(pl.String),
    "period_start": pl.Date, "period_end": pl.Date, "eligible_tiers": pl.List(pl.String), "rule_type": pl.String,
    "percent": pl.Decimal(9, 4), "threshold": AMOUNT, "min_growth_percent": pl.Decimal(9, 4), "baseline": pl.String,
}  # fmt: skip


def accruals(
    lines: pl.DataFrame, programs: list[dict], as_of: date, tier_of: dict[str, str]
) -> dict[tuple[str, str], dict]:
    mart = build_rebate_accruals(
        lines, partners=partners(*tier_of), partners_history=partners(*tier_of, tiers=tier_of),
        rebate_programs=pl.DataFrame(programs, schema=PROGRAM_SCHEMA), products=PRODUCTS, as_of=as_of,
    )  # fmt: skip
    return {(row["partner_id"], row["program_id"]): row for row in mart.iter_rows(named=True)}


def test_percent_above_threshold_at_and_above_the_threshold() -> None:
    q1 = program("Q1", "percent_above_threshold", date(2026, 1, 1), date(2026, 3, 31), skus=["AX-1000"], percent="3", threshold="1000")  # fmt: skip
    lines = sellout(
        sale("AT", date(2026, 1, 10), "1000.00"),
        sale("ABOVE", date(2026, 1, 10), "1100.00"),
        sale("ABOVE", date(2026, 1, 11), "500.00", sku="SW-24P"),  # not covered
        sale("ABOVE", date(2026, 4, 1), "500.00"),  # after the period
        sale("ABOVE", date(2025, 12, 31), "70.00"),  # before: in revenue_before
        sale("LOW", date(2026, 1, 10), "5000.00"),
    )
    rows = accruals(lines, [q1], date(2026, 5, 1), {"AT": "Silver", "ABOVE": "Silver", "LOW": "Registered"})
    assert rows[("AT", "Q1")]["rebate_earned"] == Decimal("0.00")
    above = rows[("ABOVE", "Q1")]
    assert (above["revenue_qualifying"], above["rebate_earned"], above["revenue_before"]) == (
        Decimal("1100.00"), Decimal("3.00"), Decimal("70.00"),
    )  # fmt: skip
    assert (above["is_final"], above["revenue_through"], above["days_counted"]) == (
        True,
        date(2026, 3, 31),
        90,
    )
    assert (rows[("LOW", "Q1")]["eligible"], rows[("LOW", "Q1")]["rebate_earned"]) == (False, Decimal("0.00"))


def test_growth_kicker_at_the_minimum_growth_over_each_baseline() -> None:
    # Counted window to as_of: 1-10 Feb (10 days); previous period: 22-31 Jan; prior year: 1-10 Feb 2025.
    kick = program("KICK", "growth_kicker", date(2026, 2, 1), date(2026, 2, 28), families=["Security"], percent="5", min_growth="10", baseline="previous_period")  # fmt: skip
    year = program("YEAR", "growth_kicker", date(2026, 2, 1), date(2026, 2, 28), families=["Security"], percent="5", min_growth="10", baseline="prior_year")  # fmt: skip
    lines = sellout(
        sale("GREW", date(2026, 1, 22), "1000.00", sku="FW-500"),
        sale("GREW", date(2026, 1, 21), "9999.00", sku="FW-500"),  # 11 days before: outside the baseline
        sale("GREW", date(2026, 2, 10), "1100.00", sku="FW-500"),
        sale("GREW", date(2025, 2, 10), "1100.00", sku="FW-500"),
        sale("SHORT", date(2026, 1, 31), "1000.00", sku="FW-500"),
        sale("SHORT", date(2026, 2, 1), "1099.99", sku="FW-500"),
        sale("NEW", date(2026, 2, 1), "500.00", sku="FW-500"),
    )
    rows = accruals(
        lines, [kick, year], date(2026, 2, 10), {"GREW": "Silver", "SHORT": "Silver", "NEW": "Silver"}
    )
    grew = rows[("GREW", "KICK")]
    assert (grew["baseline_revenue"], grew["growth_pct"], grew["rebate_earned"]) == (
        Decimal("1000.00"),
        10.0,
        Decimal("55.00"),
    )
    assert (grew["revenue_before"], grew["is_final"], grew["baseline"]) == (
        Decimal("1000.00"),
        False,
        "previous_period",
    )
    assert rows[("SHORT", "KICK")]["rebate_earned"] == Decimal("0.00")
    assert (rows[("NEW", "KICK")]["growth_pct"], rows[("NEW", "KICK")]["rebate_earned"]) == (
        None,
        Decimal("0.00"),
    )
    prior = rows[("GREW", "YEAR")]
    assert (prior["baseline_revenue"], prior["growth_pct"], prior["rebate_earned"]) == (
        Decimal("1100.00"),
        0.0,
        Decimal("0.00"),
    )
    assert prior["revenue_before"] == Decimal("1000.00")


def test_programs_not_started_are_left_out_and_tier_is_on_record() -> None:
    later = program("LATER", "percent_above_threshold", date(2026, 6, 1), date(2026, 6, 30), skus=["AX-1000"])
    now = program("NOW", "percent_above_threshold", date(2026, 1, 1), date(2026, 12, 31), skus=["AX-1000"], percent="1.5")  # fmt: skip
    history = pl.DataFrame(
        {"partner_id": ["A", "A"], "legal_name": ["A", "A"], "tier": ["Registered", "Silver"],
         "valid_from": [None, date(2026, 3, 1)], "valid_to": [date(2026, 3, 1), None]},
        schema={"partner_id": pl.String, "legal_name": pl.String, "tier": pl.String, "valid_from": pl.Date, "valid_to": pl.Date},
    )  # fmt: skip
    frames = {"rebate_programs": pl.DataFrame([later, now], schema=PROGRAM_SCHEMA), "products": PRODUCTS}
    lines = sellout(sale("A", date(2026, 2, 1), "333.33"))
    before = build_rebate_accruals(
        lines, partners=partners("A"), partners_history=history, as_of=date(2026, 2, 28), **frames
    )
    after = build_rebate_accruals(
        lines, partners=partners("A"), partners_history=history, as_of=date(2026, 3, 1), **frames
    )
    assert before["program_id"].to_list() == after["program_id"].to_list() == ["NOW"]
    assert before.row(0, named=True)["tier"] == "Registered" and not before.row(0, named=True)["eligible"]
    assert after.row(0, named=True)["tier"] == "Silver"
    assert after.row(0, named=True)["rebate_earned"] == Decimal("5.00")  # 1.5% of 333.33 = 4.99995


# --------------------------------------------------------------------------------------------------
# Every mart over empty inputs.


def test_empty_inputs_give_empty_marts_with_their_columns() -> None:
    empty = MartInputs(
        sellout=pl.DataFrame(schema=SELLOUT_COLUMNS), inventory=pl.DataFrame(schema=INVENTORY_COLUMNS),
        loads=pl.DataFrame(schema=LOADS_COLUMNS), distributors=distributors(), partners=partners(),
        partners_history=partners(), products=PRODUCTS.clear(), quotas=quotas(), tiers=tiers(),
        certifications=certifications(), rebate_programs=pl.DataFrame(schema=PROGRAM_SCHEMA), as_of=date(2026, 1, 1),
    )  # fmt: skip
    marts = build_marts(empty)
    assert {name: (mart.height, dict(mart.schema)) for name, mart in marts.items()} == {
        name: (0, schema) for name, schema in SCHEMAS.items()
    }


def test_any_feed_of_the_distributor_delivers_its_period() -> None:
    """A distributor moving from file drops to its API keeps one schedule: no period goes missing."""
    mart = build_distributor_data_quality(
        loads(
            load("w", date(2026, 1, 5), date(2026, 1, 12)),
            load("w_api", date(2026, 1, 12), date(2026, 1, 19), distributor_id="w"),
        ),
        distributors=distributors(w="weekly"),
        sellout=NO_LINES,
        inventory=NO_STOCK,
        as_of=date(2026, 1, 22),
    )
    assert [(r["feed_id"], r["period_start"], r["status"]) for r in mart.iter_rows(named=True)] == [
        ("w", date(2026, 1, 5), "received"),
        ("w_api", date(2026, 1, 12), "received"),
    ]
