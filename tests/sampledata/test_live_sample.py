"""The demo's sample follows the clock: on any day its last week is just due and nothing after it,
and the reference data written for its as-of date keeps the same story (lapsing certifications,
quotas, running rebate programs, rates)."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import polars as pl
import pytest

from cli.main import main
from marts.data_quality import DEFAULT_GRACE_DAYS, expected_periods
from sampledata.generator import DEFAULT_AS_OF, live_as_of, report_weeks
from sampledata.reference import EARLIEST_AS_OF, reference_files, reference_truth, write_sample_reference

DAYS = [date(2026, 11, 18) + timedelta(days=offset) for offset in range(400)]
"""More than a year of days, across a year end, from the first on which the fixed sample's last
week was due."""


def test_on_any_day_the_demo_sample_owes_exactly_its_own_weeks() -> None:
    for today in DAYS:
        weeks = report_weeks(live_as_of(today))
        # The marts' own rule: every week from the first, up to the last due by today.
        assert expected_periods("weekly", weeks[0], today, DEFAULT_GRACE_DAYS) == weeks, today


def test_on_the_days_the_fixed_sample_was_current_the_demo_picked_it() -> None:
    for today in DAYS[:7]:
        assert live_as_of(today) == DEFAULT_AS_OF


@pytest.mark.parametrize(
    "as_of",
    [EARLIEST_AS_OF, DEFAULT_AS_OF, date(2027, 1, 4), date(2027, 2, 15), date(2027, 4, 5), date(2028, 7, 3)],
)
def test_reference_data_keeps_its_distance_to_the_as_of_date(as_of: date) -> None:
    reference, default = reference_truth(as_of), reference_truth()
    shift = as_of - DEFAULT_AS_OF
    assert [(p, c, d - shift) for p, c, d in reference.expiring_certifications] == list(
        default.expiring_certifications
    )
    assert len(reference.expiring_certifications) == 2
    months = {f"{day:%Y-%m}" for week in report_weeks(as_of) for day in (week, week + timedelta(days=6))}
    partners = {partner_id for partner_id, _ in reference.quotas}
    assert {(p, m) for p in partners for m in months} <= set(reference.quotas)
    first_week = report_weeks(as_of)[0]
    for program in reference.rebate_programs:
        # Running over the sample's first week at least, and started by the as-of date.
        assert program.period_start <= first_week and first_week + timedelta(days=6) <= program.period_end, (
            program
        )
    business_days = (as_of - timedelta(days=n) for n in range(10))
    last_rate_day = next(
        d for d in business_days if d.weekday() < 5 and (d.month, d.day) not in ((12, 25), (12, 26), (1, 1))
    )
    for currency in {c for _, c in default.fx_rates}:
        assert max(d for d, c in reference.fx_rates if c == currency) == last_rate_day
    # A day's rate does not depend on how far the series runs.
    shared = set(default.fx_rates) & set(reference.fx_rates)
    assert shared and all(default.fx_rates[key] == reference.fx_rates[key] for key in shared)


def test_samples_writes_reference_data_for_its_as_of_date(tmp_path: Path) -> None:
    assert main(["samples", str(tmp_path / "out"), "--as-of", "2027-02-15"]) == 0
    certifications = pl.read_csv(tmp_path / "out" / "reference" / "certifications.csv", try_parse_dates=True)
    expected = {(p, c, e) for p, c, e in reference_truth(date(2027, 2, 15)).expiring_certifications}
    lapsing = certifications.filter(
        pl.col("expires_on").is_between(date(2027, 2, 15), date(2027, 3, 17))
    ).select("partner_id", "certification", "expires_on")
    assert set(lapsing.iter_rows()) == expected
    weeks = sorted(path.name for path in (tmp_path / "out" / "inbox" / "northwind_us").glob("NW_SALES_*"))
    assert weeks[-1] == "NW_SALES_20270208.csv"


@pytest.mark.parametrize("command", ["samples", "demo"])
def test_an_as_of_date_before_the_sample_s_rates_is_refused(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    day_before = EARLIEST_AS_OF - timedelta(days=1)
    arguments = [command, str(tmp_path / "out")] if command == "samples" else [command]
    with pytest.raises(SystemExit) as refused:
        main([*arguments, "--as-of", day_before.isoformat()])
    assert refused.value.code == 2
    error = capsys.readouterr().err
    assert f"'{day_before}' is before {EARLIEST_AS_OF}" in error
    assert "exchange rates start on 2025-11-03" in error
    assert not (tmp_path / "out").exists()


def test_the_demo_rewrites_only_its_own_reference_set_of_another_date(tmp_path: Path) -> None:
    folder = tmp_path / "reference"
    first, later = DEFAULT_AS_OF, DEFAULT_AS_OF + timedelta(weeks=10)
    assert write_sample_reference(folder, first)
    assert write_sample_reference(folder, first) == []  # the same date: kept as it is
    written = write_sample_reference(folder, later)
    assert {path.name for path in written} == set(reference_files(later))
    assert all(path.read_text(encoding="utf-8") == reference_files(later)[path.name] for path in written)
    # Somebody else's reference data (no marker) is never overwritten.
    own = tmp_path / "own"
    own.mkdir()
    (own / "partners.csv").write_text("partner_id\nX1\n", encoding="utf-8")
    assert write_sample_reference(own, later) == []
    assert sorted(path.name for path in own.iterdir()) == ["partners.csv"]
