"""Invariant 7, proven for every feed format: end-customer names, e-mails, phones and street addresses
are hashed into `end_customer_key` in csv, xlsx, fixed_width, json, jsonl and X12 867 feeds, valid
and quarantined records alike; raw values stay only in landing (docs/privacy.md).

One home is loaded through the real ingest path with one distributor per format. Each file carries
distinctive end-customer values on valid lines, on lines that fail validation, on records the
reader cannot split cleanly, and in unmapped columns. Then every view of the catalog, every Delta
table (current version and every Parquet file on disk, time travel included), every other file of
the home outside landing (the DuckDB catalog file, Delta logs, metadata) is searched for them.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import shutil
import zipfile
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import polars as pl
import pytest
import xlsxwriter
from pydantic import SecretStr

from ingest.context import KEY_FINGERPRINT, IngestContext, KeyMismatchError
from ingest.plan import landed_in_range
from ingest.run import ingest_files, reprocess
from schemas.settings import CustomerKey, ThroughlineSettings
from tests.conftest import TEST_SECRET, ingest_inbox
from tests.guarantees import Figures
from warehouse.catalog import connect, view_names
from warehouse.ledger import read_loads
from warehouse.storage import storage_for_home
from warehouse.tables import read_table

pytestmark = pytest.mark.system

UNIT_SEPARATOR = "\x1f"


@dataclass(frozen=True)
class Customer:
    name: str
    email: str
    phone: str
    street: str

    @property
    def values(self) -> tuple[str, str, str, str]:
        return (self.name, self.email, self.phone, self.street)


def _customer(tag: str, kind: str, number: int) -> Customer:
    """Distinctive values per format and record kind, e.g. 'Zelda Quarantine-CSV', 'zq-csv@example.test'."""
    words = {"zv": "Valid", "zq": "Quarantine", "zm": "Malformed"}
    return Customer(
        name=f"Zelda {words[kind]}-{tag.upper()}",
        email=f"{kind}-{tag}@example.test",
        phone=f"+1 555 01{number:02d} {len(tag)}{number:03d}",
        street=f"{10 + number} {kind.title()} {tag.title()} Street",
    )


SHARED = Customer(
    "Zelda Shared-Customer", "zs@example.test", "+44 20 7946 0000", "1 Shared Way, Springfield 12345"
)
"""One end customer every format reports (in its own case and spacing): the same key everywhere."""
SHARED_VARIANTS = {
    "csv": SHARED,
    "xlsx": Customer("zelda shared-customer", "ZS@Example.Test", "+44 20 7946 0000", "1 shared way, springfield 12345"),
    "fw": Customer("ZELDA   SHARED-CUSTOMER", "zs@example.test", "+44  20 7946 0000", "1 Shared  Way, Springfield 12345"),
    "json": Customer(" Zelda Shared-Customer ", "zs@EXAMPLE.test", "+44 20 7946 0000", "1 SHARED WAY, SPRINGFIELD 12345"),
    "jsonl": Customer("Zelda\tShared-Customer", "Zs@example.test", "+44 20  7946 0000", "1 Shared Way,  Springfield 12345"),
    # X12: name N102, phone/e-mail from PER, address = N301 N302 + ", " + N4 city, state, postal.
    "x12": Customer("ZELDA SHARED-CUSTOMER", "ZS@EXAMPLE.TEST", "+44 20 7946 0000", "1 SHARED WAY, SPRINGFIELD 12345"),
}  # fmt: skip
FORMATS = ("csv", "xlsx", "fw", "json", "jsonl", "x12")
VALID = {tag: _customer(tag, "zv", n) for n, tag in enumerate(FORMATS, start=1)}
QUARANTINED = {tag: _customer(tag, "zq", n) for n, tag in enumerate(FORMATS, start=11)}
MALFORMED = {tag: _customer(tag, "zm", n) for n, tag in enumerate(FORMATS, start=21)}
UNMAPPED = {tag: f"Zelda Unmapped-{tag.upper()} zu-{tag}@example.test" for tag in FORMATS}
"""End-customer text in columns the feed spec does not map: read, never stored."""
CSV_SPLIT_TAIL = "Suite Zm-Csv-Tail 9"
"""The part of an unquoted address after its comma: an extra field of a malformed CSV record."""

EXPECTED = {  # format -> (distributor, rows_loaded, rows_quarantined)
    "csv": ("priv_csv", 2, 2),
    "xlsx": ("priv_xlsx", 2, 1),
    "fw": ("priv_fw", 2, 2),
    "json": ("priv_json", 2, 1),
    "jsonl": ("priv_jsonl", 2, 2),
    "x12": ("priv_x12", 2, 2),
}

SPECS = {
    "priv_csv": r"""
id: priv_csv
name: Privacy CSV Distribution
country: US
currency: USD
file_patterns: ["PRIV_CSV_*.csv"]
format: {type: csv, delimiter: ","}
parsing: {date_formats: ["%m/%d/%Y"]}
columns:
  invoice_number: Invoice
  invoice_line: Line
  transaction_date: Date
  reseller_name: Reseller
  reseller_country: Country
  distributor_sku: Part
  quantity: Qty
  unit_price: Price
  end_customer_name: EC Name
  end_customer_email: EC Email
  end_customer_phone: EC Phone
  end_customer_address: EC Address
  end_customer_country: EC Country
natural_key: [invoice_number, invoice_line]
quarantine_fields: [Branch, EC Email]   # an allowed unmapped column; a mapped identity column stays redacted
""",
    "priv_xlsx": r"""
id: priv_xlsx
name: Privacy Workbook Distribution
country: GB
currency: GBP
file_patterns: ["PRIV_XLSX_*.xlsx"]
format: {type: xlsx, sheet: Sales, header_row: 2}
parsing: {date_formats: ["%Y-%m-%d"]}
columns:
  invoice_number: Invoice No
  invoice_line: Line No
  transaction_date: Invoice Date
  reseller_name: Customer
  reseller_country: Country
  distributor_sku: Part No
  quantity: Qty
  unit_price: Unit Price
  end_customer_name: Contact Name
  end_customer_email: Contact Email
  end_customer_phone: Contact Phone
  end_customer_address: Contact Address
natural_key: [invoice_number, invoice_line]
""",
    "priv_fw": r"""
id: priv_fw
name: Privacy Fixed-Width Distribution
country: SE
currency: SEK
file_patterns: ["PRIV_FW_*.txt"]
format:
  type: fixed_width
  record_prefix: "D"
  columns:
    - {name: inv, start: 2, width: 8}
    - {name: line, start: 10, width: 3}
    - {name: date, start: 13, width: 8}
    - {name: reseller, start: 21, width: 20}
    - {name: country, start: 41, width: 2}
    - {name: part, start: 43, width: 10}
    - {name: qty, start: 53, width: 6}
    - {name: price, start: 59, width: 10}
    - {name: ec_name, start: 69, width: 30}
    - {name: ec_email, start: 99, width: 30}
    - {name: ec_phone, start: 129, width: 20}
    - {name: ec_street, start: 149, width: 40}
    - {name: memo, start: 189, width: 50}
parsing: {date_formats: ["%Y%m%d"]}
columns:
  invoice_number: inv
  invoice_line: line
  transaction_date: date
  reseller_name: reseller
  reseller_country: country
  distributor_sku: part
  quantity: qty
  unit_price: price
  end_customer_name: ec_name
  end_customer_email: ec_email
  end_customer_phone: ec_phone
  end_customer_address: ec_street
natural_key: [invoice_number, invoice_line]
""",
    "priv_json": r"""
id: priv_json
name: Privacy JSON Distribution
country: AU
currency: AUD
file_patterns: ["priv_json_*.json"]
format: {type: json, records_path: data}
columns:
  invoice_number: invoice.number
  invoice_line: invoice.line
  transaction_date: invoice.date
  reseller_name: reseller.name
  reseller_country: reseller.country
  distributor_sku: item.sku
  quantity: item.quantity
  unit_price: item.unit_price
  end_customer_name: end_customer.name
  end_customer_email: end_customer.contact.email
  end_customer_phone: end_customer.contact.phone
  end_customer_address: end_customer.address.street
  end_customer_country: end_customer.address.country
natural_key: [invoice_number, invoice_line]
""",
    "priv_jsonl": r"""
id: priv_jsonl
name: Privacy JSON-lines Distribution
country: NZ
currency: NZD
file_patterns: ["priv_jsonl_*.jsonl"]
format: {type: jsonl}
columns:
  invoice_number: inv
  invoice_line: line
  transaction_date: date
  reseller_name: reseller
  reseller_country: country
  distributor_sku: sku
  quantity: qty
  unit_price: price
  end_customer_name: customer.full_name
  end_customer_email: customer.mail
  end_customer_phone: customer.tel
  end_customer_address: customer.street
natural_key: [invoice_number, invoice_line]
""",
    "priv_x12": r"""
id: priv_x12
name: Privacy EDI Distribution
country: US
currency: USD
file_patterns: ["PRIV_867_*.edi"]
format: {type: x12, transaction_set: "867", product_id_qualifiers: [VP], reseller_party_codes: [BY]}
natural_key: [invoice_number, invoice_line]
""",
}

FILE_NAMES = {
    "csv": "PRIV_CSV_20240108.csv",
    "xlsx": "PRIV_XLSX_20240108.xlsx",
    "fw": "PRIV_FW_20240108.txt",
    "json": "priv_json_20240108.json",
    "jsonl": "priv_jsonl_20240108.jsonl",
    "x12": "PRIV_867_20240108.edi",
}


# ---------------------------------------------------------------------------------------------
# The files: per format two valid lines (one the shared customer), one that fails validation, and
# (where the format can have one) a record the reader cannot read cleanly, all naming end customers.


def _csv(path: Path) -> None:
    header = "Invoice,Line,Date,Reseller,Country,Part,Qty,Price,Notes,Branch,EC Name,EC Email,EC Phone,EC Address,EC Country"

    def row(invoice: str, day: str, price: str, c: Customer, address: str | None = None) -> str:
        street = f'"{c.street}"' if address is None else address
        return f"{invoice},1,{day},Reseller One,US,P-1,2,{price},{UNMAPPED['csv']},BR-7,{c.name},{c.email},{c.phone},{street},US"

    s = SHARED_VARIANTS["csv"]
    lines = [
        header,
        row("C-1", "01/03/2024", "9.50", VALID["csv"]),
        f'SHARED-CSV,1,01/03/2024,Reseller One,US,P-1,2,9.50,,BR-7,"  {s.name}  ",{s.email},{s.phone},"{s.street}",US',
        row("C-3", "13/45/2024", "9.50", QUARANTINED["csv"]),  # date_unparseable
        # An unquoted comma in the address: one field too many (record_malformed).
        row("C-4", "01/03/2024", "9.50", MALFORMED["csv"], f"{MALFORMED['csv'].street}, {CSV_SPLIT_TAIL}"),
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _xlsx(path: Path) -> None:
    book = xlsxwriter.Workbook(str(path))
    sheet = book.add_worksheet("Sales")
    dates = book.add_format({"num_format": "yyyy-mm-dd"})
    sheet.write_row(0, 0, ["Weekly sell-out"])
    header = ["Invoice No", "Line No", "Invoice Date", "Customer", "Country", "Part No", "Qty", "Unit Price"]
    sheet.write_row(
        1, 0, [*header, "Contact Name", "Contact Email", "Contact Phone", "Contact Address", "Memo"]
    )
    records = [
        ("X-1", 12.0, VALID["xlsx"]),
        ("SHARED-XLSX", 12.0, SHARED_VARIANTS["xlsx"]),
        ("X-3", -12.0, QUARANTINED["xlsx"]),  # price_negative
    ]
    for index, (invoice, price, c) in enumerate(records, start=2):
        sheet.write_row(index, 0, [invoice, 1])
        sheet.write_datetime(index, 2, date(2024, 1, 3), dates)  # type: ignore[arg-type]
        sheet.write_row(index, 3, ["Reseller Two", "GB", "P-2", 3, price, *c.values, UNMAPPED["xlsx"]])
    book.close()


def _fw(path: Path) -> None:
    def record(invoice: str, day: str, c: Customer, *, short: bool = False) -> str:
        text = (
            f"D{invoice:<8}{'1':>3}{day:<8}{'Reseller Three':<20}SE{'P-3':<10}{'4':>6}{'99.00':>10}"
            f"{c.name:<30}{c.email:<30}{c.phone:<20}{c.street:<40}"
        )
        # A short line (record_malformed) ends inside the street; a full one carries an unmapped memo.
        return text[:160] if short else f"{text}{UNMAPPED['fw']:<50}"

    lines = [
        "H20240108 PRIVACY FIXED WIDTH",
        record("F-1", "20240103", VALID["fw"]),
        record("SHARED", "20240103", SHARED_VARIANTS["fw"]),
        record("F-3", "20241345", QUARANTINED["fw"]),  # date_unparseable
        record("F-4", "20240103", MALFORMED["fw"], short=True),
        "T0000004",
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _json_record(invoice: str, price: str, c: Customer, tag: str) -> dict:
    return {
        "invoice": {"number": invoice, "line": 1, "date": "2024-01-03"},
        "reseller": {"name": "Reseller Four", "country": "AU"},
        "item": {"sku": "P-4", "quantity": 5, "unit_price": price},
        "end_customer": {
            "name": c.name,
            "contact": {"email": c.email, "phone": c.phone},
            "address": {"street": c.street, "city": f"Zu City {tag}", "country": "AU"},
            "aliases": [UNMAPPED[tag]],
        },
        "notes": UNMAPPED[tag],
    }


def _json(path: Path) -> None:
    records = [
        _json_record("J-1", "7.25", VALID["json"], "json"),
        _json_record("SHARED-JSON", "7.25", SHARED_VARIANTS["json"], "json"),
        _json_record("J-3", "-7.25", QUARANTINED["json"], "json"),  # price_negative
    ]
    path.write_text(json.dumps({"data": records}, indent=1), encoding="utf-8")


def _jsonl(path: Path) -> None:
    def record(invoice: str, day: str, c: Customer) -> str:
        return json.dumps(
            {
                "inv": invoice,
                "line": "1",
                "date": day,
                "reseller": "Reseller Five",
                "country": "NZ",
                "sku": "P-5",
                "qty": "6",
                "price": "3.10",
                "customer": {"full_name": c.name, "mail": c.email, "tel": c.phone, "street": c.street},
                "comment": UNMAPPED["jsonl"],
            }
        )

    broken = record("L-4", "2024-01-03", MALFORMED["jsonl"])[:-20]  # not valid JSON: record_malformed
    lines = [
        record("L-1", "2024-01-03", VALID["jsonl"]),
        record("SHARED-JSONL", "2024-01-03", SHARED_VARIANTS["jsonl"]),
        record("L-3", "2024-02-31", QUARANTINED["jsonl"]),  # date_unparseable
        broken,
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _x12_set(
    control: str, lines: list[tuple[str, str, Customer]], *, segment_count_off_by: int = 0
) -> list[str]:
    """An 867 set, one PTD loop per (invoice, unit price, end customer) with an N1*EN loop."""
    body = [f"ST*867*{control}", "BPT*00*R1*20240108*SD", "CUR*SE*USD"]
    for number, (invoice, price, c) in enumerate(lines, start=1):
        street, _, place = c.street.partition(", ")
        city, _, postal = place.rpartition(" ")
        body += [
            "PTD*SS",
            "DTM*003*20240103",
            f"REF*IV*{invoice}",
            "N1*BY*RESELLER SIX*91*R66",
            "N3*1 RESELLER ROAD",
            "N4*BOSTON*MA*02110*US",
            f"N1*EN*{c.name}",
            f"N3*{street}",
            f"N4*{city or 'ZU TOWN'}**{postal or '99999'}*US",
            f"PER*IC*{c.name}*TE*{c.phone}*EM*{c.email}",
            "QTY*32*2*EA",
            f"LIN*{number}*VP*P-6",
            f"UIT*EA*{price}",
            f"AMT*1*{price}",
        ]
    body.append(f"CTT*{len(lines)}")
    return [*body, f"SE*{len(body) + 1 + segment_count_off_by}*{control}"]


def _x12(path: Path) -> None:
    segments = [
        "ISA*00*          *00*          *ZZ*SENDER         *ZZ*RECEIVER       *240108*1200*^*00501*000000007*0*P*>",
        "GS*PT*SENDER*RECEIVER*20240108*1200*70*X*005010",
        *_x12_set(
            "0001",
            [
                ("E-1", "2.50", VALID["x12"]),
                ("SHARED-X12", "2.50", SHARED_VARIANTS["x12"]),
                ("E-3", "-2.50", QUARANTINED["x12"]),  # price_negative
            ],
        ),
        # A segment outside any set is ignored (counted as stray_segment, named in the load's warnings).
        f"N1*EN*{MALFORMED['x12'].name}*92*{MALFORMED['x12'].email}",
        # A set whose SE count is wrong is rejected whole: its line item is quarantined (record_malformed).
        *_x12_set("0002", [("E-4", "2.50", MALFORMED["x12"])], segment_count_off_by=5),
        "GE*2*70",
        "IEA*1*000000007",
    ]
    path.write_text("~\n".join(segments) + "~\n", encoding="utf-8")


WRITERS = {"csv": _csv, "xlsx": _xlsx, "fw": _fw, "json": _json, "jsonl": _jsonl, "x12": _x12}


def _pii_needles() -> list[str]:
    """Every identity value written into the files, as lower-case, whitespace-collapsed text."""
    values: list[str] = [CSV_SPLIT_TAIL, *UNMAPPED.values(), *(f"Zu City {tag}" for tag in FORMATS)]
    for customers in (VALID, QUARANTINED, MALFORMED, SHARED_VARIANTS):
        for c in customers.values():
            values.extend(c.values)
            values.extend(c.street.split(", "))
    needles = {_normal(value) for value in values}
    # Phones also as their digits alone (a phone reformatted without its spaces is still a phone).
    needles |= {
        re.sub(r"\D", "", c.phone) for group in (VALID, QUARANTINED, MALFORMED) for c in group.values()
    }
    return sorted(needles)


def _normal(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().lower()


def _leaks(text: str, needles: list[str]) -> list[str]:
    normal = _normal(text)
    return [needle for needle in needles if needle in normal]


def _frame_text(frame: pl.DataFrame) -> str:
    return "\n".join(str(row) for row in frame.iter_rows())


# ---------------------------------------------------------------------------------------------


@dataclass
class Loaded:
    home: Path
    settings: ThroughlineSettings
    landing: dict[str, Path]

    @property
    def storage(self):
        return storage_for_home(self.settings.landing_dir, self.settings.warehouse_dir)

    def query(self, sql: str) -> pl.DataFrame:
        return self.queries(sql)[0]

    def queries(self, *sql: str) -> list[pl.DataFrame]:
        """Several queries on one connection (opening one builds every view)."""
        connection = connect(self.storage)
        try:
            return [connection.sql(statement).pl() for statement in sql]
        finally:
            connection.close()


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Loaded:
    home = tmp_path_factory.mktemp("privacy") / "home"
    settings = ThroughlineSettings(home=home)
    settings.ensure_layout()
    for distributor, text in SPECS.items():
        (settings.feeds_dir / f"{distributor}.yaml").write_text(text, encoding="utf-8")
    for tag, (distributor, _, _) in EXPECTED.items():
        folder = settings.inbox_dir / distributor
        folder.mkdir(parents=True)
        WRITERS[tag](folder / FILE_NAMES[tag])
    report = ingest_inbox(home)
    landing = {
        outcome.load.source_name: settings.home / outcome.load.source_file for outcome in report.outcomes
    }
    return Loaded(home, settings, landing)


def test_every_format_loads_and_quarantines_what_it_should(loaded: Loaded) -> None:
    loads = read_loads(loaded.storage)
    by_distributor = {row["distributor_id"]: row for row in loads.iter_rows(named=True)}
    assert set(by_distributor) == {distributor for distributor, _, _ in EXPECTED.values()}
    for tag, (distributor, rows_loaded, rows_quarantined) in EXPECTED.items():
        row = by_distributor[distributor]
        assert row["status"] == "loaded", (tag, row["error"])
        assert (row["rows_loaded"], row["rows_quarantined"]) == (rows_loaded, rows_quarantined), tag
    # The cases the files were built to exercise did happen (and their texts name no value).
    x12_skipped = json.loads(by_distributor["priv_x12"]["skipped_detail"])
    assert x12_skipped["stray_segment"] == 1
    assert "(the first: a 'N1' segment)" in by_distributor["priv_x12"]["warnings"]
    messages = loaded.query("select message from quarantine where rule = 'record_malformed'")["message"]
    assert any("record has 16 fields, the header has 15; dropped the last 1 field;" in m for m in messages)
    rules = loaded.query("select distributor_id, rule from quarantine order by all")
    assert set(rules.iter_rows()) == {
        ("priv_csv", "date_unparseable"),
        ("priv_csv", "record_malformed"),
        ("priv_xlsx", "price_negative"),
        ("priv_fw", "date_unparseable"),
        ("priv_fw", "record_malformed"),
        ("priv_json", "price_negative"),
        ("priv_jsonl", "date_unparseable"),
        ("priv_jsonl", "record_malformed"),
        ("priv_x12", "price_negative"),
        ("priv_x12", "record_malformed"),
    }


def test_valid_lines_carry_the_key_and_the_same_customer_one_key_across_formats(loaded: Loaded) -> None:
    lines = loaded.query("select distributor_id, invoice_number, end_customer_key from sellout")
    assert lines.height == 2 * len(FORMATS)
    assert lines["end_customer_key"].null_count() == 0
    assert lines["end_customer_key"].str.contains(r"^[0-9a-f]{64}$").all()
    shared = lines.filter(pl.col("invoice_number").str.starts_with("SHARED"))
    assert shared.height == len(FORMATS)
    assert shared["end_customer_key"].n_unique() == 1, "one customer, one key, whatever the format"
    others = lines.filter(~pl.col("invoice_number").str.starts_with("SHARED"))
    assert others["end_customer_key"].n_unique() == len(FORMATS), "different customers, different keys"
    assert shared["end_customer_key"][0] not in set(others["end_customer_key"])
    # The key is HMAC-SHA256 over name, e-mail, phone and address, lower-cased, whitespace collapsed,
    # joined by the unit separator (docs/privacy.md), so it can be recomputed from the documented rule.
    identity = UNIT_SEPARATOR.join(_normal(value) for value in SHARED.values)
    expected = hmac.new(TEST_SECRET.encode(), identity.encode(), hashlib.sha256).hexdigest()
    assert shared["end_customer_key"][0] == expected


def test_no_identity_in_any_catalog_view(loaded: Loaded, figures: Figures) -> None:
    needles = _pii_needles()
    views = view_names(loaded.storage)
    assert {"sellout", "quarantine", "loads", "partner_aliases"} <= set(views)
    frames = loaded.queries(*(f"select * from {view}" for view in views))
    leaks = {view: _leaks(_frame_text(frame), needles) for view, frame in zip(views, frames, strict=True)}
    figures.add(faults=len(needles), rows_checked=sum(frame.height for frame in frames))
    assert {view: found for view, found in leaks.items() if found} == {}, "views showing identity"
    quarantine = loaded.query("select distributor_id, rule, raw_record from quarantine")
    records = {(d, rule): json.loads(text) for d, rule, text in quarantine.iter_rows()}
    csv_record = records["priv_csv", "date_unparseable"]
    assert csv_record["EC Email"] == csv_record["EC Name"] == "<redacted>", "allowed, yet redacted"
    assert csv_record["Branch"] == "BR-7", "quarantine_fields shows an allowed unmapped column"
    assert csv_record["Date"] == "13/45/2024" and "Notes" not in csv_record, "unmapped columns stay out"
    # A CSV record split wrongly may hold identity under any column: nothing of it is shown.
    assert set(records["priv_csv", "record_malformed"].values()) == {"<redacted>"}
    for (_, _), record in records.items():
        assert not any(key.startswith(("end_customer.aliases", "notes", "comment", "memo")) for key in record)


def test_no_identity_in_any_table_or_file_outside_landing(loaded: Loaded, figures: Figures) -> None:
    needles = _pii_needles()
    tables_root = loaded.settings.warehouse_dir / "tables"
    tables = sorted(p.name for p in tables_root.iterdir() if (p / "_delta_log").is_dir())
    assert {"staging_sellout", "sellout", "quarantine", "loads", "landed_files", "partner_aliases"} <= set(
        tables
    )
    stored = {table: pl.read_delta(str(tables_root / table)) for table in tables}
    leaks = {table: _leaks(_frame_text(frame), needles) for table, frame in stored.items()}
    figures.add(faults=len(needles), rows_checked=sum(frame.height for frame in stored.values()))
    assert {table: found for table, found in leaks.items() if found} == {}, "tables holding identity"
    # Every other file of the home outside landing and the feed specs: Parquet files of every table
    # version (time travel), Delta logs and their statistics, metadata, the DuckDB catalog, scratch.
    files = [
        path
        for path in sorted(loaded.home.rglob("*"))
        if path.is_file() and path.relative_to(loaded.home).parts[0] not in ("landing", "feeds")
    ]
    leaks = {
        str(path.relative_to(loaded.home)): _leaks(
            _frame_text(pl.read_parquet(path))
            if path.suffix == ".parquet"
            else path.read_bytes().decode("utf-8", errors="replace"),
            needles,
        )
        for path in files
    }
    assert {name: found for name, found in leaks.items() if found} == {}, "files holding identity"
    catalog = loaded.settings.catalog_path
    assert catalog.is_file() and catalog.relative_to(loaded.home).parts[0] != "landing"
    assert len(files) > 20


def test_raw_values_stay_in_landing(loaded: Loaded) -> None:
    assert set(loaded.landing) == set(FILE_NAMES.values())
    for tag, name in FILE_NAMES.items():
        path = loaded.landing[name]
        assert path.relative_to(loaded.settings.landing_dir)
        if tag == "xlsx":
            with zipfile.ZipFile(path) as book:
                text = book.read("xl/sharedStrings.xml").decode("utf-8")
        else:
            text = path.read_text(encoding="utf-8")
        for c in (VALID[tag], QUARANTINED[tag]):
            for value in c.values:
                assert _normal(value) in _normal(text), (tag, value)
    assert not any(loaded.settings.inbox_dir.rglob("*.*")), "loaded files left the inbox"


# ---------------------------------------------------------------------------------------------
# Key rotation as the code supports it today (docs/privacy.md, "Rotating the key").

NEW_SECRET = "rotated-secret-fedcba9876543210-not-for-production"


def _context(settings: ThroughlineSettings, secret: str) -> IngestContext:
    return IngestContext.open(settings, CustomerKey(SecretStr(secret), "environment"))


def test_a_new_key_is_refused_and_reprocessing_landing_re_derives_every_key(
    loaded: Loaded, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    shutil.copytree(loaded.home, home, symlinks=True)
    settings = ThroughlineSettings(home=home)
    storage = storage_for_home(settings.landing_dir, settings.warehouse_dir)
    before = read_table(storage, "sellout").select("line_id", "end_customer_key").sort("line_id")

    with pytest.raises(KeyMismatchError, match="not the one this warehouse was built with"):
        ingest_files(_context(settings, NEW_SECRET), [])

    # Rotation today: clear the recorded fingerprint, then re-run every landed file with the new key.
    fingerprint = settings.warehouse_dir / "tables" / "_throughline" / KEY_FINGERPRINT
    fingerprint.unlink()
    context = _context(settings, NEW_SECRET)
    report = reprocess(context, landed_in_range(context, None, None, None))
    assert sorted(o.load.status for o in report.outcomes) == ["loaded"] * len(FORMATS)

    after = read_table(storage, "sellout").select("line_id", "end_customer_key").sort("line_id")
    assert after["line_id"].to_list() == before["line_id"].to_list(), "the same lines, re-keyed"
    old_keys = set(before["end_customer_key"])
    assert old_keys.isdisjoint(after["end_customer_key"]), "no line keeps an old-key hash"
    shared = UNIT_SEPARATOR.join(_normal(value) for value in SHARED.values)
    assert hmac.new(NEW_SECRET.encode(), shared.encode(), hashlib.sha256).hexdigest() in set(
        after["end_customer_key"]
    )
    staged = read_table(storage, "staging_sellout")["end_customer_key"]
    assert old_keys.isdisjoint(staged), "staging re-keyed too"
    assert fingerprint.read_text().strip() == context.customer_key.fingerprint
    # What rotation does not do: replaced Parquet files keep the old-key hashes on disk (Delta time
    # travel) until the tables are vacuumed.
    on_disk = pl.concat(
        [
            pl.read_parquet(path).select("end_customer_key")
            for path in (settings.warehouse_dir / "tables" / "sellout").rglob("*.parquet")
            if "_delta_log" not in path.parts  # a log checkpoint is Parquet too
        ]
    )
    assert not old_keys.isdisjoint(on_disk["end_customer_key"])
