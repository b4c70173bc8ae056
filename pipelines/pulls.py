"""Pulls: one job per feed spec with a `source:` (SFTP server or HTTP API), and the per-host pools.

The job's one op calls `ingest.pull.pull_source`, so downloading, landing, loading, settling and
saving the source's state happen in a run, with its logs, retries and metadata. When it runs is the
business of `sensors.py` (SFTP: when the listing shows complete new files) and `schedules.py` (API:
the spec's cron). Each op sits in the concurrency pool of its source's host, limited to the spec's
`max_connections_per_host` (one for an API), so a backfill cannot open fifty connections to one
distributor. Talking to servers is `connectors/`'s; what a pull does is `ingest.pull`'s.
"""

# No `from __future__ import annotations`: Dagster reads the `context` annotation when it defines the op.
import logging
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

import dagster as dg

from connectors.channel import Channel, ChannelName, FetchedFile, Outcome, Poll, open_channel
from connectors.http_api import ApiRequestError
from connectors.manifest import Manifest
from connectors.sftp import RemoteFileChangedError, SftpTransferError
from ingest.pull import SourcePull, pull_source
from ingest.route import route
from pipelines.partitions import add_partitions
from pipelines.resources import ThroughlineResource
from schemas.feed_spec import FeedSpec
from schemas.sources import HttpApiSource, SftpSource

log = logging.getLogger(__name__)

SPEC_TAG = "throughline/spec"
HOST_TAG = "throughline/host"
API_POOL_LIMIT = 1
"""An API pull is one connection, one page after another; two pulls of one API at once only
compete for its rate limit."""
TRANSIENT_ERRORS = (SftpTransferError, RemoteFileChangedError, ApiRequestError, OSError)
"""Failures a later attempt can cure (the network, a file still changing). A refused login, a
changed host key, a missing secret or a malformed page fail the run at once: retrying cannot
help, and retrying a login could lock the account."""
PULL_RETRY_POLICY = dg.RetryPolicy(
    max_retries=3, delay=60, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
)
"""On top of the connectors' own retries of one request: an outage of minutes, not seconds."""


def pull_job_name(spec_id: str) -> str:
    return f"pull_{spec_id}"


def pull_op_name(spec_id: str) -> str:
    """The job's one op (its name differs from the job's: Dagster wants op and graph names unique)."""
    return f"pull_{spec_id}_source"


def endpoint_of(source: SftpSource | HttpApiSource) -> str:
    """'host:port' of a source's server."""
    if isinstance(source, SftpSource):
        return source.endpoint
    parts = urlsplit(source.base_url)
    return f"{parts.hostname}:{parts.port or (443 if parts.scheme == 'https' else 80)}"


def pool_of(source: SftpSource | HttpApiSource) -> str:
    """The concurrency pool of a source's host: every spec pulled from that host shares it."""
    return f"pull/{source.type}/{endpoint_of(source)}"


def pool_limit_of(source: SftpSource | HttpApiSource) -> int:
    return source.max_connections_per_host if isinstance(source, SftpSource) else API_POOL_LIMIT


def apply_pool_limit(instance: dg.DagsterInstance, pool: str, limit: int) -> None:
    """Give `pool` `limit` slots in the instance unless it has them already (the spec decides).

    Called on each sensor or schedule tick, before a run is requested; an instance that keeps no
    pools (or fails to set one) is logged and the pull goes on, limited in-process only.
    """
    storage = instance.event_log_storage
    try:
        if not storage.supports_global_concurrency_limits:
            return
        if storage.get_concurrency_info(pool).slot_count != limit:
            storage.set_concurrency_slots(pool, limit)
    except Exception as error:  # the pool is a safeguard; a tick must not fail for it
        log.warning("could not set the limit of concurrency pool %s to %s: %s", pool, limit, error)


class SeenFile(dg.Config):
    """A remote file version the SFTP sensor saw complete (size and mtime unchanged across two looks)."""

    name: str
    size: int
    mtime: int


class PullConfig(dg.Config):
    """What the sensor saw. Empty (a manual launch, a schedule): the previous pull's look decides."""

    seen_complete: list[SeenFile] = []


class _PollAfterSensor:
    """The spec's channel, polled as if its previous look were the sensor's; remembers what it did.

    `stable` completeness wants two looks a poll interval apart. The sensor made them, so the
    run takes the files it saw complete at once, unless they changed since. What the poll fetched
    or raised is kept for the run's metadata and for the decision to retry.
    """

    def __init__(self, channel: Channel, seen: list[SeenFile]) -> None:
        self.name: ChannelName = channel.name
        self.source_id = channel.source_id
        self._channel = channel
        self._seen = seen
        self.poll_result: Poll | None = None
        self.error: BaseException | None = None

    def poll(self, state: str | None, target_dir: Path) -> Poll:
        if self._seen and self.name == "sftp":
            manifest = Manifest.from_json(state)
            for seen in self._seen:
                manifest.looks[seen.name] = (seen.size, seen.mtime)
            state = manifest.to_json()
        try:
            self.poll_result = self._channel.poll(state, target_dir)
        except BaseException as error:
            self.error = error
            raise
        return self.poll_result

    def settle(self, fetched: FetchedFile, outcome: Outcome, error: str | None = None) -> None:
        self._channel.settle(fetched, outcome, error)


def _metadata(pulled: SourcePull, fetched: list[FetchedFile]) -> dict[str, object]:
    rows = [] if pulled.report is None else [o.load for o in pulled.report.outcomes]
    return {
        "fetched": len(pulled.fetched),
        "waiting": len(pulled.waiting),
        "refused": len(pulled.refused),
        "files": dg.MetadataValue.json(
            {"fetched": pulled.fetched, "waiting": pulled.waiting, "refused": pulled.refused}
        ),
        "run_keys": dg.MetadataValue.json(sorted(f.run_key for f in fetched)),
        "loads_by_status": dg.MetadataValue.json(dict(sorted(Counter(r.status for r in rows).items()))),
        "rows_loaded": sum(r.rows_loaded for r in rows),
        "load_ids": dg.MetadataValue.json([r.load_id for r in rows]),
    }


def build_pull_job(spec: FeedSpec) -> dg.JobDefinition:
    """The job that pulls `spec`'s source once: poll, land and load, settle, save the state."""
    source = spec.source
    assert source is not None
    name = pull_job_name(spec.id)

    @dg.op(
        name=pull_op_name(spec.id),
        pool=pool_of(source),
        retry_policy=PULL_RETRY_POLICY,
        out=dg.Out(dg.Nothing),
        description=f"Pull `{spec.id}` from its {source.type} source, load what came, then remember it.",
    )
    def pull_op(context: dg.OpExecutionContext, config: PullConfig, throughline: ThroughlineResource):
        ingest = throughline.ingest_context(context.log)
        current = ingest.catalog.specs.get(spec.id)
        if current is None or current.source is None or current.source.type != source.type:
            raise dg.Failure(
                description=(
                    f"feed spec {spec.id} has no {source.type} source any more (or is invalid); "
                    "fix the spec, or reload the code location to drop this job"
                ),
                allow_retries=False,
            )
        channel = _PollAfterSensor(open_channel(current.distributor_id, current.source), config.seen_complete)
        pulled = pull_source(ingest, current, channel=channel)
        fetched = channel.poll_result.fetched if channel.poll_result and not pulled.error else []
        metadata = _metadata(pulled, fetched)
        if pulled.error is not None:
            # The connectors never put a secret in a message; the error names the source and the cause.
            raise dg.Failure(
                description=f"pull failed: {pulled.error}",
                metadata=metadata,
                allow_retries=isinstance(channel.error, TRANSIENT_ERRORS),
            )
        if pulled.report is not None:
            # Loads of this distributor can be re-run from landing by partition, like dropped files;
            # the report_calendar sensor records them as materializations of the load assets.
            add_partitions(
                context.instance,
                [
                    (
                        row.distributor_id,
                        route(
                            ingest.catalog, row.distributor_id, row.source_name, row.received_at
                        ).report_date,
                    )
                    for row in (o.load for o in pulled.report.outcomes)
                ],
            )
        context.add_output_metadata(metadata)

    @dg.job(
        name=name,
        description=f"Pull feed `{spec.id}` ({source.type} {endpoint_of(source)}) and load what is new.",
        tags={SPEC_TAG: spec.id, HOST_TAG: endpoint_of(source)},
    )
    def pull_job() -> None:
        pull_op()

    return pull_job
