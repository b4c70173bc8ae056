"""Pulling: fetch what is new from each feed spec's `source:` (SFTP server or HTTP API), land and load
it like a dropped file, settle it at the source, and only then remember what was fetched.

What belongs here: the order of those steps for one source, and keeping one failing source from
stopping the others. Talking to servers is `connectors/`'s; loading is `ingest.run`'s.

A source's state (the SFTP manifest, the API watermark) is kept in `$THROUGHLINE_HOME/channels/`,
one JSON file per feed spec, written atomically after the files of a poll are landed and settled:
a crash before that only makes the next pull fetch the same files again, and landing, which is
content-addressed, receives them as duplicates.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from connectors.channel import Channel, FetchedFile, load_state, open_channel, save_state
from connectors.http_api import ApiError
from connectors.sftp import SftpError
from ingest.context import IngestContext
from ingest.plan import Incoming
from ingest.run import RunReport, ingest_files
from schemas.feed_spec import FeedSpec
from schemas.settings import ThroughlineSettings

log = logging.getLogger(__name__)

PULL_ERRORS = (SftpError, ApiError, OSError, RuntimeError)
"""What a source can fail with (connectors' errors, a missing secret, the network, the disk): the
source is reported as failed and the other sources of the pull go on."""


@dataclass
class SourcePull:
    """What one pull of one source did."""

    spec_id: str
    distributor_id: str
    channel: str
    fetched: list[str] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)
    """Files seen but not complete yet: taken by a later pull."""
    refused: list[str] = field(default_factory=list)
    error: str | None = None
    report: RunReport | None = None


def pulled_specs(context: IngestContext, distributor_ids: list[str] | None = None) -> list[FeedSpec]:
    """The feed specs with a `source:`, of the given distributors (all when None), by spec id."""
    return [
        spec
        for spec_id, spec in sorted(context.catalog.specs.items())
        if spec.source is not None and (distributor_ids is None or spec.distributor_id in distributor_ids)
    ]


def state_file(settings: ThroughlineSettings, spec_id: str) -> Path:
    """Where the state of a spec's source is kept (the one rule; sensors read it too)."""
    return settings.channels_dir / f"{spec_id}.json"


def state_path(context: IngestContext, spec: FeedSpec) -> Path:
    return state_file(context.settings, spec.id)


def pull_source(
    context: IngestContext,
    spec: FeedSpec,
    *,
    environ: Mapping[str, str] | None = None,
    channel: Channel | None = None,
) -> SourcePull:
    """Poll one spec's source, land and load what it fetched, settle it, then save the source's state.

    Never raises for a source that fails: the error (naming the source, never a secret) is in the
    result, and nothing of that poll is remembered, so the next pull tries again.
    """
    assert spec.source is not None
    result = SourcePull(spec.id, spec.distributor_id, spec.source.type)
    scratch = context.work_dir / "pull" / spec.id
    try:
        channel = channel or open_channel(spec.distributor_id, spec.source, environ=environ)
        scratch.mkdir(parents=True, exist_ok=True)
        poll = channel.poll(load_state(state_path(context, spec)), scratch)
    except PULL_ERRORS as error:
        result.error = f"{spec.id}: {error}"
        context.progress.message(f"pull {result.error}")
        return result
    result.waiting, result.refused = list(poll.waiting), list(poll.refused)
    fetched = sorted(poll.fetched, key=lambda f: f.remote_name)
    try:
        if fetched:
            for item in fetched:
                if item.remote_mtime is not None and item.channel != "folder":
                    # The ledger keeps a file's mtime as when the distributor delivered it (lateness).
                    os.utime(item.local_path, (item.remote_mtime, item.remote_mtime))
            incoming = [Incoming(f.local_path, spec.distributor_id, f.channel) for f in fetched]
            result.report = ingest_files(context, incoming)
        for item in fetched:
            _settle(channel, item, "landed")
    except Exception as error:
        for item in fetched:
            _settle(channel, item, "failed", str(error))
        raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    save_state(state_path(context, spec), poll.state)
    result.fetched = [f.remote_name for f in fetched]
    for name in result.waiting:
        context.progress.message(f"{spec.id}: {name} is not complete yet; a later pull takes it")
    for name in result.refused:
        context.progress.message(f"{spec.id}: refused {name}")
    return result


def _settle(channel: Channel, item: FetchedFile, outcome: str, error: str | None = None) -> None:
    try:
        channel.settle(item, outcome, error)  # type: ignore[arg-type]
    except PULL_ERRORS as problem:  # archiving at the source failed: the file is landed anyway
        log.warning("%s: could not settle %s at the source: %s", item.source_id, item.remote_name, problem)


def pull(
    context: IngestContext,
    distributor_ids: list[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
) -> list[SourcePull]:
    """Pull every source (of the given distributors), one after the other."""
    return [pull_source(context, spec, environ=environ) for spec in pulled_specs(context, distributor_ids)]
