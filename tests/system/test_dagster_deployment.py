"""The Dagster deployment as a data engineer runs it, end to end: `make run`, then `make dev`.

One module-scoped deployment: a temporary home loaded by `throughline demo` (what `make run` runs),
then `python -m pipelines.serve` (what `make dev` runs: the code server, the daemon and the
webserver) on a free port of 127.0.0.1. Everything is asked of the webserver's GraphQL API, or of
the warehouse the runs write; headless Chromium looks at the UI. The fixture stops every process
it started (their process group) whatever happens.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from sampledata.generator import REPORT_DUE_DAYS_AFTER_MONDAY, generate_samples, live_as_of, report_weeks
from tests.conftest import REPO_ROOT
from tests.system.deployment import BIN, Deployment, deployment_env, served

pytestmark = pytest.mark.system

ARTIFACTS = REPO_ROOT / "tests" / "artifacts"
CHROMIUM = Path("/usr/bin/chromium")
LOADS = ["ops", "loads"]
INGEST_PARTITION_SET = "ingest_partition_set"
AS_OF = live_as_of(datetime.now(UTC).date())
"""The as-of date `throughline demo` picks today: its last week is due, the next one is not yet."""
WEEKS = [week.isoformat() for week in report_weeks(AS_OF)]
LATE = ("albion_uk", WEEKS[-1])
"""The sample's late report: Albion's last weekly report never arrives (sampledata.generator)."""


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    root = tmp_path_factory.mktemp("deployment")
    env = deployment_env(root / "home")
    demo = subprocess.run(
        [str(BIN / "throughline"), "demo"], env=env, capture_output=True, text=True, timeout=600, cwd=root
    )
    assert demo.returncode == 0, demo.stderr[-4000:]
    assert f"(as of {AS_OF})" in demo.stderr, "the demo ran on another day than this module was imported"
    with served(root, env) as running:
        yield running


# --------------------------------------------------------------------------------------------------
# GraphQL questions


def _asset_partitions(deployment: Deployment, path: list[str]) -> dict[str, dict[str, list[str]]]:
    """distributor -> {"materialized": [...], "failed": [...], "missing": [...]} periods of an asset."""
    data = deployment.graphql(
        """query ($path: [String!]!) { assetNodeOrError(assetKey: {path: $path}) { ... on AssetNode {
          assetPartitionStatuses { ... on MultiPartitionStatuses { primaryDimensionName ranges {
            primaryDimStartKey primaryDimEndKey secondaryDim { ... on DefaultPartitionStatuses {
              materializedPartitions failedPartitions unmaterializedPartitions } } } } } } } }""",
        {"path": path},
    )
    statuses = data["assetNodeOrError"]["assetPartitionStatuses"]
    assert statuses["primaryDimensionName"] == "distributor"
    distributors = _dimension_keys(deployment, "distributor")
    found: dict[str, dict[str, list[str]]] = {}
    for part in statuses["ranges"]:
        start, end = (
            distributors.index(part["primaryDimStartKey"]),
            distributors.index(part["primaryDimEndKey"]),
        )
        for distributor in distributors[start : end + 1]:
            found[distributor] = {
                "materialized": sorted(part["secondaryDim"]["materializedPartitions"]),
                "failed": sorted(part["secondaryDim"]["failedPartitions"]),
                "missing": sorted(part["secondaryDim"]["unmaterializedPartitions"]),
            }
    return found


def _dimension_keys(deployment: Deployment, dimension: str) -> list[str]:
    data = deployment.graphql(
        """{ assetNodeOrError(assetKey: {path: ["ops", "loads"]}) { ... on AssetNode {
          partitionKeysByDimension { name partitionKeys } } } }"""
    )
    return next(
        d["partitionKeys"]
        for d in data["assetNodeOrError"]["partitionKeysByDimension"]
        if d["name"] == dimension
    )


def _check_partitions(deployment: Deployment, check: str) -> dict[str, dict[str, list[str]]]:
    """distributor -> {"succeeded": [...], "failed": [...]} periods of a check of ops/loads."""
    data = deployment.graphql(
        """{ assetNodeOrError(assetKey: {path: ["ops", "loads"]}) { ... on AssetNode {
          assetChecksOrError { ... on AssetChecks { checks { name partitionStatuses {
            ... on AssetCheckMultiPartitionStatuses { ranges { primaryDimStartKey primaryDimEndKey
              secondaryDim { ... on AssetCheckDefaultPartitionStatuses {
                succeededPartitions failedPartitions } } } } } } } } } } }"""
    )
    (found,) = [c for c in data["assetNodeOrError"]["assetChecksOrError"]["checks"] if c["name"] == check]
    distributors = _dimension_keys(deployment, "distributor")
    result: dict[str, dict[str, list[str]]] = {}
    for part in found["partitionStatuses"]["ranges"]:
        start, end = (
            distributors.index(part["primaryDimStartKey"]),
            distributors.index(part["primaryDimEndKey"]),
        )
        for distributor in distributors[start : end + 1]:
            result[distributor] = {
                "succeeded": sorted(part["secondaryDim"]["succeededPartitions"]),
                "failed": sorted(part["secondaryDim"]["failedPartitions"]),
            }
    return result


def _latest_check(deployment: Deployment, check: str, partition: str) -> dict:
    data = deployment.graphql(
        """query ($check: String!, $partition: String) { assetCheckExecutions(
            assetKey: {path: ["ops", "loads"]}, checkName: $check, partition: $partition, limit: 1) {
          status partition evaluation { success severity description metadataEntries { label
            ... on TextMetadataEntry { text } ... on IntMetadataEntry { intValue } } } } }""",
        {"check": check, "partition": partition},
    )
    executions = data["assetCheckExecutions"]
    return executions[0] if executions else {}


def _launch_backfill(deployment: Deployment, partitions: list[str]) -> str:
    """A backfill of the `ingest` job over `partitions`, as the job page's *Materialize* launches it."""
    data = deployment.graphql(
        """mutation ($params: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $params) {
          __typename ... on LaunchBackfillSuccess { backfillId } ... on PythonError { message } } }""",
        {
            "params": {
                "selector": {
                    "partitionSetName": INGEST_PARTITION_SET,
                    "repositorySelector": {
                        "repositoryName": "__repository__",
                        "repositoryLocationName": "throughline",
                    },
                },
                "partitionNames": partitions,
                "fromFailure": False,
            }
        },
    )
    launched = data["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", launched
    return launched["backfillId"]


def _backfill_runs(deployment: Deployment, backfill_id: str) -> list[dict]:
    data = deployment.graphql(
        """query ($id: String!) { runsOrError(filter: {tags: [{key: "dagster/backfill", value: $id}]}) {
          ... on Runs { results { runId status pipelineName tags { key value } } } } }""",
        {"id": backfill_id},
    )
    return data["runsOrError"]["results"]


def _finished_backfill(deployment: Deployment, backfill_id: str) -> Callable[[], list[dict] | None]:
    """The backfill's runs once every partition is submitted and every run has finished."""

    def probe() -> list[dict] | None:
        backfill = deployment.graphql(
            """query ($id: String!) { partitionBackfillOrError(backfillId: $id) {
              ... on PartitionBackfill { numPartitions partitionNames } } }""",
            {"id": backfill_id},
        )["partitionBackfillOrError"]
        runs = _backfill_runs(deployment, backfill_id)
        covered = set()
        for run in runs:
            tags = {t["key"]: t["value"] for t in run["tags"]}
            start = tags.get("dagster/asset_partition_range_start", tags.get("dagster/partition"))
            end = tags.get("dagster/asset_partition_range_end", start)
            names = backfill["partitionNames"]
            covered |= set(names[names.index(start) : names.index(end) + 1])
        finished = all(r["status"] in ("SUCCESS", "FAILURE", "CANCELED") for r in runs)
        return runs if runs and finished and covered == set(backfill["partitionNames"]) else None

    return probe


def _rows(deployment: Deployment, distributor_id: str) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """What analysts see of one distributor: its sell-out and stock rows and its loads."""
    where = f"where distributor_id = '{distributor_id}'"
    return (
        deployment.query(f"select * exclude (ingested_at) from sellout {where} order by line_id"),
        deployment.query(f"select * exclude (ingested_at) from inventory {where} order by line_id"),
        deployment.query(
            f"select load_id, source_name, status, rows_read, rows_loaded, rows_quarantined from loads {where} "
            "order by load_id"
        ),
    )


# --------------------------------------------------------------------------------------------------
# The tests, in the order a data engineer meets them.


def test_after_make_run_the_late_report_fails_and_the_grid_shows_received_and_missing(
    deployment: Deployment,
) -> None:
    sensors = deployment.graphql(
        """{ sensorsOrError(repositorySelector: {repositoryName: "__repository__",
              repositoryLocationName: "throughline"}) {
          ... on Sensors { results { name sensorState { status } } } } }"""
    )["sensorsOrError"]["results"]
    assert {s["name"]: s["sensorState"]["status"] for s in sensors} == {
        "inbox_sensor": "RUNNING",
        "report_calendar": "RUNNING",
    }
    distributor, period = LATE

    def calendar() -> dict | None:
        checks = _check_partitions(deployment, "report_on_time")
        judged = {d: set(c["succeeded"]) | set(c["failed"]) for d, c in checks.items()}
        return checks if len(judged) == 6 and all(set(WEEKS) <= weeks for weeks in judged.values()) else None

    # The first tick records the demo's loads and the missing week, the next one judges the loads.
    checks = deployment.wait_for("report_calendar reports Albion's weeks", calendar)
    assert checks[distributor]["failed"] == [period]
    assert checks[distributor]["succeeded"] == WEEKS[:3]
    for other in ("northwind_us", "rheinland_de", "keystone_edi", "nordic_fw", "pacific_jsonl"):
        assert set(WEEKS) <= set(checks[other]["succeeded"]) | set(checks[other]["failed"])
        assert not set(WEEKS) & set(checks[other]["failed"])  # their four weeks came on time

    execution = _latest_check(deployment, "report_on_time", f"{distributor}|{period}")
    evaluation = execution["evaluation"]
    assert (evaluation["success"], evaluation["severity"]) == (False, "ERROR")
    metadata = {e["label"]: e.get("text", e.get("intValue")) for e in evaluation["metadataEntries"]}
    assert metadata["status"] == "missing"
    assert metadata["expected_by"] == str(
        report_weeks(AS_OF)[-1] + timedelta(days=REPORT_DUE_DAYS_AFTER_MONDAY)
    )
    assert metadata["received_on"] == "never"
    assert metadata["last_received_period"] == WEEKS[-2]
    assert metadata["last_received_on"] == WEEKS[-1]  # a week's file arrives the Monday after it
    assert "missing" in evaluation["description"]

    # The grid: the demo's loads (made by the CLI, outside Dagster) fill their periods; the late one is missing.
    grid = deployment.wait_for(
        "the grid of ops/loads",
        lambda: (g := _asset_partitions(deployment, LOADS)).get(distributor, {}).get("materialized") and g,
    )
    assert grid[distributor] == {"materialized": WEEKS[:3], "failed": [], "missing": [period]}
    assert grid["northwind_us"]["materialized"] == WEEKS
    assert _dimension_keys(deployment, "period") == WEEKS  # report periods, not 2,500 days
    # The load checks of the demo's loads are reported per partition too.
    rate = deployment.wait_for(
        "quarantine_rate of the demo's loads",
        lambda: _check_partitions(deployment, "quarantine_rate").get("nordic_fw"),
    )
    assert rate["succeeded"] + rate["failed"] == sorted(WEEKS)


@dataclass
class Launched:
    """What the data engineer set going at once: a file in the inbox, a backfill of one distributor
    and two more of two others, with each distributor's rows before."""

    dropped: Path
    before: dict[str, tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]]
    backfills: dict[str, str]


ONE_BACKFILL = "rheinland_de"  # its second week was restated: re-loading must keep the restatement
TWO_BACKFILLS = ("pacific_jsonl", "albion_uk")  # albion's range holds its missing week


@pytest.fixture(scope="module")
def launched(deployment: Deployment, tmp_path_factory: pytest.TempPathFactory) -> Launched:
    """Everything at once (after the first test saw the home as `make run` left it): the sensor's run
    and the three backfills' runs share the queue, the warehouse and the two cores."""
    drop = tmp_path_factory.mktemp("drop")
    generate_samples(drop, as_of=AS_OF + timedelta(weeks=1))  # one week later: a new Northwind week
    name = f"NW_SALES_{AS_OF:%Y%m%d}.csv"
    distributors = (ONE_BACKFILL, *TWO_BACKFILLS)
    before = {d: _rows(deployment, d) for d in distributors}
    inbox = deployment.home / "inbox" / "northwind_us"
    shutil.copy(drop / "northwind_us" / name, inbox / name)
    backfills = {d: _launch_backfill(deployment, [f"{d}|{week}" for week in WEEKS]) for d in distributors}
    return Launched(inbox / name, before, backfills)


def test_a_file_dropped_in_the_inbox_is_landed_by_the_daemons_sensor(
    deployment: Deployment, launched: Launched
) -> None:
    def run_of_the_file() -> dict | None:
        runs = deployment.graphql(
            """{ runsOrError(filter: {tags: [{key: "throughline/distributor", value: "northwind_us"}]}) {
              ... on Runs { results { runId status pipelineName tags { key value } } } } }"""
        )["runsOrError"]["results"]
        return next((r for r in runs if r["status"] in ("SUCCESS", "FAILURE", "CANCELED")), None)

    run = deployment.wait_for("the inbox sensor's run lands the file", run_of_the_file)
    assert run["status"] == "SUCCESS", deployment.run_failures(run["runId"])
    assert run["pipelineName"] == "ingest"
    tags = {t["key"]: t["value"] for t in run["tags"]}
    assert tags["dagster/partition"] == f"northwind_us|{AS_OF}"
    assert tags["dagster/sensor_name"] == "inbox_sensor"
    name = launched.dropped.name
    loads = deployment.query(f"select status, rows_loaded from loads where source_name = '{name}'")
    assert loads["status"].to_list() == ["loaded"] and loads["rows_loaded"][0] > 0
    assert not launched.dropped.exists()  # received: it left the inbox
    assert AS_OF.isoformat() in _asset_partitions(deployment, LOADS)["northwind_us"]["materialized"]
    reconciled = _latest_check(deployment, "row_reconciliation", f"northwind_us|{AS_OF}")
    assert reconciled["evaluation"]["success"] is True


def _backfilled(deployment: Deployment, launched: Launched, distributor: str) -> None:
    """The distributor's backfill ran once, succeeded without a lock error, and changed no row."""
    backfill = launched.backfills[distributor]
    runs = deployment.wait_for(f"the backfill of {distributor}", _finished_backfill(deployment, backfill))
    assert len(runs) == 1, "one run for the distributor's range (BackfillPolicy.single_run)"
    (run,) = runs
    assert run["status"] == "SUCCESS", deployment.run_failures(run["runId"])
    assert deployment.run_failures(run["runId"]) == []
    assert run["pipelineName"] == "ingest"
    tags = {t["key"]: t["value"] for t in run["tags"]}
    assert (tags["dagster/asset_partition_range_start"], tags["dagster/asset_partition_range_end"]) == (
        f"{distributor}|{WEEKS[0]}",
        f"{distributor}|{WEEKS[-1]}",
    )
    materialized = deployment.graphql(
        """query ($id: ID!) { runOrError(runId: $id) { ... on Run {
          assetMaterializations { assetKey { path } partition } } } }""",
        {"id": run["runId"]},
    )["runOrError"]["assetMaterializations"]
    loaded = sorted(m["partition"] for m in materialized if m["assetKey"]["path"] == LOADS)
    received = [week for week in WEEKS if (distributor, week) != LATE]
    assert loaded == [f"{distributor}|{week}" for week in received]  # every file re-loaded, nothing more
    after = _rows(deployment, distributor)
    for was, now in zip(launched.before[distributor], after, strict=True):
        assert now.equals(was)
    lines = deployment.query(
        f"select count(*) as n, count(distinct line_id) as d from sellout where distributor_id = '{distributor}'"
    ).row(0)
    assert lines[0] == lines[1] == after[0].height  # no duplicates


def test_a_backfill_of_one_distributor_is_one_run_and_equals_incremental_loading(
    deployment: Deployment, launched: Launched
) -> None:
    assert launched.before[ONE_BACKFILL][2]["status"].to_list().count("superseded") == 1
    _backfilled(deployment, launched, ONE_BACKFILL)


def test_two_backfills_of_two_distributors_at_once_both_succeed_without_lock_errors(
    deployment: Deployment, launched: Launched
) -> None:
    for distributor in TWO_BACKFILLS:
        _backfilled(deployment, launched, distributor)
    # Re-loading Albion's range found no file for its late week: the cell stays missing, the check failed.
    grid = _asset_partitions(deployment, LOADS)
    assert grid["albion_uk"]["materialized"] == WEEKS[:3]
    assert LATE[1] in grid["albion_uk"]["missing"]
    assert _check_partitions(deployment, "report_on_time")["albion_uk"]["failed"] == [LATE[1]]


def _chromium(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            str(CHROMIUM),
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--window-size=1600,1000",
            "--virtual-time-budget=20000",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_the_ui_shows_the_throughline_asset_graph_in_a_browser(deployment: Deployment) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    screenshot = ARTIFACTS / "dagster-asset-graph.png"
    screenshot.unlink(missing_ok=True)
    lineage = f"http://127.0.0.1:{deployment.port}/asset-groups"
    shot = _chromium(f"--screenshot={screenshot}", lineage)
    assert shot.returncode == 0, shot.stderr[-3000:]
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert screenshot.stat().st_size > 20_000  # a rendered page, not a blank one
    # The same graph with the ops group opened: every group of Throughline's assets, and ops/loads.
    page = _chromium("--dump-dom", f"{lineage}?expanded=global@global:ops")
    assert page.returncode == 0, page.stderr[-3000:]
    assert "Global asset lineage" in page.stdout
    for group in ("landing", "staging", "ops", "core", "marts", "reference"):
        assert f">{group}<" in page.stdout, f"the asset group {group} is not on the graph"
    assert ">loads<" in page.stdout and "Asset checks" in page.stdout
