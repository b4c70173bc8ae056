"""Workbooks (xlsx, and legacy xls): one sheet read with fastexcel (calamine) into String columns.

Only reading a sheet into raw text cells belongs here: numbers as written without float noise
(12.0 -> "12"), dates and datetimes as ISO text, blank rows skipped, `source_row` the sheet row.
Typing the cells is `transforms.normalize`'s work.
"""

from __future__ import annotations

from pathlib import Path

import fastexcel
import polars as pl

from schemas.feed_spec import ExcelFormat
from transforms.readers.common import READ_ERROR, SOURCE_ROW, UnreadableFileError, unique_column_names

_SHEET_ROW = "__sheet_row"


def _open(path: Path) -> fastexcel.ExcelReader:
    try:
        return fastexcel.read_excel(path)
    except (fastexcel.FastExcelError, OSError) as error:
        raise UnreadableFileError(
            f"{path}: cannot be opened as a workbook (truncated, corrupt, or not xlsx/xls): {error}; "
            "ask the sender to re-export the file"
        ) from error


def _load(path: Path, reader: fastexcel.ExcelReader, sheet: str | int) -> pl.DataFrame:
    names = reader.sheet_names
    if isinstance(sheet, int) and not 0 <= sheet < len(names):
        raise UnreadableFileError(
            f"{path}: has no sheet number {sheet} (0-based); its sheets are {names}: "
            "check the feed spec's sheet"
        )
    if isinstance(sheet, str) and sheet not in names:
        raise UnreadableFileError(
            f"{path}: has no sheet {sheet!r}; its sheets are {names}: check the feed spec's sheet"
        )
    try:
        # header_row=None with skip_rows=0 keeps leading blank rows, so row i is sheet row i + 1.
        loaded = reader.load_sheet(sheet, header_row=None, skip_rows=0, dtypes="string")
        frame = pl.DataFrame(loaded.to_arrow())
    except fastexcel.FastExcelError as error:
        raise UnreadableFileError(
            f"{path}: sheet {sheet!r} cannot be read (the workbook may be truncated or corrupt): {error}"
        ) from error
    return frame


def _as_text(column: pl.Expr) -> pl.Expr:
    # fastexcel renders every cell as text already (integral floats without ".0", shortest float
    # repr); a date cell comes as a datetime at midnight, which is a date.
    return column.str.replace(r"^(\d{4}-\d{2}-\d{2}) 00:00:00$", "$1")


def read_excel(path: Path, spec: ExcelFormat) -> pl.LazyFrame:
    """Read one sheet: header on `spec.header_row`, records below it, `source_row` = sheet row.

    Rows with no value in any cell are skipped (their sheet row numbers are not reused). Raises
    UnreadableFileError naming the file and sheet for a corrupt workbook, a missing sheet or a
    header row past the end of the sheet.
    """
    reader = _open(path)
    frame = _load(path, reader, spec.sheet)
    raw_columns = frame.columns
    frame = frame.with_row_index(_SHEET_ROW, offset=1)
    header = frame.filter(pl.col(_SHEET_ROW) == spec.header_row)
    if header.height == 0:
        raise UnreadableFileError(
            f"{path}: sheet {spec.sheet!r} has {frame.height} row(s), so there is no header on row "
            f"{spec.header_row}: check the feed spec's header_row"
        )
    header_values = (
        header.select(_as_text(pl.col(column)) for column in raw_columns).row(0) if raw_columns else ()
    )
    data = frame.filter(pl.col(_SHEET_ROW) > spec.header_row).with_columns(
        _as_text(pl.col(column)) for column in raw_columns
    )
    cell_blank = [
        pl.col(column).is_null() | (pl.col(column).str.strip_chars() == "") for column in raw_columns
    ]
    data = data.filter(~pl.all_horizontal(cell_blank)) if raw_columns else data.clear()
    # A column with neither a header nor any value is only the sheet's used range being wide.
    kept = [
        (column, value)
        for column, value in zip(raw_columns, header_values, strict=True)
        if (value is not None and value.strip()) or data[column].is_not_null().any()
    ]
    # A blank header is named by its column's position in the sheet's used range, not among kept ones.
    names = unique_column_names(
        [
            value if value and value.strip() else f"column_{raw_columns.index(column) + 1}"
            for column, value in kept
        ]
    )
    if spec.footer_rows:
        data = data.head(max(data.height - spec.footer_rows, 0))
    return data.select(
        *(pl.col(column).alias(name) for (column, _), name in zip(kept, names, strict=True)),
        pl.col(_SHEET_ROW).cast(pl.Int64).alias(SOURCE_ROW),
        pl.lit(None, pl.String).alias(READ_ERROR),
    ).lazy()
