"""Marts: pure builders of the analyst-facing marts from core, ops and reference frames.

Polars frames in, Polars DataFrames out: no I/O, no Dagster, no DuckDB (storing each mart as a
Delta table and its DuckDB view is the caller's). One module per mart (`performance`,
`data_quality`, `inventory`, `rebates`, `anomalies`), the partner x month grid two of them share
(`partners`), frame helpers (`frames`), and the entry point (`build`). Columns: docs/marts.md.
"""

from marts.anomalies import build_partner_anomalies
from marts.build import MART_NAMES, SCHEMAS, MartInputs, build_marts
from marts.data_quality import build_distributor_data_quality
from marts.inventory import build_inventory_health
from marts.performance import build_partner_performance
from marts.rebates import build_rebate_accruals

__all__ = [
    "MART_NAMES",
    "SCHEMAS",
    "MartInputs",
    "build_distributor_data_quality",
    "build_inventory_health",
    "build_marts",
    "build_partner_anomalies",
    "build_partner_performance",
    "build_rebate_accruals",
]
