"""The X12 tokenizer: a chunk's bytes cut into segments and elements by compiled passes (numba),
and element or segment text handed to Polars as Arrow string views over those bytes.

What belongs here: byte-level work that does not depend on the transaction set being read:
finding the element separators and segment terminators of a stretch of bytes, segment offsets
(leading white space skipped, empty segments dropped), tag codes, element spans, tests on element
bytes, and building Polars string columns from spans or string views without copying the text.
What the segments mean (loops, envelope checks, records) belongs in `transforms.readers.x12`,
`transforms.readers.x12_stream` and `transforms.readers.x12_records`.

A chunk's bytes live in one buffer: room kept free at the front (up to `HEADROOM` bytes), where
the segments carried over from the previous chunk are written once that chunk is read (so the new
text can be scanned before, on another thread), then the new text, then `PADDING` zero bytes so
that fixed-size loads past a segment's end stay inside the buffer. Element and segment text is
handed to Polars as Arrow string views over that buffer.

The compiled passes here and in `transforms.readers.x12_records` are numba functions made by
`jit` (releasing the GIL, so threads run them in parallel; their machine code cached on disk on
first use). This module is imported only when an X12 file is read.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numba
import numpy as np
import polars as pl
import pyarrow as pa

from transforms.readers.x12 import WHITESPACE

TAGS = (
    "ISA", "GS", "ST", "SE", "GE", "IEA", "CTT", "BPT", "PTD", "QTY", "LIN", "UIT", "CTP", "AMT",
    "CUR", "DTM", "REF", "N1", "N2", "N3", "N4", "PER", "XQ", "ZA", "SDQ",
)  # fmt: skip
"""The segment tags the reader looks at; any other tag has code 0."""
CODE = {tag: number for number, tag in enumerate(TAGS, start=1)}
(
    ISA, GS, ST, SE, GE, IEA, CTT, BPT, PTD, QTY, LIN, UIT, CTP, AMT,
    CUR, DTM, REF, N1, N2, N3, N4, PER, XQ, ZA, SDQ,
) = (CODE[tag] for tag in TAGS)  # fmt: skip
OUTER = (GE, IEA, ISA, GS)

HEADROOM = 1 << 16
"""Bytes kept free before a chunk's new text for the carried segments (a larger carry-over gets a
new buffer)."""
PADDING = 16
VIEW_INLINE = 12
"""Arrow string views hold strings of up to 12 bytes inline, longer ones as buffer offsets."""


def jit(**options: Any) -> Callable[[Callable[..., Any]], Any]:
    """`numba.njit(nogil=True, cache=True, **options)`: compiled on first use, releasing the GIL,
    the machine code cached beside the module (or in numba's user-wide cache folder when that is
    read-only); where no cache folder is writable at all, compiled in each process instead."""

    def decorate(function: Callable[..., Any]) -> Any:
        try:
            return numba.njit(nogil=True, cache=True, **options)(function)
        except RuntimeError:  # "cannot cache function ...: no locator available"
            return numba.njit(nogil=True, **options)(function)

    return decorate


def tag_set(tags: tuple[int, ...] | list[int]) -> np.ndarray:
    """A lookup table over tag codes: `tag_set(...)[codes]` is `np.isin(codes, ...)`, faster."""
    table = np.zeros(len(TAGS) + 1, dtype=bool)
    table[list(tags)] = True
    return table


# Tag codes by hashing: a segment's first two or three bytes, read as one little-endian word,
# hashed into a small table (the multiplier is chosen below so that the known tags never collide).
_SLOT_BITS = 10
_TAG_WORDS = {int.from_bytes(tag.encode(), "little"): code for tag, code in CODE.items()}


def _hash_multiplier() -> int:
    for multiplier in range(0x9E3779B1, 0x9E3779B1 + 2000, 2):
        slots = {((word * multiplier) & 0xFFFFFFFF) >> (32 - _SLOT_BITS) for word in _TAG_WORDS}
        if len(slots) == len(_TAG_WORDS):
            return multiplier
    raise AssertionError("no collision-free multiplier for the X12 tags")  # pragma: no cover


_MULTIPLIER = _hash_multiplier() & 0xFFFFFFFF
_SLOT_WORD = np.full(1 << _SLOT_BITS, 0xFFFFFFFF, dtype=np.int64)
_SLOT_CODE = np.zeros(1 << _SLOT_BITS, dtype=np.uint8)
for _word, _code in _TAG_WORDS.items():
    _slot = ((_word * _MULTIPLIER) & 0xFFFFFFFF) >> (32 - _SLOT_BITS)
    _SLOT_WORD[_slot], _SLOT_CODE[_slot] = _word, _code
_SPACE = np.zeros(256, dtype=np.bool_)
_SPACE[[ord(ch) for ch in WHITESPACE]] = True


def new_buffer(data: bytes, headroom: int = HEADROOM) -> bytearray:
    """A chunk buffer: `headroom` free bytes, `data`, then the padding."""
    buffer = bytearray(headroom + len(data) + PADDING)
    buffer[headroom : headroom + len(data)] = data
    return buffer


@dataclass
class Segments:
    """The segments of a stretch of a chunk buffer, as arrays over its non-empty segments.

    Positions are offsets in the buffer. `delims` holds, from index `delims_from` on, the positions
    of the element separators and segment terminators in order, then the stretch's end (the
    entries before `delims_from` are free room for the segments of a stretch written before this
    one); a segment's element separators are `delims[first : first + count]` and its terminator
    (or the stretch's end) `delims[first + count]`.
    """

    delims: np.ndarray
    start: np.ndarray
    end: np.ndarray
    first: np.ndarray
    count: np.ndarray
    tag: np.ndarray
    delims_from: int = 0

    @property
    def size(self) -> int:
        return int(self.start.size)


def scan(buffer: bytearray, lo: int, hi: int, element: int, terminator: int, room: int = 0) -> Segments:
    """The segments of `buffer[lo:hi]`, cut at the `terminator` byte; `element` separates elements.

    Leading white space of a segment is skipped (never past its own terminator) and segments left
    empty are dropped. One compiled pass counts the delimiters, a second records them, the
    segments and their tag codes. `room` free entries are kept before the delimiter positions
    (see `join`).
    """
    delims, start, end, first, count, tag = _scan_segments(
        np.frombuffer(buffer, dtype=np.uint8),
        lo,
        hi,
        element,
        terminator,
        room,
        _SPACE,
        _SLOT_WORD,
        _SLOT_CODE,
    )
    return Segments(delims, start, end, first, count, tag, delims_from=room)


@jit()
def _scan_segments(
    data: np.ndarray,
    lo: int,
    hi: int,
    element: int,
    terminator: int,
    room: int,
    space: np.ndarray,
    slot_word: np.ndarray,
    slot_code: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """`scan`'s passes: the delimiter positions (after `room` free entries, then `hi`) and, per
    kept segment, its start, end, first delimiter index, element count and tag code."""
    found = 0
    terminators = 0
    for at in range(lo, hi):  # branch-free, so that it vectorizes
        byte = data[at]
        is_terminator = byte == terminator
        terminators += is_terminator
        found += is_terminator | (byte == element)
    delims = np.empty(room + found + 1, dtype=np.int64)
    start = np.empty(terminators + 1, dtype=np.int64)
    end = np.empty(terminators + 1, dtype=np.int64)
    first = np.empty(terminators + 1, dtype=np.int64)
    count = np.empty(terminators + 1, dtype=np.int64)
    tag = np.empty(terminators + 1, dtype=np.uint8)
    index = room
    segment_first = room
    segment_start = lo
    kept = 0
    for at in range(lo, hi + 1):
        if at < hi:
            byte = data[at]
            if byte == element:
                delims[index] = at
                index += 1
                continue
            if byte != terminator:
                continue
        delims[index] = at
        # The segment [segment_start, at), its delimiters delims[segment_first : index + 1].
        begin = segment_start
        while begin < at and space[data[begin]]:
            begin += 1
        if begin < at:
            start[kept] = begin
            end[kept] = at
            first[kept] = segment_first
            count[kept] = index - segment_first
            tag[kept] = _tag_code(data, begin, at, element, slot_word, slot_code)
            kept += 1
        index += 1
        segment_first = index
        segment_start = at + 1
    return delims, start[:kept], end[:kept], first[:kept], count[:kept], tag[:kept]


@jit()
def _tag_code(
    data: np.ndarray, begin: int, stop: int, element: int, slot_word: np.ndarray, slot_code: np.ndarray
) -> int:
    """Tag code of the segment [begin, stop): its first two bytes followed by an element separator
    or its end, else its first three so followed, looked up among `TAGS`; 0 for any other tag.
    Bytes past the end are not masked: the first is the terminator (or padding), which is no
    letter or digit, so a key reaching past the end matches no tag."""
    length = stop - begin
    if length == 2 or data[begin + 2] == element:
        key = np.int64(data[begin]) | (np.int64(data[begin + 1]) << 8)
    elif length == 3 or data[begin + 3] == element:
        key = np.int64(data[begin]) | (np.int64(data[begin + 1]) << 8) | (np.int64(data[begin + 2]) << 16)
    else:
        key = np.int64(0)
    slot = ((key * _MULTIPLIER) & 0xFFFFFFFF) >> (32 - _SLOT_BITS)
    return slot_code[slot] if slot_word[slot] == key else 0


def join(head: Segments, body: Segments) -> Segments:
    """The segments of two adjacent stretches, `head` (ending with a terminator) then `body`.

    The head's delimiter positions go into the room kept before the body's when they fit (the
    body's, the bulk of a chunk, are not copied), else both are copied into a new array."""
    if not head.size:
        return body
    own = head.delims[head.delims_from : -1]
    if own.size <= body.delims_from:
        at = body.delims_from - own.size
        delims = body.delims
        delims[at : body.delims_from] = own
        first = head.first + (at - head.delims_from)
        body_first = body.first
    else:
        at = 0
        delims = np.concatenate([own, body.delims[body.delims_from :]])
        first = head.first - head.delims_from
        body_first = body.first + (own.size - body.delims_from)
    return Segments(
        delims=delims,
        start=np.concatenate([head.start, body.start]),
        end=np.concatenate([head.end, body.end]),
        first=np.concatenate([first, body_first]),
        count=np.concatenate([head.count, body.count]),
        tag=np.concatenate([head.tag, body.tag]),
        delims_from=at,
    )


def shifted(segments: Segments, offset: int) -> Segments:
    """The same segments with every position moved by `offset` bytes (the text moved in a new buffer)."""
    return Segments(
        delims=segments.delims + offset,
        start=segments.start + offset,
        end=segments.end + offset,
        first=segments.first,
        count=segments.count,
        tag=segments.tag,
        delims_from=segments.delims_from,
    )


@jit()
def put_view(words: np.ndarray, row: int, data: np.ndarray, begin: int, stop: int) -> None:
    """Write into `words[row]` (two little-endian words) the Arrow string view of the bytes
    `data[begin:stop]` of buffer 0: the length, then the text inline up to 12 bytes (zero-padded),
    else its first 4 bytes and its offset."""
    length = stop - begin
    high = np.uint64(length)
    low = np.uint64(0)
    for at in range(min(length, 4)):
        high |= np.uint64(data[begin + at]) << np.uint64(32 + 8 * at)
    if length <= VIEW_INLINE:
        for at in range(4, length):
            low |= np.uint64(data[begin + at]) << np.uint64(8 * (at - 4))
    else:
        low = np.uint64(begin) << np.uint64(32)
    words[row, 0] = high
    words[row, 1] = low


@jit()
def span_views(data: np.ndarray, start: np.ndarray, end: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """The Arrow string views (n x 2 words) of the spans `data[start:end]` where `valid` (zero
    elsewhere)."""
    words = np.zeros((start.size, 2), dtype=np.uint64)
    for row in range(start.size):
        if valid[row]:
            put_view(words, row, data, start[row], end[row])
    return words


class Tokens:
    """A chunk buffer and its segments: text and string columns over the buffer's bytes, and the
    buffer as bytes and as 8-byte words for the compiled passes.

    `restore` maps the control characters a non-ASCII delimiter was read under back to it.
    """

    def __init__(self, buffer: bytearray, segments: Segments, restore: dict[int, str] | None = None) -> None:
        self.buffer = buffer
        self.segments = segments
        self.restore = restore or {}
        self.bytes = np.frombuffer(buffer, dtype=np.uint8)
        self.words = np.ndarray((len(buffer) - 7,), dtype="<u8", buffer=buffer, strides=(1,))
        """`words[i]`: the buffer's 8 bytes from offset i as a little-endian word (the padding
        keeps such loads inside the buffer)."""
        self._data = pa.py_buffer(buffer)

    def text(self, lo: int, hi: int) -> str:
        """The buffer's text between two offsets (delimiters read under a substitute put back)."""
        text = bytes(self.buffer[lo:hi]).decode("utf-8")
        return text.translate(self.restore) if self.restore else text

    def segment_column(self, rows: np.ndarray) -> pl.Series:
        """The text of each of `rows` (from its tag to its terminator); null for -1."""
        ok = rows >= 0
        safe = np.where(ok, rows, 0)
        start, end = self.segments.start[safe], self.segments.end[safe]
        series = self.column("", span_views(self.bytes, start, end, ok), ok)
        for substitute, original in self.restore.items():
            series = series.str.replace_all(chr(substitute), original, literal=True)
        return series

    def column(self, name: str, words: np.ndarray, valid: np.ndarray) -> pl.Series:
        """A Polars string column of the string views `words` (n x 2 words over the chunk buffer;
        no text is copied), null where not `valid`."""
        if not valid.any():
            return pl.Series(name, [None], dtype=pl.String).new_from_index(0, valid.size)
        validity = None if valid.all() else pa.py_buffer(np.packbits(valid, bitorder="little"))
        array = pa.Array.from_buffers(
            pa.string_view(), valid.size, [validity, pa.py_buffer(np.ascontiguousarray(words)), self._data]
        )
        return pl.from_arrow(array).alias(name)


def constant_column(name: str, index: np.ndarray, texts: tuple[str, ...]) -> pl.Series:
    """A string column holding `texts[index[i]]` in row i: views of the texts (kept in a buffer of
    their own when longer than 12 bytes)."""
    data = b"".join(text.encode() for text in texts)
    raw = np.frombuffer(data + bytes(PADDING), dtype=np.uint8)
    table = np.zeros((len(texts), 2), dtype=np.uint64)
    offset = 0
    for row, text in enumerate(texts):
        size = len(text.encode())
        table[row] = span_views(raw, np.array([offset]), np.array([offset + size]), np.array([True]))[0]
        offset += size
    words = table[index]
    array = pa.Array.from_buffers(
        pa.string_view(), index.size, [None, pa.py_buffer(words), pa.py_buffer(data)]
    )
    return pl.from_arrow(array).alias(name)
