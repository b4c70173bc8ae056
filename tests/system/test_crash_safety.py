"""Crash safety, proven: `throughline ingest` killed with SIGKILL anywhere, then run again, ends in
exactly the warehouse an undisturbed run builds (no row lost, none counted twice).

Two kinds of trial, each on a fresh home with the same files (four Northwind weeks that overlap,
Rheinland's original and restated week, and two inventory snapshots):
- a named crash point in every phase (landing, registering, staging, quarantine, the load row,
  the core commit, the ledger statuses, the catalog), reached through THROUGHLINE_CRASH_AT;
- at least 50 kills at random moments.
After each trial the command is run again, as a user would, and the warehouse must equal the
undisturbed run's and hold every invariant of CHANNEL_MODEL.md.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest

from sampledata.generator import copy_feed_specs, generate_samples
from tests.conftest import TEST_SECRET
from tests.guarantees import Figures
from warehouse.faults import CRASH_ENV, CRASH_POINTS
from warehouse.storage import storage_for_home
from warehouse.tables import scan_table

pytestmark = [pytest.mark.system, pytest.mark.long]

RANDOM_TRIALS = 50
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


def _state(home: Path) -> dict[str, object]:
    """What an analyst sees, plus the ledger per file, in a comparable form; asserts the invariants."""
    storage = storage_for_home(home / "landing", home / "warehouse")
    sellout = scan_table(storage, "sellout").collect()
    inventory = scan_table(storage, "inventory").collect()
    loads = scan_table(storage, "loads").collect()
    quarantine = scan_table(storage, "quarantine").collect()
    landed = scan_table(storage, "landed_files").collect()
    finished = loads.filter(pl.col("status") != "duplicate")
    # Invariant 1: nothing lost, per load and recounted from the tables.
    assert finished.filter(
        pl.col("rows_read") != pl.col("rows_loaded") + pl.col("rows_quarantined")
    ).is_empty()
    per_load = quarantine.group_by("load_id").len()
    for row in finished.iter_rows(named=True):
        counted = per_load.filter(pl.col("load_id") == row["load_id"])["len"].sum()
        assert counted == row["rows_quarantined"], row["source_name"]
    # No load left half done, every landed file has its own finished load.
    assert finished.filter(pl.col("status") == "staged").is_empty()
    assert set(finished["load_id"]) >= {
        f"{r['distributor_id']}-{r['sha256'][:16]}" for r in landed.iter_rows(named=True)
    }
    # Invariant 5: a line counts once. Invariant 6: lineage.
    assert sellout["line_id"].n_unique() == sellout.height
    assert (
        sellout.select(pl.sum_horizontal(pl.col("source_file", "source_row", "load_id").null_count())).item()
        == 0
    )
    return {
        "sellout": sellout.group_by("distributor_id")
        .agg(pl.len(), pl.col("quantity").sum(), pl.col("net_amount").sum().cast(pl.String))
        .sort("distributor_id")
        .rows(),
        "lines": sorted(sellout["line_id"].to_list()),
        "inventory": (inventory.height, inventory["quantity_on_hand"].sum()),
        "files": sorted(
            (r["source_name"], r["status"], r["rows_read"], r["rows_loaded"], r["rows_quarantined"])
            for r in finished.iter_rows(named=True)
        ),
        "quarantine": quarantine.height,
    }


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
    expected = _state(home)
    assert ("RH_Abverkauf_20261026.csv", "superseded") in {(f[0], f[1]) for f in expected["files"]}
    return root, source, expected, duration


def _complete(home: Path, files: list[Path]) -> None:
    process = _ingest(home, files)
    _, errors = process.communicate(timeout=600)
    assert process.returncode == 0, errors[-3000:]


def _lost(state: dict[str, object], expected: dict[str, object]) -> tuple[int, int]:
    """(rows compared, rows missing or doubled) of a trial's sell-out lines and inventory rows."""
    lines, want = list(state["lines"]), list(expected["lines"])  # type: ignore[call-overload]
    missing = len(set(want) - set(lines)) + abs(len(lines) - len(set(lines)))
    stock, want_stock = state["inventory"][0], expected["inventory"][0]  # type: ignore[index]
    return len(want) + want_stock, missing + abs(stock - want_stock)


@pytest.mark.parametrize("point", CRASH_POINTS)
def test_a_kill_at_each_phase_is_completed_by_the_next_run(scenario, point: str, figures: Figures) -> None:
    root, source, expected, _ = scenario
    home, files = _fresh_home(root, f"at-{point}", source)
    crashed = _ingest(home, files, {CRASH_ENV: point})
    crashed.communicate(timeout=600)
    assert crashed.returncode == -signal.SIGKILL, f"the run never reached {point}"
    _complete(home, files)
    state = _state(home)
    checked, lost = _lost(state, expected)
    figures.add(faults=1, rows_checked=checked, rows_lost=lost)
    assert state == expected


def test_random_kills_lose_and_double_nothing(scenario, figures: Figures) -> None:
    root, source, expected, duration = scenario
    rng = random.Random(20261123)
    killed = 0
    for trial in range(RANDOM_TRIALS):
        home, files = _fresh_home(root, f"random-{trial}", source)
        process = _ingest(home, files)
        moment = rng.uniform(0.2, duration)
        time.sleep(moment)
        interrupted = process.poll() is None
        if interrupted:
            process.send_signal(signal.SIGKILL)
            killed += 1
        else:  # it ran faster than the undisturbed run did (a busier machine then): aim inside it
            duration = moment
        process.communicate(timeout=600)
        _complete(home, files)
        state = _state(home)
        checked, lost = _lost(state, expected)
        figures.add(faults=int(interrupted), rows_checked=checked, rows_lost=lost)
        assert state == expected, f"trial {trial}"
    assert killed >= RANDOM_TRIALS * 0.8, f"only {killed} of {RANDOM_TRIALS} runs were interrupted"
