"""Loading one landed file: read, normalize, validate, split, and write staging, quarantine and its
`loads` row (as `staged`; completing core is `ingest.complete`'s step).

The file streams once: each batch is split into valid records (staging, one commit replacing any
earlier run of the same load) and failed ones (quarantine). Every record the reader emits is
loaded or quarantined; every line it did not emit is counted in `rows_skipped` by the rule that
skipped it. A footer row that reads as a valid record is quarantined (`footer_is_data`), never
dropped. A file that cannot be read becomes a `rejected` load with an error a person can act on.
A file's header is compared with its spec and with the header of the feed's previous load
(`transforms.drift`): the drift goes on the row by column name, and a missing column the load needs
refuses the file.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import overload

import polars as pl

from ingest.complete import CONFIRMED_MARK
from ingest.context import IngestContext
from ingest.route import Route, printable
from schemas.feed_spec import FeedSpec
from schemas.rules import RuleContext
from schemas.tables import TABLE_COLUMNS, TIMESTAMP
from transforms.drift import detect_drift, has_named_header, header_from_json, header_json, source_header
from transforms.normalize import normalize_records
from transforms.readers import (
    POLARS_READ_ERRORS,
    ROW_KIND,
    ReadResult,
    UnreadableFileError,
    estimate_records,
    read_records,
)
from transforms.validate import RULE_COLUMN, flag_failures, quarantine_records
from warehouse.faults import crash_point
from warehouse.ledger import LandedFile, LoadRow, load_statuses, load_warnings, previous_header, write_load
from warehouse.tables import commit_data_files, data_columns, distributor_lock, new_data_file, pq_rows

log = logging.getLogger(__name__)

COMPRESSION = "lz4"
"""Parquet compression of staging and quarantine files: the fastest to write of those Polars offers."""
FOOTER_IS_DATA = "footer_is_data"


@dataclass
class _Counts:
    read: int = 0
    loaded: int = 0
    quarantined: int = 0
    skipped: dict[str, int] = field(default_factory=dict)

    def skip(self, rule: str, count: int) -> None:
        if count:
            self.skipped[rule] = self.skipped.get(rule, 0) + count


def new_load_row(landed: LandedFile, route: Route, started_at: datetime) -> LoadRow:
    """A `loads` row for a landed file with nothing read yet."""
    spec = route.spec
    return LoadRow(
        load_id=landed.load_id,
        distributor_id=landed.distributor_id,
        feed_id=spec.id if spec else None,
        dataset=spec.dataset if spec else None,
        channel=landed.channel,
        source_name=landed.source_name,
        source_file=landed.source_file,
        sha256=landed.sha256,
        bytes=landed.bytes,
        spec_version=spec.version if spec else None,
        period_start=route.period_start,
        rows_read=0,
        rows_loaded=0,
        rows_quarantined=0,
        status="rejected",
        error=None,
        received_at=landed.received_at,
        started_at=started_at,
        finished_at=started_at,
    )


@overload
def load_landed_file(context: IngestContext, landed: LandedFile, route: Route) -> LoadRow: ...
@overload
def load_landed_file(
    context: IngestContext, landed: LandedFile, route: Route, *, only_if_unfinished: bool
) -> LoadRow | None: ...
def load_landed_file(
    context: IngestContext, landed: LandedFile, route: Route, *, only_if_unfinished: bool = False
) -> LoadRow | None:
    """Load one landed file and write its `loads` row; never raises for bad input.

    `only_if_unfinished`: do nothing (None) when, once the distributor's lock is held, the file
    turns out to have a load row already (another run got there first).
    """
    row = new_load_row(landed, route, datetime.now(UTC))
    name = printable(landed.source_name)
    with distributor_lock(context.lock_dir, landed.distributor_id):
        if only_if_unfinished and load_statuses(context.storage, [landed.load_id]):
            return None
        if route.spec is None:
            row.error = f"{name}: {route.reason or 'no feed spec matches it'}"
        else:
            context.work_dir.mkdir(parents=True, exist_ok=True)
            # A killed earlier attempt of this very load left its scratch (decoded text, end-customer
            # identities included); under the distributor's lock no other process can be using it.
            for stale in context.work_dir.glob(f"{row.load_id}-*"):
                shutil.rmtree(stale, ignore_errors=True)
            scratch = Path(tempfile.mkdtemp(prefix=f"{row.load_id}-", dir=context.work_dir))
            local = context.storage.local_path(landed.source_file)
            context.progress.file_started(
                landed.source_name, landed.bytes, estimate_records(local, landed.bytes, route.spec.format)
            )
            try:
                counts, notes = _load_with_fallback(context, route.spec, landed, row, scratch)
                row.rows_read, row.rows_loaded, row.rows_quarantined = (
                    counts.read,
                    counts.loaded,
                    counts.quarantined,
                )
                row.rows_skipped = sum(counts.skipped.values())
                row.skipped_detail = json.dumps(counts.skipped, sort_keys=True) if counts.skipped else None
                rate_warning = quarantine_rate_warning(row, context.settings.quarantine_rate_warn)
                row.warnings = "\n".join([*notes, *([rate_warning] if rate_warning else [])]) or None
                row.status = "staged"
            except (UnreadableFileError, ValueError, OSError) as error:
                row.error = f"{name}: {error}"
            except Exception as error:  # a reader bug must not stop the other files of the run
                log.exception("unexpected failure loading %s", name)
                first_line = (str(error).splitlines() or [""])[0][:500]
                row.error = f"{name}: unexpected {type(error).__name__}: {first_line} (see the run log)"
            finally:
                shutil.rmtree(scratch, ignore_errors=True)
        row.finished_at = datetime.now(UTC)
        row.warnings = _with_confirmation(context, row)
        write_load(context.storage, row)
        crash_point("after_load_row")
    return row


def _with_confirmation(context: IngestContext, row: LoadRow) -> str | None:
    """The row's warnings, plus a person's confirmation of the load's earlier run (`throughline
    confirm`), which a re-run (`reprocess`) keeps: the same report stays confirmed."""
    earlier = load_warnings(context.storage, row.load_id) or ""
    kept = [line for line in earlier.splitlines() if line.startswith(CONFIRMED_MARK)]
    if not kept or row.status == "rejected":
        return row.warnings
    return "\n".join([*kept, *([row.warnings] if row.warnings else [])])


def _load_with_fallback(
    context: IngestContext, spec: FeedSpec, landed: LandedFile, row: LoadRow, scratch: Path
) -> tuple[_Counts, list[str]]:
    try:
        return _write_records(context, spec, landed, row, scratch, tolerant=False)
    except Exception as error:
        if spec.format.type != "csv" or not _is_polars_parse_error(error):
            raise
        log.info(
            "fast CSV parser failed on %s (%s); retrying with the tolerant parser", landed.source_name, error
        )
        return _write_records(context, spec, landed, row, scratch, tolerant=True)


def _write_records(
    context: IngestContext, spec: FeedSpec, landed: LandedFile, row: LoadRow, scratch: Path, *, tolerant: bool
) -> tuple[_Counts, list[str]]:
    """One streaming pass over the file: valid records to the load's staging partition, failed ones to
    its quarantine partition, rows inside `footer_rows` aside to be judged; then two commits."""
    storage = context.storage
    result: ReadResult = read_records(
        storage.local_path(landed.source_file),
        spec.format,
        scratch,
        tolerant=tolerant,
        limits=context.settings.limits,
    )
    _record_drift(context, spec, landed, row, result)
    normalized = normalize_records(result.records, spec, customer_key_secret=context.secret)
    rule_context = RuleContext(
        spec=spec, as_of=row.started_at.date(), max_field_chars=context.settings.max_field_chars
    )
    flagged = flag_failures(normalized, rule_context)
    counts = _Counts()
    for rule, count in result.skipped.items():
        counts.skip(rule, count)
    staging_table = f"staging_{spec.dataset}"
    partition = {"distributor_id": spec.distributor_id, "load_id": row.load_id}
    staged_file = new_data_file(storage, staging_table, partition)
    quarantine_file = new_data_file(storage, "quarantine", partition)
    footer_path = scratch / "footer.parquet"
    # Without a footer zone no record is of kind "footer": a third sink would cost the streaming
    # engine a quarter of its memory for nothing.
    has_footer_zone = getattr(spec.format, "footer_rows", 0) > 0
    is_data = pl.col(ROW_KIND) != "footer" if has_footer_zone else pl.lit(True)
    passed = pl.col(RULE_COLUMN).is_null()
    allowed = quarantine_sources(spec)
    valid = flagged.filter(is_data & passed).select(_staging_columns(flagged, spec, landed, row))
    failed = _quarantine_columns(
        quarantine_records(flagged.filter(is_data & ~passed), rule_context, allowed), spec, landed, row
    )
    sinks = [
        valid.sink_parquet(staged_file.local_path, lazy=True, compression=COMPRESSION),
        failed.sink_parquet(quarantine_file.local_path, lazy=True, compression=COMPRESSION),
    ]
    if has_footer_zone:
        sinks.append(flagged.filter(~is_data).sink_parquet(footer_path, lazy=True))
    written = [staged_file.local_path, quarantine_file.local_path]
    try:
        with context.progress.working(landed.source_name):
            pl.collect_all(sinks, engine="streaming")
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise
    footer = (
        pl.read_parquet(footer_path) if has_footer_zone else pl.DataFrame(schema=flagged.collect_schema())
    )
    footer_data = footer.filter(passed)
    counts.skip("footer", footer.height - footer_data.height)
    quarantine_files = [quarantine_file]
    if footer_data.height:
        extra = new_data_file(storage, "quarantine", partition)
        quarantined = quarantine_records(
            footer_data.with_columns(pl.lit(FOOTER_IS_DATA).alias(RULE_COLUMN)), rule_context, allowed
        ).with_columns(_footer_message(spec).alias("message"))
        _quarantine_columns(quarantined.lazy(), spec, landed, row).collect().write_parquet(
            extra.local_path, compression=COMPRESSION
        )
        quarantine_files.append(extra)
    loaded = pq_rows(staged_file.local_path)
    quarantined_rows = sum(pq_rows(f.local_path) for f in quarantine_files)
    counts.loaded, counts.quarantined, counts.read = loaded, quarantined_rows, loaded + quarantined_rows
    context.progress.records(landed.source_name, counts.read)
    commit_data_files(storage, staging_table, partition, [staged_file], replace=True)
    crash_point("after_staging")
    commit_data_files(storage, "quarantine", partition, quarantine_files, replace=True)
    crash_point("after_quarantine")
    return counts, list(result.notes)


def _record_drift(
    context: IngestContext, spec: FeedSpec, landed: LandedFile, row: LoadRow, result: ReadResult
) -> None:
    """Put the file's header and its drift on the load's row (against the spec and the header of the
    feed's previous load); a missing column the load needs refuses the file (ValueError)."""
    if not has_named_header(spec.format):
        return
    header = source_header(result.records)
    previous = previous_header(context.storage, spec.id, landed.received_at)
    baseline = header_from_json(previous[2]) if previous else None
    name = f"the header of {printable(previous[1])} (load {previous[0]})" if previous else ""
    drift = detect_drift(header, spec, baseline, baseline_name=name)
    row.source_columns = header_json(header)
    row.schema_drift = drift.summary()
    if refusal := drift.refusal():
        raise ValueError(refusal)


def _staging_columns(
    flagged: pl.LazyFrame, spec: FeedSpec, landed: LandedFile, row: LoadRow
) -> list[pl.Expr]:
    table = f"staging_{spec.dataset}"
    lineage = {
        "feed_id": pl.lit(spec.id),
        "period_start": pl.lit(row.period_start, dtype=pl.Date),
        "source_file": pl.lit(landed.source_file),
        "received_at": pl.lit(landed.received_at).cast(TIMESTAMP),
        "ingested_at": pl.lit(row.started_at).cast(TIMESTAMP),
    }
    available = set(flagged.collect_schema().names())
    types = TABLE_COLUMNS[table]
    return [
        (lineage[name] if name in lineage else (pl.col(name) if name in available else pl.lit(None)))
        .cast(types[name])
        .alias(name)
        for name in data_columns(table)
    ]


def _quarantine_columns(
    quarantined: pl.LazyFrame, spec: FeedSpec, landed: LandedFile, row: LoadRow
) -> pl.LazyFrame:
    lineage = {
        "feed_id": pl.lit(spec.id),
        "source_file": pl.lit(landed.source_file),
        "ingested_at": pl.lit(row.started_at).cast(TIMESTAMP),
    }
    types = TABLE_COLUMNS["quarantine"]
    return quarantined.select(
        [
            (lineage[name] if name in lineage else pl.col(name)).cast(types[name]).alias(name)
            for name in data_columns("quarantine")
        ]
    )


def _footer_message(spec: FeedSpec) -> pl.Expr:
    footer_rows = getattr(spec.format, "footer_rows", 0)
    return pl.format(
        "row {} is within the last {} row(s) that footer_rows skips, but it reads as a valid record, so it "
        "was kept here rather than dropped; lower the feed spec's footer_rows, or remove the row from the file",
        pl.col("source_row"),
        pl.lit(footer_rows),
    )


def quarantine_rate_warning(row: LoadRow, threshold: float) -> str | None:
    """A warning on the load itself when more of its records than `threshold` were quarantined, so
    every channel (CLI, sensor, pull) and every reader of `loads` sees it, not only a Dagster check."""
    if not row.rows_read or row.rows_quarantined / row.rows_read <= threshold:
        return None
    share = row.rows_quarantined / row.rows_read
    return (
        f"quarantined {row.rows_quarantined} of {row.rows_read} records ({share:.1%}), over the "
        f"{threshold:.0%} threshold (settings quarantine_rate_warn): see "
        f"`throughline query \"select source_row, rule, message from quarantine where load_id = '{row.load_id}'\"`"
    )


def quarantine_sources(spec: FeedSpec) -> set[str]:
    """Source columns quarantine may show: the mapped ones plus those the spec allows explicitly."""
    return {*spec.columns.values(), *getattr(spec, "quarantine_fields", [])}


def _is_polars_parse_error(error: BaseException) -> bool:
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, POLARS_READ_ERRORS):
            return True
        seen = seen.__cause__ or seen.__context__
    return False
