"""X12 records from a tokenized chunk: the loop keys of its segments and the mapping of 867 and 852
loops to canonical field names (see the module docstring of `transforms.readers.x12` for what is
read from where).

What belongs here: what segments mean once tokenized: loop keys (interchange, group, transaction
set, PTD loop, line item) from the tag codes, where each value of a line item comes from, and
finishing the values into records. The loop keys and the 867 line items are compiled passes
(numba, `nogil=True`): one over the chunk's segments choosing, per line item, the segment each
value comes from, then one per line item writing each value as an Arrow string view over the
chunk's bytes (dates, signs and units finished on the way), leaving Polars expressions only for
what a view of the chunk's bytes cannot hold. 852 records are Polars passes over the chunk's
segment text. Byte-level work belongs in `transforms.readers.x12_tokens`; reading the file in
chunks and the spill to Parquet in `transforms.readers.x12_stream`; the envelope checks in
`transforms.readers.x12`.
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
    CTP,
    CTT,
    CUR,
    DTM,
    GS,
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
    constant_column,
    jit,
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


@dataclass(frozen=True)
class Settings:
    """What the record mapping needs from the feed spec and the interchange."""

    spec: X12Format
    element: str
    component: str
    transfer_types: dict[str, str]


# ---------------------------------------------------------------------------------------------
# Loop keys.

_OUTER_TAGS = tag_set(OUTER)
_ITEM_TAGS = tag_set((QTY, LIN))
_LOOP_RESETS = tag_set((ST, PTD, CTT, SE, *OUTER))
_HEADER_RESETS = tag_set((ST, SE, *OUTER))


class Chunk:
    """A tokenized chunk (the carried context, then the new text) with the loop keys of its
    segments, NumPy arrays computed in one compiled pass over the tag codes (`_loop_keys`):

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
        (
            self.is_head,
            self.bound,
            self.zone,
            self.ptd_open,
            self.in_set,
            self.set_no,
            self.gs_no,
            self.isa_no,
            self.ptd_no,
        ) = _loop_keys(self.k, expected == "867", base_set, base_group, base_interchange)

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


@jit()
def _loop_keys(
    k: np.ndarray, is_867: bool, base_set: int, base_group: int, base_interchange: int
) -> tuple[
    np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray
]:
    """`Chunk`'s keys, in one pass over the tag codes `k`: is_head, bound, zone, ptd_open, in_set,
    set_no, gs_no, isa_no, ptd_no. A zone, an open PTD loop and being after an SE hold from the
    segment that sets them to the next that changes them (zone 0 and outside any set before any)."""
    n = k.size
    is_head = np.zeros(n, dtype=np.bool_)
    bound = np.zeros(n, dtype=np.bool_)
    zone = np.zeros(n, dtype=np.uint8)
    ptd_open = np.zeros(n, dtype=np.bool_)
    in_set = np.zeros(n, dtype=np.bool_)
    set_no = np.empty(n, dtype=np.int64)
    gs_no = np.empty(n, dtype=np.int64)
    isa_no = np.empty(n, dtype=np.int64)
    ptd_no = np.empty(n, dtype=np.int64)
    head_tag = 0
    current_zone = 0
    open_ptd = False
    after_se = True
    sets, groups, interchanges, loops = base_set, base_group, base_interchange, 0
    for row in range(n):
        tag = k[row]
        outer = _OUTER_TAGS[tag]
        is_st, is_se, is_ctt, is_ptd = tag == ST, tag == SE, tag == CTT, tag == PTD
        if is_867:
            # A PTD loop's line items are headed by the first of QTY / LIN found in it.
            ptd_bound = is_st or is_ptd or is_ctt or is_se or outer
            if ptd_bound:
                head_tag = 0
            head = False
            if _ITEM_TAGS[tag]:
                if head_tag == 0:
                    head_tag = tag
                head = tag == head_tag
            ends = head or ptd_bound
        else:
            head = tag == LIN
            ends = head or is_st or tag == N1 or is_ctt or is_se or outer
        is_head[row] = head
        bound[row] = ends
        if is_st or (not is_867 and tag == N1):
            # An 852 N1 ends a line item and opens a location: header-level context.
            current_zone = 1
        elif is_ptd:
            current_zone = 2
        elif head:
            current_zone = 3
        elif is_ctt or is_se:
            current_zone = 4
        elif outer:
            current_zone = 0
        zone[row] = current_zone
        if is_st or is_ctt or is_se or outer or is_ptd:
            open_ptd = is_ptd
        ptd_open[row] = open_ptd
        if is_st or is_se or outer:
            after_se = not is_st
        in_set[row] = (not after_se) or is_se
        sets += is_st
        groups += tag == GS
        interchanges += tag == ISA
        loops += is_st or is_ptd
        set_no[row], gs_no[row], isa_no[row], ptd_no[row] = sets, groups, interchanges, loops
    return is_head, bound, zone, ptd_open, in_set, set_no, gs_no, isa_no, ptd_no


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

# The segments a value can come from ("picks"), and the levels it may come from.
(
    _P_DATE, _P_INVOICE, _P_QTY, _P_LIN, _P_UIT, _P_CTP, _P_AMT, _P_REF_LINE, _P_PTD, _P_CUR,
    _P_RESELLER, _P_CUSTOMER,
) = range(12)  # fmt: skip
_PICKS = 12
_ITEM, _LOOP, _HEADER = 1, 2, 4
_ALL_LEVELS = _ITEM | _LOOP | _HEADER
_NO_RANK = np.iinfo(np.int64).max // 4
_PARTY_STOPS = tag_set((QTY, LIN, UIT, CTP, AMT, CUR, DTM, REF, PTD, BPT, N1))
"""Segments that end an N1's party loop (with any loop bound): the ones read for another value."""
_N3_SLOT, _N4_SLOT, _PER_SLOT = 0, 1, 2
_FIRST_IN_ITEM = np.full(len(TAGS) + 1, -1, dtype=np.int64)
"""The pick of a tag whose first segment in the line item gives values as it is (-1 for none)."""
_FIRST_IN_ITEM[[QTY, LIN, UIT]] = (_P_QTY, _P_LIN, _P_UIT)

# The values written per line item, as string views (names starting with "_" are helpers).
VALUES_867: tuple[str, ...] = (
    "transaction_date", "invoice_number", "invoice_line", "transfer_code", "reseller_name",
    "reseller_postal_code", "reseller_country", "distributor_sku", "quantity", "unit_of_measure",
    "unit_price", "currency", "net_amount", "end_customer_name", "end_customer_email",
    "end_customer_phone", "end_customer_country", "reported_quantity", "reseller_id", "reseller_city",
    "reseller_state", "_customer_address1", "_customer_address2", "_customer_city", "_customer_state",
    "_customer_postal",
)  # fmt: skip
(
    _V_DATE, _V_INVOICE, _V_LINE, _V_TRANSFER_CODE, _V_RESELLER_NAME, _V_RESELLER_POSTAL,
    _V_RESELLER_COUNTRY, _V_SKU, _V_QUANTITY, _V_UNIT, _V_PRICE, _V_CURRENCY, _V_AMOUNT,
    _V_CUSTOMER_NAME, _V_CUSTOMER_EMAIL, _V_CUSTOMER_PHONE, _V_CUSTOMER_COUNTRY, _V_REPORTED_QUANTITY,
    _V_RESELLER_ID, _V_RESELLER_CITY, _V_RESELLER_STATE, _V_ADDRESS1, _V_ADDRESS2, _V_CUSTOMER_CITY,
    _V_CUSTOMER_STATE, _V_CUSTOMER_POSTAL,
) = range(len(VALUES_867))  # fmt: skip
_ADDRESS_PARTS = (_V_ADDRESS1, _V_ADDRESS2, _V_CUSTOMER_CITY, _V_CUSTOMER_STATE, _V_CUSTOMER_POSTAL)


def _word(text: str) -> int:
    """The UTF-8 bytes of a code of up to 8 bytes as one little-endian word."""
    raw = text.encode()
    if len(raw) > 8:
        raise ValueError(f"X12 code {text!r} is longer than 8 bytes")
    return int.from_bytes(raw, "little")


_NO_CONDITION, _AFTER_QUALIFIER, _NOT_COMPONENT_FIRST = 0, 1, 2
_SOURCES = np.array(
    [
        # value, pick, party slot (-1: the picked segment itself), tag, element, condition,
        # qualifier (the word element - 1 must be, for _AFTER_QUALIFIER), its length.
        # A value takes the first of its sources that is there and not empty.
        (_V_TRANSFER_CODE, _P_PTD, -1, PTD, 1, 0, 0, 0),
        (_V_REPORTED_QUANTITY, _P_QTY, -1, QTY, 2, 0, 0, 0),
        (_V_AMOUNT, _P_AMT, -1, AMT, 2, 0, 0, 0),
        (_V_UNIT, _P_QTY, -1, QTY, 3, _NOT_COMPONENT_FIRST, 0, 0),
        (_V_UNIT, _P_UIT, -1, UIT, 1, 0, 0, 0),
        (_V_PRICE, _P_UIT, -1, UIT, 2, 0, 0, 0),
        (_V_PRICE, _P_CTP, -1, CTP, 3, 0, 0, 0),
        (_V_LINE, _P_REF_LINE, -1, REF, 2, 0, 0, 0),
        (_V_LINE, _P_LIN, -1, LIN, 1, 0, 0, 0),
        (_V_DATE, _P_DATE, -1, BPT, 3, 0, 0, 0),
        (_V_DATE, _P_DATE, -1, DTM, 2, 0, 0, 0),
        (_V_DATE, _P_DATE, -1, DTM, 7, 0, 0, 0),
        (_V_INVOICE, _P_INVOICE, -1, PTD, 5, 0, 0, 0),
        (_V_INVOICE, _P_INVOICE, -1, REF, 2, 0, 0, 0),
        (_V_CURRENCY, _P_CUR, -1, CUR, 2, 0, 0, 0),
        (_V_RESELLER_NAME, _P_RESELLER, -1, N1, 2, 0, 0, 0),
        (_V_RESELLER_ID, _P_RESELLER, -1, N1, 4, 0, 0, 0),
        (_V_RESELLER_CITY, _P_RESELLER, _N4_SLOT, N4, 1, 0, 0, 0),
        (_V_RESELLER_STATE, _P_RESELLER, _N4_SLOT, N4, 2, 0, 0, 0),
        (_V_RESELLER_POSTAL, _P_RESELLER, _N4_SLOT, N4, 3, 0, 0, 0),
        (_V_RESELLER_COUNTRY, _P_RESELLER, _N4_SLOT, N4, 4, 0, 0, 0),
        (_V_CUSTOMER_NAME, _P_CUSTOMER, -1, N1, 2, 0, 0, 0),
        (_V_CUSTOMER_CITY, _P_CUSTOMER, _N4_SLOT, N4, 1, 0, 0, 0),
        (_V_CUSTOMER_STATE, _P_CUSTOMER, _N4_SLOT, N4, 2, 0, 0, 0),
        (_V_CUSTOMER_POSTAL, _P_CUSTOMER, _N4_SLOT, N4, 3, 0, 0, 0),
        (_V_CUSTOMER_COUNTRY, _P_CUSTOMER, _N4_SLOT, N4, 4, 0, 0, 0),
        (_V_ADDRESS1, _P_CUSTOMER, _N3_SLOT, N3, 1, 0, 0, 0),
        (_V_ADDRESS2, _P_CUSTOMER, _N3_SLOT, N3, 2, 0, 0, 0),
        (_V_CUSTOMER_EMAIL, _P_CUSTOMER, _PER_SLOT, PER, 4, _AFTER_QUALIFIER, _word("EM"), 2),
        (_V_CUSTOMER_EMAIL, _P_CUSTOMER, _PER_SLOT, PER, 6, _AFTER_QUALIFIER, _word("EM"), 2),
        (_V_CUSTOMER_PHONE, _P_CUSTOMER, _PER_SLOT, PER, 4, _AFTER_QUALIFIER, _word("TE"), 2),
        (_V_CUSTOMER_PHONE, _P_CUSTOMER, _PER_SLOT, PER, 6, _AFTER_QUALIFIER, _word("TE"), 2),
    ],
    dtype=np.int64,
)
"""Where each value of a line item comes from (distributor_sku, quantity and net_amount are
finished from others: see `_write_values`)."""
_LINE_FROM_LIN, _DATE_FROM_DTM02 = 8, 10
"""The rows of `_SOURCES` taking invoice_line from LIN01 (then it must be digits) and the date
from DTM02 (not a DTM07 range)."""
_D8, _RD8, _LI = _word("D8"), _word("RD8"), _word("LI")

# What is left to the Polars expressions, per line item.
_LEFT_DATE, _DATE_IN_RANGE, _LEFT_QUANTITY, _LEFT_AMOUNT, _LEFT_LINE = range(5)

TRANSACTION_TYPES: tuple[str, ...] = ("sale", "return", "price_adjustment", "other")
_SALE, _RETURN, _OTHER = 0, 1, 3
_MINUS, _PLUS, _ZERO, _NINE = 0x2D, 0x2B, 0x30, 0x39
_LOW_32 = 0xFFFFFFFF
_BYTE_MASKS = np.array([(1 << (8 * n)) - 1 for n in range(8)] + [(1 << 64) - 1], dtype=np.uint64)
"""The masks of the first n bytes of a little-endian word."""


@dataclass(frozen=True)
class _Codes:
    """A list of codes (each of up to 8 bytes; spec codes are 1 to 3 characters) for the compiled
    passes: each as one little-endian word of its UTF-8 bytes, and its length in bytes."""

    words: np.ndarray
    lengths: np.ndarray

    @staticmethod
    def of(codes: list[str] | tuple[str, ...]) -> _Codes:
        return _Codes(
            np.array([_word(code) for code in codes], dtype=np.uint64),
            np.array([len(code.encode()) for code in codes], dtype=np.int64),
        )


def records_867(c: Chunk, cut: int, settings: Settings, base_item: int) -> pl.DataFrame:
    """One record per 867 line item of the rows before `cut`: the compiled passes (`_choose_rows`,
    `_write_values`) write each value as a string view over the chunk's bytes, and Polars finishes
    what they leave (see `_frame_867`)."""
    spec = settings.spec
    transfer_codes = [code for code in settings.transfer_types if code]
    kinds = np.array(
        [TRANSACTION_TYPES.index(settings.transfer_types[code]) for code in transfer_codes], dtype=np.uint8
    )
    segments = c.tokens.segments
    data = c.tokens.bytes
    dates, amounts = _Codes.of(spec.date_qualifiers), _Codes.of(spec.amount_qualifiers)
    invoices = _Codes.of(INVOICE_REF_QUALIFIERS)
    resellers, customers = _Codes.of(spec.reseller_party_codes), _Codes.of(spec.end_customer_party_codes)
    heads, rows, party = _choose_rows(
        c.k,
        c.zone,
        c.is_head,
        c.bound,
        c.n_context,
        cut,
        c.tokens.words,
        segments.delims,
        segments.first,
        segments.count,
        dates.words,
        dates.lengths,
        invoices.words,
        invoices.lengths,
        amounts.words,
        amounts.lengths,
        resellers.words,
        resellers.lengths,
        customers.words,
        customers.lengths,
    )
    products = _Codes.of([code for code in spec.product_id_qualifiers if code])
    transfers = _Codes.of(transfer_codes)
    words, valid, left, long_lin, transfer = _write_values(
        rows,
        party,
        c.k,
        data,
        c.tokens.words,
        segments.delims,
        segments.first,
        segments.count,
        _SOURCES,
        products.words,
        products.lengths,
        transfers.words,
        transfers.lengths,
        kinds,
        np.frombuffer(settings.component.encode(), dtype=np.uint8),
    )
    keys = {
        "in_set": c.in_set[heads],
        "ptd_open": c.ptd_open[heads],
        "set_no": c.set_no[heads],
        SOURCE_ROW: np.arange(1, heads.size + 1, dtype=np.int64) + base_item,
    }
    return _frame_867(c.tokens, words, valid, left, long_lin, transfer, keys, settings)


@jit(inline="always")
def _element(
    delims: np.ndarray, first: np.ndarray, count: np.ndarray, row: int, n: int
) -> tuple[int, int, bool]:
    """Start and end offsets of element `n` (n >= 1) of segment `row`, and whether it has one."""
    if row < 0 or count[row] < n:
        return 0, 0, False
    at = first[row] + n
    return delims[at - 1] + 1, delims[at], True


@jit(inline="always")
def _element_word(words: np.ndarray, begin: int, stop: int) -> tuple[int, np.uint64]:
    """The length of the text at [begin, stop) and, when it is at most 8 bytes, its bytes as one
    little-endian word (0 otherwise); `words[i]` is the buffer's 8 bytes from offset i."""
    length = stop - begin
    if length > 8:
        return length, np.uint64(0)
    return length, words[begin] & _BYTE_MASKS[length]


@jit(inline="always")
def _rank(length: int, word: np.uint64, code_words: np.ndarray, code_lengths: np.ndarray) -> int:
    """The position among the codes of the text (`_element_word`) (the first if listed twice), -1
    when it is none of them."""
    for position in range(code_words.size):
        if code_lengths[position] == length and code_words[position] == word:
            return position
    return -1


@jit()
def _choose_rows(
    k: np.ndarray,
    zone: np.ndarray,
    is_head: np.ndarray,
    bound: np.ndarray,
    n_context: int,
    cut: int,
    word_at: np.ndarray,
    delims: np.ndarray,
    first: np.ndarray,
    count: np.ndarray,
    date_words: np.ndarray,
    date_lengths: np.ndarray,
    invoice_words: np.ndarray,
    invoice_lengths: np.ndarray,
    amount_words: np.ndarray,
    amount_lengths: np.ndarray,
    reseller_words: np.ndarray,
    reseller_lengths: np.ndarray,
    customer_words: np.ndarray,
    customer_lengths: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per line item (a head at or after `n_context`, before `cut`) the segment each pick comes
    from (-1 for none), in one pass over the segments; with the head rows, and per N1 row the first
    N3, N4 and PER of its party loop (-1 for none; before any segment this reader looks at for
    another value or a loop bound).

    Every segment belongs to one group per level: its line item (from a head to the next loop
    bound), its PTD loop (from a PTD, ST, CTT, SE or envelope segment to the next) and its set
    header (from an ST, SE or envelope segment to the next). A value comes from the first fitting
    segment of the item, else the latest of its PTD loop before the first item (zone 2), else the
    latest of the set's header (zone 1); a better rank (qualifiers in order of preference) wins
    over a nearer level: the lowest rank * 3 + level wins. A loop's or header's segments of zone 2
    or 1 all come before its line items, so their best so far at a head is their best."""
    size = 0
    for row in range(n_context, cut):
        size += is_head[row]
    heads = np.empty(size, dtype=np.int64)
    rows = np.full((size, _PICKS), -1, dtype=np.int64)
    party = np.full((cut, 3), -1, dtype=np.int64)
    # The best rank and row so far per level (0 line item, 1 PTD loop, 2 header) and pick, and per
    # line item (the loop's and header's taken at its head, its own at its end).
    best_rank = np.full((3, _PICKS), _NO_RANK, dtype=np.int64)
    best_row = np.full((3, _PICKS), -1, dtype=np.int64)
    item_rank = np.full((size, 3, _PICKS), _NO_RANK, dtype=np.int64)
    item_row = np.full((size, 3, _PICKS), -1, dtype=np.int64)
    levels_of = np.zeros(_PICKS, dtype=np.int64)
    for pick in (_P_DATE, _P_INVOICE, _P_CUR, _P_RESELLER, _P_CUSTOMER):
        levels_of[pick] = _ALL_LEVELS
    for pick in (_P_QTY, _P_LIN, _P_UIT, _P_CTP, _P_AMT, _P_REF_LINE):
        levels_of[pick] = _ITEM
    levels_of[_P_PTD] = _LOOP
    offers = np.empty((3, 3), dtype=np.int64)  # per offer of a segment: pick, rank, levels
    n_dates = date_words.size
    item = -1
    items = 0
    owner = -1
    for row in range(cut):
        tag = k[row]
        if _HEADER_RESETS[tag]:
            best_rank[2, :] = _NO_RANK
            best_row[2, :] = -1
        if _LOOP_RESETS[tag]:
            best_rank[1, :] = _NO_RANK
            best_row[1, :] = -1
        if bound[row]:
            if item >= 0:
                item_rank[item, 0, :] = best_rank[0, :]
                item_row[item, 0, :] = best_row[0, :]
            item = -1
            if is_head[row] and row >= n_context:
                item = items
                heads[item] = row
                items += 1
                best_rank[0, :] = _NO_RANK
                best_row[0, :] = -1
                item_rank[item, 1:, :] = best_rank[1:, :]
                item_row[item, 1:, :] = best_row[1:, :]
        # The party loop of an N1: up to the next segment read for another value or loop bound.
        if bound[row] or _PARTY_STOPS[tag]:
            owner = row if tag == N1 else -1
        elif owner >= 0:
            slot = _N3_SLOT if tag == N3 else _N4_SLOT if tag == N4 else _PER_SLOT if tag == PER else -1
            if slot >= 0 and party[owner, slot] < 0:
                party[owner, slot] = row
        # What the segment offers: (pick, rank, levels); a rank of -1 offers nothing.
        n_offers = 0
        one, one_end, has_one = _element(delims, first, count, row, 1)
        one_length, one_word = _element_word(word_at, one, one_end)
        if tag == DTM:
            two, two_end, has_two = _element(delims, first, count, row, 2)
            six, six_end, has_six = _element(delims, first, count, row, 6)
            six_length, six_word = _element_word(word_at, six, six_end)
            dated = (has_two and two_end > two) or (
                has_six and ((six_length == 2 and six_word == _D8) or (six_length == 3 and six_word == _RD8))
            )
            if dated:
                rank = _rank(one_length, one_word, date_words, date_lengths) if has_one else -1
                offers[0, 0], offers[0, 1] = _P_DATE, n_dates if rank < 0 else rank
                n_offers = 1
        elif tag == BPT:
            three, three_end, has_three = _element(delims, first, count, row, 3)
            if has_three and three_end > three:
                offers[0, 0], offers[0, 1], n_offers = _P_DATE, n_dates + 1, 1
        elif tag == REF:
            offers[0, 0], n_offers = _P_INVOICE, 1
            offers[0, 1] = _rank(one_length, one_word, invoice_words, invoice_lengths) if has_one else -1
            two, two_end, has_two = _element(delims, first, count, row, 2)
            if has_two and two_end > two and has_one and one_length == 2 and one_word == _LI:
                offers[1, 0], offers[1, 1], n_offers = _P_REF_LINE, 0, 2
        elif tag == PTD:
            four, four_end, has_four = _element(delims, first, count, row, 4)
            four_length, four_word = _element_word(word_at, four, four_end)
            offers[0, 0], offers[0, 1] = _P_PTD, 0
            offers[1, 0] = _P_INVOICE
            offers[1, 1] = _rank(four_length, four_word, invoice_words, invoice_lengths) if has_four else -1
            n_offers = 2
        elif _FIRST_IN_ITEM[tag] >= 0:
            offers[0, 0], offers[0, 1], n_offers = _FIRST_IN_ITEM[tag], 0, 1
        elif tag == CTP:
            three, three_end, has_three = _element(delims, first, count, row, 3)
            if has_three and three_end > three:
                offers[0, 0], offers[0, 1], n_offers = _P_CTP, 0, 1
        elif tag == AMT:
            offers[0, 0], n_offers = _P_AMT, 1
            offers[0, 1] = _rank(one_length, one_word, amount_words, amount_lengths) if has_one else -1
        elif tag == CUR:
            two, two_end, has_two = _element(delims, first, count, row, 2)
            if has_two and two_end > two:
                offers[0, 0], offers[0, 1], n_offers = _P_CUR, 0, 1
        elif tag == N1:
            offers[0, 0], offers[1, 0], n_offers = _P_RESELLER, _P_CUSTOMER, 2
            offers[0, 1] = _rank(one_length, one_word, reseller_words, reseller_lengths) if has_one else -1
            offers[1, 1] = _rank(one_length, one_word, customer_words, customer_lengths) if has_one else -1
        # In the line item the first best ranked segment wins, in the PTD loop (zone 2) or the
        # set's header (zone 1) the latest (a BPT date only from the header).
        for offer in range(n_offers):
            pick, rank = offers[offer, 0], offers[offer, 1]
            if rank < 0:
                continue
            levels = _HEADER if tag == BPT else levels_of[pick]
            if item >= 0:
                if levels & _ITEM and rank < best_rank[0, pick]:
                    best_rank[0, pick], best_row[0, pick] = rank, row
            elif zone[row] == 2:
                if levels & _LOOP and rank <= best_rank[1, pick]:
                    best_rank[1, pick], best_row[1, pick] = rank, row
            elif zone[row] == 1 and levels & _HEADER and rank <= best_rank[2, pick]:
                best_rank[2, pick], best_row[2, pick] = rank, row
    if item >= 0:
        item_rank[item, 0, :] = best_rank[0, :]
        item_row[item, 0, :] = best_row[0, :]
    for item in range(size):
        for pick in range(_PICKS):
            score = _NO_RANK
            for level in range(3):
                if item_row[item, level, pick] >= 0 and item_rank[item, level, pick] * 3 + level < score:
                    score = item_rank[item, level, pick] * 3 + level
                    rows[item, pick] = item_row[item, level, pick]
    return heads, rows, party


@jit(inline="always")
def _view(words: np.ndarray, begin: int, stop: int) -> tuple[np.uint64, np.uint64]:
    """The Arrow string view (two little-endian words) of the text at [begin, stop) of buffer 0:
    its length, then the text inline up to 12 bytes (zero-padded), else its first 4 bytes and
    its offset; `words[i]` is the buffer's 8 bytes from offset i."""
    length = stop - begin
    high = np.uint64(length) | ((words[begin] & _BYTE_MASKS[min(length, 4)]) << np.uint64(32))
    if length > VIEW_INLINE:
        return high, np.uint64(begin) << np.uint64(32)
    return high, words[begin + 4] & _BYTE_MASKS[max(length - 4, 0)]


@jit()
def _write_values(
    rows: np.ndarray,
    party: np.ndarray,
    k: np.ndarray,
    data: np.ndarray,
    word_at: np.ndarray,
    delims: np.ndarray,
    first: np.ndarray,
    count: np.ndarray,
    sources: np.ndarray,
    product_words: np.ndarray,
    product_lengths: np.ndarray,
    transfer_words: np.ndarray,
    transfer_lengths: np.ndarray,
    transfer_kinds: np.ndarray,
    component: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The values of each line item from the segments `_choose_rows` picked, as string views
    (`VALUES_867`, [value, item, 2 words]) with whether each is there; what is left to the Polars
    expressions ([_LEFT_DATE ..., item]); per item the LIN row whose distributor_sku is left to
    `sku_from_segment` (-1 for none); and the index in `TRANSACTION_TYPES` of its transfer type.

    Element text is taken as sent (`sources`; an empty element counts as absent), except: dates of
    8 or 6 ASCII digits (the first 8 characters of a DTM07 range) become YYYY-MM-DD; quantity and
    net_amount take their sign from the transfer type; the unit is the part before the first
    component separator; an invoice line from LIN01 must be digits; distributor_sku is the id of
    the first product qualifier found among LIN02/03, 04/05, 06/07 (one with an empty id does not
    count)."""
    size = rows.shape[0]
    n_values = len(VALUES_867)
    words = np.zeros((n_values, size, 2), dtype=np.uint64)
    valid = np.zeros((n_values, size), dtype=np.bool_)
    left = np.zeros((5, size), dtype=np.bool_)
    long_lin = np.full(size, -1, dtype=np.int64)
    transfer = np.full(size, _OTHER, dtype=np.uint8)
    begins = np.empty(n_values, dtype=np.int64)
    stops = np.empty(n_values, dtype=np.int64)
    taken_from = np.empty(n_values, dtype=np.int64)
    width = component.size
    for item in range(size):
        taken_from[:] = -1
        for source in range(sources.shape[0]):
            value, pick, slot, tag, n = (
                sources[source, 0],
                sources[source, 1],
                sources[source, 2],
                sources[source, 3],
                sources[source, 4],
            )
            row = rows[item, pick]
            if taken_from[value] >= 0 or row < 0:
                continue
            if slot >= 0:
                row = party[row, slot]
            if row < 0 or k[row] != tag:
                continue
            begin, stop, present = _element(delims, first, count, row, n)
            if not present or stop <= begin:
                continue
            condition = sources[source, 5]
            if condition == _AFTER_QUALIFIER:
                qualifier, qualifier_end, _ = _element(delims, first, count, row, n - 1)
                length, word = _element_word(word_at, qualifier, qualifier_end)
                if length != sources[source, 7] or word != np.uint64(sources[source, 6]):
                    continue
            elif condition == _NOT_COMPONENT_FIRST and stop - begin >= width:
                starts = True
                for at in range(width):
                    starts &= data[begin + at] == component[at]
                if starts:
                    continue
            begins[value], stops[value], taken_from[value] = begin, stop, source
        # Transfer type, then the signs of quantity and net_amount.
        ptd = rows[item, _P_PTD]
        if ptd >= 0 and k[ptd] == PTD:
            code, code_end, has_code = _element(delims, first, count, ptd, 1)
            if has_code:
                length, word = _element_word(word_at, code, code_end)
                kind = _rank(length, word, transfer_words, transfer_lengths)
                if kind >= 0:
                    transfer[item] = transfer_kinds[kind]
        kind = transfer[item]
        for value, source_value in ((_V_QUANTITY, _V_REPORTED_QUANTITY), (_V_AMOUNT, _V_AMOUNT)):
            if value == _V_QUANTITY and kind != _SALE and kind != _RETURN:
                words[value, item, 0] = np.uint64(1) | (np.uint64(_ZERO) << np.uint64(32))  # "0"
                valid[value, item] = True
                continue
            if taken_from[source_value] < 0:
                continue
            begin, stop = begins[source_value], stops[source_value]
            high, low = _view(word_at, begin, stop)
            length = stop - begin
            sign = data[begin]
            if kind == _RETURN and sign != _MINUS:
                # Negative whatever the sent sign (`_negative`) where the view can hold it.
                if sign == _PLUS and length <= VIEW_INLINE:
                    high = (high & ~(np.uint64(0xFF) << np.uint64(32))) | (np.uint64(_MINUS) << np.uint64(32))
                elif sign != _PLUS and length < VIEW_INLINE:
                    text = high >> np.uint64(32)
                    high = np.uint64(length + 1) | (
                        (((text << np.uint64(8)) | np.uint64(_MINUS)) & np.uint64(_LOW_32)) << np.uint64(32)
                    )
                    low = (low << np.uint64(8)) | (text >> np.uint64(24))
                else:
                    left[_LEFT_QUANTITY if value == _V_QUANTITY else _LEFT_AMOUNT, item] = True
            words[value, item, 0], words[value, item, 1] = high, low
            valid[value, item] = True
        # The unit is the part before the first component separator.
        if taken_from[_V_UNIT] >= 0:
            begin, stop = begins[_V_UNIT], stops[_V_UNIT]
            for at in range(begin, stop - width + 1):
                same = True
                for offset in range(width):
                    same &= data[at + offset] == component[offset]
                if same:
                    stops[_V_UNIT] = at
                    break
            if stops[_V_UNIT] == begin:
                taken_from[_V_UNIT] = -1
        # An invoice line from LIN01 must be digits (a text that is not ASCII is left to `^\d+$`).
        if taken_from[_V_LINE] == _LINE_FROM_LIN:
            ascii_text, digits = True, True
            for at in range(begins[_V_LINE], stops[_V_LINE]):
                ascii_text &= data[at] < 0x80
                digits &= _ZERO <= data[at] <= _NINE
            if not ascii_text:
                left[_LEFT_LINE, item] = True
            elif not digits:
                taken_from[_V_LINE] = -1
        # Dates of 8 (or 6: YYMMDD, 20YY when YY < 50) ASCII digits as YYYY-MM-DD, the first 8
        # characters of a DTM07 range; other text is left to `_iso_date`.
        if taken_from[_V_DATE] >= 0:
            begin, stop = begins[_V_DATE], stops[_V_DATE]
            in_range = k[rows[item, _P_DATE]] == DTM and taken_from[_V_DATE] != _DATE_FROM_DTM02
            left[_DATE_IN_RANGE, item] = in_range
            length = min(stop - begin, 8) if in_range else stop - begin
            digits = length == 8 or length == 6
            for at in range(begin, begin + length if digits else begin):
                digits &= _ZERO <= data[at] <= _NINE
            if digits:
                if length == 8:
                    year, rest = _view(word_at, begin, begin + 4)[0] >> np.uint64(32), begin + 4
                else:
                    century = 0x3032 if (data[begin] - _ZERO) * 10 + data[begin + 1] - _ZERO < 50 else 0x3931
                    year = np.uint64(century) | (np.uint64(data[begin]) << np.uint64(16))
                    year |= np.uint64(data[begin + 1]) << np.uint64(24)
                    rest = begin + 2
                month = np.uint64(data[rest]) | (np.uint64(data[rest + 1]) << np.uint64(8))
                day = np.uint64(data[rest + 2]) | (np.uint64(data[rest + 3]) << np.uint64(8))
                words[_V_DATE, item, 0] = np.uint64(10) | (year << np.uint64(32))
                words[_V_DATE, item, 1] = (
                    np.uint64(_MINUS) | (month << np.uint64(8)) | (np.uint64(_MINUS) << np.uint64(24))
                ) | (day << np.uint64(32))
                valid[_V_DATE, item] = True
                taken_from[_V_DATE] = -1
            else:
                left[_LEFT_DATE, item] = True
        # distributor_sku; a LIN of 8 elements or more without it is left to `sku_from_segment`.
        lin = rows[item, _P_LIN]
        if lin >= 0 and k[lin] == LIN:
            for code in range(product_words.size):
                for pair in range(2, 7, 2):
                    qualifier, qualifier_end, there = _element(delims, first, count, lin, pair)
                    length, word = _element_word(word_at, qualifier, qualifier_end)
                    if there and length == product_lengths[code] and word == product_words[code]:
                        begin, stop, present = _element(delims, first, count, lin, pair + 1)
                        if present and stop > begin:
                            begins[_V_SKU], stops[_V_SKU], taken_from[_V_SKU] = begin, stop, 0
                            break
                if taken_from[_V_SKU] >= 0:
                    break
            if taken_from[_V_SKU] < 0 and count[lin] >= 8:
                long_lin[item] = lin
        # Every other value as sent.
        for value in range(n_values):
            if taken_from[value] >= 0 and value != _V_QUANTITY and value != _V_AMOUNT:
                words[value, item, 0], words[value, item, 1] = _view(word_at, begins[value], stops[value])
                valid[value, item] = True
    return words, valid, left, long_lin, transfer


def _frame_867(
    t: Tokens,
    words: np.ndarray,
    valid: np.ndarray,
    left: np.ndarray,
    long_lin: np.ndarray,
    transfer: np.ndarray,
    keys: dict[str, np.ndarray],
    settings: Settings,
) -> pl.DataFrame:
    """The 867 records of a chunk from the views of their values, finishing with the Polars
    expressions what the views cannot hold: a long number without its sign, a date that is not 6
    or 8 ASCII digits, an invoice line that is not ASCII, a long LIN, the end customer's address."""
    columns = {
        name: t.column(name, words[value], valid[value])
        for value, name in enumerate(VALUES_867)
        if not name.startswith("_")
    }
    columns["transaction_type"] = constant_column("transaction_type", transfer, TRANSACTION_TYPES)
    helpers: dict[str, pl.Series] = {}
    fixed: dict[str, pl.Expr] = {}

    def left_to(name: str, which: int, expression: pl.Expr) -> None:
        if left[which].any():
            helpers[f"_left_{name}"] = pl.Series(left[which])
            fixed[name] = pl.when(pl.col(f"_left_{name}")).then(expression).otherwise(pl.col(name))

    if left[_LEFT_DATE].any():
        helpers["_date_in_range"] = pl.Series(left[_DATE_IN_RANGE])
    raw = pl.col("transaction_date")
    left_to(
        "transaction_date",
        _LEFT_DATE,
        _iso_date(pl.when(pl.col("_date_in_range")).then(raw.str.slice(0, 8)).otherwise(raw)),
    )
    left_to("quantity", _LEFT_QUANTITY, _negative(pl.col("quantity")))
    left_to("net_amount", _LEFT_AMOUNT, _negative(pl.col("net_amount")))
    line = pl.col("invoice_line")
    left_to("invoice_line", _LEFT_LINE, pl.when(line.str.contains(r"^\d+$")).then(line))
    if (long_lin >= 0).any():
        helpers["_lin_long"] = t.segment_column(long_lin)
        fixed["distributor_sku"] = pl.coalesce(
            pl.col("distributor_sku"), sku_from_segment(settings.spec, settings.element, pl.col("_lin_long"))
        )
    if any(valid[value].any() for value in _ADDRESS_PARTS):
        for value in _ADDRESS_PARTS:
            helpers[VALUES_867[value]] = t.column(VALUES_867[value], words[value], valid[value])
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
