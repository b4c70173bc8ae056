"""Reference assets: the reference folder stored as tables, one asset per table (`reference/<table>`).

One multi-asset materializes them all at once by calling `ingest.enrichment.refresh_reference`
(always re-read, `force=True`), which also re-resolves resellers and rewrites the core partitions
the change puts out of date. Bad reference data fails the run with every problem, naming file and
row, and changes nothing. What the tables hold is the `reference` package's business, not this module's.
"""

# No `from __future__ import annotations`: Dagster reads the `context` annotation when it defines the op.
import dagster as dg

from ingest.enrichment import refresh_reference
from ingest.run import open_warehouse
from pipelines.resources import ThroughlineResource
from warehouse.catalog import ensure_catalog
from warehouse.reference_tables import REFERENCE_TABLES, read_reference_table

REFERENCE_GROUP = "reference"

DESCRIPTIONS: dict[str, str] = {
    "distributors": "One row per distributor, from the feed specs (the one place they are declared).",
    "partners": "One row per partner (`partners.csv`): its latest version, `is_current` when still open.",
    "partners_history": "Every version of every partner (`partners.csv`), valid from `valid_from` to `valid_to`.",
    "partner_sites": "Local entities and sites of partners (`partner_sites.csv`): more names to match.",
    "partner_aliases": "Every reseller reported so far, resolved to a partner (alias, exact, normalized, fuzzy) or not.",
    "partner_alias_approvals": "Matches people approved or corrected (`partner_aliases.csv`).",
    "products": "The vendor's products (`products.csv`): SKU, name, family, list price.",
    "sku_map": "Distributor part numbers mapped to SKUs, with the pack conversion (`sku_map.csv`).",
    "fx_rates": "Rates to the base currency by date (`fx_rates.csv`).",
    "quotas": "Partner targets per month, in the base currency (`quotas.csv`).",
    "tiers": "Partner tiers and what qualifies for each (`tiers.yaml`).",
    "certifications": "Certifications partners earned, and when they expire (`certifications.csv`).",
    "rebate_programs": "Rebate programs: what they cover, when, for which tiers (`rebate_programs.yaml`).",
}
DERIVED_FROM: dict[str, tuple[str, ...]] = {
    "partner_aliases": ("partners_history", "partner_sites", "partner_alias_approvals"),
}
"""Reference tables computed from others (lineage inside the multi-asset)."""
TABLE_ORDER = sorted(REFERENCE_TABLES, key=lambda table: table in DERIVED_FROM)
"""The stored tables first, then those derived from them: Dagster wants results in that order."""


def reference_key(table: str) -> dg.AssetKey:
    return dg.AssetKey([REFERENCE_GROUP, table])


SELLOUT_REFERENCE = [reference_key(t) for t in ("partner_aliases", "sku_map", "fx_rates")]
"""What rows entering core sell-out are enriched with (`ingest.enrichment.enrichment`)."""
INVENTORY_REFERENCE = [reference_key("sku_map")]
"""What rows entering core inventory are enriched with."""


@dg.multi_asset(
    name="reference_tables",
    specs=[
        dg.AssetSpec(
            reference_key(table),
            group_name=REFERENCE_GROUP,
            description=DESCRIPTIONS.get(table, f"Reference table `{table}`."),
            deps=[reference_key(t) for t in DERIVED_FROM.get(table, ())],
        )
        for table in TABLE_ORDER
    ],
    can_subset=False,
)
def reference_tables(context: dg.AssetExecutionContext, throughline: ThroughlineResource):
    """Store `$THROUGHLINE_HOME/reference/` as tables and bring core in line with it."""
    ingest = throughline.ingest_context(context.log)
    open_warehouse(ingest)
    refresh = refresh_reference(ingest, force=True)
    if refresh.problems:
        listed = "\n".join(f"  {problem}" for problem in refresh.problems)
        raise dg.Failure(
            description=(
                f"reference data not applied: {len(refresh.problems)} problem(s) in "
                f"{ingest.settings.reference_dir}; fix them and materialize again:\n{listed}"
            ),
            metadata={"problems": dg.MetadataValue.json(refresh.problems)},
            allow_retries=False,
        )
    ensure_catalog(ingest.storage, ingest.settings.catalog_path)
    rewritten = sum(len(load_ids) for load_ids in refresh.refreshed.values())
    for table in TABLE_ORDER:
        frame = read_reference_table(ingest.storage, table)
        yield dg.MaterializeResult(
            asset_key=reference_key(table),
            metadata={
                "dagster/row_count": 0 if frame is None else frame.height,
                "written": table in refresh.tables_written,
                "tables_written": dg.MetadataValue.json(refresh.tables_written),
                "load_partitions_rewritten": rewritten,
                "rewritten": dg.MetadataValue.json(refresh.refreshed),
            },
        )


REFERENCE_ASSETS = [reference_tables]
