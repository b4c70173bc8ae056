"""Re-derive the sample's truth from the bytes with a small reference reader driven by the feed specs.

Independent of how the generator computes its truth: it reads every file as its spec says, applies
the validation rules in the pipeline's order, supersedes by period and mtime, de-duplicates by the
natural key, and must land on exactly the generator's numbers.
"""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from xml.sax.saxutils import unescape

from sampledata.generator import feed_spec_paths
from sampledata.truth import SampleTruth
from schemas.feed_spec import (
    CsvFormat,
    ExcelFormat,
    FeedSpec,
    FixedWidthFormat,
    JsonFormat,
    X12Format,
    load_feed_spec,
)

CURRENCIES = {"USD", "CAD", "EUR", "GBP", "SEK", "NOK", "DKK", "AUD", "NZD", "CHF"}
COUNTRIES = {"US", "CA", "DE", "AT", "CH", "GB", "IE", "SE", "NO", "DK", "FI", "AU", "NZ"}
MALFORMED = "_malformed"


def _read_csv(path: Path, spec: FeedSpec, fmt: CsvFormat) -> list[tuple[int, dict[str, Any]]]:
    text = path.read_bytes().decode(fmt.encoding)
    rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=fmt.delimiter))
    header = [name.strip() for name in rows[0]]
    return [
        (index, dict(zip(header, row, strict=True)) if len(row) == len(header) else {MALFORMED: True})
        for index, row in enumerate(rows[1:], start=1)
    ]


def _read_xlsx(path: Path, spec: FeedSpec, fmt: ExcelFormat) -> list[tuple[int, dict[str, Any]]]:
    archive = zipfile.ZipFile(path)
    names = re.findall(r'<sheet name="([^"]+)"', archive.read("xl/workbook.xml").decode())
    sheet = names.index(fmt.sheet) + 1 if isinstance(fmt.sheet, str) else fmt.sheet + 1
    shared = [
        unescape(re.sub(r"<[^>]+>", "", item))
        for item in re.findall(r"<si>(.*?)</si>", archive.read("xl/sharedStrings.xml").decode())
    ]
    styles = archive.read("xl/styles.xml").decode()
    rows: dict[int, dict[str, str]] = {}
    xml = archive.read(f"xl/worksheets/sheet{sheet}.xml").decode()
    for number, body in re.findall(r'<row r="(\d+)"[^>]*>(.*?)</row>', xml):
        cells = {}
        for column, attributes, value in re.findall(r'<c r="([A-Z]+)\d+"([^>]*)><v>(.*?)</v>', body):
            if 't="s"' in attributes:
                cells[column] = shared[int(value)]
            elif 's="' in attributes and "dd/mm/yyyy" in styles and _is_date_style(attributes, styles):
                cells[column] = (date(1899, 12, 30) + timedelta(days=float(value))).isoformat()
            else:
                # xlsxwriter writes 17 significant digits (94.01000000000001); readers see the double.
                shortest = repr(float(value))
                cells[column] = shortest[:-2] if shortest.endswith(".0") else shortest
        rows[int(number)] = cells
    header = rows[fmt.header_row]
    data = [number for number in sorted(rows) if number > fmt.header_row]
    data = data[: len(data) - fmt.footer_rows]
    return [(n, {header[c]: rows[n].get(c, "") for c in header}) for n in data]


def _is_date_style(attributes: str, styles: str) -> bool:
    index = int(re.search(r's="(\d+)"', attributes).group(1))  # type: ignore[union-attr]
    cell_xfs = re.search(r"<cellXfs[^>]*>(.*?)</cellXfs>", styles, re.S).group(1)  # type: ignore[union-attr]
    xf = re.findall(r"<xf [^>]*>", cell_xfs)[index]
    num_fmt = re.search(r'numFmtId="(\d+)"', xf).group(1)  # type: ignore[union-attr]
    return bool(re.search(rf'numFmtId="{num_fmt}" formatCode="dd/mm/yyyy"', styles))


def _read_fixed(path: Path, spec: FeedSpec, fmt: FixedWidthFormat) -> list[tuple[int, dict[str, Any]]]:
    lines = path.read_bytes().decode(fmt.encoding).splitlines()
    data = [line for line in lines if fmt.record_prefix is None or line.startswith(fmt.record_prefix)]
    return [
        (index, {c.name: line[c.start - 1 : c.start - 1 + c.width] for c in fmt.columns})
        for index, line in enumerate(data, start=1)
    ]


def _read_jsonl(path: Path, spec: FeedSpec, fmt: JsonFormat) -> list[tuple[int, dict[str, Any]]]:
    out: list[tuple[int, dict[str, Any]]] = []
    for index, line in enumerate(path.read_bytes().decode(fmt.encoding).splitlines(), start=1):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            out.append((index, {MALFORMED: True}))
            continue
        flat: dict[str, Any] = {}
        for source in spec.columns.values():
            value: Any = record
            for part in source.split("."):
                value = value.get(part) if isinstance(value, dict) else None
            flat[source] = "" if value is None else str(value)
        out.append((index, flat))
    return out


def _iso(yyyymmdd: str) -> str:
    return f"{yyyymmdd[:4]}-{yyyymmdd[4:6]}-{yyyymmdd[6:]}"


def _read_x12(path: Path, spec: FeedSpec) -> list[tuple[int, dict[str, Any]]]:
    """The sample's X12 layout read by hand: 867 line items (QTY, LIN, UIT, AMT under a PTD loop) or
    852 positions (LIN with ZA under an N1 store); every canonical field present, "" when absent."""
    segments = [s.strip().split("*") for s in path.read_text(encoding="ascii").split("~") if s.strip()]
    blank = dict.fromkeys(spec.columns.values(), "")
    out: list[tuple[int, dict[str, Any]]] = []
    context: dict[str, str] = {}
    for segment in segments:
        tag = segment[0]
        if tag == "CUR":
            context["currency"] = segment[2]
        elif tag == "XQ":
            context["snapshot_date"] = _iso(segment[3])
        elif tag == "PTD":
            context["transaction_type"] = "return" if segment[1] in ("BN", "RV") else "sale"
        elif tag == "DTM" and segment[1] == "003":
            context["transaction_date"] = _iso(segment[2])
        elif tag == "REF" and segment[1] == "IV":
            context["invoice_number"] = segment[2]
        elif tag == "N1":
            context["location_id" if segment[1] == "RL" else "reseller_name"] = segment[
                4 if segment[1] == "RL" else 2
            ]
        elif tag == "N4":
            context["reseller_postal_code"], context["reseller_country"] = segment[3], segment[4]
        elif tag == "QTY":
            out.append(
                (len(out) + 1, {**blank, **context, "quantity": segment[2], "unit_of_measure": segment[3]})
            )
        elif tag == "LIN" and spec.dataset == "sellout":
            out[-1][1].update(invoice_line=segment[1], distributor_sku=segment[3])
        elif tag == "LIN":
            out.append(
                (len(out) + 1, {**blank, **context, "distributor_sku": segment[3], "unit_of_measure": "EA"})
            )
        elif tag == "UIT":
            out[-1][1]["unit_price"] = segment[2]
        elif tag == "AMT":
            out[-1][1]["net_amount"] = segment[2]
        elif tag == "ZA":
            out[-1][1]["quantity_on_hand" if segment[1] == "QA" else "quantity_on_order"] = segment[2]
    return out


def _records(path: Path, spec: FeedSpec) -> list[tuple[int, dict[str, Any]]]:
    fmt = spec.format
    if isinstance(fmt, X12Format):
        return _read_x12(path, spec)
    if isinstance(fmt, CsvFormat):
        return _read_csv(path, spec, fmt)
    if isinstance(fmt, ExcelFormat):
        return _read_xlsx(path, spec, fmt)
    if isinstance(fmt, FixedWidthFormat):
        return _read_fixed(path, spec, fmt)
    return _read_jsonl(path, spec, fmt)


def _number(text: str, spec: FeedSpec) -> Decimal | None:
    if spec.parsing.thousands_separator:
        text = text.replace(spec.parsing.thousands_separator, "")
    try:
        return Decimal(text.replace(spec.parsing.decimal_separator, "."))
    except InvalidOperation:
        return None


def _date(text: str, spec: FeedSpec) -> date | None:
    for pattern in spec.parsing.date_formats:
        try:
            return datetime.strptime(text, pattern).date()
        except ValueError:
            continue
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def _validate(record: dict[str, str], spec: FeedSpec, load_day: date) -> str | None:
    """The first rule `record` fails, in the pipeline's order, or None."""
    required = ("transaction_date", "distributor_sku", "quantity")
    if spec.dataset == "inventory":
        required = ("snapshot_date", "distributor_sku", "quantity_on_hand")
    if any(len(record.get(name) or "") > 4096 for name in spec.columns):
        return "field_too_long"
    if any(not record.get(name) for name in required):
        return "required_missing"
    day = _date(record[required[0]], spec)
    if day is None:
        return "date_unparseable"
    if day < date(2000, 1, 1) or day > load_day + timedelta(days=31):
        return "date_implausible"
    quantity = _number(record[required[2]], spec)
    if quantity is None or quantity != quantity.to_integral_value():
        return "quantity_not_integral"
    if spec.dataset == "inventory":
        return None
    price, amount = _number(record["unit_price"], spec), _number(record["net_amount"], spec)
    if price is None or amount is None:
        return "number_unparseable"
    if price < 0:
        return "price_negative"
    if spec.unit_factors and record["unit_of_measure"] not in spec.unit_factors:
        return "unit_unknown"
    types = spec.transaction_types
    if types and record["transaction_type"] not in [*types.sale, *types.return_]:
        return "transaction_type_unknown"
    if record["currency"] not in CURRENCIES:
        return "currency_invalid"
    if record["reseller_country"] not in COUNTRIES or record.get("end_customer_country", "") not in {
        "",
        *COUNTRIES,
    }:
        return "country_invalid"
    return None


def test_reference_reader_reproduces_the_truth(sample: tuple[Path, SampleTruth]) -> None:
    inbox, truth = sample
    specs = [load_feed_spec(path) for path in feed_spec_paths()]
    files = sorted(
        (path for path in inbox.rglob("*") if path.is_file()),
        key=lambda path: (path.stat().st_mtime, path.name),
    )
    latest: dict[tuple[str, date], Path] = {}
    loads: dict[str, tuple[str, int, int]] = {}
    bad: set[tuple[str, int, str]] = set()
    kept: dict[Path, list[dict[str, str]]] = {}
    for path in files:
        (spec,) = [spec for spec in specs if spec.matches(path.name)]
        assert spec.period is not None
        period = spec.period.period_of(path.name)
        assert period is not None
        latest[(spec.id, period)] = path  # files come in arrival order: the last one wins
        good = []
        for row, raw in _records(path, spec):
            if raw.get(MALFORMED):
                bad.add((path.name, row, "record_malformed"))
                continue
            record = {field: str(raw[source]).strip() for field, source in spec.columns.items()}
            record.update({field: str(value) for field, value in spec.constants.items()})
            rule = _validate(record, spec, truth.as_of)
            if rule:
                bad.add((path.name, row, rule))
            else:
                good.append(record)
        kept[path] = good
        loads[path.name] = (spec.id, len(_records(path, spec)), len(good))
    assert bad == {(record.file_name, record.source_row, record.rule) for record in truth.bad_records}
    assert loads == {item.file_name: (item.feed_id, item.rows_read, item.rows_loaded) for item in truth.files}
    superseded = {path.name for path in files} - {path.name for path in latest.values()}
    assert superseded == {item.file_name for item in truth.files if item.status == "superseded"}

    totals: dict[str, dict[str, Any]] = {}
    for (feed_id, _), path in sorted(latest.items(), key=lambda item: item[1].stat().st_mtime):
        spec = next(spec for spec in specs if spec.id == feed_id)
        seen = totals.setdefault(feed_id, {"keys": {}, "names": set()})
        for record in kept[path]:
            key = tuple(record[name] for name in spec.natural_key)
            if key in seen["keys"]:
                assert seen["keys"][key] == record, key
                continue
            seen["keys"][key] = record
            if spec.dataset == "sellout":
                seen["names"].add(record["reseller_name"])
    for feed_id, seen in totals.items():
        spec = next(spec for spec in specs if spec.id == feed_id)
        records = list(seen["keys"].values())
        if spec.dataset == "inventory":
            expected = truth.inventory[feed_id]
            assert len(records) == expected.rows
            assert (
                sum(int(_number(r["quantity_on_hand"], spec) or 0) for r in records)
                == expected.quantity_on_hand
            )
            continue
        quantity, by_currency = 0, {}
        for record in records:
            sign = (
                -1
                if spec.transaction_types and record["transaction_type"] in spec.transaction_types.return_
                else 1
            )
            factor = spec.unit_factors.get(record.get("unit_of_measure", ""), 1)
            quantity += sign * factor * int(_number(record["quantity"], spec) or 0)
            amount = sign * (_number(record["net_amount"], spec) or Decimal(0))
            by_currency[record["currency"]] = by_currency.get(record["currency"], Decimal(0)) + amount
        expected_sellout = truth.sellout[spec.distributor_id]
        assert len(records) == expected_sellout.lines
        assert quantity == expected_sellout.quantity
        assert by_currency == expected_sellout.net_amount_by_currency
        assert seen["names"] == set(truth.reseller_names[spec.distributor_id])
