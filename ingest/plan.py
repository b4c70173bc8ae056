"""Planning: which files a run takes, for which distributor, through which channel, in what order.

Files that arrive together are received oldest modification time first (then by name): that is
the only use of a file's mtime. From then on the ledger's arrival order decides which report wins.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

from ingest.context import IngestContext
from ingest.route import (
    RoutingError,
    distributor_of,
    inbox_folder_of,
    printable,
    refuse_unsafe_source,
    report_date_of,
    spec_for,
)
from warehouse.ledger import LandedFile, landed_files_of
from warehouse.retention import purged_files


@dataclass(frozen=True)
class Incoming:
    """A file to receive: for which distributor, and the channel it came through."""

    path: Path
    distributor_id: str
    channel: str


def plan_paths(
    context: IngestContext, paths: list[Path], explicit_distributor: str | None, *, channel: str = "cli"
) -> tuple[list[Incoming], list[str]]:
    """Files given by a person or a sensor, placed and ordered; also the problems of files refused.

    A file inside `inbox/<distributor_id>/` comes through the `folder` channel (it leaves the inbox
    once its load is recorded), whoever names it; any other file through `channel`.
    """
    inbox = context.settings.inbox_dir
    placed: list[tuple[tuple[int, str], Incoming]] = []
    problems: list[str] = []
    for path in paths:
        refusal = refuse_unsafe_source(path, inbox)
        if refusal:
            problems.append(refusal)
            continue
        try:
            distributor_id = distributor_of(path, context.catalog, explicit_distributor, inbox)
        except (RoutingError, ValueError) as error:
            problems.append(str(error))
            continue
        via = "folder" if inbox_folder_of(path, inbox) is not None else channel
        stat = path.stat()
        placed.append(((stat.st_mtime_ns, path.name), Incoming(path, distributor_id, via)))
    return [incoming for _, incoming in sorted(placed, key=lambda item: item[0])], problems


def landed_in_range(
    context: IngestContext, distributor_id: str | None, since: date | None, until: date | None
) -> list[LandedFile]:
    """Landed files (optionally one distributor, a report-date range) in arrival order: what reprocess re-runs."""
    chosen = []
    purged = purged_files(context.storage)
    for landed in landed_files_of(context.storage, distributor_id):
        spec, _ = spec_for(context.catalog, landed.distributor_id, landed.source_name)
        report_date = report_date_of(spec, landed.source_name, landed.received_at)
        if (since and report_date < since) or (until and report_date > until):
            continue
        gone = not context.storage.landing_exists(landed.source_file)
        if gone and (landed.distributor_id, landed.sha256) in purged:
            # Re-running it would reject it (no bytes) and take its rows out of core.
            context.progress.message(
                f"{printable(landed.source_name)}: purged from landing (retention period); its rows stay, "
                "it cannot be re-run"
            )
            continue
        chosen.append(landed)
    return chosen
