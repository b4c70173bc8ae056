"""Sensors: the inbox watcher. Files dropped in `inbox/<distributor_id>/` launch runs once they stop growing.

The cursor is a manifest of what was seen (path -> size, mtime), not a wall-clock mark, so a file
copied in with an old modification time is never skipped. A file is launched only once it has
stopped growing (same size and mtime on two consecutive ticks). The ready files of one
distributor and report date share one run; the run key names the files' versions, so a file
launches one run. Which distributor, spec and report date a file has is `ingest.route`'s call.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict

import dagster as dg

from connectors.folder import list_inbox
from ingest.route import report_date_of, spec_for
from pipelines.assets import RECEIVED_FILES
from pipelines.partitions import distributor_partitions, partition_key
from pipelines.resources import ThroughlineResource
from schemas.feed_spec import load_spec_catalog, validate_distributor_id

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
        description="Launches ingest runs for files dropped in inbox/<distributor_id>/, once they stop growing.",
    )
    def inbox_sensor(
        context: dg.SensorEvaluationContext, throughline: ThroughlineResource
    ) -> dg.SensorResult:
        settings = throughline.settings
        previous: dict[str, list[int]] = json.loads(context.cursor) if context.cursor else {}
        catalog = load_spec_catalog(settings.feeds_dir)
        for path, error in catalog.errors.items():
            context.log.error(
                f"feed spec {path.name} is invalid; its distributor's files are rejected:\n{error}"
            )
        seen: dict[str, list[int]] = {}
        groups: dict[tuple[str, object], list] = defaultdict(list)
        for waiting in list_inbox(settings.inbox_dir):
            key = str(waiting.path)
            state = [waiting.size, waiting.mtime_ns]
            seen[key] = state
            if previous.get(key) != state:
                continue  # new or still growing: look again next tick
            try:
                distributor_id = validate_distributor_id(waiting.distributor_id)
            except ValueError as error:
                context.log.error(f"inbox folder {waiting.distributor_id!r} is not a distributor id: {error}")
                continue
            spec, _ = spec_for(catalog, distributor_id, waiting.path.name)
            report_date = report_date_of(spec, waiting.path.name, waiting.received_at)
            groups[(distributor_id, report_date)].append(waiting)
        run_requests = []
        for (distributor_id, report_date), files in sorted(groups.items()):
            files.sort(key=lambda f: (f.mtime_ns, f.path.name))
            versions = "\n".join(f.run_key for f in files)
            run_requests.append(
                dg.RunRequest(
                    run_key=hashlib.sha256(versions.encode()).hexdigest()[:32],
                    partition_key=partition_key(distributor_id, report_date),
                    run_config=receive_run_config([str(f.path) for f in files], "folder"),
                    tags={"throughline/files": str(len(files)), "throughline/distributor": distributor_id},
                )
            )
        known = set(context.instance.get_dynamic_partitions(distributor_partitions.name))
        new = sorted({distributor for distributor, _ in groups} - known)
        return dg.SensorResult(
            run_requests=run_requests,
            dynamic_partitions_requests=[distributor_partitions.build_add_request(new)] if new else [],
            cursor=json.dumps(seen, sort_keys=True),
        )

    return inbox_sensor
