"""The X12 EDI reader: 867 product transfer and resale reports -> sell-out records, 852 product
activity reports -> inventory records, streamed chunk by chunk with flat memory.

What belongs here: the interchange envelope (delimiters from ISA, control-number checks), the
segment tokenizer, and the mapping of 867/852 loops to canonical field names. Parsing numbers and
dates into types, unit factors and validation happen later, in `transforms.normalize`.

No X12 library is used: the Python ones known to us (pyx12, HIPAA-oriented) build objects segment
by segment in Python and map no 867/852 loops to records; the tokenizer here is a few Polars passes.

How a file is read
- Delimiters come from the first ISA: element separator = the byte after "ISA", component
  separator = ISA16, segment terminator = the character after ISA16, repetition separator = ISA11
  when it is not `U`. Line breaks and indentation after terminators and a UTF-8 BOM are ignored.
- The file is decoded (strictly, in the spec's encoding) and cut into chunks at segment
  terminators; each chunk is encoded as UTF-8 and tokenized with NumPy on its bytes: segment
  offsets from the terminator positions (leading white space skipped, empty segments dropped),
  tags from each segment's first bytes, element offsets from the element separator positions. No
  Python code runs per segment. Keys (interchange, group, transaction set, PTD loop, line item)
  come from cumulative sums and forward fills of the tags. The context a chunk's line items need
  from earlier chunks (the open ISA, GS, ST, the set's header segments, the open PTD loop or 852
  location) is carried into the next chunk as text, and a line item cut by a chunk boundary is
  read in the next chunk.
- 867: each value's segment is found per line item by binary search (`searchsorted`) among the
  segments that can give it, and the elements of the chosen segments are taken in one Arrow `take`
  from a token array over the chunk's bytes; the records are finished with Polars expressions.
  852: the chunk's segments become a Polars frame (text, tag, keys) read with Polars passes.
- Records are spilled to Parquet in the work folder chunk by chunk (by a writer thread, while the
  next chunk is read); envelope checks are settled at the end and applied to the spilled records
  lazily (a join on the transaction set).

Records
- 867: one record per line-item loop: the QTY loop of a PTD loop (QTY, LIN, UIT, CTP, AMT, ...);
  a PTD loop whose first item segment is LIN has LIN-headed items instead. Columns are the sell-out
  fields (`SELLOUT_FIELDS`) plus `reported_quantity` (QTY02 as sent), `reseller_id` (N104),
  `reseller_city` and `reseller_state` (N401, N402).
- 852: one record per LIN loop and location: the quantities of its ZA loops (QA on hand, QP on
  order, QS sold, QR received, QI in transit), an SDQ's per-location quantities exploded into one
  record per location, else the location of the latest N1 of `location_party_codes`. Columns are
  the inventory fields (`INVENTORY_FIELDS`) plus `quantity_sold`, `quantity_received` and
  `quantity_in_transit`.
- `source_row` is the 1-based position of the line-item loop in the file (an 852 LIN exploded into
  several locations gives several records with the same `source_row`); `_row_kind` is "data".
- Dates are written as YYYY-MM-DD (a six-digit YYMMDD date is taken as 20YY when YY < 50, else
  19YY); numbers are written as sent, except the signs below.

Where an 867 value comes from, most specific first (line item, then its PTD loop, then the set's
header; within the line item the first such segment, in a loop or header the latest before it):
- transaction_date: DTM of the spec's `date_qualifiers` in their order, else any DTM, else BPT03;
- invoice_number: REF IV, IK or IN (or PTD04/PTD05); invoice_line: REF LI, else LIN01 when digits;
- distributor_sku: LIN id of the first of `product_id_qualifiers` present; quantity and unit:
  QTY02 and QTY03 (else UIT01); unit_price: UIT02, else CTP03; net_amount: AMT of
  `amount_qualifiers`; currency: CUR02;
- reseller and end customer: the N1 of `reseller_party_codes` / `end_customer_party_codes`, code
  order first, then the most specific level; name N102, id N104, address N3, city/state/postal/
  country N4, phone and e-mail from PER (TE, EM).
Element text is not trimmed here (normalize trims); an empty element counts as absent.

Signs (867, from PTD01 via `TRANSFER_TYPES` and the spec's `transfer_types`)
- sale: quantity and net_amount as sent;
- return: quantity and net_amount negative whatever their sent sign;
- price_adjustment and other: quantity "0" (they carry no units; QTY02 stays in
  `reported_quantity`), net_amount as sent.

Envelope checks: ISA13 = IEA02, IEA01 = the number of groups, GS06 = GE02, GE01 = the number of
sets, ST02 = SE02, SE01 = the number of segments ST..SE, CTT01 = the number of line items (or of PTD
loops, 867), and ST01 = the spec's transaction set. A set failing one is rejected whole: every line
item of it is still emitted, with a `_read_error` naming ST02, GS06 and ISA13 and what failed (so
the loader quarantines it), and a note says so; the other sets load. A line item outside any
transaction set, or (867) before the set's first PTD, is emitted with a `_read_error` too.

`skipped` (besides the keys of `SKIP_REASONS`, all 0 here) counts, per `X12_SKIP_REASONS`:
- `empty_transaction_set`: transaction sets (ST..SE) that held no line item, so gave no record;
- `stray_segment`: segments outside any ST..SE other than the ISA, GS, GE and IEA envelope.
The envelope, header and summary segments of a set with line items are part of its records.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa

from schemas.feed_spec import INVENTORY_FIELDS, SELLOUT_FIELDS, FeedSpec, X12Format
from schemas.limits import ReadLimits
from transforms.readers.common import (
    READ_ERROR,
    ROW_KIND,
    SKIP_REASONS,
    SOURCE_ROW,
    LimitExceededError,
    ReadResult,
    UnreadableFileError,
    decode_chunks,
)

SELLOUT_EXTRA_COLUMNS: tuple[str, ...] = (
    "reported_quantity",
    "reseller_id",
    "reseller_city",
    "reseller_state",
)
INVENTORY_EXTRA_COLUMNS: tuple[str, ...] = ("quantity_sold", "quantity_received", "quantity_in_transit")
SELLOUT_COLUMNS: tuple[str, ...] = (*SELLOUT_FIELDS, *SELLOUT_EXTRA_COLUMNS)
INVENTORY_COLUMNS: tuple[str, ...] = (*INVENTORY_FIELDS, *INVENTORY_EXTRA_COLUMNS)

X12_SKIP_REASONS: tuple[str, ...] = ("empty_transaction_set", "stray_segment")

TRANSFER_TYPES: dict[str, str] = {
    **dict.fromkeys(("SS", "DS", "SD", "SH", "CS"), "sale"),
    **dict.fromkeys(("BN", "RV", "RU"), "return"),
    **dict.fromkeys(("PA", "BP", "RB", "RP"), "price_adjustment"),
}
"""PTD01 product transfer type -> transaction_type: SS stock sale, DS drop ship sale, SD ship and
debit sale, SH ship and debit, CS contract sale; BN return, RV return to vendor, RU return to
usable inventory; PA price adjustment, BP broken price, RB return of broken price, RP return of
list price. Any other code (SU summary, IB interbranch, SA stocking adjustment, ...) is `other`."""

ACTIVITY_COLUMNS: dict[str, str] = {
    "QA": "quantity_on_hand",
    "QP": "quantity_on_order",
    "QS": "quantity_sold",
    "QR": "quantity_received",
    "QI": "quantity_in_transit",
}
"""852 ZA01 activity code -> column. Other codes (QO out of stock, ...) are not read."""

INVOICE_REF_QUALIFIERS: tuple[str, ...] = ("IV", "IK", "IN")
"""REF qualifiers of an invoice number, in order of preference (IV seller's invoice number)."""

TRANSACTION_SET_NAMES: dict[str, str] = {
    "180": "return merchandise authorization",
    "270": "eligibility inquiry",
    "271": "eligibility response",
    "810": "invoice",
    "812": "credit/debit adjustment",
    "816": "organizational relationships",
    "832": "price/sales catalog",
    "837": "health care claim",
    "844": "product transfer account adjustment",
    "845": "price authorization",
    "846": "inventory inquiry/advice",
    "849": "response to product transfer account adjustment",
    "850": "purchase order",
    "852": "product activity data",
    "855": "purchase order acknowledgment",
    "856": "ship notice",
    "860": "purchase order change",
    "867": "product transfer and resale report",
    "940": "warehouse shipping order",
    "997": "functional acknowledgment",
    "999": "implementation acknowledgment",
}

READ_TRANSACTION_SETS = ("867", "852")

CHUNK_CHARS = 1 << 23
"""Characters decoded before a chunk is cut into segments and read: peak memory is set by this,
not by the file (about 400 MiB peak RSS for an 867 of 100 to 400 MB, measured by
benchmarks/x12_throughput.py)."""

SNIFF_BYTES = 1 << 16
MAX_NOTES = 20

_WHITESPACE = " \t\r\n"
_SET_COLUMN = "_x12_set"
_SET_ERROR = "_x12_set_error"

_TAGS = (
    "ISA", "GS", "ST", "SE", "GE", "IEA", "CTT", "BPT", "PTD", "QTY", "LIN", "UIT", "CTP", "AMT",
    "CUR", "DTM", "REF", "N1", "N2", "N3", "N4", "PER", "XQ", "ZA", "SDQ",
)  # fmt: skip
_CODE = {tag: number for number, tag in enumerate(_TAGS, start=1)}
(
    ISA, GS, ST, SE, GE, IEA, CTT, BPT, PTD, QTY, LIN, UIT, CTP, AMT,
    CUR, DTM, REF, N1, N2, N3, N4, PER, XQ, ZA, SDQ,
) = (_CODE[tag] for tag in _TAGS)  # fmt: skip
_OUTER = (GE, IEA, ISA, GS)
_PARTY_TAGS = (N2, N3, N4, PER)


@dataclass(frozen=True)
class Delimiters:
    """The separators an interchange declares in its ISA segment."""

    element: str
    component: str
    segment: str
    repetition: str | None


# ---------------------------------------------------------------------------------------------
# The envelope: delimiters, sniffing, a default spec.


def read_delimiters(head: str, path: Path) -> Delimiters:
    """The delimiters declared by the ISA segment at the start of `head` (the file's first
    characters, BOM and leading white space removed); UnreadableFileError when there is none."""
    if not head.startswith("ISA") or len(head) < 4:
        shown = head[:20].encode("unicode_escape").decode("ascii")
        raise UnreadableFileError(
            f"{path}: not an X12 interchange: it should start with an ISA segment, found {shown!r}; "
            "check that the file is the EDI file itself (not a report or an acknowledgment of it)"
        )
    element = head[3]
    if element.isalnum() or element in _WHITESPACE:
        raise UnreadableFileError(
            f"{path}: the ISA segment's element separator {element!r} is a letter, digit or space; "
            "the file is not valid X12"
        )
    position = 3
    for _ in range(15):
        position = head.find(element, position + 1)
        if position == -1:
            break
    if position == -1 or position + 2 >= len(head):
        raise UnreadableFileError(
            f"{path}: the ISA segment is incomplete (it needs 16 elements, then the segment terminator); "
            "the file is truncated or not X12"
        )
    component, segment = head[position + 1], head[position + 2]
    elements = head[4:position].split(element)
    repetition = elements[10] if len(elements) > 10 else "U"
    chosen = [element, component, segment]
    if len(repetition) == 1 and not repetition.isalnum() and repetition not in (*chosen, *_WHITESPACE):
        repetition_separator: str | None = repetition
    else:
        repetition_separator = None
    if len(set(chosen)) < 3 or component.isalnum() or segment.isalnum() or segment == " ":
        raise UnreadableFileError(
            f"{path}: the ISA segment declares unusable delimiters (element {element!r}, component "
            f"{component!r}, segment terminator {segment!r}): they must be distinct and not letters or digits"
        )
    return Delimiters(element, component, segment, repetition_separator)


def _head_text(path: Path, encoding: str, size: int = SNIFF_BYTES) -> str:
    text = ""
    for chunk in decode_chunks(path, encoding):
        text += chunk
        if len(text) >= size:
            break
    return text.lstrip(_WHITESPACE)


def sniff_transaction_set(path: Path, encoding: str = "utf-8") -> str | None:
    """The transaction set id (ST01, e.g. "867") of the first transaction set in `path`, reading
    only the file's start; None when the file is not an X12 interchange or shows no ST there."""
    try:
        head = _head_text(path, encoding)
        delimiters = read_delimiters(head, path)
    except UnreadableFileError:
        return None
    for segment in head.split(delimiters.segment):
        segment = segment.lstrip(_WHITESPACE)
        if segment.startswith("ST" + delimiters.element):
            return segment.split(delimiters.element)[1] or None
    return None


def describe_transaction_set(code: str) -> str:
    """ "810 (invoice)", or the bare code when it is not a known transaction set."""
    name = TRANSACTION_SET_NAMES.get(code)
    return f"{code} ({name})" if name else code


def x12_spec(transaction_set: str, distributor_id: str = "x12") -> FeedSpec:
    """A feed spec for an X12 file read with every default: 867 -> sellout, 852 -> inventory.

    For `throughline inspect FILE.edi` without a spec (X12 is self-describing). Country and
    currency are placeholders (US, USD) that only fill in what the file does not say.
    """
    if transaction_set not in READ_TRANSACTION_SETS:
        raise UnreadableFileError(
            f"X12 {describe_transaction_set(transaction_set)}: Throughline reads 867 and 852 transaction sets"
        )
    inventory = transaction_set == "852"
    data = {
        "id": distributor_id,
        "name": f"X12 {describe_transaction_set(transaction_set)}",
        "country": "US",
        "currency": "USD",
        "dataset": "inventory" if inventory else "sellout",
        "file_patterns": ["*.edi", "*.x12", "*.txt", "*.dat"],
        "format": {"type": "x12", "transaction_set": transaction_set},
        "natural_key": (
            ["snapshot_date", "location_id", "distributor_sku"]
            if inventory
            else [
                "transaction_date",
                "invoice_number",
                "invoice_line",
                "transfer_code",
                "reseller_name",
                "reseller_postal_code",
                "distributor_sku",
                "quantity",
                "net_amount",
            ]
        ),
    }
    return FeedSpec.model_validate(data)


# ---------------------------------------------------------------------------------------------
# Envelope bookkeeping across chunks.


@dataclass
class _SetInfo:
    st01: str
    st02: str
    group: int
    interchange: int
    segments: int = 0
    items: int = 0
    loops: int = 0
    se01: str | None = None
    se02: str | None = None
    ctt01: str | None = None


@dataclass
class _GroupInfo:
    gs06: str
    interchange: int
    sets: int = 0
    ge01: str | None = None
    ge02: str | None = None


@dataclass
class _InterchangeInfo:
    isa13: str
    groups: int = 0
    iea01: str | None = None
    iea02: str | None = None


@dataclass
class _Envelope:
    sets: dict[int, _SetInfo] = field(default_factory=dict)
    groups: dict[int, _GroupInfo] = field(default_factory=dict)
    interchanges: dict[int, _InterchangeInfo] = field(default_factory=dict)


def _same_control(a: str | None, b: str | None) -> bool:
    if a is None or b is None:
        return False
    a, b = a.strip(), b.strip()
    if a.isdigit() and b.isdigit():
        return int(a) == int(b)
    return a == b


def _count_is(text: str | None, count: int) -> bool:
    return text is not None and text.strip().isdigit() and int(text.strip()) == count


def _set_problems(info: _SetInfo, envelope: _Envelope, expected: str) -> list[str]:
    problems: list[str] = []
    if info.st01 != expected:
        problems.append(
            f"it is an X12 {describe_transaction_set(info.st01)}, not the {expected} this feed reads"
        )
    if info.se02 is None:
        problems.append("it has no SE trailer (the file is truncated or the set is cut)")
    else:
        if not _same_control(info.st02, info.se02):
            problems.append(f"SE02 {info.se02!r} does not match ST02")
        if not _count_is(info.se01, info.segments):
            problems.append(f"SE01 says {info.se01!r} segments, found {info.segments}")
    if info.ctt01 is not None and not (
        _count_is(info.ctt01, info.items) or (info.st01 == "867" and _count_is(info.ctt01, info.loops))
    ):
        problems.append(f"CTT01 says {info.ctt01!r} line items, found {info.items}")
    group = envelope.groups.get(info.group)
    if group is None:
        problems.append("it is not inside a functional group (no GS)")
    elif group.ge02 is None:
        problems.append(f"its functional group GS06={group.gs06} has no GE trailer")
    else:
        if not _same_control(group.gs06, group.ge02):
            problems.append(f"GE02 {group.ge02!r} does not match GS06 {group.gs06!r}")
        if not _count_is(group.ge01, group.sets):
            problems.append(f"GE01 says {group.ge01!r} transaction sets, found {group.sets}")
    interchange = envelope.interchanges.get(info.interchange)
    if interchange is None:
        problems.append("it is not inside an interchange (no ISA)")
    elif interchange.iea02 is None:
        problems.append(f"its interchange ISA13={interchange.isa13} has no IEA trailer")
    else:
        if not _same_control(interchange.isa13, interchange.iea02):
            problems.append(f"IEA02 {interchange.iea02!r} does not match ISA13 {interchange.isa13!r}")
        if not _count_is(interchange.iea01, interchange.groups):
            problems.append(f"IEA01 says {interchange.iea01!r} functional groups, found {interchange.groups}")
    return problems


# ---------------------------------------------------------------------------------------------
# Column expressions.


def _rx(char: str) -> str:
    """`char` as a regex literal that Rust's regex accepts anywhere (also inside a class)."""
    return f"\\x{{{ord(char):X}}}"


def _iso_date(expr: pl.Expr) -> pl.Expr:
    """CCYYMMDD or YYMMDD text -> YYYY-MM-DD; anything else is left as sent (normalize flags it)."""
    eight = expr.str.contains(r"^\d{8}$")
    six = expr.str.contains(r"^\d{6}$")
    century = (
        pl.when(expr.str.slice(0, 2).cast(pl.Int32, strict=False) < 50)
        .then(pl.lit("20"))
        .otherwise(pl.lit("19"))
    )
    return (
        pl.when(eight)
        .then(
            pl.concat_str(
                [expr.str.slice(0, 4), pl.lit("-"), expr.str.slice(4, 2), pl.lit("-"), expr.str.slice(6, 2)]
            )
        )
        .when(six)
        .then(
            pl.concat_str(
                [
                    century,
                    expr.str.slice(0, 2),
                    pl.lit("-"),
                    expr.str.slice(2, 2),
                    pl.lit("-"),
                    expr.str.slice(4, 2),
                ]
            )
        )
        .otherwise(expr)
    )


def _negative(expr: pl.Expr) -> pl.Expr:
    """The number text made negative whatever its sent sign."""
    return (
        pl.when(expr.str.starts_with("-"))
        .then(expr)
        .otherwise(pl.concat_str([pl.lit("-"), expr.str.strip_prefix("+")]))
    )


def _blank_to_null(expr: pl.Expr) -> pl.Expr:
    return pl.when(expr == "").then(pl.lit(None, dtype=pl.String)).otherwise(expr)


def _rank(expr: pl.Expr, order: list[str] | tuple[str, ...]) -> pl.Expr:
    """Position of the code in `order` (0 = preferred), null when it is not listed."""
    return expr.replace_strict(
        {code: rank for rank, code in enumerate(order)}, default=None, return_dtype=pl.Int32
    )


def _first_row(candidates: list[pl.Expr]) -> pl.Expr:
    """The first candidate row number that is not a fill stop (-1), else -1."""
    return pl.coalesce([pl.when(c >= 0).then(c) for c in candidates]).fill_null(-1)


# ---------------------------------------------------------------------------------------------
# One chunk as byte offsets: segments, tags, loop keys, elements.

_SPACE = np.zeros(256, dtype=bool)
_SPACE[[ord(ch) for ch in _WHITESPACE]] = True
_TAG2 = np.zeros(1 << 16, dtype=np.uint8)
_TAG3 = sorted((int.from_bytes(tag.encode(), "big"), code) for tag, code in _CODE.items() if len(tag) == 3)
_TAG3_KEYS = np.array([key for key, _ in _TAG3], dtype=np.int64)
_TAG3_CODES = np.array([code for _, code in _TAG3], dtype=np.uint8)
for _tag, _code in _CODE.items():
    if len(_tag) == 2:
        _TAG2[int.from_bytes(_tag.encode(), "big")] = _code
_SUBSTITUTES = "".join(map(chr, (*range(0x1C, 0x20), *range(0x01, 0x09), *range(0x0E, 0x1C), 0x7F)))


def _first_found(candidates: list[np.ndarray], size: int) -> np.ndarray:
    """Per line item the first candidate row that is not -1, else -1."""
    out = np.full(size, -1, dtype=np.int64)
    for candidate in candidates:
        out = np.where(out >= 0, out, candidate)
    return out


def _int64_array(values: np.ndarray, valid: np.ndarray) -> pa.Array:
    """An Arrow int64 array of `values`, null where not `valid` (built from buffers: `pa.array` of
    a NumPy array imports pandas, half a second)."""
    values = np.ascontiguousarray(values, dtype=np.int64)
    bitmap = pa.py_buffer(np.packbits(valid, bitorder="little"))
    return pa.Array.from_buffers(pa.int64(), values.size, [bitmap, pa.py_buffer(values)])


def _forward_fill(mask: np.ndarray, values: np.ndarray, default: object) -> np.ndarray:
    """`values` at the latest row where `mask` holds (that row included), `default` before any."""
    at = np.where(mask, np.arange(mask.size), -1)
    np.maximum.accumulate(at, out=at)
    return np.where(at >= 0, values[np.maximum(at, 0)], default)


class _Chunk:
    """One chunk (the carried context, then the new text) encoded as UTF-8: its segments as byte
    offsets (leading white space skipped, empty ones dropped), their tags and the loop keys, all
    NumPy arrays computed with no Python code per segment. Elements are taken from a token array:
    an Arrow string array over the chunk's bytes (no copy) whose even values are the text between
    two delimiters, so the elements of any set of segments are one `take`."""

    def __init__(self, reader: _X12Reader, context: str, text: str) -> None:
        d = reader.delimiters
        self.restore: dict[int, str] = {}
        element, terminator = d.element, d.segment
        if not (element.isascii() and terminator.isascii()):
            # A non-ASCII delimiter is several bytes in UTF-8: read with an absent control
            # character in its place, put back in the segment text handed out.
            used = {d.element, d.segment, d.component, d.repetition}
            free = (ch for ch in _SUBSTITUTES if ch not in used and ch not in context and ch not in text)
            table: dict[int, str] = {}
            for original in (element, terminator):
                if not original.isascii():
                    substitute = next(free, None)
                    if substitute is None:
                        raise UnreadableFileError(
                            f"{reader.path}: the X12 delimiter {original!r} is not ASCII"
                        )
                    table[ord(original)] = substitute
                    self.restore[ord(substitute)] = original
            context, text = context.translate(table), text.translate(table)
            element, terminator = (chr(ord(table.get(ord(ch), ch))) for ch in (element, terminator))
        head = context.encode()
        self.buf = buf = head + text.encode() if head else text.encode()
        a = np.frombuffer(buf, dtype=np.uint8)
        size = a.size
        el, term = ord(element), ord(terminator)
        terms = np.flatnonzero(a == term)
        end = np.append(terms, size)
        start = np.zeros_like(end)
        start[1:] = terms + 1
        active = np.flatnonzero(start < end)
        active = active[_SPACE[a[start[active]]]]
        while active.size:
            start[active] += 1
            active = active[start[active] < end[active]]
            active = active[_SPACE[a[start[active]]]]
        keep = start < end
        self.start, self.end = start[keep], end[keep]
        self.n = n = int(self.start.size)
        self.n_context = int(np.searchsorted(self.start, len(head)))
        length = self.end - self.start
        longest = int(length.max()) if n else 0
        if longest > reader.limit:
            raise LimitExceededError(
                reader.path,
                "max_line_bytes",
                reader.limit,
                f"a segment of {longest} bytes (more than {reader.limit})",
            )
        # Tags: two or three bytes followed by the element separator or the segment's end.
        b = [
            np.where(length > offset, a[np.minimum(self.start + offset, max(size - 1, 0))], 0).astype(
                np.int64
            )
            for offset in range(4)
        ]
        key2 = (b[0] << 8) | b[1]
        key3 = (key2 << 8) | b[2]
        k = np.where((length == 2) | (b[2] == el), _TAG2[key2], 0).astype(np.uint8)
        three = np.flatnonzero((length == 3) | (b[3] == el))
        at = np.minimum(np.searchsorted(_TAG3_KEYS, key3[three]), _TAG3_KEYS.size - 1)
        k[three] = np.where(_TAG3_KEYS[at] == key3[three], _TAG3_CODES[at], k[three])
        self.k = k
        # Delimiter positions (and the end), for elements.
        delims = np.flatnonzero((a == el) | (a == term))
        self._delims = np.append(delims, size)
        self._first = np.searchsorted(self._delims, self.start)
        self._count = np.searchsorted(self._delims, self.end) - self._first
        self._a = a
        self._tokens: pa.StringArray | None = None
        self._keys(reader)

    def _keys(self, reader: _X12Reader) -> None:
        k = self.k
        is_st, is_se, is_ctt, is_ptd = k == ST, k == SE, k == CTT, k == PTD
        outer = np.isin(k, _OUTER)
        if reader.expected == "867":
            # A PTD loop's line items are headed by the first of QTY / LIN found in it.
            ptd_bound = is_st | is_ptd | is_ctt | is_se | outer
            items = np.flatnonzero((k == QTY) | (k == LIN))
            region = np.cumsum(ptd_bound)[items]
            first = np.ones(items.size, dtype=bool)
            first[1:] = region[1:] != region[:-1]
            first_of = np.maximum.accumulate(np.where(first, np.arange(items.size), 0))
            is_head = np.zeros(k.size, dtype=bool)
            is_head[items[k[items] == k[items[first_of]]]] = True
            bound = is_head | ptd_bound
        else:
            is_head = k == LIN
            bound = is_head | is_st | (k == N1) | is_ctt | is_se | outer
        zone = np.full(k.size, 255, dtype=np.uint8)
        zone[outer] = 0
        zone[is_ctt | is_se] = 4
        zone[is_head] = 3
        zone[is_ptd] = 2
        if reader.expected == "852":
            # An N1 ends a line item and opens a location: header-level context.
            zone[k == N1] = 1
        zone[is_st] = 1
        self.is_head, self.bound = is_head, bound
        self.zone = _forward_fill(zone != 255, zone, 0).astype(np.uint8)
        self.ptd_open = _forward_fill(is_st | is_ctt | is_se | outer | is_ptd, is_ptd, False).astype(bool)
        after_se = _forward_fill(is_st | is_se | outer, ~is_st, True).astype(bool)
        self.in_set = ~after_se | is_se
        self.set_no = np.cumsum(is_st, dtype=np.int64) + reader.base_set
        self.gs_no = np.cumsum(k == GS, dtype=np.int64) + reader.base_group
        self.isa_no = np.cumsum(k == ISA, dtype=np.int64) + reader.base_interchange
        self.ptd_no = np.cumsum(is_st | is_ptd, dtype=np.int64)

    def text(self, lo: int, hi: int) -> str:
        """The chunk's text between two byte offsets."""
        text = self.buf[lo:hi].decode("utf-8")
        return text.translate(self.restore) if self.restore else text

    def _spans(self, rows: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Start, end and presence of element `n` (n >= 1) of each of `rows` (all >= 0)."""
        first = self._first[rows]
        present = self._count[rows] >= n
        at = np.where(present, first + n, first)
        return self._delims[np.maximum(at - 1, 0)] + 1, self._delims[at], present

    def nonempty(self, rows: np.ndarray, n: int) -> np.ndarray:
        start, end, present = self._spans(rows, n)
        return present & (end > start)

    def equals(self, rows: np.ndarray, n: int, literal: str) -> np.ndarray:
        start, end, present = self._spans(rows, n)
        raw = literal.encode()
        same = present & (end - start == len(raw))
        for offset, byte in enumerate(raw):
            same &= self._a[np.where(same, start + offset, 0)] == byte
        return same

    def elements(self, wanted: list[tuple[np.ndarray, int]]) -> list[pl.Series]:
        """Element `n` (n >= 1) of each of `rows`, for each (rows, n) of `wanted`, as text: null for
        a row of -1, a missing element or an empty one. One `take` from the token array for all."""
        if self._tokens is None:
            d = self._delims
            offsets = np.empty(2 * d.size + 1, dtype=np.int32)
            offsets[0] = 0
            offsets[1::2] = d
            offsets[2::2] = np.minimum(d + 1, self._a.size)
            self._tokens = pa.StringArray.from_buffers(
                2 * d.size, pa.py_buffer(offsets), pa.py_buffer(self.buf)
            )
        indexes, masks = [], []
        for rows, n in wanted:
            ok = rows >= 0
            safe = np.where(ok, rows, 0)
            token = self._first[safe] + np.minimum(self._count[safe], n)
            ok &= (self._count[safe] >= n) & (
                self._delims[token] > self._delims[np.maximum(token - 1, 0)] + 1
            )
            indexes.append(2 * token)
            masks.append(ok)
        index, mask = np.concatenate(indexes), np.concatenate(masks)
        taken = pl.Series(self._tokens.take(_int64_array(index, mask)), dtype=pl.String)
        out, at = [], 0
        for rows, _ in wanted:
            out.append(taken.slice(at, rows.size))
            at += rows.size
        return out

    def tag(self, rows: np.ndarray) -> pl.Series:
        ok = rows >= 0
        return pl.Series(self.k[np.where(ok, rows, 0)], dtype=pl.UInt8).set(pl.Series(~ok), None)

    def segments(self, rows: np.ndarray) -> pl.Series:
        """The text of each of `rows`; null for -1."""
        ok = rows >= 0
        unique, inverse = np.unique(rows[ok], return_inverse=True)
        if not unique.size:
            return pl.Series([None] * rows.size, dtype=pl.String)
        offsets = np.empty(2 * unique.size, dtype=np.int32)
        offsets[0::2] = self.start[unique]
        offsets[1::2] = self.end[unique]
        array = pa.StringArray.from_buffers(
            2 * unique.size - 1, pa.py_buffer(offsets), pa.py_buffer(self.buf)
        )
        index = np.zeros(rows.size, dtype=np.int64)
        index[ok] = 2 * inverse
        series = pl.Series(array.take(_int64_array(index, ok)), dtype=pl.String)
        for substitute, original in self.restore.items():
            series = series.str.replace_all(chr(substitute), original, literal=True)
        return series

    def long_segment(self, rows: np.ndarray, elements: int) -> pl.Series:
        """The text of each of `rows` that has more than `elements` elements after its tag, else null."""
        ok = rows >= 0
        long = ok & (self._count[np.where(ok, rows, 0)] > elements)
        return self.segments(np.where(long, rows, -1))

    def rows(self, cut: int) -> pl.DataFrame:
        """The segments before `cut` as a frame (text, tag and keys), for the 852 assembly."""
        return pl.DataFrame(
            {
                "i": np.arange(cut, dtype=np.uint32),
                "seg": self.segments(np.arange(cut)),
                "k": self.k[:cut],
                "ctx": np.arange(cut) < self.n_context,
                "is_head": self.is_head[:cut],
                "bound": self.bound[:cut],
                "set_no": self.set_no[:cut],
                "in_set": self.in_set[:cut],
                "zone": self.zone[:cut],
                "item_no": np.cumsum(self.bound[:cut], dtype=np.int64),
            }
        )


# ---------------------------------------------------------------------------------------------
# The reader.


def read_x12(path: Path, spec: X12Format, work_dir: Path, limits: ReadLimits) -> ReadResult:
    """Read an X12 867 (-> sell-out records) or 852 (-> inventory records) file; see the module
    docstring for the records, signs, envelope checks and what `skipped` counts.

    Raises UnreadableFileError for a file that is not X12, that holds no 867/852 (or not the
    transaction set `spec` reads), and LimitExceededError for a segment, a line-item loop or a
    transaction set header longer than `limits.max_line_bytes`. The records are spilled to a Parquet
    file in `work_dir`, which the caller removes after collecting.
    """
    if not path.is_file():
        raise UnreadableFileError(f"{path}: no such file (or it is not a regular file)")
    return _X12Reader(path, spec, work_dir, limits).read()


class _X12Reader:
    def __init__(self, path: Path, spec: X12Format, work_dir: Path, limits: ReadLimits) -> None:
        self.path = path
        self.spec = spec
        self.work_dir = work_dir
        self.limit = limits.max_line_bytes
        self.expected = spec.transaction_set
        self.columns = SELLOUT_COLUMNS if self.expected == "867" else INVENTORY_COLUMNS
        self.envelope = _Envelope()
        self.notes: list[str] = []
        self.unknown_transfer_codes: dict[str, int] = {}
        self.stray = 0
        self.stray_example: str | None = None
        self.base_set = self.base_group = self.base_interchange = self.base_item = 0
        self.delimiters: Delimiters
        self.transfer_types = {**TRANSFER_TYPES, **spec.transfer_types}
        self._schema: dict[str, pl.DataType] = {
            **dict.fromkeys(self.columns, pl.String()),
            SOURCE_ROW: pl.Int64(),
            READ_ERROR: pl.String(),
            ROW_KIND: pl.String(),
            _SET_COLUMN: pl.Int64(),
        }
        self._parts: list[Path] = []
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="x12-spill")
        self._pending: Future[None] | None = None
        self._spill_dir = work_dir

    # -- driving the chunks ----------------------------------------------------------------

    def read(self) -> ReadResult:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self._spill_dir = Path(tempfile.mkdtemp(prefix=f"{self.path.stem}.x12.", dir=self.work_dir))
        try:
            self._read_chunks()
            return self._result()
        finally:
            self._writer.shutdown(wait=True)

    def _texts(self) -> Iterator[str]:
        """The decoded file in pieces of `CHUNK_CHARS` characters (the last one shorter)."""
        size = CHUNK_CHARS
        parts: list[str] = []
        held = 0
        for text in decode_chunks(self.path, self.spec.encoding):
            parts.append(text)
            held += len(text)
            if held < size:
                continue
            buffer = "".join(parts)
            start = 0
            while len(buffer) - start >= size:
                yield buffer[start : start + size]
                start += size
            parts = [buffer[start:]] if start < len(buffer) else []
            held = len(buffer) - start
        if held:
            yield "".join(parts)

    def _read_chunks(self) -> None:
        pending = ""
        started = False
        context = ""
        tail = ""
        for text in self._texts():
            pending = pending + text if pending else text
            if not started:
                pending = pending.lstrip(_WHITESPACE)
                if not self._ready(pending):
                    continue
                self._start(pending)
                started = True
            cut = pending.rfind(self.delimiters.segment)
            if cut == -1:
                self._check_segment_length(pending)
                continue
            body, pending = pending[:cut], pending[cut + 1 :]
            self._check_segment_length(pending)
            context, tail = self._chunk(context, tail, body, final=False)
        if not started:
            if not pending:
                raise UnreadableFileError(
                    f"{self.path}: the file is empty (no ISA segment); expected an X12 {self.expected}"
                )
            self._start(pending)
        self._chunk(context, tail, pending, final=True)

    @staticmethod
    def _ready(head: str) -> bool:
        """True once `head` shows the ISA and the first ST (or is as long as a sniff reads)."""
        if len(head) >= SNIFF_BYTES:
            return True
        try:
            delimiters = read_delimiters(head, Path("-"))
        except UnreadableFileError:
            return False
        complete = head[: head.rfind(delimiters.segment) + 1]
        return sniff_in(complete, delimiters) is not None

    def _check_segment_length(self, pending: str) -> None:
        if len(pending) > self.limit:
            raise LimitExceededError(
                self.path,
                "max_line_bytes",
                self.limit,
                f"a segment longer than {self.limit} characters (no segment terminator "
                f"{self.delimiters.segment!r} in it)",
            )

    def _start(self, text: str) -> None:
        head = text[:SNIFF_BYTES]
        self.delimiters = read_delimiters(head, self.path)
        if len(head) == SNIFF_BYTES:
            head = head[: head.rfind(self.delimiters.segment) + 1]
        found = sniff_in(head, self.delimiters)
        if found is None:
            raise UnreadableFileError(
                f"{self.path}: no transaction set (ST segment) found after the ISA and GS; expected an X12 "
                f"{self.expected}"
            )
        if found not in READ_TRANSACTION_SETS:
            raise UnreadableFileError(
                f"{self.path}: holds an X12 {describe_transaction_set(found)}: Throughline reads 867 "
                "(product transfer and resale report) and 852 (product activity data)"
            )
        if found != self.expected:
            dataset = "sellout" if found == "867" else "inventory"
            raise UnreadableFileError(
                f"{self.path}: holds an X12 {describe_transaction_set(found)}, but its feed spec reads "
                f"{describe_transaction_set(self.expected)}: use a spec with format.transaction_set: "
                f"'{found}' and dataset: {dataset}"
            )

    # -- one chunk -------------------------------------------------------------------------

    def _chunk(self, context: str, tail: str, body: str, *, final: bool) -> tuple[str, str]:
        """Read the segments of `context` (carried, already read), `tail` (a deferred line item)
        and `body`; return the context and tail the next chunk starts with."""
        c = _Chunk(self, context, tail + body)
        n = c.n
        # Defer the last line item when the chunk may end inside it.
        own_bounds = np.flatnonzero(c.bound[c.n_context :]) + c.n_context
        cut = n
        if not final and own_bounds.size and c.is_head[own_bounds[-1]]:
            cut = int(own_bounds[-1])
        next_tail = ""
        if cut < n:
            if int((c.end[cut:] - c.start[cut:]).sum()) > self.limit:
                raise LimitExceededError(
                    self.path,
                    "max_line_bytes",
                    self.limit,
                    f"a line-item loop longer than {self.limit} characters",
                )
            next_tail = c.text(int(c.start[cut]), len(c.buf)) + self.delimiters.segment
        self._account(c, cut)
        if np.any(c.is_head[c.n_context : cut]):
            records = self._records_867(c, cut) if self.expected == "867" else self._records_852(c.rows(cut))
            self._write(records)
        carried = self._context_index(c, cut)
        segments = [c.text(int(c.start[r]), int(c.end[r])) for r in carried]
        if sum(map(len, segments)) > self.limit:
            raise LimitExceededError(
                self.path,
                "max_line_bytes",
                self.limit,
                f"the envelope and header segments of a transaction set exceed {self.limit} characters",
            )
        # Ordinals continue in the next chunk, which re-reads the carried ISA, GS and ST.
        if cut:
            last = cut - 1
            carried_tags = set(c.k[carried].tolist()) if carried else set()
            self.base_interchange = int(c.isa_no[last]) - (ISA in carried_tags)
            self.base_group = int(c.gs_no[last]) - (GS in carried_tags)
            self.base_set = int(c.set_no[last]) - (ST in carried_tags)
        term = self.delimiters.segment
        next_context = "".join(segment + term for segment in segments)
        return next_context, next_tail

    def _account(self, c: _Chunk, cut: int) -> None:
        """Envelope bookkeeping of the chunk's own (not carried) segments before `cut`."""
        lo = c.n_context
        if cut <= lo:
            return
        k = c.k[lo:cut]
        env = self.envelope
        element = self.delimiters.element
        for r in (np.flatnonzero(np.isin(k, (ISA, GS, ST, SE, GE, IEA, CTT))) + lo).tolist():
            fields = c.text(int(c.start[r]), int(c.end[r])).split(element)
            e1, e2, e6, e13 = (fields[n] if n < len(fields) else None for n in (1, 2, 6, 13))
            kind = int(c.k[r])
            set_no, gs_no, isa_no = int(c.set_no[r]), int(c.gs_no[r]), int(c.isa_no[r])
            if kind == ISA:
                env.interchanges[isa_no] = _InterchangeInfo(isa13=(e13 or "").strip())
            elif kind == GS:
                env.groups[gs_no] = _GroupInfo(gs06=(e6 or "").strip(), interchange=isa_no)
                if isa_no in env.interchanges:
                    env.interchanges[isa_no].groups += 1
            elif kind == ST:
                env.sets[set_no] = _SetInfo(
                    st01=(e1 or "").strip(), st02=(e2 or "").strip(), group=gs_no, interchange=isa_no
                )
                if gs_no in env.groups:
                    env.groups[gs_no].sets += 1
            elif kind in (SE, CTT) and c.in_set[r] and set_no in env.sets:
                info = env.sets[set_no]
                if kind == SE:
                    info.se01, info.se02 = e1, e2 if e2 is not None else ""
                else:
                    info.ctt01 = e1
            elif kind == GE and gs_no in env.groups:
                env.groups[gs_no].ge01, env.groups[gs_no].ge02 = e1, e2 if e2 is not None else ""
            elif kind == IEA and isa_no in env.interchanges:
                env.interchanges[isa_no].iea01 = e1
                env.interchanges[isa_no].iea02 = e2 if e2 is not None else ""
        in_set = c.in_set[lo:cut]
        rows = np.flatnonzero(in_set)
        if rows.size:
            sets = c.set_no[lo:cut][rows]
            starts = np.flatnonzero(np.diff(sets, prepend=sets[0] - 1))
            segments = np.diff(np.append(starts, rows.size))
            items = np.add.reduceat(c.is_head[lo:cut][rows].astype(np.int64), starts)
            loops = np.add.reduceat((k[rows] == PTD).astype(np.int64), starts)
            for set_no, n_segments, n_items, n_loops in zip(
                sets[starts].tolist(), segments.tolist(), items.tolist(), loops.tolist(), strict=True
            ):
                info = env.sets.get(set_no)
                if info is not None:
                    info.segments += n_segments
                    info.items += n_items
                    info.loops += n_loops
        stray = np.flatnonzero(~in_set & ~np.isin(k, _OUTER))
        if stray.size:
            self.stray += int(stray.size)
            if self.stray_example is None:
                r = int(stray[0]) + lo
                # Only the segment's tag: its elements may name an end customer (N1*EN, PER), and
                # notes are stored outside landing (loads.warnings).
                segment = c.text(int(c.start[r]), int(c.end[r]))
                self.stray_example = segment.split(self.delimiters.element, 1)[0][:3]

    def _context_index(self, c: _Chunk, cut: int) -> list[int]:
        """Row numbers of the segments the next chunk needs as context (see module docstring)."""
        if cut == 0:
            return []
        k = c.k[:cut]
        last = cut - 1
        keep: list[int] = []
        # The open interchange and group: the last ISA / GS unless their trailer followed.
        for opener, closer in ((ISA, IEA), (GS, GE)):
            opened = np.flatnonzero(k == opener)
            closed = np.flatnonzero(k == closer)
            if opened.size and (closed.size == 0 or closed[-1] < opened[-1]):
                keep.append(int(opened[-1]))
        if c.in_set[last] and k[last] != SE:
            start = int(np.searchsorted(c.set_no[:cut], c.set_no[last]))
            header = np.flatnonzero((c.zone[start:cut] == 1) & c.in_set[start:cut]) + start
            keep.extend(header.tolist())
            if self.expected == "867" and c.ptd_open[last]:
                start = int(np.searchsorted(c.ptd_no[:cut], c.ptd_no[last]))
                keep.extend((np.flatnonzero(c.zone[start:cut] == 2) + start).tolist())
        return sorted(set(keep))

    # -- 867 -------------------------------------------------------------------------------

    def _records_867(self, c: _Chunk, cut: int) -> pl.DataFrame:
        """One record per 867 line item of the rows before `cut`. Each value's segment is found
        by binary search among the segments that can give it: in the line item (the first at or
        after its head, before the next loop bound), in the PTD loop or in the set's header (the
        latest before the line item, after the latest PTD/ST); the elements of the chosen segments
        are then taken from the chunk's token array."""
        spec = self.spec
        k = c.k[:cut]
        zone = c.zone[:cut]
        heads = np.flatnonzero(c.is_head[c.n_context : cut]) + c.n_context
        size = heads.size
        bounds = np.flatnonzero(c.bound[:cut])
        following = np.searchsorted(bounds, heads, side="right")
        item_end = np.where(following < bounds.size, bounds[np.minimum(following, bounds.size - 1)], cut)

        def latest(rows: np.ndarray) -> np.ndarray:
            """The latest of `rows` before each head, -1 for none."""
            at = np.searchsorted(rows, heads) - 1
            return np.where(at >= 0, rows[np.maximum(at, 0)], -1) if rows.size else np.full(heads.size, -1)

        reset_loop = latest(np.flatnonzero(np.isin(k, (ST, PTD, CTT, SE, *_OUTER))))
        reset_header = latest(np.flatnonzero(np.isin(k, (ST, SE, *_OUTER))))
        tagged = {
            tag: np.flatnonzero(k == tag) for tag in (QTY, LIN, UIT, CTP, AMT, CUR, DTM, REF, PTD, BPT, N1)
        }

        def in_item(rows: np.ndarray) -> np.ndarray:
            if not rows.size:
                return np.full(heads.size, -1)
            at = np.searchsorted(rows, heads)
            found = rows[np.minimum(at, rows.size - 1)]
            return np.where((at < rows.size) & (found < item_end), found, -1)

        def before(rows: np.ndarray, level: int, reset: np.ndarray) -> np.ndarray:
            found = latest(rows[zone[rows] == level])
            return np.where((found >= 0) & (found >= reset), found, -1)

        def levels(rows: np.ndarray) -> list[np.ndarray]:
            return [in_item(rows), before(rows, 2, reset_loop), before(rows, 1, reset_header)]

        def where(tag: int, test: np.ndarray) -> np.ndarray:
            return tagged[tag][test]

        dtm = tagged[DTM]
        is_dtm = c.nonempty(dtm, 2) | c.equals(dtm, 6, "D8") | c.equals(dtm, 6, "RD8")
        dates = [x for q in spec.date_qualifiers for x in levels(dtm[is_dtm & c.equals(dtm, 1, q)])]
        dates += [*levels(dtm[is_dtm]), before(where(BPT, c.nonempty(tagged[BPT], 3)), 1, reset_header)]
        invoices = [
            x
            for q in INVOICE_REF_QUALIFIERS
            for x in levels(
                np.union1d(where(REF, c.equals(tagged[REF], 1, q)), where(PTD, c.equals(tagged[PTD], 4, q)))
            )
        ]
        sources: dict[str, np.ndarray] = {
            "qty": in_item(tagged[QTY]),
            "lin": in_item(tagged[LIN]),
            "uit": in_item(tagged[UIT]),
            "ctp": in_item(where(CTP, c.nonempty(tagged[CTP], 3))),
            "amt": _first_found(
                [in_item(where(AMT, c.equals(tagged[AMT], 1, q))) for q in spec.amount_qualifiers], size
            ),
            "ref_line": in_item(where(REF, c.equals(tagged[REF], 1, "LI") & c.nonempty(tagged[REF], 2))),
            "ptd": before(tagged[PTD], 2, reset_loop),
            "date": _first_found(dates, size),
            "cur": _first_found(levels(where(CUR, c.nonempty(tagged[CUR], 2))), size),
            "invoice": _first_found(invoices, size),
        }
        for role, codes in (
            ("reseller", spec.reseller_party_codes),
            ("customer", spec.end_customer_party_codes),
        ):
            candidates = [x for code in codes for x in levels(where(N1, c.equals(tagged[N1], 1, code)))]
            sources[role] = _first_found(candidates, size)
        # Each N1's N3, N4 and PER: the first of each in its party loop (the segments after it
        # before any other segment this reader looks at).
        wanted = (QTY, LIN, UIT, CTP, AMT, CUR, DTM, REF, PTD, BPT, N1, *_PARTY_TAGS)
        stops = np.flatnonzero((np.isin(k, wanted) | c.bound[:cut]) & ~np.isin(k, _PARTY_TAGS))

        def after_n1(n1: np.ndarray, tag: int) -> np.ndarray:
            rows = np.flatnonzero(k == tag)
            if not rows.size:
                return np.full(n1.size, -1)
            at = np.searchsorted(rows, n1, side="right")
            found = rows[np.minimum(at, rows.size - 1)]
            stop_at = np.searchsorted(stops, n1, side="right")
            stop = np.where(stop_at < stops.size, stops[np.minimum(stop_at, max(stops.size - 1, 0))], cut)
            return np.where((n1 >= 0) & (at < rows.size) & (found < stop), found, -1)

        wanted: dict[str, tuple[np.ndarray, int]] = {
            "reported_quantity": (sources["qty"], 2),
            "_qty_unit": (sources["qty"], 3),
            **{f"_lin{n}": (sources["lin"], n) for n in range(1, 8)},
            "_uit_unit": (sources["uit"], 1),
            "_uit_price": (sources["uit"], 2),
            "_ctp_price": (sources["ctp"], 3),
            "_amount": (sources["amt"], 2),
            "_ref_line": (sources["ref_line"], 2),
            "transfer_code": (sources["ptd"], 1),
            "_date2": (sources["date"], 2),
            "_date3": (sources["date"], 3),
            "_date6": (sources["date"], 6),
            "_date7": (sources["date"], 7),
            "currency": (sources["cur"], 2),
            "_invoice2": (sources["invoice"], 2),
            "_invoice5": (sources["invoice"], 5),
        }
        for role in ("reseller", "customer"):
            party = sources[role]
            wanted[f"_{role}_name"] = (party, 2)
            wanted[f"_{role}_id"] = (party, 4)
            n3, n4, per = (after_n1(party, tag) for tag in (N3, N4, PER))
            wanted[f"_{role}_address1"] = (n3, 1)
            wanted[f"_{role}_address2"] = (n3, 2)
            for n, name in enumerate(("city", "state", "postal", "country"), start=1):
                wanted[f"_{role}_{name}"] = (n4, n)
            for n in range(3, 7):
                wanted[f"_{role}_per{n}"] = (per, n)
        values = dict(zip(wanted, c.elements(list(wanted.values())), strict=True))
        values["_lin"] = c.long_segment(sources["lin"], 7)
        values["_date_tag"] = c.tag(sources["date"])
        values["_invoice_tag"] = c.tag(sources["invoice"])
        gathered = pl.DataFrame(
            {
                "in_set": c.in_set[heads],
                "ptd_open": c.ptd_open[heads],
                "set_no": c.set_no[heads],
                SOURCE_ROW: np.arange(1, heads.size + 1, dtype=np.int64) + self.base_item,
            }
        ).with_columns(**{name: pl.lit(series) for name, series in values.items()})
        return self._finish_867(gathered)

    def _finish_867(self, heads: pl.DataFrame) -> pl.DataFrame:
        d = self.delimiters
        spec = self.spec

        def first_component(expr: pl.Expr) -> pl.Expr:
            return _blank_to_null(expr.str.split_exact(d.component, 1).struct.field("field_0"))

        pairs = [
            (pl.col("_lin2"), pl.col("_lin3")),
            (pl.col("_lin4"), pl.col("_lin5")),
            (pl.col("_lin6"), pl.col("_lin7")),
        ]
        sku = pl.coalesce(
            [
                pl.when(qualifier == q).then(value)
                for q in spec.product_id_qualifiers
                for qualifier, value in pairs
            ]
        )
        # A LIN with more than three qualifier/id pairs: the rare long form, by regular expression.
        long_lin = pl.col("_lin").is_not_null()
        sku = pl.when(sku.is_null() & long_lin).then(self._sku(pl.col("_lin"))).otherwise(sku)
        date = (
            pl.when(pl.col("_date_tag") == BPT)
            .then(pl.col("_date3"))
            .when(pl.col("_date2").is_not_null())
            .then(pl.col("_date2"))
            .otherwise(pl.col("_date7").str.slice(0, 8))
        )
        invoice = (
            pl.when(pl.col("_invoice_tag") == PTD).then(pl.col("_invoice5")).otherwise(pl.col("_invoice2"))
        )

        def contact(role: str, qualifier: str) -> pl.Expr:
            return pl.coalesce(
                [
                    pl.when(pl.col(f"_{role}_per{n}") == qualifier).then(pl.col(f"_{role}_per{n + 1}"))
                    for n in (3, 5)
                ]
            )

        transaction_type = pl.col("transfer_code").replace_strict(
            self.transfer_types, default="other", return_dtype=pl.String
        )
        reported = pl.col("reported_quantity")
        quantity = (
            pl.when(pl.col("transaction_type") == "return")
            .then(_negative(reported))
            .when(pl.col("transaction_type").is_in(["price_adjustment", "other"]))
            .then(pl.lit("0"))
            .otherwise(reported)
        )
        amount = pl.col("_amount")
        net_amount = pl.when(pl.col("transaction_type") == "return").then(_negative(amount)).otherwise(amount)
        customer_street = pl.concat_str(
            [pl.col("_customer_address1"), pl.col("_customer_address2")], separator=" ", ignore_nulls=True
        )
        customer_place = pl.concat_str(
            [pl.col("_customer_city"), pl.col("_customer_state"), pl.col("_customer_postal")],
            separator=" ",
            ignore_nulls=True,
        )
        customer_address = _blank_to_null(
            pl.concat_str(
                [_blank_to_null(customer_street), _blank_to_null(customer_place)],
                separator=", ",
                ignore_nulls=True,
            )
        )
        error = (
            pl.when(~pl.col("in_set"))
            .then(pl.lit("line item outside any transaction set (no ST before it, or after its SE)"))
            .when(~pl.col("ptd_open"))
            .then(
                pl.lit("line item outside a PTD loop (QTY or LIN before the set's first PTD, or after CTT)")
            )
        )
        lin_line = pl.when(pl.col("_lin1").str.contains(r"^\d+$")).then(pl.col("_lin1"))
        out = (
            heads.lazy()
            .with_columns(transaction_type=transaction_type)
            .with_columns(
                transaction_date=_iso_date(date),
                invoice_number=invoice,
                invoice_line=pl.coalesce(pl.col("_ref_line"), lin_line),
                reseller_name=pl.col("_reseller_name"),
                reseller_postal_code=pl.col("_reseller_postal"),
                reseller_country=pl.col("_reseller_country"),
                distributor_sku=sku,
                quantity=quantity,
                unit_of_measure=pl.coalesce(
                    first_component(pl.col("_qty_unit")), first_component(pl.col("_uit_unit"))
                ),
                unit_price=pl.coalesce(pl.col("_uit_price"), pl.col("_ctp_price")),
                net_amount=net_amount,
                end_customer_name=pl.col("_customer_name"),
                end_customer_email=contact("customer", "EM"),
                end_customer_phone=contact("customer", "TE"),
                end_customer_address=customer_address,
                end_customer_country=pl.col("_customer_country"),
                reseller_id=pl.col("_reseller_id"),
                reseller_city=pl.col("_reseller_city"),
                reseller_state=pl.col("_reseller_state"),
                **{READ_ERROR: error, ROW_KIND: pl.lit("data"), _SET_COLUMN: pl.col("set_no")},
            )
        )
        result = out.select(*self.columns, SOURCE_ROW, READ_ERROR, ROW_KIND, _SET_COLUMN).collect(
            engine="in-memory"
        )
        self._note_transfer_codes(result)
        return result

    def _note_transfer_codes(self, frame: pl.DataFrame) -> None:
        unknown = frame.filter(
            (pl.col("transaction_type") == "other") & pl.col("transfer_code").is_not_null()
        )
        for code, count in unknown.group_by("transfer_code").len().iter_rows():
            self.unknown_transfer_codes[code] = self.unknown_transfer_codes.get(code, 0) + count

    # -- 852 -------------------------------------------------------------------------------

    def _sku(self, segment: pl.Expr | None = None) -> pl.Expr:
        """distributor_sku from a LIN segment: the id of the first qualifier of
        `product_id_qualifiers` found among its qualifier/id pairs (LIN02/03, LIN04/05, ...)."""
        el = _rx(self.delimiters.element)
        patterns = [
            f"^LIN{el}[^{el}]*(?:{el}[^{el}]*{el}[^{el}]*)*?{el}{q}{el}([^{el}]*)"
            for q in self.spec.product_id_qualifiers
        ]
        segment = pl.col("seg") if segment is None else segment
        return pl.coalesce([_blank_to_null(segment.str.extract(p, 1)) for p in patterns])

    def _records_852(self, rows: pl.DataFrame) -> pl.DataFrame:
        d = self.delimiters
        spec = self.spec
        k = pl.col("k")
        lf = rows.lazy()
        parts = pl.col("seg").str.split_exact(d.element, 4)
        e = [parts.struct.field(f"field_{n}") for n in range(5)]
        # Context of each LIN: the set's XQ period and the latest location N1 before it.
        xq_date = (
            pl.coalesce(_blank_to_null(e[3]), _blank_to_null(e[2]))
            if spec.snapshot_date == "period_end"
            else _blank_to_null(e[2])
        )
        location_code = e[1].is_in(spec.location_party_codes)
        context = (
            lf.filter(k.is_in([ST, XQ, N1, LIN]))
            .with_columns(
                _snapshot=pl.when(k == ST)
                .then(pl.lit(""))
                .when(k == XQ)
                .then(xq_date.fill_null(""))
                .forward_fill(),
                _location=pl.when(k == ST)
                .then(pl.lit(""))
                .when((k == N1) & location_code)
                .then(pl.coalesce(_blank_to_null(e[4]), e[2]).fill_null(""))
                .forward_fill(),
            )
            .filter(pl.col("is_head") & ~pl.col("ctx"))
            .with_columns(source_row=pl.col("is_head").cum_sum().cast(pl.Int64) + self.base_item)
            .select(
                "i",
                "item_no",
                "set_no",
                "in_set",
                "source_row",
                snapshot_date=_iso_date(_blank_to_null(pl.col("_snapshot"))),
                context_location=_blank_to_null(pl.col("_location")),
                distributor_sku=self._sku(),
            )
            .collect(engine="in-memory")
            .lazy()
        )
        in_item = pl.col("zone") == 3
        activity = (
            lf.filter(in_item & k.is_in([ZA, SDQ]) | pl.col("bound"))
            .with_columns(
                za=pl.when(k == ZA)
                .then(pl.col("i").cast(pl.Int64))
                .when(pl.col("bound"))
                .then(pl.lit(-1, pl.Int64))
            )
            .with_columns(pl.col("za").forward_fill())
            .filter(in_item & k.is_in([ZA, SDQ]))
            .collect(engine="in-memory")
            .lazy()
        )
        za = activity.filter(k == ZA).select(
            "item_no", "za", code=e[1], quantity=_blank_to_null(e[2]), unit=_blank_to_null(e[3])
        )
        sdq_pairs = (
            activity.filter((k == SDQ) & (pl.col("za") >= 0))
            .select(
                "item_no",
                "za",
                "i",
                unit=_blank_to_null(e[1]),
                value=pl.col("seg").str.split(d.element).list.slice(3),
            )
            .with_columns(position=pl.int_ranges(pl.col("value").list.len()))
            .explode("value", "position")
            .filter(pl.col("value").is_not_null())
            .with_columns(pair=pl.col("position") // 2)
        )
        sdq = (
            sdq_pairs.filter(pl.col("position") % 2 == 0)
            .select("item_no", "za", "i", "pair", "unit", location=_blank_to_null(pl.col("value")))
            .join(
                sdq_pairs.filter(pl.col("position") % 2 == 1).select("i", "pair", quantity=pl.col("value")),
                on=["i", "pair"],
                how="left",
                maintain_order="left",
            )
            .join(za.select("za", "code"), on="za", how="left", maintain_order="left")
            .filter(pl.col("location").is_not_null())
        )
        heads_location = context.select("item_no", "context_location")
        plain = (
            za.join(sdq.select("za").unique(), on="za", how="anti", maintain_order="left")
            .join(heads_location, on="item_no", how="left", maintain_order="left")
            .select(
                "item_no",
                "code",
                "quantity",
                "unit",
                location=pl.col("context_location"),
                order=pl.col("za") * 32,
            )
        )
        exploded = sdq.select(
            "item_no",
            "code",
            quantity=_blank_to_null(pl.col("quantity")),
            unit=pl.coalesce("unit", pl.lit(None, pl.String)),
            location="location",
            order=pl.col("i").cast(pl.Int64) * 32 + pl.col("pair").cast(pl.Int64) + 1,
        )
        entries = pl.concat([plain, exploded]).sort("order")
        per_location = entries.group_by(["item_no", "location"], maintain_order=True).agg(
            pl.col("order").first(),
            pl.col("unit").drop_nulls().first().alias("unit_of_measure"),
            *[
                pl.col("quantity").filter(pl.col("code") == code).drop_nulls().first().alias(column)
                for code, column in ACTIVITY_COLUMNS.items()
            ],
        )
        bare = context.join(
            entries.select("item_no").unique(), on="item_no", how="anti", maintain_order="left"
        ).select("item_no", location=pl.col("context_location"), order=pl.col("i").cast(pl.Int64) * 32)
        records = (
            pl.concat([per_location, bare], how="diagonal")
            .join(context.drop("context_location"), on="item_no", how="inner", maintain_order="left")
            .sort("source_row", "order")
        )
        error = pl.when(~pl.col("in_set")).then(
            pl.lit("line item outside any transaction set (no ST before it, or after its SE)")
        )
        out = records.with_columns(
            location_id=pl.col("location"),
            **{READ_ERROR: error, ROW_KIND: pl.lit("data"), _SET_COLUMN: pl.col("set_no")},
        )
        for column in self.columns:
            if column not in out.collect_schema().names():
                out = out.with_columns(pl.lit(None, pl.String).alias(column))
        return out.select(*self.columns, SOURCE_ROW, READ_ERROR, ROW_KIND, _SET_COLUMN).collect(
            engine="in-memory"
        )

    # -- output ----------------------------------------------------------------------------

    def _write(self, frame: pl.DataFrame) -> None:
        """Spill one chunk's records to their own Parquet file; `_result` scans them in order."""
        if frame.height:
            self.base_item = int(frame[SOURCE_ROW].max() or self.base_item)
        target = self._spill_dir / f"part-{len(self._parts):06d}.parquet"
        frame = frame.select([pl.col(name).cast(dtype) for name, dtype in self._schema.items()])
        # Written by a thread while the next chunk is read; one write at a time, so one chunk's
        # records at most wait in memory.
        self._flush()
        self._pending = self._writer.submit(frame.write_parquet, target, compression="lz4", statistics=False)
        self._parts.append(target)

    def _flush(self) -> None:
        if self._pending is not None:
            pending, self._pending = self._pending, None
            pending.result()

    def _result(self) -> ReadResult:
        env = self.envelope
        errors: dict[int, str] = {}
        empty_sets = 0
        for set_no, info in env.sets.items():
            if info.items == 0:
                empty_sets += 1
            problems = _set_problems(info, env, self.expected)
            if not problems:
                continue
            group = env.groups.get(info.group)
            interchange = env.interchanges.get(info.interchange)
            where = (
                f"transaction set ST02={info.st02 or '?'} (GS06={group.gs06 if group else '?'}, "
                f"ISA13={interchange.isa13 if interchange else '?'})"
            )
            errors[set_no] = f"{where} fails its envelope check: {'; '.join(problems)}"
            self.notes.append(
                f"{errors[set_no]}; its {info.items} line item(s) are rejected with it (quarantined)"
            )
        if len(self.notes) > MAX_NOTES:
            hidden = len(self.notes) - MAX_NOTES
            self.notes = [
                *self.notes[:MAX_NOTES],
                f"... and {hidden} more transaction set(s) failing their envelope check",
            ]
        if self.stray:
            self.notes.append(
                f"{self.stray} segment(s) outside any transaction set were ignored (the first: a {self.stray_example!r} segment)"
            )
        if self.unknown_transfer_codes:
            listed = ", ".join(
                f"{code} ({count})" for code, count in sorted(self.unknown_transfer_codes.items())
            )
            self.notes.append(
                f"PTD01 transfer type(s) {listed} are not sales, returns or price adjustments: labelled 'other', "
                "quantity 0 (map them in format.transfer_types if they are)"
            )
        if not self._parts:
            self._write(pl.DataFrame(schema=self._schema))
        self._flush()
        records = pl.scan_parquet(self._parts)
        if errors:
            table = pl.LazyFrame(
                {_SET_COLUMN: list(errors), _SET_ERROR: list(errors.values())},
                schema={_SET_COLUMN: pl.Int64, _SET_ERROR: pl.String},
            )
            records = records.join(table, on=_SET_COLUMN, how="left", maintain_order="left").with_columns(
                pl.when(pl.col(_SET_ERROR).is_null())
                .then(pl.col(READ_ERROR))
                .otherwise(
                    pl.concat_str([pl.col(_SET_ERROR), pl.col(READ_ERROR)], separator="; ", ignore_nulls=True)
                )
                .alias(READ_ERROR)
            )
            records = records.drop(_SET_ERROR)
        records = records.drop(_SET_COLUMN)
        skipped = {
            **dict.fromkeys(SKIP_REASONS, 0),
            "empty_transaction_set": empty_sets,
            "stray_segment": self.stray,
        }
        return ReadResult(records=records, skipped=skipped, notes=self.notes)


def sniff_in(head: str, delimiters: Delimiters) -> str | None:
    """ST01 of the first ST segment in `head`, or None."""
    for segment in head.split(delimiters.segment):
        segment = segment.lstrip(_WHITESPACE)
        if segment.startswith("ST" + delimiters.element):
            return segment.split(delimiters.element)[1].strip() or None
    return None
