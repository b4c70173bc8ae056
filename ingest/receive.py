"""Receiving: a file from any channel becomes an immutable landed file registered in the ledger.

Under the distributor's lock: the bytes are landed (content-addressed), registered in
`landed_files` with their arrival time, and classified against the ledger:

- `new`: never seen for this distributor;
- `unloaded`: landed before with no load yet: a crashed run's file, or one another run is loading
  right now (the same bytes sent twice at once); it is loaded now unless that run loaded it while
  this one waited for the distributor's lock (then this copy is a `duplicate`);
- `resume`: landed and loaded into staging, core not completed (a crash): it is loaded again;
- `retry`: its earlier load was rejected (e.g. a spec has since been fixed): it is loaded again;
- `duplicate`: identical bytes whose load finished: a `duplicate` row, nothing else changes.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from ingest.context import IngestContext
from warehouse.faults import crash_point
from warehouse.ledger import (
    LandedFile,
    LoadRow,
    duplicate_load_id,
    find_landed_and_next_arrival,
    load_statuses,
    next_arrival,
    register_landed,
    write_load,
)
from warehouse.retention import discard_stray_copy
from warehouse.tables import distributor_lock

ReceiptKind = Literal["new", "unloaded", "resume", "retry", "duplicate"]


@dataclass(frozen=True)
class Receipt:
    """A received file: where it landed and what the ledger makes of it."""

    landed: LandedFile
    kind: ReceiptKind
    source_name: str
    duplicate_row: LoadRow | None = None

    @property
    def needs_load(self) -> bool:
        return self.kind != "duplicate"


def receive_file(context: IngestContext, path: Path, *, distributor_id: str, channel: str) -> Receipt:
    """Land `path` for `distributor_id` and classify it; a duplicate gets its `duplicate` row here."""
    mtime = datetime.fromtimestamp(path.lstat().st_mtime, tz=UTC)
    with distributor_lock(context.lock_dir, distributor_id):
        landed_bytes = context.storage.land(path)
        crash_point("after_land")
        existing, received_at = find_landed_and_next_arrival(
            context.storage, distributor_id, landed_bytes.sha256, datetime.now(UTC)
        )
        if existing is None:
            entry = LandedFile(
                sha256=landed_bytes.sha256,
                distributor_id=distributor_id,
                source_name=path.name,
                source_file=landed_bytes.source_file,
                channel=channel,
                bytes=landed_bytes.size,
                received_at=received_at,
                source_mtime=mtime,
            )
            register_landed(context.storage, landed_bytes, entry, landed_at=datetime.now(UTC))
            crash_point("after_register")
            return Receipt(entry, "new", path.name)
        status = load_statuses(context.storage, [existing.load_id]).get(existing.load_id)
        if status is None:  # no load yet: a crashed run's, or another run's receiving these bytes now
            return Receipt(existing, "unloaded", path.name)
        if status == "staged":
            return Receipt(existing, "resume", path.name)
        if status == "rejected":
            return Receipt(existing, "retry", path.name)
        row = record_duplicate(context, existing, path.name, channel)
        # Bytes an erasure redacted or the retention period purged must not come back with a resend.
        discard_stray_copy(context.storage, landed_bytes.source_file)
        return Receipt(existing, "duplicate", path.name, duplicate_row=row)


def record_duplicate(context: IngestContext, existing: LandedFile, source_name: str, channel: str) -> LoadRow:
    """Write the `duplicate` load row of a file whose bytes `existing` already holds."""
    now = next_arrival(context.storage, existing.distributor_id, datetime.now(UTC))
    row = _duplicate_row(existing, source_name, channel, now)
    write_load(context.storage, row)
    return row


def _duplicate_row(existing: LandedFile, source_name: str, channel: str, now: datetime) -> LoadRow:
    row = LoadRow(
        load_id=duplicate_load_id(existing.distributor_id, existing.sha256, now),
        distributor_id=existing.distributor_id,
        feed_id=None,
        dataset=None,
        channel=channel,
        source_name=source_name,
        source_file=existing.source_file,
        sha256=existing.sha256,
        bytes=existing.bytes,
        spec_version=None,
        period_start=None,
        rows_read=0,
        rows_loaded=0,
        rows_quarantined=0,
        status="duplicate",
        error=(
            f"identical bytes were already received as '{existing.source_name}' at "
            f"{existing.received_at:%Y-%m-%d %H:%M:%S} UTC"
        ),
        received_at=now,
        started_at=now,
        finished_at=now,
    )
    return replace(row)
