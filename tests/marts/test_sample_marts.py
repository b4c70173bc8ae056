"""The marts of the generated sample, against figures computed here from the generator's truth.

Every expectation is recomputed from `SampleTruth` (its lines, files, stock) and `ReferenceTruth`
(rates, quotas, tiers, certifications, programs, tier history) with plain Python and Decimal, never
from the mart code.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta
from decimal import ROUND_HALF_EVEN, Decimal

import polars as pl
import pytest

from marts import SCHEMAS, build_marts
from sampledata.reference import FAMILIES

ZERO = Decimal("0.00")


@pytest.fixture(scope="module")
def marts(sample) -> dict[str, pl.DataFrame]:
    return build_marts(sample.inputs())


def first_of(day: date) -> date:
    return day.replace(day=1)


def end_of(month: date) -> date:
    following = date(month.year + month.month // 12, month.month % 12 + 1, 1)
    return following - timedelta(days=1)


def months_between(first: date, last: date) -> int:
    return (last.year - first.year) * 12 + last.month - first.month


def pct(current: Decimal, base: Decimal | None) -> float | None:
    return None if not base else float((current - base) / abs(base) * 100)


def test_every_mart_has_its_declared_columns_and_types(marts) -> None:
    assert list(marts) == list(SCHEMAS)
    for name, mart in marts.items():
        assert dict(mart.schema) == SCHEMAS[name], name
        assert mart.height > 0, name


def test_partner_performance_revenue_is_the_truths_per_partner_and_month(sample, marts) -> None:
    revenue: dict[tuple[str, date], Decimal] = defaultdict(Decimal)
    units: dict[tuple[str, date], int] = defaultdict(int)
    lines: dict[tuple[str, date], int] = defaultdict(int)
    for line in sample.truth.sellout_lines:
        key = (line.partner_id, first_of(line.transaction_date))
        revenue[key] += sample.base(line)
        units[key] += line.quantity
        lines[key] += 1
    months = sorted({month for _, month in revenue})
    assert months == [date(2026, 10, 1), date(2026, 11, 1)]
    mart = marts["partner_performance"]
    rows = {(row["partner_id"], row["month"]): row for row in mart.iter_rows(named=True)}
    assert len(rows) == mart.height
    assert set(rows) == {(partner.partner_id, month) for partner in sample.truth.partners for month in months}
    for key, row in rows.items():
        assert (row["revenue_base"], row["units"], row["lines"]) == (revenue[key], units[key], lines[key]), (
            key
        )
        assert row["partner_name"] == next(
            p.legal_name for p in sample.truth.partners if p.partner_id == key[0]
        )
    total = sum((sample.base(line) for line in sample.truth.sellout_lines), ZERO)
    assert sum(mart["revenue_base"].to_list(), ZERO) == total


def test_partner_performance_growth_quota_and_consistency(sample, marts) -> None:
    quotas = sample.reference_truth.quotas
    rows = sorted(
        marts["partner_performance"].iter_rows(named=True), key=lambda r: (r["partner_id"], r["month"])
    )
    by_key = {(row["partner_id"], row["month"]): row for row in rows}
    first = min(row["month"] for row in rows)
    for row in rows:
        pid, month = row["partner_id"], row["month"]
        previous = by_key.get((pid, first_of(month - timedelta(days=1))))
        assert row["revenue_mom_pct"] == pytest.approx(
            pct(row["revenue_base"], previous and previous["revenue_base"])
        )
        assert row["revenue_yoy_pct"] is None  # the sample has no month a year earlier
        quota = quotas.get((pid, f"{month:%Y-%m}"))
        assert row["quota"] == quota
        assert row["attainment_pct"] == pytest.approx(float(row["revenue_base"] / quota * 100))
        trailing = [
            by_key[(pid, m)]
            for (p, m) in by_key
            if p == pid and first <= m <= month and months_between(m, month) < 12
        ]
        assert row["revenue_t12m"] == sum((r["revenue_base"] for r in trailing), ZERO)
        with_quota = [r for r in trailing if quotas.get((pid, f"{r['month']:%Y-%m}"))]
        on_quota = [r for r in with_quota if r["revenue_base"] >= quotas[(pid, f"{r['month']:%Y-%m}")]]
        assert row["months_on_quota_t12m"] == len(on_quota)
        assert row["months_with_quota_t12m"] == len(with_quota)
        assert row["consistency_pct"] == pytest.approx(len(on_quota) / len(with_quota) * 100)
    assert {row["months_on_quota_t12m"] for row in rows} >= {0, 1, 2}


def expected_tier(sample, partner_id: str, month_end: date, t12m: Decimal) -> tuple:
    """(tier, next tier, gap, certifications missing, certifications held) by the tiers' rules."""
    held = {
        name
        for pid, name, earned, expires in sample.reference_truth.certifications
        if pid == partner_id and earned <= month_end and (expires is None or month_end < expires)
    }
    tiers = sample.reference_truth.tiers
    qualified = [
        i for i, (_, minimum, required) in enumerate(tiers) if minimum <= t12m and set(required) <= held
    ]
    rank = max(qualified) if qualified else None
    following = 0 if rank is None else rank + 1
    if following >= len(tiers):
        return tiers[rank][0], None, None, [], sorted(held)
    name, minimum, required = tiers[following]
    gap = max(ZERO, minimum - t12m)
    current = None if rank is None else tiers[rank][0]
    return current, name, gap, sorted(set(required) - held), sorted(held)


def test_partner_performance_tier_next_tier_gap_and_missing_certifications(sample, marts) -> None:
    rows = marts["partner_performance"].iter_rows(named=True)
    seen_tiers, seen_missing = set(), 0
    for row in rows:
        expected = expected_tier(sample, row["partner_id"], end_of(row["month"]), row["revenue_t12m"])
        got = (
            row["tier"],
            row["next_tier"],
            row["gap_to_next_tier"],
            row["certifications_missing"],
            row["certifications_held"],
        )
        assert got == expected, (row["partner_id"], row["month"])
        assert row["tier_on_record"] == sample.reference_truth.tier_on(
            row["partner_id"], end_of(row["month"])
        )
        seen_tiers.add(row["tier"])
        seen_missing += bool(row["certifications_missing"])
    assert {"Registered", "Silver"} <= seen_tiers
    assert seen_missing >= 1


def test_partner_performance_days_to_the_next_certification_expiry(sample, marts) -> None:
    as_of = sample.truth.as_of
    rows = list(marts["partner_performance"].iter_rows(named=True))
    for row in rows:
        day = min(end_of(row["month"]), as_of)
        upcoming = sorted(
            (expires, name)
            for pid, name, earned, expires in sample.reference_truth.certifications
            if pid == row["partner_id"] and expires is not None and earned <= day and expires >= day
        )
        if upcoming:
            assert (row["next_certification_expiry"], row["next_expiring_certification"]) == upcoming[0]
            assert row["days_to_next_expiry"] == (upcoming[0][0] - day).days
        else:
            assert row["next_certification_expiry"] is None and row["days_to_next_expiry"] is None
    november = {row["partner_id"]: row for row in rows if row["month"] == date(2026, 11, 1)}
    for pid, name, expires in sample.reference_truth.expiring_certifications:
        assert (november[pid]["next_certification_expiry"], november[pid]["next_expiring_certification"]) == (
            expires,
            name,
        )
        assert november[pid]["days_to_next_expiry"] == (expires - as_of).days <= 30
    assert (
        november["P0012"]["next_certification_expiry"] is None
    )  # its only certification lapsed in September


@pytest.mark.parametrize("as_of_offset", [0, 1, 2, 3])
def test_distributor_data_quality_finds_the_missing_albion_report(sample, as_of_offset: int) -> None:
    truth = sample.truth
    as_of = truth.as_of + timedelta(days=as_of_offset)
    mart = build_marts(sample.inputs(as_of))["distributor_data_quality"]
    (late,) = truth.late_reports
    # A missing period has no delivering feed: it is keyed by its distributor and dataset.
    rows = {
        (row["feed_id"] or (row["distributor_id"], row["dataset"]), row["period_start"]): row
        for row in mart.iter_rows(named=True)
    }
    # Every file's period is there, received on time (each arrives the Monday after its week).
    for item in truth.files:
        row = rows[(item.feed_id, item.period_start)]
        assert (row["distributor_id"], row["status"], row["days_late"]) == (
            item.distributor_id,
            "received",
            0,
        )
    delivered = {(item.feed_id, item.period_start) for item in truth.files}
    missing = {key: row for key, row in rows.items() if key not in delivered}
    last_due = late.missing_period + timedelta(days=6 + 3)
    if as_of < last_due:  # the Albion week ending on the Sunday before as_of is not yet due
        assert missing == {}
    else:
        key = ((late.distributor_id, "sellout"), late.missing_period)
        assert list(missing) == [key]
        row = missing[key]
        assert row["status"] == "missing" and row["distributor_id"] == late.distributor_id
        assert (row["due_on"], row["days_late"], row["files"], row["received_at"]) == (
            last_due,
            (as_of - last_due).days,
            0,
            None,
        )
    assert set(mart["status"]) <= {"received", "missing"}


def test_distributor_data_quality_counts_the_report_in_effect(sample, marts) -> None:
    truth = sample.truth
    rows = {
        (row["feed_id"], row["period_start"]): row
        for row in marts["distributor_data_quality"].iter_rows(named=True)
    }
    for (feed, period), row in rows.items():
        files = [item for item in truth.files if item.feed_id == feed and item.period_start == period]
        current = [item for item in files if item.status == "loaded"]
        assert row["files"] == len(files)
        assert row["received_at"].isoformat() == min(item.received_at for item in files)
        assert row["rows_read"] == sum(item.rows_read for item in current)
        assert row["rows_quarantined"] == sum(item.rows_quarantined for item in current)
        assert row["quarantined_pct"] == pytest.approx(row["rows_quarantined"] / row["rows_read"] * 100)
        is_sellout = feed not in truth.inventory
        assert row["dataset"] == ("sellout" if is_sellout else "inventory")
        assert row["unmatched_reseller_lines"] == (0 if is_sellout else None)
        assert row["unmapped_sku_lines"] == 0
    (restated,) = truth.restatements
    assert rows[(restated.feed_id, restated.period_start)]["files"] == 2


def test_inventory_health_weeks_of_supply_of_the_sample_stock(sample, marts) -> None:
    latest: dict[tuple[str, str], date] = {}
    for row in sample.stock:
        key = (row.distributor_id, row.sku)
        latest[key] = max(latest.get(key, row.snapshot_date), row.snapshot_date)
    rows = {
        (row["distributor_id"], row["sku"]): row for row in marts["inventory_health"].iter_rows(named=True)
    }
    assert set(rows) == set(latest)
    for key, snapshot in latest.items():
        stock = [r for r in sample.stock if (r.distributor_id, r.sku) == key and r.snapshot_date == snapshot]
        sold = sum(
            line.quantity
            for line in sample.truth.sellout_lines
            if (line.distributor_id, line.sku) == key
            and snapshot - timedelta(days=27) <= line.transaction_date <= snapshot
        )
        on_hand = sum(r.on_hand for r in stock)
        row = rows[key]
        assert (row["snapshot_date"], row["quantity_on_hand"], row["units_sold_4w"]) == (
            snapshot,
            on_hand,
            sold,
        ), key
        assert row["quantity_on_order"] == sum(r.on_order for r in stock)
        assert row["locations"] == len({r.location_id for r in stock})
        assert row["weekly_sell_rate"] == pytest.approx(sold / 4)
        assert row["weeks_of_supply"] == (pytest.approx(on_hand / (sold / 4)) if sold > 0 else None)
    assert rows[("northwind_us", "AX-1000")]["snapshot_date"] == date(2026, 11, 15)


def test_rebate_accruals_of_each_sample_program(sample, marts) -> None:
    truth, ref = sample.truth, sample.reference_truth
    rows = {
        (row["partner_id"], row["program_id"]): row for row in marts["rebate_accruals"].iter_rows(named=True)
    }
    assert len(rows) == len(truth.partners) * len(ref.rebate_programs)
    earned_any = ineligible_any = 0
    for program in ref.rebate_programs:
        through = min(program.period_end, truth.as_of)
        days = (through - program.period_start).days + 1
        for partner in truth.partners:
            covered = [
                line
                for line in truth.sellout_lines
                if line.partner_id == partner.partner_id
                and (line.sku in program.skus or FAMILIES[line.sku] in program.families)
            ]

            def revenue(first: date, last: date, covered=covered) -> Decimal:
                return sum(
                    (sample.base(line) for line in covered if first <= line.transaction_date <= last), ZERO
                )

            qualifying = revenue(program.period_start, through)
            before = revenue(
                program.period_start - timedelta(days=days), program.period_start - timedelta(days=1)
            )
            tier = ref.tier_on(partner.partner_id, through)
            eligible = tier in program.eligible_tiers
            if program.rule_type == "percent_above_threshold":
                earned = program.percent * max(ZERO, qualifying - (program.threshold or 0)) / 100
            else:  # previous_period baseline: the same days just before the program
                grew = before > 0 and (qualifying - before) * 100 >= program.min_growth_percent * before
                earned = program.percent * qualifying / 100 if grew else ZERO
            earned = (earned if eligible else ZERO).quantize(Decimal("0.01"), ROUND_HALF_EVEN)
            row = rows[(partner.partner_id, program.program_id)]
            got = (
                row["tier"],
                row["eligible"],
                row["revenue_qualifying"],
                row["revenue_before"],
                row["rebate_earned"],
            )
            assert got == (tier, eligible, qualifying, before, earned), (
                partner.partner_id,
                program.program_id,
            )
            assert row["revenue_after"] == qualifying
            assert (row["period_start"], row["period_end"], row["rule_type"]) == (
                program.period_start,
                program.period_end,
                program.rule_type,
            )
            earned_any += earned > 0
            ineligible_any += not eligible
    assert earned_any > 0 and ineligible_any > 0


def test_partner_anomalies_of_the_sample_need_more_history(marts) -> None:
    anomalies, performance = marts["partner_anomalies"], marts["partner_performance"]
    assert anomalies.select("partner_id", "month", "revenue_base").equals(
        performance.select("partner_id", "month", "revenue_base")
    )
    # Two months of sell-out: no month has the three earlier months a baseline needs.
    assert anomalies["baseline_revenue"].null_count() == anomalies.height
    assert not anomalies["is_anomaly"].any()
