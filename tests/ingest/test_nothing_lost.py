"""Every physical line accounted for, through a real load: loaded, quarantined, or skipped by a named
rule; a footer that is really data is quarantined, not dropped; one bad spec stops only its own
distributor; quarantine shows only mapped fields, end-customer identity redacted.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
import xlsxwriter

from ingest.context import IngestContext
from ingest.plan import Incoming
from ingest.run import ingest_files
from schemas.settings import ThroughlineSettings, resolve_customer_key
from tests.conftest import TEST_SECRET, SampleWarehouse
from tests.guarantees import Figures
from warehouse.ledger import read_loads
from warehouse.tables import read_table

WORKBOOK_SPEC = """
id: wb
name: Workbook Distribution
country: GB
currency: GBP
file_patterns: ["WB_*.xlsx"]
format: {type: xlsx, header_row: 3, footer_rows: FOOTER}
parsing: {date_formats: ["%Y-%m-%d"]}
columns: {invoice_number: Invoice, invoice_line: Line, transaction_date: Date, distributor_sku: Part, quantity: Qty, unit_price: Price}
natural_key: [invoice_number, invoice_line]
"""

FIXED_SPEC = """
id: mainframe
name: Mainframe Distribution
country: US
currency: USD
file_patterns: ["MF_*.txt"]
format:
  type: fixed_width
  record_prefix: "D"
  columns:
    - {name: inv, start: 2, width: 6}
    - {name: date, start: 8, width: 8}
    - {name: part, start: 16, width: 6}
    - {name: qty, start: 22, width: 5}
    - {name: price, start: 27, width: 12}
parsing: {date_formats: ["%Y%m%d"], implied_decimals: {unit_price: 2}}
columns: {invoice_number: inv, transaction_date: date, distributor_sku: part, quantity: qty, unit_price: price}
natural_key: [invoice_number]
"""


def _context(home: Path, specs: dict[str, str]) -> IngestContext:
    settings = ThroughlineSettings(home=home)
    settings.ensure_layout()
    for name, text in specs.items():
        (settings.feeds_dir / name).write_text(text, encoding="utf-8")
    return IngestContext.open(
        settings, resolve_customer_key(settings, {"THROUGHLINE_CUSTOMER_KEY_SECRET": TEST_SECRET})
    )


def _workbook(path: Path, lines: int) -> None:
    book = xlsxwriter.Workbook(path)
    sheet = book.add_worksheet("Sales")
    sheet.write_row(0, 0, ["Weekly sales"])
    sheet.write_row(2, 0, ["Invoice", "Line", "Date", "Part", "Qty", "Price"])
    for index in range(lines):
        sheet.write_row(3 + index, 0, [f"I{index}", 1, "2026-11-02", "P1", 2, 10.5])
    # a blank row, then the totals row
    sheet.write_row(3 + lines + 1, 0, ["TOTAL", None, None, None, 2 * lines])
    book.close()


def _load(context: IngestContext, path: Path, distributor: str) -> dict:
    report = ingest_files(context, [Incoming(path, distributor, "cli")])
    return (
        read_loads(context.storage)
        .filter(pl.col("load_id") == report.outcomes[0].load.load_id)
        .row(0, named=True)
    )


@pytest.mark.parametrize("footer_rows", [1, 2])
def test_a_totals_row_below_a_blank_row_never_costs_a_data_line(tmp_path: Path, footer_rows: int) -> None:
    context = _context(tmp_path / "home", {"wb.yaml": WORKBOOK_SPEC.replace("FOOTER", str(footer_rows))})
    _workbook(tmp_path / "WB_1.xlsx", 5)
    load = _load(context, tmp_path / "WB_1.xlsx", "wb")
    assert (load["status"], load["rows_read"], load["rows_loaded"], load["rows_quarantined"]) == (
        "loaded",
        5,
        5,
        0,
    )
    skipped = json.loads(load["skipped_detail"])
    # title row + blank row above the header, the header, the blank row and the totals row below
    assert sum(skipped.values()) == load["rows_skipped"] == 5
    assert skipped["footer"] >= 1 and skipped["header"] == 1
    assert read_table(context.storage, "sellout").height == 5


def test_a_footer_that_reads_as_data_is_quarantined_not_dropped(tmp_path: Path) -> None:
    context = _context(tmp_path / "home", {"wb.yaml": WORKBOOK_SPEC.replace("FOOTER", "3")})
    _workbook(tmp_path / "WB_1.xlsx", 5)
    load = _load(context, tmp_path / "WB_1.xlsx", "wb")
    assert (load["rows_read"], load["rows_loaded"], load["rows_quarantined"]) == (5, 4, 1)
    quarantined = read_table(context.storage, "quarantine").row(0, named=True)
    assert quarantined["rule"] == "footer_is_data" and quarantined["source_row"] == 8
    assert "footer_rows" in quarantined["message"] and "I4" in quarantined["raw_record"]


def test_implied_decimals_load_exact_amounts(tmp_path: Path) -> None:
    context = _context(tmp_path / "home", {"mainframe.yaml": FIXED_SPEC})
    path = tmp_path / "MF_1.txt"
    records = [
        f"D{inv:6}20261102{part:6}{qty:05d}{price:>12}"
        for inv, part, qty, price in (
            ("A00001", "P00001", 3, "+00000000383"),
            ("A00002", "P00002", 10, "+00000123456"),
        )
    ]
    path.write_text("\n".join(["H20261102 MAINFRAME", *records, "T0000002"]) + "\n", encoding="utf-8")
    load = _load(context, path, "mainframe")
    assert (load["rows_read"], load["rows_loaded"]) == (2, 2)
    assert json.loads(load["skipped_detail"]) == {"record_prefix": 2}
    sellout = read_table(context.storage, "sellout").sort("invoice_number")
    assert [str(v) for v in sellout["unit_price"]] == ["3.8300", "1234.5600"]
    assert [str(v) for v in sellout["net_amount"]] == ["11.49", "12345.60"]


def test_one_bad_spec_disables_only_its_own_distributor(tmp_path: Path) -> None:
    broken = FIXED_SPEC.replace("id: mainframe", "id: mainframe\ncurrency_typo: USD")
    context = _context(
        tmp_path / "home", {"mainframe.yaml": broken, "wb.yaml": WORKBOOK_SPEC.replace("FOOTER", "1")}
    )
    (tmp_path / "MF_1.txt").write_text("DA0000120261102P0000100003+00000000383\n", encoding="utf-8")
    _workbook(tmp_path / "WB_1.xlsx", 2)
    report = ingest_files(
        context,
        [Incoming(tmp_path / "MF_1.txt", "mainframe", "cli"), Incoming(tmp_path / "WB_1.xlsx", "wb", "cli")],
    )
    by_name = {o.load.source_name: o.load for o in report.outcomes}
    assert by_name["WB_1.xlsx"].status == "loaded"
    assert by_name["MF_1.txt"].status == "rejected"
    assert "feed spec of distributor 'mainframe' is invalid" in by_name["MF_1.txt"].error
    assert "currency_typo: unknown key" in by_name["MF_1.txt"].error


@pytest.mark.system
def test_quarantine_shows_only_mapped_fields_with_identity_redacted(
    sample_warehouse: SampleWarehouse,
) -> None:
    quarantine = sample_warehouse.query(
        "select q.raw_record, l.source_name from quarantine q join loads l using (load_id)"
    )
    rheinland = [json.loads(r) for r, name in quarantine.iter_rows() if name.startswith("RH_")]
    assert rheinland, "the sample quarantines Rheinland records"
    for record in rheinland:
        assert "Lieferadresse" not in record and "Artikelbezeichnung" not in record
        assert record.get("Endkunde") in (None, "<redacted>") and record.get("Endkunde Adresse") in (
            None,
            "<redacted>",
        )


@pytest.mark.system
def test_every_sample_file_accounts_for_every_line(
    sample_warehouse: SampleWarehouse, figures: Figures
) -> None:
    loads = sample_warehouse.query(
        "select source_name, rows_read, rows_skipped, skipped_detail from loads where status in ('loaded', 'superseded')"
    )
    inbox_files = {f.file_name: f for f in sample_warehouse.truth.files}
    figures.add(
        trials=loads.height,
        rows_checked=sum(f.rows_read for f in inbox_files.values()),
        rows_lost=sum(abs(inbox_files[name].rows_read - read) for name, read, _, _ in loads.iter_rows()),
    )
    for name, rows_read, rows_skipped, detail in loads.iter_rows():
        assert rows_skipped == sum(json.loads(detail or "{}").values()), name
        assert rows_read == inbox_files[name].rows_read, name
        if name.startswith(("NW_", "pacific_")):  # one line per record in these samples
            landed = sample_warehouse.query(f"select source_file from loads where source_name = '{name}'")[
                "source_file"
            ][0]
            text = sample_warehouse.storage.local_path(landed).read_bytes()
            lines = len(text.splitlines())
            assert rows_read + rows_skipped == lines, name


def test_a_high_quarantine_rate_is_a_warning_on_the_load_itself(tmp_path: Path) -> None:
    """A failed quarantine_rate used to hide behind a succeeded run: now the ledger says it."""
    spec = (
        WORKBOOK_SPEC.replace("FOOTER", "0")
        .replace("type: xlsx, header_row: 3", "type: csv")
        .replace("WB_*.xlsx", "Q_*.csv")
    )
    context = _context(tmp_path / "home", {"q.yaml": spec})
    path = tmp_path / "Q_1.csv"
    path.write_text(
        "Invoice,Line,Date,Part,Qty,Price\nA,1,2026-11-02,P,1,2\nA,2,2026-11-02,P,x,2\n", encoding="utf-8"
    )
    load = _load(context, path, "wb")
    assert load["rows_quarantined"] == 1
    assert load["warnings"] == (
        "quarantined 1 of 2 records (50.0%), over the 5% threshold (settings quarantine_rate_warn): see "
        f"`throughline query \"select source_row, rule, message from quarantine where load_id = '{load['load_id']}'\"`"
    )
