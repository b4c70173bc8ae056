"""Sensors: the inbox watcher, one watcher per SFTP source, and the report calendar. They decide
when; runs do the work.

Inbox: files dropped in `inbox/<distributor_id>/` launch ingest runs once they stop growing. The
cursor is a manifest of what was seen (path -> size, mtime), not a wall-clock mark, so a file
copied in with an old modification time is never skipped. A file is launched only once it has
stopped growing (same size and mtime on two consecutive ticks). At each tick the ready files of one
distributor share one run (up to MAX_FILES_PER_RUN of them, oldest first; the rest go at the next
tick), whatever their report periods: one period is the run's partition, several are a partition
range of that distributor. The cursor also remembers which run each file version was requested in,
so a file waiting in the inbox while its run is queued or under way is not requested again; it is
requested again (a new run key) only when that run has finished and the file is still there. The
run key names the files' versions, so a tick evaluated twice launches one run. Which distributor,
spec and report date a file has is `ingest.route`'s call.

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
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import dagster as dg

from connectors.channel import load_state
from connectors.folder import InboxFile, list_inbox
from connectors.manifest import Manifest
from connectors.sftp import SftpConnector
from ingest.pull import PULL_ERRORS, state_file
from ingest.route import report_date_of, spec_for
from pipelines.assets import LOAD_OP
from pipelines.partitions import RANGE_END_TAG, RANGE_START_TAG, add_requests, key_range, partition_key
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
RUN_KEY_TAG = "dagster/run_key"
MAX_FILES_PER_RUN = 250
"""At most this many files of a distributor in one inbox run, so one run's log and duration stay
bounded; the others wait for the next tick (a run per tick and distributor, queued in order)."""


@dataclass
class InboxCursor:
    """What the inbox sensor saw at its last tick (path -> [size, mtime_ns]) and, for each file
    version still in the inbox that it requested, the run key of that run (file run key -> run key)."""

    seen: dict[str, list[int]] = field(default_factory=dict)
    requested: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_json(cls, text: str | None) -> InboxCursor:
        data = json.loads(text) if text else {}
        return cls(seen=data.get("seen", {}), requested=data.get("requested", {}))

    def to_json(self) -> str:
        return json.dumps({"seen": self.seen, "requested": self.requested}, sort_keys=True)


def receive_run_config(paths: list[str], channel: str) -> dict:
    """Run config that makes a run of the ingest job receive `paths`."""
    return {"ops": {LOAD_OP: {"config": {"paths": paths, "channel": channel}}}}


def _batch_key(files: list[InboxFile], previous: str | None) -> str:
    """The run key of a batch: the hash of its files' versions (and, when they are requested again,
    of the run key they were requested under before)."""
    versions = "\n".join([*(f.run_key for f in files), previous or ""])
    return hashlib.sha256(versions.encode()).hexdigest()[:32]


def _finished_run_keys(instance: dg.DagsterInstance, run_keys: set[str]) -> set[str]:
    """Of `run_keys`, those whose run has finished (succeeded, failed or canceled)."""
    finished = set()
    for key in run_keys:
        runs = instance.get_runs(dg.RunsFilter(tags={RUN_KEY_TAG: key}), limit=1)
        if runs and runs[0].is_finished:
            finished.add(key)
    return finished


def build_inbox_sensor(job: dg.UnresolvedAssetJobDefinition) -> dg.SensorDefinition:
    @dg.sensor(
        name="inbox_sensor",
        job=job,
        minimum_interval_seconds=INBOX_SENSOR_INTERVAL_SECONDS,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            "Launches ingest runs for files dropped in inbox/<distributor_id>/, once they stop growing: "
            "one run per distributor and tick."
        ),
    )
    def inbox_sensor(
        context: dg.SensorEvaluationContext, throughline: ThroughlineResource
    ) -> dg.SensorResult:
        settings = throughline.settings
        cursor = InboxCursor.from_json(context.cursor)
        catalog = load_spec_catalog(settings.feeds_dir)
        for path, error in catalog.errors.items():
            context.log.error(
                f"feed spec {path.name} is invalid; its distributor's files are rejected:\n{error}"
            )
        waiting_files = list_inbox(settings.inbox_dir)
        # A file version requested in a run that has finished, yet still here, is requested again.
        done = _finished_run_keys(
            context.instance,
            {cursor.requested[f.run_key] for f in waiting_files if f.run_key in cursor.requested},
        )
        seen: dict[str, list[int]] = {}
        requested: dict[str, str] = {}
        ready: dict[str, list[InboxFile]] = defaultdict(list)
        again: dict[str, str] = {}
        for waiting in waiting_files:
            state = [waiting.size, waiting.mtime_ns]
            seen[str(waiting.path)] = state
            if cursor.seen.get(str(waiting.path)) != state:
                continue  # new or still growing: look again next tick
            earlier = cursor.requested.get(waiting.run_key)
            if earlier is not None and earlier not in done:
                requested[waiting.run_key] = earlier  # its run is queued or under way
                continue
            try:
                distributor_id = validate_distributor_id(waiting.distributor_id)
            except ValueError as error:
                context.log.error(f"inbox folder {waiting.distributor_id!r} is not a distributor id: {error}")
                continue
            ready[distributor_id].append(waiting)
            if earlier is not None:
                again[waiting.run_key] = earlier
        run_requests = []
        pairs: set[tuple[str, date]] = set()
        for distributor_id, files in sorted(ready.items()):
            files = sorted(files, key=lambda f: (f.mtime_ns, f.path.name))[:MAX_FILES_PER_RUN]
            periods = set()
            for waiting in files:
                spec, _ = spec_for(catalog, distributor_id, waiting.path.name)
                periods.add(report_date_of(spec, waiting.path.name, waiting.received_at))
            pairs |= {(distributor_id, period) for period in periods}
            previous = min((again[f.run_key] for f in files if f.run_key in again), default=None)
            run_key = _batch_key(files, previous)
            requested |= dict.fromkeys((f.run_key for f in files), run_key)
            run_requests.append((distributor_id, sorted(periods), files, run_key))
        partition_requests = add_requests(context.instance, pairs)
        return dg.SensorResult(
            run_requests=[
                _inbox_run_request(context.instance, partition_requests, distributor_id, periods, files, key)
                for distributor_id, periods, files, key in run_requests
            ],
            dynamic_partitions_requests=partition_requests,
            cursor=InboxCursor(seen, requested).to_json(),
        )

    return inbox_sensor


def _inbox_run_request(
    instance: dg.DagsterInstance,
    partition_requests: list[dg.AddDynamicPartitionsRequest],
    distributor_id: str,
    periods: list[date],
    files: list[InboxFile],
    run_key: str,
) -> dg.RunRequest:
    """One ingest run for `files` of one distributor: its one partition, or the range of its periods."""
    tags = {"throughline/files": str(len(files)), DISTRIBUTOR_TAG: distributor_id}
    run_config = receive_run_config([str(f.path) for f in files], "folder")
    if len(periods) == 1:
        return dg.RunRequest(
            run_key=run_key,
            partition_key=partition_key(distributor_id, periods[0]),
            run_config=run_config,
            tags=tags,
        )
    start, end = key_range(instance, partition_requests, distributor_id, periods)
    return dg.RunRequest(
        run_key=run_key, run_config=run_config, tags={**tags, RANGE_START_TAG: start, RANGE_END_TAG: end}
    )


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
