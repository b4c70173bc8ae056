"""The load asset in process: a sensor's run materializes its own partition and reports every check
for it; a backfill's range is one run that re-loads what landing holds, equals what was loaded
before, and leaves a period without a file missing (its `report_on_time` fails)."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import dagster as dg
import pytest

from pipelines.assets import LOAD_ASSET_KEYS
from pipelines.definitions import build_defs
from pipelines.partitions import partition_key
from sampledata.generator import copy_feed_specs, generate_samples
from sampledata.reference import copy_reference
from tests.conftest import ingest_inbox, query_home

pytestmark = pytest.mark.system

LOADS = dg.AssetKey(["ops", "loads"])
WEEKS = ["2026-10-19", "2026-10-26", "2026-11-02", "2026-11-09"]


def _home(home: Path, tmp_path: Path, distributor: str, names: list[str]) -> Path:
    """A home with the sample specs and reference data, and `names` of the samples in its inbox."""
    copy_feed_specs(home / "feeds")
    copy_reference(home / "reference")
    generate_samples(tmp_path / "drop")
    inbox = home / "inbox" / distributor
    inbox.mkdir(parents=True)
    for name in names:
        shutil.copy2(tmp_path / "drop" / distributor / name, inbox / name)  # keeps the delivery time
    return inbox


def _add_partitions(instance: dg.DagsterInstance, distributor: str, weeks: list[str]) -> None:
    instance.add_dynamic_partitions("distributor", [distributor])
    instance.add_dynamic_partitions("report_period", weeks)


def test_a_sensor_run_materializes_its_partition_and_reports_each_check_for_it(
    home: Path, tmp_path: Path
) -> None:
    name = "RH_Abverkauf_20261019.csv"
    inbox = _home(home, tmp_path, "rheinland_de", [name])
    key = str(partition_key("rheinland_de", date(2026, 10, 19)))
    job = build_defs(home).resolve_job_def("ingest")
    with dg.instance_for_test() as instance:
        _add_partitions(instance, "rheinland_de", WEEKS[:1])
        result = job.execute_in_process(
            instance=instance,
            partition_key=key,
            run_config={"ops": {"load_reports": {"config": {"paths": [str(inbox / name)]}}}},
        )
        assert result.success
        materialized = {(e.asset_key, e.partition) for e in result.get_asset_materialization_events()}
        assert materialized == {(asset_key, key) for asset_key in LOAD_ASSET_KEYS}
        evaluations = {(e.check_name, e.partition): e for e in result.get_asset_check_evaluations()}
        assert set(evaluations) == {
            ("row_reconciliation", key),
            ("quarantine_rate", key),
            ("validation_summary", key),
            ("report_on_time", key),
            ("unmatched_resellers", None),
            ("unmapped_skus", None),
            ("missing_fx_rates", None),
        }
        assert evaluations[("row_reconciliation", key)].passed
        on_time = evaluations[("report_on_time", key)]
        assert on_time.passed, on_time.description  # delivered 2026-10-26, due 2026-10-28
        assert on_time.metadata["expected_by"].value == "2026-10-28"
        quarantined = result.asset_materializations_for_node("load_reports")
        show = next(m for m in quarantined if m.asset_key == dg.AssetKey(["staging", "quarantine"]))
        assert show.metadata["dagster/row_count"].value == 1
        assert "from quarantine where load_id in ('rheinland_de-" in show.metadata["show_rows"].value
        # Each result judges this run's materialization of the partition: Dagster shows it as current.
        (info,) = instance.event_log_storage.get_asset_check_partition_info(
            [dg.AssetCheckKey(LOADS, "quarantine_rate")]
        )
        assert (info.partition_key, info.latest_execution_status.value, info.is_current) == (
            key,
            "SUCCEEDED",
            True,
        )
    assert not (inbox / name).exists()


def test_a_backfill_range_is_one_run_equal_to_incremental_loading_and_leaves_a_missing_week_missing(
    home: Path, tmp_path: Path
) -> None:
    received = [f"Albion_SellOut_{week.replace('-', '')}.xlsx" for week in WEEKS[:3]]
    _home(home, tmp_path, "albion_uk", received)
    ingest_inbox(home)  # loaded incrementally, outside Dagster (as `make run` does)
    lines = "select * exclude (ingested_at) from sellout where distributor_id = 'albion_uk' order by line_id"
    before = query_home(home, lines)
    assert before.height > 0
    keys = [f"albion_uk|{week}" for week in WEEKS]
    job = build_defs(home).resolve_job_def("ingest")
    with dg.instance_for_test() as instance:
        _add_partitions(instance, "albion_uk", WEEKS)
        result = job.execute_in_process(
            instance=instance,
            tags={  # as a job backfill tags its run: the range, and the first partition's dimensions
                "dagster/asset_partition_range_start": keys[0],
                "dagster/asset_partition_range_end": keys[-1],
                "dagster/partition/distributor": "albion_uk",
                "dagster/partition/period": WEEKS[0],
            },
        )
        assert result.success
        materialized = instance.get_materialized_partitions(LOADS)
    assert materialized == set(keys[:3]), "the week without a file is not painted as loaded"
    evaluations = {(e.check_name, e.partition): e for e in result.get_asset_check_evaluations()}
    missing = evaluations[("report_on_time", keys[3])]
    assert (missing.passed, missing.severity) == (False, dg.AssetCheckSeverity.ERROR)
    assert missing.metadata["status"].value == "missing"
    assert missing.metadata["last_received_period"].value == WEEKS[2]
    assert all(evaluations[("report_on_time", k)].passed for k in keys[:3])
    assert query_home(home, lines).equals(before)


def test_a_loads_materialization_names_the_columns_whose_header_drifted(home: Path, tmp_path: Path) -> None:
    first, second = "RH_Abverkauf_20261019.csv", "RH_Abverkauf_20261026.csv"
    inbox = _home(home, tmp_path, "rheinland_de", [first])
    ingest_inbox(home)  # the feed's previous load: the baseline its next header is compared with
    original = (tmp_path / "drop" / "rheinland_de" / second).read_bytes()
    (inbox / second).write_bytes(original.replace(b'"Artikelbezeichnung"', b'"Artikel-Bezeichnung"', 1))
    key = str(partition_key("rheinland_de", date(2026, 10, 26)))
    job = build_defs(home).resolve_job_def("ingest")
    with dg.instance_for_test() as instance:
        _add_partitions(instance, "rheinland_de", WEEKS[:2])
        result = job.execute_in_process(
            instance=instance,
            partition_key=key,
            run_config={"ops": {"load_reports": {"config": {"paths": [str(inbox / second)]}}}},
        )
        assert result.success
    loads = next(m for m in result.asset_materializations_for_node("load_reports") if m.asset_key == LOADS)
    assert loads.metadata["schema_drift"].value == {
        second: [
            "renamed: `Artikel-Bezeichnung` looks like a rename of `Artikelbezeichnung` (the spec does not read it)"
        ]
    }
