"""The code location: every asset, check, job, sensor and resource, assembled in one place.

`build_defs()` is the one assembly the UI (`dagster dev -w workspace.yaml` loads `defs`), the CLI
and the tests use.
"""

from __future__ import annotations

import dagster as dg

from pipelines.assets import LOAD_ASSETS
from pipelines.checks import sellout_exceptions
from pipelines.reference_assets import REFERENCE_ASSETS
from pipelines.resources import default_resources
from pipelines.sensors import build_inbox_sensor

INGEST_JOB = "ingest"


def build_defs() -> dg.Definitions:
    ingest_job = dg.define_asset_job(
        INGEST_JOB,
        selection=dg.AssetSelection.assets(*LOAD_ASSETS),
        description="Receive files for one distributor and report date, load them, and complete core.",
    )
    return dg.Definitions(
        assets=[*REFERENCE_ASSETS, *LOAD_ASSETS],
        asset_checks=[sellout_exceptions],
        jobs=[ingest_job],
        sensors=[build_inbox_sensor(ingest_job)],
        resources=default_resources(),
    )


defs = build_defs()
