"""The landing retention period: old landing files go, recorded in the ledger; every row stays; the
same bytes sent again are duplicates that do not come back; a file whose load never finished stays.

The sample is loaded through the real ingest path, then the retention period is applied as of two
years and a day later (`apply_retention(now=...)`), and through the command as of today.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from polars.testing import assert_frame_equal

from cli.main import main
from ingest.context import IngestContext
from ingest.receive import receive_file
from ingest.retention import apply_retention
from sampledata.generator import copy_feed_specs, generate_samples
from sampledata.reference import copy_reference
from schemas.settings import DEFAULT_LANDING_RETENTION_DAYS, ThroughlineSettings, resolve_customer_key
from tests.conftest import TEST_SECRET, ingest_inbox
from tests.guarantees import Figures
from tests.traces import home_tables
from warehouse.retention import LANDING_CHANGES, PURGED
from warehouse.tables import scan_table

pytestmark = pytest.mark.system

LATER = datetime.now(UTC) + timedelta(days=DEFAULT_LANDING_RETENTION_DAYS + 1)


def _landing(home: Path) -> list[Path]:
    return sorted(p for p in (home / "landing").rglob("*") if p.is_file() and ".incoming" not in p.parts)


def test_retention_deletes_old_landing_files_and_keeps_every_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], figures: Figures
) -> None:
    home = tmp_path / "home"
    copy_feed_specs(home / "feeds")
    copy_reference(home / "reference")
    generate_samples(home / "inbox")
    ingest_inbox(home)
    monkeypatch.setenv("THROUGHLINE_HOME", str(home))
    monkeypatch.setenv("THROUGHLINE_CUSTOMER_KEY_SECRET", TEST_SECRET)
    settings = ThroughlineSettings.from_env()
    context = IngestContext.open(settings, resolve_customer_key(settings))
    before = home_tables(home)
    landed = scan_table(context.storage, "landed_files").collect()
    assert len(_landing(home)) == landed.height == 29

    assert main(["retention", "--format", "csv"]) == 0, "received today: nothing is old enough"
    assert len(_landing(home)) == 29 and "0 file(s) received before" in capsys.readouterr().err

    dry = apply_retention(context, now=LATER, dry_run=True)
    assert len(dry.purged) == 29 and len(_landing(home)) == 29
    run = apply_retention(context, now=LATER)
    assert sorted(f.sha256 for f in run.purged) == sorted(landed["sha256"]) and run.unfinished == []
    assert _landing(home) == []
    changes = scan_table(context.storage, LANDING_CHANGES).collect()
    assert changes.height == 29 and set(changes["action"]) == {PURGED}
    assert set(changes["reason"]) == {f"landing retention: {DEFAULT_LANDING_RETENTION_DAYS} days"}
    assert sorted(changes["sha256"]) == sorted(landed["sha256"])
    after = home_tables(home)
    for table, frame in before.items():
        assert_frame_equal(after[table], frame)
    assert apply_retention(context, now=LATER).purged == [], "a purged file is purged once"

    # The same bytes sent again: duplicates, and landing stays empty.
    generate_samples(home / "inbox")
    report = ingest_inbox(home)
    assert {o.load.status for o in report.outcomes} == {"duplicate"} and len(report.outcomes) == 29
    assert _landing(home) == []
    for table in ("sellout", "inventory", "quarantine"):
        assert_frame_equal(home_tables(home)[table], before[table])

    # Re-processing passes purged files over (re-running them would reject them and drop their rows).
    assert main(["reprocess", "--distributor", "rheinland_de"]) == 0
    assert "purged from landing (retention period)" in capsys.readouterr().err
    assert_frame_equal(home_tables(home)["sellout"], before["sellout"])

    # A file whose load never finished is kept, however old.
    drop = tmp_path / "other"
    generate_samples(drop, seed=8)
    pending = receive_file(
        context, drop / "nordic_fw" / "NORDIC_SO_20261109.txt", distributor_id="nordic_fw", channel="cli"
    )
    assert pending.kind == "new"
    run = apply_retention(context, now=LATER)
    assert run.purged == [] and [f.sha256 for f in run.unfinished] == [pending.landed.sha256]
    assert _landing(home) == [context.storage.local_path(pending.landed.source_file)]

    rows = sum(frame.height for frame in before.values())
    lost = sum(
        frame.join(home_tables(home)[table], on=frame.columns, how="anti", nulls_equal=True).height
        for table, frame in before.items()
        if table != "loads"
    )
    figures.add(trials=1, faults=len(report.outcomes), rows_checked=rows, rows_lost=lost)
    assert lost == 0
