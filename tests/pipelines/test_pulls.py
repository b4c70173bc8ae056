"""Pulls in Dagster: a sensor per SFTP source, a schedule per API source, and the pull job they
launch, against the demo's real SFTP server and API simulator on 127.0.0.1."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
import yaml
from dagster._serdes import serialize_value

from pipelines.definitions import build_defs
from pipelines.pulls import HOST_TAG, SPEC_TAG, pool_of
from pipelines.resources import ThroughlineResource
from pipelines.sensors import READY_TAG, SourceUnavailableError
from sampledata.demo import SFTP_PASSWORD_ENV, DemoSources, demo_sources
from sampledata.generator import copy_feed_specs, generate_samples
from schemas.feed_spec import load_spec_catalog
from schemas.settings import ThroughlineSettings
from tests.conftest import REPO_ROOT
from warehouse.storage import storage_for_home
from warehouse.tables import scan_table

SFTP_SPEC, API_SPEC = "nordic_fw", "pacific_api"


@pytest.fixture
def demo(home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[DemoSources]:
    """The sample specs and files, with nordic_fw served over SFTP and pacific_api by the API simulator."""
    copy_feed_specs(home / "feeds")
    generate_samples(home / "inbox")
    with demo_sources(home) as sources:
        for name, value in sources.environ.items():
            monkeypatch.setenv(name, value)
        yield sources


def _loads(home: Path) -> pl.DataFrame:
    settings = ThroughlineSettings(home=home)
    return scan_table(storage_for_home(settings.landing_dir, settings.warehouse_dir), "loads").collect()


def _tick(defs: dg.Definitions, instance: dg.DagsterInstance, home: Path, cursor: str | None):
    sensor = defs.get_repository_def().get_sensor_def(f"pull_{SFTP_SPEC}_sensor")
    with dg.build_sensor_context(
        instance=instance, cursor=cursor, resources={"throughline": ThroughlineResource(home=str(home))}
    ) as context:
        return sensor(context)


def _said(instance: dg.DagsterInstance, run_id: str) -> str:
    """Everything the run's event log holds, messages and structured events alike."""
    return "\n".join(serialize_value(entry) for entry in instance.all_logs(run_id))


def test_one_sensor_per_sftp_source_and_one_schedule_per_api_source(home: Path, demo: DemoSources) -> None:
    defs = build_defs(home)
    repository = defs.get_repository_def()
    assert {s.name for s in repository.sensor_defs} == {
        "inbox_sensor",
        "report_calendar",
        f"pull_{SFTP_SPEC}_sensor",
    }
    assert {s.name for s in repository.schedule_defs} == {
        "marts_daily",
        "landing_retention_daily",
        f"pull_{API_SPEC}_schedule",
    }
    sensor = repository.get_sensor_def(f"pull_{SFTP_SPEC}_sensor")
    assert (sensor.job_name, sensor.minimum_interval_seconds) == (f"pull_{SFTP_SPEC}", 300)
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    schedule = repository.get_schedule_def(f"pull_{API_SPEC}_schedule")
    assert (schedule.job_name, schedule.cron_schedule, schedule.execution_timezone) == (
        f"pull_{API_SPEC}",
        "0 6 * * *",
        "UTC",
    )
    for spec_id, kind in ((SFTP_SPEC, "sftp"), (API_SPEC, "api")):
        (node,) = repository.get_job(f"pull_{spec_id}").nodes
        assert node.definition.pool is not None and node.definition.pool.startswith(f"pull/{kind}/127.0.0.1:")
        assert node.definition.retry_policy is not None

    (home / "dagster").mkdir(parents=True)  # what the code server loads, from THROUGHLINE_HOME's specs
    result = subprocess.run(
        [str(Path(sys.executable).with_name("dagster")), "definitions", "validate", "-w", "workspace.yaml"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert "Validation successful" in result.stdout + result.stderr, result.stdout + result.stderr


def test_a_bad_spec_never_stops_the_other_pulls(home: Path, demo: DemoSources) -> None:
    feeds = home / "feeds"
    (feeds / "broken.yaml").write_text("id: broken\nsource: {type: sftp}\n", encoding="utf-8")
    odd = yaml.safe_load((feeds / f"{API_SPEC}.yaml").read_text(encoding="utf-8"))
    odd.update(id="odd_api", distributor="odd_api", file_patterns=["odd_*.jsonl"])
    odd["source"].update(schedule="61 6 * * *", landing_name="odd_{pulled_at}.jsonl")  # no minute 61
    (feeds / "odd_api.yaml").write_text(yaml.safe_dump(odd), encoding="utf-8")
    assert "odd_api" in load_spec_catalog(feeds).specs, "the spec is valid; only Dagster refuses its cron"
    repository = build_defs(home).get_repository_def()
    assert {s.name for s in repository.sensor_defs} == {
        "inbox_sensor",
        "report_calendar",
        f"pull_{SFTP_SPEC}_sensor",
    }
    assert {s.name for s in repository.schedule_defs} == {
        "marts_daily",
        "landing_retention_daily",
        f"pull_{API_SPEC}_schedule",
    }
    assert not repository.has_job("pull_odd_api")


def test_the_sftp_sensor_launches_one_pull_of_complete_files_and_the_run_loads_them(
    home: Path, demo: DemoSources
) -> None:
    defs = build_defs(home)
    with dg.instance_for_test() as instance:
        first = _tick(defs, instance, home, None)
        assert first.run_requests == [], "seen once: complete only when they hold still across two looks"
        second = _tick(defs, instance, home, first.cursor)
        (request,) = second.run_requests
        assert request.run_key.startswith(f"{SFTP_SPEC}/")
        assert request.tags[SPEC_TAG] == SFTP_SPEC and request.tags[HOST_TAG].startswith("127.0.0.1:")
        seen = request.run_config["ops"][f"pull_{SFTP_SPEC}_source"]["config"]["seen_complete"]
        assert sorted(f["name"] for f in seen) == sorted(demo.sftp_files)
        again = _tick(defs, instance, home, second.cursor)
        assert [r.run_key for r in again.run_requests] == [request.run_key], (
            "same files: Dagster launches once"
        )

        job = defs.get_repository_def().get_job(f"pull_{SFTP_SPEC}")
        result = job.execute_in_process(run_config=request.run_config, instance=instance, tags=request.tags)
        assert result.success
        (output,) = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_OUTPUT]
        metadata = output.step_output_data.metadata
        assert metadata["fetched"].value == len(demo.sftp_files)
        assert metadata["loads_by_status"].value == {"loaded": len(demo.sftp_files)}
        assert len(metadata["run_keys"].value) == len(demo.sftp_files)
        pool = pool_of(load_spec_catalog(home / "feeds").specs[SFTP_SPEC].source)
        assert instance.event_log_storage.get_concurrency_info(pool).slot_count == 2  # the spec's limit

        after = _tick(defs, instance, home, again.cursor)  # taken and archived: nothing new
        assert after.run_requests == []
        assert SFTP_SPEC in instance.get_dynamic_partitions("distributor")

        rerun = job.execute_in_process(instance=instance)  # a manual launch: nothing new, nothing loaded
        assert rerun.success
        said = _said(instance, result.run_id) + _said(instance, rerun.run_id)
    assert all(secret not in said for secret in demo.environ.values())
    loads = _loads(home)
    assert loads.group_by("channel", "status").len().rows() == [("sftp", "loaded", len(demo.sftp_files))]
    assert READY_TAG in request.tags


def test_the_api_schedule_launches_the_pull_job_and_it_loads_the_pages(home: Path, demo: DemoSources) -> None:
    defs = build_defs(home)
    schedule = defs.get_repository_def().get_schedule_def(f"pull_{API_SPEC}_schedule")
    with dg.instance_for_test() as instance:
        with dg.build_schedule_context(
            instance=instance, scheduled_execution_time=datetime(2026, 11, 24, 6, tzinfo=UTC)
        ) as context:
            (request,) = schedule.evaluate_tick(context).run_requests
        assert request.run_key == f"{API_SPEC}/2026-11-24T06:00:00+00:00"
        result = (
            defs.get_repository_def()
            .get_job(f"pull_{API_SPEC}")
            .execute_in_process(run_config=request.run_config, instance=instance, tags=request.tags)
        )
        assert result.success
        said = _said(instance, result.run_id)
    loads = _loads(home)
    assert loads.select("channel", "status", "source_name").rows()[0][:2] == ("api", "loaded")
    assert loads.height == 1 and loads["rows_read"][0] == demo.api_records
    assert all(secret not in said for secret in demo.environ.values())


def test_a_wrong_password_fails_the_run_with_a_clear_message_and_no_secret(
    home: Path, demo: DemoSources, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrong = "not-the-password-7f3a9c"
    monkeypatch.setenv(SFTP_PASSWORD_ENV, wrong)
    defs = build_defs(home)
    with dg.instance_for_test() as instance:
        result = (
            defs.get_repository_def()
            .get_job(f"pull_{SFTP_SPEC}")
            .execute_in_process(instance=instance, raise_on_error=False)
        )
        assert not result.success
        (failure,) = result.get_step_failure_events()
        message = failure.step_failure_data.error.message
        assert f"pull failed: {SFTP_SPEC}:" in message and SFTP_PASSWORD_ENV in message
        assert not [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY], (
            "a refused login is never retried"
        )
        said = _said(instance, result.run_id)
        with pytest.raises(SourceUnavailableError) as raised:
            _tick(defs, instance, home, None)
    assert SFTP_SPEC in str(raised.value)
    for secret in (wrong, *demo.environ.values()):
        assert secret not in said and secret not in str(raised.value)
    assert not (home / "channels" / f"{SFTP_SPEC}.json").exists(), "a failed pull remembers nothing"


def test_a_pull_that_failed_is_asked_for_again_never_skipped(
    home: Path, demo: DemoSources, monkeypatch: pytest.MonkeyPatch
) -> None:
    defs = build_defs(home)
    job = defs.get_repository_def().get_job(f"pull_{SFTP_SPEC}")
    with dg.instance_for_test() as instance:
        first = _tick(defs, instance, home, None)
        (request,) = _tick(defs, instance, home, first.cursor).run_requests
        with monkeypatch.context() as patched:  # the run fails (the password changed meanwhile)
            patched.setenv(SFTP_PASSWORD_ENV, "changed-in-between")
            failed = job.execute_in_process(
                run_config=request.run_config, instance=instance, tags=request.tags, raise_on_error=False
            )
        assert not failed.success
        (again,) = _tick(defs, instance, home, first.cursor).run_requests
        assert again.run_key == f"{request.run_key}/again1", "a new run key, so Dagster launches it"
        assert job.execute_in_process(run_config=again.run_config, instance=instance, tags=again.tags).success
    assert _loads(home)["status"].to_list() == ["loaded"] * len(demo.sftp_files)
