"""The code location: every asset, check, job, sensor and resource, assembled in one place.

`dagster dev -w workspace.yaml` and `dagster definitions validate` load `defs` from here.
"""

from __future__ import annotations

import dagster as dg

from pipelines.assets import LOAD_ASSETS
from pipelines.resources import default_resources
from pipelines.sensors import build_inbox_sensor

ingest_job = dg.define_asset_job(
    "ingest",
    selection=dg.AssetSelection.assets(*LOAD_ASSETS),
    description="Receive files for one distributor and report date, load them, and rebuild core.",
)
inbox_sensor = build_inbox_sensor(ingest_job)

defs = dg.Definitions(
    assets=LOAD_ASSETS,
    jobs=[ingest_job],
    sensors=[inbox_sensor],
    resources=default_resources(),
)
