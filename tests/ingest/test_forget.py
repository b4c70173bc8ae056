"""`throughline forget`: one end customer's identity and key leave every file under the home
(landing included), every other line stays as it was, and nothing loads twice afterwards.

Real sample feeds are loaded through the real ingest path; the erasure runs as the command does
(in-process `cli.main.main`); the home is then searched byte by byte and row by row (tests/traces.py).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from cli.main import main
from ingest.context import IngestContext
from ingest.retention import apply_retention
from sampledata.generator import copy_feed_specs, generate_samples
from sampledata.reference import copy_reference
from schemas.feed_spec import END_CUSTOMER_IDENTITY_FIELDS
from schemas.rules import raw
from schemas.settings import ThroughlineSettings, resolve_customer_key
from tests.conftest import REPO_ROOT, TEST_SECRET, ingest_inbox
from tests.guarantees import Figures
from tests.ingest.test_privacy_every_format import (
    EXPECTED,
    FILE_NAMES,
    QUARANTINED,
    SHARED_VARIANTS,
    SPECS,
    VALID,
    WRITERS,
)
from tests.traces import files_holding, home_tables
from transforms.normalize import end_customer_key
from warehouse.faults import CRASH_ENV, ERASURE_CRASH_POINTS
from warehouse.retention import LANDING_CHANGES
from warehouse.storage import storage_for_home
from warehouse.tables import scan_table

pytestmark = pytest.mark.system

NAME = "Stadtwerke Bergheim GmbH"
EMAIL = "einkauf@stadtwerke-bergheim.example"
ADDRESS = "Bahnhofstraße 3\n50126 Bergheim"
"""One of Rheinland's end customers in the sample (a cp1252 CSV whose addresses span lines)."""
LINEAGE = ["source_file", "ingested_at"]
"""Columns a re-run load rewrites: its rows now name the redacted copy, and when they were loaded."""


def _key(name: str | None, email: str | None, phone: str | None, address: str | None) -> str:
    values = (name, email, phone, address)
    frame = pl.DataFrame(
        {raw(field): [value] for field, value in zip(END_CUSTOMER_IDENTITY_FIELDS, values, strict=True)},
        schema={raw(field): pl.String for field in END_CUSTOMER_IDENTITY_FIELDS},
    )
    return frame.select(end_customer_key(TEST_SECRET)).item()


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A home loaded with the sample feeds (kept pristine: tests copy it), and the same files again."""
    root = tmp_path_factory.mktemp("forget")
    home = root / "home"
    copy_feed_specs(home / "feeds")
    copy_reference(home / "reference")
    generate_samples(home / "inbox")
    ingest_inbox(home)
    generate_samples(root / "again")  # the same seed: the same bytes
    return home, root / "again"


@pytest.fixture
def home(sample: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    copy = tmp_path / "home"
    shutil.copytree(sample[0], copy, symlinks=True)
    monkeypatch.setenv("THROUGHLINE_HOME", str(copy))
    monkeypatch.setenv("THROUGHLINE_CUSTOMER_KEY_SECRET", TEST_SECRET)
    return copy


def test_forget_leaves_no_trace_and_changes_no_other_line(
    sample: tuple[Path, Path], home: Path, capsys: pytest.CaptureFixture[str], figures: Figures
) -> None:
    key = _key(NAME, EMAIL, None, ADDRESS)
    traces = [NAME, EMAIL, *ADDRESS.split("\n"), key, key[:32]]
    assert files_holding(home, traces), "the sample names the customer before the erasure"
    before = home_tables(home)
    theirs = pl.col("end_customer_key") == key
    assert before["sellout"].filter(theirs).height > 0

    code, out, err = _run(
        [
            "forget",
            "--email",
            " EINKAUF@Stadtwerke-Bergheim.example",
            "--reference",
            "REQ-2041",
            "--format",
            "json",
        ],
        capsys,
    )
    assert code == 0, err
    files = json.loads(out)
    assert {row["status"] for row in files} == {"redacted"} and len(files) == 5
    assert sum(row["records"] for row in files) >= before["sellout"].filter(theirs).height
    assert files_holding(home, traces) == {}

    after = home_tables(home)
    lost = _compare_lines(before, after, key)
    timing = ["source_file", "started_at", "finished_at"]
    assert_frame_equal(before["loads"].drop(timing), after["loads"].drop(timing))
    storage = storage_for_home(home / "landing", home / "warehouse")
    changes = scan_table(storage, LANDING_CHANGES).collect()
    redacted = after["loads"].filter(pl.col("load_id").is_in([row["load_id"] for row in files]))
    assert sorted(changes["sha256"]) == sorted(redacted["sha256"]) and set(changes["reason"]) == {"REQ-2041"}
    assert set(changes["replaced_by"]) == set(redacted["source_file"])
    assert all(storage.local_path(path).is_file() for path in changes["replaced_by"])
    assert not any(storage.local_path(path).exists() for path in changes["source_file"])

    # The same bytes sent again, through the inbox: duplicates, and the erased bytes stay out of landing.
    shutil.copytree(sample[1], home / "inbox", dirs_exist_ok=True)
    report = ingest_inbox(home)
    assert {o.load.status for o in report.outcomes} == {"duplicate"} and len(report.outcomes) == 29
    assert files_holding(home, traces) == {}
    assert_frame_equal(home_tables(home)["sellout"], after["sellout"])

    # Re-processing every landed file reads the redacted copies: the same lines, once.
    code, _, err = _run(["reprocess", "--format", "csv"], capsys)
    assert code == 0, err
    again = home_tables(home)
    assert_frame_equal(again["sellout"].drop(LINEAGE), after["sellout"].drop(LINEAGE))
    assert_frame_equal(again["quarantine"].drop(LINEAGE), after["quarantine"].drop(LINEAGE))
    assert files_holding(home, traces) == {}
    figures.add(
        trials=1,
        faults=len(report.outcomes),
        rows_checked=before["sellout"].height + before["quarantine"].height + before["loads"].height,
        rows_lost=lost,
    )
    assert lost == 0


def _compare_lines(before: dict[str, pl.DataFrame], after: dict[str, pl.DataFrame], key: str) -> int:
    """Rows of `before` not found as they must be in `after` (the customer's without their key)."""
    theirs = pl.col("end_customer_key") == key
    old = before["sellout"].with_columns(
        pl.when(theirs).then(None).otherwise(pl.col("end_customer_key")).alias("end_customer_key")
    )
    new = after["sellout"]
    assert new.filter(theirs).height == 0
    assert new.height == old.height
    assert new.group_by("load_id").len().sort("load_id").equals(old.group_by("load_id").len().sort("load_id"))
    missing = old.drop(LINEAGE).join(
        new.drop(LINEAGE), on=old.drop(LINEAGE).columns, how="anti", nulls_equal=True
    )
    quarantine = ["load_id", "source_row", "rule", "message"]
    assert before["quarantine"].select(quarantine).equals(after["quarantine"].select(quarantine))
    return missing.height


def test_forget_erases_a_customer_from_every_format(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], figures: Figures
) -> None:
    """The customer every privacy-test format names (csv, xlsx, fixed width, json, jsonl, X12 867),
    each in its own case and spacing, found by one e-mail and erased from each file."""
    home = tmp_path / "home"
    settings = ThroughlineSettings(home=home)
    settings.ensure_layout()
    for distributor, text in SPECS.items():
        (settings.feeds_dir / f"{distributor}.yaml").write_text(text, encoding="utf-8")
    for tag, (distributor, _, _) in EXPECTED.items():
        (settings.inbox_dir / distributor).mkdir(parents=True)
        WRITERS[tag](settings.inbox_dir / distributor / FILE_NAMES[tag])
    ingest_inbox(home)
    monkeypatch.setenv("THROUGHLINE_HOME", str(home))
    monkeypatch.setenv("THROUGHLINE_CUSTOMER_KEY_SECRET", TEST_SECRET)
    shared = [value for customer in SHARED_VARIANTS.values() for value in customer.values]
    shared += [piece for customer in SHARED_VARIANTS.values() for piece in customer.street.split(", ")]
    others = [VALID[tag].email for tag in VALID] + [QUARANTINED[tag].name for tag in QUARANTINED]
    key = _key(*SHARED_VARIANTS["csv"].values)
    before = home_tables(home)
    assert before["sellout"].filter(pl.col("end_customer_key") == key).height == len(EXPECTED)
    assert len(files_holding(home / "landing", shared)) == len(files_holding(home / "landing", others)) == 6

    code, out, err = _run(["forget", "--email", "ZS@example.test", "--format", "json"], capsys)
    assert code == 0, err
    assert sorted(row["distributor_id"] for row in json.loads(out) if row["status"] == "redacted") == sorted(
        distributor for distributor, _, _ in EXPECTED.values()
    )
    assert files_holding(home, [*shared, key, key[:32]]) == {}
    still = files_holding(home / "landing", others)
    assert {value for values in still.values() for value in values} == {v.lower() for v in others}

    after = home_tables(home)
    lost = _compare_lines(before, after, key)
    counts = ["load_id", "status", "rows_read", "rows_loaded", "rows_quarantined", "rows_skipped"]
    assert before["loads"].select(counts).equals(after["loads"].select(counts))
    figures.add(
        trials=len(EXPECTED),
        rows_checked=before["sellout"].height + before["quarantine"].height + before["loads"].height,
        rows_lost=lost,
    )
    assert lost == 0


def _digest(folder: Path) -> dict[str, str]:
    return {
        path.relative_to(folder).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def test_a_dry_run_changes_no_byte_and_an_empty_request_is_refused(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _digest(home)
    code, out, err = _run(["forget", "--name", NAME.upper(), "--dry-run", "--format", "csv"], capsys)
    assert code == 0, err
    assert out.count("would redact") == 5 and "dry run: nothing changed" in err
    assert NAME not in out + err and EMAIL not in out + err, "the command never prints what it erases"
    assert _digest(home) == before
    code, _, err = _run(["forget", "--name", "  "], capsys)
    assert code == 2 and "name the customer" in err
    code, out, err = _run(["forget", "--email", "nobody@nowhere.example"], capsys)
    assert code == 0 and "0 record(s) in 0 landed file(s)" in err


@pytest.mark.parametrize("point", ERASURE_CRASH_POINTS)
def test_an_interrupted_erasure_is_finished_by_running_it_again(
    home: Path, point: str, capsys: pytest.CaptureFixture[str], figures: Figures
) -> None:
    key = _key(NAME, EMAIL, None, ADDRESS)
    traces = [NAME, EMAIL, *ADDRESS.split("\n"), key, key[:32]]
    before = home_tables(home)
    killed = subprocess.run(
        [sys.executable, "-m", "cli.main", "forget", "--email", EMAIL],
        env={**os.environ, CRASH_ENV: point},
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert killed.returncode == -signal.SIGKILL, f"the erasure never reached {point}: {killed.stderr[-2000:]}"
    assert files_holding(home, traces), "interrupted: something of the customer is still there"

    code, _, err = _run(["forget", "--email", EMAIL], capsys)
    assert code == 0, err
    assert files_holding(home, traces) == {}
    after = home_tables(home)
    lost = _compare_lines(before, after, key)
    counts = ["load_id", "status", "rows_read", "rows_loaded", "rows_quarantined", "rows_skipped"]
    assert before["loads"].select(counts).equals(after["loads"].select(counts))
    figures.add(faults=1, rows_checked=before["sellout"].height + before["loads"].height, rows_lost=lost)
    assert lost == 0


def test_forget_reaches_rows_whose_landed_file_was_purged(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = _key(NAME, EMAIL, None, ADDRESS)
    settings = ThroughlineSettings.from_env()
    context = IngestContext.open(settings, resolve_customer_key(settings))
    apply_retention(context, now=datetime.now(UTC) + timedelta(days=settings.landing_retention_days + 1))
    before = home_tables(home)
    assert before["sellout"].filter(pl.col("end_customer_key") == key).height > 0

    code, _, err = _run(["forget", "--email", EMAIL], capsys)  # nothing in landing names them now
    assert code == 0 and "0 record(s) in 0 landed file(s)" in err and "0 end_customer_key" in err
    code, _, err = _run(["forget", "--name", NAME, "--email", EMAIL, "--address", ADDRESS], capsys)
    assert code == 0, err
    assert "1 end_customer_key value(s)" in err
    assert files_holding(home, [key, key[:32]]) == {}
    assert _compare_lines(before, home_tables(home), key) == 0
