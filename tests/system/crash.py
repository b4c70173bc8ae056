"""What every kill -9 trial shares (tests/system/test_crash_*.py): run a `throughline` command in a
child process as a user would, kill it with SIGKILL at a named crash point (`warehouse.faults`) or at
a random moment of its run, run the same command again, and read the home back in a comparable form.

What belongs here: starting and killing the command, the trial loops, and the readings of a home
(the warehouse with the CHANNEL_MODEL invariants asserted, any table row for row, a folder's files)
that a test compares with an undisturbed run's. What a writer's trial runs and compares is its test's.
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from tests.conftest import REPO_ROOT, TEST_SECRET
from tests.guarantees import Figures
from warehouse.faults import CRASH_ENV
from warehouse.storage import storage_for
from warehouse.tables import scan_table

KILLED = -signal.SIGKILL
COMMAND_TIMEOUT = 600
ATTEMPTS_PER_TRIAL = 3
"""Runs a random trial may take to be killed before it finishes (`Trials.at_random`)."""


@dataclass(frozen=True)
class Command:
    """A `throughline` command line, the environment it needs beyond the home and key (secrets), and
    the exit codes that mean it finished (a pull whose file is rejected exits 1, for instance)."""

    args: tuple[str, ...]
    environ: dict[str, str] = field(default_factory=dict)
    finished_codes: tuple[int, ...] = (0,)


def start(home: Path, command: Command, crash_at: str | None = None) -> subprocess.Popen:
    """`python -m cli.main ARGS` on `home`, in a child process (killed at `crash_at` when given)."""
    env = {**os.environ, "THROUGHLINE_HOME": str(home), "THROUGHLINE_CUSTOMER_KEY_SECRET": TEST_SECRET}
    env.pop(CRASH_ENV, None)
    env.update(command.environ)
    if crash_at:
        env[CRASH_ENV] = crash_at
    return subprocess.Popen(
        [sys.executable, "-m", "cli.main", *command.args],
        env=env,
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def run_to_end(home: Path, command: Command) -> float:
    """Run the command undisturbed; its duration in seconds (it must finish)."""
    started = time.monotonic()
    process = start(home, command)
    _, errors = process.communicate(timeout=COMMAND_TIMEOUT)
    assert process.returncode in command.finished_codes, f"{command.args}: {errors[-3000:]}"
    return time.monotonic() - started


def kill_at(home: Path, command: Command, point: str) -> None:
    """Run the command until it reaches crash point `point` (it must: the point is in its path)."""
    process = start(home, command, crash_at=point)
    _, errors = process.communicate(timeout=COMMAND_TIMEOUT)
    assert process.returncode == KILLED, f"{command.args} never reached {point}: {errors[-3000:]}"


def kill_after(home: Path, command: Command, seconds: float) -> bool:
    """Start the command and SIGKILL it `seconds` later; False when it had finished by then."""
    process = start(home, command)
    time.sleep(seconds)
    interrupted = process.poll() is None
    if interrupted:
        process.send_signal(signal.SIGKILL)
    process.communicate(timeout=COMMAND_TIMEOUT)
    return interrupted


def copy_home(base: Path, target: Path) -> Path:
    """A trial's own home: a copy of a prepared one (symbolic links kept as links)."""
    shutil.copytree(base, target, symlinks=True)
    return target


Check = Callable[[Path], tuple[int, int]]
"""Reads a trial's home after the re-run and asserts it is the undisturbed one: (rows checked, rows lost)."""


@dataclass
class Trials:
    """The trials of one writer: a home per trial, the command, and how its result is checked."""

    prepare: Callable[[str], Path]
    """A fresh home for the trial named so, as the command found it in the undisturbed run."""
    command: Command
    check: Check
    figures: Figures

    def at_point(self, point: str) -> None:
        """Kill at crash point `point`, run the command again, check."""
        home = self.prepare(f"at-{point}")
        kill_at(home, self.command, point)
        self._finish(home, faults=1)

    def at_random(self, trials: int, duration: float, seed: int) -> int:
        """`trials` kills at random moments of the command's run (`duration`: an undisturbed run's
        seconds, shortened when a run finishes sooner), each followed by a re-run and a check;
        returns how many trials interrupted their run (the caller asserts most did).

        A run that finished before its moment (faster than the undisturbed one, on a machine less
        busy by then) is checked all the same, and its trial tries again, aiming inside that run."""
        rng = random.Random(seed)
        killed = 0
        for trial in range(trials):
            for attempt in range(ATTEMPTS_PER_TRIAL):
                home = self.prepare(f"random-{trial}-{attempt}")
                moment = rng.uniform(0.15 * duration, duration)
                interrupted = kill_after(home, self.command, moment)
                self._finish(home, faults=int(interrupted), trial=trial)
                if interrupted:
                    killed += 1
                    break
                duration = moment
        return killed

    def _finish(self, home: Path, *, faults: int, trial: int | None = None) -> None:
        run_to_end(home, self.command)
        checked, lost = self.check(home)
        self.figures.add(faults=faults, rows_checked=checked, rows_lost=lost)
        assert lost == 0, f"trial {trial}: {lost} row(s) lost or doubled"
        shutil.rmtree(home)  # a passed trial's home is not needed again (a failed one stays to look at)


def storage_of(home: Path, environ: dict[str, str] | None = None):
    """The home's warehouse storage; `environ`: the object-store settings of a warehouse on S3."""
    from schemas.settings import ThroughlineSettings

    return storage_for(ThroughlineSettings.for_home(home, environ or {}))


def warehouse_state(home: Path, environ: dict[str, str] | None = None) -> dict[str, object]:
    """What an analyst sees, plus the ledger per file, in a comparable form; asserts the invariants
    of CHANNEL_MODEL.md (nothing lost per load, no load left half done, a line counts once, lineage)."""
    storage = storage_of(home, environ)
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


def lost_lines(state: dict[str, object], expected: dict[str, object]) -> tuple[int, int]:
    """(rows compared, rows missing or doubled) of a `warehouse_state`'s sell-out lines and inventory rows."""
    lines, want = list(state["lines"]), list(expected["lines"])  # type: ignore[call-overload]
    missing = len(set(want) - set(lines)) + abs(len(lines) - len(set(lines)))
    stock, want_stock = state["inventory"][0], expected["inventory"][0]  # type: ignore[index]
    return len(want) + want_stock, missing + abs(stock - want_stock)


def table_rows(home: Path, name: str, leave_out: Iterable[str] = ()) -> list[str]:
    """Every row of Delta table `name` (without the columns `leave_out`), in a comparable order; [] when
    the table was never written."""
    storage = storage_of(home)
    if not storage.table_exists(name):
        return []
    frame = pl.read_delta(storage.table_uri(name), storage_options=storage.storage_options or None)
    frame = frame.drop([column for column in leave_out if column in frame.columns])
    return sorted(repr(row) for row in frame.rows())


def differing_rows(rows: list[str], expected: list[str]) -> int:
    """Rows of `expected` missing from `rows`, plus rows of `rows` that are not in `expected`."""
    have, want = Counter(rows), Counter(expected)
    return sum((want - have).values()) + sum((have - want).values())


def folder_files(folder: Path) -> dict[str, str]:
    """Every file under `folder` (hidden and temporary ones too), relative path -> SHA-256."""
    if not folder.is_dir():
        return {}
    return {
        path.relative_to(folder).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


RESOLUTION_TIMES = ("resolved_at",)
"""When a reseller was resolved: the moment of the run that resolved it, never the same twice."""
CORE_TABLES = ("sellout", "inventory")


def reference_state(home: Path) -> dict[str, object]:
    """The reference folder's files, every reference table and core table row for row, and the
    reference fingerprint core was last brought in line with; with `warehouse_state`'s invariants."""
    from ingest.enrichment import REFERENCE_FINGERPRINT
    from warehouse.reference_tables import REFERENCE_TABLES

    return {
        "warehouse": warehouse_state(home),
        "folder": folder_files(home / "reference"),
        "tables": {name: table_rows(home, name, RESOLUTION_TIMES) for name in REFERENCE_TABLES},
        "core": {name: table_rows(home, name) for name in CORE_TABLES},
        "fingerprint": storage_of(home).read_meta(REFERENCE_FINGERPRINT),
    }


def lost_reference_rows(state: dict[str, object], expected: dict[str, object]) -> tuple[int, int]:
    """(rows compared, rows missing, changed or extra) of a `reference_state`: lines, inventory, every
    reference and core table, and the reference files (one row each)."""
    checked, lost = lost_lines(state["warehouse"], expected["warehouse"])  # type: ignore[arg-type]
    for group in ("tables", "core"):
        for name, want in expected[group].items():  # type: ignore[attr-defined]
            checked += len(want)
            lost += differing_rows(state[group][name], want)  # type: ignore[index]
    files, want_files = state["folder"], expected["folder"]
    checked += len(want_files)  # type: ignore[arg-type]
    lost += len(set(files.items()) ^ set(want_files.items()))  # type: ignore[attr-defined]
    return checked, lost
