"""Erasing one end customer (`throughline forget`): their identifying values out of landing, and their
`end_customer_key` out of staging, core, quarantine and every older version of those tables.

An erasure request names the customer as a person would: a name, an e-mail, a phone number, an
address (each compared the way `end_customer_key` compares them: case and runs of white space do
not matter), or an `end_customer_key` an analyst found. A record *names the customer* when one of
its identity fields equals one of the values given, or its key is one given. The steps, each one
idempotent (the same request run again finishes an interrupted erasure):

1. Find: every landed file whose feed spec reports end customers is read with the load's own chain
   (reader, normalization, validation); the records naming the customer are *matched*.
2. Plan each such file's redacted copy (`transforms.redact`): the matched records' identity values
   are blanked where the file writes them, and the copy is read back. It must give the same
   records, lines, skipped rows, values and validation results, except the matched records'
   identity (now not reported) and their unmapped columns that held one of those values (a
   delivery address, say). If any file's copy would differ otherwise, nothing is changed at all.
3. Erase the customer's keys from staging and core: those of the matched records, those given,
   and those the request spells out in full for a spec (rows of files landing no longer holds).
4. Land each copy, record it in `landing_changes`, point the ledger at it, delete the original.
5. Re-run those files' loads from their copies (same load ids, lines and counts) and bring core up
   to date; each load must end with the status and counts it had.
6. Remove the older versions of the rewritten tables (`warehouse.retention.forget_history`).

What stays elsewhere (an inbox or rejected file holding a value, a place in a landed file that is
not one of the matched records' fields) is reported, never guessed at.
"""

from __future__ import annotations

import itertools
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from ingest.complete import complete_core
from ingest.context import IngestContext, KeyMismatchError, key_matches_warehouse
from ingest.route import printable, route
from ingest.run import load_one, prepare
from schemas.feed_spec import END_CUSTOMER_IDENTITY_FIELDS, FeedSpec
from schemas.rules import RuleContext, raw
from transforms.normalize import SOURCE_PREFIX, end_customer_key, normalize_records, reports_end_customers
from transforms.readers import POLARS_READ_ERRORS, UnreadableFileError, read_records
from transforms.redact import Spot, find_spots, open_raw, write_redacted
from transforms.validate import flag_failures
from warehouse.catalog import ensure_catalog
from warehouse.faults import crash_point
from warehouse.ledger import LandedFile, find_landed, landed_files_of
from warehouse.retention import (
    REDACTED,
    LandingChange,
    erase_keys,
    forget_history,
    landing_copies,
    live_addresses,
    read_changes,
    record_changes,
    remove_landed,
    repoint_landed,
)
from warehouse.tables import distributor_lock, scan_table

KEYED_TABLES = ("staging_sellout", "sellout")
"""The tables holding `end_customer_key`."""
HISTORY_TABLES = ("staging_sellout", "sellout", "quarantine")
"""The tables an erasure rewrites, whose older versions it removes."""
RERUN_STATUSES = ("loaded", "superseded", "staged", "held")
"""Loads whose rows are in staging: re-run from the redacted copy. A rejected load has no rows."""
MAX_TRIALS = 200
"""Read-backs one file may take to sort the places of a value that is also written elsewhere."""
MAX_DERIVED_KEYS = 64
READ_FAILURES = (UnreadableFileError, ValueError, OSError, *POLARS_READ_ERRORS)
"""What reading a landed file (or a candidate copy) with its spec may fail with."""
SCANNED_FOLDERS = ("inbox", "rejected", "work", "landing")
SCRATCH_PREFIX = "forget-"
"""The scratch folders of an erasure under the home's work folder (copies read back, decoded files)."""
LEFTOVER_CODECS = ("utf-8", "cp1252", "utf-16-le")


class ErasureError(ValueError):
    """The erasure cannot be done as asked; nothing was changed. The message says why and what to do."""


@dataclass(frozen=True)
class ErasureRequest:
    """Who to forget: values as an erasure request names them (any may be repeated), or keys."""

    names: tuple[str, ...] = ()
    emails: tuple[str, ...] = ()
    phones: tuple[str, ...] = ()
    addresses: tuple[str, ...] = ()
    keys: tuple[str, ...] = ()
    reference: str | None = None
    """The operator's reference of the request (a ticket number): kept in `landing_changes`."""

    def given(self) -> dict[str, tuple[str, ...]]:
        """Values per identity field, in END_CUSTOMER_IDENTITY_FIELDS order, blanks left out."""
        named = dict(
            zip(
                END_CUSTOMER_IDENTITY_FIELDS,
                (self.names, self.emails, self.phones, self.addresses),
                strict=True,
            )
        )
        return {name: tuple(v for v in values if v.strip()) for name, values in named.items()}

    def is_empty(self) -> bool:
        return not any(self.given().values()) and not any(k.strip() for k in self.keys)

    def values(self) -> list[str]:
        return [value for values in self.given().values() for value in values]

    def matches(self, columns: list[str]) -> pl.Expr:
        """True for a normalized record naming the customer (`columns`: the record's columns)."""
        terms = [
            _comparable(pl.col(raw(name))).is_in([_comparable_text(v) for v in values])
            for name, values in self.given().items()
            if values and raw(name) in columns
        ]
        if self.keys and "end_customer_key" in columns:
            terms.append(pl.col("end_customer_key").is_in([k.strip().lower() for k in self.keys]))
        return pl.any_horizontal(terms).fill_null(False) if terms else pl.lit(False)

    def derived_keys(self, spec: FeedSpec, secret: str) -> set[str]:
        """The keys this spec's files give the customer, when the request names every identity field
        the spec reports (the way to reach rows whose landed file is gone)."""
        reported = [n for n in END_CUSTOMER_IDENTITY_FIELDS if n in spec.columns or n in spec.constants]
        given = self.given()
        if not reported or any(not given[name] and name not in spec.constants for name in reported):
            return set()
        choices = [
            given[name] or (str(spec.constants[name]),) if name in reported else (None,)
            for name in END_CUSTOMER_IDENTITY_FIELDS
        ]
        combos = list(itertools.islice(itertools.product(*choices), MAX_DERIVED_KEYS))
        frame = pl.DataFrame(
            [
                dict(zip([raw(n) for n in END_CUSTOMER_IDENTITY_FIELDS], combo, strict=True))
                for combo in combos
            ],
            schema={raw(n): pl.String for n in END_CUSTOMER_IDENTITY_FIELDS},
            orient="row",
        ).with_columns(pl.all().str.strip_chars().replace("", None))
        return set(frame.select(end_customer_key(secret)).to_series().drop_nulls())


def _comparable(expr: pl.Expr) -> pl.Expr:
    return expr.str.to_lowercase().str.replace_all(r"\s+", " ").str.strip_chars()


def _comparable_text(text: str) -> str:
    return " ".join(text.lower().split())


@dataclass
class FileErasure:
    """What erasing the customer does to one landed file."""

    landed: LandedFile
    dataset: str | None
    records: int
    keys: set[str]
    values: set[str] = field(default_factory=set, repr=False)
    """The matched records' identity values (what is blanked): never stored or printed."""
    copy: bytes | None = None
    kept: int = 0
    """Places writing one of the values that are not a matched record's field: left as they are."""
    problem: str | None = None
    status: str = "planned"


@dataclass
class Erasure:
    """What one erasure found and did."""

    files: list[FileErasure] = field(default_factory=list)
    keys: set[str] = field(default_factory=set)
    rows_unkeyed: int = 0
    """Rows of staging and core whose key was erased in place (files landing no longer holds too)."""
    reloaded: list[str] = field(default_factory=list)
    history_files_removed: dict[str, int] = field(default_factory=dict)
    leftovers: list[str] = field(default_factory=list)
    """Files under the home still holding one of the values (relative paths), for a person to handle."""
    problems: list[str] = field(default_factory=list)

    @property
    def records(self) -> int:
        return sum(f.records for f in self.files)


@dataclass(frozen=True)
class _Reading:
    frame: pl.DataFrame
    skipped: dict[str, int]
    notes: list[str]


def forget_customer(context: IngestContext, request: ErasureRequest, *, dry_run: bool = False) -> Erasure:
    """Erase the customer `request` names (see the module docstring); with `dry_run`, only say what
    would be erased. A file whose copy cannot be proven right is left as it is and listed in
    `problems`; the others are erased."""
    if request.is_empty():
        raise ErasureError("name the customer: give at least one name, e-mail, phone, address or key")
    if key_matches_warehouse(context.storage, context.customer_key) is False:
        raise KeyMismatchError(
            "the end-customer key is not the one this warehouse was built with: its keys would not "
            "match the stored ones. Set THROUGHLINE_CUSTOMER_KEY_SECRET to the warehouse's key."
        )
    erasure = Erasure()
    if not dry_run:
        _remove_interrupted_scratch(context)
    with _scratch(context) as scratch:
        if not dry_run:
            prepare(context)
            erasure.reloaded += finish_redactions(context)
        erasure.files = plan_erasure(context, request, scratch)
        for refused in (f for f in erasure.files if f.problem):
            refused.status = "refused"
            erasure.problems.append(
                f"{printable(refused.landed.source_name)} ({refused.landed.distributor_id}) was left as it "
                f'is: {refused.problem}. Remove it from landing by hand (`throughline query "select '
                f"source_file from loads where load_id = '{refused.landed.load_id}'\"` says where it is)"
            )
        erasure.keys = _keys_to_erase(context, request, erasure.files)
        values = _erased_values(request, erasure.files)
        if dry_run:
            erasure.leftovers = _leftovers(context, values, skip={scratch, *_planned_paths(context, erasure)})
            return erasure
        erasure.rows_unkeyed = _erase_keys(context, erasure.keys)
        crash_point("forget_after_keys")
        redactable = [f for f in erasure.files if f.copy is not None]
        for planned in redactable:
            _replace_landed(context, planned, request.reference, scratch)
            crash_point("forget_after_copy")
        erasure.reloaded += _rerun(context, [f.landed for f in redactable], erasure.problems)
        remaining = _rows_with_keys(context, erasure.keys)
        if remaining:
            erasure.problems.append(f"{remaining} row(s) still hold the customer's key after the erasure")
        crash_point("forget_before_history")
        # Also when this run changed nothing: an interrupted erasure may have left old versions.
        if redactable or erasure.rows_unkeyed or erasure.reloaded or _any_redaction(context):
            erasure.history_files_removed = {
                table: forget_history(context.storage, table, context.lock_dir) for table in HISTORY_TABLES
            }
            crash_point("forget_after_history")
            ensure_catalog(context.storage, context.settings.catalog_path)
        erasure.leftovers = _leftovers(context, values, skip={scratch})
    return erasure


def plan_erasure(context: IngestContext, request: ErasureRequest, scratch: Path) -> list[FileErasure]:
    """Every landed file naming the customer, with its redacted copy (or the reason there is none).

    A landed file its spec cannot read (its load was rejected) is not searched here; the scan of
    the raw folders reports it when it holds one of the values."""
    planned = []
    for landed in landed_files_of(context.storage):
        spec = route(context.catalog, landed.distributor_id, landed.source_name, landed.received_at).spec
        path = context.storage.local_path(landed.source_file)
        if spec is None or not reports_end_customers(spec) or not path.is_file():
            continue
        try:
            erasure = _plan_file(context, request, landed, spec, path, scratch)
        except READ_FAILURES:
            continue
        if erasure is not None:
            planned.append(erasure)
    return planned


def _plan_file(
    context: IngestContext,
    request: ErasureRequest,
    landed: LandedFile,
    spec: FeedSpec,
    path: Path,
    scratch: Path,
) -> FileErasure | None:
    before = _read(context, spec, path, scratch)
    matched = before.frame.select(request.matches(before.frame.columns)).to_series()
    if not matched.any():
        return None
    chosen = before.frame.filter(matched)
    keys = set(chosen["end_customer_key"].drop_nulls()) if "end_customer_key" in chosen.columns else set()
    values = {
        value
        for name in END_CUSTOMER_IDENTITY_FIELDS
        if name in spec.columns
        for value in chosen[raw(name)].drop_nulls()
    }
    erasure = FileErasure(landed, spec.dataset, int(matched.sum()), keys, values)
    raw_file = open_raw(path, spec.format)
    spots = find_spots(raw_file, values, spec.format)
    suffix = Path(landed.source_file).suffix

    def attempt(candidate: list[Spot]) -> tuple[str | None, bool]:
        copy = scratch / f"candidate{suffix}"
        copy.write_bytes(write_redacted(raw_file, candidate))
        try:
            after = _read(context, spec, copy, scratch)
        except READ_FAILURES as error:
            return f"the redacted copy cannot be read ({(str(error).splitlines() or [''])[0]})", False
        return _compare(before, after, matched, spec, values)

    accepted, problem = _choose(spots, attempt)
    if problem:
        erasure.problem = problem
        return erasure
    erasure.copy = write_redacted(raw_file, accepted)
    erasure.kept = len(spots) - len(accepted)
    return erasure


def _choose(spots: list[Spot], attempt) -> tuple[list[Spot], str | None]:
    """The spots to blank: all of them when that reads back right; else, value by value and then one
    by one, those whose blanking changes nothing but the matched records' own fields."""
    problem, complete = attempt(spots)
    if problem is None:
        return (spots, None) if complete else ([], _INCOMPLETE)
    accepted: list[Spot] = []
    trials = 1
    for _, group in itertools.groupby(sorted(spots, key=lambda s: s.value), key=lambda s: s.value):
        group = list(group)
        trials += 1
        if attempt(accepted + group)[0] is None:
            accepted += group
            continue
        for spot in group:
            trials += 1
            if trials > MAX_TRIALS:
                return (
                    [],
                    f"its values are written in more than {MAX_TRIALS} places that could not be told apart",
                )
            if attempt([*accepted, spot])[0] is None:
                accepted.append(spot)
    problem, complete = attempt(accepted)
    if problem:
        return [], problem
    return (accepted, None) if complete else ([], _INCOMPLETE)


_INCOMPLETE = (
    "some of the customer's values are written in a form forget cannot find (split across cells or "
    "elements, or escaped in an unusual way)"
)


def _compare(
    before: _Reading, after: _Reading, matched: pl.Series, spec: FeedSpec, values: set[str]
) -> tuple[str | None, bool]:
    """(what the copy changes that it must not, or None; whether every matched identity is now empty)."""
    old, new = before.frame, after.frame
    if new.height != old.height:
        return f"the copy reads as {new.height} records instead of {old.height}", False
    if new.columns != old.columns:
        return "the copy reads with other columns", False
    if after.skipped != before.skipped or after.notes != before.notes:
        return "the copy's skipped lines or reader notes differ", False
    identity = {raw(name) for name in END_CUSTOMER_IDENTITY_FIELDS}
    identity |= {
        f"{SOURCE_PREFIX}{spec.columns[name]}"
        for name in END_CUSTOMER_IDENTITY_FIELDS
        if name in spec.columns
    }
    identity.add("end_customer_key")
    erased = [_comparable_text(v) for v in values]
    for column in old.columns:
        changed = ~old[column].eq_missing(new[column])
        if not changed.any():
            continue
        if (changed & ~matched).any():
            return f"it would change {column} of a record that does not name the customer", False
        if column in identity:
            continue
        if column.startswith(SOURCE_PREFIX):
            was = old[column].filter(changed).cast(pl.String)
            now = new[column].filter(changed).cast(pl.String)
            was_value = _comparable_series(was).is_in(erased).all()
            now_blank = (now.is_null() | (now.str.strip_chars() == "")).all()
            if was_value and now_blank:
                continue
        return f"it would change {column} of a record naming the customer", False
    chosen = new.filter(matched)
    complete = all(
        chosen[raw(name)].null_count() == chosen.height
        for name in END_CUSTOMER_IDENTITY_FIELDS
        if raw(name) in chosen.columns
    )
    return None, complete


def _comparable_series(series: pl.Series) -> pl.Series:
    return series.str.to_lowercase().str.replace_all(r"\s+", " ").str.strip_chars()


def _read(context: IngestContext, spec: FeedSpec, path: Path, scratch: Path) -> _Reading:
    """What a load reads from `path`: every record normalized and flagged, the skipped lines, the notes."""
    rules = RuleContext(
        spec=spec, as_of=datetime.now(UTC).date(), max_field_chars=context.settings.max_field_chars
    )
    work = Path(tempfile.mkdtemp(prefix="read-", dir=scratch))
    try:
        for tolerant in (False, True):
            try:
                result = read_records(
                    path, spec.format, work, tolerant=tolerant, limits=context.settings.limits
                )
                normalized = normalize_records(result.records, spec, customer_key_secret=context.secret)
                frame = flag_failures(normalized, rules).collect()
                return _Reading(frame, dict(result.skipped), list(result.notes))
            except POLARS_READ_ERRORS:
                if tolerant or spec.format.type != "csv":
                    raise
        raise AssertionError("unreachable")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _keys_to_erase(context: IngestContext, request: ErasureRequest, files: list[FileErasure]) -> set[str]:
    keys = {key for f in files for key in f.keys} | {k.strip().lower() for k in request.keys if k.strip()}
    for spec in context.catalog.specs.values():
        if spec.dataset == "sellout":
            keys |= request.derived_keys(spec, context.secret)
    return keys


def _erase_keys(context: IngestContext, keys: set[str]) -> int:
    """Null the customer's keys in staging and core, per distributor under its lock."""
    if not keys:
        return 0
    wanted = sorted(keys)
    distributors: set[str] = set()
    for table in KEYED_TABLES:
        if context.storage.table_exists(table):
            found = (
                scan_table(context.storage, table)
                .filter(pl.col("end_customer_key").is_in(wanted))
                .select("distributor_id")
                .unique()
                .collect()
            )
            distributors |= set(found["distributor_id"])
    erased = 0
    for distributor_id in sorted(distributors):
        with distributor_lock(context.lock_dir, distributor_id):
            for table in KEYED_TABLES:
                erased += erase_keys(context.storage, table, distributor_id, wanted)
    return erased


def _any_redaction(context: IngestContext) -> bool:
    return not read_changes(context.storage).filter(pl.col("action") == REDACTED).is_empty()


def _rows_with_keys(context: IngestContext, keys: set[str]) -> int:
    if not keys:
        return 0
    return sum(
        scan_table(context.storage, table)
        .filter(pl.col("end_customer_key").is_in(sorted(keys)))
        .select(pl.len())
        .collect()
        .item()
        for table in KEYED_TABLES
        if context.storage.table_exists(table)
    )


def _replace_landed(
    context: IngestContext, planned: FileErasure, reference: str | None, scratch: Path
) -> None:
    """Land the copy, record the change, point the ledger at the copy, delete the original bytes."""
    assert planned.copy is not None
    landed = planned.landed
    staged = scratch / f"redacted{Path(landed.source_file).suffix}"
    staged.write_bytes(planned.copy)
    copy = context.storage.land(staged)
    record_changes(
        context.storage,
        [
            LandingChange(
                distributor_id=landed.distributor_id,
                sha256=landed.sha256,
                action=REDACTED,
                source_file=landed.source_file,
                replaced_by=copy.source_file,
                bytes_before=landed.bytes,
                bytes_after=copy.size,
                records_changed=planned.records,
                reason=reference or "erasure request",
                changed_at=datetime.now(UTC),
            )
        ],
    )
    crash_point("forget_after_change_recorded")
    with distributor_lock(context.lock_dir, landed.distributor_id):
        repoint_landed(context.storage, landed.distributor_id, landed.sha256, copy.source_file)
    crash_point("forget_after_repoint")
    _remove_unreferenced(
        context,
        [landed.source_file, *landing_copies(context.storage, landed.sha256)],
    )
    planned.landed = replace(landed, source_file=copy.source_file)
    planned.status = "redacted"


def _remove_unreferenced(context: IngestContext, addresses: list[str]) -> None:
    live = live_addresses(context.storage)
    for address in dict.fromkeys(addresses):
        if address not in live:
            remove_landed(context.storage, address)


def finish_redactions(context: IngestContext) -> list[str]:
    """Complete every redaction an interrupted erasure left: the ledger pointed at the copy, the
    original bytes deleted, and the loads whose rows still name the original re-run. Returns the
    load ids re-run."""
    changes = read_changes(context.storage).filter(pl.col("action") == REDACTED)
    if changes.is_empty():
        return []
    originals = set(changes["source_file"])
    for row in changes.iter_rows(named=True):
        landed = find_landed(context.storage, row["distributor_id"], row["sha256"])
        if landed is not None and landed.source_file == row["source_file"]:
            with distributor_lock(context.lock_dir, row["distributor_id"]):
                repoint_landed(context.storage, row["distributor_id"], row["sha256"], row["replaced_by"])
        _remove_unreferenced(
            context,
            [row["source_file"], *landing_copies(context.storage, row["sha256"])],
        )
    stale: set[str] = set()
    # Core too: a load killed between its staging rows and its ledger row still counts as finished,
    # so core keeps its rows naming the original until the load is re-run.
    for table in ("staging_sellout", "staging_inventory", "quarantine", "sellout", "inventory"):
        if context.storage.table_exists(table):
            found = (
                scan_table(context.storage, table)
                .filter(pl.col("source_file").is_in(sorted(originals)))
                .select("load_id")
                .unique()
                .collect()
            )
            stale |= set(found["load_id"])
    if not stale:
        # Loads re-run from their copies before the erasure was killed, but not yet brought into core.
        complete_core(context)
        return []
    pending = [landed for landed in landed_files_of(context.storage) if landed.load_id in stale]
    problems: list[str] = []
    reloaded = _rerun(context, pending, problems)
    if problems:
        raise ErasureError("; ".join(problems))
    return reloaded


def _rerun(context: IngestContext, landed_files: list[LandedFile], problems: list[str]) -> list[str]:
    """Re-run the loads of `landed_files` whose rows are in staging, and complete core; every load
    must end as it was (a confirmed restatement stays confirmed). Returns the load ids re-run."""
    ids = [landed.load_id for landed in landed_files]
    if not ids:
        return []
    counts = ["status", "rows_read", "rows_loaded", "rows_quarantined", "rows_skipped"]
    before = (
        scan_table(context.storage, "loads")
        .filter(pl.col("load_id").is_in(ids))
        .select("load_id", *counts)
        .collect()
    )
    rows = {row["load_id"]: row for row in before.iter_rows(named=True)}
    chosen = [
        landed for landed in landed_files if rows.get(landed.load_id, {}).get("status") in RERUN_STATUSES
    ]
    if not chosen:
        return []
    for landed in chosen:
        load_one(context, landed)  # a confirmed restatement keeps its confirmation (ingest.load)
    complete_core(context)
    ensure_catalog(context.storage, context.settings.catalog_path)
    after = (
        scan_table(context.storage, "loads")
        .filter(pl.col("load_id").is_in([landed.load_id for landed in chosen]))
        .select("load_id", *counts)
        .collect()
    )
    for row in after.iter_rows(named=True):
        was = rows[row["load_id"]]
        if was["status"] != "staged" and any(row[name] != was[name] for name in counts):
            problems.append(
                f"load {row['load_id']} re-ran as {row['status']} with {row['rows_loaded']} lines loaded "
                f"and {row['rows_quarantined']} quarantined (it was {was['status']}: {was['rows_loaded']} "
                f"and {was['rows_quarantined']})"
            )
    return [landed.load_id for landed in chosen]


def _erased_values(request: ErasureRequest, files: list[FileErasure]) -> list[str]:
    return sorted({*request.values(), *(v for f in files for v in f.values)}, key=len, reverse=True)


def _planned_paths(context: IngestContext, erasure: Erasure) -> list[Path]:
    return [context.storage.local_path(f.landed.source_file) for f in erasure.files if f.copy is not None]


def _leftovers(context: IngestContext, values: list[str], skip: set[Path]) -> list[str]:
    """Files under the home's raw folders still holding one of `values` (case ignored), relative paths;
    `skip`: files and folders not to look in."""
    needles = {
        text.encode(codec, errors="ignore")
        for value in values
        for text in {value.lower(), _comparable_text(value)}
        for codec in LEFTOVER_CODECS
        if len(value.strip()) >= 3
    }
    needles.discard(b"")
    found = []
    home = context.settings.home
    for folder in SCANNED_FOLDERS:
        root = home / folder
        if not root.is_dir():
            continue
        for path in sorted(root.rglob("*")):
            if any(path == place or place in path.parents for place in skip):
                continue
            if path.is_file() and not path.is_symlink() and _holds(path, needles):
                found.append(path.relative_to(home).as_posix())
    return found


def _holds(path: Path, needles: set[bytes]) -> bool:
    try:
        data = path.read_bytes().lower()
    except OSError:
        return False
    return any(needle.lower() in data for needle in needles)


def _remove_interrupted_scratch(context: IngestContext) -> None:
    """Delete the scratch folders an erasure killed midway left: they may hold a decoded copy of a file
    naming the customer (erasures run one at a time, while no load runs)."""
    if context.work_dir.is_dir():
        for folder in context.work_dir.glob(f"{SCRATCH_PREFIX}*"):
            shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def _scratch(context: IngestContext) -> Iterator[Path]:
    context.work_dir.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=SCRATCH_PREFIX, dir=context.work_dir))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
