"""Pulling: fetch what is new from each feed spec's `source:` (SFTP server or HTTP API), land and load
it like a dropped file, remember what was fetched, and then settle it at the source.

What belongs here: the order of those steps for one source, and keeping one failing source from
stopping the others. Talking to servers is `connectors/`'s; loading is `ingest.run`'s.

A source's state (the SFTP manifest, the API watermark) is kept in `$THROUGHLINE_HOME/channels/`,
one JSON file per feed spec, written atomically once the files of a poll are landed: a crash before
that only makes the next pull fetch the same files again, and landing, which is content-addressed,
receives them as duplicates. Settling (archiving an SFTP file) comes after it, since an archived file
is no longer listed and so could never be recorded as taken; the files still to settle are written
beside the state first (`<spec_id>.unsettled.json`), so the next pull settles what a crash left.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

from connectors.channel import Channel, FetchedFile, load_state, open_channel, save_state
from connectors.http_api import ApiError
from connectors.sftp import SftpError
from ingest.context import IngestContext
from ingest.plan import Incoming
from ingest.run import RunReport, ingest_files
from schemas.feed_spec import FeedSpec
from schemas.settings import ThroughlineSettings
from warehouse.faults import crash_point

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
    """Poll one spec's source, land and load what it fetched, save the source's state, then settle what
    it fetched (and what an interrupted pull left unsettled).

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
    crash_point("pull_after_fetch")
    try:
        if fetched:
            for item in fetched:
                if item.remote_mtime is not None and item.channel != "folder":
                    # The ledger keeps a file's mtime as when the distributor delivered it (lateness).
                    os.utime(item.local_path, (item.remote_mtime, item.remote_mtime))
            incoming = [Incoming(f.local_path, spec.distributor_id, f.channel) for f in fetched]
            result.report = ingest_files(context, incoming)
            crash_point("pull_after_load")
    except Exception as error:
        for item in fetched:
            _settle(channel, item, "failed", str(error))
        raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    # Landed. Settling moves files at the source (SFTP: to the archive), after which a poll no longer
    # lists them, so it must follow the saved state or the state would never record them as taken;
    # and what is to be settled is written first, so a crash after the state is saved leaves it to
    # the next pull rather than the files unarchived for good.
    unsettled = settling_path(context, spec)
    to_settle = _merge(read_unsettled(unsettled), fetched)
    if to_settle:
        _write_unsettled(unsettled, to_settle)
    save_state(state_path(context, spec), poll.state)
    crash_point("pull_after_state")
    for item in to_settle:
        _settle(channel, item, "landed")
    if to_settle:
        crash_point("pull_after_settle")
        unsettled.unlink(missing_ok=True)
    result.fetched = [f.remote_name for f in fetched]
    for name in result.waiting:
        context.progress.message(f"{spec.id}: {name} is not complete yet; a later pull takes it")
    for name in result.refused:
        context.progress.message(f"{spec.id}: refused {name}")
    return result


def settling_file(settings: ThroughlineSettings, spec_id: str) -> Path:
    """The files of a spec's source landed but perhaps not settled at the source yet (see pull_source)."""
    return settings.channels_dir / f"{spec_id}.unsettled.json"


def settling_path(context: IngestContext, spec: FeedSpec) -> Path:
    return settling_file(context.settings, spec.id)


def read_unsettled(path: Path) -> list[FetchedFile]:
    """The files a pull landed and had still to settle when it stopped ([] when there are none)."""
    text = load_state(path)
    if not text:
        return []
    return [
        FetchedFile(**{**item, "local_path": Path(item["local_path"])}) for item in json.loads(text)["files"]
    ]


def _write_unsettled(path: Path, items: list[FetchedFile]) -> None:
    files = [{**asdict(item), "local_path": str(item.local_path)} for item in items]
    save_state(path, json.dumps({"files": files}, sort_keys=True))


def _merge(earlier: list[FetchedFile], fetched: list[FetchedFile]) -> list[FetchedFile]:
    """`earlier` and `fetched`, each file version once (a file fetched again after a crash is one)."""
    return list({(f.remote_name, f.sha256): f for f in [*earlier, *fetched]}.values())


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
