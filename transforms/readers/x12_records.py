"""X12 records from a tokenized chunk: the loop keys of its segments and the mapping of 867 and 852
loops to canonical field names (see the module docstring of `transforms.readers.x12` for what is
read from where).

What belongs here: what segments mean once tokenized: loop keys (interchange, group, transaction
set, PTD loop, line item) from the tag codes, where each value of a line item comes from, and
finishing the values into records: 867 values on their string views with NumPy (dates, signs,
units), with Polars expressions only where a view cannot hold the result; 852 records with
Polars passes over the chunk's segment text. Byte-level work belongs in
`transforms.readers.x12_tokens`; reading the file in chunks, the envelope checks and the spill to
Parquet belong in `transforms.readers.x12`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from schemas.feed_spec import INVENTORY_FIELDS, SELLOUT_FIELDS, X12Format
from transforms.readers.common import READ_ERROR, ROW_KIND, SOURCE_ROW
from transforms.readers.x12_tokens import (
    AMT,
    BPT,
    BYTE_MASKS,
    CTP,
    CTT,
    CUR,
    DTM,
    GS,
    INLINE_HIGH_MASKS,
    INLINE_LOW_MASKS,
    ISA,
    LIN,
    N1,
    N3,
    N4,
    OUTER,
    PER,
    PTD,
    QTY,
    REF,
    SDQ,
    SE,
    ST,
    TAGS,
    UIT,
    VIEW_INLINE,
    XQ,
    ZA,
    Tokens,
    Views,
    constant_column,
    tag_set,
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

SET_COLUMN = "_x12_set"
"""The chunk-independent number of a record's transaction set, for the envelope checks."""

_OUTER_TAGS = tag_set(OUTER)
_LOOP_RESETS = tag_set((ST, PTD, CTT, SE, *OUTER))
_HEADER_RESETS = tag_set((ST, SE, *OUTER))
_PARTY_STOPS = tag_set((QTY, LIN, UIT, CTP, AMT, CUR, DTM, REF, PTD, BPT, N1))
"""Segments that end an N1's party loop (with any loop bound): the ones read for another value."""


@dataclass(frozen=True)
class Settings:
    """What the record mapping needs from the feed spec and the interchange."""

    spec: X12Format
    element: str
    component: str
    transfer_types: dict[str, str]


# ---------------------------------------------------------------------------------------------
# Loop keys.


def _forward_fill(mask: np.ndarray, values: np.ndarray, default: object) -> np.ndarray:
    """`values` at the latest row where `mask` holds (that row included), `default` before any."""
    marks = np.flatnonzero(mask)
    out = np.empty(mask.size, dtype=values.dtype)
    if not marks.size:
        out[:] = default
        return out
    out[: marks[0]] = default
    out[marks[0] :] = np.repeat(values[marks], np.diff(marks, append=mask.size))
    return out


class Chunk:
    """A tokenized chunk (the carried context, then the new text) with the loop keys of its
    segments, all NumPy arrays computed with no Python code per segment:

    - `is_head`: the segment heads a line item (867: the first QTY or LIN of a PTD loop and every
      later one of that tag; 852: a LIN); `bound`: it ends the line item before it;
    - `zone`: 0 envelope, 1 set header, 2 PTD loop before its first line item, 3 line item, 4 summary;
    - `set_no`, `gs_no`, `isa_no`: ordinal of the transaction set, group, interchange in the file;
    - `in_set`: the segment is inside an ST..SE; `ptd_open`: (867) a PTD loop is open;
    - `ptd_no`: ordinal of the PTD loop (or set header) within the chunk.
    """

    def __init__(
        self,
        tokens: Tokens,
        n_context: int,
        expected: str,
        base_set: int,
        base_group: int,
        base_interchange: int,
    ) -> None:
        self.tokens = tokens
        segments = tokens.segments
        self.n = segments.size
        self.n_context = n_context
        self.start, self.end, self.k = segments.start, segments.end, segments.tag
        k = self.k
        is_st, is_se, is_ctt, is_ptd = k == ST, k == SE, k == CTT, k == PTD
        outer = _OUTER_TAGS[k]
        if expected == "867":
            # A PTD loop's line items are headed by the first of QTY / LIN found in it.
            ptd_bound = is_st | is_ptd | is_ctt | is_se | outer
            items = np.flatnonzero((k == QTY) | (k == LIN))
            region = np.cumsum(ptd_bound, dtype=np.int64)[items]
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
        if expected == "852":
            # An N1 ends a line item and opens a location: header-level context.
            zone[k == N1] = 1
        zone[is_st] = 1
        self.is_head, self.bound = is_head, bound
        self.zone = _forward_fill(zone != 255, zone, 0)
        self.ptd_open = _forward_fill(is_st | is_ctt | is_se | outer | is_ptd, is_ptd, False)
        after_se = _forward_fill(is_st | is_se | outer, ~is_st, True)
        self.in_set = ~after_se | is_se
        self.set_no = np.cumsum(is_st, dtype=np.int64) + base_set
        self.gs_no = np.cumsum(k == GS, dtype=np.int64) + base_group
        self.isa_no = np.cumsum(k == ISA, dtype=np.int64) + base_interchange
        self.ptd_no = np.cumsum(is_st | is_ptd, dtype=np.int64)

    def text(self, lo: int, hi: int) -> str:
        return self.tokens.text(lo, hi)

    def rows(self, cut: int) -> pl.DataFrame:
        """The segments before `cut` as a frame (text, tag and keys), for the 852 assembly."""
        return pl.DataFrame(
            {
                "i": np.arange(cut, dtype=np.uint32),
                "seg": self.tokens.segment_column(np.arange(cut)),
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


def sku_from_segment(spec: X12Format, element: str, segment: pl.Expr | None = None) -> pl.Expr:
    """distributor_sku from a LIN segment's text: the id of the first qualifier of
    `product_id_qualifiers` found among its qualifier/id pairs (LIN02/03, LIN04/05, ...)."""
    el = _rx(element)
    patterns = [
        f"^LIN{el}[^{el}]*(?:{el}[^{el}]*{el}[^{el}]*)*?{el}{q}{el}([^{el}]*)"
        for q in spec.product_id_qualifiers
    ]
    segment = pl.col("seg") if segment is None else segment
    return pl.coalesce([_blank_to_null(segment.str.extract(p, 1)) for p in patterns])


# ---------------------------------------------------------------------------------------------
# 867: where each value of a line item comes from.

Spans = tuple[np.ndarray, np.ndarray, np.ndarray]
"""Start and end offsets of an element per line item, and whether it is there (not empty)."""

_ITEM, _LOOP, _HEADER = 0, 1, 2
_NONE = np.iinfo(np.int64).max
_ALL_LEVELS = (_ITEM, _LOOP, _HEADER)


class _Items867:
    """The line items of a chunk and, per item, the segment each value comes from.

    Every segment belongs to one group per level: its line item (the segments from a head to the
    next loop bound), its PTD loop (from a PTD, ST, CTT, SE or envelope segment to the next) and
    its set header (from an ST, SE or envelope segment to the next), numbered by cumulative sums.
    A value comes from the first fitting segment of the item, else the latest of its PTD loop
    before the first item (zone 2), else the latest of the set's header (zone 1); when a value has
    ranked alternatives (qualifiers in order of preference) a better rank wins over a nearer level.

    Elements are read per tag: for the segments of one tag, the spans of element n are computed
    once (`element`), and a line item's value is looked up there by the segment's position
    among the segments of its tag.
    """

    def __init__(self, c: Chunk, cut: int) -> None:
        self.c = c
        self.tokens = c.tokens
        self.n = cut
        k = c.k[:cut]
        self.k = k
        self.zone = c.zone[:cut]
        self.heads = np.flatnonzero(c.is_head[c.n_context : cut]) + c.n_context
        self.size = self.heads.size
        bound = c.bound[:cut]
        self.item = np.cumsum(bound, dtype=np.int64)
        self.item_head = np.full(int(self.item[-1]) + 1 if cut else 1, -1, dtype=np.int64)
        self.item_head[self.item[self.heads]] = np.arange(self.size)
        self.loop = np.cumsum(_LOOP_RESETS[k], dtype=np.int64)
        self.header = np.cumsum(_HEADER_RESETS[k], dtype=np.int64)
        self.party = np.cumsum(_PARTY_STOPS[k] | bound, dtype=np.int64)
        # The segments of each tag, in order, and each segment's position among them.
        order = np.argsort(k, kind="stable")
        counts = np.bincount(k, minlength=len(TAGS) + 1)
        starts = np.zeros(counts.size + 1, dtype=np.int64)
        np.cumsum(counts, out=starts[1:])
        self._order, self._starts = order, starts
        self.position = np.empty(cut, dtype=np.int64)
        self.position[order] = np.arange(cut) - np.repeat(starts[:-1], counts)
        self._elements: dict[tuple[int, int], Spans] = {}
        self._first_counts: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._nonempty: dict[tuple[int, int], np.ndarray] = {}
        self._located: dict[tuple[int, int], tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self._words: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}

    def tagged(self, tag: int) -> np.ndarray:
        """The rows of the segments with `tag`, in order."""
        return self._order[self._starts[tag] : self._starts[tag + 1]]

    # -- elements of one tag's segments -------------------------------------------------

    def element(self, tag: int, n: int | np.ndarray) -> Spans:
        """Start, end and presence of element `n` (n >= 1; or one number per segment) of each
        segment with `tag`; the spans of a fixed `n` are kept for the chunk."""
        key = (tag, n) if isinstance(n, int) else None
        known = self._elements.get(key) if key is not None else None
        if known is None:
            segments = self.tokens.segments
            first, count = self._first_count(tag)
            ok = count >= n
            if isinstance(n, int) and not ok.any():
                known = first, first, ok
            else:
                at = first + np.minimum(count, n)
                known = segments.delims[at - 1] + 1, segments.delims[at], ok
            if key is not None:
                self._elements[key] = known
        return known

    def counts(self, tag: int) -> np.ndarray:
        """The number of elements (after the tag) of each segment with `tag`."""
        return self._first_count(tag)[1]

    def _first_count(self, tag: int) -> tuple[np.ndarray, np.ndarray]:
        known = self._first_counts.get(tag)
        if known is None:
            rows = self.tagged(tag)
            known = self.tokens.segments.first[rows], self.tokens.segments.count[rows]
            self._first_counts[tag] = known
        return known

    def nonempty(self, tag: int, n: int) -> np.ndarray:
        """Element `n` of each segment with `tag` is there and not empty."""
        known = self._nonempty.get((tag, n))
        if known is None:
            start, end, ok = self.element(tag, n)
            known = ok & (end > start)
            self._nonempty[tag, n] = known
        return known

    def _word(self, tag: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Length and first (up to) 8 bytes as a word of element `n` of each segment with `tag`."""
        known = self._words.get((tag, n))
        if known is None:
            start, end, ok = self.element(tag, n)
            known = (
                self.tokens.first_word(start, np.where(ok, end, start))
                if ok.any()
                else (start - start, start)
            )
            self._words[tag, n] = known
        return known

    def equals(self, tag: int, n: int, literal: str) -> np.ndarray:
        """Element `n` of each segment with `tag` is `literal` (an empty literal matches an empty
        element)."""
        raw = literal.encode()
        start, end, ok = self.element(tag, n)
        if len(raw) > 8:
            return ok & self.tokens.equal_bytes(start, end, raw)
        length, word = self._word(tag, n)
        return ok & (length == len(raw)) & (word == np.uint64(int.from_bytes(raw, "little")))

    def rank(self, tag: int, n: int, codes: list[str] | tuple[str, ...], default: int = -1) -> np.ndarray:
        """Per segment with `tag` the position in `codes` of its element `n` (the first if listed
        twice), else `default`. Codes of 1 to 8 bytes are looked up all at once by their bytes as
        one word (text never holds NUL, so the word tells the length)."""
        rank = np.full(self.tagged(tag).size, default, dtype=np.int64)
        if not rank.size or not self.element(tag, n)[2].any():
            return rank
        short: dict[int, int] = {}
        others: list[tuple[int, str]] = []
        for position, code in enumerate(codes):
            raw = code.encode()
            if 0 < len(raw) <= 8:
                short.setdefault(int.from_bytes(raw, "little"), position)
            else:
                others.append((position, code))
        if short:
            length, word = self._word(tag, n)
            keys = np.array(sorted(short), dtype=np.uint64)
            positions = np.array([short[key] for key in sorted(short)], dtype=np.int64)
            at = np.minimum(np.searchsorted(keys, word), keys.size - 1)
            found = self.element(tag, n)[2] & (length <= 8) & (keys[at] == word)
            rank = np.where(found, positions[at], rank)
        for position, code in reversed(others):
            rank[self.equals(tag, n, code)] = position
        return rank

    # -- choosing a segment per line item ------------------------------------------------

    def _level_keys(self, rows: np.ndarray, rank: np.ndarray, level: int) -> np.ndarray:
        """Per line item the best key of `rows` at `level`: rank * n + row (the item's first
        segment) or rank * n + (n - 1 - row) (the loop's or header's latest); `_NONE` for none."""
        n, out = self.n, np.full(self.size, _NONE, dtype=np.int64)
        if level == _ITEM:
            group = self.item_head[self.item[rows]]
            keep = group >= 0
            rows, rank, group = rows[keep], rank[keep], group[keep]
            key = rank * n + rows
        else:
            keep = self.zone[rows] == (2 if level == _LOOP else 1)
            rows, rank = rows[keep], rank[keep]
            groups = self.loop if level == _LOOP else self.header
            group = groups[rows]
            key = rank * n + (n - 1 - rows)
        if not rows.size:
            return out
        runs = np.flatnonzero(np.diff(group, prepend=-1))
        best = np.minimum.reduceat(key, runs)
        if level == _ITEM:
            out[group[runs]] = best
            return out
        table = np.full(int(groups[-1]) + 1, _NONE, dtype=np.int64)
        table[group[runs]] = best
        return table[groups[self.heads]]

    def pick(self, *parts: tuple[np.ndarray, np.ndarray | None, tuple[int, ...]]) -> np.ndarray:
        """Per line item the row of the best candidate, -1 for none. Each part is (rows, ranks or
        None for all 0, levels it may come from); lower ranks win, then nearer levels (the item,
        its PTD loop, the set's header)."""
        if len(parts) == 1 and parts[0][1] is None and parts[0][2] == (_ITEM,):
            return self._first_in_item(parts[0][0])
        n = self.n
        none = _NONE
        best_score = np.full(self.size, none, dtype=np.int64)
        best_row = np.full(self.size, -1, dtype=np.int64)
        for level in _ALL_LEVELS:
            key = None
            for rows, rank, levels in parts:
                if level not in levels or not rows.size:
                    continue
                found = self._level_keys(rows, np.zeros(rows.size, np.int64) if rank is None else rank, level)
                key = found if key is None else np.minimum(key, found)
            if key is None:
                continue
            has = key < none
            score = np.where(has, (key // n) * 3 + level, none)
            better = score < best_score
            row = key % n if level == _ITEM else n - 1 - key % n
            best_score = np.where(better, score, best_score)
            best_row = np.where(better, row, best_row)
        return best_row

    def _first_in_item(self, rows: np.ndarray) -> np.ndarray:
        """Per line item the first of `rows` in it, -1 for none."""
        out = np.full(self.size, -1, dtype=np.int64)
        if rows.size:
            group = self.item_head[self.item[rows]]
            edge = np.empty(rows.size, dtype=bool)
            edge[0] = True
            np.not_equal(group[1:], group[:-1], out=edge[1:])
            edge &= group >= 0
            out[group[edge]] = rows[edge]
        return out

    def first_after(self, n1: np.ndarray, tag: int) -> np.ndarray:
        """Per N1 row (or -1) the first `tag` segment of its party loop (before any segment this
        reader looks at for another value), or -1."""
        rows = self.tagged(tag)
        out = np.full(n1.size, -1, dtype=np.int64)
        if not rows.size:
            return out
        group = self.party[rows]
        runs = np.flatnonzero(np.diff(group, prepend=-1))
        table = np.full(int(self.party[-1]) + 1, -1, dtype=np.int64)
        table[group[runs]] = rows[runs]
        return np.where(n1 >= 0, table[self.party[np.maximum(n1, 0)]], -1)

    # -- values --------------------------------------------------------------------------

    def located(self, rows: np.ndarray, tag: int) -> tuple[np.ndarray, np.ndarray]:
        """Per line item: the chosen row is a segment with `tag`, and its position among them."""
        key = (id(rows), tag)
        known = self._located.get(key)
        if known is None or known[0] is not rows:
            safe = np.maximum(rows, 0)
            ok = (rows >= 0) & (self.k[safe] == tag)
            known = rows, ok, np.where(ok, self.position[safe], 0)
            self._located[key] = known
        return known[1], known[2]

    def at(self, rows: np.ndarray, tag: int, values: np.ndarray) -> np.ndarray:
        """`values` (one per segment with `tag`) at each line item's chosen row; False for none."""
        if not values.size:
            return np.zeros(rows.size, dtype=bool)
        ok, position = self.located(rows, tag)
        return ok & values[position]

    def value(self, rows: np.ndarray, tag: int, n: int | Spans) -> Spans:
        """Element `n` (or the spans given per segment with `tag`) of each line item's chosen row;
        none for -1 or a row of another tag."""
        if not self.tagged(tag).size:
            return _nothing(rows.size)
        ok, position = self.located(rows, tag)
        if not ok.any():
            return _nothing(rows.size)
        if isinstance(n, int):
            (start, end, _), text = self.element(tag, n), self.nonempty(tag, n)
        else:
            start, end, text = n
        return start[position], end[position], ok & text[position]

    def first_choice(self, tag: int, choices: list[tuple[np.ndarray, int]]) -> Spans:
        """Per segment with `tag` the element of the first choice (test, n) whose test holds and
        whose element n is not empty; not present where none does."""
        size = self.tagged(tag).size
        number = np.zeros(size, dtype=np.int64)
        for test, n in reversed(choices):
            number = np.where(test & self.nonempty(tag, n), n, number)
        start, end, _ = self.element(tag, np.maximum(number, 1))
        return start, end, number > 0


def _nothing(size: int) -> Spans:
    empty = np.zeros(size, dtype=np.int64)
    return empty, empty, np.zeros(size, dtype=bool)


def _choose(choices: list[tuple[np.ndarray, Spans]]) -> Spans:
    """Per line item the value of the first choice (test, value) whose test holds and whose value
    is there; none where no choice gives one."""
    test, (start, end, ok) = choices[-1]
    taken = test & ok
    for test, (other_start, other_end, other_ok) in reversed(choices[:-1]):
        use = test & other_ok
        start = np.where(use, other_start, start)
        end = np.where(use, other_end, end)
        taken |= use
    return start, end, taken


def records_867(c: Chunk, cut: int, settings: Settings, base_item: int) -> pl.DataFrame:
    """One record per 867 line item of the rows before `cut` (see `_Items867` for where each
    value's segment is found); the elements of the chosen segments become string columns viewing
    the chunk's bytes, finished with Polars expressions."""
    spec = settings.spec
    t = c.tokens
    s = _Items867(c, cut)
    size = s.size
    item = (_ITEM,)
    dtm = s.tagged(DTM)
    date_rank = s.rank(DTM, 1, spec.date_qualifiers, default=len(spec.date_qualifiers))
    is_dtm = s.nonempty(DTM, 2) | s.equals(DTM, 6, "D8") | s.equals(DTM, 6, "RD8")
    bpt = s.tagged(BPT)[s.nonempty(BPT, 3)]
    date = s.pick(
        (dtm[is_dtm], date_rank[is_dtm], _ALL_LEVELS),
        (bpt, np.full(bpt.size, len(spec.date_qualifiers) + 1, dtype=np.int64), (_HEADER,)),
    )
    ref_rank = s.rank(REF, 1, INVOICE_REF_QUALIFIERS)
    ptd_rank = s.rank(PTD, 4, INVOICE_REF_QUALIFIERS)
    invoice = s.pick(
        (s.tagged(REF)[ref_rank >= 0], ref_rank[ref_rank >= 0], _ALL_LEVELS),
        (s.tagged(PTD)[ptd_rank >= 0], ptd_rank[ptd_rank >= 0], _ALL_LEVELS),
    )
    amt_rank = s.rank(AMT, 1, spec.amount_qualifiers)
    qty = s.pick((s.tagged(QTY), None, item))
    lin = s.pick((s.tagged(LIN), None, item))
    uit = s.pick((s.tagged(UIT), None, item))
    ctp = s.pick((s.tagged(CTP)[s.nonempty(CTP, 3)], None, item))
    amt = s.pick((s.tagged(AMT)[amt_rank >= 0], amt_rank[amt_rank >= 0], item))
    ref_line = s.pick((s.tagged(REF)[s.equals(REF, 1, "LI") & s.nonempty(REF, 2)], None, item))
    ptd = s.pick((s.tagged(PTD), None, (_LOOP,)))
    cur = s.pick((s.tagged(CUR)[s.nonempty(CUR, 2)], None, _ALL_LEVELS))
    n1 = s.tagged(N1)
    parties = {}
    for role, codes in (("reseller", spec.reseller_party_codes), ("customer", spec.end_customer_party_codes)):
        rank = s.rank(N1, 1, codes)
        parties[role] = s.pick((n1[rank >= 0], rank[rank >= 0], _ALL_LEVELS))
    # distributor_sku: the id of the first qualifier found among LIN02/03, 04/05, 06/07 (one with
    # an empty id does not count); a longer LIN is searched by regular expression when none is.
    sku = s.value(
        lin,
        LIN,
        s.first_choice(
            LIN,
            [
                (s.equals(LIN, pair, q), pair + 1)
                for q in spec.product_id_qualifiers
                if q
                for pair in (2, 4, 6)
            ],
        ),
    )
    long_lin = np.where(~sku[2] & s.at(lin, LIN, s.counts(LIN) >= 8), lin, -1)
    date_tag = np.where(date >= 0, c.k[np.maximum(date, 0)], 0)
    date_in_range = (date_tag == DTM) & ~s.value(date, DTM, 2)[2]
    qty_unit = s.value(qty, QTY, 3)
    unit_first = qty_unit[2] & ~c.tokens.starts_with(qty_unit, settings.component)
    ref_value = s.value(ref_line, REF, 2)
    uit_price = s.value(uit, UIT, 2)
    always = np.ones(size, dtype=bool)
    wanted: dict[str, Spans] = {
        "reported_quantity": s.value(qty, QTY, 2),
        "_unit": _choose([(unit_first, qty_unit), (always, s.value(uit, UIT, 1))]),
        "_sku": sku,
        "_line": _choose([(always, ref_value), (always, s.value(lin, LIN, 1))]),
        "unit_price": _choose([(always, uit_price), (always, s.value(ctp, CTP, 3))]),
        "_amount": s.value(amt, AMT, 2),
        "transfer_code": s.value(ptd, PTD, 1),
        "_date": _choose(
            [
                (always, s.value(date, BPT, 3)),
                (~date_in_range, s.value(date, DTM, 2)),
                (date_in_range, s.value(date, DTM, 7)),
            ]
        ),
        "currency": s.value(cur, CUR, 2),
        "invoice_number": _choose([(always, s.value(invoice, PTD, 5)), (always, s.value(invoice, REF, 2))]),
    }
    for role, party in parties.items():
        n4 = s.first_after(party, N4)
        wanted[f"_{role}_name"] = s.value(party, N1, 2)
        for n, name in enumerate(("city", "state", "postal", "country"), start=1):
            wanted[f"_{role}_{name}"] = s.value(n4, N4, n)
        if role == "reseller":
            wanted["reseller_id"] = s.value(party, N1, 4)
            continue
        n3, per = s.first_after(party, N3), s.first_after(party, PER)
        wanted["_customer_address1"] = s.value(n3, N3, 1)
        wanted["_customer_address2"] = s.value(n3, N3, 2)
        for contact in ("EM", "TE"):
            wanted[f"_customer_{contact}"] = s.value(
                per, PER, s.first_choice(PER, [(s.equals(PER, n, contact), n + 1) for n in (3, 5)])
            )
    date_text = wanted.pop("_date")
    views = t.views(wanted)
    transfer = _transfer_types(s, ptd, settings.transfer_types)
    return _finish_867(
        t,
        views,
        {
            "in_set": c.in_set[s.heads],
            "ptd_open": c.ptd_open[s.heads],
            "set_no": c.set_no[s.heads],
            SOURCE_ROW: np.arange(1, size + 1, dtype=np.int64) + base_item,
        },
        _Fixes(
            date=date_text,
            date_in_range=date_in_range,
            line_from_lin=~ref_value[2],
            transfer=transfer,
            long_lin=long_lin,
        ),
        settings,
    )


# ---------------------------------------------------------------------------------------------
# 867: finishing the values (dates, signs, units) on their string views.

TRANSACTION_TYPES: tuple[str, ...] = ("sale", "return", "price_adjustment", "other")
_SALE, _RETURN, _OTHER = 0, 1, 3
_ASCII_DIGITS = np.uint64(0x3030303030303030)
_HIGH_NIBBLES = np.uint64(0xF0F0F0F0F0F0F0F0)
_SIXES = np.uint64(0x0606060606060606)
_INLINE_POSITIONS = np.arange(12)
_FIRST_BYTE = np.uint64(0xFF << 32)
_MINUS, _PLUS = 0x2D, 0x2B


@dataclass
class _Fixes:
    """What the finishing of an 867 chunk's values needs besides their views."""

    date: Spans
    date_in_range: np.ndarray
    line_from_lin: np.ndarray
    transfer: np.ndarray
    long_lin: np.ndarray


def _transfer_types(s: _Items867, ptd: np.ndarray, transfer_types: dict[str, str]) -> np.ndarray:
    """Per line item the index in `TRANSACTION_TYPES` of its PTD01 transfer type (other when
    missing or not mapped)."""
    codes = [code for code in transfer_types if code]
    if not s.tagged(PTD).size or not codes:
        return np.full(ptd.size, _OTHER, dtype=np.uint8)
    kinds = np.array(
        [TRANSACTION_TYPES.index(transfer_types[code]) for code in codes] + [_OTHER], dtype=np.uint8
    )
    per_segment = kinds[s.rank(PTD, 1, codes)]
    ok, position = s.located(ptd, PTD)
    return np.where(ok, per_segment[position], _OTHER).astype(np.uint8)


def _all_digits(word: np.ndarray, size: int) -> np.ndarray:
    """Per word: its first `size` bytes are ASCII digits."""
    mask = BYTE_MASKS[size]
    value, high, digits = word & mask, _HIGH_NIBBLES & mask, _ASCII_DIGITS & mask
    return ((value & high) == digits) & (((value + (_SIXES & mask)) & high) == digits)


def _iso_dates(t: Tokens, date: Spans, in_range: np.ndarray) -> tuple[Views, np.ndarray]:
    """YYYY-MM-DD views of the dates that are 8 or 6 ASCII digits (the first 8 characters of a
    DTM07 range), and the dates left to `_iso_date` (other text, which it may keep as sent)."""
    start, end, ok = date
    length = np.where(ok, end - start, 0)
    effective = np.where(in_range, np.minimum(length, 8), length)
    word = t.words_at(np.where(ok, start, 0))
    eight = ok & (effective == 8) & _all_digits(word, 8)
    six = ok & (effective == 6) & _all_digits(word, 6)
    dash = np.uint64(_MINUS)
    yy = (word & np.uint64(0xF)) * np.uint64(10) + ((word >> np.uint64(8)) & np.uint64(0xF))
    century = np.where(yy < 50, np.uint64(0x3032), np.uint64(0x3931))  # "20" / "19"
    words = np.empty((start.size, 2), dtype=np.uint64)
    ten = np.uint64(10)
    words[:, 0] = np.where(
        eight,
        ten | ((word & np.uint64(0xFFFFFFFF)) << np.uint64(32)),
        ten | ((century | ((word & np.uint64(0xFFFF)) << np.uint64(16))) << np.uint64(32)),
    )
    month, day = (
        np.where(eight, word >> np.uint64(32), word >> np.uint64(16)),
        np.where(eight, word >> np.uint64(48), word >> np.uint64(32)),
    )
    words[:, 1] = (
        dash
        | ((month & np.uint64(0xFFFF)) << np.uint64(8))
        | (dash << np.uint64(24))
        | ((day & np.uint64(0xFFFF)) << np.uint64(32))
    )
    matched = eight | six
    return Views(words, matched), ok & ~matched


def _negated(views: Views) -> tuple[Views, np.ndarray]:
    """The numbers made negative whatever their sent sign (`_negative`) where that is a change of
    the view alone, and which are left to `_negative` (a long number without its sign)."""
    words = views.words.copy()
    high, low = words[:, 0], words[:, 1]
    length = views.length
    first = (high >> np.uint64(32)) & np.uint64(0xFF)
    minus, plus = first == _MINUS, first == _PLUS
    swap = views.valid & plus & (length <= VIEW_INLINE)
    prepend = views.valid & ~minus & ~plus & (length < VIEW_INLINE)
    data = high >> np.uint64(32)
    high[:] = np.where(swap, (high & ~_FIRST_BYTE) | np.uint64(_MINUS << 32), high)
    high[:] = np.where(
        prepend,
        (length + 1).astype(np.uint64)
        | ((((data << np.uint64(8)) | np.uint64(_MINUS)) & np.uint64(0xFFFFFFFF)) << np.uint64(32)),
        high,
    )
    low[:] = np.where(prepend, (low << np.uint64(8)) | (data >> np.uint64(24)), low)
    return Views(words, views.valid), views.valid & ~minus & ~swap & ~prepend


def _signed(views: Views, transfer: np.ndarray, *, zero_unless_sale: bool) -> tuple[Views, np.ndarray]:
    """quantity (`zero_unless_sale`) or net_amount by transaction type: returns negative, price
    adjustments and others "0" (quantity); and which values are left to `_negative`."""
    is_return = transfer == _RETURN
    if not is_return.any() and not zero_unless_sale:
        return views, np.zeros(transfer.size, dtype=bool)
    negated, left = _negated(views)
    words = np.where(is_return[:, None], negated.words, views.words)
    valid = views.valid.copy()
    if zero_unless_sale:
        zero = (transfer != _SALE) & ~is_return
        words[zero] = np.array([1 | (ord("0") << 32), 0], dtype=np.uint64)
        valid |= zero
    return Views(words, valid), is_return & left


_EIGHTIES = np.uint64(0x8080808080808080)
_SEVENS = np.uint64(0x7F7F7F7F7F7F7F7F)
_BYTES_OF = np.uint64(0x0101010101010101)


def _inline_words(views: Views) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The inline text of each view as two words (bytes 0-3, bytes 4-11) with masks of the bytes
    inside its length (views longer than 12 bytes are not inline: callers exclude them)."""
    clipped = np.minimum(views.length, VIEW_INLINE + 1)
    words = views.words
    return (
        words[:, 0] >> np.uint64(32),
        INLINE_HIGH_MASKS[clipped] >> np.uint64(32),
        words[:, 1],
        INLINE_LOW_MASKS[clipped],
    )


def _bytes_between(word: np.ndarray, mask: np.ndarray, first: int, last: int) -> np.ndarray:
    """Per word: every byte inside `mask` is ASCII and between `first` and `last` (ASCII)."""
    value, top = word & mask, _EIGHTIES & mask
    at_least = ((value + (np.uint64((0x80 - first) * 0x0101010101010101) & mask)) & top) == top
    at_most = ((value + (np.uint64((0x7F - last) * 0x0101010101010101) & mask)) & top) == 0
    return ((value & top) == 0) & at_least & at_most


def _holds_byte(word: np.ndarray, mask: np.ndarray, byte: int) -> np.ndarray:
    """Per word: some byte inside `mask` is `byte` (exact: no false positives)."""
    value = word ^ (_BYTES_OF * np.uint64(byte))
    zero = ~(((value & _SEVENS) + _SEVENS) | value | _SEVENS)
    return (zero & mask & _EIGHTIES) != 0


def _first_components(views: Views, component: str) -> tuple[Views, np.ndarray]:
    """The part of each text before the first `component` separator (null when empty), for
    inline texts; and which are left to `split_exact` (longer ones, or a non-ASCII separator)."""
    if not component.isascii():
        return views, views.valid
    inline = views.valid & (views.length <= VIEW_INLINE)
    high, high_mask, low, low_mask = _inline_words(views)
    found = inline & (
        _holds_byte(high, high_mask, ord(component)) | _holds_byte(low, low_mask, ord(component))
    )
    if not found.any():
        return views, views.valid & ~inline
    rows = np.flatnonzero(found)
    data = views.inline[rows]
    length = views.length[rows]
    hit = (data == ord(component)) & (length[:, None] > _INLINE_POSITIONS)
    cut = hit.argmax(axis=1)
    kept = np.where(cut[:, None] > _INLINE_POSITIONS, data, 0)
    words = views.words.copy()
    words[rows] = Views.inline_words(cut, kept)
    valid = views.valid.copy()
    valid[rows] = cut > 0
    return Views(words, valid), views.valid & ~inline


def _digits_only(views: Views, test: np.ndarray) -> tuple[Views, np.ndarray]:
    """The texts, except where `test` holds and they are not all digits (then null); ASCII texts
    up to 12 bytes are checked here, others are left to the `^\\d+$` expression."""
    high, high_mask, low, low_mask = _inline_words(views)
    ascii_ = ((high & high_mask & _EIGHTIES) == 0) & ((low & low_mask & _EIGHTIES) == 0)
    checked = test & views.valid & (views.length <= VIEW_INLINE) & ascii_
    digits = _bytes_between(high, high_mask, 0x30, 0x39) & _bytes_between(low, low_mask, 0x30, 0x39)
    return Views(views.words, views.valid & ~(checked & ~digits)), test & views.valid & ~checked


def _finish_867(
    t: Tokens, views: dict[str, Views], keys: dict[str, np.ndarray], fixes: _Fixes, settings: Settings
) -> pl.DataFrame:
    """The 867 records of a chunk from the views of their values: dates, signs, units and invoice
    lines finished on the views with NumPy, what they cannot hold (long numbers without a sign, a
    text that is not a plain date, a long LIN, the end customer's address) with Polars."""
    spec = settings.spec
    transfer = fixes.transfer
    date, date_left = _iso_dates(t, fixes.date, fixes.date_in_range)
    quantity, quantity_left = _signed(views["reported_quantity"], transfer, zero_unless_sale=True)
    amount, amount_left = _signed(views["_amount"], transfer, zero_unless_sale=False)
    unit, unit_left = _first_components(views["_unit"], settings.component)
    line, line_left = _digits_only(views["_line"], fixes.line_from_lin)
    columns = {name: t.column(name, value) for name, value in views.items() if not name.startswith("_")}
    renamed = {
        "reseller_name": "_reseller_name",
        "reseller_postal_code": "_reseller_postal",
        "reseller_country": "_reseller_country",
        "reseller_city": "_reseller_city",
        "reseller_state": "_reseller_state",
        "end_customer_name": "_customer_name",
        "end_customer_email": "_customer_EM",
        "end_customer_phone": "_customer_TE",
        "end_customer_country": "_customer_country",
        "distributor_sku": "_sku",
    }
    columns.update({name: t.column(name, views[source]) for name, source in renamed.items()})
    columns.update(
        transaction_date=t.column("transaction_date", date),
        quantity=t.column("quantity", quantity),
        net_amount=t.column("net_amount", amount),
        unit_of_measure=t.column("unit_of_measure", unit),
        invoice_line=t.column("invoice_line", line),
        transaction_type=constant_column("transaction_type", transfer, TRANSACTION_TYPES),
    )
    # What the views cannot hold, with the Polars expressions (on the few rows that need them).
    helpers: dict[str, pl.Series] = {}
    fixed: dict[str, pl.Expr] = {}

    def left_to(name: str, left: np.ndarray, source: str, expression: pl.Expr) -> None:
        if left.any():
            helpers[f"_left_{name}"] = pl.Series(left)
            helpers[source] = t.column(source, views[source])
            fixed[name] = pl.when(pl.col(f"_left_{name}")).then(expression).otherwise(pl.col(name))

    if date_left.any():
        start, end, _ = fixes.date
        helpers["_date"] = t.column("_date", t.views({"_date": (start, end, date_left)})["_date"])
        helpers["_date_in_range"] = pl.Series(fixes.date_in_range)
        raw = pl.col("_date")
        text = pl.when(pl.col("_date_in_range")).then(raw.str.slice(0, 8)).otherwise(raw)
        fixed["transaction_date"] = pl.coalesce(pl.col("transaction_date"), _iso_date(text))
    left_to("quantity", quantity_left, "reported_quantity", _negative(pl.col("reported_quantity")))
    left_to("net_amount", amount_left, "_amount", _negative(pl.col("_amount")))
    left_to(
        "unit_of_measure",
        unit_left,
        "_unit",
        _blank_to_null(pl.col("_unit").str.split_exact(settings.component, 1).struct.field("field_0")),
    )
    left_to(
        "invoice_line",
        line_left,
        "_line",
        pl.when(pl.col("_line").str.contains(r"^\d+$")).then(pl.col("_line")),
    )
    if (fixes.long_lin >= 0).any():
        helpers["_lin_long"] = t.segment_column(fixes.long_lin)
        fixed["distributor_sku"] = pl.coalesce(
            pl.col("distributor_sku"), sku_from_segment(spec, settings.element, pl.col("_lin_long"))
        )
    address_parts = (
        "_customer_address1",
        "_customer_address2",
        "_customer_city",
        "_customer_state",
        "_customer_postal",
    )
    if any(views[name].valid.any() for name in address_parts):
        for name in address_parts:
            helpers[name] = t.column(name, views[name])
        street = pl.concat_str(
            [pl.col("_customer_address1"), pl.col("_customer_address2")], separator=" ", ignore_nulls=True
        )
        place = pl.concat_str(
            [pl.col("_customer_city"), pl.col("_customer_state"), pl.col("_customer_postal")],
            separator=" ",
            ignore_nulls=True,
        )
        fixed["end_customer_address"] = _blank_to_null(
            pl.concat_str([_blank_to_null(street), _blank_to_null(place)], separator=", ", ignore_nulls=True)
        )
    else:
        fixed["end_customer_address"] = pl.lit(None, pl.String)
    in_set, ptd_open = keys["in_set"], keys["ptd_open"]
    if in_set.all() and ptd_open.all():
        error = pl.lit(None, pl.String)
    else:
        error = (
            pl.when(~pl.col("in_set"))
            .then(pl.lit("line item outside any transaction set (no ST before it, or after its SE)"))
            .when(~pl.col("ptd_open"))
            .then(
                pl.lit("line item outside a PTD loop (QTY or LIN before the set's first PTD, or after CTT)")
            )
        )
    frame = pl.DataFrame({**keys, **columns, **helpers})
    return frame.select(
        *[fixed[name].alias(name) if name in fixed else pl.col(name) for name in SELLOUT_COLUMNS],
        pl.col(SOURCE_ROW),
        error.alias(READ_ERROR),
        pl.lit("data").alias(ROW_KIND),
        pl.col("set_no").alias(SET_COLUMN),
    )


# ---------------------------------------------------------------------------------------------
# 852.


def records_852(rows: pl.DataFrame, settings: Settings, base_item: int) -> pl.DataFrame:
    """One record per 852 LIN loop and location of the chunk's segments `rows` (`Chunk.rows`)."""
    spec = settings.spec
    element = settings.element
    k = pl.col("k")
    lf = rows.lazy()
    parts = pl.col("seg").str.split_exact(element, 4)
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
        .with_columns(source_row=pl.col("is_head").cum_sum().cast(pl.Int64) + base_item)
        .select(
            "i",
            "item_no",
            "set_no",
            "in_set",
            "source_row",
            snapshot_date=_iso_date(_blank_to_null(pl.col("_snapshot"))),
            context_location=_blank_to_null(pl.col("_location")),
            distributor_sku=sku_from_segment(spec, element),
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
            value=pl.col("seg").str.split(element).list.slice(3),
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
        **{READ_ERROR: error, ROW_KIND: pl.lit("data"), SET_COLUMN: pl.col("set_no")},
    )
    for column in INVENTORY_COLUMNS:
        if column not in out.collect_schema().names():
            out = out.with_columns(pl.lit(None, pl.String).alias(column))
    return out.select(*INVENTORY_COLUMNS, SOURCE_ROW, READ_ERROR, ROW_KIND, SET_COLUMN).collect(
        engine="in-memory"
    )
