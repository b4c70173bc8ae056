"""Resources: dependency injection only. Asset logic lives in `pipelines/assets.py` and the libraries.

`ThroughlineResource` resolves the home folder and the end-customer HMAC secret at launch; the
secret comes from an environment variable through `dg.EnvVar`, so it never appears in run config.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from schemas.feed_spec import FeedSpec, load_feed_specs
from schemas.settings import CUSTOMER_KEY_SECRET_ENV, ThroughlineSettings
from warehouse.loading import LoadContext
from warehouse.storage import WarehouseStorage, storage_for_home


class ThroughlineResource(dg.ConfigurableResource):
    """The Throughline home folder (THROUGHLINE_HOME) and the secret for end_customer_key."""

    home: str = ""  # empty: THROUGHLINE_HOME, else ~/.throughline, resolved when a run starts
    customer_key_secret: str

    @property
    def settings(self) -> ThroughlineSettings:
        if self.home:
            return ThroughlineSettings(home=Path(self.home).expanduser().resolve())
        return ThroughlineSettings.from_env()

    @property
    def storage(self) -> WarehouseStorage:
        settings = self.settings
        return storage_for_home(settings.landing_dir, settings.warehouse_dir)

    def feed_specs(self) -> dict[str, FeedSpec]:
        return load_feed_specs(self.settings.feeds_dir)

    def load_context(self) -> LoadContext:
        settings = self.settings
        return LoadContext(
            storage=self.storage,
            customer_key_secret=self.customer_key_secret,
            work_dir=settings.work_dir,
            lock_dir=settings.work_dir / "locks",
        )


def default_resources() -> dict[str, object]:
    """The resources of the code location: everything from the environment, resolved at launch."""
    return {
        "throughline": ThroughlineResource(customer_key_secret=dg.EnvVar(CUSTOMER_KEY_SECRET_ENV)),
    }
