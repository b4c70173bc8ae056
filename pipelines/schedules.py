"""Schedules: when the marts and the scorecards are rebuilt without anyone asking.

`marts_daily` is stopped until someone starts it in the UI (Automation): publishing is a choice,
and a new code location should not write pages on its own. Each tick names its own day as `as_of`,
so a tick that starts late, or a retry, still describes the day it was due.
"""

from __future__ import annotations

import dagster as dg

from pipelines.mart_assets import publish_marts

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
