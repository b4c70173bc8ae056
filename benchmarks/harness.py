"""`make bench`: Throughline's ingest side by side with a raw copy and a hand-written baseline.

For each feed (Northwind's comma CSV, Rheinland's semicolon cp1252 decimal-comma CSV), written at
the requested size by the project's own scale generator (`sampledata/scale.py`), it times in one
run, each step in a fresh process so its peak memory (max RSS) is its own:

- `throughline ingest` end to end (landing to queryable views, core included) into an empty home;
- DuckDB `COPY (SELECT * FROM read_csv(...)) TO ... (FORMAT parquet)` of the same file (the floor);
- Polars `scan_csv(...).sink_parquet(...)`;
- pandas + pandera doing the same normalization and checks (what a user would write);

each step `--rounds` times, interleaved (best time, highest peak memory: a busy spell on a shared
machine slows one run, not the step); and, when `--history-lines` is given, a 10,000-line file
into an empty warehouse and into one already holding that many lines of the same distributor.
"Empty" is timed twice: a fresh home (which also pays for creating the tables and storing the
reference data), and a warehouse where another distributor's 1,000-line file did that first, as in
the history's home. The other formats follow in a table of their own (`--xlsx-lines`,
`--edi-lines`; 0 leaves one out): Albion's workbook, ingested end to end beside Polars
`read_excel` (calamine) -> Parquet, and Keystone's EDI 867, ingested end to end (no raw-copy floor
reads X12; its MB/s is shown). It prints a Markdown table and, with `--write`, appends it with the
date, machine and versions to benchmarks/RESULTS.md.

    .venv/bin/python benchmarks/harness.py --lines 5000000 --write
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SECRET = "benchmark-key-0123456789abcdef"
RESULTS = REPO / "benchmarks" / "RESULTS.md"


@dataclass(frozen=True)
class Feed:
    name: str
    spec_id: str
    file_name: str
    writer: str
    duckdb_options: str
    polars_options: str


FEEDS = (
    Feed("comma CSV (Northwind)", "northwind_us", "NW_SALES_20260105.csv", "write_northwind", "", ""),
    Feed(
        "semicolon cp1252 CSV (Rheinland)",
        "rheinland_de",
        "RH_Abverkauf_20260105.csv",
        "write_rheinland",
        ", delim=';', encoding='latin-1', quote='\"'",
        ", separator=';', encoding='utf8-lossy'",
    ),
)


@dataclass
class Measure:
    step: str
    seconds: float
    peak_mib: float
    rows: int

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


def run(step: str, args: list[str], rows: int, env: dict[str, str] | None = None) -> Measure:
    """Run one step in a child process; wall time and the child's own peak RSS."""
    started = time.monotonic()
    process = subprocess.Popen(
        args, env={**os.environ, **(env or {})}, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.monotonic() - started
    _, err = process.communicate()
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{step} failed:\n{err.decode()[-3000:]}")
    return Measure(step, seconds, usage.ru_maxrss / 1024, rows)


def python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def fresh_home(root: Path, name: str) -> Path:
    home = root / name
    if home.exists():
        shutil.rmtree(home)
    (home / "feeds").mkdir(parents=True)
    for spec in (REPO / "sampledata" / "feeds").glob("*.yaml"):
        shutil.copyfile(spec, home / "feeds" / spec.name)
    # The sample reference data, so the ingest resolves partners, SKUs and rates as in production.
    shutil.copytree(REPO / "sampledata" / "reference", home / "reference")
    return home


def ingest(home: Path, path: Path, distributor: str, rows: int, step: str) -> Measure:
    env = {"THROUGHLINE_HOME": str(home), "THROUGHLINE_CUSTOMER_KEY_SECRET": SECRET}
    return run(
        step,
        [str(BIN / "throughline"), "ingest", str(path), "--distributor", distributor, "--format", "csv"],
        rows,
        env,
    )


PANDAS_BASELINE = r"""
import sys, pandas as pd, pandera.pandas as pa
path, sep, encoding, decimal, thousands, date_format, out = sys.argv[1:8]
frame = pd.read_csv(path, sep=sep, encoding=encoding, dtype=str, keep_default_na=False)
cols = dict(zip(["invoice", "line", "date", "reseller", "postal", "country", "part", "qty", "price", "amount"], sys.argv[8:18]))
def number(s):
    s = s.str.strip().str.replace(thousands, "", regex=False)
    return pd.to_numeric(s.str.replace(decimal, ".", regex=False) if decimal != "." else s, errors="coerce")
norm = pd.DataFrame({
    "invoice_number": frame[cols["invoice"]].str.strip(),
    "invoice_line": pd.to_numeric(frame[cols["line"]], errors="coerce"),
    "transaction_date": pd.to_datetime(frame[cols["date"]].str.strip(), format=date_format, errors="coerce"),
    "reseller_name": frame[cols["reseller"]].str.strip().str.replace(r"\s+", " ", regex=True),
    "reseller_postal_code": frame[cols["postal"]].str.strip().str.upper(),
    "reseller_country": frame[cols["country"]].str.strip().str.upper(),
    "distributor_sku": frame[cols["part"]].str.strip(),
    "quantity": number(frame[cols["qty"]]),
    "unit_price": number(frame[cols["price"]]),
    "net_amount": number(frame[cols["amount"]]),
})
schema = pa.DataFrameSchema({
    "invoice_number": pa.Column(str, nullable=False),
    "transaction_date": pa.Column("datetime64[ns]", pa.Check.in_range(pd.Timestamp("2000-01-01"), pd.Timestamp("2030-01-01")), nullable=False),
    "distributor_sku": pa.Column(str, pa.Check.str_length(1, 4096)),
    "quantity": pa.Column(float, pa.Check(lambda q: q == q.round()), nullable=False),
    "unit_price": pa.Column(float, pa.Check.ge(0), nullable=True),
    "reseller_country": pa.Column(str, pa.Check.str_length(2, 2)),
}, coerce=False)
try:
    schema.validate(norm, lazy=True)
    bad = pd.Index([])
except pa.errors.SchemaErrors as errors:
    bad = pd.Index(errors.failure_cases["index"].dropna().unique())
norm.drop(index=bad).to_parquet(out)
"""


def generate(writer: str, path: Path, lines: int, **options: object) -> Path:
    """Write a scale feed in a child process: the harness itself stays small, because on Linux a child's
    peak RSS (`ru_maxrss`) starts from its parent's resident size at fork."""
    arguments = ", ".join(f"{key}={value!r}" for key, value in options.items())
    code = f"import datetime; from pathlib import Path; from sampledata import scale; scale.{writer}(Path({str(path)!r}), {lines}{', ' + arguments if arguments else ''})"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)
    return path


def best_of(rounds: list[list[Measure]]) -> list[Measure]:
    """Each step's fastest time over the rounds, with the highest peak memory any of its runs reached
    (a busy moment slows a run but never shrinks what a step needs)."""
    return [
        Measure(runs[0].step, min(m.seconds for m in runs), max(m.peak_mib for m in runs), runs[0].rows)
        for runs in zip(*rounds, strict=True)
    ]


def measure_feed(feed: Feed, lines: int, root: Path, rounds: int = 1) -> list[Measure]:
    """Every step on the same file, `rounds` times interleaved (ingest, DuckDB, Polars, pandas, then
    again), so a busy spell on the machine weighs on every step alike; see `best_of`."""
    path = generate(feed.writer, root / "in" / feed.file_name, lines)
    measured = [_measure_steps(feed, path, lines, root) for _ in range(rounds)]
    path.unlink()
    return best_of(measured)


def _measure_steps(feed: Feed, path: Path, lines: int, root: Path) -> list[Measure]:
    duck = f"COPY (SELECT * FROM read_csv('{path}'{feed.duckdb_options})) TO '{root / 'duck.parquet'}' (FORMAT parquet)"
    polars_copy = f"pl.scan_csv('{path}', infer_schema=False{feed.polars_options}).sink_parquet('{root / 'polars.parquet'}')"
    if feed.spec_id == "northwind_us":
        pandas_args = [",", "utf-8-sig", ".", ",", "%m/%d/%Y"]
        names = [
            "Invoice Number",
            "Line",
            "Invoice Date",
            "Reseller Name",
            "Reseller Zip",
            "Reseller Country",
            "Part Number",
            "Qty",
            "Unit Price",
            "Extended Price",
        ]
    else:
        pandas_args = [";", "cp1252", ",", ".", "%d.%m.%Y"]
        names = [
            "Beleg-Nr",
            "Pos",
            "Belegdatum",
            "Kunde",
            "Kunde PLZ",
            "Kunde Land",
            "Artikelnr",
            "Menge",
            "Einzelpreis",
            "Nettobetrag",
        ]
    steps = [
        ingest(fresh_home(root, "home"), path, feed.spec_id, lines, "throughline ingest"),
        run("DuckDB COPY to Parquet", python(f"import duckdb; duckdb.sql({duck!r})"), lines),
        run("Polars scan_csv -> sink_parquet", python(f"import polars as pl; {polars_copy}"), lines),
        run(
            "pandas + pandera",
            [
                sys.executable,
                "-c",
                PANDAS_BASELINE,
                str(path),
                *pandas_args,
                str(root / "pandas.parquet"),
                *names,
            ],
            lines,
        ),
    ]
    return steps


def measure_history(history_lines: int, history_files: int, root: Path) -> list[Measure]:
    """A 10,000-line file into an empty warehouse (a fresh home, and one a 1,000-line file of another
    distributor set up: tables created, reference data stored, as in the history's home), and into one
    holding `history_lines` of the same distributor."""
    from datetime import date, timedelta

    small = generate(
        "write_northwind",
        root / "in" / "NW_SALES_20261102.csv",
        10_000,
        first_invoice=90_000_000,
        start=date(2026, 11, 2),
    )
    fresh = ingest(fresh_home(root, "fresh"), small, "northwind_us", 10_000, "10,000 lines, fresh home")
    set_up = fresh_home(root, "empty")
    other = generate("write_rheinland", root / "in" / "RH_Abverkauf_20261102.csv", 1_000)
    ingest(set_up, other, "rheinland_de", 1_000, "another distributor")
    empty = ingest(set_up, small, "northwind_us", 10_000, "10,000 lines, empty warehouse (set up)")
    home = fresh_home(root, "history")
    weekly = max(history_lines // history_files, 1)
    for week in range(history_files):
        monday = date(2025, 1, 6) + timedelta(weeks=week)
        path = generate(
            "write_northwind",
            root / "in" / f"NW_SALES_{monday:%Y%m%d}.csv",
            weekly,
            first_invoice=week * weekly,
            start=monday,
        )
        ingest(home, path, "northwind_us", weekly, "history")
        path.unlink()
    full = ingest(
        home,
        small,
        "northwind_us",
        10_000,
        f"10,000 lines, warehouse holding {history_files * weekly:,} lines",
    )
    return [fresh, empty, full]


def measure_other_formats(xlsx_lines: int, edi_lines: int, root: Path) -> str:
    """Albion's workbook and Keystone's EDI 867 through `throughline ingest`, with their sizes."""
    rows = []
    if xlsx_lines:
        path = generate("write_albion", root / "in" / "Albion_SellOut_20260105.xlsx", xlsx_lines)
        size = path.stat().st_size
        rows.append(
            (
                ingest(fresh_home(root, "home"), path, "albion_uk", xlsx_lines, "throughline ingest, xlsx"),
                size,
            )
        )
        excel = f"pl.read_excel({str(path)!r}, sheet_name='Sell-Out', read_options={{'header_row': 3}}).write_parquet({str(root / 'excel.parquet')!r})"
        rows.append(
            (
                run(
                    "Polars read_excel -> Parquet, xlsx", python(f"import polars as pl; {excel}"), xlsx_lines
                ),
                size,
            )
        )
        path.unlink()
    if edi_lines:
        path = generate("write_keystone_867", root / "in" / "KEYSTONE_867_20260105.edi", edi_lines)
        size = path.stat().st_size
        rows.append(
            (
                ingest(
                    fresh_home(root, "home"), path, "keystone_edi", edi_lines, "throughline ingest, EDI 867"
                ),
                size,
            )
        )
        path.unlink()
    lines = [
        "**other formats**",
        "",
        "| step | lines | input | time | rows/s | MB/s | peak memory |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    lines += [
        f"| {m.step} | {m.rows:,} | {size / 1e6:,.0f} MB | {m.seconds:.2f} s | {m.rows_per_second:,.0f} | "
        f"{size / 1e6 / m.seconds:,.1f} | {m.peak_mib:,.0f} MiB |"
        for m, size in rows
    ]
    return "\n".join(lines)


def table(feed: str, steps: list[Measure]) -> str:
    floor = next(s for s in steps if s.step.startswith("DuckDB"))
    lines = [
        f"**{feed}**, {steps[0].rows:,} lines",
        "",
        "| step | time | rows/s | peak memory | time vs DuckDB |",
        "| --- | --- | --- | --- | --- |",
    ]
    lines += [
        f"| {s.step} | {s.seconds:.2f} s | {s.rows_per_second:,.0f} | {s.peak_mib:,.0f} MiB | {s.seconds / floor.seconds:.2f}x |"
        for s in steps
    ]
    return "\n".join(lines)


def machine() -> str:
    cores = os.cpu_count()
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / (1 << 30)
    load = os.getloadavg()[0]
    return f"{platform.machine()}, {cores} cores, {memory:.0f} GiB, load average {load:.1f} at start"


def versions() -> str:
    names = ("polars", "deltalake", "duckdb", "pandas", "pandera")
    return ", ".join(f"{name} {version(name)}" for name in names)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000, help="lines per feed (default 1,000,000)")
    parser.add_argument(
        "--history-lines", type=int, default=0, help="also time a small file against this much history"
    )
    parser.add_argument(
        "--history-files", type=int, default=20, help="weekly files the history is loaded as (default 20)"
    )
    parser.add_argument("--feeds", default="all", help="comma list of feed spec ids, or all")
    parser.add_argument(
        "--rounds",
        type=int,
        default=2,
        help="times each CSV step runs, interleaved: best time, highest peak memory (default 2)",
    )
    parser.add_argument(
        "--xlsx-lines", type=int, default=200_000, help="lines of the workbook (default 200,000)"
    )
    parser.add_argument(
        "--edi-lines", type=int, default=1_000_000, help="line items of the 867 (default 1,000,000)"
    )
    parser.add_argument(
        "--write", action="store_true", help=f"append the results to {RESULTS.relative_to(REPO)}"
    )
    parser.add_argument("--results", type=Path, default=RESULTS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    sections = [
        f"## {datetime.now(UTC):%Y-%m-%d %H:%M} UTC: {machine()}",
        "",
        versions(),
        "",
        f"CSV feeds: best time of {args.rounds} interleaved round(s), highest peak memory of any round.",
        "",
    ]
    with tempfile.TemporaryDirectory(prefix="throughline-bench-") as scratch:
        root = Path(scratch)
        for feed in FEEDS:
            if args.feeds != "all" and feed.spec_id not in args.feeds.split(","):
                continue
            sections += [table(feed.name, measure_feed(feed, args.lines, root, args.rounds)), ""]
            print("\n".join(sections[-2:]), flush=True)
        if args.xlsx_lines or args.edi_lines:
            sections += [measure_other_formats(args.xlsx_lines, args.edi_lines, root), ""]
            print("\n".join(sections[-2:]), flush=True)
        if args.history_lines:
            fresh, empty, full = measure_history(args.history_lines, args.history_files, root)
            sections += [
                "| small file | time | peak memory |",
                "| --- | --- | --- |",
                *[f"| {m.step} | {m.seconds:.2f} s | {m.peak_mib:,.0f} MiB |" for m in (fresh, empty, full)],
                "",
                f"Ratio (history / empty warehouse set up): {full.seconds / empty.seconds:.2f}"
                f" (history / fresh home: {full.seconds / fresh.seconds:.2f})",
                "",
            ]
    report = "\n".join(sections)
    print(report)
    if args.write:
        with args.results.open("a", encoding="utf-8") as handle:
            handle.write("\n" + report + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
