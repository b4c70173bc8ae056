"""Crash safety of `throughline publish`, proven: killed with SIGKILL at every phase boundary (a mart
stored of five, every mart stored, the scorecards written) and at random moments, then run again, it
ends in exactly the marts and report files an undisturbed run writes, and changes no line of core.

Every trial starts from a copy of the base warehouse (tests/system/conftest.py) and publishes as of
a fixed date, so an undisturbed run's marts and pages are the same bytes every time.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import query_home
from tests.guarantees import Figures
from tests.system.crash import (
    Command,
    Trials,
    copy_home,
    differing_rows,
    folder_files,
    lost_lines,
    run_to_end,
    table_rows,
    warehouse_state,
)
from warehouse.faults import PUBLISH_CRASH_POINTS
from warehouse.reference_tables import MART_TABLES

pytestmark = [pytest.mark.system, pytest.mark.long]

RANDOM_TRIALS = 50 - len(PUBLISH_CRASH_POINTS)
COMMAND = Command(("publish", "--as-of", "2026-11-16", "--format", "csv"))


def _published(home: Path) -> dict[str, object]:
    return {
        "warehouse": warehouse_state(home),
        "marts": {name: table_rows(home, name) for name in MART_TABLES},
        "reports": folder_files(home / "reports"),
        "views": query_home(
            home, "select " + ", ".join(f"(select count(*) from {name}) as {name}" for name in MART_TABLES)
        ).rows(),
    }


@pytest.fixture(scope="module")
def undisturbed(crash_base: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, float]:
    root = tmp_path_factory.mktemp("publish")
    home = copy_home(crash_base, root / "undisturbed")
    duration = run_to_end(home, COMMAND)
    expected = _published(home)
    assert len(expected["reports"]) > 10 and all(expected["marts"].values())
    return root, expected, duration


def _trials(undisturbed: tuple[Path, dict, float], crash_base: Path, figures: Figures) -> Trials:
    root, expected, _ = undisturbed

    def check(home: Path) -> tuple[int, int]:
        state = _published(home)
        checked, lost = lost_lines(state["warehouse"], expected["warehouse"])
        for name in MART_TABLES:
            checked += len(expected["marts"][name])
            lost += differing_rows(state["marts"][name], expected["marts"][name])
        files, want = state["reports"], expected["reports"]
        checked += len(want)
        lost += len(set(files.items()) ^ set(want.items()))
        assert state == expected
        return checked, lost

    return Trials(lambda name: copy_home(crash_base, root / name), COMMAND, check, figures)


@pytest.mark.parametrize("point", PUBLISH_CRASH_POINTS)
def test_publish_killed_at_each_phase_is_completed_by_the_next_run(
    undisturbed, crash_base: Path, point: str, figures: Figures
) -> None:
    _trials(undisturbed, crash_base, figures).at_point(point)


def test_publish_killed_at_random_moments_writes_what_an_undisturbed_run_writes(
    undisturbed, crash_base: Path, figures: Figures
) -> None:
    killed = _trials(undisturbed, crash_base, figures).at_random(RANDOM_TRIALS, undisturbed[2], seed=20261124)
    assert killed >= RANDOM_TRIALS * 0.8, f"only {killed} of {RANDOM_TRIALS} runs were interrupted"
