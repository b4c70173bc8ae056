"""Fixed-width text: fields cut from each line by 1-based start and width, as a lazy Polars scan.

Only cutting lines into stripped String fields belongs here; which lines are data records is the
spec's `record_prefix` (header and trailer records carry other prefixes) or its `skip_rows` and
`footer_rows`. Blank lines (nothing but white space) are not records and are not counted in
`source_row`. Without a `record_prefix`, `footer_rows: N` is the last N lines up to the last
non-blank one, blank lines included: a non-blank line there is a record of kind "footer".
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from schemas.feed_spec import FixedWidthFormat
from schemas.limits import DEFAULT_LIMITS, ReadLimits
from transforms.readers.common import (
    READ_ERROR,
    ROW_KIND,
    SOURCE_ROW,
    ReadResult,
    UnreadableFileError,
    canonical_encoding,
    decode_chunks,
    skip_counts,
    transcode_to_utf8,
    unique_column_names,
)


def _utf8_source(path: Path, spec: FixedWidthFormat, work_dir: Path, limits: ReadLimits) -> Path:
    if canonical_encoding(path, spec.encoding) in ("utf-8", "utf-8-sig"):
        # Polars would fail only at collect time on bad UTF-8; decoding the file once here turns
        # that into an UnreadableFileError that names the byte (and measures the lines on the way).
        for _ in decode_chunks(path, spec.encoding, max_line_bytes=limits.max_line_bytes):
            pass
        return path
    return transcode_to_utf8(path, spec.encoding, work_dir, max_line_bytes=limits.max_line_bytes)


def _line_stats(lines: pl.LazyFrame, spec: FixedWidthFormat, path: Path) -> dict[str, int]:
    """One aggregate pass: the last non-blank line, and the counts `skipped` needs."""
    line_no = pl.col("line_no")
    blank = pl.col("line").str.strip_chars() == ""
    last_nonblank = line_no.filter(~blank).max()
    aggregates = [pl.len().alias("lines"), last_nonblank.alias("last_nonblank")]
    if spec.record_prefix is not None:
        aggregates += [
            blank.sum().alias("blank"),
            (~blank & ~pl.col("line").str.starts_with(spec.record_prefix)).sum().alias("record_prefix"),
        ]
    else:
        data = line_no >= spec.skip_rows
        aggregates += [
            (blank & data).sum().alias("blank"),
            # The footer zone holds at most `footer_rows` non-blank lines: the last ones.
            line_no.filter(~blank & data).tail(max(spec.footer_rows, 1)).implode().alias("tail"),
        ]
    try:
        stats = lines.select(aggregates).collect(engine="streaming").row(0, named=True)
    except pl.exceptions.PolarsError as error:
        raise UnreadableFileError(f"{path}: cannot be read as text lines: {error}") from error
    return stats


def read_fixed_width(
    path: Path, spec: FixedWidthFormat, work_dir: Path, *, limits: ReadLimits = DEFAULT_LIMITS
) -> ReadResult:
    """Read a fixed-width file into String columns plus `source_row`, `_read_error` and `_row_kind`.

    `source_row` numbers the records from 1. A line shorter than the layout is kept with
    `_read_error` saying how long it is; the fields it does not reach are null. Raises
    LimitExceededError for a line longer than `limits.max_line_bytes`.
    """
    source = _utf8_source(path, spec, work_dir, limits)
    lines = pl.scan_csv(
        source,
        has_header=False,
        separator="\x00",
        quote_char=None,
        schema={"line": pl.String},
        empty_string_is_null=False,
        raise_if_empty=False,
        encoding="utf8",
    ).with_row_index("line_no")
    line = pl.col("line")
    line_no = pl.col("line_no")
    stats = _line_stats(lines, spec, path)
    last_nonblank = stats["last_nonblank"] if stats["last_nonblank"] is not None else -1
    # Blank lines after the last non-blank one end the file; they are not rows.
    total_lines = stats["lines"]
    trailing_blanks = total_lines - 1 - last_nonblank
    kind = pl.lit("data")
    if spec.record_prefix is not None:
        records = lines.filter(line.str.starts_with(spec.record_prefix), line.str.strip_chars() != "")
        skipped = skip_counts(blank=stats["blank"] - trailing_blanks, record_prefix=stats["record_prefix"])
    else:
        preamble = min(spec.skip_rows, last_nonblank + 1)
        zone_start = max(last_nonblank - spec.footer_rows + 1, spec.skip_rows)
        footer_records = sum(1 for number in stats["tail"] if number >= zone_start) if spec.footer_rows else 0
        footer_lines = max(last_nonblank - zone_start + 1, 0) if spec.footer_rows else 0
        data_trailing = min(trailing_blanks, max(total_lines - spec.skip_rows, 0))
        blank = stats["blank"] - data_trailing
        skipped = skip_counts(
            preamble=preamble,
            blank=blank - (footer_lines - footer_records),
            footer=footer_lines - footer_records,
        )
        records = lines.filter(line_no >= spec.skip_rows, line.str.strip_chars() != "")
        if footer_records:
            kind = pl.when(line_no >= zone_start).then(pl.lit("footer")).otherwise(pl.lit("data"))
    names = unique_column_names([column.name for column in spec.columns])
    needed = max(column.start + column.width - 1 for column in spec.columns)
    length = line.str.len_chars()
    fields = [
        pl.when(length >= column.start)
        .then(line.str.slice(column.start - 1, column.width).str.strip_chars())
        .alias(name)
        for column, name in zip(spec.columns, names, strict=True)
    ]
    error = (
        pl.when(length < needed)
        .then(pl.format("line has {} characters, the layout needs {}", length, pl.lit(needed)))
        .otherwise(pl.lit(None, pl.String))
    )
    frame = records.with_row_index(SOURCE_ROW, offset=1).select(
        *fields, pl.col(SOURCE_ROW).cast(pl.Int64), error.alias(READ_ERROR), kind.alias(ROW_KIND)
    )
    return ReadResult(frame, skipped)
