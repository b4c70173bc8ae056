"""Partitions: a load is keyed by distributor and report date, so one distributor can be backfilled over a range.

`distributor` is dynamic (the sensor adds each inbox folder's distributor); `date` is the report
period's first day, as `ingest.route.report_date_of` decides it (the only place that does).
"""

from __future__ import annotations

from datetime import date

import dagster as dg

from ingest.route import PARTITIONS_START

DISTRIBUTOR_DIMENSION = "distributor"
DATE_DIMENSION = "date"

distributor_partitions = dg.DynamicPartitionsDefinition(name=DISTRIBUTOR_DIMENSION)
report_date_partitions = dg.DailyPartitionsDefinition(start_date=PARTITIONS_START.isoformat(), end_offset=1)
load_partitions = dg.MultiPartitionsDefinition(
    {DISTRIBUTOR_DIMENSION: distributor_partitions, DATE_DIMENSION: report_date_partitions}
)


def partition_key(distributor_id: str, report_date: date) -> dg.MultiPartitionKey:
    return dg.MultiPartitionKey(
        {DISTRIBUTOR_DIMENSION: distributor_id, DATE_DIMENSION: report_date.isoformat()}
    )


def split_partition_key(context: dg.AssetExecutionContext) -> tuple[str, date]:
    """(distributor_id, report date) of the partition being materialized."""
    keys = context.partition_key.keys_by_dimension
    return keys[DISTRIBUTOR_DIMENSION], date.fromisoformat(keys[DATE_DIMENSION])
