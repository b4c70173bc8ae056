"""The landing retention job: `throughline retention` as a Dagster run, launched daily by its
schedule (`pipelines.schedules`) or by hand from the launchpad.

One op calls `ingest.retention.apply_retention` (files received longer ago than the retention
period whose load finished leave landing, each recorded in `landing_changes` first), then brings
the catalog's views up to date (the `landing_changes` view reads the table once it exists). Like the
command, it runs while no load runs: it refuses to start while other runs are under way. Nothing
here decides what is old; that is the use case's.
"""

# No `from __future__ import annotations`: Dagster reads the `context` annotation when it defines the op.
import dagster as dg
import polars as pl

from ingest.retention import apply_retention
from pipelines.checks import markdown_table
from pipelines.resources import ThroughlineResource
from pipelines.sensors import UNFINISHED_RUN_STATUSES
from warehouse.catalog import ensure_catalog

LANDING_RETENTION = "landing_retention"
LISTED_FILES = 50
"""The run's metadata lists this many of the files it deleted (the count says how many in all)."""


class RetentionConfig(dg.Config):
    """How to apply the retention period; the defaults are what `throughline retention` does."""

    dry_run: bool = False
    """List what the period would delete, and delete nothing (`--dry-run`)."""
    days: int | None = None
    """The period in days; None: THROUGHLINE_LANDING_RETENTION_DAYS (default 730), as the command."""


def other_runs_under_way(instance: dg.DagsterInstance, run_id: str | None = None) -> list[str]:
    """Ids of the runs queued or under way, other than `run_id`."""
    runs = instance.get_run_records(dg.RunsFilter(statuses=UNFINISHED_RUN_STATUSES))
    return sorted(record.dagster_run.run_id for record in runs if record.dagster_run.run_id != run_id)


@dg.op
def apply_landing_retention(
    context: dg.OpExecutionContext, config: RetentionConfig, throughline: ThroughlineResource
) -> dg.Output[None]:
    """Delete from landing the files older than the retention period whose load finished."""
    busy = other_runs_under_way(context.instance, context.run_id)
    if busy:
        raise dg.Failure(
            description=(
                f"{len(busy)} other run(s) are under way ({', '.join(busy[:5])}): the retention period "
                "is applied while no load runs; launch it again once they have finished"
            ),
            allow_retries=False,
        )
    ingest = throughline.ingest_context(context.log)
    run = apply_retention(ingest, days=config.days, dry_run=config.dry_run)
    if not config.dry_run:
        ensure_catalog(ingest.storage, ingest.settings.catalog_path)
    verb = "would be deleted" if config.dry_run else "were deleted"
    context.log.info(
        f"landing retention {run.days} days: {len(run.purged)} file(s) received before "
        f"{run.cutoff:%Y-%m-%d %H:%M} UTC {verb} from landing; {len(run.unfinished)} older file(s) kept "
        "because their load never finished"
    )
    files = pl.DataFrame(
        [
            {"distributor_id": f.distributor_id, "source_name": f.source_name, "received_at": f.received_at}
            for f in run.purged[:LISTED_FILES]
        ],
        schema={
            "distributor_id": pl.String,
            "source_name": pl.String,
            "received_at": pl.Datetime("us", "UTC"),
        },
    )
    return dg.Output(
        None,
        metadata={
            "dry_run": config.dry_run,
            "days": run.days,
            "cutoff": run.cutoff.isoformat(),
            "purged": len(run.purged),
            "kept_unfinished": len(run.unfinished),
            "files": dg.MetadataValue.md(markdown_table(files) if run.purged else "(none)"),
        },
    )


@dg.job(
    name=LANDING_RETENTION,
    description=(
        "Apply the landing retention period (THROUGHLINE_LANDING_RETENTION_DAYS, default 730 days): delete "
        "from landing the files received longer ago whose load finished, recorded in `landing_changes`. "
        "`dry_run` lists them only. Refuses to start while other runs are under way."
    ),
    tags={"throughline/operation": "retention"},
)
def landing_retention_job() -> None:
    apply_landing_retention()
