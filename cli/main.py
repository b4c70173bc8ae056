"""The `throughline` command line: parses arguments, calls the use cases, prints the results.

Results go to stdout (`--format csv` is RFC 4180 with a header row), progress and problems to
stderr, and every error exits non-zero with a message that says what to do. No command reads a
file format itself (that is `ingest`'s job) and reading commands never create anything.
THROUGHLINE_HOME sets the home folder (default ~/.throughline); see `schemas/settings.py`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import polars as pl

from cli.output import StderrProgress, err, write_frame
from schemas.feed_spec import FeedSpecError, load_spec_catalog
from schemas.settings import (
    DEFAULT_LANDING_RETENTION_DAYS,
    DEMO_KEY_FILE,
    HOME_ENV,
    LANDING_RETENTION_ENV,
    CustomerKeyError,
    SettingsError,
    ThroughlineSettings,
    resolve_customer_key,
)

FORMATS = ("table", "csv", "json")
EXIT_USER_ERROR = 2


class UserError(Exception):
    """A problem the user can fix; printed without a traceback, exit status 2."""


def _settings() -> ThroughlineSettings:
    return ThroughlineSettings.from_env()


def _existing_storage(settings: ThroughlineSettings):
    """The home's warehouse for reading; a UserError (and nothing created) when there is none yet."""
    from warehouse.storage import storage_for
    from warehouse.tables import warehouse_exists

    storage = storage_for(settings)
    if not warehouse_exists(storage):
        raise UserError(
            f"no warehouse in {settings.home} yet: load files first (`throughline ingest FILE ...`, or "
            f"`make run` for the sample data), or set {HOME_ENV} to the home you meant"
        )
    return storage


def _context(settings: ThroughlineSettings, args: argparse.Namespace):
    from ingest.context import IngestContext

    try:
        key = resolve_customer_key(settings)
    except CustomerKeyError as error:
        raise UserError(str(error)) from error
    settings.ensure_layout()
    return IngestContext.open(settings, key, StderrProgress(verbose=getattr(args, "verbose", False)))


def ensure_demo_key(settings: ThroughlineSettings) -> None:
    """The demo's end-customer key: a file in the demo home, used only when the environment has none."""
    import os
    import secrets

    from schemas.settings import CUSTOMER_KEY_SECRET_ENV

    if os.environ.get(CUSTOMER_KEY_SECRET_ENV):
        return
    key_file = settings.home / DEMO_KEY_FILE
    if not key_file.exists():
        key_file.parent.mkdir(parents=True, exist_ok=True)
        key_file.write_text(secrets.token_hex(32), encoding="utf-8")
        key_file.chmod(0o600)
        err(f"demo: created an end-customer key in {key_file} (production sets {CUSTOMER_KEY_SECRET_ENV})")


def _outcome_frame(report) -> pl.DataFrame:
    rows = [o.load for o in report.outcomes] + report.resumed
    return pl.DataFrame(
        [
            {
                "source_name": row.source_name,
                "distributor_id": row.distributor_id,
                "status": row.status,
                "rows_read": row.rows_read,
                "rows_loaded": row.rows_loaded,
                "rows_quarantined": row.rows_quarantined,
                "rows_skipped": row.rows_skipped,
                "error": row.error or row.warnings,
                "schema_drift": row.schema_drift,
            }
            for row in rows
        ],
        schema={
            "source_name": pl.String,
            "distributor_id": pl.String,
            "status": pl.String,
            "rows_read": pl.Int64,
            "rows_loaded": pl.Int64,
            "rows_quarantined": pl.Int64,
            "rows_skipped": pl.Int64,
            "error": pl.String,
            "schema_drift": pl.String,
        },
    )


def _run_ingest(
    settings: ThroughlineSettings, args: argparse.Namespace, paths: list[Path], distributor: str | None
):
    from ingest.plan import plan_paths
    from ingest.run import ingest_files, settle_inbox_files

    context = _context(settings, args)
    incoming, problems = plan_paths(context, paths, distributor)
    for problem in problems:
        err(problem)
    for path, error in context.catalog.errors.items():
        err(
            f"feed spec {path.name} is invalid; its distributor's files are rejected until it is fixed:\n{error}"
        )
    report = ingest_files(context, incoming, confirm=getattr(args, "confirm", False))
    settle_inbox_files(report, settings.rejected_dir)
    for hold in report.holds:
        err(f"{hold.source_name}: {hold.warning}")
    return report, problems


def summary(settings: ThroughlineSettings) -> pl.DataFrame:
    """Per distributor: files by outcome, and the lines each table holds now (what analysts see)."""
    from warehouse.tables import scan_table

    storage = _existing_storage(settings)
    loads = scan_table(storage, "loads")
    per_status = loads.group_by("distributor_id").agg(
        pl.len().alias("files"),
        *[
            (pl.col("status") == status).sum().alias(status)
            for status in ("loaded", "superseded", "duplicate", "rejected", "held")
        ],
        pl.col("rows_quarantined")
        .filter(pl.col("status").is_in(["loaded", "superseded"]))
        .sum()
        .alias("quarantined"),
    )
    lines = scan_table(storage, "sellout").group_by("distributor_id").agg(pl.len().alias("sellout_lines"))
    stock = scan_table(storage, "inventory").group_by("distributor_id").agg(pl.len().alias("inventory_rows"))
    return (
        per_status.join(lines, on="distributor_id", how="left")
        .join(stock, on="distributor_id", how="left")
        .with_columns(pl.col("sellout_lines", "inventory_rows").fill_null(0))
        .sort("distributor_id")
        .collect()
    )


def cmd_demo(args: argparse.Namespace) -> int:
    from connectors.folder import list_inbox
    from sampledata.demo import demo_sources
    from sampledata.generator import copy_feed_specs, generate_samples, report_weeks
    from sampledata.reference import write_sample_reference

    settings = _settings()
    settings.ensure_layout()
    ensure_demo_key(settings)
    as_of = args.as_of or _live_as_of()
    copied = copy_feed_specs(settings.feeds_dir)
    err(f"demo: {len(copied)} sample feed specs in {settings.feeds_dir}")
    if reference := write_sample_reference(settings.reference_dir, as_of):
        err(f"demo: {len(reference)} sample reference files for {as_of} in {settings.reference_dir}")
    generate_samples(settings.inbox_dir, seed=args.seed, as_of=as_of)
    err(f"demo: the sample's four weeks end {report_weeks(as_of)[-1] + timedelta(days=6)} (as of {as_of})")
    with demo_sources(settings.home) as sources:
        waiting = [f.path for f in list_inbox(settings.inbox_dir)]
        err(f"demo: {len(waiting)} sample files in {settings.inbox_dir}; loading them")
        _, problems = _run_ingest(settings, args, waiting, None)
        err(
            f"demo: {len(sources.sftp_files)} files on a local SFTP server and {sources.api_records} "
            "records behind a local API; pulling them"
        )
        # Two polls: an SFTP file is taken once its size and mtime held still across two looks.
        pulls = [result for _ in range(2) for result in _pull(settings, args, None, sources.environ)]
    published = _publish(settings, args, None)
    err(f"demo: scorecards of {len(published.reports.pages)} partners in {published.reports.index}")
    write_frame(summary(settings), args.format)
    return 1 if problems or any(result.error for result in pulls) else 0


def _live_as_of() -> date:
    from sampledata.generator import live_as_of

    return live_as_of(datetime.now(UTC).date())


def _pull(settings: ThroughlineSettings, args: argparse.Namespace, distributors, environ=None):
    from ingest.pull import pull

    context = _context(settings, args)
    results = pull(context, distributors, environ=environ)
    for result in results:
        if result.error:
            err(f"pull failed: {result.error}")
        elif result.fetched:
            err(f"{result.spec_id}: pulled {len(result.fetched)} file(s) over {result.channel}")
    return results


def _publish(settings: ThroughlineSettings, args: argparse.Namespace, as_of: date | None):
    from ingest.publish import publish

    published = publish(_context(settings, args), as_of)
    rows = ", ".join(f"{name} {rows}" for name, rows in published.mart_rows.items())
    err(f"marts as of {published.as_of}: {rows}")
    return published


def cmd_publish(args: argparse.Namespace) -> int:
    from warehouse.catalog import ensure_catalog

    settings = _settings()
    storage = _existing_storage(settings)
    published = _publish(settings, args, args.as_of)
    ensure_catalog(storage, settings.catalog_path)
    write_frame(
        pl.DataFrame(
            {
                "written": ["overview", *sorted(published.reports.pages)],
                "path": [str(published.reports.index)]
                + [str(published.reports.pages[p]) for p in sorted(published.reports.pages)],
            }
        ),
        args.format,
    )
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from ingest.publish import export_partner_lines

    settings = _settings()
    _existing_storage(settings)
    try:
        csv_path, parquet_path = export_partner_lines(_context(settings, args), args.partner, Path(args.out))
    except ValueError as error:
        raise UserError(str(error)) from error
    write_frame(pl.DataFrame({"file": [str(csv_path), str(parquet_path)]}), args.format)
    return 0


def cmd_pull(args: argparse.Namespace) -> int:
    from ingest.pull import pulled_specs

    settings = _settings()
    context = _context(settings, args)
    if not pulled_specs(context, args.distributor):
        raise UserError(
            f"no feed spec in {settings.feeds_dir} has a `source:` section"
            + (f" for {', '.join(args.distributor)}" if args.distributor else "")
            + " (see docs/connectors.md)"
        )
    results = _pull(settings, args, args.distributor)
    rows = [
        {
            "spec_id": r.spec_id,
            "distributor_id": r.distributor_id,
            "channel": r.channel,
            "fetched": len(r.fetched),
            "waiting": len(r.waiting),
            "refused": len(r.refused),
            "loaded": sum(o.load.status == "loaded" for o in r.report.outcomes) if r.report else 0,
            "rejected": sum(o.load.status == "rejected" for o in r.report.outcomes) if r.report else 0,
            "error": r.error,
        }
        for r in results
    ]
    write_frame(pl.DataFrame(rows, schema_overrides={"error": pl.String}), args.format)
    return 1 if any(row["error"] or row["rejected"] for row in rows) else 0


def cmd_ingest(args: argparse.Namespace) -> int:
    settings = _settings()
    paths = [Path(p) for p in args.paths]
    if missing := [str(p) for p in paths if not p.exists() and not p.is_symlink()]:
        raise UserError(f"no such file: {', '.join(missing)}")
    report, problems = _run_ingest(settings, args, paths, args.distributor)
    write_frame(_outcome_frame(report), args.format)
    rejected = any(o.load.status == "rejected" for o in report.outcomes)
    return 1 if problems or rejected else 0


def cmd_inspect(args: argparse.Namespace) -> int:
    from ingest.context import key_matches_warehouse
    from ingest.inspect import NoSpecError, choose_spec, inspect_file, throwaway_secret
    from transforms.readers import UnreadableFileError
    from warehouse.storage import storage_for

    settings = _settings()
    path = Path(args.file)
    if not path.is_file():
        raise UserError(f"not a file: {path}")
    try:
        spec = choose_spec(path, load_spec_catalog(settings.feeds_dir), args.spec)
    except NoSpecError as error:
        raise UserError(str(error)) from error
    try:
        key = resolve_customer_key(settings)
        secret = key.secret.get_secret_value()
        matches = key_matches_warehouse(storage_for(settings), key)
        if matches is False:
            err(
                "note: this end-customer key is not the warehouse's: end_customer_key values below will not match it"
            )
    except CustomerKeyError:
        secret = throwaway_secret()
        err(
            "note: no end-customer key is set, so end_customer_key values below use a throwaway key and match "
            "nothing in the warehouse (set THROUGHLINE_CUSTOMER_KEY_SECRET to see the warehouse's)"
        )
    try:
        inspection = inspect_file(
            path, spec, secret=secret, limits=settings.limits, max_field_chars=settings.max_field_chars
        )
    except UnreadableFileError as error:
        raise UserError(f"{path}: {error}") from error
    write_frame(inspection.valid, args.format)
    for note in inspection.notes:
        err(f"note: {note}")
    if inspection.quarantined.height:
        err(f"{inspection.quarantined.height} of {inspection.rows_read} record(s) would be quarantined:")
        write_frame(inspection.quarantined, args.format, sys.stderr)
    err(inspection.summary(path.name))
    return 0


def cmd_query(args: argparse.Namespace) -> int:
    import duckdb

    from warehouse.catalog import ReadOnlyQueryError, connect_read_only, run_read_only

    storage = _existing_storage(_settings())
    connection = connect_read_only(storage)
    try:
        frame = run_read_only(connection, args.sql).pl()
    except ReadOnlyQueryError as error:
        raise UserError(str(error)) from error
    except duckdb.Error as error:
        raise UserError(f"query failed: {error}") from error
    finally:
        connection.close()
    write_frame(frame, args.format)
    return 0


def cmd_feeds(args: argparse.Namespace) -> int:
    settings = _settings()
    catalog = load_spec_catalog(settings.feeds_dir)
    if args.feeds_command == "check":
        for problem in catalog.errors.values():
            err(problem)
        for warning in getattr(catalog, "warnings", []):
            err(f"warning: {warning}")
        if catalog.errors:
            err(
                f"{len(catalog.errors)} of {len(catalog.errors) + len(catalog.specs)} spec file(s) are invalid; fix them and run `throughline feeds check` again"
            )
            return EXIT_USER_ERROR
        err(f"{len(catalog.specs)} feed spec(s) in {settings.feeds_dir} are valid")
        return 0
    for path in catalog.errors:
        err(f"{path.name} is invalid (`throughline feeds check` says why); its distributor is disabled")
    frame = pl.DataFrame(
        [
            {
                "id": spec.id,
                "distributor_id": spec.distributor_id,
                "name": spec.name,
                "dataset": spec.dataset,
                "format": spec.format.type,
                "cadence": spec.cadence,
                "file_patterns": " ".join(spec.file_patterns),
                "spec_version": spec.version,
            }
            for spec in catalog.specs.values()
        ],
        schema=[
            "id",
            "distributor_id",
            "name",
            "dataset",
            "format",
            "cadence",
            "file_patterns",
            "spec_version",
        ],
    )
    write_frame(frame, args.format)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from warehouse.ledger import read_loads

    storage = _existing_storage(_settings())
    loads = read_loads(storage).sort("received_at", "started_at").tail(args.limit)
    write_frame(
        loads.select(
            "received_at", "distributor_id", "source_name", "status", "rows_read", "rows_loaded",
            "rows_quarantined", "rows_skipped", pl.coalesce("error", "warnings").alias("error"),
            "schema_drift",
        ),
        args.format,
    )  # fmt: skip
    return 0


def cmd_reprocess(args: argparse.Namespace) -> int:
    from ingest.plan import landed_in_range
    from ingest.run import reprocess

    settings = _settings()
    _existing_storage(settings)
    context = _context(settings, args)
    chosen = landed_in_range(context, args.distributor, args.since, args.until)
    if not chosen:
        err("nothing to reprocess: no landed files match")
        return 0
    report = reprocess(context, chosen)
    write_frame(_outcome_frame(report), args.format)
    return 1 if any(o.load.status == "rejected" for o in report.outcomes) else 0


def cmd_confirm(args: argparse.Namespace) -> int:
    from ingest.complete import complete_core
    from ingest.run import prepare
    from warehouse.catalog import ensure_catalog
    from warehouse.ledger import load_statuses

    settings = _settings()
    _existing_storage(settings)
    context = _context(settings, args)
    statuses = load_statuses(context.storage, args.load_ids)
    unknown = [load_id for load_id in args.load_ids if statuses.get(load_id) != "held"]
    if unknown:
        raise UserError(f"not held (see `throughline status`): {', '.join(unknown)}")
    prepare(context)
    complete_core(context, confirmed=args.load_ids)
    ensure_catalog(context.storage, settings.catalog_path)
    after = load_statuses(context.storage, args.load_ids)
    write_frame(pl.DataFrame({"load_id": list(after), "status": list(after.values())}), args.format)
    return 0


EXCEPTION_SECTIONS = (
    ("unmatched_resellers", "resellers without a partner_id"),
    ("unmapped_skus", "part numbers without a vendor sku"),
    ("missing_fx_rates", "amounts without a rate to the base currency"),
)


def cmd_exceptions(args: argparse.Namespace) -> int:
    from warehouse.catalog import connect_read_only, view_names

    storage = _existing_storage(_settings())
    present = set(view_names(storage))
    connection = connect_read_only(storage)
    found = 0
    try:
        for view, title in EXCEPTION_SECTIONS:
            if args.kind and args.kind != view:
                continue
            if view not in present:
                err(f"{view}: not available yet (run `throughline ingest` once)")
                continue
            frame = connection.sql(f"SELECT * FROM {view}").pl()
            found += frame.height
            err(f"{view}: {frame.height} {title}, most revenue first")
            if frame.height:
                write_frame(frame.head(args.limit) if args.limit else frame, args.format)
    finally:
        connection.close()
    return 1 if found else 0


def _apply_fix(args: argparse.Namespace, table: str, row: dict[str, str]) -> int:
    from ingest.enrichment import ReferenceFixError, append_reference_row
    from ingest.run import prepare
    from warehouse.catalog import ensure_catalog

    settings = _settings()
    _existing_storage(settings)
    context = _context(settings, args)
    prepare(context)
    try:
        refresh = append_reference_row(context, table, row)
    except ReferenceFixError as error:
        raise UserError(str(error)) from error
    ensure_catalog(context.storage, settings.catalog_path)
    err(f"added to {settings.reference_dir / (table + '.csv')}; applied to history")
    _write_refreshed(refresh.refreshed, args.format)
    return 0


def _write_refreshed(refreshed: dict[str, list[str]], output_format: str) -> None:
    """Print which load partitions a reference change rewrote, per dataset and distributor."""
    write_frame(
        pl.DataFrame(
            {
                "dataset/distributor": list(refreshed),
                "load_partitions_rewritten": [len(v) for v in refreshed.values()],
            },
            schema={"dataset/distributor": pl.String, "load_partitions_rewritten": pl.Int64},
        ),
        output_format,
    )


def cmd_partners_approve(args: argparse.Namespace) -> int:
    row = {
        "distributor_id": args.distributor_id,
        "reported_name": args.name,
        "postal_code": args.postal_code or "",
        "country": (args.country or "").upper(),
        "partner_id": args.partner,
        "method": "manual",
        "approved_on": date.today().isoformat(),
        "note": args.note or "",
    }
    return _apply_fix(args, "partner_aliases", row)


def cmd_skus_map(args: argparse.Namespace) -> int:
    row = {
        "distributor_id": args.distributor_id,
        "distributor_sku": args.part,
        "sku": args.sku,
        "units_per_distributor_unit": str(args.units),
    }
    return _apply_fix(args, "sku_map", row)


def cmd_rates_add(args: argparse.Namespace) -> int:
    row = {"rate_date": args.date.isoformat(), "currency": args.currency.upper(), "rate_to_base": args.rate}
    return _apply_fix(args, "fx_rates", row)


def cmd_reference(args: argparse.Namespace) -> int:
    from ingest.enrichment import refresh_reference
    from ingest.run import open_warehouse
    from warehouse.catalog import ensure_catalog

    settings = _settings()
    _existing_storage(settings)
    context = _context(settings, args)
    open_warehouse(context)
    refresh = refresh_reference(context, force=True)
    if refresh.problems:
        for problem in refresh.problems:
            err(f"problem: {problem}")
        raise UserError(
            f"the reference data in {settings.reference_dir} was not applied: fix the problems above"
        )
    ensure_catalog(context.storage, settings.catalog_path)
    err(
        f"reference data in {settings.reference_dir} applied; tables written: "
        f"{', '.join(refresh.tables_written) or 'none'}"
    )
    _write_refreshed(refresh.refreshed, args.format)
    return 0


def cmd_forget(args: argparse.Namespace) -> int:
    from ingest.forget import ErasureError, ErasureRequest, forget_customer

    settings = _settings()
    _existing_storage(settings)
    request = ErasureRequest(
        names=tuple(args.name),
        emails=tuple(args.email),
        phones=tuple(args.phone),
        addresses=tuple(args.address),
        keys=tuple(args.key),
        reference=args.reference,
    )
    if request.is_empty():
        raise UserError("name the customer: give --name, --email, --phone, --address or --key (see --help)")
    try:
        erasure = forget_customer(_context(settings, args), request, dry_run=args.dry_run)
    except ErasureError as error:
        raise UserError(str(error)) from error
    write_frame(
        pl.DataFrame(
            [
                {
                    "distributor_id": f.landed.distributor_id,
                    "source_name": f.landed.source_name,
                    "load_id": f.landed.load_id,
                    "records": f.records,
                    "places_kept": f.kept,
                    "status": "would redact" if args.dry_run and f.copy is not None else f.status,
                }
                for f in erasure.files
            ],
            schema={
                "distributor_id": pl.String,
                "source_name": pl.String,
                "load_id": pl.String,
                "records": pl.Int64,
                "places_kept": pl.Int64,
                "status": pl.String,
            },
        ),
        args.format,
    )
    files = len(erasure.files)
    err(
        f"{erasure.records} record(s) in {files} landed file(s) name the customer; "
        f"{len(erasure.keys)} end_customer_key value(s) to erase"
        + (" (dry run: nothing changed)" if args.dry_run else "")
    )
    if not args.dry_run and (erasure.history_files_removed or erasure.reloaded):
        removed = ", ".join(f"{table} {count}" for table, count in erasure.history_files_removed.items())
        err(
            f"redacted copies replace {sum(f.status == 'redacted' for f in erasure.files)} file(s) in landing "
            f"(recorded in the landing_changes table); {len(erasure.reloaded)} load(s) re-run from them; "
            f"{erasure.rows_unkeyed} row(s) of staging and core lost the key; older table versions removed "
            f"(data files: {removed})"
        )
    for path in erasure.leftovers:
        err(f"still holds one of the values (delete or fix it by hand): {path}")
    for problem in erasure.problems:
        err(f"problem: {problem}")
    return 1 if erasure.problems or erasure.leftovers else 0


def cmd_retention(args: argparse.Namespace) -> int:
    from ingest.retention import apply_retention

    settings = _settings()
    _existing_storage(settings)
    run = apply_retention(_context(settings, args), days=args.days, dry_run=args.dry_run)
    write_frame(
        pl.DataFrame(
            [
                {
                    "distributor_id": landed.distributor_id,
                    "source_name": landed.source_name,
                    "received_at": landed.received_at,
                    "bytes": landed.bytes,
                    "status": "would purge" if args.dry_run else "purged",
                }
                for landed in run.purged
            ],
            schema={
                "distributor_id": pl.String,
                "source_name": pl.String,
                "received_at": pl.Datetime("us", "UTC"),
                "bytes": pl.Int64,
                "status": pl.String,
            },
        ),
        args.format,
    )
    err(
        f"landing retention {run.days} days: {len(run.purged)} file(s) received before "
        f"{run.cutoff:%Y-%m-%d %H:%M} UTC {'would be' if args.dry_run else 'were'} deleted from landing "
        "(their rows stay in the warehouse; recorded in the landing_changes table)"
    )
    for landed in run.unfinished:
        err(f"kept {landed.source_name} ({landed.distributor_id}): its load never finished")
    return 0


def cmd_samples(args: argparse.Namespace) -> int:
    from sampledata.generator import copy_feed_specs, generate_samples, write_truth
    from sampledata.reference import write_reference

    out = Path(args.out)
    as_of = args.as_of or _live_as_of()
    truth = generate_samples(out / "inbox", seed=args.seed, as_of=as_of)
    copy_feed_specs(out / "feeds")
    write_reference(out / "reference", as_of)
    write_truth(truth, out / "truth.json")
    err(
        f"sample feeds as of {as_of} in {out / 'inbox'}, specs in {out / 'feeds'}, reference data in "
        f"{out / 'reference'}, expected results in {out / 'truth.json'}"
    )
    return 0


def _iso_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"'{text}' is not a date like 2026-11-16") from error


def _sample_as_of(text: str) -> date:
    from sampledata.reference import EARLIEST_AS_OF, FX_START

    as_of = _iso_date(text)
    if as_of < EARLIEST_AS_OF:
        raise argparse.ArgumentTypeError(
            f"'{text}' is before {EARLIEST_AS_OF}, the earliest as-of date the sample covers: its exchange "
            f"rates start on {FX_START}, and its four weeks must not start before them"
        )
    return as_of


def _positive_days(text: str) -> int:
    try:
        days = int(text)
    except ValueError:
        days = 0
    if days < 1:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number of days, at least 1")
    return days


def _distributor_id(text: str) -> str:
    from schemas.feed_spec import validate_distributor_id

    try:
        return validate_distributor_id(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from error


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="throughline",
        description=(
            "Throughline: distributor sell-out and inventory feeds into a governed Delta Lake + DuckDB warehouse. "
            f"The home folder is ${HOME_ENV} (default ~/.throughline)."
        ),
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def with_format(sub: argparse.ArgumentParser, default: str = "table") -> argparse.ArgumentParser:
        sub.add_argument(
            "--format", choices=FORMATS, default=default, help=f"output format (default {default})"
        )
        return sub

    def with_verbose(sub: argparse.ArgumentParser) -> argparse.ArgumentParser:
        sub.add_argument("--verbose", action="store_true", help="also print each batch of records read")
        return sub

    demo = with_verbose(
        with_format(
            commands.add_parser("demo", help="generate sample feeds into the inbox and load them all")
        )
    )
    demo.add_argument("--seed", type=int, default=7, help="sample generator seed (default 7)")
    demo.add_argument(
        "--as-of",
        type=_sample_as_of,
        help="the sample's as-of date: its four weeks end the Sunday before that date's week (default: "
        "the Monday of the week holding today - 2 days, so the last week is just due and one report "
        "is missing)",
    )
    demo.set_defaults(handler=cmd_demo)

    ingest = with_verbose(with_format(commands.add_parser("ingest", help="load files now, in this process")))
    ingest.add_argument(
        "paths",
        nargs="+",
        metavar="PATH",
        help="files to load (files in an inbox folder leave it once loaded)",
    )
    ingest.add_argument(
        "--distributor",
        type=_distributor_id,
        help="distributor id (default: the inbox folder, or the one spec the name matches)",
    )
    ingest.add_argument(
        "--confirm",
        action="store_true",
        help="accept reports that would empty or sharply shrink a loaded period",
    )
    ingest.set_defaults(handler=cmd_ingest)

    inspect = with_format(
        commands.add_parser("inspect", help="print the canonical records a file would become; writes nothing")
    )
    inspect.add_argument("file", metavar="FILE")
    inspect.add_argument(
        "--spec", help="feed spec id or YAML path (default: the spec whose file pattern matches)"
    )
    inspect.set_defaults(handler=cmd_inspect)

    query = with_format(
        commands.add_parser("query", help="run one read-only SQL SELECT over the warehouse views")
    )
    query.add_argument("sql", metavar="SQL")
    query.set_defaults(handler=cmd_query)

    feeds = commands.add_parser("feeds", help="list or check the feed specs in $THROUGHLINE_HOME/feeds")
    feeds_commands = feeds.add_subparsers(dest="feeds_command", required=True, metavar="ACTION")
    with_format(feeds_commands.add_parser("list", help="one line per valid feed spec")).set_defaults(
        handler=cmd_feeds
    )
    feeds_commands.add_parser("check", help="validate every spec; exit 2 listing every problem").set_defaults(
        handler=cmd_feeds, format="table"
    )

    status = with_format(commands.add_parser("status", help="recent loads, in arrival order (latest last)"))
    status.add_argument("--limit", type=int, default=30, help="how many loads (default 30)")
    status.set_defaults(handler=cmd_status)

    reprocess = with_verbose(
        with_format(
            commands.add_parser("reprocess", help="re-run loads from landing with the current feed specs")
        )
    )
    reprocess.add_argument("--distributor", type=_distributor_id, help="only this distributor")
    reprocess.add_argument("--since", type=_iso_date, help="first report date (YYYY-MM-DD)")
    reprocess.add_argument("--until", type=_iso_date, help="last report date (YYYY-MM-DD)")
    reprocess.set_defaults(handler=cmd_reprocess)

    confirm = with_format(
        commands.add_parser("confirm", help="accept held reports (that would empty or shrink a period)")
    )
    confirm.add_argument("load_ids", nargs="+", metavar="LOAD_ID")
    confirm.set_defaults(handler=cmd_confirm)

    pull = with_verbose(
        with_format(
            commands.add_parser(
                "pull", help="fetch what is new from the SFTP servers and APIs of the feed specs, and load it"
            )
        )
    )
    pull.add_argument(
        "--distributor", type=_distributor_id, action="append", help="only this distributor (repeatable)"
    )
    pull.set_defaults(handler=cmd_pull)

    publish = with_format(
        commands.add_parser(
            "publish", help="build the marts and write the partner scorecards to $THROUGHLINE_HOME/reports"
        )
    )
    publish.add_argument("--as-of", type=_iso_date, help="the day the marts describe (default: today, UTC)")
    publish.set_defaults(handler=cmd_publish)

    export = with_format(
        commands.add_parser("export", help="write one partner's sell-out lines as CSV and Parquet")
    )
    export.add_argument("--partner", required=True, metavar="PARTNER_ID")
    export.add_argument("--out", default=".", metavar="DIR", help="folder to write to (default: here)")
    export.set_defaults(handler=cmd_export)

    exceptions = with_format(
        commands.add_parser(
            "exceptions",
            help="what the 360-degree model could not resolve, most revenue first, with the fix for each",
        )
    )
    exceptions.add_argument("--kind", choices=[view for view, _ in EXCEPTION_SECTIONS], help="only this list")
    exceptions.add_argument("--limit", type=int, default=50, help="rows per list (default 50; 0 = all)")
    exceptions.set_defaults(handler=cmd_exceptions)

    def action_parser(group: str, group_help: str, action: str, action_help: str) -> argparse.ArgumentParser:
        """`throughline GROUP ACTION`: a command group with one action (more can join it)."""
        parent = commands.add_parser(group, help=group_help)
        actions = parent.add_subparsers(dest=f"{group}_command", required=True, metavar="ACTION")
        return with_verbose(with_format(actions.add_parser(action, help=action_help)))

    approve = action_parser(
        "partners",
        "approve or correct a reseller's partner",
        "approve",
        "map a reported reseller to a partner (kept in reference/partner_aliases.csv) and apply it to history",
    )
    approve.add_argument("distributor_id", type=_distributor_id, metavar="DISTRIBUTOR_ID")
    approve.add_argument("--name", required=True, help="the reseller name as reported")
    approve.add_argument(
        "--postal-code", help="as reported; leave out to cover every postal code of the name"
    )
    approve.add_argument("--country", help="ISO 3166-1 alpha-2, as reported")
    approve.add_argument("--partner", required=True, metavar="PARTNER_ID", help="the partner it is")
    approve.add_argument("--note", help="why (kept with the alias)")
    approve.set_defaults(handler=cmd_partners_approve)

    map_sku = action_parser(
        "skus",
        "map a distributor part number to a vendor SKU",
        "map",
        "add a row to reference/sku_map.csv and apply it to history",
    )
    map_sku.add_argument("distributor_id", type=_distributor_id, metavar="DISTRIBUTOR_ID")
    map_sku.add_argument("--part", required=True, help="the distributor's part number, as reported")
    map_sku.add_argument("--sku", required=True, help="the vendor SKU (in reference/products.csv)")
    map_sku.add_argument("--units", type=int, default=1, help="units per distributor unit (a case of 12: 12)")
    map_sku.set_defaults(handler=cmd_skus_map)

    add_rate = action_parser(
        "rates",
        "add a currency rate to the base currency",
        "add",
        "add a row to reference/fx_rates.csv and apply it to history",
    )
    add_rate.add_argument("currency", metavar="CURRENCY", help="ISO 4217 code")
    add_rate.add_argument("--date", type=_iso_date, required=True, help="the rate's date (YYYY-MM-DD)")
    add_rate.add_argument("--rate", required=True, help="base-currency units per unit of CURRENCY")
    add_rate.set_defaults(handler=cmd_rates_add)

    action_parser(
        "reference",
        "the reference data folder ($THROUGHLINE_HOME/reference)",
        "refresh",
        "validate the reference folder and apply it to history now (ingest does it too)",
    ).set_defaults(handler=cmd_reference)

    forget = with_verbose(
        with_format(
            commands.add_parser(
                "forget",
                help="erase one end customer's identifying data from landing, staging, core and quarantine",
                description=(
                    "Erase one end customer, as an erasure request names them. Every landed file whose "
                    "records name the customer (one of their identity fields equals a value given here, "
                    "case and runs of white space ignored, or their end_customer_key is one given) is "
                    "replaced by a redacted copy in which those records' name, e-mail, phone and address "
                    "are blank; the copy must read back as the same lines. The loads of those files are "
                    "re-run from the copies, the customer's keys leave staging and core, and the older "
                    "versions of the rewritten tables are removed. Each copy is recorded in the "
                    "landing_changes table. It cannot be undone; run it with --dry-run first, and while "
                    "no load runs. A name alone also matches namesakes: give the e-mail when there is one."
                ),
            )
        )
    )
    forget.add_argument("--name", action="append", default=[], help="the customer's name (repeatable)")
    forget.add_argument("--email", action="append", default=[], help="the customer's e-mail (repeatable)")
    forget.add_argument("--phone", action="append", default=[], help="the customer's phone (repeatable)")
    forget.add_argument(
        "--address", action="append", default=[], help="the customer's address as reported (repeatable)"
    )
    forget.add_argument(
        "--key", action="append", default=[], metavar="END_CUSTOMER_KEY", help="a key the customer has"
    )
    forget.add_argument(
        "--reference", help="the request's reference, e.g. a ticket number (kept in the ledger)"
    )
    forget.add_argument("--dry-run", action="store_true", help="say what would be erased; change nothing")
    forget.set_defaults(handler=cmd_forget)

    retention = with_format(
        commands.add_parser(
            "retention",
            help="delete landing files received longer ago than the retention period (default 730 days)",
            description=(
                "Delete from landing every file received more than the retention period ago "
                f"({LANDING_RETENTION_ENV}, default {DEFAULT_LANDING_RETENTION_DAYS} days) whose load "
                "finished. Their rows stay in the warehouse and the same bytes sent again are still a "
                "duplicate, but they can no longer be re-run. Each deletion is recorded in the "
                "landing_changes table."
            ),
        )
    )
    retention.add_argument(
        "--days", type=_positive_days, help=f"the period in days (default: {LANDING_RETENTION_ENV})"
    )
    retention.add_argument(
        "--dry-run", action="store_true", help="list what would be deleted; change nothing"
    )
    retention.set_defaults(handler=cmd_retention)

    samples = commands.add_parser(
        "samples", help="write the sample feeds, specs, reference data and expected results to a folder"
    )
    samples.add_argument("out", metavar="DIR")
    samples.add_argument("--seed", type=int, default=7)
    samples.add_argument(
        "--as-of",
        type=_sample_as_of,
        help="the sample's as-of date, of its feeds and reference data, 2025-12-01 or later (default: as "
        "`demo` picks it)",
    )
    samples.set_defaults(handler=cmd_samples)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except BrokenPipeError:
        return 0
    except (UserError, FeedSpecError, SettingsError) as error:
        err(f"error: {error}")
        return EXIT_USER_ERROR
    except Exception as error:
        from ingest.context import KeyMismatchError

        if isinstance(error, KeyMismatchError):
            err(f"error: {error}")
            return EXIT_USER_ERROR
        raise


if __name__ == "__main__":
    sys.exit(main())
