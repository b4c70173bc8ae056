"""The X12 reader: the real 867/852 samples read into hand-checked records, other transaction sets
refused, return and price-adjustment signs, envelope checks that reject one set and keep the rest,
streaming across chunk boundaries, delimiters that are not ASCII, values finished on string views
matching the expressions they replace, and property tests (round trip with random delimiters,
fuzzed bytes never crash or hang the reader)."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from unittest import mock

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.feed_spec import X12Format, load_feed_spec
from schemas.limits import ReadLimits
from tests.guarantees import Figures
from transforms.normalize import normalize_records
from transforms.readers import x12 as x12_module
from transforms.readers.common import READ_ERROR, ROW_KIND, SOURCE_ROW, UnreadableFileError
from transforms.readers.x12 import (
    INVENTORY_COLUMNS,
    SELLOUT_COLUMNS,
    read_delimiters,
    read_x12,
    sniff_transaction_set,
    x12_spec,
)

REAL = Path(__file__).resolve().parents[2] / "data" / "realdata" / "edi_x12" / "oopfactory_x12parser"
LIMITS = ReadLimits()


def read(path: Path, work: Path, **spec: object) -> tuple[pl.DataFrame, dict[str, int], list[str]]:
    result = read_x12(path, X12Format(type="x12", **spec), work, LIMITS)
    return result.records.collect(), result.skipped, result.notes


def present(record: dict[str, object]) -> dict[str, object]:
    return {name: value for name, value in record.items() if value is not None}


def write(tmp_path: Path, text: str | bytes, name: str = "feed.edi") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


# ---------------------------------------------------------------------------------------------
# The real samples (tests/data/realdata/edi_x12), expected values read off the files by hand.


def test_real_867_example2_stock_sale(tmp_path: Path) -> None:
    frame, skipped, notes = read(REAL / "867_Example2.txt", tmp_path)

    assert frame.columns == [*SELLOUT_COLUMNS, SOURCE_ROW, READ_ERROR, ROW_KIND]
    # PTD^SS with N1^ST SOUTHEAST HOSPITAL / N4^CHARLESTON^SC^29401, QTY^32^15^BX,
    # LIN^^MG^1000^UK^..., UIT^BX^18.25, AMT^1^273.75; header DTM^327^20000331.
    assert [present(r) for r in frame.to_dicts()] == [
        {
            "transaction_date": "2000-03-31",
            "transaction_type": "sale",
            "transfer_code": "SS",
            "reseller_name": "SOUTHEAST HOSPITAL",
            "reseller_postal_code": "29401",
            "distributor_sku": "1000",
            "quantity": "15",
            "unit_of_measure": "BX",
            "unit_price": "18.25",
            "net_amount": "273.75",
            "reported_quantity": "15",
            "reseller_id": "89KGH1140",
            "reseller_city": "CHARLESTON",
            "reseller_state": "SC",
            SOURCE_ROW: 1,
            ROW_KIND: "data",
        }
    ]
    assert skipped["empty_transaction_set"] == 0 and skipped["stray_segment"] == 0
    assert notes == []


def test_real_867_example3_summary_line_carries_no_units(tmp_path: Path) -> None:
    frame, _, notes = read(REAL / "867_Example3.txt", tmp_path)

    # PTD^SU (summary): labelled other, quantity 0, QTY^32^50 kept as reported_quantity.
    assert [present(r) for r in frame.to_dicts()] == [
        {
            "transaction_date": "2001-03-31",
            "transaction_type": "other",
            "transfer_code": "SU",
            "quantity": "0",
            "net_amount": "1273.75",
            "reported_quantity": "50",
            "reseller_id": "89KGH1140",
            SOURCE_ROW: 1,
            ROW_KIND: "data",
        }
    ]
    assert any("SU (1)" in note and "'other'" in note for note in notes)


def test_real_867_spec_overrides_transfer_type_and_amount(tmp_path: Path) -> None:
    frame, _, _ = read(
        REAL / "867_Example3.txt", tmp_path, transfer_types={"SU": "sale"}, amount_qualifiers=["1"]
    )

    record = frame.row(0, named=True)
    assert (record["transaction_type"], record["quantity"], record["net_amount"]) == ("sale", "50", None)


def test_real_867_parties_by_spec_from_header_and_ptd_loop(tmp_path: Path) -> None:
    frame, _, _ = read(
        REAL / "867_Example2.txt", tmp_path, reseller_party_codes=["BG"], end_customer_party_codes=["ST"]
    )

    # N1^BG^HC BUYING GROUP^21^097YT5930 is in the header; N1^ST (with N3, N4) in the PTD loop.
    record = frame.row(0, named=True)
    assert (record["reseller_name"], record["reseller_id"], record["reseller_postal_code"]) == (
        "HC BUYING GROUP",
        "097YT5930",
        None,
    )
    assert (record["end_customer_name"], record["end_customer_address"]) == (
        "SOUTHEAST HOSPITAL",
        "155 FULTON AVENUE, CHARLESTON SC 29401",
    )


def test_real_852_three_positions_at_two_locations(tmp_path: Path) -> None:
    frame, _, notes = read(REAL / "852_AftermarketExample.txt", tmp_path, transaction_set="852")

    assert frame.columns == [*INVENTORY_COLUMNS, SOURCE_ROW, READ_ERROR, ROW_KIND]
    # XQ*G*950613 (YYMMDD); N1*RL**92*007061617: LIN VP P96A ZA QA 10, QP 6; LIN VP P99A QA 77;
    # N1*RL**92*007061618: LIN VP P99A ZA QO 4 (out of stock: not a column, so no on-hand).
    assert [present(r) for r in frame.to_dicts()] == [
        {
            "snapshot_date": "1995-06-13",
            "distributor_sku": "P96A",
            "location_id": "007061617",
            "quantity_on_hand": "10",
            "quantity_on_order": "6",
            "unit_of_measure": "EA",
            SOURCE_ROW: 1,
            ROW_KIND: "data",
        },
        {
            "snapshot_date": "1995-06-13",
            "distributor_sku": "P99A",
            "location_id": "007061617",
            "quantity_on_hand": "77",
            "unit_of_measure": "EA",
            SOURCE_ROW: 2,
            ROW_KIND: "data",
        },
        {
            "snapshot_date": "1995-06-13",
            "distributor_sku": "P99A",
            "location_id": "007061618",
            "unit_of_measure": "EA",
            SOURCE_ROW: 3,
            ROW_KIND: "data",
        },
    ]
    assert notes == []


def test_real_852_buyer_part_number_by_spec(tmp_path: Path) -> None:
    frame, _, _ = read(
        REAL / "852_AftermarketExample.txt", tmp_path, transaction_set="852", product_id_qualifiers=["BP"]
    )

    assert frame["distributor_sku"].to_list() == ["54-P96A", "54-P99A", "54-P99A"]


@pytest.mark.parametrize(
    ("name", "holds"),
    [
        ("270__5010_Example1_IG_0x1D.txt", "270 (eligibility inquiry)"),
        ("810_Example3_MultiInvoice.txt", "810 (invoice)"),
        ("810_Example5_Walmart.txt", "810 (invoice)"),
        ("846_Example1.txt", "846 (inventory inquiry/advice)"),
        ("846_Example2.txt", "846 (inventory inquiry/advice)"),
    ],
)
def test_real_other_transaction_sets_are_refused(tmp_path: Path, name: str, holds: str) -> None:
    with pytest.raises(UnreadableFileError, match=r"holds an X12 (.+): Throughline reads 867") as refusal:
        read(REAL / name, tmp_path)

    assert holds in str(refusal.value) and name in str(refusal.value)


@pytest.mark.parametrize(
    ("name", "element", "component", "segment", "transaction_set"),
    [
        ("270__5010_Example1_IG_0x1D.txt", "*", ":", "\x1d", "270"),
        ("810_Example5_Walmart.txt", "*", ">", "\r", "810"),
        ("846_Example1.txt", "~", ">", "}", "846"),
        ("846_Example2.txt", "~", ">", "*", "846"),
        ("852_AftermarketExample.txt", "*", ">", "^", "852"),
        ("867_Example2.txt", "^", ">", "~", "867"),
    ],
)
def test_real_delimiters_and_sniff(
    name: str, element: str, component: str, segment: str, transaction_set: str
) -> None:
    head = (REAL / name).read_bytes().decode("utf-8-sig").lstrip()
    delimiters = read_delimiters(head, REAL / name)

    assert (delimiters.element, delimiters.component, delimiters.segment) == (element, component, segment)
    assert sniff_transaction_set(REAL / name) == transaction_set


def test_real_852_refused_by_an_867_spec(tmp_path: Path) -> None:
    with pytest.raises(UnreadableFileError, match=r"holds an X12 852 .* format.transaction_set: '852'"):
        read(REAL / "852_AftermarketExample.txt", tmp_path)


# ---------------------------------------------------------------------------------------------
# Hand-written documents.

ISA = "ISA*00*          *00*          *ZZ*SENDER         *ZZ*RECEIVER       *240105*1200*^*00501*{ctl:09d}*0*P*>~"


def envelope(
    sets: list[list[str]], *, isa: int = 7, gs: int = 70, se_fix: dict[int, int] | None = None
) -> str:
    """An interchange around transaction sets given as segment lists from ST to just before SE."""
    segments = [ISA.format(ctl=isa)[:-1], f"GS*PT*SENDER*RECEIVER*20240105*1200*{gs}*X*005010"]
    for number, body in enumerate(sets):
        count = len(body) + 1 + (se_fix or {}).get(number, 0)
        control = body[0].split("*")[2]
        segments += [*body, f"SE*{count}*{control}"]
    segments += [f"GE*{len(sets)}*{gs}", f"IEA*1*{isa:09d}"]
    return "~\n".join(segments) + "~\n"


def sale_set(control: str, lines: list[tuple[str, str, str, str]]) -> list[str]:
    """An 867 set: one PTD loop per (transfer code, sku, quantity, amount)."""
    body = [f"ST*867*{control}", "BPT*00*R1*20240105*SD", "CUR*SE*EUR"]
    for number, (code, sku, quantity, amount) in enumerate(lines, start=1):
        body += [
            f"PTD*{code}",
            "DTM*003*20240103",
            f"REF*IV*INV-{control}-{number}",
            "N1*BY*ACME RESELLER*91*R77",
            "N3*1 MAIN ST",
            "N4*BERLIN**10115*DE",
            f"QTY*32*{quantity}*EA",
            f"LIN*{number}*VP*{sku}",
            "UIT*EA*2.50",
            f"AMT*1*{amount}",
        ]
    return [*body, f"CTT*{len(lines)}"]


def test_returns_are_negative_and_price_adjustments_carry_no_units(tmp_path: Path) -> None:
    lines = [
        ("SS", "A1", "4", "10.00"),
        ("BN", "A1", "2", "5.00"),
        ("RV", "A2", "-3", "-7.50"),
        ("PA", "A1", "4", "-1.20"),
    ]
    path = write(tmp_path, envelope([sale_set("0001", lines)]))

    frame, skipped, notes = read(path, tmp_path / "work")

    assert frame.select(
        "transfer_code", "transaction_type", "quantity", "net_amount", "reported_quantity"
    ).rows() == [
        ("SS", "sale", "4", "10.00", "4"),
        ("BN", "return", "-2", "-5.00", "2"),
        ("RV", "return", "-3", "-7.50", "-3"),
        ("PA", "price_adjustment", "0", "-1.20", "4"),
    ]
    first = frame.row(0, named=True)
    assert (first["transaction_date"], first["invoice_number"], first["invoice_line"]) == (
        "2024-01-03",
        "INV-0001-1",
        "1",
    )
    assert (first["reseller_name"], first["reseller_postal_code"], first["reseller_country"]) == (
        "ACME RESELLER",
        "10115",
        "DE",
    )
    assert (first["currency"], first["unit_price"], first["unit_of_measure"]) == ("EUR", "2.50", "EA")
    assert frame[SOURCE_ROW].to_list() == [1, 2, 3, 4]
    assert frame[READ_ERROR].null_count() == 4
    assert notes == [] and skipped["empty_transaction_set"] == 0


def test_normalized_return_is_negative_and_price_adjustment_has_no_units(tmp_path: Path) -> None:
    lines = [("SS", "A1", "4", "10.00"), ("BN", "A1", "2", "5.00"), ("PA", "A1", "4", "-1.20")]
    path = write(tmp_path, envelope([sale_set("0001", lines)]))
    spec = x12_spec("867")

    records = read_x12(path, spec.format, tmp_path / "work", LIMITS).records
    canonical = normalize_records(records, spec, customer_key_secret="k" * 32).collect()

    assert canonical.select("transaction_type", "quantity", "net_amount").rows() == [
        ("sale", 4, Decimal("10.00")),
        ("return", -2, Decimal("-5.00")),
        ("price_adjustment", 0, Decimal("-1.20")),
    ]


def test_a_set_failing_its_envelope_check_is_rejected_whole(tmp_path: Path) -> None:
    good = sale_set("0001", [("SS", "A1", "1", "2.50")])
    bad = sale_set("0002", [("SS", "B1", "1", "2.50"), ("SS", "B2", "2", "5.00")])
    path = write(tmp_path, envelope([good, bad, sale_set("0003", [])], se_fix={1: -1}))

    frame, skipped, notes = read(path, tmp_path / "work")

    assert frame["distributor_sku"].to_list() == ["A1", "B1", "B2"]
    errors = frame[READ_ERROR].to_list()
    assert errors[0] is None
    assert (
        errors[1]
        == errors[2]
        == (
            "transaction set ST02=0002 (GS06=70, ISA13=000000007) fails its envelope check: "
            "SE01 says '24' segments, found 25"
        )
    )
    assert notes == [f"{errors[1]}; its 2 line item(s) are rejected with it (quarantined)"]
    assert skipped["empty_transaction_set"] == 1


def test_control_number_and_count_mismatches_are_named(tmp_path: Path) -> None:
    text = envelope([sale_set("0001", [("SS", "A1", "1", "2.50")])])
    text = text.replace("SE*15*0001", "SE*15*0009").replace("CTT*1", "CTT*5").replace("GE*1*70", "GE*1*71")
    text = text.replace("IEA*1*000000007", "IEA*2*000000008")

    frame, _, _ = read(write(tmp_path, text), tmp_path / "work")

    assert frame[READ_ERROR][0] == (
        "transaction set ST02=0001 (GS06=70, ISA13=000000007) fails its envelope check: "
        "SE02 '0009' does not match ST02; CTT01 says '5' line items, found 1; GE02 '71' does not match "
        "GS06 '70'; IEA02 '000000008' does not match ISA13 '000000007'; IEA01 says '2' functional groups, found 1"
    )


def test_a_truncated_file_rejects_its_open_set(tmp_path: Path) -> None:
    text = envelope([sale_set("0001", [("SS", "A1", "1", "2.50"), ("SS", "A2", "1", "2.50")])])
    cut = text[: text.index("QTY*32*1*EA~\nLIN*2")]

    frame, _, _ = read(write(tmp_path, cut), tmp_path / "work")

    assert frame.height == 1
    assert "it has no SE trailer" in frame[READ_ERROR][0]
    assert "its functional group GS06=70 has no GE trailer" in frame[READ_ERROR][0]


def test_a_set_of_another_type_inside_an_867_file_is_rejected(tmp_path: Path) -> None:
    invoice = ["ST*810*0002", "BIG*20240105*INV1", "IT1**1*EA*2**VP*A1", "CTT*1"]
    text = envelope([sale_set("0001", [("SS", "A1", "1", "2.50")]), invoice])

    frame, skipped, notes = read(write(tmp_path, text), tmp_path / "work")

    assert frame.height == 1 and frame[READ_ERROR][0] is None
    assert skipped["empty_transaction_set"] == 1
    assert notes == [
        "transaction set ST02=0002 (GS06=70, ISA13=000000007) fails its envelope check: it is an X12 810 "
        "(invoice), not the 867 this feed reads; CTT01 says '1' line items, found 0; its 0 line item(s) "
        "are rejected with it (quarantined)"
    ]


def test_line_items_outside_a_set_or_ptd_are_flagged(tmp_path: Path) -> None:
    body = sale_set("0001", [("SS", "A1", "1", "2.50")])
    body.insert(3, "QTY*32*9*EA")
    text = envelope([body]).replace("GE*1*70", "QTY*32*8*EA~\nGE*1*70")

    frame, skipped, notes = read(write(tmp_path, text), tmp_path / "work")

    assert frame["reported_quantity"].to_list() == ["9", "1", "8"]
    assert frame[READ_ERROR][0].endswith(
        "line item outside a PTD loop (QTY or LIN before the set's first PTD, or after CTT)"
    )
    assert frame[READ_ERROR][2] == "line item outside any transaction set (no ST before it, or after its SE)"
    assert skipped["stray_segment"] == 1
    assert any("1 segment(s) outside any transaction set" in note for note in notes)


def test_end_customer_party_and_contact(tmp_path: Path) -> None:
    body = sale_set("0001", [("DS", "A1", "1", "2.50")])
    at = body.index("QTY*32*1*EA")
    body[at:at] = [
        "N1*EN*JANE DOE",
        "N3*2 SIDE ST*APT 4",
        "N4*PARIS**75001*FR",
        "PER*IC*JANE*TE*0123*EM*JANE@EXAMPLE.COM",
    ]

    frame, _, _ = read(write(tmp_path, envelope([body])), tmp_path / "work")

    record = frame.row(0, named=True)
    assert record["transaction_type"] == "sale"
    assert (record["end_customer_name"], record["end_customer_address"], record["end_customer_country"]) == (
        "JANE DOE",
        "2 SIDE ST APT 4, PARIS 75001",
        "FR",
    )
    assert (record["end_customer_phone"], record["end_customer_email"]) == ("0123", "JANE@EXAMPLE.COM")
    assert record["reseller_name"] == "ACME RESELLER"


def test_not_x12_or_empty_is_unreadable(tmp_path: Path) -> None:
    with pytest.raises(
        UnreadableFileError, match="not an X12 interchange: it should start with an ISA segment"
    ):
        read(write(tmp_path, "date,sku,qty\n2024-01-01,A,1\n"), tmp_path / "work")
    with pytest.raises(UnreadableFileError, match="the file is empty"):
        read(write(tmp_path, "\ufeff\n  \n", "empty.edi"), tmp_path / "work")
    with pytest.raises(UnreadableFileError, match="unusable delimiters"):
        read(write(tmp_path, ISA.format(ctl=1).replace(">~", "**"), "bad.edi"), tmp_path / "work")


def test_a_segment_longer_than_the_limit_is_refused(tmp_path: Path) -> None:
    text = envelope([sale_set("0001", [("SS", "A" * 5000, "1", "2.50")])])
    path = write(tmp_path, text)

    with pytest.raises(UnreadableFileError, match=r"over limits.max_line_bytes = 1000"):
        read_x12(path, X12Format(type="x12"), tmp_path / "work", ReadLimits(max_line_bytes=1000))


def test_reading_in_tiny_chunks_gives_the_same_records(tmp_path: Path) -> None:
    sets = [
        sale_set(f"{n:04d}", [("SS", f"S{n}{m}", str(m + 1), "1.00") for m in range(n % 4)])
        for n in range(1, 9)
    ]
    path = write(tmp_path, envelope(sets))
    whole, skipped, notes = read(path, tmp_path / "whole")

    for size in (7, 40, 333):
        with mock.patch.object(x12_module, "CHUNK_CHARS", size):
            chunked, chunked_skipped, chunked_notes = read(path, tmp_path / f"chunks{size}")
        assert chunked.equals(whole)
        assert (chunked_skipped, chunked_notes) == (skipped, notes)
    assert whole.height == sum(n % 4 for n in range(1, 9)) and skipped["empty_transaction_set"] == 2


def test_x12_spec_defaults_and_yaml_without_columns(tmp_path: Path) -> None:
    sellout = x12_spec("867")
    inventory = x12_spec("852", "acme_edi")

    assert sellout.dataset == "sellout" and sellout.columns["quantity"] == "quantity"
    assert sellout.transaction_types is not None and sellout.transaction_types.price_adjustment == [
        "price_adjustment"
    ]
    assert inventory.dataset == "inventory" and inventory.id == "acme_edi"
    assert set(inventory.columns) == {"snapshot_date", "distributor_sku", "location_id", "quantity_on_hand",
                                      "quantity_on_order", "unit_of_measure"}  # fmt: skip
    with pytest.raises(UnreadableFileError, match=r"X12 810 \(invoice\): Throughline reads 867 and 852"):
        x12_spec("810")
    spec_file = tmp_path / "edi.yaml"
    spec_file.write_text(
        "id: edi\nname: EDI\ncountry: US\ncurrency: USD\nfile_patterns: ['*.edi']\n"
        "format: {type: x12, reseller_party_codes: [ST], transfer_types: {SU: other, IB: sale}}\n"
        "natural_key: [invoice_number]\n"
    )
    loaded = load_feed_spec(spec_file)
    assert loaded.transaction_types is not None and loaded.transaction_types.return_ == ["return"]


# ---------------------------------------------------------------------------------------------
# Property tests: generated 867 and 852 documents with random delimiters read back exactly.

SEPARATOR_POOL = "!\"#$%&'()*+,/:;<=>?@[\\]^_`{|}~"
TERMINATOR_POOL = SEPARATOR_POOL + "\x1c\x1d\x1e\n"
TEXT = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 -.", min_size=1, max_size=12).filter(
    lambda value: value.strip() == value and value.strip() != ""
)
CODE = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=1, max_size=10)
NUMBER = st.decimals(min_value=0, max_value=99999, places=2, allow_nan=False).map(str)
DAY = st.dates(min_value=date(1990, 1, 1), max_value=date(2049, 12, 31))


@st.composite
def delimiters(draw: st.DrawFn) -> tuple[str, str, str, str]:
    element, component, repetition = draw(
        st.lists(st.sampled_from(SEPARATOR_POOL), min_size=3, max_size=3, unique=True)
    )
    segment = draw(
        st.sampled_from(TERMINATOR_POOL).filter(lambda c: c not in (element, component, repetition))
    )
    return element, component, segment, repetition


@dataclass
class Document:
    segments: list[list[str]] = field(default_factory=list)
    expected: list[dict[str, str | None]] = field(default_factory=list)


def render(doc: Document, seps: tuple[str, str, str, str], breaks: list[str], bom: bool) -> bytes:
    element, _, segment, _ = seps
    parts = []
    for number, elements in enumerate(doc.segments):
        parts.append(element.join(elements) + segment + breaks[number % len(breaks)])
    return ("\ufeff" if bom else "").encode() + "".join(parts).encode()


def wrap(
    doc: Document, sets: list[list[list[str]]], seps: tuple[str, str, str, str], group_code: str
) -> None:
    _, component, _, repetition = seps
    isa = ["ISA", "00", " " * 10, "00", " " * 10, "ZZ", "SENDER".ljust(15), "ZZ", "RECEIVER".ljust(15), "240105",
           "1200", repetition, "00501", "000004711", "0", "P", component]  # fmt: skip
    doc.segments.append(isa)
    doc.segments.append(["GS", group_code, "SENDER", "RECEIVER", "20240105", "1200", "815", "X", "005010"])
    for number, body in enumerate(sets, start=1):
        control = f"{number:04d}"
        body[0][2] = control
        doc.segments += body
        doc.segments.append(["SE", str(len(body) + 1), control])
    doc.segments += [["GE", str(len(sets)), "815"], ["IEA", "1", "000004711"]]


TRANSFERS = {
    "SS": "sale",
    "DS": "sale",
    "BN": "return",
    "RV": "return",
    "PA": "price_adjustment",
    "SU": "other",
}


@st.composite
def documents_867(draw: st.DrawFn, seps: tuple[str, str, str, str]) -> Document:
    _, component, _, _ = seps
    doc = Document()
    sets = []
    for _ in range(draw(st.integers(1, 3))):
        currency = draw(st.sampled_from(["USD", "EUR", "SEK"]))
        body = [["ST", "867", "?"], ["BPT", "00", draw(CODE), "20240105", "SD"], ["CUR", "SE", currency]]
        items = 0
        for _ in range(draw(st.integers(0, 3))):
            code = draw(st.sampled_from(sorted(TRANSFERS)))
            day = draw(DAY)
            invoice, name, postal, country = (
                draw(CODE),
                draw(TEXT),
                draw(CODE),
                draw(st.sampled_from(["US", "DE"])),
            )
            body += [["PTD", code], ["DTM", "003", day.strftime("%Y%m%d")], ["REF", "IV", invoice]]
            body += [["N1", "BY", name, "91", "R1"], ["N4", draw(TEXT), "XX", postal, country]]
            for _ in range(draw(st.integers(1, 3))):
                quantity, price, amount, sku = draw(NUMBER), draw(NUMBER), draw(NUMBER), draw(CODE)
                unit = draw(st.sampled_from(["EA", "BX", "CA"]))
                body += [
                    ["QTY", "32", quantity, unit + component + "1"],
                    ["LIN", "", "UP", draw(CODE), "VP", sku],
                ]
                body += [["UIT", unit, price], ["AMT", "1", amount]]
                kind = TRANSFERS[code]
                items += 1
                doc.expected.append(
                    {
                        "transaction_date": day.isoformat(),
                        "invoice_number": invoice,
                        "transaction_type": kind,
                        "transfer_code": code,
                        "reseller_name": name,
                        "reseller_postal_code": postal,
                        "reseller_country": country,
                        "distributor_sku": sku,
                        "quantity": "-" + quantity
                        if kind == "return"
                        else quantity
                        if kind == "sale"
                        else "0",
                        "unit_of_measure": unit,
                        "unit_price": price,
                        "currency": currency,
                        "net_amount": "-" + amount if kind == "return" else amount,
                        "reported_quantity": quantity,
                    }
                )
        body.append(["CTT", str(items)])
        sets.append(body)
    wrap(doc, sets, seps, "PT")
    return doc


@st.composite
def documents_852(draw: st.DrawFn, seps: tuple[str, str, str, str]) -> Document:
    doc = Document()
    sets = []
    for _ in range(draw(st.integers(1, 2))):
        start, end = sorted([draw(DAY), draw(DAY)])
        body = [["ST", "852", "?"], ["XQ", "H", start.strftime("%Y%m%d"), end.strftime("%Y%m%d")]]
        items = 0
        for _ in range(draw(st.integers(1, 3))):
            location = draw(CODE)
            body.append(["N1", "RL", draw(TEXT), "92", location])
            for _ in range(draw(st.integers(1, 3))):
                sku = draw(CODE)
                body.append(["LIN", "", "VP", sku])
                items += 1
                on_hand, on_order = draw(NUMBER), draw(st.none() | NUMBER)
                split = (
                    draw(st.lists(CODE, min_size=1, max_size=4, unique=True)) if draw(st.booleans()) else None
                )
                if split is None:
                    body.append(["ZA", "QA", on_hand, "EA"])
                    if on_order is not None:
                        body.append(["ZA", "QP", on_order, "EA"])
                    doc.expected.append(
                        {"snapshot_date": end.isoformat(), "distributor_sku": sku, "location_id": location,
                         "quantity_on_hand": on_hand, "quantity_on_order": on_order, "unit_of_measure": "EA"}
                    )  # fmt: skip
                else:
                    quantities = [draw(NUMBER) for _ in split]
                    body.append(["ZA", "QA", "0", "EA"])
                    body.append(
                        [
                            "SDQ",
                            "EA",
                            "92",
                            *[v for pair in zip(split, quantities, strict=True) for v in pair],
                        ]
                    )
                    for store, quantity in zip(split, quantities, strict=True):
                        doc.expected.append(
                            {"snapshot_date": end.isoformat(), "distributor_sku": sku, "location_id": store,
                             "quantity_on_hand": quantity, "quantity_on_order": None, "unit_of_measure": "EA"}
                        )  # fmt: skip
        body.append(["CTT", str(items)])
        sets.append(body)
    wrap(doc, sets, seps, "PD")
    return doc


BREAKS = st.lists(st.sampled_from(["", "", "\n", "\r\n", "\r\n  ", "\n\t\t"]), min_size=1, max_size=4)
# `figures` is meant to outlive the examples: it sums them for docs/guarantees.md.
PROPERTY = settings(
    max_examples=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def read_bytes(data: bytes, chunk: int, **spec: object) -> tuple[pl.DataFrame, list[str]]:
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "doc.edi"
        path.write_bytes(data)
        with mock.patch.object(x12_module, "CHUNK_CHARS", chunk):
            result = read_x12(path, X12Format(type="x12", **spec), Path(scratch) / "work", LIMITS)
            return result.records.collect(), result.notes


@PROPERTY
@given(data=st.data(), seps=delimiters(), breaks=BREAKS, bom=st.booleans(), chunk=st.integers(5, 2000))
def test_867_round_trip(figures: Figures, data: st.DataObject, seps, breaks, bom: bool, chunk: int) -> None:
    doc = data.draw(documents_867(seps))

    frame, notes = read_bytes(render(doc, seps, breaks, bom), chunk)

    assert notes == [] or all("are not sales, returns" in note for note in notes)
    assert frame[READ_ERROR].null_count() == frame.height
    assert frame[SOURCE_ROW].to_list() == list(range(1, len(doc.expected) + 1))
    assert frame.select(list(doc.expected[0]) if doc.expected else []).to_dicts() == doc.expected
    assert frame.height == len(doc.expected)
    figures.add(rows_checked=len(doc.expected), rows_lost=0)


@PROPERTY
@given(data=st.data(), seps=delimiters(), breaks=BREAKS, bom=st.booleans(), chunk=st.integers(5, 2000))
def test_852_round_trip(figures: Figures, data: st.DataObject, seps, breaks, bom: bool, chunk: int) -> None:
    doc = data.draw(documents_852(seps))

    frame, notes = read_bytes(render(doc, seps, breaks, bom), chunk, transaction_set="852")

    assert notes == []
    assert frame[READ_ERROR].null_count() == frame.height
    assert frame.select(list(doc.expected[0])).to_dicts() == doc.expected
    figures.add(rows_checked=len(doc.expected), rows_lost=0)


SEEDS = [(REAL / "867_Example2.txt").read_bytes(), (REAL / "852_AftermarketExample.txt").read_bytes()]


@st.composite
def mutations(draw: st.DrawFn) -> tuple[bytes, str]:
    index = draw(st.integers(0, len(SEEDS) - 1))
    data = bytearray(SEEDS[index])
    for _ in range(draw(st.integers(1, 8))):
        kind = draw(st.sampled_from(["flip", "delete", "insert", "duplicate", "truncate"]))
        at = draw(st.integers(0, max(0, len(data) - 1)))
        if kind == "flip" and data:
            data[at] = draw(st.integers(0, 255))
        elif kind == "delete":
            del data[at : at + draw(st.integers(1, 40))]
        elif kind == "insert":
            data[at:at] = draw(
                st.binary(min_size=1, max_size=20) | st.sampled_from([b"~", b"^", b"*", b"ST^", b"QTY^1^"])
            )
        elif kind == "duplicate":
            data[at:at] = data[at : at + draw(st.integers(1, 200))]
        else:
            data = data[: at + 1]
    return bytes(data), ("867", "852")[index]


@settings(
    max_examples=150,
    deadline=5000,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(case=mutations(), chunk=st.sampled_from([16, 64, 1 << 24]))
def test_fuzzed_bytes_give_records_or_a_refusal(
    figures: Figures, case: tuple[bytes, str], chunk: int
) -> None:
    """A real 867 or 852 with bytes flipped, deleted, inserted, duplicated or cut off, read in chunks
    of any size, gives records in file order or a refusal, never another exception (each example is
    a trial and a fault; its records are rows checked)."""
    data, transaction_set = case
    try:
        frame, _ = read_bytes(data, chunk, transaction_set=transaction_set)
    except UnreadableFileError:
        figures.add(faults=1, rows_checked=0)
        return
    assert frame[SOURCE_ROW].is_sorted()
    assert set(frame[ROW_KIND].to_list()) <= {"data"}
    figures.add(faults=1, rows_checked=frame.height)


def test_a_line_item_takes_values_from_its_own_segments_only(tmp_path: Path) -> None:
    body = ["ST*867*0001", "BPT*00*R1*20240105*SD", "PTD*SS", "DTM*003*20240103"]
    body += ["QTY*32*1*EA", "LIN*1*VP*A1", "QTY*32*2", "LIN*2*VP*A2", "UIT*BX*3.00", "AMT*1*9", "CTT*2"]

    frame, _, _ = read(write(tmp_path, envelope([body])), tmp_path / "work")

    # The first item has no UIT or AMT: nothing is borrowed from the item after it.
    assert frame.select("distributor_sku", "unit_price", "unit_of_measure", "net_amount").rows() == [
        ("A1", None, "EA", None),
        ("A2", "3.00", "BX", "9"),
    ]


WIDE_DATE = "\uff12\uff10\uff12\uff14\uff10\uff11\uff10\uff11"
"""20240101 in fullwidth digits: `\\d` of the date expressions matches them, an ASCII check not."""


def test_values_finished_on_their_views_match_the_expressions(tmp_path: Path) -> None:
    """Signs, dates, units and invoice lines finished on string views (short texts) and by the
    Polars expressions (long texts, non-ASCII digits) give the same text."""
    body = ["ST*867*0001", "BPT*00*R1*240105*SD", "CUR*SE*EUR"]
    cases = [
        # (PTD01, DTM, QTY, LIN01, UIT, AMT)
        ("BN", "DTM*003*240105", "QTY*32*+5*EA>1", "7", "UIT*EA*2.50", "AMT*1*10.00"),
        (
            "BN",
            "DTM*003*990101",
            "QTY*32*+12345678901234*>1",
            "12345678901234",
            "UIT*BX*1",
            "AMT*1*1234567890123.45",
        ),
        ("RV", "DTM*011*****RD8*20240101-20240131", "QTY*32*-3", "A7", "UIT*EA", "AMT*1*-7.50"),
        ("SS", "DTM*003*2024010", "QTY*32*4*LONGUNITNAME>X", "١٢", "UIT*EA", "AMT*1*+7"),
        ("PA", f"DTM*003*{WIDE_DATE}", "QTY*32*9", "", "UIT*EA", "AMT*1*+1.20"),
    ]
    for code, dtm, qty, line, uit, amt in cases:
        body += [f"PTD*{code}", dtm, "N1*BY*ACME*91*R1", qty, f"LIN*{line}*VP*A1", uit, amt]
    body.append(f"CTT*{len(cases)}")

    frame, _, _ = read(write(tmp_path, envelope([body])), tmp_path / "work")

    assert frame.select(
        "transaction_date", "quantity", "reported_quantity", "unit_of_measure", "invoice_line", "net_amount"
    ).rows() == [
        ("2024-01-05", "-5", "+5", "EA", "7", "-10.00"),
        ("1999-01-01", "-12345678901234", "+12345678901234", "BX", "12345678901234", "-1234567890123.45"),
        ("2024-01-01", "-3", "-3", "EA", None, "-7.50"),
        ("2024010", "4", "4", "LONGUNITNAME", "١٢", "+7"),
        (f"{WIDE_DATE[:4]}-{WIDE_DATE[4:6]}-{WIDE_DATE[6:]}", "0", "9", "EA", None, "+1.20"),
    ]


def test_delimiters_that_are_not_ascii_read_like_ascii_ones(tmp_path: Path) -> None:
    lines = [("SS", "A1", "4", "10.00"), ("BN", "A2", "2", "5.00")]
    text = envelope([sale_set("0001", lines)])
    ascii_frame, _, _ = read(write(tmp_path, text), tmp_path / "ascii")
    # Element separator "§" and segment terminator "¶" (two bytes each in UTF-8).
    other = text.replace("*", "§").replace("~", "¶")

    frame, skipped, notes = read(write(tmp_path, other, "other.edi"), tmp_path / "other")

    assert frame.equals(ascii_frame)
    assert notes == [] and skipped["empty_transaction_set"] == 0


def test_each_value_falls_back_to_its_next_source(tmp_path: Path) -> None:
    """A value whose first source is missing, empty or unfit takes the next one: the unit from UIT01
    when QTY03 starts with the component separator, the price from CTP03 without UIT02, the invoice
    from the PTD loop's PTD05 without a REF IV in the item, the invoice line from LIN01 without a REF
    LI, the date from a DTM07 range when DTM02 is empty, the contact from PER06 when PER03 is not it."""
    body = ["ST*867*0001", "BPT*00*R1*20240105*SD", "N1*EN*JO DOE", "PER*IC*JO*FX*1*EM*jo@example.com"]
    body += ["PTD*SS", "DTM*003*20240103", "QTY*32*1*>X", "LIN*1*VP*A1", "UIT*EA", "CTP**UCP*4.50"]
    body += ["REF*IV*INV9", "REF*LI*0042", "AMT*1*4.50"]
    body += ["PTD*BN***IV*PTDINV", "DTM*011*****RD8*20240201-20240229", "QTY*32*2*BX>12", "LIN*7*VP*A2"]
    body += ["UIT*CA*3.00", "CTT*2"]

    frame, _, notes = read(write(tmp_path, envelope([body])), tmp_path / "work")

    assert notes == []
    assert frame.select(
        "unit_of_measure", "unit_price", "invoice_number", "invoice_line", "transaction_date", "quantity",
        "net_amount", "end_customer_email", "end_customer_phone",
    ).rows() == [
        ("EA", "4.50", "INV9", "0042", "2024-01-03", "1", "4.50", "jo@example.com", None),
        ("BX", "3.00", "PTDINV", "7", "2024-02-01", "-2", None, "jo@example.com", None),
    ]  # fmt: skip


def test_the_install_step_compiles_both_transaction_sets() -> None:
    """`make install` reads a one-item 867 and an 852 (two locations) through the compiled passes."""
    from transforms.readers.x12_stream import compile_passes

    assert compile_passes() == 3
