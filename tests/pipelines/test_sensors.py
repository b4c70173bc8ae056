"""The inbox sensor: one run per file, only once the file has stopped growing, keyed by partition
(distributor x report period), and adding the distributor and period it is the first file of."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg

from pipelines.definitions import build_defs
from pipelines.resources import ThroughlineResource
from sampledata.generator import copy_feed_specs


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

        fourth = _tick(instance, home, third.cursor)  # unchanged file: the same run key, so no second run
        assert [r.run_key for r in fourth.run_requests] == [request.run_key]


def test_ready_files_of_one_distributor_and_period_share_one_run(home: Path) -> None:
    copy_feed_specs(home / "feeds")
    inbox = home / "inbox" / "rheinland_de"
    inbox.mkdir(parents=True)
    names = ["RH_Abverkauf_20261026.csv", "RH_Abverkauf_20261026_restated.csv", "RH_Abverkauf_20261102.csv"]
    for second, name in enumerate(names):
        (inbox / name).write_text("x\n", encoding="utf-8")
        os.utime(inbox / name, (1_700_000_000 + second, 1_700_000_000 + second))
    with dg.instance_for_test() as instance:
        first = _tick(instance, home, None)
        second = _tick(instance, home, first.cursor)
    by_date = {
        r.partition_key.keys_by_dimension["period"]: r.run_config["ops"]["load_reports"]["config"]["paths"]
        for r in second.run_requests
    }
    assert by_date == {
        "2026-10-26": [str(inbox / names[0]), str(inbox / names[1])],
        "2026-11-02": [str(inbox / names[2])],
    }


def test_hidden_and_partial_files_are_ignored(home: Path) -> None:
    inbox = home / "inbox" / "northwind_us"
    inbox.mkdir(parents=True)
    (inbox / ".NW_SALES_20261102.csv.part").write_text("x", encoding="utf-8")
    (inbox / "~$lock.xlsx").write_text("x", encoding="utf-8")
    with dg.instance_for_test() as instance:
        first = _tick(instance, home, None)
        second = _tick(instance, home, first.cursor)
        assert second.run_requests == []
