"""Large sample feeds for benchmarks: millions of lines in the formats of the sample distributors.

The weekly sample (`generator.py`) is small and hand-checked; this module writes the same
distributors' formats at any size, vectorized with Polars so that generating 5,000,000 lines takes
seconds: Northwind's comma CSV (quoted names with commas, US dates, thousands separators, padded
and mixed-case names, end-customer names) and Rheinland's semicolon, cp1252, decimal-comma CSV.
The files are read with the shipped feed specs (`sampledata/feeds/`). Nothing here is imported by
the pipeline.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl

from sampledata.generator import DISTRIBUTOR_SKUS, NORTHWIND, PRODUCTS, RHEINLAND, SITES

NAMES_WITH_COMMAS = ("Brightline Technologies, Inc.", "Summit Data Solutions, Inc.", "Cobalt Systems, L.L.C.")


def _pick(values: list[str], index: pl.Expr, stride: int) -> pl.Expr:
    """A value of `values` chosen by a cheap deterministic hash of the row index."""
    return pl.lit(pl.Series(values)).get((index * stride + index // 7) % len(values))


def _frame(lines: int, first_invoice: int, start: date, days: int, distributor: str) -> pl.DataFrame:
    index = pl.int_range(0, lines, dtype=pl.Int64)
    skus = sorted(PRODUCTS)
    sites = SITES[distributor]
    names = [name for site in sites for name in site.names] + list(NAMES_WITH_COMMAS)
    names = [f"  {name.lower()} " if i % 5 == 0 else name for i, name in enumerate(names)]
    return pl.select(
        (first_invoice + index // 3).alias("invoice"),
        (index % 3 + 1).alias("line"),
        (pl.lit(start) + pl.duration(days=(index * 13) % days)).alias("date"),
        _pick(names, index, 31).alias("reseller"),
        _pick([site.postal_code for site in sites], index, 17).alias("postal"),
        _pick([site.country for site in sites], index, 17).alias("country"),
        _pick([DISTRIBUTOR_SKUS[distributor][sku] for sku in skus], index, 11).alias("part"),
        _pick([PRODUCTS[sku][0] for sku in skus], index, 11).alias("description"),
        (1 + (index * 7) % 40).alias("qty"),
        _pick([f"{PRODUCTS[sku][1]:.2f}" for sku in skus], index, 11).cast(pl.Float64).alias("price"),
        _pick(
            ["Harbourside Dental Group", "Tasman Freight Ltd", "Outback Mining Services", ""], index, 3
        ).alias("customer"),
    ).with_columns((pl.col("qty") * pl.col("price")).round(2).alias("amount"))


def _thousands(column: str, separator: str, decimal: str) -> pl.Expr:
    """Money as text with a thousands separator, e.g. 12,345.60 (or 12.345,60)."""
    cents = (pl.col(column) * 100).round(0).cast(pl.Int64)
    whole = cents // 100
    fraction = (cents % 100).cast(pl.String).str.zfill(2)
    grouped = (
        pl.when(whole >= 1000)
        .then(
            (whole // 1000).cast(pl.String) + pl.lit(separator) + (whole % 1000).cast(pl.String).str.zfill(3)
        )
        .otherwise(whole.cast(pl.String))
    )
    return grouped + pl.lit(decimal) + fraction


def write_northwind(
    path: Path, lines: int, *, first_invoice: int = 1_000_000, start: date = date(2026, 1, 5), days: int = 7
) -> Path:
    """Northwind's comma CSV (spec `northwind_us`: NW_SALES_*.csv), UTF-8 with a BOM."""
    frame = _frame(lines, first_invoice, start, days, NORTHWIND).select(
        ("INV" + pl.col("invoice").cast(pl.String).str.zfill(7)).alias("Invoice Number"),
        pl.col("line").cast(pl.String).alias("Line"),
        pl.col("date").dt.strftime("%m/%d/%Y").alias("Invoice Date"),
        pl.col("reseller").alias("Reseller Name"),
        pl.col("postal").alias("Reseller Zip"),
        pl.col("country").alias("Reseller Country"),
        pl.col("part").alias("Part Number"),
        pl.col("description").alias("Description"),
        pl.col("qty").cast(pl.String).alias("Qty"),
        _thousands("price", ",", ".").alias("Unit Price"),
        _thousands("amount", ",", ".").alias("Extended Price"),
        pl.lit("USD").alias("Currency"),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        handle.write("\ufeff".encode())
        frame.write_csv(handle, line_terminator="\r\n", quote_style="necessary")
    return path


def write_rheinland(
    path: Path, lines: int, *, first_invoice: int = 10_000, start: date = date(2026, 1, 5), days: int = 7
) -> Path:
    """Rheinland's semicolon CSV in cp1252 with decimal commas (spec `rheinland_de`: RH_Abverkauf_*.csv)."""
    frame = _frame(lines, first_invoice, start, days, RHEINLAND).select(
        ("RE-2026-" + pl.col("invoice").cast(pl.String).str.zfill(6)).alias("Beleg-Nr"),
        pl.col("line").cast(pl.String).alias("Pos"),
        pl.col("date").dt.strftime("%d.%m.%Y").alias("Belegdatum"),
        pl.col("reseller").alias("Kunde"),
        pl.col("postal").alias("Kunde PLZ"),
        pl.col("country").alias("Kunde Land"),
        pl.lit("Hohenzollernring 22, 50672 Köln").alias("Lieferadresse"),
        pl.col("part").alias("Artikelnr"),
        pl.col("description").alias("Artikelbezeichnung"),
        pl.col("qty").cast(pl.String).alias("Menge"),
        _thousands("price", ".", ",").alias("Einzelpreis"),
        _thousands("amount", ".", ",").alias("Nettobetrag"),
        pl.lit("EUR").alias("Währung"),
        pl.col("customer").alias("Endkunde"),
        pl.lit("").alias("Endkunde E-Mail"),
        pl.lit("").alias("Endkunde Adresse"),
        pl.lit("DE").alias("Endkunde Land"),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    text = frame.write_csv(separator=";", line_terminator="\r\n", quote_style="non_numeric")
    path.write_bytes(text.encode("cp1252", errors="replace"))
    return path
