"""The report calendar on a warehouse loaded outside Dagster (as `make run` leaves it): the sensor adds
the distributors and report periods and asks for one `report_calendar` run; the run records the
loads as materializations with their load checks and judges `report_on_time` per partition, Albion's
missing week failing last; then the sensor has nothing to ask for until a day passes."""

from __future__ import annotations

import shutil
from datetime import UTC, date, datetime
from pathlib import Path

import dagster as dg
import pytest

from pipelines.assets import LOAD_ASSET_KEYS
from pipelines.definitions import build_defs
from pipelines.resources import ThroughlineResource
from tests.conftest import SampleWarehouse

pytestmark = pytest.mark.system

LOADS = dg.AssetKey(["ops", "loads"])
LATE = "albion_uk|2026-11-09"


def _tick(defs: dg.Definitions, instance: dg.DagsterInstance, home: Path, cursor: str | None):
    """One tick of the sensor, its new partitions added as the daemon adds them."""
    sensor = defs.get_repository_def().get_sensor_def("report_calendar")
    context = dg.build_sensor_context(
        instance=instance, cursor=cursor, resources={"throughline": ThroughlineResource(home=str(home))}
    )
    result = sensor(context)
    for request in result.dynamic_partitions_requests or []:
        instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
    return result


def test_the_calendar_records_outside_loads_and_judges_each_period_with_the_missing_week_failing(
    sample_warehouse: SampleWarehouse, home: Path
) -> None:
    assert datetime.now(UTC).date() >= date(2026, 11, 18), "the sample's late report is due 2026-11-18"
    shutil.copytree(sample_warehouse.home, home, symlinks=True)
    defs = build_defs(home)
    job = defs.resolve_job_def("report_calendar")
    with dg.instance_for_test() as instance:
        first = _tick(defs, instance, home, None)
        added = {r.partitions_def_name: set(r.partition_keys) for r in first.dynamic_partitions_requests}
        assert {"albion_uk", "northwind_us", "rheinland_de", "keystone_edi"} <= added["distributor"]
        assert {"2026-10-19", "2026-10-26", "2026-11-02", "2026-11-09"} <= added["report_period"]
        (request,) = first.run_requests

        run = job.execute_in_process(instance=instance, tags=request.tags)
        assert run.success
        recorded = run.get_asset_materialization_events()
        assert {e.asset_key for e in recorded} == set(LOAD_ASSET_KEYS)
        assert "albion_uk|2026-11-02" in {e.partition for e in recorded}
        assert LATE not in {e.partition for e in recorded}  # no file, nothing to record
        mirrored = [m for m in run.asset_materializations_for_node("record_calendar") if m.asset_key == LOADS]
        assert mirrored and all(m.metadata["schema_drift"].value == {} for m in mirrored)  # none drifted
        checks = [(e.check_name, e.partition, e) for e in run.get_asset_check_evaluations()]
        by_key = {(name, partition): e for name, partition, e in checks}
        assert by_key[("row_reconciliation", "albion_uk|2026-11-02")].passed
        assert ("quarantine_rate", "nordic_fw|2026-10-26") in by_key
        assert by_key[("report_on_time", "albion_uk|2026-11-02")].passed
        missing = by_key[("report_on_time", LATE)]
        assert (missing.passed, missing.severity) == (False, dg.AssetCheckSeverity.ERROR)
        assert missing.metadata["expected_by"].value == "2026-11-18"
        assert missing.metadata["received_on"].value == "never"
        assert missing.metadata["last_received_period"].value == "2026-11-02"
        assert missing.metadata["last_received_on"].value == "2026-11-09"
        on_time = [e for name, _, e in checks if name == "report_on_time"]
        outstanding = [e.partition for e in on_time if e.metadata["status"].value == "missing"]
        assert LATE in outstanding
        # Missing reports come last, so the check's latest result is one of them.
        assert [e.partition for e in on_time[-len(outstanding) :]] == outstanding
        statuses = {
            info.partition_key: (info.latest_execution_status.value, info.is_current)
            for info in instance.event_log_storage.get_asset_check_partition_info(
                [dg.AssetCheckKey(LOADS, "report_on_time")]
            )
        }
        assert statuses[LATE] == ("FAILED", True)
        assert statuses["albion_uk|2026-11-02"] == ("SUCCEEDED", True)

        second = _tick(defs, instance, home, first.cursor)
        assert second.run_requests == [] and second.skip_reason  # recorded, and judged today
