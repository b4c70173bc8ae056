"""Schema drift reaches the user by name: sample files of a CSV, an xlsx and a JSON-lines feed are
loaded, then the next week's file of each arrives with its header changed (columns added, renamed,
respelled, reordered; a required one renamed). `loads.schema_drift`, `throughline ingest`,
`status` and `inspect` name every changed column, the drifted files still load every record, and
the one missing a required column is refused with the spec change to make. A `loads` table an
older version wrote gains the new columns."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from pathlib import Path

import polars as pl
import pytest

from cli.main import main
from sampledata.generator import copy_feed_specs, generate_samples
from tests.conftest import query_home
from tests.guarantees import Figures


def drift_csv(path: Path, out: Path) -> int:
    """The Northwind CSV with `Line` moved first, `Reseller Zip` renamed `Reseller Zip Code`,
    `Currency` respelled `CURRENCY` and a `Promo Code` column added: 4 changes."""
    rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8-sig"))))
    header = rows[0]
    order = [header.index("Line"), *(i for i, name in enumerate(header) if name != "Line")]
    renamed = {"Reseller Zip": "Reseller Zip Code", "Currency": "CURRENCY"}
    lines = [[*(renamed.get(header[i], header[i]) for i in order), "Promo Code"]]
    for row in rows[1:]:
        # A row the reader cannot align (an unquoted comma) stays as sent, one field wider still.
        lines.append([*(row[i] for i in order), "AUTUMN"] if len(row) == len(header) else [*row, "AUTUMN"])
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(lines)
    out.write_text(buffer.getvalue(), encoding="utf-8-sig")
    return 4


def drift_xlsx(path: Path, out: Path) -> int:
    """The Albion workbook with `Customer Postcode` renamed `Customer Zip`, `Line Value` respelled
    `LINE VALUE` and the unread `Description` renamed `Item Description`: 3 changes."""
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            data = source.read(item)
            if item.filename == "xl/sharedStrings.xml":
                for old, new in (
                    ("Customer Postcode", "Customer Zip"),
                    ("Line Value", "LINE VALUE"),
                    ("Description", "Item Description"),
                ):
                    assert data.count(f"<t>{old}</t>".encode()) == 1, old
                    data = data.replace(f"<t>{old}</t>".encode(), f"<t>{new}</t>".encode())
            target.writestr(item, data)
    return 3


def drift_jsonl(path: Path, out: Path) -> int:
    """The Pacific JSON lines with `reseller.address.postal_code` renamed `reseller.address.zip`
    and `item.discount` added: 2 changes (a line that does not parse stays as sent)."""
    lines = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            lines.append(line)
            continue
        address = record["reseller"]["address"]
        address["zip"] = address.pop("postal_code")
        record["item"]["discount"] = "0.00"
        lines.append(json.dumps(record, ensure_ascii=False))
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return 2


def ingest(path: Path, distributor: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, list[dict]]:
    code = main(["ingest", str(path), "--distributor", distributor, "--format", "json"])
    return code, json.loads(capsys.readouterr().out)


@pytest.fixture
def samples(home: Path, tmp_path: Path):
    copy_feed_specs(home / "feeds")
    drop = tmp_path / "drop"
    return drop, generate_samples(drop)


def test_schema_drift_is_reported_by_name_in_the_load_and_the_cli(
    samples, home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], figures: Figures
) -> None:
    drop, truth = samples
    drifted = tmp_path / "drifted"
    drifted.mkdir()
    cases = [
        ("northwind_us", "NW_SALES_20261019.csv", "NW_SALES_20261026.csv", drift_csv),
        ("albion_uk", "Albion_SellOut_20261019.xlsx", "Albion_SellOut_20261026.xlsx", drift_xlsx),
        ("pacific_jsonl", "pacific_sellout_20261019.jsonl", "pacific_sellout_20261026.jsonl", drift_jsonl),
    ]
    expected_findings = {
        "NW_SALES_20261026.csv": [
            "renamed: `CURRENCY` differs from `Currency` (columns.currency) only in case, spacing or "
            "punctuation, and was read as it",
            "renamed: `Reseller Zip Code` looks like a rename of `Reseller Zip` "
            "(columns.reseller_postal_code), so `reseller_postal_code` is loaded empty for every record: "
            "set `columns.reseller_postal_code: Reseller Zip Code` in feed spec 'northwind_us' (or restore "
            "the column's name in the file)",
            "added: `Promo Code` (not in the header of NW_SALES_20261019.csv (load northwind_us-{id}); the "
            "spec does not read it: map it in `columns:` to load it)",
            "reordered: `Line` moved (the same columns in a new order; harmless, columns are read by name)",
        ],
        "Albion_SellOut_20261026.xlsx": [
            "renamed: `LINE VALUE` differs from `Line Value` (columns.net_amount)",
            "renamed: `Customer Zip` looks like a rename of `Customer Postcode` (columns.reseller_postal_code)",
            "set `columns.reseller_postal_code: Customer Zip` in feed spec 'albion_uk'",
            "renamed: `Item Description` looks like a rename of `Description` (the spec does not read it)",
        ],
        "pacific_sellout_20261026.jsonl": [
            "renamed: `reseller.address.zip` looks like a rename of `reseller.address.postal_code` "
            "(columns.reseller_postal_code)",
            "added: `item.discount`",
        ],
    }
    faults = 0
    for distributor, first, second, change in cases:
        code, (baseline,) = ingest(drop / distributor / first, distributor, capsys)
        assert code == 0 and baseline["status"] == "loaded" and baseline["schema_drift"] is None
        faults += change(drop / distributor / second, drifted / second)
        code, (row,) = ingest(drifted / second, distributor, capsys)
        assert code == 0 and row["status"] == "loaded", row
        file_truth = truth.file(second)
        assert (row["rows_read"], row["rows_loaded"], row["rows_quarantined"]) == (
            file_truth.rows_read,
            file_truth.rows_loaded,
            file_truth.rows_quarantined,
        )
        figures.add(
            trials=1, rows_checked=row["rows_read"], rows_lost=file_truth.rows_read - row["rows_read"]
        )
        for finding in expected_findings[second]:
            assert finding.split("northwind_us-{id}")[0] in row["schema_drift"], (
                finding,
                row["schema_drift"],
            )

    # `throughline inspect` names what differs from the spec (it has no previous load to compare).
    assert main(["inspect", str(drifted / "NW_SALES_20261026.csv")]) == 0
    notes = capsys.readouterr().err
    assert "note: renamed: `Reseller Zip Code` looks like a rename of `Reseller Zip`" in notes
    assert "note: renamed: `CURRENCY` differs from `Currency`" in notes

    loads = query_home(home, "select load_id, source_name, schema_drift, source_columns from loads")
    by_name = {r["source_name"]: r for r in loads.iter_rows(named=True)}
    northwind = by_name["NW_SALES_20261026.csv"]
    baseline_id = by_name["NW_SALES_20261019.csv"]["load_id"]
    assert northwind["schema_drift"].splitlines() == [
        line.replace("northwind_us-{id}", baseline_id) for line in expected_findings["NW_SALES_20261026.csv"]
    ]
    assert json.loads(northwind["source_columns"])[:2] == ["Line", "Invoice Number"]
    assert json.loads(by_name["NW_SALES_20261019.csv"]["source_columns"])[-1] == "Currency"
    # The respelled columns were read; the renamed optional one loaded empty, as the finding says.
    sellout = query_home(
        home,
        "select s.source_file, s.reseller_postal_code, s.currency, s.net_amount, l.source_name "
        "from sellout s join loads l using (load_id)",
    )
    for name in ("NW_SALES_20261026.csv", "Albion_SellOut_20261026.xlsx", "pacific_sellout_20261026.jsonl"):
        mine = sellout.filter(pl.col("source_name") == name)
        assert mine.height > 0 and mine["reseller_postal_code"].null_count() == mine.height, name
        assert mine["currency"].null_count() == 0 and mine["net_amount"].null_count() == 0, name

    # A required column renamed: refused, naming the column, its field and the change to make.
    refused = drifted / "NW_SALES_20261102.csv"
    original = (drop / "northwind_us" / "NW_SALES_20261102.csv").read_bytes()
    head, rest = original.split(b"\r\n", 1)
    refused.write_bytes(head.replace(b",Qty,", b",Qty Sold,") + b"\r\n" + rest)
    faults += 1
    code, (row,) = ingest(refused, "northwind_us", capsys)
    assert code == 1 and row["status"] == "rejected"
    assert (
        "the file has no column `Qty` (columns.quantity) that feed spec 'northwind_us' maps" in row["error"]
    )
    assert (
        "`Qty Sold` looks like a rename of `Qty`: set `columns.quantity: Qty Sold` in the spec"
        in row["error"]
    )
    assert (
        "renamed: `Qty Sold` looks like a rename of `Qty` (columns.quantity), so the file is refused"
        in (row["schema_drift"])
    )
    figures.add(trials=1, rows_checked=0)

    # `throughline status` shows the same findings, in its table and as JSON.
    assert main(["status", "--format", "json"]) == 0
    status = {r["source_name"]: r for r in json.loads(capsys.readouterr().out)}
    assert status["NW_SALES_20261026.csv"]["schema_drift"] == northwind["schema_drift"]
    assert "`Qty Sold` looks like a rename of `Qty`" in status["NW_SALES_20261102.csv"]["schema_drift"]
    assert status["NW_SALES_20261019.csv"]["schema_drift"] is None
    assert main(["status"]) == 0
    table = capsys.readouterr().out
    for name in ("Promo Code", "Reseller Zip Code", "Customer Zip", "item.discount", "Qty Sold"):
        assert name in table, name
    figures.add(trials=0, faults=faults)


def test_a_loads_table_an_older_version_wrote_gains_the_drift_columns(
    samples, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from deltalake import write_deltalake

    from schemas.settings import ThroughlineSettings
    from schemas.tables import empty_frame
    from warehouse.storage import storage_for
    from warehouse.tables import PARTITION_COLUMNS

    drop, _ = samples
    settings = ThroughlineSettings(home=home)
    storage = storage_for(settings)
    older = empty_frame("loads").drop("schema_drift", "source_columns")
    write_deltalake(storage.table_uri("loads"), older.to_arrow(), partition_by=PARTITION_COLUMNS.get("loads"))

    code, (row,) = ingest(drop / "northwind_us" / "NW_SALES_20261019.csv", "northwind_us", capsys)
    assert code == 0 and row["status"] == "loaded"
    loads = query_home(home, "select source_name, schema_drift, source_columns from loads")
    assert loads.rows() == [
        ("NW_SALES_20261019.csv", None, json.dumps(["Invoice Number", "Line", "Invoice Date", "Reseller Name",
         "Reseller Zip", "Reseller Country", "Part Number", "Description", "Qty", "Unit Price",
         "Extended Price", "Currency"]))
    ]  # fmt: skip
