"""The workbook reader on readxl's sheets: header rows, sheet-row numbering, blank rows, text cells,
footers kept as footer rows, every sheet row accounted for, and zip bombs refused unopened."""

from __future__ import annotations

import datetime as dt
import zipfile
from pathlib import Path

import polars as pl
import pytest
import xlsxwriter

from schemas.feed_spec import ExcelFormat
from schemas.limits import ReadLimits
from tests.transforms.readers.conftest import run_in_child
from transforms.readers import (
    READ_ERROR,
    ROW_KIND,
    SOURCE_ROW,
    LimitExceededError,
    ReadResult,
    UnreadableFileError,
    read_records,
)


def read_result(path: Path, tmp_path: Path, **spec: object) -> ReadResult:
    return read_records(path, ExcelFormat(type="xlsx", **spec), tmp_path / "work")


def read(path: Path, tmp_path: Path, **spec: object) -> pl.DataFrame:
    return read_result(path, tmp_path, **spec).records.collect()


def sheet_rows(path: Path, sheet: str | int) -> int:
    """Rows of a sheet up to its last non-blank one: what `skipped` and the records must add up to."""
    import fastexcel

    frame = pl.DataFrame(
        fastexcel.read_excel(path).load_sheet(sheet, header_row=None, skip_rows=0, dtypes="string").to_arrow()
    )
    blank = pl.all_horizontal(
        pl.col(column).is_null() | (pl.col(column).str.strip_chars() == "") for column in frame.columns
    )
    rows = frame.with_row_index("row", offset=1).filter(~blank)["row"]
    return int(rows.max() or 0)


@pytest.mark.parametrize("sheet", ["two_blank_rows", "occupied_row_and_blank_row", "two_occupied_rows"])
def test_skipping_keeps_sheet_row_numbers(sheet: str, realdata: Path, tmp_path: Path) -> None:
    frame = read(realdata / "excel/readxl/skipping.xlsx", tmp_path, sheet=sheet, header_row=3)

    assert frame.rows() == [("v2,1", "v2,2", 5, None, "data"), ("v4,1", "v4,2", 7, None, "data")]
    assert frame.columns == ["var1", "var2", SOURCE_ROW, READ_ERROR, ROW_KIND]


def test_ekaterinburg_cyrillic_sheet_header_on_row_4(realdata: Path, tmp_path: Path) -> None:
    path = realdata / "excel/readxl/Ekaterinburg_IP_9.xlsx"
    result = read_result(path, tmp_path, sheet="СПАРК - Список", header_row=4, footer_rows=1)
    frame = result.records.collect()
    data = frame.filter(pl.col(ROW_KIND) == "data")

    # The file's own header mixes scripts: a Cyrillic O, a Latin K, then Cyrillic letters.
    assert frame.columns[:4] == ["ФИО", "Дата регистрации", "Отрасль", "ОKВЭД"]  # noqa: RUF001
    assert data.height == 2191
    assert data.row(0)[:2] == ("Аббасов Илал Газанфар Оглы", "27.05.2004")
    assert data.row(0)[4:7] == ("90193989", "666400272572", "304667414800060")
    assert data.row(0)[-3:] == (5, None, "data")
    assert data.row(-1)[0] == "Ярушев Юрий Александрович"
    assert data[SOURCE_ROW][-1] == 2195
    # The note on the last row is kept, as a footer row; the blank row above it is only blank.
    assert frame.row(-1)[0].startswith("Отчет подготовлен системой СПАРК")
    assert frame.row(-1)[-3:] == (2197, None, "footer")
    assert result.skipped == {
        "header": 1,
        "preamble": 3,
        "blank": 1,
        "comment": 0,
        "record_prefix": 0,
        "footer": 0,
    }
    assert sheet_rows(path, 0) == frame.height + sum(result.skipped.values())


def test_ekaterinburg_without_footer_keeps_the_note_row(realdata: Path, tmp_path: Path) -> None:
    frame = read(realdata / "excel/readxl/Ekaterinburg_IP_9.xlsx", tmp_path, sheet=0, header_row=4)

    assert frame.height == 2192
    assert frame.row(-1)[0].startswith("Отчет подготовлен системой СПАРК")
    assert frame[SOURCE_ROW][-1] == 2197


def test_datasets_second_sheet_by_index(realdata: Path, tmp_path: Path) -> None:
    frame = read(realdata / "excel/readxl/datasets.xlsx", tmp_path, sheet=1)

    assert frame.columns == ["weight", "feed", SOURCE_ROW, READ_ERROR, ROW_KIND]
    assert frame.height == 71
    assert frame.row(0) == ("179", "horsebean", 2, None, "data")
    assert frame.row(-1) == ("332", "casein", 72, None, "data")


def test_numbers_have_no_float_noise(realdata: Path, tmp_path: Path) -> None:
    frame = read(realdata / "excel/readxl/datasets.xlsx", tmp_path, sheet="mtcars")

    assert frame.row(0)[:6] == ("21", "6", "160", "110", "3.9", "2.62")
    assert frame["wt"][2] == "2.32"
    assert frame.height == 32


def test_los_angeles_arrests_parts_at_zip_root(realdata: Path, tmp_path: Path) -> None:
    frame = read(realdata / "excel/readxl/los-angeles-arrests-xlsx.xlsx", tmp_path, header_row=3)

    assert frame.columns[:4] == ["BKG_NUM", "BKG_DT", "BKG_TM", "ARR_DIV"]
    assert frame.height == 193
    assert frame.row(0)[:4] == ("4894831", "01/30/17", "00:05", "4210")
    assert (frame[SOURCE_ROW][0], frame[SOURCE_ROW][-1]) == (4, 196)


@pytest.mark.parametrize(
    ("name", "columns"),
    [
        ("names-need-repair-xlsx.xlsx", ["a b", "a b_2", "column_3", "c%&$"]),
        ("unnamed-duplicated-columns.xlsx", ["column_1", "var2", "column_3", "var2_2"]),
    ],
)
def test_blank_and_duplicate_headers_are_repaired(
    name: str, columns: list[str], realdata: Path, tmp_path: Path
) -> None:
    frame = read(realdata / "excel/readxl" / name, tmp_path)

    assert frame.columns == [*columns, SOURCE_ROW, READ_ERROR, ROW_KIND]
    assert frame[SOURCE_ROW].to_list() == [2, 3]


def test_legacy_xls_dates_as_iso(realdata: Path, tmp_path: Path) -> None:
    path = realdata / "excel/readxl/deaths.xls"
    result = read_result(path, tmp_path, sheet="arts", header_row=5, footer_rows=4)
    frame = result.records.collect()
    data = frame.filter(pl.col(ROW_KIND) == "data")

    assert frame.columns[:6] == ["Name", "Profession", "Age", "Has kids", "Date of birth", "Date of death"]
    assert data.height == 10
    assert data.row(0) == (
        "David Bowie",
        "musician",
        "69",
        "true",
        "1947-01-08",
        "2016-01-10",
        6,
        None,
        "data",
    )
    assert data[SOURCE_ROW].to_list() == list(range(6, 16))
    # The four note rows below the data are footer rows, kept for the loader to validate.
    assert frame.filter(pl.col(ROW_KIND) == "footer")[SOURCE_ROW].to_list() == [16, 17, 18, 19]
    assert result.skipped == {
        "header": 1,
        "preamble": 4,
        "blank": 0,
        "comment": 0,
        "record_prefix": 0,
        "footer": 0,
    }
    assert sheet_rows(path, "arts") == frame.height + sum(result.skipped.values())


def test_cell_types_become_plain_text(tmp_path: Path) -> None:
    path = tmp_path / "types.xlsx"
    workbook = xlsxwriter.Workbook(path)
    sheet = workbook.add_worksheet("Sales")
    date_format = workbook.add_format({"num_format": "yyyy-mm-dd"})
    stamp_format = workbook.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
    sheet.write_row(2, 1, ["sku", "qty", "price", "sold", "flag"])
    sheet.write_row(3, 1, ["A", 12.0, 2.3199999999999998])
    sheet.write_datetime(3, 4, dt.datetime(2024, 3, 1), date_format)
    sheet.write_boolean(3, 5, True)
    sheet.write_row(5, 1, ["B", -3, 1e20])
    sheet.write_datetime(5, 4, dt.datetime(2024, 3, 1, 13, 5, 7), stamp_format)
    workbook.close()

    frame = read(path, tmp_path, sheet="Sales", header_row=3)

    assert frame.rows() == [
        ("A", "12", "2.32", "2024-03-01", "true", 4, None, "data"),
        ("B", "-3", "100000000000000000000", "2024-03-01 13:05:07", None, 6, None, "data"),
    ]


def test_truncated_workbook_is_unreadable(realdata: Path, tmp_path: Path) -> None:
    data = (realdata / "excel/readxl/datasets.xlsx").read_bytes()
    path = tmp_path / "truncated.xlsx"
    path.write_bytes(data[: len(data) // 2])

    with pytest.raises(UnreadableFileError, match=r"truncated\.xlsx: cannot be opened as a workbook"):
        read(path, tmp_path)


def test_missing_sheet_lists_the_sheets(realdata: Path, tmp_path: Path) -> None:
    with pytest.raises(
        UnreadableFileError, match=r"no sheet 'Sheet1'; its sheets are \['mtcars', 'chickwts', 'quakes'\]"
    ):
        read(realdata / "excel/readxl/datasets.xlsx", tmp_path, sheet="Sheet1")
    with pytest.raises(UnreadableFileError, match="no sheet number 3"):
        read(realdata / "excel/readxl/datasets.xlsx", tmp_path, sheet=3)


def test_header_row_past_the_end(realdata: Path, tmp_path: Path) -> None:
    with pytest.raises(UnreadableFileError, match="no header on row 50"):
        read(realdata / "excel/readxl/skipping.xlsx", tmp_path, header_row=50)


def _totals_workbook(path: Path) -> None:
    workbook = xlsxwriter.Workbook(path)
    sheet = workbook.add_worksheet("Sales")
    sheet.write_row(0, 0, ["Sales by store, March"])
    sheet.write_row(1, 0, ["sku", "qty"])
    sheet.write_row(2, 0, ["A", 1])
    sheet.write_row(3, 0, ["B", 2])
    sheet.write_row(4, 0, ["C", 3])
    # Row 6 is blank, then the totals; a formatted but empty row below is not a row at all.
    sheet.write_row(6, 0, ["Total", 6])
    sheet.write_blank(8, 0, None, workbook.add_format({"bold": True}))
    workbook.close()


def test_totals_after_a_blank_row_are_a_footer_row(tmp_path: Path) -> None:
    path = tmp_path / "totals.xlsx"
    _totals_workbook(path)

    two = read_result(path, tmp_path, sheet="Sales", header_row=2, footer_rows=2)
    three = read_result(path, tmp_path, sheet="Sales", header_row=2, footer_rows=3)

    assert two.records.collect().rows() == [
        ("A", "1", 3, None, "data"),
        ("B", "2", 4, None, "data"),
        ("C", "3", 5, None, "data"),
        ("Total", "6", 7, None, "footer"),
    ]
    assert two.skipped == {
        "header": 1,
        "preamble": 1,
        "blank": 0,
        "comment": 0,
        "record_prefix": 0,
        "footer": 1,
    }
    # One row more and the last data row falls in the footer zone: kept as a footer row, not lost.
    assert three.records.collect()[ROW_KIND].to_list() == ["data", "data", "footer", "footer"]
    assert three.skipped["footer"] == 1
    for result in (two, three):
        assert result.records.collect().height + sum(result.skipped.values()) == 7


@pytest.mark.parametrize(
    ("name", "sheet", "header_row", "footer_rows"),
    [
        ("skipping.xlsx", "two_blank_rows", 3, 0),
        ("skipping.xlsx", "occupied_row_and_blank_row", 3, 2),
        ("datasets.xlsx", "quakes", 1, 0),
        ("los-angeles-arrests-xlsx.xlsx", 0, 3, 5),
        ("deaths.xls", "other", 5, 4),
    ],
)
def test_every_sheet_row_is_a_record_or_skipped(
    name: str, sheet: str | int, header_row: int, footer_rows: int, realdata: Path, tmp_path: Path
) -> None:
    path = realdata / "excel/readxl" / name

    result = read_result(path, tmp_path, sheet=sheet, header_row=header_row, footer_rows=footer_rows)

    assert sheet_rows(path, sheet) == result.records.collect().height + sum(result.skipped.values())


_CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/xl/workbook.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
    '<Override PartName="/xl/worksheets/sheet1.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
    "</Types>"
)
_ROOT_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" '
    'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" '
    'Target="xl/workbook.xml"/></Relationships>'
)
_WORKBOOK = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
    'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
    '<sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>'
)
_WORKBOOK_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" '
    'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" '
    'Target="worksheets/sheet1.xml"/></Relationships>'
)


def write_workbook(path: Path, rows: int, cells_per_row: int = 1, compresslevel: int = 9) -> None:
    """A minimal valid xlsx whose one sheet holds `rows` identical rows of inline-string cells,
    written to the zip chunk by chunk (its XML is never held whole)."""
    cell = '<c t="inlineStr"><is><t>x</t></is></c>' * cells_per_row
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=compresslevel) as archive:
        archive.writestr("[Content_Types].xml", _CONTENT_TYPES)
        archive.writestr("_rels/.rels", _ROOT_RELS)
        archive.writestr("xl/workbook.xml", _WORKBOOK)
        archive.writestr("xl/_rels/workbook.xml.rels", _WORKBOOK_RELS)
        with archive.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as sheet:
            sheet.write(
                b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
                b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
            )
            row = f"<row>{cell}</row>".encode()
            batch = row * 10_000
            for _ in range(rows // 10_000):
                sheet.write(batch)
            sheet.write(row * (rows % 10_000))
            sheet.write(b"</sheetData></worksheet>")


def test_minimal_workbook_reads(tmp_path: Path) -> None:
    path = tmp_path / "small.xlsx"
    write_workbook(path, rows=3, cells_per_row=2)

    frame = read(path, tmp_path)

    assert frame.rows() == [("x", "x", 2, None, "data"), ("x", "x", 3, None, "data")]


def test_compression_ratio_past_the_limit_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "ratio.xlsx"
    write_workbook(path, rows=200_000)

    with pytest.raises(
        LimitExceededError, match=r"ratio\.xlsx: .*over limits\.max_workbook_compression_ratio = 200"
    ):
        read(path, tmp_path)
    frame = read_records(
        path,
        ExcelFormat(type="xlsx"),
        tmp_path / "work",
        limits=ReadLimits(max_workbook_compression_ratio=5000),
    ).records.collect()
    assert frame.height == 199_999


def test_workbook_past_the_size_limit_is_refused(realdata: Path, tmp_path: Path) -> None:
    limits = ReadLimits(max_workbook_uncompressed_bytes=50_000)

    for name in ("datasets.xlsx", "deaths.xls"):
        with pytest.raises(LimitExceededError, match=r"over limits\.max_workbook_uncompressed_bytes = 50000"):
            read_records(
                realdata / "excel/readxl" / name, ExcelFormat(type="xlsx"), tmp_path / "work", limits=limits
            )


def test_zip_bomb_is_refused_quickly_in_bounded_memory(tmp_path: Path) -> None:
    path = tmp_path / "bomb.xlsx"
    # 20 million rows: the sheet XML unpacks to a gigabyte from a file of 7 MB (the fastest
    # compression level keeps the test quick; the best one would make it 3 MB).
    write_workbook(path, rows=20_000_000, compresslevel=1)
    assert path.stat().st_size < 10_000_000

    run = run_in_child(
        """
        from pathlib import Path
        from schemas.feed_spec import ExcelFormat
        from transforms.readers import read_records
        outcome = read_records(Path(sys.argv[1]), ExcelFormat(type="xlsx"), Path(sys.argv[2])).records.collect().height
        """,
        str(path),
        str(tmp_path / "work"),
    )

    assert run.outcome.startswith("LimitExceededError"), run.outcome
    assert "bomb.xlsx" in run.outcome
    assert "limits.max_workbook_uncompressed_bytes = 268435456" in run.outcome
    assert run.seconds < 5
    assert run.peak_mib < 1024, f"peak RSS {run.peak_mib:.0f} MiB"
