"""The workbook reader on readxl's sheets: header rows, sheet-row numbering, blank rows, text cells."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import xlsxwriter

from schemas.feed_spec import ExcelFormat
from transforms.readers import READ_ERROR, SOURCE_ROW, UnreadableFileError, read_records


def read(path: Path, tmp_path: Path, **spec: object):
    return read_records(path, ExcelFormat(type="xlsx", **spec), tmp_path / "work").collect()


@pytest.mark.parametrize("sheet", ["two_blank_rows", "occupied_row_and_blank_row", "two_occupied_rows"])
def test_skipping_keeps_sheet_row_numbers(sheet: str, realdata: Path, tmp_path: Path) -> None:
    frame = read(realdata / "excel/readxl/skipping.xlsx", tmp_path, sheet=sheet, header_row=3)

    assert frame.rows() == [("v2,1", "v2,2", 5, None), ("v4,1", "v4,2", 7, None)]
    assert frame.columns == ["var1", "var2", SOURCE_ROW, READ_ERROR]


def test_ekaterinburg_cyrillic_sheet_header_on_row_4(realdata: Path, tmp_path: Path) -> None:
    frame = read(
        realdata / "excel/readxl/Ekaterinburg_IP_9.xlsx",
        tmp_path,
        sheet="СПАРК - Список",
        header_row=4,
        footer_rows=1,
    )

    # The file's own header mixes scripts: a Cyrillic O, a Latin K, then Cyrillic letters.
    assert frame.columns[:4] == ["ФИО", "Дата регистрации", "Отрасль", "ОKВЭД"]  # noqa: RUF001
    assert frame.height == 2191
    assert frame.row(0)[:2] == ("Аббасов Илал Газанфар Оглы", "27.05.2004")
    assert frame.row(0)[4:7] == ("90193989", "666400272572", "304667414800060")
    assert frame.row(0)[-2:] == (5, None)
    assert frame.row(-1)[0] == "Ярушев Юрий Александрович"
    assert frame[SOURCE_ROW][-1] == 2195


def test_ekaterinburg_without_footer_keeps_the_note_row(realdata: Path, tmp_path: Path) -> None:
    frame = read(realdata / "excel/readxl/Ekaterinburg_IP_9.xlsx", tmp_path, sheet=0, header_row=4)

    assert frame.height == 2192
    assert frame.row(-1)[0].startswith("Отчет подготовлен системой СПАРК")
    assert frame[SOURCE_ROW][-1] == 2197


def test_datasets_second_sheet_by_index(realdata: Path, tmp_path: Path) -> None:
    frame = read(realdata / "excel/readxl/datasets.xlsx", tmp_path, sheet=1)

    assert frame.columns == ["weight", "feed", SOURCE_ROW, READ_ERROR]
    assert frame.height == 71
    assert frame.row(0) == ("179", "horsebean", 2, None)
    assert frame.row(-1) == ("332", "casein", 72, None)


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

    assert frame.columns == [*columns, SOURCE_ROW, READ_ERROR]
    assert frame[SOURCE_ROW].to_list() == [2, 3]


def test_legacy_xls_dates_as_iso(realdata: Path, tmp_path: Path) -> None:
    frame = read(realdata / "excel/readxl/deaths.xls", tmp_path, sheet="arts", header_row=5, footer_rows=4)

    assert frame.columns[:6] == ["Name", "Profession", "Age", "Has kids", "Date of birth", "Date of death"]
    assert frame.height == 10
    assert frame.row(0) == ("David Bowie", "musician", "69", "true", "1947-01-08", "2016-01-10", 6, None)
    assert frame[SOURCE_ROW].to_list() == list(range(6, 16))


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
        ("A", "12", "2.32", "2024-03-01", "true", 4, None),
        ("B", "-3", "100000000000000000000", "2024-03-01 13:05:07", None, 6, None),
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
