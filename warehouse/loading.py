"""Loading one landed file: read, normalize, validate and write its staging and quarantine rows.

`load_landed_file` streams the file once: each batch is split into valid records (written to the
staging Delta table in one commit, replacing any earlier run of the same load) and failed records
(written to `quarantine`). The load's `loads` row comes last. A file that cannot be read becomes a
`rejected` load with an error a person can act on; it never stops other files.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl

from schemas.feed_spec import FeedSpec
from schemas.rules import RuleContext
from schemas.tables import TABLE_COLUMNS, TIMESTAMP
from transforms.normalize import normalize_records
from transforms.readers import POLARS_READ_ERRORS, UnreadableFileError, read_records
from transforms.validate import RULE_COLUMN, flag_failures, quarantine_records
from warehouse.ledger import LandedFile, LoadRow, duplicate_load_id, load_id_for, write_load
from warehouse.storage import WarehouseStorage
from warehouse.tables import (
    conform_batches,
    distributor_lock,
    replace_rows,
    replace_rows_streaming,
    sql_literal,
)

log = logging.getLogger(__name__)

BATCH_ROWS = 250_000
Progress = Callable[[int], None]


@dataclass(frozen=True)
class LoadContext:
    """What every load of a run shares: where to write, the HMAC secret, scratch and lock folders."""

    storage: WarehouseStorage
    customer_key_secret: str
    work_dir: Path
    lock_dir: Path


@dataclass
class _Counts:
    read: int = 0
    loaded: int = 0
    quarantined: int = 0


def match_spec(specs: dict[str, FeedSpec], distributor_id: str, source_name: str) -> FeedSpec | None:
    """The distributor's feed spec whose file patterns match `source_name` (first by spec id)."""
    for spec_id in sorted(specs):
        spec = specs[spec_id]
        if spec.distributor_id == distributor_id and spec.matches(source_name):
            return spec
    return None


def describe_no_spec(specs: dict[str, FeedSpec], distributor_id: str, source_name: str) -> str:
    patterns = [
        p for spec in specs.values() if spec.distributor_id == distributor_id for p in spec.file_patterns
    ]
    if not patterns:
        return (
            f"no feed spec for distributor '{distributor_id}': add feeds/{distributor_id}.yaml "
            "(see README, 'Onboard a distributor') or drop the file in the right inbox folder"
        )
    return (
        f"'{source_name}' matches none of distributor '{distributor_id}''s file patterns {patterns}; "
        "rename the file or add its pattern to the feed spec's file_patterns"
    )


def _staging_frames(
    flagged: pl.LazyFrame,
    rule_context: RuleContext,
    landed: LandedFile,
    load_id: str,
    period_start: date | None,
    ingested_at: datetime,
    counts: _Counts,
    failed_parts: list[pl.DataFrame],
    progress: Progress | None,
) -> Iterator[pl.DataFrame]:
    spec = rule_context.spec
    table = f"staging_{spec.dataset}"
    lineage = {
        "distributor_id": pl.lit(spec.distributor_id),
        "feed_id": pl.lit(spec.id),
        "period_start": pl.lit(period_start, dtype=pl.Date),
        "source_file": pl.lit(landed.source_file),
        "load_id": pl.lit(load_id),
        "received_at": pl.lit(landed.received_at).cast(TIMESTAMP),
        "ingested_at": pl.lit(ingested_at).cast(TIMESTAMP),
    }
    available = set(flagged.collect_schema().names())
    columns = [
        lineage[name] if name in lineage else (pl.col(name) if name in available else pl.lit(None))
        for name in TABLE_COLUMNS[table]
    ]
    names = list(TABLE_COLUMNS[table])
    for batch in flagged.collect_batches(chunk_size=BATCH_ROWS):
        failed_mask = batch[RULE_COLUMN].is_not_null()
        counts.read += batch.height
        failed = batch.filter(failed_mask)
        if failed.height:
            failed_parts.append(quarantine_records(failed, rule_context))
            counts.quarantined += failed.height
        valid = batch.filter(~failed_mask)
        counts.loaded += valid.height
        if progress is not None:
            progress(counts.read)
        if valid.height:
            yield valid.select([expr.alias(name) for expr, name in zip(columns, names, strict=True)])


def _write_records(
    context: LoadContext,
    spec: FeedSpec,
    landed: LandedFile,
    row: LoadRow,
    scratch: Path,
    *,
    tolerant: bool,
    progress: Progress | None,
) -> _Counts:
    storage = context.storage
    load_id, started_at = row.load_id, row.started_at
    raw_records = read_records(
        storage.local_path(landed.source_file), spec.format, scratch, tolerant=tolerant
    )
    normalized = normalize_records(raw_records, spec, customer_key_secret=context.customer_key_secret)
    rule_context = RuleContext(spec=spec, as_of=started_at.date())
    flagged = flag_failures(normalized, rule_context)
    counts = _Counts()
    failed_parts: list[pl.DataFrame] = []
    frames = _staging_frames(
        flagged, rule_context, landed, load_id, row.period_start, started_at, counts, failed_parts, progress
    )
    table = f"staging_{spec.dataset}"
    predicate = f"distributor_id = {sql_literal(spec.distributor_id)} AND load_id = {sql_literal(load_id)}"
    replace_rows_streaming(storage, table, conform_batches(frames, table), predicate)
    quarantined = (
        pl.concat(failed_parts) if failed_parts else pl.DataFrame(schema=TABLE_COLUMNS["quarantine"])
    )
    quarantined = quarantined.with_columns(
        pl.lit(load_id).alias("load_id"),
        pl.lit(spec.distributor_id).alias("distributor_id"),
        pl.lit(spec.id).alias("feed_id"),
        pl.lit(landed.source_file).alias("source_file"),
        pl.lit(started_at).cast(TIMESTAMP).alias("ingested_at"),
    )
    replace_rows(storage, "quarantine", quarantined, f"load_id = {sql_literal(load_id)}")
    return counts


def _is_polars_parse_error(error: BaseException) -> bool:
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, POLARS_READ_ERRORS):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _new_row(landed: LandedFile, distributor_id: str, started_at: datetime) -> LoadRow:
    """A `loads` row for a landed file with nothing read yet; callers replace what they know."""
    return LoadRow(
        load_id="",
        distributor_id=distributor_id,
        feed_id=None,
        dataset=None,
        channel=landed.channel,
        source_name=landed.source_name,
        source_file=landed.source_file,
        sha256=landed.sha256,
        bytes=landed.bytes,
        spec_version=None,
        period_start=None,
        rows_read=0,
        rows_loaded=0,
        rows_quarantined=0,
        status="",
        error=None,
        received_at=landed.received_at,
        started_at=started_at,
        finished_at=started_at,
    )


def load_landed_file(
    context: LoadContext,
    landed: LandedFile,
    spec: FeedSpec | None,
    *,
    no_spec_reason: str = "",
    progress: Progress | None = None,
) -> LoadRow:
    """Load one landed file for its distributor and write its `loads` row; never raises for bad input."""
    started_at = datetime.now(UTC)
    distributor_id = spec.distributor_id if spec else landed.distributor_id
    row = replace(
        _new_row(landed, distributor_id, started_at),
        load_id=load_id_for(distributor_id, landed.sha256),
        feed_id=spec.id if spec else None,
        dataset=spec.dataset if spec else None,
        spec_version=spec.version if spec else None,
        period_start=spec.period.period_of(landed.source_name) if spec and spec.period else None,
        status="rejected",
    )
    with distributor_lock(context.lock_dir, distributor_id):
        if spec is None:
            row.error = no_spec_reason or f"no feed spec matches '{landed.source_name}'"
        else:
            context.work_dir.mkdir(parents=True, exist_ok=True)
            scratch = Path(tempfile.mkdtemp(prefix=f"{row.load_id}-", dir=context.work_dir))
            try:
                counts = _load_with_fallback(context, spec, landed, row, scratch, progress)
                row.rows_read, row.rows_loaded, row.rows_quarantined = (
                    counts.read,
                    counts.loaded,
                    counts.quarantined,
                )
                row.status = "loaded"
            except (UnreadableFileError, ValueError, OSError) as error:
                row.error = f"{landed.source_name}: {error}"
            except Exception as error:  # a reader bug must not stop the other files of the run
                log.exception("unexpected failure loading %s", landed.source_name)
                first_line = (str(error).splitlines() or [""])[0][:500]
                row.error = (
                    f"{landed.source_name}: unexpected {type(error).__name__}: {first_line} (see the run log)"
                )
            finally:
                shutil.rmtree(scratch, ignore_errors=True)
        row.finished_at = datetime.now(UTC)
        write_load(context.storage, row)
    return row


def _load_with_fallback(
    context: LoadContext,
    spec: FeedSpec,
    landed: LandedFile,
    row: LoadRow,
    scratch: Path,
    progress: Progress | None,
) -> _Counts:
    try:
        return _write_records(context, spec, landed, row, scratch, tolerant=False, progress=progress)
    except Exception as error:
        if spec.format.type != "csv" or not _is_polars_parse_error(error):
            raise
        log.info(
            "fast CSV parser failed on %s (%s); retrying with the tolerant parser", landed.source_name, error
        )
        return _write_records(context, spec, landed, row, scratch, tolerant=True, progress=progress)


def write_duplicate_load(
    context: LoadContext,
    landed: LandedFile,
    distributor_id: str,
    source_name: str,
    received_at: datetime,
    channel: str,
) -> LoadRow:
    """Record identical bytes received again: a `duplicate` row, nothing else changes."""
    row = replace(
        _new_row(landed, distributor_id, datetime.now(UTC)),
        load_id=duplicate_load_id(distributor_id, landed.sha256, received_at),
        channel=channel,
        source_name=source_name,
        status="duplicate",
        error=f"identical bytes were already received as '{landed.source_name}' at {landed.received_at:%Y-%m-%d %H:%M:%S}",
        received_at=received_at,
    )
    write_load(context.storage, row)
    return row
