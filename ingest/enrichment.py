"""The 360-degree model's use cases: keep the reference tables in step with the reference folder,
resolve every reported reseller, enrich the rows entering core, fix history when a person approves a
match or adds a mapping, and list what is still unresolved.

What belongs here: deciding *when* reference data is read, stored and applied. The matching,
mapping and conversion themselves are the `reference` package's pure functions; storing is
`warehouse`'s.

How the pieces fit:
- `refresh_reference` reads `$THROUGHLINE_HOME/reference/` (every problem of every file at once,
  naming file and row), stores each table whole (plus `distributors` from the feed specs), resolves
  every reseller seen so far again, and rewrites the core partitions whose rows no longer agree
  with the reference data. Only then does it record the folder's fingerprint, so a run stopped
  anywhere is completed by the next one. Bad reference data changes nothing: the tables stay as
  they were and the run goes on, with the problems reported.
- `resolve_new_resellers` resolves the resellers of a distributor's staged loads that were never
  seen before (alias, exact, normalized, fuzzy; see `reference.partners`) into `partner_aliases`.
- `enrichment` gives core updates the reference data to apply (`reference.enrich`).
- `append_reference_row` is what `throughline partners approve`, `skus map` and `rates add` do: one
  row added to the reference file, then `refresh_reference`, which rewrites only the load
  partitions holding the affected lines.
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from ingest.context import IngestContext
from reference import FILES, ReferenceDataError, load_reference, resolve_partners
from reference.enrich import Enrichment, stale_inventory_rows, stale_sellout_rows
from reference.partners import REPORTED_KEYS, RESULT_SCHEMA
from reference.schemas import TABLES
from schemas.feed_spec import SpecCatalog
from warehouse.core import refresh_partitions
from warehouse.faults import crash_point
from warehouse.reference_tables import REFERENCE_TABLES, read_reference_table, write_reference_table
from warehouse.tables import distributor_lock, scan_table

log = logging.getLogger(__name__)

REFERENCE_FINGERPRINT = "reference_fingerprint"
"""Warehouse metadata: the fingerprint of the reference data core was last brought in line with."""
REFERENCE_LOCK = "_reference"
RESOLUTION_TABLE = "partner_aliases"
APPROVALS_TABLE = "partner_alias_approvals"
"""The stored copy of `reference/partner_aliases.csv`: the matches people approved or corrected."""
DISTRIBUTORS_TABLE = "distributors"
STORED_TABLES = {
    "partners": "partners",
    "partners_history": "partners_history",
    "partner_sites": "partner_sites",
    "partner_aliases": APPROVALS_TABLE,
    "products": "products",
    "sku_map": "sku_map",
    "fx_rates": "fx_rates",
    "quotas": "quotas",
    "tiers": "tiers",
    "certifications": "certifications",
    "rebate_programs": "rebate_programs",
}
"""`ReferenceData` table -> the Delta table it is stored as."""
RESOLUTION_STORED = {**RESULT_SCHEMA, "resolved_at": pl.Datetime("us", "UTC")}


@dataclass
class ReferenceRefresh:
    """What `refresh_reference` did."""

    changed: bool = False
    problems: list[str] = field(default_factory=list)
    """The reference folder's problems (each naming file and row): nothing was applied."""
    tables_written: list[str] = field(default_factory=list)
    refreshed: dict[str, list[str]] = field(default_factory=dict)
    """`dataset/distributor_id` -> load partitions rewritten because their rows were out of date."""


def reference_fingerprint(context: IngestContext) -> str:
    """Identifies what core's reference columns depend on: the reference files' bytes, the base
    currency and the distributors of the feed specs."""
    digest = hashlib.sha256(f"base={context.settings.base_currency}\n".encode())
    digest.update(("distributors=" + ",".join(sorted(_distributor_ids(context.catalog))) + "\n").encode())
    for name in sorted(set(FILES.values())):
        path = context.settings.reference_dir / name
        digest.update(f"{name}:".encode())
        digest.update(hashlib.sha256(path.read_bytes()).hexdigest().encode() if path.is_file() else b"-")
        digest.update(b"\n")
    return digest.hexdigest()


def _distributor_ids(catalog: SpecCatalog) -> set[str]:
    return {spec.distributor_id for spec in catalog.specs.values()}


def distributors_frame(catalog: SpecCatalog) -> pl.DataFrame:
    """`distributors`, derived from the feed specs (the one place they are declared): one row per
    distributor, from its feeds in spec-id order."""
    rows: dict[str, dict[str, object]] = {}
    for spec_id in sorted(catalog.specs):
        spec = catalog.specs[spec_id]
        row = rows.setdefault(
            spec.distributor_id,
            {
                "distributor_id": spec.distributor_id,
                "name": spec.name,
                "country": spec.country,
                "currency": spec.currency,
                "cadence": spec.cadence,
                "feeds": [],
                "datasets": [],
            },
        )
        row["feeds"].append(spec.id)  # type: ignore[union-attr]
        if spec.dataset not in row["datasets"]:  # type: ignore[operator]
            row["datasets"].append(spec.dataset)  # type: ignore[union-attr]
    schema = {
        "distributor_id": pl.String,
        "name": pl.String,
        "country": pl.String,
        "currency": pl.String,
        "cadence": pl.String,
        "feeds": pl.List(pl.String),
        "datasets": pl.List(pl.String),
    }
    return (
        pl.DataFrame(list(rows.values()), schema=schema, orient="row")
        if rows
        else pl.DataFrame(schema=schema)
    )


def stored_table(context: IngestContext, name: str) -> pl.DataFrame:
    """A stored reference (or mart) table; a RuntimeError saying what to run when it was never written."""
    frame = read_reference_table(context.storage, name)
    if frame is None:
        raise RuntimeError(f"reference table {name!r} is missing: run `throughline ingest` or `demo` first")
    return frame


def _empty_resolution() -> pl.DataFrame:
    return pl.DataFrame(schema=RESOLUTION_STORED)


def _resolve(context: IngestContext, reported: pl.DataFrame) -> pl.DataFrame:
    """Resolve `reported` keys with the stored reference tables; stamped with the time."""
    names = pl.concat(
        [
            stored_table(context, "partners_history").select(
                "partner_id", "legal_name", "country", "postal_code"
            ),
            stored_table(context, "partner_sites").select(
                "partner_id", "legal_name", "country", "postal_code"
            ),
        ]
    ).unique(maintain_order=True)
    approvals = stored_table(context, APPROVALS_TABLE)
    resolved = resolve_partners(reported, names, approvals if approvals.height else None)
    return resolved.with_columns(
        pl.lit(datetime.now(UTC)).cast(RESOLUTION_STORED["resolved_at"]).alias("resolved_at")
    )


def refresh_reference(context: IngestContext, *, force: bool = False) -> ReferenceRefresh:
    """Bring the reference tables, the resolution and core's reference columns in line with the
    reference folder (nothing to do when its fingerprint is the one applied last, unless `force`)."""
    storage = context.storage
    report = ReferenceRefresh()
    fingerprint = reference_fingerprint(context)
    if not force and storage.read_meta(REFERENCE_FINGERPRINT) == fingerprint:
        return report
    with distributor_lock(context.lock_dir, REFERENCE_LOCK):
        if not force and storage.read_meta(REFERENCE_FINGERPRINT) == fingerprint:
            return report  # another run applied it while this one waited
        try:
            data = load_reference(
                context.settings.reference_dir,
                base_currency=context.settings.base_currency,
                distributor_ids=_distributor_ids(context.catalog),
            )
        except ReferenceDataError as error:
            report.problems = [str(problem) for problem in error.problems]
            _ensure_empty_tables(context)
            return report
        report.changed = True
        tables = data.tables()
        for table, stored in STORED_TABLES.items():
            if write_reference_table(storage, stored, tables[table]):
                report.tables_written.append(stored)
                crash_point("reference_after_first_table")
        if write_reference_table(storage, DISTRIBUTORS_TABLE, distributors_frame(context.catalog)):
            report.tables_written.append(DISTRIBUTORS_TABLE)
        crash_point("reference_after_tables")
        known = read_reference_table(storage, RESOLUTION_TABLE)
        if known is not None and known.height:
            resolved = _resolve(context, known.select(REPORTED_KEYS))
            previous = known.select(*REPORTED_KEYS, "resolved_at")
            # A reseller whose resolution did not change keeps the time it was first resolved.
            resolved = resolved.drop("resolved_at").join(
                previous, on=list(REPORTED_KEYS), how="left", nulls_equal=True, maintain_order="left"
            )
            unchanged = resolved.drop("resolved_at").equals(known.drop("resolved_at"))
            if not unchanged:
                write_reference_table(storage, RESOLUTION_TABLE, _stamp_new(resolved))
                report.tables_written.append(RESOLUTION_TABLE)
        elif known is None:
            write_reference_table(storage, RESOLUTION_TABLE, _empty_resolution())
        crash_point("reference_after_resolution")
    report.refreshed = reconcile_core(context)
    crash_point("reference_before_fingerprint")
    storage.write_meta(REFERENCE_FINGERPRINT, fingerprint)
    return report


def _stamp_new(resolved: pl.DataFrame) -> pl.DataFrame:
    now = pl.lit(datetime.now(UTC)).cast(RESOLUTION_STORED["resolved_at"])
    return resolved.with_columns(pl.col("resolved_at").fill_null(now)).select(list(RESOLUTION_STORED))


def _ensure_empty_tables(context: IngestContext) -> None:
    """Create every reference table, empty, that was never written (so views and joins work)."""
    storage = context.storage
    if all(storage.table_exists(name) for name in REFERENCE_TABLES):
        return
    empty = load_reference(
        context.settings.reference_dir / ".none", base_currency=context.settings.base_currency
    )
    tables = empty.tables()
    for table, stored in STORED_TABLES.items():
        if not storage.table_exists(stored):
            write_reference_table(storage, stored, tables[table])
    if not storage.table_exists(DISTRIBUTORS_TABLE):
        write_reference_table(storage, DISTRIBUTORS_TABLE, distributors_frame(context.catalog))
    if not storage.table_exists(RESOLUTION_TABLE):
        write_reference_table(storage, RESOLUTION_TABLE, _empty_resolution())


def resolve_new_resellers(context: IngestContext, distributor_id: str, load_ids: list[str]) -> int:
    """Resolve the resellers of `load_ids` (staged sell-out loads of the distributor) never seen
    before, into `partner_aliases`; returns how many were new."""
    if not load_ids or not context.storage.table_exists("staging_sellout"):
        return 0
    reported = (
        scan_table(context.storage, "staging_sellout")
        .filter((pl.col("distributor_id") == distributor_id) & pl.col("load_id").is_in(load_ids))
        .select(REPORTED_KEYS)
        .unique()
        .collect()
    )
    with distributor_lock(context.lock_dir, REFERENCE_LOCK):
        known = read_reference_table(context.storage, RESOLUTION_TABLE)
        if known is None:
            known = _empty_resolution()
        new = reported.join(known.select(REPORTED_KEYS), on=list(REPORTED_KEYS), how="anti", nulls_equal=True)
        if new.is_empty():
            return 0
        resolved = _resolve(context, new.sort(list(REPORTED_KEYS), nulls_last=True))
        write_reference_table(
            context.storage, RESOLUTION_TABLE, pl.concat([known, resolved.select(list(RESOLUTION_STORED))])
        )
    return new.height


def enrichment(context: IngestContext) -> Enrichment:
    """The stored reference data core updates apply."""
    resolution = stored_table(context, RESOLUTION_TABLE)
    return Enrichment(
        base_currency=context.settings.base_currency,
        resolution=resolution.select(*REPORTED_KEYS, "partner_id"),
        sku_map=stored_table(context, "sku_map").select(
            "distributor_id", "distributor_sku", "sku", "units_per_distributor_unit"
        ),
        fx_rates=stored_table(context, "fx_rates").select("rate_date", "currency", "rate_to_base"),
    )


def reconcile_core(context: IngestContext) -> dict[str, list[str]]:
    """Rewrite the core partitions holding rows out of date with the stored reference data (only
    those); returns `dataset/distributor_id` -> load partitions rewritten."""
    storage = context.storage
    enrich = enrichment(context)
    refreshed: dict[str, list[str]] = {}
    for dataset, stale_rows in (("sellout", stale_sellout_rows), ("inventory", stale_inventory_rows)):
        if not storage.table_exists(dataset):
            continue
        stale = (
            stale_rows(scan_table(storage, dataset), enrich)
            .join(scan_table(storage, dataset).select("load_id", "distributor_id").unique(), on="load_id")
            .select("distributor_id", "load_id")
            .unique()
            .collect()
        )
        for (distributor_id,), group in stale.group_by(["distributor_id"], maintain_order=True):
            load_ids = sorted(group["load_id"].to_list())
            refresh_partitions(
                storage, dataset, str(distributor_id), load_ids, enrich.apply, context.lock_dir
            )
            refreshed[f"{dataset}/{distributor_id}"] = load_ids
            crash_point("reference_after_first_partition")
            context.progress.message(
                f"{dataset} of {distributor_id}: {len(load_ids)} load(s) brought in line with the reference data"
            )
    return refreshed


# --------------------------------------------------------------------------------------------------
# Fixes a person makes: one row added to a reference file, then applied to history.

FIXABLE_TABLES = ("partner_aliases", "sku_map", "fx_rates")
"""The reference files a person's fix adds a row to (`append_reference_row`)."""


def _file_columns(table: str) -> list[str]:
    """Every column the reference file of `table` may have, in order."""
    return [column.name for column in next(t for t in TABLES if t.name == table).columns]


class ReferenceFixError(ValueError):
    """A fix that cannot be applied; the message says why and what to do."""


def append_reference_row(context: IngestContext, table: str, row: dict[str, str]) -> ReferenceRefresh:
    """Add `row` to the reference file of `table` and apply it to history.

    The file is checked with the row added before anything is written, so a fix naming an unknown
    partner or SKU is refused with the reference data's own message and the file stays as it was.
    """
    if table not in FIXABLE_TABLES:
        raise ReferenceFixError(f"no fix adds rows to {table!r}; edit {FILES[table]} by hand")
    header = _file_columns(table)
    path = context.settings.reference_dir / FILES[table]
    existing = path.read_text(encoding="utf-8") if path.is_file() else ""
    if existing and not existing.endswith("\n"):
        existing += "\n"
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    if not existing:
        writer.writerow(header)
    else:
        present = next(csv.reader(io.StringIO(existing)))
        if [name.strip() for name in present] != header[: len(present)]:
            raise ReferenceFixError(
                f"{path}: its header is {present}, expected {header}; add the row by hand, then run "
                "`throughline ingest` (or `throughline reference refresh`)"
            )
        header = header[: len(present)]
        added = [row.get(name, "") for name in header]
        if any(_same_row(line, added) for line in list(csv.reader(io.StringIO(existing)))[1:]):
            # An earlier run of this fix added the row and stopped before applying it (or the fix
            # was given twice): apply what is there rather than refuse a duplicate of the row.
            return refresh_reference(context)
    writer.writerow([row.get(name, "") for name in header])
    updated = existing + buffer.getvalue()
    staging = path.with_name(f".{path.name}.candidate")
    context.settings.reference_dir.mkdir(parents=True, exist_ok=True)
    staging.write_text(updated, encoding="utf-8")
    try:
        _check_with(context, path, staging)
        crash_point("approval_after_candidate")
        staging.replace(path)
    finally:
        staging.unlink(missing_ok=True)
    crash_point("approval_after_file")
    return refresh_reference(context)


def _same_row(line: list[str], added: list[str]) -> bool:
    """Whether a reference file's row (as read) is the row a fix adds, white space aside."""
    cells = [cell.strip() for cell in line] + [""] * (len(added) - len(line))
    return cells == [cell.strip() for cell in added]


def _check_with(context: IngestContext, path: Path, candidate: Path) -> None:
    """Validate the reference folder as it would be with `candidate` in place of `path`."""
    context.work_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=context.work_dir) as scratch:
        folder = Path(scratch)
        for name in set(FILES.values()):
            source = context.settings.reference_dir / name
            if source.is_file():
                shutil.copyfile(source, folder / name)
        shutil.copyfile(candidate, folder / path.name)
        try:
            load_reference(
                folder,
                base_currency=context.settings.base_currency,
                distributor_ids=_distributor_ids(context.catalog),
            )
        except ReferenceDataError as error:
            problems = "\n".join(f"  {p}" for p in error.problems)
            raise ReferenceFixError(
                f"not applied; with this row the reference data would have problems:\n{problems}"
            ) from None


def staged_sellout_loads(context: IngestContext, distributor_id: str) -> list[str]:
    """The distributor's sell-out loads whose rows are staged but not in core yet."""
    loads = (
        scan_table(context.storage, "loads")
        .filter(
            (pl.col("distributor_id") == distributor_id)
            & (pl.col("dataset") == "sellout")
            & (pl.col("status") == "staged")
        )
        .select("load_id")
        .collect()
    )
    return loads["load_id"].to_list()
