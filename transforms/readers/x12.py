"""The X12 EDI reader: 867 product transfer and resale reports -> sell-out records, 852 product
activity reports -> inventory records, streamed chunk by chunk with flat memory.

What belongs here: the interchange envelope (delimiters from ISA, control-number checks), reading
a file chunk by chunk (the pipeline of threads, what is carried from one chunk to the next) and the
spill of records to Parquet. The byte tokenizer is `transforms.readers.x12_tokens`; loop keys and
the mapping of 867/852 loops to canonical field names are `transforms.readers.x12_records`.
Parsing numbers and dates into types, unit factors and validation happen later, in
`transforms.normalize`.

No X12 library is used: the Python ones known to us (pyx12, HIPAA-oriented) build objects segment
by segment in Python and map no 867/852 loops to records; the tokenizer here is a few NumPy passes.

How a file is read
- Delimiters come from the first ISA: element separator = the byte after "ISA", component
  separator = ISA16, segment terminator = the character after ISA16, repetition separator = ISA11
  when it is not `U`. Line breaks and indentation after terminators and a UTF-8 BOM are ignored.
- The file is decoded (strictly, in the spec's encoding) and cut into chunks of about
  `CHUNK_CHARS` characters at segment terminators. A tokenizing thread decodes the next chunk,
  encodes it as UTF-8 into a buffer and tokenizes it with NumPy on its bytes: terminator and
  element separator positions, segment offsets (leading white space skipped, empty segments
  dropped) and tag codes from each segment's first bytes. No Python code runs per segment. (A
  delimiter that is not ASCII, several bytes in UTF-8, is read under an ASCII control character
  the chunk does not hold; the main thread then tokenizes the whole chunk.) The main thread puts the context a chunk's line items need from earlier chunks (the open ISA, GS,
  ST, the set's header segments, the open PTD loop or 852 location) and a line item cut by the
  previous chunk boundary into the room kept free at the front of the buffer, tokenizes them
  there, computes the keys (interchange, group, transaction set, PTD loop, line item: cumulative
  sums and forward fills of the tags), does the envelope bookkeeping and decides what the next
  chunk carries. The records of the chunk are then read by one of `RECORD_THREADS` record
  threads, while the main thread goes on with the next chunk.
- 867: each value's segment is found per line item among the segments that can give it, grouped
  by the cumulative sums (the first of the line item, else the latest of its PTD loop, else of the
  set's header; a better ranked qualifier first), and the element each value needs is chosen
  with NumPy; the values become Arrow string views over the chunk's bytes (no text is copied),
  dates, signs and units are finished on the views, and Polars only handles what a view cannot
  hold (a long number to negate, a date that is not 6 or 8 digits, a long LIN, the end customer's
  address). 852: the chunk's segments become a Polars frame (text, tag, keys) read with Polars
  passes.
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

import tempfile
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from schemas.feed_spec import FeedSpec, X12Format
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
from transforms.readers.x12_records import (
    ACTIVITY_COLUMNS,
    INVENTORY_COLUMNS,
    INVENTORY_EXTRA_COLUMNS,
    INVOICE_REF_QUALIFIERS,
    SELLOUT_COLUMNS,
    SELLOUT_EXTRA_COLUMNS,
    SET_COLUMN,
    TRANSFER_TYPES,
    Chunk,
    Settings,
    records_852,
    records_867,
)
from transforms.readers.x12_tokens import (
    CTT,
    GE,
    GS,
    HEADROOM,
    IEA,
    ISA,
    PTD,
    SE,
    ST,
    WHITESPACE,
    Segments,
    Tokens,
    join,
    new_buffer,
    scan,
    shifted,
    tag_set,
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
    "read_delimiters",
    "read_x12",
    "sniff_in",
    "sniff_transaction_set",
    "x12_spec",
]

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

CHUNK_CHARS = 1 << 21
"""Characters decoded before a chunk is cut into segments and read: peak memory is set by this
and `RECORD_THREADS`, not by the file (about 290 MiB peak RSS for an 867 of 100 to 400 MB,
measured by benchmarks/x12_throughput.py). Chunks this small keep NumPy's arrays cache-sized."""

RECORD_THREADS = 2
"""Chunks whose records are read (and spilled) at once, each by its own thread, while the main
thread keys the next chunk and another thread tokenizes the one after."""

SNIFF_BYTES = 1 << 16
MAX_NOTES = 20

_WHITESPACE = WHITESPACE
_SET_ERROR = "_x12_set_error"
_OUTER = tag_set((GE, IEA, ISA, GS))
_ENVELOPE = tag_set((ISA, GS, ST, SE, GE, IEA, CTT))
_SUBSTITUTES = "".join(map(chr, (*range(0x1C, 0x20), *range(0x01, 0x09), *range(0x0E, 0x1C), 0x7F)))


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


@dataclass
class _Body:
    """A chunk's new text as the tokenizing thread hands it over: its text, and (when both
    delimiters are ASCII) its buffer and segments; `final` for the file's last chunk."""

    text: str
    final: bool
    buffer: bytearray | None = None
    segments: Segments | None = None
    room: int = 0


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
        self.settings: Settings
        self.transfer_types = {**TRANSFER_TYPES, **spec.transfer_types}
        self._schema: dict[str, pl.DataType] = {
            **dict.fromkeys(self.columns, pl.String()),
            SOURCE_ROW: pl.Int64(),
            READ_ERROR: pl.String(),
            ROW_KIND: pl.String(),
            SET_COLUMN: pl.Int64(),
        }
        self._parts: list[Path] = []
        self._workers = ThreadPoolExecutor(max_workers=RECORD_THREADS, thread_name_prefix="x12-records")
        self._jobs: deque[Future[dict[str, int]]] = deque()
        self._spill_dir = work_dir

    # -- driving the chunks ----------------------------------------------------------------

    def read(self) -> ReadResult:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self._spill_dir = Path(tempfile.mkdtemp(prefix=f"{self.path.stem}.x12.", dir=self.work_dir))
        try:
            self._read_chunks()
            return self._result()
        finally:
            self._workers.shutdown(wait=True)

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

    def _bodies(self) -> Iterator[tuple[str, bool]]:
        """The chunks' new text, each ending just before a segment terminator (the last one at the
        file's end), with True for the last one. Finds the delimiters in the first chunk."""
        pending = ""
        started = False
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
            yield body, False
        if not started:
            if not pending:
                raise UnreadableFileError(
                    f"{self.path}: the file is empty (no ISA segment); expected an X12 {self.expected}"
                )
            self._start(pending)
        yield pending, True

    def _next_body(self, bodies: Iterator[tuple[str, bool]]) -> _Body:
        """The next chunk's text, tokenized (on the tokenizing thread, while the chunk before is read)."""
        text, final = next(bodies)
        d = self.delimiters
        if not (d.element.isascii() and d.segment.isascii()):
            return _Body(text, final)
        data = text.encode()
        room = min(HEADROOM, 256 + len(data))
        buffer = new_buffer(data, room)
        segments = scan(buffer, room, room + len(data), ord(d.element), ord(d.segment), room)
        return _Body(text, final, buffer, segments, room)

    def _read_chunks(self) -> None:
        bodies = self._bodies()
        context = ""
        tail = ""
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="x12-tokenize") as tokenizer:
            job = tokenizer.submit(self._next_body, bodies)
            while True:
                body = job.result()
                if not body.final:
                    job = tokenizer.submit(self._next_body, bodies)
                context, tail = self._chunk(context, tail, body)
                if body.final:
                    return

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
        d = self.delimiters
        self.settings = Settings(self.spec, d.element, d.component, self.transfer_types)

    # -- one chunk -------------------------------------------------------------------------

    def _tokens(self, context: str, tail: str, body: _Body) -> tuple[Tokens, int]:
        """The chunk's tokens: the carried `context` (already read), `tail` (a deferred line item)
        and the new text; and how many segments the context has."""
        d = self.delimiters
        if body.buffer is None or body.segments is None:
            return self._substituted_tokens(context, tail, body.text)
        head_context, head = context.encode(), (context + tail).encode()
        buffer, segments, room = body.buffer, body.segments, body.room
        if len(head) + 4 <= room:
            lo = room - len(head)
            buffer[lo:room] = head
        else:
            # More to carry than the room kept: the new text moves to a larger buffer.
            lo = 4
            size = int(segments.delims[-1]) - room
            moved = new_buffer(bytes(buffer[room : room + size]), lo + len(head))
            moved[lo : lo + len(head)] = head
            buffer, segments = moved, shifted(segments, lo + len(head) - room)
        carried = scan(buffer, lo, lo + len(head), ord(d.element), ord(d.segment))
        n_context = int(np.searchsorted(carried.start, lo + len(head_context)))
        return Tokens(buffer, join(carried, segments)), n_context

    def _substituted_tokens(self, context: str, tail: str, text: str) -> tuple[Tokens, int]:
        """Tokens for an interchange with a non-ASCII delimiter (several bytes in UTF-8): read with
        an absent control character in its place, put back in the segment text handed out."""
        d = self.delimiters
        text = tail + text
        used = {d.element, d.segment, d.component, d.repetition}
        free = (ch for ch in _SUBSTITUTES if ch not in used and ch not in context and ch not in text)
        table: dict[int, str] = {}
        restore: dict[int, str] = {}
        for original in (d.element, d.segment):
            if not original.isascii():
                substitute = next(free, None)
                if substitute is None:
                    raise UnreadableFileError(f"{self.path}: the X12 delimiter {original!r} is not ASCII")
                table[ord(original)] = substitute
                restore[ord(substitute)] = original
        context, text = context.translate(table), text.translate(table)
        element, terminator = (ord(table.get(ord(ch), ch)) for ch in (d.element, d.segment))
        head, data = context.encode(), text.encode()
        buffer = new_buffer(head + data, headroom=4)
        segments = scan(buffer, 4, 4 + len(head) + len(data), element, terminator)
        n_context = int(np.searchsorted(segments.start, 4 + len(head)))
        return Tokens(buffer, segments, restore), n_context

    def _chunk(self, context: str, tail: str, body: _Body) -> tuple[str, str]:
        """Read the segments of `context` (carried, already read), `tail` (a deferred line item)
        and `body`; return the context and tail the next chunk starts with."""
        tokens, n_context = self._tokens(context, tail, body)
        segments = tokens.segments
        n = segments.size
        longest = int((segments.end - segments.start).max()) if n else 0
        if longest > self.limit:
            raise LimitExceededError(
                self.path,
                "max_line_bytes",
                self.limit,
                f"a segment of {longest} bytes (more than {self.limit})",
            )
        c = Chunk(tokens, n_context, self.expected, self.base_set, self.base_group, self.base_interchange)
        # Defer the last line item when the chunk may end inside it.
        own_bounds = np.flatnonzero(c.bound[n_context:]) + n_context
        cut = n
        if not body.final and own_bounds.size and c.is_head[own_bounds[-1]]:
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
            next_tail = c.text(int(c.start[cut]), int(segments.delims[-1])) + self.delimiters.segment
        self._account(c, cut)
        items = int(np.count_nonzero(c.is_head[n_context:cut]))
        if items:
            self._spill(c, cut, items)
        carried = self._context_index(c, cut)
        texts = [c.text(int(c.start[r]), int(c.end[r])) for r in carried]
        if sum(map(len, texts)) > self.limit:
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
        next_context = "".join(text + term for text in texts)
        return next_context, next_tail

    def _account(self, c: Chunk, cut: int) -> None:
        """Envelope bookkeeping of the chunk's own (not carried) segments before `cut`."""
        lo = c.n_context
        if cut <= lo:
            return
        k = c.k[lo:cut]
        env = self.envelope
        element = self.delimiters.element
        for r in (np.flatnonzero(_ENVELOPE[k]) + lo).tolist():
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
        sets = c.set_no[lo:cut]
        # Per run of one transaction set number: its segments, line items and PTD loops inside ST..SE.
        starts = np.flatnonzero(np.diff(sets, prepend=sets[0] - 1))
        segments = np.add.reduceat(in_set, starts, dtype=np.int64)
        items = np.add.reduceat(c.is_head[lo:cut] & in_set, starts, dtype=np.int64)
        loops = np.add.reduceat((k == PTD) & in_set, starts, dtype=np.int64)
        for set_no, n_segments, n_items, n_loops in zip(
            sets[starts].tolist(), segments.tolist(), items.tolist(), loops.tolist(), strict=True
        ):
            info = env.sets.get(set_no)
            if info is not None and n_segments:
                info.segments += n_segments
                info.items += n_items
                info.loops += n_loops
        stray = np.flatnonzero(~in_set & ~_OUTER[k])
        if stray.size:
            self.stray += int(stray.size)
            if self.stray_example is None:
                r = int(stray[0]) + lo
                # Only the segment's tag: its elements may name an end customer (N1*EN, PER), and
                # notes are stored outside landing (loads.warnings).
                segment = c.text(int(c.start[r]), int(c.end[r]))
                self.stray_example = segment.split(self.delimiters.element, 1)[0][:3]

    def _context_index(self, c: Chunk, cut: int) -> list[int]:
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

    # -- output ----------------------------------------------------------------------------

    def _spill(self, c: Chunk, cut: int, items: int) -> None:
        """Have the records of the chunk's `items` line items before `cut` read and spilled to their
        own Parquet file by a worker thread (`_result` scans the files in order); at most
        `RECORD_THREADS` chunks wait for their records, so memory stays flat."""
        while len(self._jobs) >= RECORD_THREADS:
            self._collect(self._jobs.popleft())
        target = self._spill_dir / f"part-{len(self._parts):06d}.parquet"
        self._jobs.append(self._workers.submit(self._records_part, c, cut, self.base_item, target))
        self._parts.append(target)
        self.base_item += items

    def _records_part(self, c: Chunk, cut: int, base_item: int, target: Path) -> dict[str, int]:
        """Read the records of a chunk and spill them to `target`; the PTD01 transfer codes that
        are mapped to no transaction type, with their counts."""
        unknown: dict[str, int] = {}
        if self.expected == "867":
            frame = records_867(c, cut, self.settings, base_item)
            code = frame.get_column("transfer_code")
            code = code.filter((frame.get_column("transaction_type") == "other") & code.is_not_null())
            if code.len():
                unknown = dict(code.value_counts().iter_rows())
        else:
            frame = records_852(c.rows(cut), self.settings, base_item)
        self._write(frame, target)
        return unknown

    def _write(self, frame: pl.DataFrame, target: Path) -> None:
        if list(frame.schema.items()) != list(self._schema.items()):
            frame = frame.select([pl.col(name).cast(dtype) for name, dtype in self._schema.items()])
        frame.write_parquet(target, compression="lz4", statistics=False)

    def _collect(self, job: Future[dict[str, int]]) -> None:
        for code, count in job.result().items():
            self.unknown_transfer_codes[code] = self.unknown_transfer_codes.get(code, 0) + count

    def _result(self) -> ReadResult:
        while self._jobs:
            self._collect(self._jobs.popleft())
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
            self._parts.append(self._spill_dir / "part-000000.parquet")
            self._write(pl.DataFrame(schema=self._schema), self._parts[0])
        records = pl.scan_parquet(self._parts)
        if errors:
            table = pl.LazyFrame(
                {SET_COLUMN: list(errors), _SET_ERROR: list(errors.values())},
                schema={SET_COLUMN: pl.Int64, _SET_ERROR: pl.String},
            )
            records = records.join(table, on=SET_COLUMN, how="left", maintain_order="left").with_columns(
                pl.when(pl.col(_SET_ERROR).is_null())
                .then(pl.col(READ_ERROR))
                .otherwise(
                    pl.concat_str([pl.col(_SET_ERROR), pl.col(READ_ERROR)], separator="; ", ignore_nulls=True)
                )
                .alias(READ_ERROR)
            )
            records = records.drop(_SET_ERROR)
        records = records.drop(SET_COLUMN)
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
