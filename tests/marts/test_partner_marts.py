"""Hand-made cases of `partner_performance` and `partner_anomalies`: quotas, growth bases, tier
rules, certification boundaries, the anomaly threshold."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import polars as pl
import pytest

from marts import build_partner_anomalies, build_partner_performance
from tests.marts.helpers import certifications, partners, quotas, sale, sellout, tiers

AS_OF = date(2026, 12, 31)
NO_CERTIFICATIONS = certifications()
NO_QUOTAS = quotas()
TIERS = tiers(
    ("Registered", "0", []), ("Silver", "1000", ["Wireless"]), ("Gold", "5000", ["Wireless", "Security"])
)


def performance(lines: pl.DataFrame, ids: tuple[str, ...] = ("A",), *, quota_rows=NO_QUOTAS,
                certs=NO_CERTIFICATIONS, tier_table=TIERS, as_of: date = AS_OF) -> dict[tuple[str, date], dict]:  # fmt: skip
    mart = build_partner_performance(
        lines, partners=partners(*ids), quotas=quota_rows, tiers=tier_table, certifications=certs, as_of=as_of
    )
    return {(row["partner_id"], row["month"]): row for row in mart.iter_rows(named=True)}


def test_rows_are_every_partner_by_every_month_with_zeros_and_unknown_partners_kept() -> None:
    lines = sellout(
        sale("A", date(2026, 1, 5), "100.10", quantity=2),
        sale("A", date(2026, 1, 20), "0.05"),
        sale("X", date(2026, 3, 2), "7.00"),  # not in partners: kept, so the revenue adds up
        sale(None, date(2026, 5, 1), "999.00"),  # unmatched: not a partner's, outside the months
    )
    rows = performance(lines, ("A", "B"))
    months = [date(2026, 1, 1), date(2026, 2, 1), date(2026, 3, 1)]
    assert set(rows) == {(pid, month) for pid in ("A", "B", "X") for month in months}
    assert (rows[("A", months[0])]["revenue_base"], rows[("A", months[0])]["units"]) == (Decimal("100.15"), 3)
    assert (rows[("B", months[1])]["revenue_base"], rows[("B", months[1])]["lines"]) == (Decimal(0), 0)
    assert rows[("X", months[2])]["partner_name"] is None
    assert sum(row["revenue_base"] for row in rows.values()) == Decimal("107.15")


def test_no_quota_means_no_attainment_and_no_consistency() -> None:
    rows = performance(sellout(sale("A", date(2026, 1, 5), "100.00")))
    row = rows[("A", date(2026, 1, 1))]
    assert (row["quota"], row["attainment_pct"]) == (None, None)
    assert (row["months_on_quota_t12m"], row["months_with_quota_t12m"], row["consistency_pct"]) == (
        0,
        0,
        None,
    )


def test_quota_attainment_and_consistency_over_the_trailing_twelve_months() -> None:
    # 13 months, quota 100 each: on quota in the first month and the last two only.
    months = [date(2025, 12, 1), *[date(2026, m, 1) for m in range(1, 13)]]
    on_quota = {months[0], months[-2], months[-1]}
    lines = [sale("A", month.replace(day=10), "100.00" if month in on_quota else "99.99") for month in months]
    quota_rows = [("A", month, "100") for month in months]
    rows = performance(sellout(*lines), quota_rows=quotas(*quota_rows))
    december = rows[("A", date(2026, 12, 1))]
    assert december["attainment_pct"] == 100.0
    assert (december["months_on_quota_t12m"], december["months_with_quota_t12m"]) == (
        2,
        12,
    )  # Dec 2025 left the window
    assert december["consistency_pct"] == pytest.approx(2 / 12 * 100)
    assert rows[("A", date(2026, 1, 1))]["attainment_pct"] == pytest.approx(99.99)
    assert december["revenue_t12m"] == Decimal("100.00") * 2 + Decimal("99.99") * 10


def test_growth_is_null_on_a_zero_or_absent_base_and_signed_on_a_negative_one() -> None:
    lines = sellout(
        sale("B", date(2025, 1, 3), "-100.00", quantity=-1),
        sale("B", date(2025, 2, 3), "100.00"),
        sale("A", date(2025, 2, 3), "80.00"),
        sale("A", date(2025, 4, 3), "120.00"),
        sale("A", date(2026, 2, 3), "100.00"),
    )
    rows = performance(lines, ("A", "B"))
    assert rows[("A", date(2025, 1, 1))]["revenue_mom_pct"] is None  # first month: no base
    assert rows[("A", date(2025, 3, 1))]["revenue_mom_pct"] == -100.0
    assert rows[("A", date(2025, 4, 1))]["revenue_mom_pct"] is None  # base 0
    assert rows[("B", date(2025, 2, 1))]["revenue_mom_pct"] == 200.0  # from -100 to +100
    assert rows[("A", date(2026, 2, 1))]["revenue_yoy_pct"] == 25.0
    assert rows[("A", date(2026, 1, 1))]["revenue_yoy_pct"] is None  # Jan 2025 sold nothing
    assert rows[("A", date(2025, 12, 1))]["revenue_yoy_pct"] is None  # no month a year earlier


def test_tier_needs_revenue_and_certifications_held_at_the_months_end() -> None:
    certs = certifications(
        ("A", "Wireless", date(2025, 1, 1), date(2026, 1, 31)),  # expires on January's last day
        ("B", "Wireless", date(2026, 1, 31), date(2026, 2, 1)),  # earned that day, expires the next
        ("C", "Wireless", date(2025, 1, 1), None),  # never expires
        ("C", "Security", date(2025, 1, 1), None),
    )
    lines = sellout(
        *[sale(pid, date(2026, 1, 10), "1500.00") for pid in "ABC"], sale("C", date(2026, 1, 11), "5000.00")
    )
    rows = performance(lines, ("A", "B", "C"), certs=certs, as_of=date(2026, 1, 15))
    a, b, c = (rows[(pid, date(2026, 1, 1))] for pid in "ABC")
    assert (a["tier"], a["certifications_held"], a["next_tier"], a["certifications_missing"]) == (
        "Registered", [], "Silver", ["Wireless"],
    )  # fmt: skip
    assert a["gap_to_next_tier"] == Decimal(0)  # revenue is enough: only the certification lacks
    assert (b["tier"], b["next_tier"], b["gap_to_next_tier"], b["certifications_missing"]) == (
        "Silver", "Gold", Decimal("3500.00"), ["Security"],
    )  # fmt: skip
    assert (c["tier"], c["next_tier"], c["gap_to_next_tier"], c["certifications_missing"]) == (
        "Gold",
        None,
        None,
        [],
    )
    # Expiry counted from min(month end, as_of) = Jan 15: A's lapses on the 31st, B's has not been earned yet.
    assert (a["next_certification_expiry"], a["days_to_next_expiry"]) == (date(2026, 1, 31), 16)
    assert (b["next_certification_expiry"], b["days_to_next_expiry"]) == (None, None)
    assert c["next_certification_expiry"] is None  # no expiry


def test_expiry_on_the_reference_day_is_zero_days_away() -> None:
    certs = certifications(("A", "Wireless", date(2025, 1, 1), date(2026, 1, 31)), ("A", "Security", date(2025, 1, 1), date(2026, 3, 1)))  # fmt: skip
    rows = performance(
        sellout(sale("A", date(2026, 1, 10), "1.00"), sale("A", date(2026, 2, 10), "1.00")), certs=certs
    )
    january, february = rows[("A", date(2026, 1, 1))], rows[("A", date(2026, 2, 1))]
    assert (january["next_certification_expiry"], january["next_expiring_certification"], january["days_to_next_expiry"]) == (
        date(2026, 1, 31), "Wireless", 0,
    )  # fmt: skip
    assert january["certifications_held"] == ["Security"]
    assert (february["next_expiring_certification"], february["days_to_next_expiry"]) == ("Security", 1)


def test_no_tier_when_trailing_revenue_is_negative() -> None:
    row = performance(sellout(sale("A", date(2026, 1, 10), "-5.00", quantity=-1)))[("A", date(2026, 1, 1))]
    assert (row["tier"], row["next_tier"], row["gap_to_next_tier"]) == (None, "Registered", Decimal("5.00"))


def test_tier_on_record_comes_from_the_history_on_the_months_end() -> None:
    history = pl.DataFrame(
        {"partner_id": ["A", "A"], "tier": ["Silver", "Gold"], "valid_from": [None, date(2026, 2, 1)], "valid_to": [date(2026, 2, 1), None]},
        schema={"partner_id": pl.String, "tier": pl.String, "valid_from": pl.Date, "valid_to": pl.Date},
    )  # fmt: skip
    mart = build_partner_performance(
        sellout(sale("A", date(2026, 1, 10), "1.00"), sale("A", date(2026, 2, 10), "1.00")),
        partners=partners("A"), quotas=NO_QUOTAS, tiers=TIERS, certifications=NO_CERTIFICATIONS, as_of=AS_OF,
        partners_history=history,
    )  # fmt: skip
    assert mart["tier_on_record"].to_list() == ["Silver", "Gold"]


def anomalies(amounts: dict[str, list[str | None]], **options) -> dict[tuple[str, date], dict]:
    """partner -> monthly revenue from January 2026 (None: no line that month)."""
    lines = [
        sale(pid, date(2026, month, 15), amount)
        for pid, values in amounts.items()
        for month, amount in enumerate(values, start=1)
        if amount is not None
    ]
    mart = build_partner_anomalies(sellout(*lines), partners=partners(*amounts), **options)
    return {(row["partner_id"], row["month"]): row for row in mart.iter_rows(named=True)}


def test_anomaly_threshold_boundary_is_inclusive() -> None:
    rows = anomalies(
        {
            "UP": ["100", "100", "100", "150"],
            "JUST": ["100", "100", "100", "149.99"],
            "DOWN": ["100", "100", "100", "50"],
        }
    )
    april = date(2026, 4, 1)
    assert (rows[("UP", april)]["departure_pct"], rows[("UP", april)]["is_anomaly"]) == (50.0, True)
    assert rows[("UP", april)]["baseline_revenue"] == Decimal("100.00")
    assert rows[("JUST", april)]["is_anomaly"] is False
    assert rows[("JUST", april)]["departure_pct"] == pytest.approx(49.99)
    assert (rows[("DOWN", april)]["departure_pct"], rows[("DOWN", april)]["is_anomaly"]) == (-50.0, True)
    assert rows[("UP", date(2026, 3, 1))]["baseline_revenue"] is None  # only two earlier months
    stricter = anomalies({"UP": ["100", "100", "100", "150"]}, threshold_pct=50.01)
    assert stricter[("UP", april)]["is_anomaly"] is False


def test_anomaly_baseline_is_the_mean_of_up_to_six_earlier_months_with_sell_out() -> None:
    # Month 1 leaves the window of month 8; the empty month 5 is no zero in the baseline.
    rows = anomalies({"A": ["1000", "10", "20", "30", None, "40", "50", "0"]})
    august = rows[("A", date(2026, 8, 1))]
    assert (august["baseline_months"], august["baseline_revenue"]) == (5, Decimal("30.00"))
    assert (august["departure_pct"], august["is_anomaly"]) == (-100.0, True)
    may = rows[("A", date(2026, 5, 1))]  # no line: revenue 0 against the mean of months 1-4
    assert (may["revenue_base"], may["baseline_revenue"], may["is_anomaly"]) == (
        Decimal(0),
        Decimal("265.00"),
        True,
    )
    thirds = anomalies({"B": ["10", "10", "10.01", "10"]})
    assert thirds[("B", date(2026, 4, 1))]["baseline_revenue"] == Decimal("10.00")  # 10.0033... to the cent
