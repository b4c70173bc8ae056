"""Resources: dependency injection only. `ThroughlineResource` resolves the home folder, the feed
specs and the end-customer key when a run starts and hands the ingest use cases their context.

Keep asset logic out of this module. The key is never in run config: it is resolved at launch
from THROUGHLINE_CUSTOMER_KEY_SECRET (or a demo home's key file), the same way the CLI does.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from ingest.context import IngestContext, Progress
from schemas.settings import ThroughlineSettings, resolve_customer_key
from warehouse.storage import WarehouseStorage, storage_for


class DagsterLogProgress(Progress):
    """Progress of a run, as Dagster log lines (records at debug level)."""

    def __init__(self, log) -> None:
        self.log = log

    def file_started(self, name: str, size: int, estimated_records: int | None = None) -> None:
        self.log.info(f"loading {name!r} ({size:,} bytes)")

    def records(self, name: str, count: int) -> None:
        self.log.debug(f"{name!r}: {count:,} records read")

    def message(self, text: str) -> None:
        self.log.info(text)


class ThroughlineResource(dg.ConfigurableResource):
    """The Throughline home folder (THROUGHLINE_HOME unless `home` is set) and the warehouse's storage
    (the home folder, or THROUGHLINE_WAREHOUSE_URI's object store), resolved at launch."""

    home: str = ""

    @property
    def settings(self) -> ThroughlineSettings:
        if self.home:
            return ThroughlineSettings.for_home(Path(self.home))
        return ThroughlineSettings.from_env()

    @property
    def storage(self) -> WarehouseStorage:
        """The warehouse's storage, for reads that need neither the feed specs nor the key."""
        return storage_for(self.settings)

    def ingest_context(self, log=None) -> IngestContext:
        settings = self.settings
        settings.ensure_layout()
        return IngestContext.open(
            settings, resolve_customer_key(settings), DagsterLogProgress(log) if log is not None else None
        )


def default_resources() -> dict[str, object]:
    """The resources of the code location: everything from the environment, resolved at launch."""
    return {"throughline": ThroughlineResource()}
