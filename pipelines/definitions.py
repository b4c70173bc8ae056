"""The code location: every asset, check, job, sensor and resource, assembled in one place.

`build_defs()` is the one assembly the UI (`dagster dev -w workspace.yaml` loads `defs`), the CLI
and the tests use.
"""

from __future__ import annotations

import dagster as dg

from pipelines.assets import LOAD_ASSETS
from pipelines.checks import sellout_exceptions
from pipelines.mart_assets import MART_ASSETS
from pipelines.mart_checks import mart_checks
from pipelines.reference_assets import REFERENCE_ASSETS
from pipelines.resources import default_resources
from pipelines.schedules import build_marts_schedule
from pipelines.sensors import build_inbox_sensor

INGEST_JOB = "ingest"
MARTS_JOB = "marts"


def build_defs() -> dg.Definitions:
    ingest_job = dg.define_asset_job(
        INGEST_JOB,
        selection=dg.AssetSelection.assets(*LOAD_ASSETS),
        description="Receive files for one distributor and report date, load them, and complete core.",
    )
    marts_job = dg.define_asset_job(
        MARTS_JOB,
        selection=dg.AssetSelection.assets(*MART_ASSETS),
        description="Build the marts as of a day, store them, write the partner scorecards, and check the marts.",
    )
    return dg.Definitions(
        assets=[*REFERENCE_ASSETS, *LOAD_ASSETS, *MART_ASSETS],
        asset_checks=[sellout_exceptions, mart_checks],
        jobs=[ingest_job, marts_job],
        schedules=[build_marts_schedule(marts_job)],
        sensors=[build_inbox_sensor(ingest_job)],
        resources=default_resources(),
    )


defs = build_defs()
