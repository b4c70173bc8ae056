"""Redacted copies of raw files: blank chosen values where a file writes them, keep every other byte.

What belongs here: finding the places (`Spot`s) where a file of a given format writes a value (in
the file's encoding, and in the format's escaped forms: doubled quotes in CSV, JSON string escapes,
XML entities inside a workbook's parts, X12 elements of a composed address) and writing a copy with
some of them blanked. A blank is the same text with every character but line breaks turned into a
space, so widths, line counts and byte offsets of fixed layouts hold, and the reader trims it to
"not reported" (in X12, whose elements are delimited, an empty element). Which records are whose, and proving that the copy reads the same as the original
but for the erased values, is the caller's (`ingest.forget`). No I/O but reading the file given.
"""

from __future__ import annotations

import codecs
import io
import json
import re
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from schemas.feed_spec import FileFormat

WORKBOOK_PARTS = re.compile(r"^xl/(sharedStrings\.xml|worksheets/[^/]+\.xml)$")
"""The parts of an xlsx workbook that hold cell text."""


@dataclass(frozen=True)
class Spot:
    """One place a value is written: bytes `start`..`end` of `part` (`""` for a plain file, the member
    name inside a workbook), and what to write there instead."""

    part: str
    start: int
    end: int
    blank: bytes
    value: str


@dataclass(frozen=True)
class RawFile:
    """A file's bytes as redaction sees them: one part, or a workbook's members in their order."""

    parts: dict[str, bytes]
    members: tuple[zipfile.ZipInfo, ...] = ()


def open_raw(path: Path, file_format: FileFormat) -> RawFile:
    """The bytes of `path`, a workbook opened into its members."""
    data = path.read_bytes()
    if file_format.type != "xlsx":
        return RawFile({"": data})
    with zipfile.ZipFile(io.BytesIO(data)) as workbook:
        members = tuple(workbook.infolist())
        return RawFile({member.filename: workbook.read(member) for member in members}, members)


def find_spots(raw: RawFile, values: Iterable[str], file_format: FileFormat) -> list[Spot]:
    """Every place `raw` writes one of `values` as a whole field, longest values first, none overlapping."""
    found: list[Spot] = []
    for part in _searched_parts(raw, file_format):
        data = raw.parts[part]
        for codec in _codecs(file_format):
            whole = _field_test(data, file_format, codec)
            for value in {v for v in values if v}:
                for form in _forms(value, file_format):
                    try:
                        needle, blank = form.encode(codec), _blank(form, file_format).encode(codec)
                    except UnicodeEncodeError:
                        continue
                    start = data.find(needle)
                    while start != -1:
                        end = start + len(needle)
                        if whole(start, end):
                            found.append(Spot(part, start, end, blank, value))
                        start = data.find(needle, start + 1)
    chosen: list[Spot] = []
    taken: dict[str, list[tuple[int, int]]] = {}
    for spot in sorted(found, key=lambda s: (-(s.end - s.start), s.part, s.start)):
        spans = taken.setdefault(spot.part, [])
        if any(spot.start < end and start < spot.end for start, end in spans):
            continue
        spans.append((spot.start, spot.end))
        chosen.append(spot)
    return sorted(chosen, key=lambda s: (s.part, s.start))


def write_redacted(raw: RawFile, spots: Iterable[Spot]) -> bytes:
    """The file's bytes with every spot blanked (a workbook re-zipped with its members' settings)."""
    parts = dict(raw.parts)
    for spot in sorted(spots, key=lambda s: (s.part, s.start), reverse=True):
        data = parts[spot.part]
        parts[spot.part] = data[: spot.start] + spot.blank + data[spot.end :]
    if not raw.members:
        return parts[""]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as workbook:
        for member in raw.members:
            workbook.writestr(member, parts[member.filename], compress_type=member.compress_type)
    return buffer.getvalue()


def _blank(form: str, file_format: FileFormat) -> str:
    """What replaces a value: spaces (line breaks kept), so fixed layouts keep their widths; nothing
    in X12, whose elements are delimited (a reader joins blank elements into a non-blank address)."""
    if file_format.type == "x12":
        return ""
    return "".join(char if char in "\r\n" else " " for char in form)


def _codecs(file_format: FileFormat) -> list[str]:
    """The codecs a value's text may be written in (a byte-order mark is not part of a value)."""
    if file_format.type == "xlsx":
        return ["utf-8"]
    name = codecs.lookup(getattr(file_format, "encoding", "utf-8")).name
    return {
        "utf-8-sig": ["utf-8"],
        "utf-16": ["utf-16-le", "utf-16-be"],
        "utf-32": ["utf-32-le", "utf-32-be"],
    }.get(name, [name])


def _forms(value: str, file_format: FileFormat) -> list[str]:
    """How a file of this format may write `value` (the reader's trimmed text of a field)."""
    forms = [value]
    if "\n" in value and "\r\n" not in value:
        forms.append(value.replace("\n", "\r\n"))
    kind = file_format.type
    quote = getattr(file_format, "quote_char", None)
    if kind == "csv" and quote and quote in value:
        forms += [form.replace(quote, quote * 2) for form in list(forms)]
    if kind in ("json", "jsonl"):
        forms += [json.dumps(value, ensure_ascii=False)[1:-1], json.dumps(value)[1:-1]]
    if kind == "xlsx":
        escaped = value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        forms += [escaped, escaped.replace('"', "&quot;").replace("'", "&apos;")]
    if kind == "x12":
        forms += _x12_pieces(value)
    return sorted(set(forms), key=len, reverse=True)


def _x12_pieces(value: str) -> list[str]:
    """The elements an X12 reader may have joined into one value: an address is `N301 N302, N401
    N402 N403`, so every run of its words may be one element."""
    pieces = []
    for part in re.split(r",\s*", value):
        words = part.split()
        pieces += [" ".join(words[i:j]) for i in range(len(words)) for j in range(i + 1, len(words) + 1)]
    return [piece for piece in pieces if piece]


def _searched_parts(raw: RawFile, file_format: FileFormat) -> list[str]:
    if file_format.type == "xlsx":
        return [name for name in raw.parts if WORKBOOK_PARTS.match(name)]
    return list(raw.parts)


X12_PARTY_SEGMENTS = frozenset({"N1", "N2", "N3", "N4", "PER"})
"""The X12 segments that name a party (its name, address, contact): the only ones searched."""


def _field_test(data: bytes, file_format: FileFormat, codec: str) -> Callable[[int, int], bool]:
    """A test of whether the bytes at start..end of `data` are a whole field of the format, not part
    of a longer one. Checked on single-byte boundaries of ASCII-compatible codecs only; elsewhere every
    place counts, and the caller's read-back decides."""
    kind = file_format.type
    if not _ascii_compatible(codec) or kind not in ("json", "jsonl", "xlsx", "csv", "x12"):
        return lambda start, end: True
    if kind in ("json", "jsonl"):
        return lambda start, end: _next_char(data, start - 1, -1) == '"' == _next_char(data, end, 1)
    if kind == "xlsx":
        return lambda start, end: data[start - 1 : start] == b">" and data[end : end + 1] == b"<"
    if kind == "csv":
        delimiter = getattr(file_format, "delimiter", ",") or ","
        quote = getattr(file_format, "quote_char", None) or ""
        edges = {delimiter, quote, "\r", "\n", ""}
        return lambda start, end: (
            _next_char(data, start - 1, -1) in edges and _next_char(data, end, 1) in edges
        )
    element, component, terminator = _x12_delimiters(data)
    edges = {element, component, terminator, "\r", "\n", ""}

    def x12_whole(start: int, end: int) -> bool:
        before = chr(data[start - 1]) if start else ""
        after = chr(data[end]) if end < len(data) else ""
        if before not in edges or after not in edges:
            return False
        segment = data.rfind(terminator.encode("latin-1"), 0, start) + 1
        tag = data[segment:start].decode("latin-1").lstrip().split(element, 1)[0]
        return tag in X12_PARTY_SEGMENTS

    return x12_whole


def _next_char(data: bytes, index: int, step: int) -> str:
    """The first character from `index` on (going `step`) that is not a space or tab; "" at an end."""
    while 0 <= index < len(data) and data[index] in (0x20, 0x09):
        index += step
    return chr(data[index]) if 0 <= index < len(data) else ""


def _ascii_compatible(codec: str) -> bool:
    probe = "\t\r\n \"',;|*:~<>"
    try:
        return probe.encode(codec) == probe.encode("ascii")
    except UnicodeEncodeError:
        return False


def _x12_delimiters(data: bytes) -> tuple[str, str, str]:
    """(element, component, segment terminator) as the interchange's ISA declares them."""
    head = data[:512].lstrip()[:106].decode("latin-1")
    if head.startswith("ISA") and len(head) >= 106:
        return head[3], head[104], head[105]
    return "*", ":", "~"
