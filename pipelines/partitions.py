"""Partitions: a load is keyed by distributor and report period, so the grid shows each distributor's
periods and one distributor can be backfilled over a range of them.

Both dimensions are dynamic: a distributor is added when its first file arrives, a period when a
file names it or when it falls due by the distributor's cadence (the `report_calendar` sensor adds
periods still owed, so a missing report shows as a missing cell). A period key is the period's
first day (`YYYY-MM-DD`) as `ingest.route` decides it for a file; a key reads
`<distributor>|<period>` (Dagster joins dimensions in name order). Nothing here reads files.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

import dagster as dg

DISTRIBUTOR_DIMENSION = "distributor"
PERIOD_DIMENSION = "period"

distributor_partitions = dg.DynamicPartitionsDefinition(name="distributor")
period_partitions = dg.DynamicPartitionsDefinition(name="report_period")
load_partitions = dg.MultiPartitionsDefinition(
    {DISTRIBUTOR_DIMENSION: distributor_partitions, PERIOD_DIMENSION: period_partitions}
)

LOAD_BACKFILL_POLICY = dg.BackfillPolicy.single_run()
"""A backfill loads each distributor's range of periods in one run: one core rebuild instead of one
per period, and one process start instead of dozens."""


def partition_key(distributor_id: str, period: date) -> dg.MultiPartitionKey:
    return dg.MultiPartitionKey({DISTRIBUTOR_DIMENSION: distributor_id, PERIOD_DIMENSION: period.isoformat()})


def split_key(key: str | dg.MultiPartitionKey) -> tuple[str, date]:
    """(distributor_id, period start) of a partition key."""
    keys = (
        key.keys_by_dimension
        if isinstance(key, dg.MultiPartitionKey)
        else load_partitions.get_partition_key_from_str(key).keys_by_dimension
    )
    return keys[DISTRIBUTOR_DIMENSION], date.fromisoformat(keys[PERIOD_DIMENSION])


RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"


def targeted(context: dg.AssetExecutionContext) -> list[tuple[str, date]]:
    """The (distributor, period) pairs a run targets: one partition, or every key of a backfill's range.

    The range is read from the run's tags first: a job backfill's ranged run also carries the first
    partition's per-dimension tags, and Dagster 1.13 reads those before the range, so
    `context.partition_keys` would name that one partition only.
    """
    tags = context.run.tags
    if tags.get(RANGE_START_TAG) and tags.get(RANGE_END_TAG):
        keys = load_partitions.get_partition_keys_in_range(
            dg.PartitionKeyRange(tags[RANGE_START_TAG], tags[RANGE_END_TAG]),
            dynamic_partitions_store=context.instance,
        )
    else:
        keys = context.partition_keys
    return sorted(split_key(key) for key in keys)


def add_requests(
    instance: dg.DagsterInstance, pairs: Iterable[tuple[str, date]]
) -> list[dg.AddDynamicPartitionsRequest]:
    """Requests adding the distributors and periods of `pairs` the instance does not know yet, in
    date order (Dagster orders dynamic keys as they were added)."""
    pairs = list(pairs)
    requests = []
    for definition, wanted in (
        (distributor_partitions, sorted({d for d, _ in pairs})),
        (period_partitions, sorted({p.isoformat() for _, p in pairs})),
    ):
        assert definition.name is not None
        known = set(instance.get_dynamic_partitions(definition.name))
        new = [key for key in wanted if key not in known]
        if new:
            requests.append(definition.build_add_request(new))
    return requests


def key_range(
    instance: dg.DagsterInstance,
    requests: list[dg.AddDynamicPartitionsRequest],
    distributor_id: str,
    periods: Iterable[date],
) -> tuple[str, str]:
    """The first and last key of the smallest range of the distributor's partitions holding all of
    `periods`, once `requests` are applied: Dagster orders a dynamic dimension as its keys were
    added, so the range runs from the earliest added of them to the latest, not by date."""
    assert period_partitions.name is not None
    order = list(instance.get_dynamic_partitions(period_partitions.name))
    order += [
        key
        for request in requests
        if request.partitions_def_name == period_partitions.name
        for key in request.partition_keys
    ]
    position = {key: index for index, key in enumerate(order)}
    wanted = sorted({period.isoformat() for period in periods}, key=position.__getitem__)
    return (
        str(partition_key(distributor_id, date.fromisoformat(wanted[0]))),
        str(partition_key(distributor_id, date.fromisoformat(wanted[-1]))),
    )


def add_partitions(instance: dg.DagsterInstance, pairs: Iterable[tuple[str, date]]) -> None:
    """Add, from inside a run, the distributors and periods of `pairs` the instance does not know yet."""
    for request in add_requests(instance, pairs):
        instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
