"""The `throughline` command line: demo, ingest, inspect, query, feeds, status, reprocess, samples.

Results go to stdout (`--format csv` is RFC 4180 with a header row), progress and problems to
stderr, and every error exits non-zero with a message that says what to do. THROUGHLINE_HOME sets
the home folder (default ~/.throughline); see `schemas/settings.py` for its layout.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import tempfile
from collections.abc import Sequence
from datetime import date
from pathlib import Path

import polars as pl

from schemas.feed_spec import FeedSpec, FeedSpecError, load_feed_spec, load_feed_specs
from schemas.settings import CUSTOMER_KEY_SECRET_ENV, HOME_ENV, ThroughlineSettings, customer_key_secret

FORMATS = ("table", "csv", "json")
DEMO_SECRET_FILE = "demo-customer-key.secret"


class UserError(Exception):
    """A problem the user can fix; printed without a traceback, exit status 2."""


def _err(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _warehouse(settings: ThroughlineSettings):
    """The home's warehouse storage, with every table present (empty on a new home)."""
    from warehouse.storage import storage_for_home
    from warehouse.tables import ensure_tables

    storage = storage_for_home(settings.landing_dir, settings.warehouse_dir)
    ensure_tables(storage)
    return storage


def _settings() -> ThroughlineSettings:
    settings = ThroughlineSettings.from_env()
    settings.ensure_layout()
    return settings


def write_frame(frame: pl.DataFrame, output_format: str, stream=None) -> None:
    """Print a frame as an aligned table, RFC 4180 CSV (header row, plain numbers) or JSON records."""
    stream = stream or sys.stdout
    if output_format == "csv":
        stream.write(frame.write_csv(line_terminator="\r\n", quote_style="necessary"))
    elif output_format == "json":
        stream.write(json.dumps(frame.to_dicts(), default=str, indent=2) + "\n")
    else:
        with pl.Config(
            tbl_rows=200, tbl_cols=-1, fmt_str_lengths=60, tbl_width_chars=200, tbl_hide_dataframe_shape=True
        ):
            stream.write(f"{frame}\n")
    stream.flush()


def ensure_demo_secret(settings: ThroughlineSettings) -> None:
    """The demo makes an HMAC secret for end_customer_key when none is set, kept in the home folder.

    Production sets THROUGHLINE_CUSTOMER_KEY_SECRET itself; the value is never printed.
    """
    if os.environ.get(CUSTOMER_KEY_SECRET_ENV):
        return
    secret_file = settings.home / DEMO_SECRET_FILE
    if not secret_file.exists():
        secret_file.write_text(secrets.token_hex(32), encoding="utf-8")
        secret_file.chmod(0o600)
        _err(
            f"demo: created an end-customer key secret in {secret_file} (set {CUSTOMER_KEY_SECRET_ENV} in production)"
        )
    os.environ[CUSTOMER_KEY_SECRET_ENV] = secret_file.read_text(encoding="utf-8").strip()


def _require_secret() -> None:
    try:
        customer_key_secret()
    except RuntimeError as error:
        raise UserError(str(error)) from error


def _summary(settings: ThroughlineSettings, load_ids: list[str] | None = None) -> pl.DataFrame:
    from warehouse.ledger import read_loads

    loads = read_loads(_warehouse(settings))
    if load_ids is not None:
        loads = loads.filter(pl.col("load_id").is_in(load_ids))
    return (
        loads.group_by("distributor_id")
        .agg(
            pl.len().alias("files"),
            pl.col("status").filter(pl.col("status") == "loaded").len().alias("loaded"),
            pl.col("status").filter(pl.col("status") == "superseded").len().alias("superseded"),
            pl.col("status").filter(pl.col("status") == "duplicate").len().alias("duplicate"),
            pl.col("status").filter(pl.col("status") == "rejected").len().alias("rejected"),
            pl.col("rows_read").sum(),
            pl.col("rows_loaded").sum(),
            pl.col("rows_quarantined").sum(),
        )
        .sort("distributor_id")
    )


def cmd_demo(args: argparse.Namespace) -> int:
    from connectors.folder import list_inbox
    from pipelines.runner import group_files, run_partitions
    from sampledata.generator import copy_feed_specs, generate_samples

    settings = _settings()
    ensure_demo_secret(settings)
    copied = copy_feed_specs(settings.feeds_dir)
    _err(f"demo: {len(copied)} sample feed specs in {settings.feeds_dir}")
    generate_samples(settings.inbox_dir, seed=args.seed, as_of=args.as_of)
    waiting = [f.path for f in list_inbox(settings.inbox_dir)]
    _err(f"demo: {len(waiting)} sample files in {settings.inbox_dir}; loading them")
    groups, problems = group_files(settings, waiting, None)
    for problem in problems:
        _err(problem)
    runs = run_partitions(settings, groups, channel="folder")
    write_frame(_summary(settings), args.format)
    failed = [run for run in runs if not run.success]
    if failed:
        _err(f"{len(failed)} run(s) failed; see `throughline status` and the Dagster UI")
        return 1
    return 0


def cmd_ingest(args: argparse.Namespace) -> int:
    from pipelines.runner import group_files, run_partitions

    settings = _settings()
    _require_secret()
    paths = [Path(p) for p in args.paths]
    if missing := [str(p) for p in paths if not p.is_file()]:
        raise UserError(f"not a file: {', '.join(missing)}")
    groups, problems = group_files(settings, paths, args.distributor)
    for problem in problems:
        _err(problem)
    runs = run_partitions(settings, groups, channel="cli")
    from warehouse.ledger import read_loads

    loads = read_loads(_warehouse(settings))
    names = [Path(p).name for p in args.paths]
    recent = (
        loads.filter(pl.col("source_name").is_in(names))
        .sort("started_at", descending=True)
        .unique("source_name", keep="first", maintain_order=True)
    )
    write_frame(
        recent.select(
            "source_name", "distributor_id", "status", "rows_read", "rows_loaded", "rows_quarantined", "error"
        ),
        args.format,
    )
    return 1 if problems or any(not r.success for r in runs) or (recent["status"] == "rejected").any() else 0


def _spec_for_inspect(settings: ThroughlineSettings, path: Path, spec_arg: str | None) -> FeedSpec:
    if spec_arg:
        candidate = Path(spec_arg)
        if candidate.is_file():
            return load_feed_spec(candidate)
        specs = load_feed_specs(settings.feeds_dir)
        if spec_arg in specs:
            return specs[spec_arg]
        raise UserError(f"no feed spec '{spec_arg}': give a YAML path or one of {sorted(specs)}")
    specs = load_feed_specs(settings.feeds_dir)
    matching = [spec for spec in specs.values() if spec.matches(path.name)]
    if path.parent.name in {spec.distributor_id for spec in matching}:
        matching = [spec for spec in matching if spec.distributor_id == path.parent.name]
    if len(matching) != 1:
        found = ", ".join(spec.id for spec in matching) or "none"
        raise UserError(
            f"{path.name}: {len(matching)} feed specs match its name ({found}); pass --spec ID or --spec FILE"
        )
    return matching[0]


def cmd_inspect(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from schemas.rules import RuleContext
    from schemas.tables import TABLE_COLUMNS
    from transforms.normalize import normalize_records
    from transforms.readers import POLARS_READ_ERRORS, UnreadableFileError, read_records
    from transforms.validate import RULE_COLUMN, flag_failures, quarantine_records

    settings = ThroughlineSettings.from_env()
    path = Path(args.file)
    if not path.is_file():
        raise UserError(f"not a file: {path}")
    spec = _spec_for_inspect(settings, path, args.spec)
    secret = os.environ.get(CUSTOMER_KEY_SECRET_ENV) or secrets.token_hex(32)  # keys are throwaway here
    context = RuleContext(spec=spec, as_of=datetime.now(UTC).date())
    with tempfile.TemporaryDirectory(prefix="throughline-inspect-") as scratch:
        flagged = None
        for tolerant in (False, True):
            try:
                raw = read_records(path, spec.format, Path(scratch), tolerant=tolerant)
                flagged = flag_failures(
                    normalize_records(raw, spec, customer_key_secret=secret), context
                ).collect()
                break
            except UnreadableFileError as error:
                raise UserError(f"{path}: {error}") from error
            except POLARS_READ_ERRORS:
                if tolerant or spec.format.type != "csv":
                    raise
    assert flagged is not None
    canonical = [name for name in TABLE_COLUMNS[spec.dataset] if name in flagged.columns]
    valid = flagged.filter(pl.col(RULE_COLUMN).is_null()).select(
        "source_row", *[c for c in canonical if c != "source_row"]
    )
    failed = quarantine_records(flagged.filter(pl.col(RULE_COLUMN).is_not_null()), context)
    write_frame(valid, args.format)
    if failed.height:
        _err(f"{failed.height} of {flagged.height} record(s) would be quarantined:")
        write_frame(failed, args.format, sys.stderr)
    _err(
        f"{path.name}: {flagged.height} records read, {valid.height} valid, {failed.height} quarantined (spec {spec.id})"
    )
    return 0


def cmd_query(args: argparse.Namespace) -> int:
    import duckdb

    from warehouse.catalog import connect

    storage = _warehouse(_settings())
    connection = connect(storage)
    try:
        statement = connection.sql(args.sql)
        if statement is None:
            raise UserError("the statement returned no rows: `query` is for SELECT statements")
        frame = statement.pl()
    except duckdb.Error as error:
        raise UserError(f"query failed: {error}") from error
    finally:
        connection.close()
    write_frame(frame, args.format)
    return 0


def cmd_feeds(args: argparse.Namespace) -> int:
    settings = ThroughlineSettings.from_env()
    try:
        specs = load_feed_specs(settings.feeds_dir)
    except FeedSpecError as error:
        _err(str(error))
        _err("fix the spec(s) above; `throughline feeds check` shows this list again")
        return 2
    if args.feeds_command == "check":
        _err(f"{len(specs)} feed spec(s) in {settings.feeds_dir} are valid")
        return 0
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
            for spec in specs.values()
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

    storage = _warehouse(_settings())
    loads = read_loads(storage).sort("started_at", descending=True).head(args.limit)
    write_frame(
        loads.select(
            "started_at",
            "distributor_id",
            "source_name",
            "status",
            "rows_read",
            "rows_loaded",
            "rows_quarantined",
            "error",
        ),
        args.format,
    )
    return 0


def cmd_reprocess(args: argparse.Namespace) -> int:
    from pipelines.runner import landed_groups, run_partitions

    settings = _settings()
    _require_secret()
    groups = landed_groups(settings, args.distributor, args.since, args.until)
    if not groups:
        _err("nothing to reprocess: no landed files match")
        return 0
    runs = run_partitions(settings, groups, channel="folder")
    write_frame(_summary(settings), args.format)
    return 0 if all(run.success for run in runs) else 1


def cmd_samples(args: argparse.Namespace) -> int:
    from sampledata.generator import copy_feed_specs, generate_samples, write_truth

    out = Path(args.out)
    truth = generate_samples(out / "inbox", seed=args.seed, as_of=args.as_of)
    copy_feed_specs(out / "feeds")
    write_truth(truth, out / "truth.json")
    _err(
        f"sample feeds in {out / 'inbox'}, specs in {out / 'feeds'}, expected results in {out / 'truth.json'}"
    )
    return 0


def _iso_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"'{text}' is not a date like 2026-11-16") from error


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

    demo = with_format(
        commands.add_parser("demo", help="generate sample feeds into the inbox and load them all")
    )
    demo.add_argument("--seed", type=int, default=7, help="sample generator seed (default 7)")
    demo.add_argument(
        "--as-of", type=_iso_date, default=date(2026, 11, 16), help="sample as-of date (default 2026-11-16)"
    )
    demo.set_defaults(handler=cmd_demo)

    ingest = with_format(
        commands.add_parser("ingest", help="load files now, in-process, with the same Dagster assets")
    )
    ingest.add_argument("paths", nargs="+", metavar="PATH", help="files to load")
    ingest.add_argument(
        "--distributor", help="distributor id (default: the inbox folder, or the one spec the name matches)"
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
        commands.add_parser("query", help="run a read-only SQL query over the warehouse views")
    )
    query.add_argument("sql", metavar="SQL")
    query.set_defaults(handler=cmd_query)

    feeds = commands.add_parser("feeds", help="list or check the feed specs in $THROUGHLINE_HOME/feeds")
    feeds_commands = feeds.add_subparsers(dest="feeds_command", required=True, metavar="ACTION")
    with_format(feeds_commands.add_parser("list", help="one line per feed spec")).set_defaults(
        handler=cmd_feeds
    )
    feeds_commands.add_parser("check", help="validate every spec; exit 2 listing each problem").set_defaults(
        handler=cmd_feeds, format="table"
    )

    status = with_format(commands.add_parser("status", help="recent loads, newest first"))
    status.add_argument("--limit", type=int, default=30, help="how many loads (default 30)")
    status.set_defaults(handler=cmd_status)

    reprocess = with_format(
        commands.add_parser("reprocess", help="re-run loads from landing with the current feed specs")
    )
    reprocess.add_argument("--distributor", help="only this distributor")
    reprocess.add_argument("--since", type=_iso_date, help="first report date (YYYY-MM-DD)")
    reprocess.add_argument("--until", type=_iso_date, help="last report date (YYYY-MM-DD)")
    reprocess.set_defaults(handler=cmd_reprocess)

    samples = commands.add_parser(
        "samples", help="write the sample feeds, specs and expected results to a folder"
    )
    samples.add_argument("out", metavar="DIR")
    samples.add_argument("--seed", type=int, default=7)
    samples.add_argument("--as-of", type=_iso_date, default=date(2026, 11, 16))
    samples.set_defaults(handler=cmd_samples)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except (UserError, FeedSpecError) as error:
        _err(f"error: {error}")
        return 2
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
