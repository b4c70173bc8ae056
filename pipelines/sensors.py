"""Sensors: the inbox watcher. A file dropped in `inbox/<distributor_id>/` launches exactly one run.

The cursor is a manifest of what was seen (path -> size, mtime), not a wall-clock mark, so a file
copied in with an old modification time is never skipped. A file is launched only once it has
stopped growing (same size and mtime on two consecutive ticks); the run key names the file's
version, so one file launches one run. What happens to files that match no spec or fail whole is
decided by the run (`loads` says why; the file is moved to `rejected/`).
"""

from __future__ import annotations

import json

import dagster as dg

from connectors.folder import list_inbox
from pipelines.assets import RECEIVED_FILES
from pipelines.partitions import distributor_partitions, partition_key, report_date_of
from pipelines.resources import ThroughlineResource
from schemas.feed_spec import FeedSpecError, load_feed_specs
from warehouse.loading import match_spec

INBOX_SENSOR_INTERVAL_SECONDS = 15
RECEIVED_FILES_OP = "__".join(RECEIVED_FILES.path)


def receive_run_config(paths: list[str], channel: str) -> dict:
    """Run config that makes a run of the ingest job receive `paths`."""
    return {"ops": {RECEIVED_FILES_OP: {"config": {"paths": paths, "channel": channel}}}}


def build_inbox_sensor(job: dg.UnresolvedAssetJobDefinition) -> dg.SensorDefinition:
    @dg.sensor(
        name="inbox_sensor",
        job=job,
        minimum_interval_seconds=INBOX_SENSOR_INTERVAL_SECONDS,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Launches one ingest run per file dropped in inbox/<distributor_id>/, once it stops growing.",
    )
    def inbox_sensor(
        context: dg.SensorEvaluationContext, throughline: ThroughlineResource
    ) -> dg.SensorResult:
        settings = throughline.settings
        settings.ensure_layout()
        previous: dict[str, list[int]] = json.loads(context.cursor) if context.cursor else {}
        try:
            specs = load_feed_specs(settings.feeds_dir)
        except FeedSpecError as error:
            context.log.error(
                f"feed specs have errors; files are still received and rejected with the reason:\n{error}"
            )
            specs = {}
        seen: dict[str, list[int]] = {}
        run_requests: list[dg.RunRequest] = []
        distributors: set[str] = set()
        for waiting in list_inbox(settings.inbox_dir):
            key = str(waiting.path)
            state = [waiting.size, waiting.mtime_ns]
            seen[key] = state
            if previous.get(key) != state:
                continue  # new or still growing: look again next tick
            spec = match_spec(specs, waiting.distributor_id, waiting.path.name)
            report_date = report_date_of(spec, waiting.path.name, waiting.received_at)
            distributors.add(waiting.distributor_id)
            run_requests.append(
                dg.RunRequest(
                    run_key=waiting.run_key,
                    partition_key=partition_key(waiting.distributor_id, report_date),
                    run_config=receive_run_config([key], "folder"),
                    tags={"throughline/file": waiting.path.name},
                )
            )
        known = set(context.instance.get_dynamic_partitions(distributor_partitions.name))
        new = sorted(distributors - known)
        return dg.SensorResult(
            run_requests=run_requests,
            dynamic_partitions_requests=[distributor_partitions.build_add_request(new)] if new else [],
            cursor=json.dumps(seen, sort_keys=True),
        )

    return inbox_sensor
