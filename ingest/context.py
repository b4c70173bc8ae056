"""What every ingest use case of one run shares: settings, storage, the end-customer key, the feed
specs, and where progress goes. Built once when a run starts (CLI or Dagster resource).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from schemas.feed_spec import SpecCatalog, load_spec_catalog
from schemas.settings import CustomerKey, ThroughlineSettings
from warehouse.storage import WarehouseStorage, storage_for

KEY_FINGERPRINT = "customer-key.fingerprint"
HEARTBEAT_SECONDS = 1.0


class Progress:
    """Where a run reports what it does; the default says nothing. The CLI prints to stderr."""

    def file_started(self, name: str, size: int, estimated_records: int | None = None) -> None:
        """A file's load begins (`estimated_records`: a guess from its first bytes, for a bar)."""

    def records(self, name: str, count: int) -> None:
        """`count` records of the file have been read so far."""

    def message(self, text: str) -> None:
        """One line worth showing a person."""

    def heartbeat(self, name: str, elapsed: float) -> None:
        """A file is still being read (called about once a second while a stream runs)."""

    @contextmanager
    def working(self, name: str) -> Iterator[None]:
        """Call `heartbeat` once a second from a background thread while the body runs."""
        stop = threading.Event()
        started = time.monotonic()

        def beat() -> None:
            while not stop.wait(HEARTBEAT_SECONDS):
                self.heartbeat(name, time.monotonic() - started)

        thread = threading.Thread(target=beat, name="progress", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()


@dataclass(frozen=True)
class IngestContext:
    settings: ThroughlineSettings
    storage: WarehouseStorage
    customer_key: CustomerKey
    catalog: SpecCatalog
    progress: Progress = field(default_factory=Progress)

    @classmethod
    def open(
        cls, settings: ThroughlineSettings, customer_key: CustomerKey, progress: Progress | None = None
    ) -> IngestContext:
        return cls(
            settings=settings,
            storage=storage_for(settings),
            customer_key=customer_key,
            catalog=load_spec_catalog(settings.feeds_dir),
            progress=progress or Progress(),
        )

    @property
    def lock_dir(self) -> Path:
        return self.settings.lock_dir

    @property
    def work_dir(self) -> Path:
        return self.settings.work_dir

    @property
    def secret(self) -> str:
        return self.customer_key.secret.get_secret_value()


class KeyMismatchError(RuntimeError):
    """The end-customer key differs from the one the warehouse was built with."""


def check_customer_key(context: IngestContext) -> None:
    """Refuse a key other than the warehouse's (its hashes would not match); record it on first use."""
    recorded = context.storage.read_meta(KEY_FINGERPRINT)
    fingerprint = context.customer_key.fingerprint
    if recorded is None:
        context.storage.write_meta(KEY_FINGERPRINT, fingerprint)
    elif recorded != fingerprint:
        raise KeyMismatchError(
            f"the end-customer key (from the {context.customer_key.source}) is not the one this warehouse "
            f"was built with (key fingerprint {fingerprint}, warehouse {recorded}): its end_customer_key "
            "values would not match. Set THROUGHLINE_CUSTOMER_KEY_SECRET to the original key."
        )


def key_matches_warehouse(storage: WarehouseStorage, customer_key: CustomerKey) -> bool | None:
    """True/False when the warehouse has a recorded key; None when it has none yet."""
    recorded = storage.read_meta(KEY_FINGERPRINT)
    return None if recorded is None else recorded == customer_key.fingerprint
