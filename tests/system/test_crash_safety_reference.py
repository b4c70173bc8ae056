"""Crash safety of a reference data load (`throughline reference refresh`), proven: killed with SIGKILL
at every phase boundary (one table stored of many, every table stored, the resolution stored, one
distributor's core partitions rewritten of two, core in line but the fingerprint not recorded) and
at random moments, then run again, it ends in exactly the reference tables, core rows and fingerprint
an undisturbed run leaves.

Every trial starts from a copy of the base warehouse (tests/system/conftest.py) whose reference
folder has new EUR and GBP rates since it was loaded, so the load rewrites `fx_rates` and the core
partitions of Rheinland (EUR) and Albion (GBP).
"""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from pathlib import Path

import pytest

from tests.guarantees import Figures
from tests.system.crash import (
    Command,
    Trials,
    copy_home,
    lost_reference_rows,
    reference_state,
    run_to_end,
)
from warehouse.faults import REFERENCE_CRASH_POINTS

pytestmark = [pytest.mark.system, pytest.mark.long]

RANDOM_TRIALS = 50 - len(REFERENCE_CRASH_POINTS)
COMMAND = Command(("reference", "refresh", "--format", "csv"))
REVALUED = {"EUR": Decimal("1.05"), "GBP": Decimal("0.97")}
"""Every rate of these currencies is multiplied by this factor in the trials' reference folder."""


def revalue_rates(reference_dir: Path) -> None:
    """Rewrite fx_rates.csv with every rate of a REVALUED currency changed (the rest as they were)."""
    path = reference_dir / "fx_rates.csv"
    rows = list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        if row["currency"] in REVALUED:
            row["rate_to_base"] = f"{Decimal(row['rate_to_base']) * REVALUED[row['currency']]:.6f}"
        writer.writerow(row)
    path.write_text(out.getvalue(), encoding="utf-8")


@pytest.fixture(scope="module")
def undisturbed(crash_base: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict, float]:
    root = tmp_path_factory.mktemp("reference")
    prepared = copy_home(crash_base, root / "prepared")
    revalue_rates(prepared / "reference")
    before = reference_state(prepared)
    home = copy_home(prepared, root / "undisturbed")
    duration = run_to_end(home, COMMAND)
    expected = reference_state(home)
    assert expected["tables"]["fx_rates"] != before["tables"]["fx_rates"]
    changed = set(expected["core"]["sellout"]) - set(before["core"]["sellout"])
    assert {"'rheinland_de'", "'albion_uk'"} <= {row.split(", ")[1] for row in changed}
    assert expected["fingerprint"] != before["fingerprint"]
    return root, prepared, expected, duration


def _trials(undisturbed: tuple[Path, Path, dict, float], figures: Figures) -> Trials:
    root, prepared, expected, _ = undisturbed

    def check(home: Path) -> tuple[int, int]:
        state = reference_state(home)
        checked, lost = lost_reference_rows(state, expected)
        assert state == expected
        return checked, lost

    return Trials(lambda name: copy_home(prepared, root / name), COMMAND, check, figures)


@pytest.mark.parametrize("point", REFERENCE_CRASH_POINTS)
def test_a_reference_load_killed_at_each_phase_is_completed_by_the_next_run(
    undisturbed, point: str, figures: Figures
) -> None:
    _trials(undisturbed, figures).at_point(point)


def test_a_reference_load_killed_at_random_moments_ends_as_an_undisturbed_one(
    undisturbed, figures: Figures
) -> None:
    killed = _trials(undisturbed, figures).at_random(RANDOM_TRIALS, undisturbed[3], seed=20261125)
    assert killed >= RANDOM_TRIALS * 0.8, f"only {killed} of {RANDOM_TRIALS} runs were interrupted"
