"""The landing retention job and its schedule: the job, run in-process on a home whose Northwind files
arrived longer ago than the retention period, deletes exactly those from landing, records each in
`landing_changes` (the catalog view shows them), changes no row, and lists without deleting on a dry
run; the daily schedule runs from the start and skips its tick while other runs are under way."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
from polars.testing import assert_frame_equal

from pipelines.definitions import build_defs
from pipelines.retention import LANDING_RETENTION, RetentionConfig, apply_landing_retention
from pipelines.schedules import LANDING_RETENTION_DAILY
from sampledata.generator import copy_feed_specs, generate_samples
from sampledata.reference import copy_reference
from schemas.settings import DEFAULT_LANDING_RETENTION_DAYS, ThroughlineSettings
from tests.conftest import ingest_inbox, query_home
from tests.traces import home_tables
from warehouse.storage import storage_for_home
from warehouse.tables import scan_table, update_rows

OLD = "northwind_us"
"""The distributor whose files are made to have arrived before the retention period."""


def _landing(home: Path) -> set[str]:
    return {
        p.name.split(".")[0]
        for p in (home / "landing").rglob("*")
        if p.is_file() and ".incoming" not in p.parts
    }


def _run(
    home: Path, instance: dg.DagsterInstance, config: RetentionConfig, *, raise_on_error: bool = True
) -> dg.ExecuteInProcessResult:
    job = build_defs(home).get_job_def(LANDING_RETENTION)
    return job.execute_in_process(
        run_config={"ops": {apply_landing_retention.name: {"config": config.model_dump()}}},
        instance=instance,
        raise_on_error=raise_on_error,
    )


def test_the_retention_job_deletes_the_old_landing_files_and_records_them(home: Path) -> None:
    copy_feed_specs(home / "feeds")
    copy_reference(home / "reference")
    generate_samples(home / "inbox")
    ingest_inbox(home)
    settings = ThroughlineSettings(home=home)
    storage = storage_for_home(settings.landing_dir, settings.warehouse_dir)
    days = DEFAULT_LANDING_RETENTION_DAYS + 1
    update_rows(
        storage,
        "landed_files",
        f"distributor_id = '{OLD}'",
        {"received_at": f"received_at - INTERVAL '{days} days'"},
    )
    landed = scan_table(storage, "landed_files").collect()
    old = set(landed.filter(landed["distributor_id"] == OLD)["sha256"])
    assert len(old) == 8 and _landing(home) == set(landed["sha256"])  # Northwind's sales and stock
    before = home_tables(home)

    with dg.instance_for_test() as instance:
        dry = _run(home, instance, RetentionConfig(dry_run=True))
        assert dry.success
        metadata = _metadata(dry)
        assert (metadata["purged"], metadata["dry_run"], metadata["days"]) == (8, True, 730)
        assert _landing(home) == set(landed["sha256"]), "a dry run deletes nothing"

        result = _run(home, instance, RetentionConfig())
        assert result.success and _metadata(result)["purged"] == 8
        assert _landing(home) == set(landed["sha256"]) - old
        changes = query_home(home, "SELECT distributor_id, sha256, action, reason FROM landing_changes")
        assert sorted(changes["sha256"]) == sorted(old)
        assert set(changes["distributor_id"]) == {OLD} and set(changes["action"]) == {"purged"}
        assert set(changes["reason"]) == {"landing retention: 730 days"}
        after = home_tables(home)
        for table, frame in before.items():
            assert_frame_equal(after[table], frame)

        again = _run(home, instance, RetentionConfig())
        assert _metadata(again)["purged"] == 0, "a purged file is purged once"


def _metadata(result: dg.ExecuteInProcessResult) -> dict:
    (event,) = [e for e in result.all_node_events if e.event_type_value == "STEP_OUTPUT"]
    return {key: value.value for key, value in event.step_output_data.metadata.items()}


def test_the_daily_schedule_runs_from_the_start_and_skips_while_runs_are_under_way(home: Path) -> None:
    schedule = build_defs(home).get_repository_def().get_schedule_def(LANDING_RETENTION_DAILY)
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    assert (schedule.cron_schedule, schedule.execution_timezone, schedule.job_name) == (
        "0 3 * * *",
        "UTC",
        LANDING_RETENTION,
    )
    tick = datetime(2026, 11, 24, 3, 0, tzinfo=UTC)
    with dg.instance_for_test() as instance:
        (request,) = schedule.evaluate_tick(
            dg.build_schedule_context(instance=instance, scheduled_execution_time=tick)
        ).run_requests
        assert request.run_key == "2026-11-24"
        instance.add_run(
            dg.DagsterRun(job_name="ingest", run_id="a-load", status=dg.DagsterRunStatus.STARTED)
        )
        skipped = schedule.evaluate_tick(
            dg.build_schedule_context(instance=instance, scheduled_execution_time=tick)
        )
        assert skipped.run_requests == [] and "under way" in (skipped.skip_message or "")
        # Launched by hand meanwhile, the job refuses to start, saying why.
        refused = _run(home, instance, RetentionConfig(), raise_on_error=False)
        assert not refused.success
        (failure,) = [e for e in refused.all_events if e.event_type_value == "STEP_FAILURE"]
        assert "a-load" in failure.step_failure_data.user_failure_data.description
