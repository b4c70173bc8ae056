"""A file no spec reads is rejected with a reason, kept in landing, moved aside; unsafe files never land."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.context import IngestContext
from ingest.plan import plan_paths
from ingest.run import ingest_files, settle_inbox_files
from sampledata.generator import copy_feed_specs
from schemas.settings import ThroughlineSettings, resolve_customer_key
from warehouse.ledger import read_loads


@pytest.fixture
def context(home: Path) -> IngestContext:
    settings = ThroughlineSettings.from_env()
    settings.ensure_layout()
    copy_feed_specs(settings.feeds_dir)
    return IngestContext.open(settings, resolve_customer_key(settings))


def test_file_matching_no_spec_is_rejected_and_moved_aside(context: IngestContext) -> None:
    settings = context.settings
    stray = settings.inbox_dir / "northwind_us" / "holiday_photos.csv"
    stray.parent.mkdir(parents=True)
    stray.write_text("a,b\n1,2\n", encoding="utf-8")
    incoming, problems = plan_paths(context, [stray], None)
    assert problems == [] and [i.channel for i in incoming] == ["folder"]
    settle_inbox_files(ingest_files(context, incoming), settings.rejected_dir)

    loads = read_loads(context.storage)
    assert loads["status"].to_list() == ["rejected"]
    error = loads["error"][0]
    assert (
        "'holiday_photos.csv' matches none of distributor 'northwind_us''s file patterns ['NW_SALES_*.csv', 'NW_STOCK_*.csv']"
        in error
    )
    assert not stray.exists()
    moved = settings.rejected_dir / "northwind_us" / "holiday_photos.csv"
    assert moved.read_text(encoding="utf-8") == "a,b\n1,2\n"
    assert Path(f"{moved}.error.txt").read_text(encoding="utf-8").strip() == error
    landed = context.storage.local_path(loads["source_file"][0])
    assert landed.read_text(encoding="utf-8") == "a,b\n1,2\n"  # kept in landing


def test_a_symlink_in_the_inbox_is_refused_and_never_landed(context: IngestContext, tmp_path: Path) -> None:
    secret = tmp_path / "passwd"
    secret.write_text("root:x:0:0:root:/root:/bin/bash\n", encoding="utf-8")
    link = context.settings.inbox_dir / "northwind_us" / "NW_SALES_20261102.csv"
    link.parent.mkdir(parents=True)
    link.symlink_to(secret)
    incoming, problems = plan_paths(context, [link], None)
    assert incoming == []
    assert problems == [f"{link} is a symbolic link: only regular files are received"]
    assert not context.settings.landing_dir.exists() or not any(context.settings.landing_dir.rglob("*"))


def test_an_unsafe_distributor_id_is_refused(context: IngestContext, tmp_path: Path) -> None:
    report = tmp_path / "NW_SALES_20261102.csv"
    report.write_text("x\n", encoding="utf-8")
    incoming, problems = plan_paths(context, [report], "../../x")
    assert incoming == []
    assert len(problems) == 1 and "../../x" in problems[0]
    assert not (context.settings.home.parent / "x.lock").exists()


def test_a_newline_in_a_file_name_cannot_forge_a_log_line(context: IngestContext, tmp_path: Path) -> None:
    from ingest.route import printable

    assert printable("NW_SALES_20261102.csv\nloaded OK") == "NW_SALES_20261102.csv\\x0aloaded OK"
