"""All Dagster definitions load, validate from the workspace, and show the graph, checks and sensor."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import dagster as dg

from pipelines.definitions import defs
from tests.conftest import REPO_ROOT


def test_definitions_load_with_graph_checks_sensor_and_partitions() -> None:
    repository = defs.get_repository_def()
    keys = {key.to_user_string() for key in repository.asset_graph.get_all_asset_keys()}
    assert keys == {
        "landing/received_files",
        "staging/sellout",
        "staging/inventory",
        "staging/quarantine",
        "ops/loads",
        "core/sellout",
        "core/inventory",
    }
    checks = {key.name for key in repository.asset_graph.asset_check_keys}
    assert checks == {"row_reconciliation", "quarantine_rate", "validation_summary"}
    sensor = repository.get_sensor_def("inbox_sensor")
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    job = repository.get_job("ingest")
    assert isinstance(job.partitions_def, dg.MultiPartitionsDefinition)
    assert {d.name for d in job.partitions_def.partitions_defs} == {"distributor", "date"}


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
