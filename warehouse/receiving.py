"""Receiving: a file from any connector becomes an immutable, registered file in landing.

Identical bytes received again are recognised by SHA-256 and recorded as a `duplicate` load;
nothing else changes. Connectors (folder, SFTP, HTTP) hand files to `receive_file`; they never
write to landing themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from warehouse.ledger import LandedFile, register_landed
from warehouse.loading import LoadContext, write_duplicate_load
from warehouse.tables import distributor_lock


@dataclass(frozen=True)
class Receipt:
    """A received file: where it landed, whether it was new, and the inbox file it came from."""

    landed: LandedFile
    source_name: str
    is_duplicate: bool
    origin_path: str | None
    channel: str = "folder"


def receive_file(
    context: LoadContext, path: Path, *, distributor_id: str, channel: str, received_at: datetime
) -> Receipt:
    """Copy `path` into landing, register it, and record a duplicate load if its bytes were seen before."""
    with distributor_lock(context.lock_dir, distributor_id):
        landed_bytes = context.storage.land(path)
        landed, is_new = register_landed(
            context.storage,
            landed_bytes,
            distributor_id=distributor_id,
            source_name=path.name,
            channel=channel,
            received_at=received_at,
            landed_at=datetime.now(UTC),
        )
    if not is_new:
        write_duplicate_load(context, landed, distributor_id, path.name, received_at, channel)
    return Receipt(
        landed=landed, source_name=path.name, is_duplicate=not is_new, origin_path=str(path), channel=channel
    )
