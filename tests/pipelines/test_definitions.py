"""All Dagster definitions load, validate from the workspace, and show the graph, checks, sensors,
schedule, partitions and backfill policy."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import dagster as dg

from pipelines.definitions import build_defs, defs
from tests.conftest import REPO_ROOT
from warehouse.reference_tables import MART_TABLES, REFERENCE_TABLES


def test_definitions_load_with_graph_checks_sensor_and_partitions(home: Path) -> None:
    repository = defs().get_repository_def()  # what the workspace loads: THROUGHLINE_HOME's specs
    keys = {key.to_user_string() for key in repository.asset_graph.get_all_asset_keys()}
    assert keys == {
        "landing/received_files",
        "staging/sellout",
        "staging/inventory",
        "staging/quarantine",
        "ops/loads",
        "core/sellout",
        "core/inventory",
        *(f"reference/{table}" for table in REFERENCE_TABLES),
        *(f"marts/{mart}" for mart in MART_TABLES),
        "reports/scorecards",
    }
    checks = {key.name for key in repository.asset_graph.asset_check_keys if key.asset_key.path[0] != "marts"}
    assert checks == {
        "row_reconciliation",
        "quarantine_rate",
        "validation_summary",
        "report_on_time",
        "unmatched_resellers",
        "unmapped_skus",
        "missing_fx_rates",
    }
    for name in ("inbox_sensor", "report_calendar"):
        assert repository.get_sensor_def(name).default_status == dg.DefaultSensorStatus.RUNNING
    job = repository.get_job("ingest")
    assert isinstance(job.partitions_def, dg.MultiPartitionsDefinition)
    dimensions = {d.name: d.partitions_def for d in job.partitions_def.partitions_defs}
    assert set(dimensions) == {"distributor", "period"}
    assert all(isinstance(d, dg.DynamicPartitionsDefinition) for d in dimensions.values())
    # No spec of this home has a `source:`: nothing to pull (tests/pipelines/test_pulls.py has some).
    assert {j.name for j in repository.get_all_jobs() if not j.name.startswith("__")} == {
        "ingest",
        "marts",
        "report_calendar",
        "landing_retention",
    }
    assert [s.name for s in repository.sensor_defs] == ["inbox_sensor", "report_calendar"]


def test_the_seven_load_assets_are_one_unit_with_per_partition_checks_and_single_run_backfills(
    home: Path,
) -> None:
    graph = build_defs(home).get_repository_def().asset_graph
    load_keys = {
        "landing/received_files",
        "staging/sellout",
        "staging/inventory",
        "staging/quarantine",
        "ops/loads",
        "core/sellout",
        "core/inventory",
    }
    nodes = [graph.get(dg.AssetKey.from_user_string(key)) for key in load_keys]
    # *Materialize* on any of them launches all seven: they are one op that cannot be subset.
    assert {node.assets_def.node_def.name for node in nodes} == {"load_reports"}
    assert not nodes[0].assets_def.can_subset
    assert {key.to_user_string() for key in nodes[0].assets_def.keys} == load_keys
    assert all(node.backfill_policy == dg.BackfillPolicy.single_run() for node in nodes)
    partitioned = {
        key.name for key in graph.asset_check_keys if graph.get_check_spec(key).partitions_def is not None
    }
    assert partitioned == {"row_reconciliation", "quarantine_rate", "validation_summary", "report_on_time"}


def test_lineage_runs_from_reference_to_core(home: Path) -> None:
    graph = build_defs(home).get_repository_def().asset_graph
    parents = {
        name: {key.to_user_string() for key in graph.get(dg.AssetKey(["core", name])).parent_keys}
        for name in ("sellout", "inventory")
    }
    assert {"reference/partner_aliases", "reference/sku_map", "reference/fx_rates"} <= parents["sellout"]
    assert "reference/sku_map" in parents["inventory"]
    assert graph.get(dg.AssetKey(["reference", "sku_map"])).partitions_def is None
    job = build_defs(home).get_repository_def().get_job("ingest")
    assert not any(key.path[0] == "reference" for key in job.asset_layer.asset_graph.executable_asset_keys)
    # The load reports the exception checks' results itself (see test_assets); the standalone check,
    # for *Execute* in the UI, is not a step of the job.
    planned = {k.name for k in job.asset_layer.asset_graph.asset_check_keys}
    assert planned == {"row_reconciliation", "quarantine_rate", "validation_summary", "report_on_time"}


def test_workspace_validates_with_the_dagster_cli(home: Path) -> None:
    (home / "dagster").mkdir(parents=True)
    dagster = Path(sys.executable).with_name("dagster")
    result = subprocess.run(
        [str(dagster), "definitions", "validate", "-w", "workspace.yaml"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Validation successful" in result.stdout + result.stderr


def test_marts_run_daily_when_started_after_core_and_reference(home: Path) -> None:
    repository = build_defs(home).get_repository_def()
    graph = repository.asset_graph
    performance = graph.get(dg.AssetKey(["marts", "partner_performance"]))
    assert performance.partitions_def is None
    assert {"core/sellout", "reference/partners", "reference/quotas", "reference/tiers"} <= {
        key.to_user_string() for key in performance.parent_keys
    }
    assert "ops/loads" in {
        key.to_user_string()
        for key in graph.get(dg.AssetKey(["marts", "distributor_data_quality"])).parent_keys
    }
    scorecards = graph.get(dg.AssetKey(["reports", "scorecards"]))
    assert {"marts/partner_performance", "marts/rebate_accruals"} <= {
        key.to_user_string() for key in scorecards.parent_keys
    }
    checks = {
        (key.asset_key.path[-1], key.name)
        for key in graph.asset_check_keys
        if key.asset_key.path[0] == "marts"
    }
    assert checks == {
        *(
            (mart, check)
            for mart in MART_TABLES
            for check in ("not_empty", "keys_unique", "columns_and_types")
        ),
        ("partner_performance", "reconciles_with_sellout"),
        ("partner_anomalies", "reconciles_with_sellout"),
    }
    blocking = {key.name for key in graph.asset_check_keys if graph.get_check_spec(key).blocking}
    assert blocking == {"row_reconciliation", "reconciles_with_sellout"}

    schedule = repository.get_schedule_def("marts_daily")
    assert schedule.default_status == dg.DefaultScheduleStatus.STOPPED
    assert (schedule.cron_schedule, schedule.execution_timezone) == ("0 6 * * *", "UTC")
    job = repository.get_job("marts")
    assert schedule.job_name == "marts"
    assert job.partitions_def is None
    assert {key.to_user_string() for key in job.asset_layer.asset_graph.executable_asset_keys} >= {
        *(f"marts/{mart}" for mart in MART_TABLES),
        "reports/scorecards",
    }
    assert len(job.asset_layer.asset_graph.asset_check_keys) == len(checks)
