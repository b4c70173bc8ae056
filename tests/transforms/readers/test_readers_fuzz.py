"""Property-based fuzzing of every non-X12 reader (CSV under several dialects, fixed width, JSON
array, JSON lines, xlsx): random bytes and mutations of a small valid file of each format (bytes
flipped, deleted, inserted, truncated, lines duplicated, BOMs, NUL bytes, another encoding) either
give records that collect, each with a source row, and a `skipped` account that adds up, or a
refusal that names the file; never another exception, a hang, or unbounded memory. X12 has its own
fuzz test in `test_readers_x12.py`.

Each example is one hostile input: through the `figures` fixture it counts as a trial and a fault
injected, its records as rows checked, and, where a test proves that records and skipped lines add
up to the file's lines, the lines it found missing (none, or the test fails) as rows lost."""

from __future__ import annotations

import io
import resource
import tempfile
import threading
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import polars as pl
import pytest
import xlsxwriter
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.feed_spec import CsvFormat, ExcelFormat, FileFormat, FixedWidthFormat, JsonFormat
from tests.guarantees import Figures
from tests.transforms.readers.conftest import physical_lines
from transforms.readers import (
    POLARS_READ_ERRORS,
    ROW_KIND,
    SOURCE_ROW,
    UnreadableFileError,
    read_records,
)

EXAMPLE_SECONDS = 20
"""Wall-clock bound on one read and collect; a hang fails the example instead of the whole run."""

RSS_GROWTH_MIB = 500
"""Bound on the growth of this process's peak RSS over the whole module (inputs are a few KiB)."""


def fuzz(max_examples: int) -> settings:
    """Deterministic (CI-stable) settings with no per-example deadline: `outcome` bounds the time."""
    return settings(
        max_examples=max_examples,
        deadline=None,
        derandomize=True,
        database=None,
        # `figures` is meant to outlive the examples: it sums them for docs/guarantees.md.
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.function_scoped_fixture,
        ],
    )


def peak_rss_mib() -> float:
    """This process's peak RSS so far (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@pytest.fixture(scope="module", autouse=True)
def bounded_memory() -> Iterator[None]:
    """Fail the module when fuzzing grew the peak RSS by more than `RSS_GROWTH_MIB`."""
    before = peak_rss_mib()
    yield
    grown = peak_rss_mib() - before
    assert grown < RSS_GROWTH_MIB, f"peak RSS grew by {grown:.0f} MiB while fuzzing"


def read_all(path: Path, file_format: FileFormat, work_dir: Path) -> tuple[pl.DataFrame, dict[str, int]]:
    """Read and collect as the pipeline does: the fast path, then the tolerant CSV parser when
    collecting the fast one raises a Polars read error."""
    result = read_records(path, file_format, work_dir)
    try:
        return result.records.collect(), result.skipped
    except POLARS_READ_ERRORS:
        if not isinstance(file_format, CsvFormat):
            raise
    result = read_records(path, file_format, work_dir, tolerant=True)
    return result.records.collect(), result.skipped


def capture(function: Callable[..., object], *args: object) -> object:
    """`function(*args)`, or the exception it raised, so the reading thread hands either back."""
    try:
        return function(*args)
    except BaseException as error:
        return error


def outcome(data: bytes, file_format: FileFormat, name: str) -> tuple[pl.DataFrame, dict[str, int]] | None:
    """The records and skip counts of `data` read as `file_format`, or None for a refusal naming
    the file; any other exception, or a read over `EXAMPLE_SECONDS`, fails the example."""
    with tempfile.TemporaryDirectory(prefix="fuzz-") as scratch:
        path = Path(scratch) / name
        path.write_bytes(data)
        box: list[object] = []
        reader = threading.Thread(
            target=lambda: box.append(capture(read_all, path, file_format, Path(scratch) / "work")),
            name="fuzz-read",
            daemon=True,  # a hung read must not keep the test run from exiting
        )
        reader.start()
        reader.join(EXAMPLE_SECONDS)
        if reader.is_alive():
            pytest.fail(
                f"reading {len(data)} bytes as {file_format.type} took over {EXAMPLE_SECONDS} s: {data!r}"
            )
        (result,) = box
        if isinstance(result, (UnreadableFileError, ValueError)):
            assert name in str(result), f"refusal does not name the file: {type(result).__name__}: {result}"
            return None
        if isinstance(result, BaseException):
            raise result
        frame, skipped = result
    assert SOURCE_ROW in frame.columns
    assert ROW_KIND in frame.columns
    assert frame[SOURCE_ROW].null_count() == 0
    assert frame[SOURCE_ROW].n_unique() == frame.height
    assert frame[SOURCE_ROW].is_sorted()
    assert frame.height == 0 or frame[SOURCE_ROW].min() >= 1
    assert set(frame[ROW_KIND].to_list()) <= {"data", "footer"}
    assert all(count >= 0 for count in skipped.values()), skipped
    return frame, skipped


def tried(
    figures: Figures, read: tuple[pl.DataFrame, dict[str, int]] | None, *, lines_accounted: bool = False
) -> None:
    """Count one hostile input: a trial, a fault, the records checked, and (when the test proved that
    records plus skipped lines equal the file's lines) no line lost."""
    figures.add(
        trials=1,
        faults=1,
        rows_checked=0 if read is None else read[0].height,
        rows_lost=0 if lines_accounted else None,
    )


@st.composite
def mutated(draw: st.DrawFn, seed: bytes, tokens: list[bytes]) -> bytes:
    """`seed` after 1 to 6 edits: a byte flipped, bytes deleted, inserted (random, a format token,
    a NUL, a BOM, a line break), a stretch or a whole line duplicated, or the tail cut off."""
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["flip", "delete", "insert", "duplicate", "line", "truncate"]))
        at = draw(st.integers(0, max(0, len(data) - 1)))
        if kind == "flip" and data:
            data[at] = draw(st.integers(0, 255))
        elif kind == "delete":
            del data[at : at + draw(st.integers(1, 20))]
        elif kind == "insert":
            data[at:at] = draw(
                st.binary(min_size=1, max_size=12)
                | st.sampled_from(
                    [*tokens, b"\x00", b"\xef\xbb\xbf", b"\xff\xfe", b"\n", b"\r", b"\r\n", b"\xe9"]
                )
            )
        elif kind == "duplicate":
            data[at:at] = data[at : at + draw(st.integers(1, 60))]
        elif kind == "line":
            lines = bytes(data).split(b"\n")
            index = draw(st.integers(0, len(lines) - 1))
            lines[index:index] = [lines[index]] * draw(st.integers(1, 3))
            data = bytearray(b"\n".join(lines))
        else:
            data = data[:at]
    return bytes(data)


def reencoded(text: str) -> st.SearchStrategy[bytes]:
    """`text` written as UTF-8, with a UTF-8 BOM, CRLF line ends, or in another encoding than the
    spec says (UTF-16 with its BOM, cp1252, UTF-32)."""
    return st.sampled_from(
        [
            text.encode("utf-8"),
            b"\xef\xbb\xbf" + text.encode("utf-8"),
            text.replace("\n", "\r\n").encode("utf-8"),
            text.encode("utf-16"),
            text.encode("cp1252", errors="replace"),
            text.encode("utf-32-le"),
        ]
    )


def fuzzed(text: str, tokens: list[bytes]) -> st.SearchStrategy[bytes]:
    """Random bytes, the seed in another encoding, or the seed (in any of those) mutated."""
    return (
        st.binary(max_size=400)
        | reencoded(text)
        | reencoded(text).flatmap(lambda seed: mutated(seed, tokens))
    )


# CSV ------------------------------------------------------------------------------------------

CSV_SEED = (
    'sku,qty,"name, full",price\n'
    'A-1,12,"Widget ""big""",1.50\n'
    "B-2,-3,Gadget,2\n"
    '"C-3",0,"two\nlines",\n'
    "# a comment\n"
    "\n"
    "D-4,7,Zoë,9.99\n"
)
CSV_DIALECTS = [
    {},
    {"delimiter": ";", "quote_char": "'", "footer_rows": 1},
    {"delimiter": "\t", "quote_char": None, "has_header": False, "column_names": ["a", "b", "c", "d"]},
    {"escape_char": "\\", "comment_prefix": "#", "skip_rows": 1},
    {"encoding": "utf-8-sig", "footer_rows": 2},
    {"encoding": "cp1252"},
    {"encoding": "utf-16"},
]
CSV_TOKENS = [b",", b";", b"\t", b'"', b"'", b'""', b"\\", b"#", b",,,,,,"]


def csv_seed(dialect: dict[str, object]) -> str:
    """The CSV seed written with the dialect's delimiter and quote."""
    text = CSV_SEED.replace(",", str(dialect.get("delimiter", ",")))
    quote = dialect.get("quote_char", '"')
    return text.replace('"', str(quote) if quote else "")


@fuzz(max_examples=700)
@given(dialect=st.sampled_from(CSV_DIALECTS), data=st.data())
def test_fuzzed_csv_gives_records_or_a_refusal(
    figures: Figures, dialect: dict[str, object], data: st.DataObject
) -> None:
    """Under each dialect, fuzzed CSV bytes collect into records with distinct source rows, records
    plus skipped lines equal to the file's lines (at most, when quotes may span lines), or are
    refused naming the file."""
    raw = data.draw(fuzzed(csv_seed(dialect), CSV_TOKENS))
    read = outcome(raw, CsvFormat(type="csv", **dialect), "feed.csv")
    if read is None:
        tried(figures, read)
        return
    frame, skipped = read
    exact = False
    if dialect.get("encoding", "utf-8") in {"utf-8", "utf-8-sig", "cp1252"}:
        # A quoted line break makes one record of several lines: without quotes the identity is exact.
        lines = physical_lines(raw)
        quote = dialect.get("quote_char", '"')
        accounted = frame.height + sum(skipped.values())
        assert accounted <= lines if quote and quote.encode() in raw else accounted == lines, (
            accounted,
            lines,
        )
        assert frame.height == 0 or frame[SOURCE_ROW].max() <= lines
        exact = not (quote and quote.encode() in raw)
    tried(figures, read, lines_accounted=exact)


# Fixed width --------------------------------------------------------------------------------------

FIXED_SEED = (
    "HDR 2024-01-31 ACME\n"
    "D A-1       00012 001.50\n"
    "D B-2       -0003 002.00\n"
    "\n"
    "D Zoë       00007 009.99\n"
    "T 00003\n"
)
FIXED_COLUMNS = [
    {"name": "sku", "start": 3, "width": 10},
    {"name": "qty", "start": 13, "width": 5},
    {"name": "price", "start": 19, "width": 6},
]
FIXED_SPECS = [{"record_prefix": "D "}, {"skip_rows": 1, "footer_rows": 1}, {"encoding": "cp037"}]


def is_blank(line: bytes) -> bool:
    """Blank as the readers judge it: nothing but white space once decoded (so \\x1c counts)."""
    return not line.decode("utf-8-sig", errors="replace").strip()


@fuzz(max_examples=400)
@given(spec=st.sampled_from(FIXED_SPECS), data=st.data())
def test_fuzzed_fixed_width_gives_records_or_a_refusal(
    figures: Figures, spec: dict[str, object], data: st.DataObject
) -> None:
    """Fuzzed fixed-width bytes collect into records with distinct source rows, records plus skipped
    lines equal to the file's lines, or are refused naming the file."""
    raw = data.draw(fuzzed(FIXED_SEED, [b"D ", b"D A-9      ", b"T ", b" " * 30]))
    read = outcome(raw, FixedWidthFormat(type="fixed_width", columns=FIXED_COLUMNS, **spec), "feed.txt")
    if read is None:
        tried(figures, read)
        return
    frame, skipped = read
    if spec.get("encoding", "utf-8") == "utf-8":
        lines = physical_lines(raw, blank=is_blank)
        assert frame.height + sum(skipped.values()) == lines, (frame.height, skipped, lines)
    tried(figures, read, lines_accounted=spec.get("encoding", "utf-8") == "utf-8")


# JSON ---------------------------------------------------------------------------------------------

JSON_RECORDS = [
    '{"sku": "A-1", "qty": 12, "price": 1.5, "customer": {"name": "Zoë", "zip": "08123"}}',
    '{"sku": "B-2", "qty": -3, "tags": ["x", 2, {"k": null}], "paid": true}',
    '{"sku": "C-3", "qty": 1e3, "note": "a \\"quoted\\" \\u00e9 value"}',
]
JSONL_SEED = "\n".join([JSON_RECORDS[0], "", *JSON_RECORDS[1:]]) + "\n"
JSON_SEED = "[\n" + ",\n".join(JSON_RECORDS) + "\n]\n"
JSON_NESTED_SEED = '{"meta": {"n": 3}, "data": {"lines": [' + ", ".join(JSON_RECORDS) + "]}}"
JSON_TOKENS = [b"{", b"}", b"[", b"]", b'"', b":", b",", b"\\", b"null", b"1e999", b"9" * 40, b"[" * 80]


@fuzz(max_examples=400)
@given(data=st.data())
def test_fuzzed_json_lines_give_records_or_a_refusal(figures: Figures, data: st.DataObject) -> None:
    """Fuzzed JSON-lines bytes collect into records with distinct source rows, records plus skipped
    lines equal to the file's lines, or are refused naming the file."""
    raw = data.draw(fuzzed(JSONL_SEED, JSON_TOKENS))
    read = outcome(raw, JsonFormat(type="jsonl"), "feed.jsonl")
    if read is None:
        tried(figures, read)
        return
    frame, skipped = read
    lines = physical_lines(raw, blank=is_blank)
    assert frame.height + sum(skipped.values()) == lines, (frame.height, skipped, lines)
    tried(figures, read, lines_accounted=True)


@fuzz(max_examples=400)
@given(nested=st.booleans(), data=st.data())
def test_fuzzed_json_array_gives_records_or_a_refusal(
    figures: Figures, nested: bool, data: st.DataObject
) -> None:
    """Fuzzed JSON documents (a top-level array, or one under `records_path`) collect into records
    with distinct source rows and nothing skipped, or are refused naming the file."""
    raw = data.draw(fuzzed(JSON_NESTED_SEED if nested else JSON_SEED, JSON_TOKENS))
    spec = JsonFormat(type="json", records_path="data.lines" if nested else None)
    read = outcome(raw, spec, "feed.json")
    tried(figures, read)
    if read is None:
        return
    _, skipped = read
    assert sum(skipped.values()) == 0, skipped


# xlsx ---------------------------------------------------------------------------------------------


def xlsx_seed() -> bytes:
    """A small workbook: a title row, a header, data rows of strings, numbers, a date and a
    formula, a blank row and a footer note."""
    buffer = io.BytesIO()
    workbook = xlsxwriter.Workbook(buffer, {"in_memory": True})
    sheet = workbook.add_worksheet("Sales")
    sheet.write_row(0, 0, ["Weekly sell-through"])
    sheet.write_row(1, 0, ["sku", "qty", "price", "day"])
    sheet.write_row(2, 0, ["A-1", 12, 1.5, "2024-01-31"])
    sheet.write_row(3, 0, ["B-2", -3, 2])
    sheet.write_formula(3, 3, "=B4*C4", None, -6)
    sheet.write_row(5, 0, ["Zoë", 7, 9.99])
    sheet.write_row(6, 0, ["total rows: 3"])
    workbook.add_worksheet("Other").write_row(0, 0, ["x"])
    workbook.close()
    return buffer.getvalue()


XLSX_SEED = xlsx_seed()
XLSX_MEMBERS = {
    info.filename: zipfile.ZipFile(io.BytesIO(XLSX_SEED)).read(info)
    for info in zipfile.ZipFile(io.BytesIO(XLSX_SEED)).infolist()
}
XML_TOKENS = [b"<", b">", b"</row>", b'<c r="ZZ99" t="s"><v>99</v></c>', b"<v>", b"&", b'"', b'r="A1048577"']


@st.composite
def xlsx_with_mutated_member(draw: st.DrawFn) -> bytes:
    """The seed workbook re-zipped with one of its XML parts (sheet, shared strings, workbook,
    relationships) mutated, so the damage reaches the spreadsheet parser instead of the zip layer."""
    member = draw(
        st.sampled_from(
            [
                "xl/worksheets/sheet1.xml",
                "xl/sharedStrings.xml",
                "xl/workbook.xml",
                "xl/_rels/workbook.xml.rels",
                "[Content_Types].xml",
                "xl/styles.xml",
            ]
        )
    )
    members = dict(XLSX_MEMBERS)
    members[member] = draw(mutated(members[member], XML_TOKENS))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return buffer.getvalue()


@fuzz(max_examples=300)
@given(
    spec=st.sampled_from([{}, {"sheet": "Sales", "header_row": 2, "footer_rows": 1}, {"sheet": 1}]),
    raw=st.binary(max_size=400)
    | mutated(XLSX_SEED, [b"PK\x03\x04", b"PK\x05\x06"])
    | xlsx_with_mutated_member(),
)
def test_fuzzed_xlsx_gives_records_or_a_refusal(
    figures: Figures, spec: dict[str, object], raw: bytes
) -> None:
    """Random bytes, a workbook with its zip bytes mutated, or one with a mutated XML part collect
    into records with distinct source rows, or are refused naming the file."""
    tried(figures, outcome(raw, ExcelFormat(type="xlsx", **spec), "feed.xlsx"))


# Cases the fuzzing found ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "file_format", "name", "records"),
    [
        # utf-16 declared, no byte-order mark: a bare UnicodeError that did not name the file.
        (b"\x00\x00", CsvFormat(type="csv", encoding="utf-16"), "feed.csv", None),
        # A lone first byte of a UTF-8 BOM: the decoder held it back silently and the read was empty.
        (b"\xef", JsonFormat(type="jsonl"), "feed.jsonl", None),
        (b"\xef\xbb", CsvFormat(type="csv"), "feed.csv", None),
        # A \x0b (data, not a line end) just before the unterminated last line split that line in two.
        (b"\x01\n\x0b,", CsvFormat(type="csv"), "feed.csv", 1),
        (b"{}\n\x0c{}", JsonFormat(type="jsonl"), "feed.jsonl", 2),
        # A second table found in the transcoded copy of a cp1252 file named the scratch copy.
        (b"\x01\x01\n\x01\x01", CsvFormat(type="csv", encoding="cp1252"), "feed.csv", None),
    ],
)
def test_fuzz_findings_stay_fixed(
    figures: Figures, raw: bytes, file_format: FileFormat, name: str, records: int | None
) -> None:
    """Each input the fuzzing once broke now gives its records, or a refusal naming the file."""
    read = outcome(raw, file_format, name)
    assert (None if read is None else read[0].height) == records
    tried(figures, read)
