"""Schedules: when the marts and the scorecards are rebuilt, and when each HTTP API is pulled.

`marts_daily` is stopped until someone starts it in the UI (Automation): publishing is a choice,
and a new code location should not write pages on its own. Each tick names its own day as `as_of`,
so a tick that starts late, or a retry, still describes the day it was due.

`landing_retention_daily` runs the landing retention job (`pipelines.retention`) every night and
is running from the start: the retention period is a promise about end-customer data, kept without
anyone remembering to run it (a new deployment has nothing old enough to delete for two years). A
tick is skipped while other runs are under way, since the period is applied while no load runs.

Each feed spec with an API source gets a schedule at its `source.schedule` (cron, UTC) that runs
the spec's pull job (`pipelines.pulls`); it runs from the start, since the spec asked for it.
"""

from __future__ import annotations

import dagster as dg

from pipelines.mart_assets import publish_marts
from pipelines.pulls import HOST_TAG, SPEC_TAG, apply_pool_limit, endpoint_of, pool_limit_of, pool_of
from pipelines.retention import other_runs_under_way
from schemas.feed_spec import FeedSpec

MARTS_DAILY = "marts_daily"
MARTS_DAILY_CRON = "0 6 * * *"
"""06:00 UTC: after the night's distributor files, before the vendor's working day in Europe."""


def build_marts_schedule(job: dg.UnresolvedAssetJobDefinition) -> dg.ScheduleDefinition:
    @dg.schedule(
        name=MARTS_DAILY,
        job=job,
        cron_schedule=MARTS_DAILY_CRON,
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.STOPPED,
        description="Rebuild the marts and the partner scorecards as of the tick's day (UTC).",
    )
    def marts_daily(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        as_of = context.scheduled_execution_time.date().isoformat()
        return dg.RunRequest(
            run_key=as_of,
            run_config={"ops": {publish_marts.op.name: {"config": {"as_of": as_of}}}},
            tags={"as_of": as_of},
        )

    return marts_daily


LANDING_RETENTION_DAILY = "landing_retention_daily"
LANDING_RETENTION_CRON = "0 3 * * *"
"""03:00 UTC: after the day's loads, before the night's distributor files (about 06:00 UTC)."""


def build_retention_schedule(job: dg.JobDefinition) -> dg.ScheduleDefinition:
    @dg.schedule(
        name=LANDING_RETENTION_DAILY,
        job_name=job.name,  # by name: Definitions binds the job's resources
        cron_schedule=LANDING_RETENTION_CRON,
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=(
            "Delete from landing the files older than the retention period whose load finished "
            "(`throughline retention`); skipped while other runs are under way."
        ),
    )
    def landing_retention_daily(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
        busy = other_runs_under_way(context.instance)
        if busy:
            return dg.SkipReason(
                f"{len(busy)} run(s) under way: the retention period is applied while no load runs"
            )
        day = context.scheduled_execution_time.date().isoformat()
        return dg.RunRequest(run_key=day, tags={"due": day})

    return landing_retention_daily


def pull_schedule_name(spec_id: str) -> str:
    return f"pull_{spec_id}_schedule"


def build_api_schedule(spec: FeedSpec, job: dg.JobDefinition) -> dg.ScheduleDefinition:
    """The schedule of one spec's API source: its pull job at the spec's cron (UTC)."""
    source = spec.source
    assert source is not None and source.type == "api"

    @dg.schedule(
        name=pull_schedule_name(spec.id),
        job_name=job.name,  # by name: Definitions binds the job's resources
        cron_schedule=source.schedule,
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=f"Pull `{spec.id}` from {source.base_url}{source.path} at `{source.schedule}` (UTC).",
    )
    def api_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        apply_pool_limit(context.instance, pool_of(source), pool_limit_of(source))
        due = context.scheduled_execution_time.isoformat()
        return dg.RunRequest(
            run_key=f"{spec.id}/{due}", tags={SPEC_TAG: spec.id, HOST_TAG: endpoint_of(source), "due": due}
        )

    return api_schedule
