"""Delimited text (CSV of any dialect): a fast Polars scan and a tolerant row-by-row parser.

The fast path is a lazy `pl.scan_csv` with every column as String, guarded by a survey of the
file's lines (see `_survey`) so Polars can never pad, merge or count a record silently. Files or
dialects Polars cannot parse go to the tolerant parser, which keeps every record and says what is
wrong with it in `_read_error`. Mapping and typing of the columns belong in `transforms.normalize`.

Definitions shared by both paths, so they number records identically:
- `skip_rows` counts physical lines; blank lines before the header are skipped too.
- A blank line (no characters at all) and a line starting with `comment_prefix` are not records:
  they are skipped and not counted. `source_row` counts data records from 1.
- A record whose field count differs from the header's is kept, padded with nulls or cut to the
  header's width, with `_read_error` saying "record has 7 fields, the header has 5".
- A quoted field that never closes, or that spans lines and closes with text after the closing
  quote, is taken as an unbalanced stray quote: its first line is re-read with quote characters as
  plain text and flagged, and the following lines are read as records of their own, so a stray
  quote can never swallow the rest of the file.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from schemas.feed_spec import CsvFormat
from transforms.readers.common import (
    READ_ERROR,
    SOURCE_ROW,
    UnreadableFileError,
    canonical_encoding,
    drop_footer,
    iter_lines,
    line_body,
    spill_records,
    transcode_to_utf8,
    unique_column_names,
)

POLARS_READ_ERRORS: tuple[type[BaseException], ...] = (
    pl.exceptions.PolarsError,
    pl.exceptions.PanicException,
)
"""Exceptions raised when collecting a fast-path LazyFrame that mean "retry with tolerant=True"."""

MAX_RECORD_LINES = 10_000
"""A quoted field running over more lines than this is taken as a stray quote, not as data."""

MAX_SURVEY_ANOMALIES = 200_000
"""Past this many irregular lines the tolerant parser is the better tool for the file."""

_POLARS_ROW = "__polars_row"
_UNBALANCED_QUOTE = "unbalanced quote: the line was read with quote characters as plain text"


@dataclass(frozen=True)
class _Dialect:
    delimiter: str
    quote: str | None
    escape: str | None
    comment: str | None

    @classmethod
    def of(cls, spec: CsvFormat) -> _Dialect:
        quote = spec.quote_char or None
        # An escape equal to the quote is RFC 4180's doubled quote, which both parsers handle anyway.
        escape = spec.escape_char if spec.escape_char and spec.escape_char != quote else None
        return cls(spec.delimiter, quote, escape, spec.comment_prefix or None)

    @property
    def polars_can_parse(self) -> bool:
        """Polars takes one-byte separators and quotes, has no escape character, and its comment
        prefix is at most five bytes."""

        def single_byte(text: str | None) -> bool:
            return text is None or (len(text) == 1 and text.isascii())

        return (
            len(self.delimiter) == 1
            and self.delimiter.isascii()
            and self.delimiter not in "\r\n"
            and single_byte(self.quote)
            and self.quote != self.delimiter
            and self.escape is None
            and (self.comment is None or (self.comment.isascii() and len(self.comment) <= 5))
        )


@dataclass
class _Record:
    fields: list[str]
    error: str | None
    lines: int


class _RecordSplitter:
    """Splits lines into records, quote- and escape-aware, for any delimiter length."""

    def __init__(self, lines: Iterator[str], dialect: _Dialect) -> None:
        self._lines = lines
        self._pushed_back: list[str] = []
        self._dialect = dialect
        self.lines_read = 0
        self.last_line_ended_with_bare_cr = False

    def _next_line(self) -> str | None:
        line = self._pushed_back.pop() if self._pushed_back else next(self._lines, None)
        if line is not None:
            self.lines_read += 1
            self.last_line_ended_with_bare_cr = line.endswith("\r")
        return line

    def _push_back(self, lines: list[str]) -> None:
        self._pushed_back.extend(reversed(lines))
        self.lines_read -= len(lines)

    def skip_lines(self, count: int) -> int:
        """Skip up to `count` physical lines; returns how many there were."""
        skipped = 0
        while skipped < count and self._next_line() is not None:
            skipped += 1
        return skipped

    def next_record(self) -> _Record | None:
        """The next record, skipping blank and comment lines; None at the end of the file."""
        while True:
            line = self._next_line()
            if line is None:
                return None
            body, _ = line_body(line)
            if not body:
                continue
            if self._dialect.comment and body.startswith(self._dialect.comment):
                continue
            return self._parse(line)

    def _parse(self, first: str) -> _Record:
        delimiter, quote, escape = self._dialect.delimiter, self._dialect.quote, self._dialect.escape
        body, terminator = line_body(first)
        if (quote is None or quote not in body) and (escape is None or escape not in body):
            return _Record(body.split(delimiter), None, 1)
        consumed = [first]
        fields: list[str] = []
        position = 0
        while True:
            field_start = position
            if quote is not None and body.startswith(quote, position):
                buffer: list[str] = []
                position += 1
                while True:
                    stop = _find_first(body, position, quote, escape)
                    if stop == -1:
                        buffer += [body[position:], terminator]
                        line = self._next_line() if len(consumed) < MAX_RECORD_LINES else None
                        if line is None:
                            return self._reread_unquoted(consumed)
                        consumed.append(line)
                        body, terminator = line_body(line)
                        position = 0
                        continue
                    buffer.append(body[position:stop])
                    if escape is not None and body.startswith(escape, stop):
                        buffer.append(body[stop + len(escape) : stop + len(escape) + 1])
                        position = stop + len(escape) + 1
                        continue
                    if body.startswith(quote, stop + 1):
                        buffer.append(quote)
                        position = stop + 2
                        continue
                    position = stop + 1
                    break
                if position == len(body):
                    fields.append("".join(buffer))
                    return _Record(fields, None, len(consumed))
                if body.startswith(delimiter, position):
                    fields.append("".join(buffer))
                    position += len(delimiter)
                    continue
                # Text after a closing quote: a stray quote. Within one line the field keeps its raw
                # text; across lines the quote swallowed line ends that were not its own.
                if len(consumed) > 1:
                    return self._reread_unquoted(consumed)
                end = body.find(delimiter, position)
                if end == -1:
                    fields.append(body[field_start:])
                    return _Record(fields, None, 1)
                fields.append(body[field_start:end])
                position = end + len(delimiter)
                continue
            value, position = self._unquoted_field(body, position)
            fields.append(value)
            if position == -1:
                return _Record(fields, None, len(consumed))

    def _unquoted_field(self, body: str, position: int) -> tuple[str, int]:
        """The field starting at `position` and where the next one starts (-1 at the end of the line)."""
        delimiter, escape = self._dialect.delimiter, self._dialect.escape
        pieces: list[str] = []
        while True:
            stop = _find_first(body, position, delimiter, escape)
            if stop == -1:
                pieces.append(body[position:])
                return "".join(pieces), -1
            pieces.append(body[position:stop])
            if escape is not None and body.startswith(escape, stop):
                pieces.append(body[stop + len(escape) : stop + len(escape) + 1])
                position = stop + len(escape) + 1
                continue
            return "".join(pieces), stop + len(delimiter)

    def _reread_unquoted(self, consumed: list[str]) -> _Record:
        self._push_back(consumed[1:])
        body, _ = line_body(consumed[0])
        fields: list[str] = []
        position = 0
        while position != -1:
            value, position = self._unquoted_field(body, position)
            fields.append(value)
        return _Record(fields, _UNBALANCED_QUOTE, 1)


def _find_first(text: str, start: int, first: str, second: str | None) -> int:
    a = text.find(first, start)
    if second is None:
        return a
    b = text.find(second, start)
    if a == -1:
        return b
    return a if b == -1 else min(a, b)


def field_count_error(count: int, width: int) -> str:
    """The `_read_error` of a record whose field count differs from the header's."""
    return f"record has {count} fields, the header has {width}"


def _fit(record: _Record, width: int) -> tuple[list[str | None], str | None]:
    fields: list[str | None] = list(record.fields)
    errors = [record.error] if record.error else []
    if len(fields) != width:
        message = field_count_error(len(fields), width)
        if len(fields) > width:
            extra = fields[width:]
            message += f"; dropped the extra fields {extra!r}"[:500]
            fields = fields[:width]
        else:
            fields += [None] * (width - len(fields))
        errors.append(message)
    return fields, "; ".join(errors) or None


def _header(path: Path, splitter: _RecordSplitter, spec: CsvFormat) -> list[str]:
    splitter.skip_lines(spec.skip_rows)
    if not spec.has_header:
        return unique_column_names(spec.column_names or [])
    header = splitter.next_record()
    if header is None:
        raise UnreadableFileError(
            f"{path}: no header row found (the file is empty after skipping {spec.skip_rows} line(s)): "
            "check the file, or the feed spec's skip_rows and has_header"
        )
    return unique_column_names(header.fields)


def _read_tolerant(path: Path, encoding: str, spec: CsvFormat, work_dir: Path) -> pl.LazyFrame:
    dialect = _Dialect.of(spec)
    splitter = _RecordSplitter(iter_lines(path, encoding), dialect)
    names = _header(path, splitter, spec)

    def records() -> Iterator[tuple[int, list[str | None], str | None]]:
        number = 0
        while (record := splitter.next_record()) is not None:
            number += 1
            fields, error = _fit(record, len(names))
            yield number, fields, error

    return spill_records(names, drop_footer(records(), spec.footer_rows), work_dir, path.stem)


@dataclass
class _Layout:
    names: list[str]
    data_start: int
    """Physical lines before the first data record: title rows, blank lines and the header."""


@dataclass
class _Survey:
    polars_rows: int
    blank_rows: list[int] = field(default_factory=list)
    short_rows: dict[int, int] = field(default_factory=dict)


def _layout(path: Path, spec: CsvFormat, dialect: _Dialect) -> _Layout | None:
    """Where the data starts, in lines Polars can skip; None when only the tolerant parser can tell."""
    splitter = _RecordSplitter(iter_lines(path, "utf-8"), dialect)
    names = _header(path, splitter, spec)
    # A bare CR ending a line means classic Mac line ends, which Polars does not split on.
    if splitter.last_line_ended_with_bare_cr:
        return None
    return _Layout(names, splitter.lines_read)


def _rx(text: str) -> str:
    return "".join(f"\\x{{{ord(char):X}}}" for char in text)


def _survey(path: Path, layout: _Layout, dialect: _Dialect) -> _Survey | None:
    """Check, line by line and in Polars, that the fast parse will see exactly the records the
    tolerant parser would; None when it would not (the tolerant parser then reads the file).

    Polars pads a short record with empty strings and reads a blank line as a record of empty
    strings, silently. The survey finds both, with their row numbers, so the fast path can flag
    the one and drop the other; it also sends stray quotes, unterminated quotes and long records
    to the tolerant parser. Only lines that are not plainly one full record each get a closer
    look, so a clean file costs one cheap pass over its lines.
    """
    width = len(layout.names)
    line = pl.col("line")
    delimiter = dialect.delimiter
    lines = pl.scan_csv(
        path,
        has_header=False,
        skip_lines=layout.data_start,
        separator="\x00",
        quote_char=None,
        schema={"line": pl.String},
        empty_string_is_null=False,
        raise_if_empty=False,
    ).with_row_index("line_no")
    delimiters = line.str.count_matches(delimiter, literal=True)
    comment = line.str.starts_with(dialect.comment) if dialect.comment else pl.lit(False)
    # Polars ends lines at LF only and drops the CR of a CRLF; a CR left anywhere is a bare CR, which
    # the tolerant parser (and Excel, and Python) takes as a line end.
    bare_cr = line.str.contains("\r", literal=True)
    if dialect.quote is None:
        candidates = lines.filter((delimiters + 1 != width) | (line == "") | comment | bare_cr).with_columns(
            quotes=pl.lit(0, pl.UInt32), fields=delimiters + 1
        )
        regular = ~bare_cr
    else:
        q, d = _rx(dialect.quote), _rx(delimiter)
        quotes = line.str.count_matches(dialect.quote, literal=True)
        # Each well-formed quoted field becomes one placeholder; what is left must hold no quote,
        # and every placeholder must fill a whole field.
        masked = pl.col("masked")
        # Counting quotes and masking quoted fields only on lines holding a quote keeps the pass over
        # a clean file to one delimiter count and one byte search per line.
        candidates = (
            lines.filter(
                line.str.contains(dialect.quote, literal=True)
                | (delimiters + 1 != width)
                | (line == "")
                | comment
                | bare_cr
            )
            .with_columns(quotes=quotes)
            .with_columns(masked=line.str.replace_all(f"{q}(?:[^{q}]|{q}{q})*{q}", "\x01"))
            .with_columns(fields=masked.str.count_matches(delimiter, literal=True) + 1)
        )
        # A line with an odd number of quotes opens or closes a field spanning lines: its quoting is
        # checked on the whole record, once the record's lines are put together.
        regular = (
            ((pl.col("quotes") % 2 == 1) | ~masked.str.contains(dialect.quote, literal=True))
            & ~masked.str.contains(f"[^{d}]\x01|\x01[^{d}]")
            & ~bare_cr
            # Polars skips a comment line before it looks at quotes; the quote parity here would not.
            & ~(comment & (pl.col("quotes") > 0))
        )
    flagged = candidates.select(
        "line_no",
        "fields",
        odd=pl.col("quotes") % 2 == 1,
        blank=line == "",
        comment=comment,
        regular=regular,
    ).filter(
        pl.col("odd") | pl.col("blank") | pl.col("comment") | ~pl.col("regular") | (pl.col("fields") != width)
    )
    try:
        anomalies = flagged.head(MAX_SURVEY_ANOMALIES + 1).collect(engine="streaming")
        line_count = lines.select(pl.len()).collect().item()
    except POLARS_READ_ERRORS:
        return None
    if anomalies.height > MAX_SURVEY_ANOMALIES:
        return None

    # Lines with an odd number of quotes open and close quoted fields that span lines, in pairs.
    odd_lines = anomalies.filter("odd")["line_no"].to_list()
    if len(odd_lines) % 2:
        return None
    spans = list(zip(odd_lines[::2], odd_lines[1::2], strict=True))
    if any(last - first >= MAX_RECORD_LINES for first, last in spans):
        return None
    span_texts = _span_texts(lines, spans) if spans else {}
    if span_texts is None:
        return None
    span_end = dict(spans)
    count_fields = _multiline_counter(dialect) if spans else None

    survey = _Survey(polars_rows=0)
    skipped_lines = 0
    inside_until = -1
    for row in anomalies.iter_rows(named=True):
        line_no = row["line_no"]
        if line_no <= inside_until:
            continue
        polars_row = line_no - skipped_lines
        if not row["regular"]:
            return None
        if line_no in span_end:
            last = span_end[line_no]
            assert count_fields is not None
            count = count_fields(span_texts[line_no])
            if count is None or count > width:
                return None
            if count != width:
                survey.short_rows[polars_row] = count
            skipped_lines += last - line_no
            inside_until = last
        elif row["comment"]:
            skipped_lines += 1
        elif row["blank"]:
            survey.blank_rows.append(polars_row)
        elif row["fields"] > width:
            return None
        else:
            survey.short_rows[polars_row] = row["fields"]
    survey.polars_rows = line_count - skipped_lines
    # Polars takes the field count from the first line it parses: a first short or blank line breaks it.
    if 0 in survey.short_rows or (survey.blank_rows and survey.blank_rows[0] == 0):
        return None
    return survey


def _span_texts(lines: pl.LazyFrame, spans: list[tuple[int, int]]) -> dict[int, list[str]] | None:
    """The lines of each record that spans lines, keyed by its first line."""
    wanted = [number for first, last in spans for number in range(first, last + 1)]
    if len(wanted) > MAX_SURVEY_ANOMALIES:
        return None
    try:
        found = lines.filter(pl.col("line_no").is_in(wanted)).collect()
    except POLARS_READ_ERRORS:
        return None
    by_line = dict(zip(found["line_no"].to_list(), found["line"].to_list(), strict=True))
    return {first: [by_line[number] for number in range(first, last + 1)] for first, last in spans}


def _multiline_counter(dialect: _Dialect) -> Callable[[list[str]], int | None]:
    """Counts the fields of a record spanning lines; None when its quoting is not well formed."""
    assert dialect.quote is not None
    q, d = re.escape(dialect.quote), re.escape(dialect.delimiter)
    quoted = re.compile(f"{q}(?:[^{q}]|{q}{q})*{q}")
    value = f"(?:{quoted.pattern}|[^{q}{d}\\n]*)"
    whole = re.compile(f"{value}(?:{d}{value})*")

    def count_fields(lines: list[str]) -> int | None:
        text = "\n".join(lines)
        if "\r" in text or not whole.fullmatch(text):
            return None
        return quoted.sub("", text).count(dialect.delimiter) + 1

    return count_fields


def _scan_fast(
    path: Path, spec: CsvFormat, dialect: _Dialect, layout: _Layout, survey: _Survey
) -> pl.LazyFrame:
    names = layout.names
    frame = pl.scan_csv(
        path,
        has_header=False,
        skip_lines=layout.data_start,
        separator=dialect.delimiter,
        quote_char=dialect.quote,
        comment_prefix=dialect.comment,
        schema=dict.fromkeys(names, pl.String),
        empty_string_is_null=False,
        raise_if_empty=False,
        encoding="utf8",
        row_index_name=_POLARS_ROW,
    )
    if survey.short_rows:
        rows = list(survey.short_rows)
        counts = [survey.short_rows[row] for row in rows]
        messages = [field_count_error(count, len(names)) for count in counts]
        row = pl.col(_POLARS_ROW)
        error = row.replace_strict(rows, messages, default=None, return_dtype=pl.String)
        # Polars pads a short record with empty strings; the tolerant parser pads with nulls.
        count = row.replace_strict(rows, counts, default=len(names), return_dtype=pl.Int64)
        frame = frame.with_columns(
            pl.when(count > position).then(pl.col(name)).alias(name) for position, name in enumerate(names)
        )
    else:
        error = pl.lit(None, pl.String)
    frame = frame.with_columns(error.alias(READ_ERROR))
    if survey.blank_rows:
        frame = frame.filter(~pl.col(_POLARS_ROW).is_in(survey.blank_rows)).with_row_index(
            SOURCE_ROW, offset=1
        )
        source_row = pl.col(SOURCE_ROW).cast(pl.Int64)
    else:
        source_row = (pl.col(_POLARS_ROW) + 1).cast(pl.Int64)
    frame = frame.select(*names, source_row.alias(SOURCE_ROW), READ_ERROR)
    if spec.footer_rows:
        records = survey.polars_rows - len(survey.blank_rows)
        frame = frame.filter(pl.col(SOURCE_ROW) <= records - spec.footer_rows)
    return frame


def read_delimited(path: Path, spec: CsvFormat, work_dir: Path, *, tolerant: bool = False) -> pl.LazyFrame:
    """Read a delimited file into String columns plus `source_row` and `_read_error`.

    The fast path returns a lazy Polars scan; collecting it may still raise one of
    `POLARS_READ_ERRORS` on input the survey could not foresee, and the caller then calls again
    with `tolerant=True`. The tolerant path parses the file here, spilling to Parquet in `work_dir`.
    Raises UnreadableFileError for a file that no parser can read.
    """
    dialect = _Dialect.of(spec)
    codec = canonical_encoding(path, spec.encoding)
    if tolerant or not dialect.polars_can_parse:
        return _read_tolerant(path, spec.encoding, spec, work_dir)
    source = path if codec in ("utf-8", "utf-8-sig") else transcode_to_utf8(path, spec.encoding, work_dir)
    layout = _layout(source, spec, dialect)
    survey = _survey(source, layout, dialect) if layout is not None else None
    if layout is None or survey is None:
        return _read_tolerant(source, "utf-8", spec, work_dir)
    return _scan_fast(source, spec, dialect, layout, survey)
