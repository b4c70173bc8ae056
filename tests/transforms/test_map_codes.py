"""`map_codes` (a spec's unit factors and transaction codes) gives what `replace_strict` gives, for
any codes, unknown and missing ones included, without holding the stream in memory."""

from __future__ import annotations

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from transforms.normalize import map_codes

CODES = st.text(alphabet="ABCX", min_size=1, max_size=2)


@settings(max_examples=200, deadline=None)
@given(
    mapping=st.dictionaries(CODES, st.sampled_from(["sale", "return", "price_adjustment"]), max_size=6),
    values=st.lists(st.one_of(st.none(), CODES), max_size=30),
)
def test_codes_map_as_replace_strict_maps_them(mapping: dict[str, str], values: list[str | None]) -> None:
    frame = pl.DataFrame({"code": values}, schema={"code": pl.String})
    mapped = frame.with_columns(map_codes(pl.col("code"), mapping, None, pl.String()).alias("mapped"))[
        "mapped"
    ].to_list()
    expected = (
        frame.select(pl.col("code").replace_strict(mapping, default=None, return_dtype=pl.String))
        .to_series()
        .to_list()
    )
    assert mapped == expected
    assert mapped == [mapping.get(value) if value is not None else None for value in values]


def test_unknown_and_missing_units_take_the_default_factor() -> None:
    frame = pl.DataFrame({"unit": ["EA", "CS", "PK", None, "cs"]})
    factors = frame.select(map_codes(pl.col("unit"), {"EA": 1, "CS": 12, "PK": 6}, 1, pl.Int64()))
    assert factors.to_series().to_list() == [1, 12, 6, 1, 1]
