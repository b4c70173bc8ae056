"""The inbox sensor: a file is launched once, only once it has stopped growing; the ready files of a
distributor share one run per tick (its one partition, or the range of its report periods), and the
sensor adds the distributor and periods they are the first files of. A file whose run finished while
it is still in the inbox is launched again."""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import dagster as dg
import pytest

from pipelines import sensors
from pipelines.assets import LOADS
from pipelines.definitions import build_defs
from pipelines.partitions import RANGE_END_TAG, RANGE_START_TAG
from pipelines.resources import ThroughlineResource
from pipelines.sensors import RUN_KEY_TAG
from sampledata.generator import copy_feed_specs, generate_samples
from sampledata.reference import copy_reference
from tests.conftest import query_home


def _tick(instance: dg.DagsterInstance, home: Path, cursor: str | None) -> dg.SensorResult:
    sensor = build_defs(home).get_repository_def().get_sensor_def("inbox_sensor")
    context = dg.build_sensor_context(
        instance=instance,
        cursor=cursor,
        resources={"throughline": ThroughlineResource(home=str(home))},
    )
    return sensor(context)


def test_a_file_launches_one_run_once_it_stops_growing(home: Path) -> None:
    copy_feed_specs(home / "feeds")
    inbox = home / "inbox" / "northwind_us"
    inbox.mkdir(parents=True)
    report = inbox / "NW_SALES_20261102.csv"
    report.write_text("Invoice Date,Invoice No\n", encoding="utf-8")
    with dg.instance_for_test() as instance:
        first = _tick(instance, home, None)
        assert first.run_requests == []  # seen once: maybe still being written

        with report.open("a", encoding="utf-8") as handle:  # it grew
            handle.write("11/02/2026,INV-1\n")
        os.utime(report, ns=(report.stat().st_atime_ns, report.stat().st_mtime_ns + 1_000_000))
        second = _tick(instance, home, first.cursor)
        assert second.run_requests == []

        third = _tick(instance, home, second.cursor)
        assert len(third.run_requests) == 1
        request = third.run_requests[0]
        assert request.partition_key == dg.MultiPartitionKey(
            {"distributor": "northwind_us", "period": "2026-11-02"}
        )
        assert str(request.partition_key) == "northwind_us|2026-11-02"
        assert request.run_config["ops"]["load_reports"]["config"]["paths"] == [str(report)]
        assert request.tags["throughline/distributor"] == "northwind_us"
        added = {r.partitions_def_name: list(r.partition_keys) for r in third.dynamic_partitions_requests}
        assert added == {"distributor": ["northwind_us"], "report_period": ["2026-11-02"]}

        fourth = _tick(instance, home, third.cursor)  # its run is queued or under way: no second run
        assert fourth.run_requests == []

        # The run finished (here: failed) and the file is still in the inbox: it is launched again.
        _finish_run(instance, request.run_key, dg.DagsterRunStatus.FAILURE)
        fifth = _tick(instance, home, fourth.cursor)
        assert [r.run_config for r in fifth.run_requests] == [request.run_config]
        assert fifth.run_requests[0].run_key != request.run_key
        assert _tick(instance, home, fifth.cursor).run_requests == []


def _finish_run(instance: dg.DagsterInstance, run_key: str, status: dg.DagsterRunStatus) -> None:
    instance.add_run(
        dg.DagsterRun(job_name="ingest", run_id=str(uuid.uuid4()), status=status, tags={RUN_KEY_TAG: run_key})
    )


def test_ready_files_of_one_distributor_share_one_run_over_the_range_of_their_periods(home: Path) -> None:
    copy_feed_specs(home / "feeds")
    inbox = home / "inbox" / "rheinland_de"
    inbox.mkdir(parents=True)
    names = ["RH_Abverkauf_20261026.csv", "RH_Abverkauf_20261026_restated.csv", "RH_Abverkauf_20261102.csv"]
    for second, name in enumerate(names):
        (inbox / name).write_text("x\n", encoding="utf-8")
        os.utime(inbox / name, (1_700_000_000 + second, 1_700_000_000 + second))
    other = home / "inbox" / "northwind_us" / "NW_SALES_20261102.csv"
    other.parent.mkdir(parents=True)
    other.write_text("x\n", encoding="utf-8")
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("report_period", ["2026-11-02"])  # added before 2026-10-26
        first = _tick(instance, home, None)
        second = _tick(instance, home, first.cursor)
    by_distributor = {r.tags["throughline/distributor"]: r for r in second.run_requests}
    assert sorted(by_distributor) == ["northwind_us", "rheinland_de"]
    rheinland = by_distributor["rheinland_de"]
    assert rheinland.run_config["ops"]["load_reports"]["config"]["paths"] == [str(inbox / n) for n in names]
    assert rheinland.partition_key is None
    # Dagster orders the period dimension as keys were added: 2026-11-02 first, then 2026-10-26.
    assert (rheinland.tags[RANGE_START_TAG], rheinland.tags[RANGE_END_TAG]) == (
        "rheinland_de|2026-11-02",
        "rheinland_de|2026-10-26",
    )
    assert str(by_distributor["northwind_us"].partition_key) == "northwind_us|2026-11-02"
    added = {r.partitions_def_name: list(r.partition_keys) for r in second.dynamic_partitions_requests}
    assert added == {"distributor": ["northwind_us", "rheinland_de"], "report_period": ["2026-10-26"]}


def test_a_run_takes_at_most_max_files_oldest_first_and_the_next_tick_the_rest(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sensors, "MAX_FILES_PER_RUN", 2)
    copy_feed_specs(home / "feeds")
    inbox = home / "inbox" / "northwind_us"
    inbox.mkdir(parents=True)
    names = ["NW_SALES_20261102.csv", "NW_SALES_20261026.csv", "NW_SALES_20261019.csv"]
    for second, name in enumerate(names):
        (inbox / name).write_text("x\n", encoding="utf-8")
        os.utime(inbox / name, (1_700_000_000 + second, 1_700_000_000 + second))
    with dg.instance_for_test() as instance:
        first = _tick(instance, home, None)
        second = _tick(instance, home, first.cursor)
        third = _tick(instance, home, second.cursor)
        fourth = _tick(instance, home, third.cursor)
    paths = [
        [r.run_config["ops"]["load_reports"]["config"]["paths"] for r in t.run_requests]
        for t in (second, third)
    ]
    assert paths == [[[str(inbox / names[0]), str(inbox / names[1])]], [[str(inbox / names[2])]]]
    assert fourth.run_requests == []


def test_hidden_and_partial_files_are_ignored(home: Path) -> None:
    inbox = home / "inbox" / "northwind_us"
    inbox.mkdir(parents=True)
    (inbox / ".NW_SALES_20261102.csv.part").write_text("x", encoding="utf-8")
    (inbox / "~$lock.xlsx").write_text("x", encoding="utf-8")
    with dg.instance_for_test() as instance:
        first = _tick(instance, home, None)
        second = _tick(instance, home, first.cursor)
        assert second.run_requests == []


def test_a_run_over_a_range_of_periods_loads_its_files_and_records_each_period(home: Path) -> None:
    copy_feed_specs(home / "feeds")
    copy_reference(home / "reference")
    drop = home.parent / "drop"
    generate_samples(drop)
    inbox = home / "inbox" / "nordic_fw"
    inbox.mkdir(parents=True)
    names = sorted(p.name for p in (drop / "nordic_fw").iterdir())[:2]
    for name in names:
        shutil.copy2(drop / "nordic_fw" / name, inbox / name)
    defs = build_defs(home)
    with dg.instance_for_test() as instance:
        first = _tick(instance, home, None)
        second = _tick(instance, home, first.cursor)
        for added in second.dynamic_partitions_requests:
            instance.add_dynamic_partitions(added.partitions_def_name, list(added.partition_keys))
        (request,) = second.run_requests
        assert request.partition_key is None and request.tags[RANGE_START_TAG] != request.tags[RANGE_END_TAG]
        result = (
            defs.get_repository_def()
            .get_job("ingest")
            .execute_in_process(run_config=request.run_config, tags=request.tags, instance=instance)
        )
        assert result.success
        recorded = {
            m.partition
            for m in result.asset_materializations_for_node("load_reports")
            if m.asset_key == LOADS
        }
    periods = [f"{name[10:14]}-{name[14:16]}-{name[16:18]}" for name in names]  # NORDIC_SO_YYYYMMDD.txt
    assert recorded == {f"nordic_fw|{period}" for period in periods}
    loads = query_home(home, "SELECT source_name, status FROM loads ORDER BY source_name")
    assert loads.rows() == [(name, "loaded") for name in names]
    assert list(inbox.iterdir()) == []
