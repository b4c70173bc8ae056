"""Partitions: a load is keyed by distributor and report date, so one distributor can be backfilled over a range.

`distributor` is dynamic (the sensor and the CLI add each inbox folder's distributor); `date` is
the report period's first day (from the file name, per the feed spec), or the day the file was
received when the feed has no period rule.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import dagster as dg

from schemas.feed_spec import FeedSpec

DISTRIBUTOR_DIMENSION = "distributor"
DATE_DIMENSION = "date"
PARTITIONS_START = date(2020, 1, 1)

distributor_partitions = dg.DynamicPartitionsDefinition(name=DISTRIBUTOR_DIMENSION)
report_date_partitions = dg.DailyPartitionsDefinition(start_date=PARTITIONS_START.isoformat(), end_offset=1)
load_partitions = dg.MultiPartitionsDefinition(
    {DISTRIBUTOR_DIMENSION: distributor_partitions, DATE_DIMENSION: report_date_partitions}
)


def report_date_of(spec: FeedSpec | None, source_name: str, received_at: datetime) -> date:
    """The partition date of a file: its report period's first day, else the day it was received.

    Clamped to the partition range (a file dated in the future lands in today's partition).
    """
    period = spec.period.period_of(source_name) if spec and spec.period else None
    chosen = period or received_at.astimezone(UTC).date()
    today = datetime.now(UTC).date()
    return min(max(chosen, PARTITIONS_START), today)


def partition_key(distributor_id: str, report_date: date) -> dg.MultiPartitionKey:
    return dg.MultiPartitionKey(
        {DISTRIBUTOR_DIMENSION: distributor_id, DATE_DIMENSION: report_date.isoformat()}
    )


def split_partition_key(context: dg.AssetExecutionContext) -> tuple[str, date]:
    """(distributor_id, report date) of the partition being materialized."""
    keys = context.partition_key.keys_by_dimension
    return keys[DISTRIBUTOR_DIMENSION], date.fromisoformat(keys[DATE_DIMENSION])
