"""Crash safety, proven: `throughline ingest` killed with SIGKILL anywhere, then run again, ends in
exactly the warehouse an undisturbed run builds (no row lost, none counted twice).

Two kinds of trial, each on a fresh home with the same files (four Northwind weeks that overlap,
Rheinland's original and restated week, and two inventory snapshots):
- a named crash point in every phase (landing, registering, staging, quarantine, the load row,
  the core commit, the ledger statuses, the catalog), reached through THROUGHLINE_CRASH_AT;
- kills at random moments, 50 trials with the named points on the home folder.
After each trial the command is run again, as a user would, and the warehouse must equal the
undisturbed run's and hold every invariant of CHANNEL_MODEL.md. The named crash points are tried on
the home folder and again with landing and the tables on object storage (the local S3 server).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sampledata.generator import copy_feed_specs, generate_samples
from tests.conftest import TEST_SECRET, WAREHOUSE_BACKENDS
from tests.guarantees import Figures
from tests.system.crash import Command, Trials, lost_lines, warehouse_state
from warehouse.faults import CRASH_ENV, CRASH_POINTS

pytestmark = [pytest.mark.system, pytest.mark.long]

RANDOM_TRIALS = 50 - len(CRASH_POINTS)
"""With the named crash points on disk, 50 trials (the named points on S3 come on top)."""
CHOSEN = (
    "northwind_us/NW_SALES_20261019.csv",
    "northwind_us/NW_SALES_20261026.csv",
    "northwind_us/NW_SALES_20261102.csv",
    "northwind_us/NW_STOCK_20261019.csv",
    "northwind_us/NW_STOCK_20261026.csv",
    "rheinland_de/RH_Abverkauf_20261019.csv",
    "rheinland_de/RH_Abverkauf_20261026.csv",
    "rheinland_de/RH_Abverkauf_20261026_restated.csv",
)


def _ingest(home: Path, files: list[Path], extra_env: dict[str, str] | None = None) -> subprocess.Popen:
    env = {**os.environ, "THROUGHLINE_HOME": str(home), "THROUGHLINE_CUSTOMER_KEY_SECRET": TEST_SECRET}
    env.pop(CRASH_ENV, None)
    env.update(extra_env or {})
    return subprocess.Popen(
        [sys.executable, "-m", "cli.main", "ingest", *map(str, files), "--format", "csv"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _fresh_home(root: Path, name: str, source: Path) -> tuple[Path, list[Path]]:
    home = root / name
    copy_feed_specs(home / "feeds")
    return home, [source / relative for relative in CHOSEN]


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, object], float]:
    root = tmp_path_factory.mktemp("crash")
    source = root / "drop"
    generate_samples(source)
    home, files = _fresh_home(root, "undisturbed", source)
    started = time.monotonic()
    process = _ingest(home, files)
    _, errors = process.communicate(timeout=600)
    duration = time.monotonic() - started
    assert process.returncode == 0, errors[-3000:]
    expected = warehouse_state(home)
    assert ("RH_Abverkauf_20261026.csv", "superseded") in {(f[0], f[1]) for f in expected["files"]}
    return root, source, expected, duration


def _complete(home: Path, files: list[Path], environ: dict[str, str] | None = None) -> None:
    process = _ingest(home, files, environ)
    _, errors = process.communicate(timeout=600)
    assert process.returncode == 0, errors[-3000:]


@pytest.mark.parametrize("backend", WAREHOUSE_BACKENDS)
@pytest.mark.parametrize("point", CRASH_POINTS)
def test_a_kill_at_each_phase_is_completed_by_the_next_run(
    scenario, point: str, backend: str, request: pytest.FixtureRequest, figures: Figures
) -> None:
    root, source, expected, _ = scenario
    environ = request.getfixturevalue("object_store").environment() if backend == "s3" else {}
    home, files = _fresh_home(root, f"at-{point}-{backend}", source)
    crashed = _ingest(home, files, {**environ, CRASH_ENV: point})
    crashed.communicate(timeout=600)
    assert crashed.returncode == -signal.SIGKILL, f"the run never reached {point}"
    _complete(home, files, environ)
    state = warehouse_state(home, environ)
    checked, lost = lost_lines(state, expected)
    figures.add(faults=1, rows_checked=checked, rows_lost=lost)
    assert state == expected
    # The killed load's scratch (decoded text with end-customer identities) went with the re-run.
    scratch = [p.name for p in (home / "work").glob("*") if re.fullmatch(r".+-[0-9a-f]{16}-.+", p.name)]
    assert scratch == []


def test_random_kills_lose_and_double_nothing(scenario, figures: Figures) -> None:
    root, source, expected, duration = scenario
    files = [source / relative for relative in CHOSEN]

    def check(home: Path) -> tuple[int, int]:
        state = warehouse_state(home)
        checked, lost = lost_lines(state, expected)
        assert state == expected
        return checked, lost

    trials = Trials(
        lambda name: _fresh_home(root, name, source)[0],
        Command(("ingest", *map(str, files), "--format", "csv")),
        check,
        figures,
    )
    killed = trials.at_random(RANDOM_TRIALS, duration, seed=20261123)
    assert killed >= RANDOM_TRIALS * 0.8, f"only {killed} of {RANDOM_TRIALS} runs were interrupted"
