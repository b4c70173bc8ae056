"""Reference and resolution tables: small Delta tables written whole (partners, products, sku_map,
fx_rates, quotas, tiers, certifications, rebate_programs, distributors, partner_aliases, ...).

What belongs here: storing and reading those tables, whose columns come from the frames the
`reference` package validates (so they are not declared in `schemas.tables`). Each write replaces
the table in one Delta commit, so readers see the old or the new version, never a mix; the history
of earlier versions stays in the Delta log until vacuumed. Nothing here reads a reference file.
"""

from __future__ import annotations

import polars as pl

from warehouse.storage import WarehouseStorage

REFERENCE_TABLES = (
    "distributors",
    "partners",
    "partners_history",
    "partner_sites",
    "partner_aliases",
    "partner_alias_approvals",
    "products",
    "sku_map",
    "fx_rates",
    "quotas",
    "tiers",
    "certifications",
    "rebate_programs",
)
"""Every reference and resolution table (the catalog shows each as a view of the same name)."""
MART_TABLES = (
    "partner_performance",
    "distributor_data_quality",
    "inventory_health",
    "rebate_accruals",
    "partner_anomalies",
)
"""The marts (`marts.MART_NAMES`), also written whole, each a view of the same name."""


def write_reference_table(storage: WarehouseStorage, name: str, frame: pl.DataFrame) -> bool:
    """Replace table `name` with `frame` (its schema too); False, writing nothing, when it already
    holds exactly these rows."""
    if storage.table_exists(name):
        current = read_reference_table(storage, name)
        if current is not None and current.schema == frame.schema and current.equals(frame):
            return False
    frame.write_delta(
        storage.table_uri(name),
        mode="overwrite",
        storage_options=storage.storage_options or None,
        delta_write_options={"schema_mode": "overwrite"},
    )
    return True


def read_reference_table(storage: WarehouseStorage, name: str) -> pl.DataFrame | None:
    """The current rows of table `name`, or None when it was never written."""
    if not storage.table_exists(name):
        return None
    return pl.read_delta(storage.table_uri(name), storage_options=storage.storage_options or None)
