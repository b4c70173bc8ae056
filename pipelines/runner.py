"""In-process runs of the ingest assets, for the CLI: the same assets the sensor launches, run here.

Files are grouped by partition (distributor x report date) and each group is one materialization
against the Dagster instance in the Throughline home, so CLI runs show up in the UI too.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import dagster as dg
from filelock import FileLock

from pipelines.assets import LOAD_ASSETS
from pipelines.partitions import distributor_partitions, partition_key, report_date_of
from pipelines.resources import ThroughlineResource, default_resources
from pipelines.sensors import receive_run_config
from schemas.feed_spec import FeedSpec, load_feed_specs
from schemas.settings import ThroughlineSettings
from warehouse.ledger import landed_files_of
from warehouse.loading import match_spec
from warehouse.storage import storage_for_home
from warehouse.tables import ensure_tables

INSTANCE_CONFIG = Path(__file__).resolve().parents[1] / "dagster.yaml"
Report = Callable[[str], None]


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def dagster_instance(settings: ThroughlineSettings) -> dg.DagsterInstance:
    """The Dagster instance in `<home>/dagster`, created with the project's dagster.yaml if new."""
    settings.dagster_home.mkdir(parents=True, exist_ok=True)
    target = settings.dagster_home / "dagster.yaml"
    if not target.exists() and INSTANCE_CONFIG.exists():
        shutil.copyfile(INSTANCE_CONFIG, target)
    os.environ["DAGSTER_HOME"] = str(settings.dagster_home)
    # Several CLI processes may start on a new instance at once; its SQLite schema is created on
    # first use, and two creators race ("table already exists"). One at a time, then.
    with FileLock(str(settings.dagster_home / ".instance.lock"), timeout=300):
        instance = dg.DagsterInstance.get()
        instance.get_dynamic_partitions(distributor_partitions.name)
    return instance


@dataclass(frozen=True)
class PartitionRun:
    """One materialization: the partition, the files it received, and whether it succeeded."""

    distributor_id: str
    report_date: date
    files: list[str]
    success: bool
    run_id: str


def distributor_for(
    path: Path, specs: dict[str, FeedSpec], explicit: str | None, inbox_dir: Path
) -> str | None:
    """Which distributor a file belongs to: given, its inbox folder, or the one spec its name matches."""
    if explicit:
        return explicit
    if path.parent.parent.resolve() == inbox_dir.resolve():
        return path.parent.name
    matching = sorted({spec.distributor_id for spec in specs.values() if spec.matches(path.name)})
    return matching[0] if len(matching) == 1 else None


def run_partitions(
    settings: ThroughlineSettings,
    groups: dict[tuple[str, date], list[str]],
    *,
    channel: str,
    report: Report = _stderr,
) -> list[PartitionRun]:
    """Materialize the ingest assets once per (distributor, report date) group, in order."""
    instance = dagster_instance(settings)
    distributors = sorted({distributor for distributor, _ in groups})
    known = set(instance.get_dynamic_partitions(distributor_partitions.name))
    if missing := [d for d in distributors if d not in known]:
        instance.add_dynamic_partitions(distributor_partitions.name, missing)
    resources = default_resources()
    resources["throughline"] = ThroughlineResource(
        home=str(settings.home), customer_key_secret=dg.EnvVar("THROUGHLINE_CUSTOMER_KEY_SECRET")
    )
    results: list[PartitionRun] = []
    total = len(groups)
    for index, ((distributor_id, report_date), paths) in enumerate(sorted(groups.items()), start=1):
        names = ", ".join(Path(p).name for p in paths) if paths else "everything landed"
        report(f"[{index}/{total}] {distributor_id} {report_date}: {names}")
        result = dg.materialize(
            LOAD_ASSETS,
            partition_key=partition_key(distributor_id, report_date),
            run_config=receive_run_config(paths, channel),
            resources=resources,
            instance=instance,
            raise_on_error=False,
            tags={"throughline/launched_by": "cli"},
        )
        if not result.success:
            report(f"  run {result.run_id} failed: open it in the Dagster UI (make dev) for the step logs")
        results.append(PartitionRun(distributor_id, report_date, paths, result.success, result.run_id))
    return results


def group_files(
    settings: ThroughlineSettings, paths: list[Path], explicit_distributor: str | None
) -> tuple[dict[tuple[str, date], list[str]], list[str]]:
    """Group files by partition; also return the problems with files that cannot be placed."""
    specs = load_feed_specs(settings.feeds_dir)
    groups: dict[tuple[str, date], list[str]] = defaultdict(list)
    problems: list[str] = []
    # Oldest first, so a restatement received later is also loaded later.
    for path in sorted(paths, key=lambda p: (p.stat().st_mtime_ns, p.name)):
        distributor_id = distributor_for(path, specs, explicit_distributor, settings.inbox_dir)
        if distributor_id is None:
            problems.append(
                f"{path}: cannot tell which distributor sent it (no single feed spec matches its name); "
                "pass --distributor ID or drop it in inbox/<distributor_id>/"
            )
            continue
        spec = match_spec(specs, distributor_id, path.name)
        received_at = datetime.fromtimestamp(path.stat().st_mtime, tz=UTC)
        groups[(distributor_id, report_date_of(spec, path.name, received_at))].append(str(path.resolve()))
    return dict(groups), problems


def landed_groups(
    settings: ThroughlineSettings, distributor_id: str | None, since: date | None, until: date | None
) -> dict[tuple[str, date], list[str]]:
    """Partitions that hold landed files (optionally one distributor, a date range): what reprocess re-runs."""
    storage = storage_for_home(settings.landing_dir, settings.warehouse_dir)
    ensure_tables(storage)
    specs = load_feed_specs(settings.feeds_dir)
    groups: dict[tuple[str, date], list[str]] = {}
    for landed in landed_files_of(storage, distributor_id):
        spec = match_spec(specs, landed.distributor_id, landed.source_name)
        report_date = report_date_of(spec, landed.source_name, landed.received_at)
        if (since and report_date < since) or (until and report_date > until):
            continue
        groups[(landed.distributor_id, report_date)] = []
    return groups
