"""The sample generator: deterministic bytes, specs that fit the files, formats as the issue asks."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import zipfile
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from xml.sax.saxutils import unescape

import polars as pl
import pytest

from sampledata.generator import (
    copy_feed_specs,
    feed_spec_paths,
    generate_into,
    generate_samples,
    write_unreadable_samples,
)
from sampledata.truth import RULES, SampleTruth, load_truth, write_truth
from schemas.feed_spec import FeedSpec, load_feed_spec, load_feed_specs

FEED_IDS = {
    "northwind_us",
    "northwind_us_inventory",
    "rheinland_de",
    "albion_uk",
    "nordic_fw",
    "pacific_jsonl",
    "keystone_edi",
    "keystone_edi_inventory",
}


def _digests(folder: Path) -> dict[str, tuple[str, int]]:
    return {
        str(path.relative_to(folder)): (
            hashlib.sha256(path.read_bytes()).hexdigest(),
            path.stat().st_mtime_ns,
        )
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def _specs() -> list[FeedSpec]:
    return [load_feed_spec(path) for path in feed_spec_paths()]


def test_same_seed_and_date_give_identical_bytes_and_mtimes(tmp_path: Path) -> None:
    first = generate_into(tmp_path / "one")
    second = generate_into(tmp_path / "two")
    assert _digests(tmp_path / "one" / "inbox") == _digests(tmp_path / "two" / "inbox")
    for path in (tmp_path / "one").rglob("*.*"):
        assert path.read_bytes() == (tmp_path / "two" / path.relative_to(tmp_path / "one")).read_bytes()
    assert first.to_json() == second.to_json()
    assert len(_digests(tmp_path / "one" / "inbox")) == len(first.files)


def test_another_seed_gives_other_bytes(tmp_path: Path, sample: tuple[Path, SampleTruth]) -> None:
    inbox, _ = sample
    generate_samples(tmp_path, seed=8)
    ours, theirs = _digests(inbox), _digests(tmp_path)
    assert ours.keys() == theirs.keys()
    assert all(ours[name][0] != theirs[name][0] for name in ours)


def test_every_spec_validates_and_copies(tmp_path: Path) -> None:
    assert {spec.id for spec in _specs()} == FEED_IDS
    copies = copy_feed_specs(tmp_path / "feeds")
    assert [path.name for path in copies] == [path.name for path in feed_spec_paths()]
    assert set(load_feed_specs(tmp_path / "feeds")) == FEED_IDS
    for spec in _specs():
        assert spec.period is not None
        assert spec.natural_key
        if spec.dataset == "sellout":
            provided = set(spec.columns) | set(spec.constants)
            needed = {
                "net_amount", "unit_price", "currency", "reseller_name", "reseller_postal_code",
                "reseller_country", "distributor_sku", "quantity", "transaction_date", "invoice_number",
                "invoice_line",
            }  # fmt: skip
            assert needed <= provided, spec.id
    with_end_customers = [spec.id for spec in _specs() if "end_customer_name" in spec.columns]
    assert len(with_end_customers) >= 2


def test_every_file_matches_exactly_one_spec_and_names_its_period(
    tmp_path: Path, sample: tuple[Path, SampleTruth]
) -> None:
    inbox, truth = sample
    specs = _specs()
    unreadable = write_unreadable_samples(tmp_path)
    files = [(path.parent.name, path.name) for path in sorted(inbox.rglob("*")) if path.is_file()]
    files += [(path.parent.name, path.name) for path in unreadable.values()]
    for distributor, name in files:
        matching = [spec for spec in specs if spec.matches(name)]
        assert len(matching) == 1, name
        spec = matching[0]
        assert spec.distributor_id == distributor
        assert spec.period is not None and spec.period.period_of(name) is not None
    for item in truth.files:
        spec = next(spec for spec in specs if spec.matches(item.file_name))
        assert spec.id == item.feed_id
        assert spec.period is not None and spec.period.period_of(item.file_name) == item.period_start


def test_truth_is_consistent(sample: tuple[Path, SampleTruth]) -> None:
    _, truth = sample
    for item in truth.files:
        assert item.rows_read == item.rows_loaded + item.rows_quarantined
        assert len(truth.bad_records_of(item.file_name)) == item.rows_quarantined
        if item.status == "superseded":
            assert item.rows_quarantined == 0 and item.superseded_by
    assert len({item.file_name for item in truth.files}) == len(truth.files)
    assert len(truth.bad_records) >= 8
    assert len({record.feed_id for record in truth.bad_records}) >= 4
    assert {record.rule for record in truth.bad_records} == set(RULES)
    assert len(truth.distributors) >= 5
    assert len(truth.currencies) >= 4
    partner_ids = {partner.partner_id for partner in truth.partners}
    for distributor, names in truth.reseller_names.items():
        assert set(names.values()) <= partner_ids
        assert len(set(names.values())) < len(names), f"{distributor} reports no name variants"
    spread = {partner for names in truth.reseller_names.values() for partner in names.values()}
    assert spread == partner_ids
    for distributor, totals in truth.sellout.items():
        lines = [line for line in truth.sellout_lines if line.distributor_id == distributor]
        assert totals.lines == len(lines) == len({(line.invoice_number, line.invoice_line) for line in lines})
        assert totals.quantity == sum(line.quantity for line in lines)
        assert totals.net_amount_total == sum(totals.net_amount_by_currency.values())
        for currency, amount in totals.net_amount_by_currency.items():
            assert amount == sum(line.net_amount for line in lines if line.currency == currency)
        assert all((line.quantity < 0) == (line.transaction_type == "return") for line in lines)
        assert all(line.net_amount == line.net_amount.quantize(Decimal("0.01")) for line in lines)


def test_truth_round_trips_through_json(tmp_path: Path, sample: tuple[Path, SampleTruth]) -> None:
    _, truth = sample
    path = write_truth(truth, tmp_path / "truth.json")
    assert load_truth(path) == truth
    assert json.loads(path.read_text(encoding="utf-8"))["sellout"]["nordic_fw"]["net_amount_total"]


def test_scenario_late_report_restatement_overlap(sample: tuple[Path, SampleTruth]) -> None:
    inbox, truth = sample
    assert truth.periods == [date(2026, 10, 19), date(2026, 10, 26), date(2026, 11, 2), date(2026, 11, 9)]
    assert all(period.weekday() == 0 for period in truth.periods)
    (late,) = truth.late_reports
    late_files = [item for item in truth.files if item.feed_id == late.feed_id]
    assert len(late_files) == 3 and late.missing_period not in {item.period_start for item in late_files}
    (restatement,) = truth.restatements
    original, restated = truth.file(restatement.original_file), truth.file(restatement.restated_file)
    assert original.period_start == restated.period_start
    assert (original.status, restated.status) == ("superseded", "loaded")
    folder = inbox / restatement.distributor_id
    assert (folder / restated.file_name).stat().st_mtime > (folder / original.file_name).stat().st_mtime
    (overlap,) = truth.overlaps
    assert truth.sellout[overlap.distributor_id].duplicate_lines == overlap.repeated_lines > 0
    mtimes = [(inbox / item.relative_path).stat().st_mtime for item in truth.files]
    assert mtimes == sorted(mtimes) and len(set(mtimes)) == len(mtimes)
    assert max(mtimes) < datetime(2026, 11, 17, tzinfo=UTC).timestamp()


def test_formats_are_what_the_issue_asks(sample: tuple[Path, SampleTruth]) -> None:
    inbox, _ = sample
    northwind = (inbox / "northwind_us" / "NW_SALES_20261026.csv").read_bytes()
    assert northwind.startswith(b"\xef\xbb\xbf")
    assert re.search(rb',"\d{1,3}(,\d{3})+\.\d{2}"', northwind)
    assert re.search(rb",\d{2}/\d{2}/2026,", northwind)

    rheinland = (inbox / "rheinland_de" / "RH_Abverkauf_20261019.csv").read_bytes()
    with pytest.raises(UnicodeDecodeError):
        rheinland.decode("utf-8")
    text = rheinland.decode("cp1252")
    assert "Währung" in text and re.search(r";-?\d{1,3}(\.\d{3})*,\d{2};", text)
    assert re.search(r";\d{2}\.\d{2}\.2026;", text)
    records = list(csv.reader(io.StringIO(text, newline=""), delimiter=";"))
    assert any("\n" in value for row in records for value in row)

    workbook = zipfile.ZipFile(inbox / "albion_uk" / "Albion_SellOut_20261019.xlsx")
    sheets = re.findall(r'<sheet name="([^"]+)"', workbook.read("xl/workbook.xml").decode())
    assert sheets == ["Sell-Out", "Notes"]
    rows = _sheet_rows(inbox / "albion_uk" / "Albion_SellOut_20261019.xlsx")
    assert rows[1]["A"].startswith("Albion") and 3 not in rows and rows[4]["A"] == "Invoice No"
    assert rows[max(rows)]["A"] == "TOTAL"

    nordic = (inbox / "nordic_fw" / "NORDIC_SO_20261026.txt").read_bytes().decode("iso-8859-1").splitlines()
    assert nordic[0].startswith("H") and nordic[-1].startswith("T")
    assert {line[0] for line in nordic[1:-1]} == {"D"} and {len(line) for line in nordic} == {101}
    assert int(nordic[-1][1:8]) == len(nordic) - 2

    pacific = (inbox / "pacific_jsonl" / "pacific_sellout_20261026.jsonl").read_text(encoding="utf-8")
    record = json.loads(pacific.splitlines()[0])
    assert isinstance(record["reseller"]["address"], dict) and isinstance(record["end_customer"], dict)


def test_workbook_numbers_read_back_as_reported(sample: tuple[Path, SampleTruth]) -> None:
    """Read as text (fastexcel, as polars does): 2-decimal amounts, whole quantities."""
    inbox, truth = sample
    for item in truth.files:
        if item.feed_id != "albion_uk":
            continue
        frame = pl.read_excel(
            inbox / item.relative_path, sheet_name="Sell-Out", read_options={"header_row": 3}
        )
        frame = frame.head(frame.height - 1).cast(pl.String)
        assert frame.height == item.rows_read
        assert all(re.fullmatch(r"-?\d+(\.\d{1,2})?", value) for value in frame["Line Value"])
        assert all(re.fullmatch(r"-?\d+", value) for value in frame["Qty"])


def test_unreadable_samples_cannot_be_read(tmp_path: Path) -> None:
    paths = write_unreadable_samples(tmp_path)
    assert set(paths) == {"random_bytes", "truncated_xlsx", "wrong_encoding"}
    with pytest.raises(UnicodeDecodeError):
        paths["random_bytes"].read_bytes().decode("utf-8")
    with pytest.raises(zipfile.BadZipFile):
        zipfile.ZipFile(paths["truncated_xlsx"])
    with pytest.raises(UnicodeDecodeError):
        paths["wrong_encoding"].read_bytes().decode("utf-8-sig")
    again = write_unreadable_samples(tmp_path / "again")
    assert all(path.read_bytes() == again[key].read_bytes() for key, path in paths.items())


def _sheet_rows(path: Path, sheet: int = 1) -> dict[int, dict[str, str]]:
    """Sheet row -> column letter -> cell text, read straight from the workbook XML."""
    archive = zipfile.ZipFile(path)
    shared = [
        unescape(re.sub(r"<[^>]+>", "", item))
        for item in re.findall(r"<si>(.*?)</si>", archive.read("xl/sharedStrings.xml").decode())
    ]
    rows: dict[int, dict[str, str]] = {}
    xml = archive.read(f"xl/worksheets/sheet{sheet}.xml").decode()
    for number, body in re.findall(r'<row r="(\d+)"[^>]*>(.*?)</row>', xml):
        cells = {}
        for column, attributes, value in re.findall(
            r'<c r="([A-Z]+)\d+"([^>]*)>(?:<f>.*?</f>)?<v>(.*?)</v>', body
        ):
            cells[column] = shared[int(value)] if 't="s"' in attributes else value
        rows[int(number)] = cells
    return rows
