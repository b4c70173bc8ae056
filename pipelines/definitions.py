"""The code location: every asset, check, job, sensor, schedule and resource, assembled in one place.

`build_defs()` is the one assembly the deployment (the code server of `pipelines.serve` loads
`defs`), the dagster CLI (`workspace.yaml`) and the tests use. The pull jobs, their sensors (SFTP) and schedules (API) come from the feed
specs with a `source:`, read when the code location loads: reload it after adding such a spec.
"""

from __future__ import annotations

import logging
from pathlib import Path

import dagster as dg

from pipelines.assets import LOAD_ASSETS
from pipelines.checks import sellout_exceptions
from pipelines.executors import ingest_executor
from pipelines.mart_assets import MART_ASSETS
from pipelines.mart_checks import mart_checks
from pipelines.pulls import build_pull_job
from pipelines.reference_assets import REFERENCE_ASSETS
from pipelines.report_calendar import report_calendar_job
from pipelines.resources import ThroughlineResource, default_resources
from pipelines.retention import landing_retention_job
from pipelines.schedules import build_api_schedule, build_marts_schedule, build_retention_schedule
from pipelines.sensors import build_inbox_sensor, build_report_calendar_sensor, build_sftp_sensor
from schemas.feed_spec import load_spec_catalog
from schemas.settings import ThroughlineSettings

INGEST_JOB = "ingest"
MARTS_JOB = "marts"

log = logging.getLogger(__name__)


def build_pull_defs(
    settings: ThroughlineSettings,
) -> tuple[list[dg.JobDefinition], list[dg.SensorDefinition], list[dg.ScheduleDefinition]]:
    """A pull job per spec with a source, and its sensor (SFTP) or schedule (API); a bad spec is skipped."""
    catalog = load_spec_catalog(settings.feeds_dir)
    for path in catalog.errors:
        log.warning(
            "feed spec %s is invalid: nothing of it is pulled (`throughline feeds check` says why)", path.name
        )
    jobs, sensors, schedules = [], [], []
    for _, spec in sorted(catalog.specs.items()):
        if spec.source is None:
            continue
        try:
            job = build_pull_job(spec)
            if spec.source.type == "sftp":
                sensors.append(build_sftp_sensor(spec, job))
            else:
                schedules.append(build_api_schedule(spec, job))
        except Exception as error:  # one spec Dagster cannot take (e.g. its cron) never stops the others
            log.warning("feed spec %s: its pull is not scheduled: %s", spec.id, error)
            continue
        jobs.append(job)
    return jobs, sensors, schedules


def build_defs(home: Path | None = None) -> dg.Definitions:
    """Everything of the code location, for the home `home` (THROUGHLINE_HOME when None)."""
    settings = ThroughlineSettings(home=home.resolve()) if home else ThroughlineSettings.from_env()
    ingest_job = dg.define_asset_job(
        INGEST_JOB,
        # The load reports its own checks and the exception checks' results; the standalone
        # exception check (for *Execute* in the UI) would only wait on an output the load skips.
        selection=dg.AssetSelection.assets(*LOAD_ASSETS).without_checks()
        | dg.AssetSelection.checks(*LOAD_ASSETS),
        description=(
            "Receive and load the files of a distributor's report periods (or re-load what landing "
            "holds for them), then complete core. A backfill runs once per distributor."
        ),
        # Dagster's default, or the Dask cluster THROUGHLINE_DASK_SCHEDULER names (docs/deploy.md).
        executor_def=ingest_executor(),
    )
    marts_job = dg.define_asset_job(
        MARTS_JOB,
        selection=dg.AssetSelection.assets(*MART_ASSETS),
        description="Build the marts as of a day, store them, write the partner scorecards, and check the marts.",
    )
    pull_jobs, pull_sensors, pull_schedules = build_pull_defs(settings)
    resources = {"throughline": ThroughlineResource(home=str(home))} if home else default_resources()
    return dg.Definitions(
        assets=[*REFERENCE_ASSETS, *LOAD_ASSETS, *MART_ASSETS],
        asset_checks=[sellout_exceptions, mart_checks],
        jobs=[ingest_job, marts_job, report_calendar_job, landing_retention_job, *pull_jobs],
        schedules=[
            build_marts_schedule(marts_job),
            build_retention_schedule(landing_retention_job),
            *pull_schedules,
        ],
        sensors=[
            build_inbox_sensor(ingest_job),
            build_report_calendar_sensor(report_calendar_job),
            *pull_sensors,
        ],
        resources=resources,
    )


@dg.definitions
def defs() -> dg.Definitions:
    """Loaded by Dagster when the code location loads (not at import): the feed specs are read then."""
    return build_defs()
