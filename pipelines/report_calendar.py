"""The report calendar: what Dagster has still to record of the ledger, and the job that records it.

Loads made outside the load asset (`throughline ingest`, `reprocess`, the demo, pull runs) are
recorded as materializations of the seven load assets, with their load checks, so the partition
grid is true whoever loaded; every report period due by its distributor's cadence gets its
`report_on_time` result, so a late report fails in the UI without anyone running anything. The
`report_calendar` sensor (`sensors.py`) launches the job when `plan_calendar` finds work; the run
plans again when it starts, so it records what is true then. Results come from a run, never as
runless events: Dagster 1.13 stores one runless result per check and partition, not a history.
"""

# No `from __future__ import annotations`: Dagster reads the `context` annotation when it defines the op.
import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import dagster as dg
import polars as pl

from ingest.periods import ReportPeriod, loads_with_partition, report_periods
from pipelines.assets import (
    CORE_SELLOUT,
    LOAD_ASSET_KEYS,
    LOADS,
    STAGING_INVENTORY,
    STAGING_QUARANTINE,
    STAGING_SELLOUT,
)
from pipelines.checks import (
    REPORT_ON_TIME,
    latest_materializations,
    load_check_evaluations,
    quarantine_query,
    report_on_time_evaluation,
)
from pipelines.partitions import add_partitions, partition_key
from pipelines.resources import ThroughlineResource
from schemas.tables import LOADS_COLUMNS
from warehouse.ledger import LoadRow

REPORT_CALENDAR = "report_calendar"
NOT_YET_FINISHED = ("staged",)
"""A partition with a load still `staged` is in some run's (or command's) hands; it is recorded once
core is complete."""
REPORT_ON_TIME_KEY = dg.AssetCheckKey(LOADS, REPORT_ON_TIME)
UNDER_WAY = [
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]
"""Runs whose loads may not be recorded yet: while one is under way, nothing is recorded for it."""


@dataclass
class CalendarPlan:
    """What is left to record as of `now`."""

    now: datetime
    pairs: list[tuple[str, date]] = field(default_factory=list)
    """Every (distributor, period) that is a partition: delivered, or due."""
    unrecorded: dict[str, pl.DataFrame] = field(default_factory=dict)
    """Partition -> its loads, finished but recorded by no run."""
    due: dict[str, ReportPeriod] = field(default_factory=dict)
    stale: list[str] = field(default_factory=list)
    """Due partitions whose latest `report_on_time` no longer fits (never judged, status changed, or
    judging an older materialization)."""
    missing: list[str] = field(default_factory=list)
    """Due partitions with no report: judged again each day (days late)."""

    def missing_key(self) -> str:
        """The missing reports as of today: they are judged again when this changes (a day passed)."""
        return _digest([self.now.date().isoformat(), *self.missing])

    def run_key(self, judged_missing: str | None) -> str | None:
        """Identifies the work left, given the `missing_key` last judged; None when there is none."""
        missing = bool(self.missing) and self.missing_key() != judged_missing
        if not (self.unrecorded or self.stale or missing):
            return None
        return _digest(
            {
                "unrecorded": {p: _fingerprint(rows) for p, rows in sorted(self.unrecorded.items())},
                "stale": self.stale,
                "missing": self.missing_key() if missing else None,
            }
        )

    def summary(self) -> str:
        return f"{len(self.unrecorded)} to record, {len(self.stale)} to judge, {len(self.missing)} missing"


def _digest(value: object) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:32]


def _fingerprint(rows: pl.DataFrame) -> str:
    ordered = rows.sort("load_id")
    listed = "\n".join(f"{i}:{s}" for i, s in zip(ordered["load_id"], ordered["status"], strict=True))
    return hashlib.sha256(listed.encode()).hexdigest()[:24]


def plan_calendar(
    ingest, instance: dg.DagsterInstance, now: datetime, *, record: bool = True
) -> CalendarPlan:
    """What the ledger and the calendar hold that Dagster has not recorded yet."""
    plan = CalendarPlan(now)
    loads = loads_with_partition(ingest)
    periods = report_periods(ingest, now.date())
    plan.pairs = sorted(
        {*zip(loads["distributor_id"], loads["report_date"], strict=True)}
        | {(p.distributor_id, p.period_start) for p in periods}
    )
    delivered = loads.filter(pl.col("status") != "duplicate")
    by_partition = {
        str(partition_key(distributor_id, report_date)): rows
        for (distributor_id, report_date), rows in delivered.group_by("distributor_id", "report_date")
    }
    finished = {
        p: rows for p, rows in by_partition.items() if not rows["status"].is_in(NOT_YET_FINISHED).any()
    }
    if record:
        recorded = {key: latest_materializations(instance, key, finished) for key in (LOADS, CORE_SELLOUT)}
        for partition, rows in sorted(finished.items()):
            stamps = [recorded[key][partition].timestamp for key in recorded if partition in recorded[key]]
            if not stamps or max(stamps) < rows["finished_at"].max().timestamp():
                plan.unrecorded[partition] = rows
    plan.due = {str(partition_key(p.distributor_id, p.period_start)): p for p in periods}
    plan.missing = sorted(p for p, period in plan.due.items() if period.status == "missing")
    materialized = latest_materializations(instance, LOADS, plan.due)
    judged = {
        info.partition_key: info
        for info in instance.event_log_storage.get_asset_check_partition_info(
            [REPORT_ON_TIME_KEY], partition_keys=list(plan.due)
        )
    }
    for partition, period in sorted(plan.due.items()):
        info = judged.get(partition)
        target = materialized[partition].storage_id if partition in materialized else None
        fits = (
            info is not None
            and info.latest_execution_status.value in ("SUCCEEDED", "FAILED")
            and (info.latest_execution_status.value == "SUCCEEDED") == (period.status == "received")
            and info.latest_target_materialization_storage_id == target
        )
        if not fits or partition in plan.unrecorded:
            plan.stale.append(partition)
    return plan


def _mirrored_materializations(partition: str, rows: pl.DataFrame) -> list[dg.AssetMaterialization]:
    """The materializations a load run would have recorded for the partition."""
    load_ids = sorted(rows["load_id"].to_list())
    common = {
        "recorded_by": "report_calendar: loaded outside the load asset (a pull run, or throughline "
        "ingest, reprocess or demo)",
        "files": rows.height,
        "load_ids": dg.MetadataValue.json(load_ids),
    }
    by_key: dict[dg.AssetKey, dict[str, object]] = {key: dict(common) for key in LOAD_ASSET_KEYS}
    for key, dataset in ((STAGING_SELLOUT, "sellout"), (STAGING_INVENTORY, "inventory")):
        mine = rows.filter((pl.col("dataset") == dataset) & (pl.col("status") != "rejected"))
        by_key[key]["dagster/row_count"] = int(mine["rows_loaded"].sum())
    by_key[STAGING_QUARANTINE].update(
        {"dagster/row_count": int(rows["rows_quarantined"].sum()), "show_rows": quarantine_query(load_ids)}
    )
    by_key[LOADS]["rejected"] = int((rows["status"] == "rejected").sum())
    by_key[LOADS]["schema_drift"] = dg.MetadataValue.json(
        {
            name: drift.splitlines()
            for name, drift in rows.select("source_name", "schema_drift").iter_rows()
            if drift
        }
    )
    return [
        dg.AssetMaterialization(key, partition=partition, metadata=metadata)
        for key, metadata in by_key.items()
    ]


def _load_rows(rows: pl.DataFrame) -> list[LoadRow]:
    return [LoadRow(**{name: row[name] for name in LOADS_COLUMNS}) for row in rows.iter_rows(named=True)]


@dg.op(name="record_calendar", out=dg.Out(dg.Nothing))
def record_calendar(context: dg.OpExecutionContext, throughline: ThroughlineResource):
    """Record the loads made outside the load asset, then judge every report period that needs it."""
    now = datetime.now(UTC)
    ingest = throughline.ingest_context(context.log)
    instance = context.instance
    others = [
        run for run in instance.get_runs(dg.RunsFilter(statuses=UNDER_WAY)) if run.run_id != context.run_id
    ]
    plan = plan_calendar(ingest, instance, now, record=not others)
    add_partitions(instance, plan.pairs)
    for partition, rows in sorted(plan.unrecorded.items()):
        context.log.info(f"{partition}: {rows.height} load(s) made outside the load asset; recording them")
        yield from _mirrored_materializations(partition, rows)
    judged = latest_materializations(instance, LOADS, [*plan.unrecorded, *plan.due])
    for partition, rows in sorted(plan.unrecorded.items()):
        yield from load_check_evaluations(ingest.storage, _load_rows(rows), partition, judged.get(partition))
    results = [
        report_on_time_evaluation(plan.due[p], p, judged.get(p), now)
        for p in plan.stale
        if plan.due[p].status != "missing"
    ]
    # Missing reports go last, so the check's latest result in the UI is one while any is outstanding.
    yield from sorted(results, key=lambda result: not result.passed)
    for partition in plan.missing:
        context.log.warning(f"{partition}: {plan.due[partition].distributor_id}'s report is missing")
        yield report_on_time_evaluation(plan.due[partition], partition, judged.get(partition), now)


@dg.job(
    name=REPORT_CALENDAR,
    description=(
        "Record loads made outside the load asset (pulls, the CLI, the demo) as materializations with their "
        "load checks, and judge `report_on_time` for every report period due by each distributor's cadence."
    ),
)
def report_calendar_job() -> None:
    record_calendar()
