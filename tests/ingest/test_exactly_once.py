"""Exactly once: the same bytes, however and whenever they come again, load once.

The files are the sample's four Nordic weekly sell-out reports (fixed width) and four Northwind
stock reports (CSV, inventory), with the generator's truth. They are delivered again by name,
renamed as other weeks, with a new modification time and through the inbox; by the inbox and an
SFTP pull at the same moment (two `throughline` processes, against the demo's SFTP server); and
after a load was killed between writing its rows and writing its ledger row. Every time: one
finished load per file in `loads`, each line once in `sellout` and `inventory`, and totals equal
to the files' (the truth).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import polars as pl
import pytest

from ingest.context import IngestContext
from ingest.plan import plan_paths
from ingest.run import RunReport, ingest_files, settle_inbox_files
from sampledata.demo import demo_sources
from sampledata.generator import NORDIC, copy_feed_specs, generate_samples
from sampledata.truth import SampleTruth
from schemas.settings import ThroughlineSettings, resolve_customer_key
from tests.conftest import REPO_ROOT, TEST_SECRET
from tests.guarantees import Figures
from warehouse.faults import CRASH_ENV
from warehouse.storage import storage_for_home
from warehouse.tables import scan_table

pytestmark = pytest.mark.system

CHOSEN = (
    "nordic_fw/NORDIC_SO_20261019.txt",
    "nordic_fw/NORDIC_SO_20261026.txt",
    "nordic_fw/NORDIC_SO_20261102.txt",
    "nordic_fw/NORDIC_SO_20261109.txt",
    "northwind_us/NW_STOCK_20261019.csv",
    "northwind_us/NW_STOCK_20261026.csv",
    "northwind_us/NW_STOCK_20261102.csv",
    "northwind_us/NW_STOCK_20261109.csv",
)
INVENTORY = "northwind_us_inventory"
ROUNDS = (0.0, 0.2, -0.2)
"""How much earlier the inbox load starts than the SFTP pull, per round of the race (seconds)."""


@pytest.fixture(scope="module")
def drop(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SampleTruth]:
    folder = tmp_path_factory.mktemp("exactly-once") / "drop"
    return folder, generate_samples(folder)


def _home(root: Path) -> Path:
    home = root / "home"
    copy_feed_specs(home / "feeds")
    return home


def _context(home: Path) -> IngestContext:
    settings = ThroughlineSettings(home=home)
    settings.ensure_layout()
    key = resolve_customer_key(settings, {"THROUGHLINE_CUSTOMER_KEY_SECRET": TEST_SECRET})
    return IngestContext.open(settings, key)


def _deliver(home: Path, paths: list[Path]) -> RunReport:
    context = _context(home)
    incoming, problems = plan_paths(context, paths, None)
    assert problems == []
    report = ingest_files(context, incoming)
    settle_inbox_files(report, context.settings.rejected_dir)
    return report


def _env(home: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {**os.environ, "THROUGHLINE_HOME": str(home), "THROUGHLINE_CUSTOMER_KEY_SECRET": TEST_SECRET}
    env.pop(CRASH_ENV, None)
    return {**env, **(extra or {})}


def _throughline(args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "cli.main", *args],
        env=env,
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _exactly_once(home: Path, truth: SampleTruth, distributors: tuple[str, ...]) -> tuple[int, int]:
    """Assert one finished load per file and each line once, with the truth's totals; returns (rows
    checked, rows lost or doubled)."""
    storage = storage_for_home(home / "landing", home / "warehouse")
    loads = scan_table(storage, "loads").collect()
    finished = loads.filter(pl.col("status") != "duplicate")
    assert finished.group_by("distributor_id", "sha256").len()["len"].max() == 1, "a file loaded twice"
    assert set(finished["status"]) == {"loaded"}
    assert finished.height == len([f for f in CHOSEN if f.split("/")[0] in distributors])
    for row in finished.iter_rows(named=True):
        expected = truth.file(row["source_name"].replace("_resent", ""))
        assert (row["rows_read"], row["rows_loaded"]) == (expected.rows_read, expected.rows_loaded)
    sellout = scan_table(storage, "sellout").collect()
    inventory = scan_table(storage, "inventory").collect()
    assert sellout["line_id"].n_unique() == sellout.height, "a sell-out line twice"
    assert inventory["line_id"].n_unique() == inventory.height, "an inventory line twice"
    nordic = truth.sellout[NORDIC]
    stock = truth.inventory[INVENTORY]
    got = (
        sellout.height,
        int(sellout["quantity"].sum()),
        sellout["net_amount"].sum(),
        inventory.height,
        int(inventory["quantity_on_hand"].sum()),
    )
    want = (nordic.lines, nordic.quantity, nordic.net_amount_total, stock.rows, stock.quantity_on_hand)
    if "northwind_us" not in distributors:
        want = (*want[:3], 0, 0)
    lost = abs(got[0] - want[0]) + abs(got[3] - want[3])
    assert got == want
    return sellout.height + inventory.height, lost


def test_the_same_bytes_delivered_again_load_once(
    drop: tuple[Path, SampleTruth], tmp_path: Path, figures: Figures
) -> None:
    source, truth = drop
    home = _home(tmp_path)
    files = [source / name for name in CHOSEN]
    first = _deliver(home, files)
    assert {o.load.status for o in first.outcomes} == {"loaded"}

    renamed, touched = tmp_path / "renamed", tmp_path / "touched"
    renamed.mkdir()
    touched.mkdir()
    later = time.time() + 3600
    resent: list[list[Path]] = [files, [], [], []]
    for path in files:
        stamp = path.stem.rsplit("_", 1)[1]
        week = (date.fromisoformat(f"{stamp[:4]}-{stamp[4:6]}-{stamp[6:]}") + timedelta(weeks=5)).strftime(
            "%Y%m%d"
        )
        resent[1].append(shutil.copy2(path, renamed / path.name.replace(stamp, week)))  # "another week"
        resent[2].append(shutil.copy2(path, touched / path.name))
        os.utime(resent[2][-1], (later, later))
        inbox = home / "inbox" / path.parent.name
        inbox.mkdir(parents=True, exist_ok=True)
        resent[3].append(shutil.copy2(path, inbox / path.name))
    for delivery in resent:
        report = _deliver(home, [Path(p) for p in delivery])
        assert [o.load.status for o in report.outcomes] == ["duplicate"] * len(CHOSEN)
    assert not any((home / "inbox").rglob("*.*")), "inbox files leave the inbox once recorded"
    storage = storage_for_home(home / "landing", home / "warehouse")
    assert scan_table(storage, "loads").filter(pl.col("status") == "duplicate").collect().height == 4 * len(
        CHOSEN
    )

    checked, lost = _exactly_once(home, truth, ("nordic_fw", "northwind_us"))
    figures.add(trials=len(resent), faults=len(resent) * len(CHOSEN), rows_checked=checked, rows_lost=lost)


def test_inbox_and_sftp_delivering_the_same_files_at_once_load_them_once(
    drop: tuple[Path, SampleTruth], tmp_path: Path, figures: Figures
) -> None:
    _, truth = drop
    for number, lead in enumerate(ROUNDS):
        home = _home(tmp_path / f"round-{number}")
        generate_samples(home / "inbox")
        for folder in (home / "inbox").iterdir():
            if folder.name != NORDIC:
                shutil.rmtree(folder)
        with demo_sources(home) as sources:  # Nordic's files move to the SFTP server
            env = _env(home, sources.environ)
            look = _throughline(["pull", "--distributor", NORDIC], env)
            _, errors = look.communicate(timeout=300)
            assert look.returncode == 0, errors[-3000:]
            served = sorted((home / "demo-servers" / "sftp" / "outbound").glob("*.txt"))
            assert len(served) == 4
            inbox = home / "inbox" / NORDIC
            dropped = [shutil.copy2(path, inbox / path.name) for path in served]
            ingest = ["ingest", *map(str, dropped), "--format", "json"]
            pull = ["pull", "--distributor", NORDIC, "--format", "json"]
            first, second = (pull, ingest) if lead < 0 else (ingest, pull)
            racers = [_throughline(first, env)]
            time.sleep(abs(lead))
            racers.append(_throughline(second, env))
            said = {}
            for racer in racers:
                out, errors = racer.communicate(timeout=600)
                assert racer.returncode == 0, errors[-3000:]
                said[racer.args[3]] = json.loads(out)
        # Both channels delivered every file (each process loads what it receives, or finds it a duplicate).
        assert [row["fetched"] for row in said["pull"]] == [len(served)]
        assert sorted(row["source_name"] for row in said["ingest"]) == [path.name for path in served]
        assert {row["status"] for row in said["ingest"]} <= {"loaded", "duplicate"}
        storage = storage_for_home(home / "landing", home / "warehouse")
        loads = scan_table(storage, "loads").collect()
        assert set(loads["channel"]) <= {"folder", "sftp"} and loads.height <= 2 * len(served)
        assert not any(inbox.iterdir())
        checked, lost = _exactly_once(home, truth, (NORDIC,))
        figures.add(trials=1, faults=len(served), rows_checked=checked, rows_lost=lost)


@pytest.mark.parametrize("point", ["after_staging", "after_quarantine", "after_core_commit"])
def test_a_crash_between_the_data_and_the_ledger_write_is_finished_once(
    drop: tuple[Path, SampleTruth], tmp_path: Path, point: str, figures: Figures
) -> None:
    source, truth = drop
    home = _home(tmp_path)
    files = [source / name for name in CHOSEN]
    crashed = _throughline(["ingest", *map(str, files)], _env(home, {CRASH_ENV: point}))
    crashed.communicate(timeout=600)
    assert crashed.returncode == -signal.SIGKILL, f"the run never reached {point}"
    storage = storage_for_home(home / "landing", home / "warehouse")
    statuses = scan_table(storage, "loads").select("status").collect()["status"].to_list()
    assert "loaded" not in statuses, "killed before any load finished"

    again = tmp_path / "again"  # the same bytes, under other names, with a new modification time
    again.mkdir()
    resent = []
    for path in files:
        copy = Path(shutil.copy2(path, again / f"{path.stem}_resent{path.suffix}"))
        os.utime(copy, (time.time(), time.time()))
        resent.append(copy)
    report = _deliver(home, resent)
    assert {o.load.status for o in report.outcomes} == {"loaded"}
    duplicates = _deliver(home, files)
    assert {o.load.status for o in duplicates.outcomes} == {"duplicate"}

    checked, lost = _exactly_once(home, truth, ("nordic_fw", "northwind_us"))
    figures.add(trials=1, faults=1 + len(resent), rows_checked=checked, rows_lost=lost)
