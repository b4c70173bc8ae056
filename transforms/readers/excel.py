"""Workbooks (xlsx, and legacy xls): one sheet read with fastexcel (calamine) into String columns.

Only reading a sheet into raw text cells belongs here: numbers as written without float noise
(12.0 -> "12"), dates and datetimes as ISO text, blank rows skipped and counted, `source_row` the
sheet row, and the size checks that keep a zip bomb from being opened. Typing the cells is
`transforms.normalize`'s work.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import fastexcel
import polars as pl

from schemas.feed_spec import ExcelFormat
from schemas.limits import DEFAULT_LIMITS, ReadLimits
from transforms.readers.common import (
    READ_ERROR,
    ROW_KIND,
    SOURCE_ROW,
    LimitExceededError,
    ReadResult,
    UnreadableFileError,
    skip_counts,
    unique_column_names,
)

_SHEET_ROW = "__sheet_row"
_BLANK = "__blank"
_OLE_MAGIC = bytes.fromhex("d0cf11e0a1b11ae1")
"""The first bytes of an OLE compound file: a legacy xls, which is not compressed."""


def check_workbook_size(path: Path, limits: ReadLimits) -> None:
    """Refuse a workbook that would unpack past the limits, from the zip's central directory alone
    (nothing is extracted); a legacy xls counts its file size. A file that is neither is left for
    the workbook reader to refuse."""
    try:
        with path.open("rb") as handle:
            magic = handle.read(len(_OLE_MAGIC))
    except OSError as error:
        raise UnreadableFileError(f"{path}: cannot be opened: {error}") from error
    if magic == _OLE_MAGIC:
        size = path.stat().st_size
        if size > limits.max_workbook_uncompressed_bytes:
            raise LimitExceededError(
                path,
                "max_workbook_uncompressed_bytes",
                limits.max_workbook_uncompressed_bytes,
                f"the workbook (a legacy xls) is {size} bytes",
            )
        return
    try:
        with zipfile.ZipFile(path) as archive:
            parts = archive.infolist()
    except (zipfile.BadZipFile, OSError):
        return
    unpacked = sum(part.file_size for part in parts)
    packed = sum(part.compress_size for part in parts)
    if unpacked > limits.max_workbook_uncompressed_bytes:
        raise LimitExceededError(
            path,
            "max_workbook_uncompressed_bytes",
            limits.max_workbook_uncompressed_bytes,
            f"the workbook's {len(parts)} parts unpack to {unpacked} bytes",
        )
    ratio = unpacked / max(packed, 1)
    if ratio > limits.max_workbook_compression_ratio:
        raise LimitExceededError(
            path,
            "max_workbook_compression_ratio",
            limits.max_workbook_compression_ratio,
            f"the workbook's parts unpack to {ratio:.0f} times their compressed size "
            f"({unpacked} bytes from {packed})",
        )


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


def read_excel(path: Path, spec: ExcelFormat, *, limits: ReadLimits = DEFAULT_LIMITS) -> ReadResult:
    """Read one sheet: header on `spec.header_row`, records below it, `source_row` = sheet row.

    Rows with no value in any cell are skipped and counted (their sheet row numbers are not
    reused). `footer_rows: N` is the last N sheet rows up to the last non-blank one, blank rows
    included: a non-blank row there is a record of kind "footer", a blank one is skipped as
    "footer". Raises LimitExceededError for a workbook past `limits` (before opening it), and
    UnreadableFileError naming the file and sheet for a corrupt workbook, a missing sheet or a
    header row past the end of the sheet.
    """
    check_workbook_size(path, limits)
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
    cell_blank = [
        pl.col(column).is_null() | (pl.col(column).str.strip_chars() == "") for column in raw_columns
    ]
    frame = frame.with_columns(_as_text(pl.col(column)) for column in raw_columns).with_columns(
        (pl.all_horizontal(cell_blank) if raw_columns else pl.lit(True)).alias(_BLANK)
    )
    # Rows after the last non-blank one are only the sheet's used range being tall: not rows at all.
    last_nonblank = frame.filter(~pl.col(_BLANK))[_SHEET_ROW].max() or 0
    assert isinstance(last_nonblank, int)
    zone_start = last_nonblank - spec.footer_rows + 1
    row = pl.col(_SHEET_ROW)
    body = frame.filter(row > spec.header_row, row <= last_nonblank)
    blank = body.filter(_BLANK)
    footer_blanks = blank.filter(row >= zone_start).height
    skipped = skip_counts(
        preamble=min(spec.header_row - 1, last_nonblank),
        header=1 if spec.header_row <= last_nonblank else 0,
        blank=blank.height - footer_blanks,
        footer=footer_blanks,
    )
    data = body.filter(~pl.col(_BLANK))
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
    kind = pl.when(row >= zone_start).then(pl.lit("footer")).otherwise(pl.lit("data"))
    records = data.select(
        *(pl.col(column).alias(name) for (column, _), name in zip(kept, names, strict=True)),
        row.cast(pl.Int64).alias(SOURCE_ROW),
        pl.lit(None, pl.String).alias(READ_ERROR),
        kind.alias(ROW_KIND),
    )
    return ReadResult(records.lazy(), skipped)
