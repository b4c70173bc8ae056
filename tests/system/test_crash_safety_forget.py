"""Crash safety of `throughline forget`, proven: an erasure killed with SIGKILL at every phase boundary
(keys erased in staging and core; a redacted copy landed and recorded but the ledger not yet pointed at
it; pointed at it but the original not yet deleted; the first copy in place; every load re-run but the
old table versions kept; the history removed but the catalog not rebuilt) and at random moments, then
run again, ends exactly where an undisturbed erasure ends: no trace of the customer in any file under
the home, every other line as it was, the ledger and landing the same.

Every trial starts from a copy of the base warehouse (tests/system/conftest.py), whose Rheinland
files (a cp1252 CSV with addresses spanning lines) name the customer erased by e-mail in five files.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from schemas.feed_spec import END_CUSTOMER_IDENTITY_FIELDS
from schemas.rules import raw
from tests.conftest import TEST_SECRET
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
from tests.traces import files_holding
from transforms.normalize import end_customer_key
from warehouse.faults import FORGET_CRASH_POINTS
from warehouse.retention import LANDING_CHANGES

pytestmark = [pytest.mark.system, pytest.mark.long]

NAME = "Stadtwerke Bergheim GmbH"
EMAIL = "einkauf@stadtwerke-bergheim.example"
ADDRESS = "Bahnhofstraße 3\n50126 Bergheim"
RANDOM_TRIALS = 50 - len(FORGET_CRASH_POINTS)
COMMAND = Command(("forget", "--email", EMAIL, "--reference", "REQ-CRASH", "--format", "csv"))
WRITTEN_AT = ("ingested_at", "started_at", "finished_at", "changed_at")
"""When a row was written: a re-run load or a recorded change takes the moment of its run."""
ROW_TABLES = (
    "sellout",
    "inventory",
    "quarantine",
    "staging_sellout",
    "loads",
    "landed_files",
    LANDING_CHANGES,
)


def _key() -> str:
    values = (NAME, EMAIL, None, ADDRESS)
    frame = pl.DataFrame(
        {raw(name): [value] for name, value in zip(END_CUSTOMER_IDENTITY_FIELDS, values, strict=True)},
        schema={raw(name): pl.String for name in END_CUSTOMER_IDENTITY_FIELDS},
    )
    return frame.select(end_customer_key(TEST_SECRET)).item()


TRACES = [NAME, EMAIL, *ADDRESS.split("\n"), _key(), _key()[:32]]


def _erased(home: Path) -> dict[str, object]:
    return {
        "warehouse": warehouse_state(home),
        "tables": {name: table_rows(home, name, WRITTEN_AT) for name in ROW_TABLES},
        "landing": folder_files(home / "landing"),
        "traces": files_holding(home, TRACES),
    }


@pytest.fixture(scope="module")
def undisturbed(crash_base: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, float]:
    root = tmp_path_factory.mktemp("forget")
    assert files_holding(crash_base / "landing", TRACES), "the base names the customer"
    home = copy_home(crash_base, root / "undisturbed")
    duration = run_to_end(home, COMMAND)
    expected = _erased(home)
    assert expected["traces"] == {}
    assert len(expected["tables"][LANDING_CHANGES]) == 5
    return root, expected, duration


def _trials(crash_base: Path, undisturbed: tuple[Path, dict, float], figures: Figures) -> Trials:
    root, expected, _ = undisturbed

    def check(home: Path) -> tuple[int, int]:
        state = _erased(home)
        checked, lost = lost_lines(state["warehouse"], expected["warehouse"])
        for name, want in expected["tables"].items():
            checked += len(want)
            lost += differing_rows(state["tables"][name], want)
        assert state == expected
        return checked, lost

    return Trials(lambda name: copy_home(crash_base, root / name), COMMAND, check, figures)


@pytest.mark.parametrize("point", FORGET_CRASH_POINTS)
def test_an_erasure_killed_at_each_phase_is_finished_by_running_it_again(
    crash_base: Path, undisturbed, point: str, figures: Figures
) -> None:
    _trials(crash_base, undisturbed, figures).at_point(point)


def test_an_erasure_killed_at_random_moments_ends_as_an_undisturbed_one(
    crash_base: Path, undisturbed, figures: Figures
) -> None:
    killed = _trials(crash_base, undisturbed, figures).at_random(RANDOM_TRIALS, undisturbed[2], seed=20261127)
    assert killed >= RANDOM_TRIALS * 0.8, f"only {killed} of {RANDOM_TRIALS} runs were interrupted"
