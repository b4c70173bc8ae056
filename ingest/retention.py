"""The landing retention period (`throughline retention`): received files older than
`landing_retention_days` (THROUGHLINE_LANDING_RETENTION_DAYS, default 730) leave landing.

What a purge keeps: every row the file gave (staging, core, quarantine), its `landed_files` and
`loads` rows (so the same bytes sent again are still a duplicate, and lineage still names the file),
and one `landing_changes` row per file, written before its bytes go. What it costs: the file can no
longer be re-run (`reprocess` and a Dagster partition re-load pass it over, saying so), and a key
rotation cannot re-key its rows. A file whose load never finished is never purged, whatever its age.
Age is counted from `received_at`, when Throughline received the bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from ingest.context import IngestContext
from schemas.tables import FINISHED_STATUSES
from warehouse.ledger import LandedFile, landed_files_of, load_statuses
from warehouse.retention import (
    PURGED,
    LandingChange,
    landing_copies,
    live_addresses,
    record_changes,
    remove_landed,
)
from warehouse.tables import distributor_lock


@dataclass
class RetentionRun:
    """What one application of the retention period found and did."""

    days: int
    cutoff: datetime
    purged: list[LandedFile] = field(default_factory=list)
    unfinished: list[LandedFile] = field(default_factory=list)
    """Older than the period, but their load never finished: kept until it does."""


def apply_retention(
    context: IngestContext, *, days: int | None = None, now: datetime | None = None, dry_run: bool = False
) -> RetentionRun:
    """Delete from landing every file received more than `days` (default: the setting) before `now`
    whose load finished, recording each in `landing_changes` first; `dry_run`: only list them."""
    days = days or context.settings.landing_retention_days
    if days < 1:
        raise ValueError(f"a retention period is at least one day (got {days})")
    run = RetentionRun(days, (now or datetime.now(UTC)) - timedelta(days=days))
    storage = context.storage
    expired = [landed for landed in landed_files_of(storage) if landed.received_at < run.cutoff]
    statuses = load_statuses(storage, [landed.load_id for landed in expired])
    by_distributor: dict[str, list[LandedFile]] = {}
    for landed in expired:
        if statuses.get(landed.load_id) not in FINISHED_STATUSES:
            run.unfinished.append(landed)
        elif _bytes_of(context, landed):
            by_distributor.setdefault(landed.distributor_id, []).append(landed)
    for distributor_id, files in sorted(by_distributor.items()):
        run.purged += files
        if dry_run:
            continue
        with distributor_lock(context.lock_dir, distributor_id):
            _purge(context, files, days)
    return run


def _purge(context: IngestContext, files: list[LandedFile], days: int) -> None:
    """Record the purge of `files`, then delete their bytes (each copy no live landed file reads)."""
    now = datetime.now(UTC)
    record_changes(
        context.storage,
        [
            LandingChange(
                distributor_id=landed.distributor_id,
                sha256=landed.sha256,
                action=PURGED,
                source_file=landed.source_file,
                replaced_by=None,
                bytes_before=landed.bytes,
                bytes_after=None,
                records_changed=None,
                reason=f"landing retention: {days} days",
                changed_at=now,
            )
            for landed in files
        ],
    )
    live = live_addresses(context.storage)
    for landed in files:
        for address in _bytes_of(context, landed):
            if address not in live:
                remove_landed(context.storage, address)


def _bytes_of(context: IngestContext, landed: LandedFile) -> list[str]:
    """The addresses landing holds for a delivery: what its ledger row reads, and any copy of its bytes."""
    current = landed.source_file
    found = [current] if context.storage.landing_exists(current) else []
    return found + [
        address for address in landing_copies(context.storage, landed.sha256) if address != current
    ]
