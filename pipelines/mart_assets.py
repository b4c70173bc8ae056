"""Mart assets: the five marts (`marts/<name>`) and the partner scorecards (`reports/scorecards`).

One multi-asset calls `ingest.publish.publish` once: it builds every mart from core, the load
ledger and the reference tables, stores each whole, and writes the scorecard pages; then the
catalog is rebuilt so the mart views appear. What a mart means is the `marts` package's, what a page
shows is `reports`'s; this module only says when, from what, and what the UI shows of a run.
"""

# No `from __future__ import annotations`: Dagster reads the `context` annotation when it defines the op.
from datetime import UTC, date, datetime

import dagster as dg
from pydantic import field_validator

from ingest.publish import MART_NAMES, MART_SCHEMAS, publish
from ingest.run import open_warehouse
from pipelines.assets import CORE_INVENTORY, CORE_SELLOUT, LOADS
from pipelines.reference_assets import reference_key
from pipelines.resources import ThroughlineResource
from warehouse.catalog import ensure_catalog

MARTS_GROUP = "marts"
SCORECARDS = dg.AssetKey(["reports", "scorecards"])


def mart_key(name: str) -> dg.AssetKey:
    return dg.AssetKey([MARTS_GROUP, name])


MART_DEPS: dict[str, list[dg.AssetKey]] = {
    "partner_performance": [
        CORE_SELLOUT,
        *(reference_key(t) for t in ("partners", "partners_history", "quotas", "tiers", "certifications")),
    ],
    "distributor_data_quality": [LOADS, CORE_SELLOUT, CORE_INVENTORY, reference_key("distributors")],
    "inventory_health": [CORE_INVENTORY, CORE_SELLOUT],
    "rebate_accruals": [
        CORE_SELLOUT,
        *(reference_key(t) for t in ("partners", "partners_history", "rebate_programs", "products")),
    ],
    "partner_anomalies": [CORE_SELLOUT, reference_key("partners")],
}
"""What each mart is built from (docs/marts.md), as lineage in the UI."""
DESCRIPTIONS: dict[str, str] = {
    "partner_performance": "One row per partner x month: revenue, units, quota attainment, tier and certifications.",
    "distributor_data_quality": "One row per distributor x dataset x report period: on time, late or missing, and row counts.",
    "inventory_health": "One row per distributor x SKU: latest stock, 4-week sell rate, weeks of supply.",
    "rebate_accruals": "One row per partner x rebate program started: qualifying revenue and rebate earned.",
    "partner_anomalies": "One row per partner x month: revenue against the partner's 6-month baseline.",
}


def column_schema(name: str) -> dg.TableSchema:
    """A mart's columns and types as the UI shows them."""
    return dg.TableSchema(
        columns=[dg.TableColumn(column, str(dtype)) for column, dtype in MART_SCHEMAS[name].items()]
    )


class MartsConfig(dg.Config):
    """`as_of`: the day the marts describe, as YYYY-MM-DD; empty means today (UTC) when the run starts."""

    as_of: str | None = None

    @field_validator("as_of")
    @classmethod
    def _iso_date(cls, value: str | None) -> str | None:
        if value:
            try:
                date.fromisoformat(value)
            except ValueError:
                raise ValueError(f"as_of must be a date as YYYY-MM-DD, got {value!r}") from None
        return value or None

    def as_of_date(self) -> date:
        return date.fromisoformat(self.as_of) if self.as_of else datetime.now(UTC).date()


@dg.multi_asset(
    name="publish_marts",
    specs=[
        *(
            dg.AssetSpec(
                mart_key(name),
                group_name=MARTS_GROUP,
                description=DESCRIPTIONS[name],
                deps=MART_DEPS[name],
                metadata={"dagster/column_schema": column_schema(name)},
            )
            for name in MART_NAMES
        ),
        dg.AssetSpec(
            SCORECARDS,
            group_name=MARTS_GROUP,
            description=(
                "One HTML scorecard per partner (reports/partners/<partner_id>.html, shareable with "
                "that partner) and the vendor overview (reports/index.html, vendor only)."
            ),
            deps=[
                mart_key("partner_performance"),
                mart_key("rebate_accruals"),
                CORE_SELLOUT,
                *(reference_key(t) for t in ("partners", "products", "certifications")),
            ],
        ),
    ],
    can_subset=False,
)
def publish_marts(context: dg.AssetExecutionContext, config: MartsConfig, throughline: ThroughlineResource):
    """Build and store every mart as of `as_of`, write the scorecards, refresh the catalog."""
    as_of = config.as_of_date()
    ingest = throughline.ingest_context(context.log)
    open_warehouse(ingest)
    published = publish(ingest, as_of)
    ensure_catalog(ingest.storage, ingest.settings.catalog_path)
    context.log.info(
        f"marts as of {published.as_of}: "
        + ", ".join(f"{name} {rows}" for name, rows in published.mart_rows.items())
    )
    for name in MART_NAMES:
        yield dg.MaterializeResult(
            asset_key=mart_key(name),
            metadata={"dagster/row_count": published.mart_rows[name], "as_of": published.as_of.isoformat()},
        )
    reports = published.reports
    yield dg.MaterializeResult(
        asset_key=SCORECARDS,
        metadata={
            "as_of": published.as_of.isoformat(),
            "overview": dg.MetadataValue.path(str(reports.index)),
            "partner_pages": len(reports.pages),
            "pages_removed": len(reports.removed),
            "charts": reports.charts,
            "mart_rows": dg.MetadataValue.json(published.mart_rows),
        },
    )


MART_ASSETS = [publish_marts]
