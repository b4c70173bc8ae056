"""Crash safety of the fixes a person applies (`throughline partners approve`, `skus map`, `rates add`),
proven: each adds one row to a reference file and then loads the reference data, rewriting the core
partitions it changes. Killed with SIGKILL at every phase boundary (the checked candidate file
written, the reference file replaced, then each phase of the reference load) and at random moments,
then run again as the person would, each ends in exactly the reference file, reference tables and
core rows an undisturbed run leaves: the row added once, the fix applied to history once.

Every trial starts from a copy of the base warehouse (tests/system/conftest.py). The approval moves
one of Rheinland's resellers to another partner (23 lines change partner); the SKU mapping and the
rate add rows no line uses, so they rewrite their table and leave core as it was.
"""

from __future__ import annotations

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
from warehouse.faults import APPROVAL_CRASH_POINTS, REFERENCE_CRASH_POINTS

pytestmark = [pytest.mark.system, pytest.mark.long]

FORMAT = ("--format", "csv")
FIXES = {
    "approve": Command(
        (
            "partners",
            "approve",
            "rheinland_de",
            "--name",
            "Global Reach Solutions GmbH",
            "--postal-code",
            "60311",
            "--country",
            "DE",
            "--partner",
            "P0005",
            "--note",
            "crash trial",
            *FORMAT,
        )
    ),
    "map": Command(
        ("skus", "map", "rheinland_de", "--part", "RH-CRASH-1", "--sku", "AX-1000", "--units", "12", *FORMAT)
    ),
    "rate": Command(("rates", "add", "CHF", "--date", "2026-11-02", "--rate", "1.13", *FORMAT)),
}
CHANGES_CORE = {"approve"}
"""The fixes that change lines in core (the others pass the reference load's partition rewrite by)."""
POINTS = {
    fix: [
        *APPROVAL_CRASH_POINTS,
        *(p for p in REFERENCE_CRASH_POINTS if fix in CHANGES_CORE or p != "reference_after_first_partition"),
    ]
    for fix in FIXES
}
RANDOM_TRIALS = {"approve": 11, "map": 10, "rate": 10}
assert sum(map(len, POINTS.values())) + sum(RANDOM_TRIALS.values()) >= 50


@pytest.fixture(scope="module")
def undisturbed(crash_base: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple]:
    """Per fix: the trials' folder, the undisturbed run's state and duration."""
    root = tmp_path_factory.mktemp("approvals")
    before = reference_state(crash_base)
    runs = {}
    for fix, command in FIXES.items():
        home = copy_home(crash_base, root / fix / "undisturbed")
        duration = run_to_end(home, command)
        expected = reference_state(home)
        assert expected["folder"] != before["folder"] and expected["fingerprint"] != before["fingerprint"]
        assert (expected["core"] != before["core"]) == (fix in CHANGES_CORE)
        runs[fix] = (root / fix, expected, duration)
    return runs


def _trials(crash_base: Path, undisturbed: dict[str, tuple], fix: str, figures: Figures) -> Trials:
    folder, expected, _ = undisturbed[fix]

    def check(home: Path) -> tuple[int, int]:
        state = reference_state(home)
        checked, lost = lost_reference_rows(state, expected)
        assert state == expected
        return checked, lost

    return Trials(lambda name: copy_home(crash_base, folder / name), FIXES[fix], check, figures)


@pytest.mark.parametrize(
    ("fix", "point"), [(fix, point) for fix, points in POINTS.items() for point in points]
)
def test_a_fix_killed_at_each_phase_is_applied_once_by_running_it_again(
    crash_base: Path, undisturbed, fix: str, point: str, figures: Figures
) -> None:
    _trials(crash_base, undisturbed, fix, figures).at_point(point)


@pytest.mark.parametrize("fix", FIXES)
def test_a_fix_killed_at_random_moments_is_applied_once_by_running_it_again(
    crash_base: Path, undisturbed, fix: str, figures: Figures
) -> None:
    trials = RANDOM_TRIALS[fix]
    killed = _trials(crash_base, undisturbed, fix, figures).at_random(
        trials, undisturbed[fix][2], seed=20261126
    )
    assert killed >= trials * 0.8, f"only {killed} of {trials} runs of {fix} were interrupted"
