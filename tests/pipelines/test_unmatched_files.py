"""An inbox file that matches no feed spec is rejected with a reason, kept in landing and moved aside."""

from __future__ import annotations

from pathlib import Path

from pipelines.runner import group_files, run_partitions
from sampledata.generator import copy_feed_specs
from schemas.settings import ThroughlineSettings
from warehouse.ledger import read_loads
from warehouse.storage import storage_for_home


def test_file_matching_no_spec_is_rejected_and_moved_aside(home: Path) -> None:
    settings = ThroughlineSettings.from_env()
    settings.ensure_layout()
    copy_feed_specs(settings.feeds_dir)
    stray = settings.inbox_dir / "northwind_us" / "holiday_photos.csv"
    stray.parent.mkdir(parents=True)
    stray.write_text("a,b\n1,2\n", encoding="utf-8")

    groups, problems = group_files(settings, [stray], None)
    assert problems == []
    runs = run_partitions(settings, groups, channel="folder", report=lambda _: None)
    assert [run.success for run in runs] == [True]

    loads = read_loads(storage_for_home(settings.landing_dir, settings.warehouse_dir))
    assert loads["status"].to_list() == ["rejected"]
    error = loads["error"][0]
    assert "'holiday_photos.csv' matches none of distributor 'northwind_us''s file patterns" in error
    assert "NW_SALES_*.csv" in error or "file_patterns" in error
    assert not stray.exists()
    moved = settings.rejected_dir / "northwind_us" / "holiday_photos.csv"
    assert moved.read_text(encoding="utf-8") == "a,b\n1,2\n"
    assert Path(f"{moved}.error.txt").read_text(encoding="utf-8").strip() == error
    landed = storage_for_home(settings.landing_dir, settings.warehouse_dir).local_path(
        loads["source_file"][0]
    )
    assert landed.read_text(encoding="utf-8") == "a,b\n1,2\n"  # kept in landing
