"""The X12 tokenizer: a chunk's bytes cut into segments and elements by position, with no Python
code per segment, and element or segment text handed to Polars as string views over those bytes.

What belongs here: byte-level work that does not depend on the transaction set being read:
finding the element separators and segment terminators of a stretch of bytes, segment offsets
(leading white space skipped, empty segments dropped), tag codes, element spans, tests on element
bytes, and building Polars string columns from spans without copying the text. What the segments
mean (loops, envelope checks, records) belongs in `transforms.readers.x12` and
`transforms.readers.x12_records`.

A chunk's bytes live in one buffer: room kept free at the front (up to `HEADROOM` bytes), where
the segments carried over from the previous chunk are written once that chunk is read (so the new
text can be scanned before, on another thread), then the new text, then `PADDING` zero bytes so
that fixed-size loads past a segment's end stay inside the buffer. Element and segment text is
handed to Polars as Arrow string views over that buffer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
import pyarrow as pa

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
PARTY_TAGS = (N2, N3, N4, PER)

WHITESPACE = " \t\r\n"
HEADROOM = 1 << 16
"""Bytes kept free before a chunk's new text for the carried segments (a larger carry-over gets a
new buffer)."""
PADDING = 16
VIEW_INLINE = 12
"""Arrow string views hold strings of up to 12 bytes inline, longer ones as buffer offsets."""


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


_MULTIPLIER = np.uint32(_hash_multiplier() & 0xFFFFFFFF)
_SLOT_WORD = np.full(1 << _SLOT_BITS, 0xFFFFFFFF, dtype=np.uint32)
_SLOT_CODE = np.zeros(1 << _SLOT_BITS, dtype=np.uint8)
for _word, _code in _TAG_WORDS.items():
    _slot = ((_word * int(_MULTIPLIER)) & 0xFFFFFFFF) >> (32 - _SLOT_BITS)
    _SLOT_WORD[_slot], _SLOT_CODE[_slot] = _word, _code
BYTE_MASKS = np.array([(1 << (8 * n)) - 1 for n in range(9)], dtype=np.uint64)
BYTE_MASKS[8] = np.uint64(0xFFFFFFFFFFFFFFFF)
_SPACE = np.zeros(256, dtype=bool)
_SPACE[[ord(ch) for ch in WHITESPACE]] = True
# String views (little-endian, 16 bytes): length (4 bytes), then either the text inline (up to 12
# bytes, zero-padded) or its first 4 bytes, the buffer index (0) and the offset. A view is built
# from the 16 bytes starting 4 before the text: the first word keeps the text's first 4 bytes in
# its high half (masked to the length) and takes the length in its low half, the second word is
# the text's bytes 4 to 11 (masked to the length) or, for a long text, index and offset.
INLINE_HIGH_MASKS = np.array(
    [(((1 << (8 * min(n, 4))) - 1) << 32) for n in range(VIEW_INLINE + 2)], dtype=np.uint64
)
INLINE_LOW_MASKS = np.array(
    [(1 << (8 * max(n - 4, 0))) - 1 if n <= VIEW_INLINE else 0 for n in range(VIEW_INLINE + 2)],
    dtype=np.uint64,
)
INLINE_LOW_MASKS[VIEW_INLINE] = np.uint64(0xFFFFFFFFFFFFFFFF)


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
    empty are dropped. Runs NumPy passes over the bytes only: no Python code per segment. `room`
    free entries are kept before the delimiter positions (see `join`).
    """
    whole = np.frombuffer(buffer, dtype=np.uint8)
    data = whole[lo:hi]
    is_terminator = data == terminator
    found = np.flatnonzero(is_terminator | (data == element))
    terminators = np.flatnonzero(is_terminator[found])
    delims = np.empty(room + found.size + 1, dtype=np.int64)
    np.add(found, lo, out=delims[room:-1])
    delims[-1] = hi
    last = np.empty(terminators.size + 1, dtype=np.int64)
    np.add(terminators, room, out=last[:-1])
    last[-1] = room + found.size
    end = delims[last]
    start = np.empty_like(end)
    start[0] = lo
    np.add(end[:-1], 1, out=start[1:])
    first = np.empty_like(last)
    first[0] = room
    np.add(last[:-1], 1, out=first[1:])
    if _SPACE[terminator]:
        active = np.flatnonzero(start < end)
        active = active[_SPACE[whole[start[active]]]]
        while active.size:
            start[active] += 1
            active = active[start[active] < end[active]]
            active = active[_SPACE[whole[start[active]]]]
    else:
        # A run of white space ends at the latest at the segment's terminator (or at the padding
        # after the stretch), so all segments can step over it together.
        while True:
            step = _SPACE[whole[start]]
            if not step.any():
                break
            start += step
    keep = start < end
    if not keep.all():
        start, end, first, last = start[keep], end[keep], first[keep], last[keep]
    return Segments(
        delims=delims,
        start=start,
        end=end,
        first=first,
        count=last - first,
        tag=_tag_codes(buffer, start, end, element),
        delims_from=room,
    )


def _tag_codes(buffer: bytearray, start: np.ndarray, end: np.ndarray, element: int) -> np.ndarray:
    """Tag code of each segment: its first two bytes followed by an element separator or its end,
    else its first three so followed, looked up among `TAGS`; 0 for any other tag."""
    if not start.size:
        return np.zeros(0, dtype=np.uint8)
    # Bytes past a segment's end are not masked: the first of them is its terminator (or padding),
    # which is no letter or digit, so a key reaching past the end matches no tag.
    words = np.ndarray((len(buffer) - 3,), dtype="<u4", buffer=buffer, strides=(1,))
    length = end - start
    word = words[start]
    two = (length == 2) | (((word >> np.uint32(16)) & np.uint32(0xFF)) == element)
    three = (length == 3) | ((word >> np.uint32(24)) == element)
    key = word & np.where(two, np.uint32(0xFFFF), np.where(three, np.uint32(0xFFFFFF), np.uint32(0)))
    slot = (key * _MULTIPLIER) >> np.uint32(32 - _SLOT_BITS)
    return np.where(_SLOT_WORD[slot] == key, _SLOT_CODE[slot], np.uint8(0))


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


class Tokens:
    """A chunk buffer and its segments: tests on element bytes and text columns from spans.

    A span is (start, end, valid): byte offsets in the buffer and whether there is text there.
    """

    def __init__(self, buffer: bytearray, segments: Segments, restore: dict[int, str] | None = None) -> None:
        self.buffer = buffer
        self.segments = segments
        self.restore = restore or {}
        self._bytes = np.frombuffer(buffer, dtype=np.uint8)
        self._words = np.ndarray((len(buffer) - 7,), dtype="<u8", buffer=buffer, strides=(1,))
        self._blocks = np.ndarray((len(buffer) - 15,), dtype="V16", buffer=buffer, strides=(1,))
        self._data = pa.py_buffer(buffer)

    def text(self, lo: int, hi: int) -> str:
        """The buffer's text between two offsets (delimiters read under a substitute put back)."""
        text = bytes(self.buffer[lo:hi]).decode("utf-8")
        return text.translate(self.restore) if self.restore else text

    def words_at(self, start: np.ndarray) -> np.ndarray:
        """The 8 bytes from each offset as a little-endian word."""
        return self._words[start]

    def first_word(self, start: np.ndarray, end: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per span (end >= start) its length and its first (up to) 8 bytes as a little-endian word."""
        length = end - start
        return length, self._words[start] & BYTE_MASKS[np.minimum(length, 8)]

    def equal_bytes(self, start: np.ndarray, end: np.ndarray, raw: bytes) -> np.ndarray:
        """Per span: its bytes are `raw`."""
        same = end - start == len(raw)
        for offset, byte in enumerate(raw):
            same &= self._bytes[np.where(same, start + offset, 0)] == byte
        return same

    def starts_with(self, spans: tuple[np.ndarray, np.ndarray, np.ndarray], literal: str) -> np.ndarray:
        """Per span: there is text and it begins with `literal`."""
        start, end, ok = spans
        same = ok & (end - start >= len(literal.encode()))
        for offset, byte in enumerate(literal.encode()):
            same &= self._bytes[np.where(same, start + offset, 0)] == byte
        return same

    def segment_column(self, rows: np.ndarray) -> pl.Series:
        """The text of each of `rows` (from its tag to its terminator); null for -1."""
        ok = rows >= 0
        safe = np.where(ok, rows, 0)
        start, end = self.segments.start[safe], self.segments.end[safe]
        series = self.columns({"": (start, end, ok)})[""]
        for substitute, original in self.restore.items():
            series = series.str.replace_all(chr(substitute), original, literal=True)
        return series

    def columns(self, spans: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]) -> dict[str, pl.Series]:
        """String columns from spans (null where not valid), viewing the chunk buffer."""
        return {name: self.column(name, views) for name, views in self.views(spans).items()}

    def views(self, spans: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]) -> dict[str, Views]:
        """Arrow string views of spans (texts of up to 12 bytes inline, longer ones as offsets in
        the chunk buffer), built in one set of NumPy passes for all of them."""
        out: dict[str, Views] = {}
        built = {name: span for name, span in spans.items() if span[2].any()}
        for name, (start, _, ok) in spans.items():
            if name not in built:
                out[name] = Views(np.zeros((start.size, 2), dtype=np.uint64), ok)
        if built:
            valid = np.concatenate([ok for _, _, ok in built.values()])
            start = np.concatenate([start for start, _, _ in built.values()])
            length = np.concatenate([end for _, end, _ in built.values()]) - start
            length *= valid
            words = self._blocks[start - 4].view(np.uint64).reshape(-1, 2)
            clipped = np.minimum(length, VIEW_INLINE + 1)
            high, low = words[:, 0], words[:, 1]
            high &= INLINE_HIGH_MASKS[clipped]
            high |= length.view(np.uint64)
            low &= INLINE_LOW_MASKS[clipped]
            long = np.flatnonzero(length > VIEW_INLINE)
            low[long] = start[long].view(np.uint64) << np.uint64(32)
            at = 0
            for name, (_, _, ok) in built.items():
                out[name] = Views(words[at : at + ok.size], ok)
                at += ok.size
        return {name: out[name] for name in spans}

    def column(self, name: str, views: Views) -> pl.Series:
        """A Polars string column of `views` (over the chunk buffer; no text is copied)."""
        valid = views.valid
        if not valid.any():
            return pl.Series(name, [None], dtype=pl.String).new_from_index(0, valid.size)
        validity = None if valid.all() else pa.py_buffer(np.packbits(valid, bitorder="little"))
        words = np.ascontiguousarray(views.words)
        array = pa.Array.from_buffers(
            pa.string_view(), valid.size, [validity, pa.py_buffer(words), self._data]
        )
        return pl.from_arrow(array).alias(name)


@dataclass
class Views:
    """Arrow string views of one column: 16 bytes each, as two little-endian words (the length in
    the low half of the first, then the text inline up to 12 bytes, else its first 4 bytes, the
    buffer index and the offset), and whether each is there."""

    words: np.ndarray
    valid: np.ndarray

    @property
    def length(self) -> np.ndarray:
        return (self.words[:, 0] & np.uint64(0xFFFFFFFF)).astype(np.int64)

    @property
    def inline(self) -> np.ndarray:
        """The 12 bytes after the length of each view (the text when it is inline)."""
        return self.words.view(np.uint8).reshape(-1, 16)[:, 4:]

    @staticmethod
    def inline_words(length: np.ndarray, data: np.ndarray) -> np.ndarray:
        """Views of texts of up to 12 bytes given as `data` (n x 12 bytes, zero past the length)."""
        words = np.zeros((length.size, 2), dtype=np.uint64)
        raw = words.view(np.uint8).reshape(-1, 16)
        raw[:, 4:] = data
        words[:, 0] |= length.astype(np.uint64)
        return words


def constant_column(name: str, index: np.ndarray, texts: tuple[str, ...]) -> pl.Series:
    """A string column holding `texts[index[i]]` in row i: views of the texts (kept in a buffer of
    their own when longer than 12 bytes)."""
    data = b"".join(text.encode() for text in texts)
    table = np.zeros((len(texts), 2), dtype=np.uint64)
    offset = 0
    for row, text in enumerate(texts):
        raw = text.encode()
        if len(raw) <= VIEW_INLINE:
            table[row] = Views.inline_words(
                np.array([len(raw)]), np.frombuffer(raw.ljust(VIEW_INLINE, b"\0"), dtype=np.uint8)[None, :]
            )[0]
        else:
            prefix = int.from_bytes(raw[:4], "little")
            table[row] = [len(raw) | (prefix << 32), offset << 32]
        offset += len(raw)
    words = table[index]
    array = pa.Array.from_buffers(
        pa.string_view(), index.size, [None, pa.py_buffer(words), pa.py_buffer(data)]
    )
    return pl.from_arrow(array).alias(name)
