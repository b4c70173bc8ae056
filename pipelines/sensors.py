"""Sensors: the inbox watcher, one watcher per SFTP source, and the report calendar. They decide
when; runs do the work.

Inbox: files dropped in `inbox/<distributor_id>/` launch ingest runs once they stop growing. The
cursor is a manifest of what was seen (path -> size, mtime), not a wall-clock mark, so a file
copied in with an old modification time is never skipped. A file is launched only once it has
stopped growing (same size and mtime on two consecutive ticks). The ready files of one
distributor and report date share one run; the run key names the files' versions, so a file
launches one run. Which distributor, spec and report date a file has is `ingest.route`'s call.

SFTP: each tick lists the remote folder (one listing, no download) and, when files are complete
and new, requests one run of the spec's pull job (`pipelines.pulls`), which downloads, lands and
loads them. The cursor is the source's manifest as the sensor sees it (the last look, and what
the pulls took), never the clock.

Report calendar: adds the partitions of every period a distributor has delivered or owes (so a
missing report is a missing cell at once), and launches the `report_calendar` job when there is
something to record: loads made outside the load asset (`throughline ingest`, `reprocess`, the demo,
pull runs), or a report whose lateness changed (a week fell due, a day passed). It waits while
runs are under way. Its cursor is the run key of what it last asked for, never the clock.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from datetime import UTC, datetime

import dagster as dg

from connectors.channel import load_state
from connectors.folder import list_inbox
from connectors.manifest import Manifest
from connectors.sftp import SftpConnector
from ingest.pull import PULL_ERRORS, state_file
from ingest.route import report_date_of, spec_for
from pipelines.assets import LOAD_OP
from pipelines.partitions import add_requests, partition_key
from pipelines.pulls import (
    HOST_TAG,
    SPEC_TAG,
    apply_pool_limit,
    pool_limit_of,
    pool_of,
    pull_op_name,
)
from pipelines.report_calendar import REPORT_CALENDAR, plan_calendar
from pipelines.resources import ThroughlineResource
from schemas.feed_spec import FeedSpec, load_spec_catalog, validate_distributor_id

INBOX_SENSOR_INTERVAL_SECONDS = 15
REPORT_CALENDAR_INTERVAL_SECONDS = 30
DISTRIBUTOR_TAG = "throughline/distributor"


def receive_run_config(paths: list[str], channel: str) -> dict:
    """Run config that makes a run of the ingest job receive `paths`."""
    return {"ops": {LOAD_OP: {"config": {"paths": paths, "channel": channel}}}}


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
                    tags={"throughline/files": str(len(files)), DISTRIBUTOR_TAG: distributor_id},
                )
            )
        return dg.SensorResult(
            run_requests=run_requests,
            dynamic_partitions_requests=add_requests(context.instance, groups),
            cursor=json.dumps(seen, sort_keys=True),
        )

    return inbox_sensor


READY_TAG = "throughline/ready"
"""The hash of the file versions a pull run was requested for."""
UNFINISHED_RUN_STATUSES = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]
FAILED_RUN_STATUSES = [dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED]


def pull_sensor_name(spec_id: str) -> str:
    return f"pull_{spec_id}_sensor"


class SourceUnavailableError(RuntimeError):
    """The sensor could not look at a source; the message names it and the cause, never a secret."""


def build_sftp_sensor(spec: FeedSpec, job: dg.JobDefinition) -> dg.SensorDefinition:
    """The sensor of one spec's SFTP source: a pull run when the listing shows complete, new files."""
    source = spec.source
    assert source is not None and source.type == "sftp"

    @dg.sensor(
        name=pull_sensor_name(spec.id),
        job_name=job.name,  # by name: Definitions binds the job's resources
        minimum_interval_seconds=source.poll_interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            f"Lists {source.endpoint}{source.remote_dir} every {source.poll_interval_seconds} s and "
            f"launches `{job.name}` when complete new files are there."
        ),
    )
    def sftp_sensor(context: dg.SensorEvaluationContext, throughline: ThroughlineResource) -> dg.SensorResult:
        settings = throughline.settings
        current = load_spec_catalog(settings.feeds_dir).specs.get(spec.id)
        if current is None or current.source is None or current.source.type != "sftp":
            return dg.SensorResult(
                skip_reason=f"feed spec {spec.id} has no sftp source any more (or is invalid); "
                "fix it, or reload the code location to drop this sensor",
                cursor=context.cursor,
            )
        # What the pulls took is theirs (saved after landing); the last look is the sensor's own.
        taken = Manifest.from_json(load_state(state_file(settings, spec.id)))
        last_look = Manifest.from_json(context.cursor) if context.cursor else taken
        manifest = Manifest(looks=dict(last_look.looks), taken=taken.taken, hashes=taken.hashes)
        try:
            with SftpConnector(current.source) as connector:
                listing = connector.list_remote()
                ready, waiting = connector.ready_files(listing, manifest)
        except PULL_ERRORS as error:
            # The connectors' messages name host, user and variable, never a secret value.
            raise SourceUnavailableError(f"{spec.id}: cannot list the sftp source: {error}") from None
        manifest.observe(listing.files)
        # The content hashes stay in the state file: the cursor is stored at every tick.
        cursor = Manifest(looks=manifest.looks, taken=manifest.taken).to_json()
        for remote in waiting:
            context.log.info(f"{spec.id}: {remote.name} is not complete yet")
        if not ready:
            return dg.SensorResult(skip_reason=f"{spec.id}: no complete new file", cursor=cursor)
        instance = context.instance
        if instance.get_runs_count(dg.RunsFilter(tags={SPEC_TAG: spec.id}, statuses=UNFINISHED_RUN_STATUSES)):
            # One pull of a spec at a time: the next tick sees what that run took.
            return dg.SensorResult(skip_reason=f"{spec.id}: a pull is under way", cursor=cursor)
        versions = sorted(remote.run_key for remote in ready)
        ready_key = hashlib.sha256("\n".join(versions).encode()).hexdigest()[:32]
        # A run that failed for good left these files untaken: ask again (a new run key), never skip them.
        failed = instance.get_runs_count(
            dg.RunsFilter(tags={SPEC_TAG: spec.id, READY_TAG: ready_key}, statuses=FAILED_RUN_STATUSES)
        )
        apply_pool_limit(instance, pool_of(current.source), pool_limit_of(current.source))
        seen = [{"name": r.name, "size": r.size, "mtime": r.mtime} for r in ready]
        return dg.SensorResult(
            run_requests=[
                dg.RunRequest(
                    run_key=f"{spec.id}/{ready_key}" + (f"/again{failed}" if failed else ""),
                    run_config={"ops": {pull_op_name(spec.id): {"config": {"seen_complete": seen}}}},
                    tags={
                        SPEC_TAG: spec.id,
                        HOST_TAG: current.source.endpoint,
                        READY_TAG: ready_key,
                        "throughline/files": str(len(ready)),
                    },
                )
            ],
            cursor=cursor,
        )

    return sftp_sensor


def build_report_calendar_sensor(job: dg.JobDefinition) -> dg.SensorDefinition:
    """Launches `report_calendar` when the ledger or the calendar gives it something to record."""

    @dg.sensor(
        name=REPORT_CALENDAR,
        job_name=job.name,  # by name: Definitions binds the job's resources
        minimum_interval_seconds=REPORT_CALENDAR_INTERVAL_SECONDS,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            "Adds the partitions of every report period delivered or owed, and launches `report_calendar` "
            "when loads made outside the load asset are unrecorded or a report's lateness changed."
        ),
    )
    def report_calendar(
        context: dg.SensorEvaluationContext, throughline: ThroughlineResource
    ) -> dg.SensorResult:
        instance = context.instance
        if instance.get_runs_count(dg.RunsFilter(statuses=UNFINISHED_RUN_STATUSES)):
            # What a run under way loads is recorded by that run; look again once it has finished.
            return dg.SensorResult(skip_reason="runs are under way", cursor=context.cursor)
        plan = plan_calendar(throughline.ingest_context(), instance, datetime.now(UTC))
        requests = add_requests(instance, plan.pairs)
        judged_missing = context.cursor or None
        key = plan.run_key(judged_missing)
        if key is None:
            return dg.SensorResult(
                skip_reason="nothing to record", dynamic_partitions_requests=requests, cursor=context.cursor
            )
        if plan.missing:
            context.log.info(f"reports missing: {', '.join(plan.missing)}")
        return dg.SensorResult(
            run_requests=[dg.RunRequest(run_key=key, tags={"throughline/calendar": plan.summary()})],
            dynamic_partitions_requests=requests,
            cursor=plan.missing_key(),
        )

    return report_calendar
