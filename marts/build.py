"""The one entry point: `MartInputs` (every frame and setting the marts read) -> every mart.

`build_marts` only calls the builders of the mart modules; what a mart means lives in its module.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import polars as pl

from marts import anomalies, data_quality, inventory, performance, rebates
from marts.frames import Frame
from reference import ReferenceData

SCHEMAS: dict[str, dict[str, pl.DataType]] = {
    "partner_performance": performance.SCHEMA,
    "distributor_data_quality": data_quality.SCHEMA,
    "inventory_health": inventory.SCHEMA,
    "rebate_accruals": rebates.SCHEMA,
    "partner_anomalies": anomalies.SCHEMA,
}
"""Mart name (its Delta table and DuckDB view) -> its columns and types, in order."""
MART_NAMES: tuple[str, ...] = tuple(SCHEMAS)


@dataclass(frozen=True)
class MartInputs:
    """What the marts are built from: core and ops tables, reference tables, and settings.

    Frames may be eager or lazy; each needs at least the columns its builder names (the stored
    tables have them all). `as_of` is the day the marts describe (nothing reads the clock).
    """

    sellout: Frame
    """Core sell-out (`schemas.tables.SELLOUT_COLUMNS`), enriched."""
    inventory: Frame
    """Core inventory (`INVENTORY_COLUMNS`)."""
    loads: Frame
    """The load ledger (`LOADS_COLUMNS`): one row per received file."""
    distributors: Frame
    """distributor_id, name, country, currency, cadence, feeds, datasets (from the feed specs)."""
    partners: Frame
    partners_history: Frame
    products: Frame
    quotas: Frame
    tiers: Frame
    certifications: Frame
    rebate_programs: Frame
    as_of: date
    grace_days: int = data_quality.DEFAULT_GRACE_DAYS
    """Days after a period's end by which its report is due."""
    anomaly_threshold_pct: float = anomalies.DEFAULT_THRESHOLD_PCT
    """Smallest |departure| from the baseline, in percent, that is an anomaly."""

    @classmethod
    def from_reference(
        cls,
        reference: ReferenceData,
        *,
        sellout: Frame,
        inventory: Frame,
        loads: Frame,
        distributors: Frame,
        as_of: date,
        grace_days: int = data_quality.DEFAULT_GRACE_DAYS,
        anomaly_threshold_pct: float = anomalies.DEFAULT_THRESHOLD_PCT,
    ) -> MartInputs:
        """The inputs with every reference frame taken from `reference`."""
        return cls(
            sellout=sellout,
            inventory=inventory,
            loads=loads,
            distributors=distributors,
            partners=reference.partners,
            partners_history=reference.partners_history,
            products=reference.products,
            quotas=reference.quotas,
            tiers=reference.tiers,
            certifications=reference.certifications,
            rebate_programs=reference.rebate_programs,
            as_of=as_of,
            grace_days=grace_days,
            anomaly_threshold_pct=anomaly_threshold_pct,
        )


def build_marts(inputs: MartInputs) -> dict[str, pl.DataFrame]:
    """Every mart by name (`MART_NAMES` order), each with exactly the columns of `SCHEMAS`."""
    sellout = inputs.sellout.lazy()
    return {
        "partner_performance": performance.build_partner_performance(
            sellout,
            partners=inputs.partners,
            quotas=inputs.quotas,
            tiers=inputs.tiers,
            certifications=inputs.certifications,
            as_of=inputs.as_of,
            partners_history=inputs.partners_history,
        ),
        "distributor_data_quality": data_quality.build_distributor_data_quality(
            inputs.loads,
            distributors=inputs.distributors,
            sellout=sellout,
            inventory=inputs.inventory,
            as_of=inputs.as_of,
            grace_days=inputs.grace_days,
        ),
        "inventory_health": inventory.build_inventory_health(inputs.inventory, sellout=sellout),
        "rebate_accruals": rebates.build_rebate_accruals(
            sellout,
            partners=inputs.partners,
            partners_history=inputs.partners_history,
            rebate_programs=inputs.rebate_programs,
            products=inputs.products,
            as_of=inputs.as_of,
        ),
        "partner_anomalies": anomalies.build_partner_anomalies(
            sellout, partners=inputs.partners, threshold_pct=inputs.anomaly_threshold_pct
        ),
    }
