"""The X12 EDI reader: 867 product transfer and resale reports -> sell-out records, 852 product
activity reports -> inventory records, streamed chunk by chunk with flat memory.

What belongs here: the reader's entry point and the interchange envelope (delimiters from ISA,
sniffing the transaction set, control-number checks). Reading a file chunk by chunk (the pipeline
of threads, what is carried from one chunk to the next, the envelope bookkeeping) and the spill of
records to Parquet are `transforms.readers.x12_stream`; the byte tokenizer is
`transforms.readers.x12_tokens`; loop keys and the mapping of 867/852 loops to canonical field
names are `transforms.readers.x12_records`. Those three compile their hot loops with numba, so
they are imported only when a file is read (`read_x12`), not with this module.
Parsing numbers and dates into types, unit factors and validation happen later, in
`transforms.normalize`.

No X12 library is used: the Python ones known to us (pyx12, HIPAA-oriented) build objects segment
by segment in Python and map no 867/852 loops to records; the tokenizer here is a compiled pass
over the bytes.

How a file is read
- Delimiters come from the first ISA: element separator = the byte after "ISA", component
  separator = ISA16, segment terminator = the character after ISA16, repetition separator = ISA11
  when it is not `U`. Line breaks and indentation after terminators and a UTF-8 BOM are ignored.
- The file is decoded (strictly, in the spec's encoding) and cut into chunks of about
  `CHUNK_CHARS` characters at segment terminators. A tokenizing thread decodes the next chunk,
  encodes it as UTF-8 into a buffer and tokenizes it in one compiled pass over its bytes:
  terminator and element separator positions, segment offsets (leading white space skipped,
  empty segments dropped) and tag codes from each segment's first bytes. (A delimiter that is not
  ASCII, several bytes in UTF-8, is read under an ASCII control character the chunk does not
  hold; the main thread then tokenizes the whole chunk.) The main thread puts the context a
  chunk's line items need from earlier chunks (the open ISA, GS, ST, the set's header segments,
  the open PTD loop or 852 location) and a line item cut by the previous chunk boundary into the
  room kept free at the front of the buffer, tokenizes them there, computes the keys
  (interchange, group, transaction set, PTD loop, line item: one compiled pass over the tags),
  does the envelope bookkeeping and decides what the next chunk carries. The records of the chunk
  are then read by one of `x12_stream.RECORD_THREADS` record threads, while the main thread goes
  on with the next chunk. The compiled passes release the GIL, so the threads run them on all
  cores.
- 867: one compiled pass over the chunk's segments finds each value's segment per line item
  among the segments that can give it (the first of the line item, else the latest of its PTD
  loop, else of the set's header; a better ranked qualifier first), and a second, per line item,
  writes the element each value needs as an Arrow string view over the chunk's bytes (no text is
  copied), finishing dates, signs and units on the way; Polars only handles what a view of the
  chunk's bytes cannot hold (a long number to negate, a date that is not 6 or 8 ASCII digits, an
  invoice line that is not ASCII, a long LIN, the end customer's address). 852: the chunk's
  segments become a Polars frame (text, tag, keys) read with Polars passes.
- Each record thread spills its chunk's records to their own Parquet file in the work folder;
  envelope checks are settled at the end and applied to the spilled records lazily (a join on the
  transaction set).

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

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from schemas.feed_spec import FeedSpec, X12Format
from schemas.limits import ReadLimits
from transforms.readers.common import ReadResult, UnreadableFileError, decode_chunks

if TYPE_CHECKING:
    from transforms.readers.x12_records import (
        ACTIVITY_COLUMNS,
        INVENTORY_COLUMNS,
        INVENTORY_EXTRA_COLUMNS,
        INVOICE_REF_QUALIFIERS,
        SELLOUT_COLUMNS,
        SELLOUT_EXTRA_COLUMNS,
        TRANSFER_TYPES,
    )

_RECORD_NAMES = (
    "ACTIVITY_COLUMNS",
    "INVENTORY_COLUMNS",
    "INVENTORY_EXTRA_COLUMNS",
    "INVOICE_REF_QUALIFIERS",
    "SELLOUT_COLUMNS",
    "SELLOUT_EXTRA_COLUMNS",
    "TRANSFER_TYPES",
)

__all__ = [
    "ACTIVITY_COLUMNS",
    "INVENTORY_COLUMNS",
    "INVENTORY_EXTRA_COLUMNS",
    "INVOICE_REF_QUALIFIERS",
    "SELLOUT_COLUMNS",
    "SELLOUT_EXTRA_COLUMNS",
    "TRANSFER_TYPES",
    "X12_SKIP_REASONS",
    "Delimiters",
    "describe_transaction_set",
    "estimate_records",
    "read_delimiters",
    "read_x12",
    "sniff_in",
    "sniff_transaction_set",
    "x12_spec",
]


def __getattr__(name: str) -> object:
    """The record constants of `transforms.readers.x12_records`, imported on first use (that
    module compiles with numba, which importing this one should not load)."""
    if name in _RECORD_NAMES:
        from transforms.readers import x12_records

        return getattr(x12_records, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


X12_SKIP_REASONS: tuple[str, ...] = ("empty_transaction_set", "stray_segment")

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

CHUNK_CHARS = 1 << 22
"""Characters decoded before a chunk is cut into segments and read: peak memory is set by this
and `x12_stream.RECORD_THREADS`, not by the file (see benchmarks/x12_throughput.py). Larger
chunks read faster, for more memory: a 1 GB 867 read at 84-101 MB/s in 370 MiB with 2 MiB
chunks, 103-113 MB/s in 456 MiB with 4 MiB, 111-121 MB/s in 642 MiB with 8 MiB (2 cores,
benchmarks/RESULTS.md)."""

SNIFF_BYTES = 1 << 16
MAX_NOTES = 20

WHITESPACE = " \t\r\n"
"""What may follow a segment terminator (line breaks, indentation) and is skipped."""
_WHITESPACE = WHITESPACE


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


RECORD_SEGMENTS = {"867": "QTY", "852": "LIN"}
"""The segment each record of a transaction set comes from (an 867 line item, an 852 item loop)."""


def estimate_records(path: Path, size: int, spec: X12Format) -> int | None:
    """Roughly how many records the interchange holds: its `RECORD_SEGMENTS` among the first
    `SNIFF_BYTES`, scaled to `size` (for a progress bar); None when the head cannot tell."""
    try:
        head = _head_text(path, spec.encoding)
        delimiters = read_delimiters(head, path)
    except (OSError, UnicodeDecodeError, UnreadableFileError):
        return None
    tag = RECORD_SEGMENTS[spec.transaction_set] + delimiters.element
    records = sum(segment.strip(_WHITESPACE).startswith(tag) for segment in head.split(delimiters.segment))
    if not records or len(head) < SNIFF_BYTES:
        return records or None
    return int(size / (len(head) / records))


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
# Envelope checks, from what `transforms.readers.x12_stream` gathers across chunks.


@dataclass
class SetInfo:
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
class GroupInfo:
    gs06: str
    interchange: int
    sets: int = 0
    ge01: str | None = None
    ge02: str | None = None


@dataclass
class InterchangeInfo:
    isa13: str
    groups: int = 0
    iea01: str | None = None
    iea02: str | None = None


@dataclass
class Envelope:
    sets: dict[int, SetInfo] = field(default_factory=dict)
    groups: dict[int, GroupInfo] = field(default_factory=dict)
    interchanges: dict[int, InterchangeInfo] = field(default_factory=dict)


def _same_control(a: str | None, b: str | None) -> bool:
    if a is None or b is None:
        return False
    a, b = a.strip(), b.strip()
    if a.isdigit() and b.isdigit():
        return int(a) == int(b)
    return a == b


def _count_is(text: str | None, count: int) -> bool:
    return text is not None and text.strip().isdigit() and int(text.strip()) == count


def set_problems(info: SetInfo, envelope: Envelope, expected: str) -> list[str]:
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
    from transforms.readers.x12_stream import X12Reader

    return X12Reader(path, spec, work_dir, limits, CHUNK_CHARS).read()


def sniff_in(head: str, delimiters: Delimiters) -> str | None:
    """ST01 of the first ST segment in `head`, or None."""
    for segment in head.split(delimiters.segment):
        segment = segment.lstrip(_WHITESPACE)
        if segment.startswith("ST" + delimiters.element):
            return segment.split(delimiters.element)[1].strip() or None
    return None
