"""Reading an X12 file chunk by chunk: the pipeline of threads, what is carried from one chunk to
the next, the envelope bookkeeping across chunks and the spill of records to Parquet (see the
module docstring of `transforms.readers.x12`, whose `read_x12` is the entry point).

What belongs here: the driving of the chunks. The byte tokenizer is
`transforms.readers.x12_tokens`, loop keys and records `transforms.readers.x12_records`, the
delimiters and the envelope checks `transforms.readers.x12`. This module and those two are
imported only when an X12 file is read (they compile with numba).
"""

from __future__ import annotations

import tempfile
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from schemas.feed_spec import X12Format
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
from transforms.readers.x12 import (
    MAX_NOTES,
    READ_TRANSACTION_SETS,
    SNIFF_BYTES,
    WHITESPACE,
    Delimiters,
    Envelope,
    GroupInfo,
    InterchangeInfo,
    SetInfo,
    describe_transaction_set,
    read_delimiters,
    set_problems,
    sniff_in,
)
from transforms.readers.x12_records import (
    INVENTORY_COLUMNS,
    SELLOUT_COLUMNS,
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
    Segments,
    Tokens,
    join,
    new_buffer,
    scan,
    shifted,
    tag_set,
)

RECORD_THREADS = 2
"""Chunks whose records are read (and spilled) at once, each by its own thread, while the main
thread keys the next chunk and another thread tokenizes the one after."""

_WHITESPACE = WHITESPACE
_SET_ERROR = "_x12_set_error"
_OUTER = tag_set((GE, IEA, ISA, GS))
_ENVELOPE = tag_set((ISA, GS, ST, SE, GE, IEA, CTT))
_SUBSTITUTES = "".join(map(chr, (*range(0x1C, 0x20), *range(0x01, 0x09), *range(0x0E, 0x1C), 0x7F)))


@dataclass
class _Body:
    """A chunk's new text as the tokenizing thread hands it over: its text, and (when both
    delimiters are ASCII) its buffer and segments; `final` for the file's last chunk."""

    text: str
    final: bool
    buffer: bytearray | None = None
    segments: Segments | None = None
    room: int = 0


class X12Reader:
    """Reads one X12 file (`read_x12`) in chunks of `chunk_chars` characters."""

    def __init__(
        self, path: Path, spec: X12Format, work_dir: Path, limits: ReadLimits, chunk_chars: int
    ) -> None:
        self.path = path
        self.spec = spec
        self.chunk_chars = chunk_chars
        self.work_dir = work_dir
        self.limit = limits.max_line_bytes
        self.expected = spec.transaction_set
        self.columns = SELLOUT_COLUMNS if self.expected == "867" else INVENTORY_COLUMNS
        self.envelope = Envelope()
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
        size = self.chunk_chars
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
                env.interchanges[isa_no] = InterchangeInfo(isa13=(e13 or "").strip())
            elif kind == GS:
                env.groups[gs_no] = GroupInfo(gs06=(e6 or "").strip(), interchange=isa_no)
                if isa_no in env.interchanges:
                    env.interchanges[isa_no].groups += 1
            elif kind == ST:
                env.sets[set_no] = SetInfo(
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
            problems = set_problems(info, env, self.expected)
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


_WARM_UP_ISA = "ISA*00*          *00*          *ZZ*SENDER         *ZZ*RECEIVER       *240105*1200*^*00501*000000001*0*P*>"
_WARM_UP_SETS = {
    "867": [
        "ST*867*0001",
        "BPT*00*R1*20240105*SD",
        "PTD*SS",
        "DTM*003*20240103",
        "REF*IV*INV-1",
        "N1*BY*ACME*91*R77",
        "N3*1 MAIN ST",
        "N4*BERLIN**10115*DE",
        "QTY*32*4*EA",
        "LIN*1*VP*A1",
        "UIT*EA*2.50",
        "AMT*1*10.00",
        "CTT*1",
        "SE*14*0001",
    ],
    "852": [
        "ST*852*0001",
        "XQ*H*20240101*20240107",
        "N1*RL*STORE*92*S1",
        "LIN**VN*A1",
        "ZA*QA*10*EA",
        "ZA*QS*3*EA",
        "SDQ*EA*92*S1*1*S2*2",
        "SE*8*0001",
    ],
}


def compile_passes() -> int:
    """Read a one-line-item 867 and 852 once, so numba compiles the reader's passes (or loads them
    from its cache): `make install` calls this, so no ingest waits the 20-40 s a first compile
    takes. Returns the records read (3)."""
    records = 0
    with tempfile.TemporaryDirectory(prefix="x12-compile-") as scratch:
        for transaction_set, body in _WARM_UP_SETS.items():
            segments = [
                _WARM_UP_ISA,
                "GS*PT*SENDER*RECEIVER*20240105*1200*1*X*005010",
                *body,
                "GE*1*1",
                "IEA*1*000000001",
            ]
            path = Path(scratch) / f"{transaction_set}.edi"
            path.write_text("~\n".join(segments) + "~\n", encoding="ascii")
            spec = X12Format(type="x12", transaction_set=transaction_set)  # type: ignore[arg-type]
            result = X12Reader(path, spec, Path(scratch) / transaction_set, ReadLimits(), 1 << 20).read()
            records += result.records.select(pl.len()).collect().item()
    return records
