"""Large sample feeds for benchmarks: millions of lines in the formats of the sample distributors.

The weekly sample (`generator.py`) is small and hand-checked; this module writes the same
distributors' formats at any size, vectorized with Polars so that generating 5,000,000 lines takes
seconds: Northwind's comma CSV (quoted names with commas, US dates, thousands separators, padded
and mixed-case names, end-customer names), Rheinland's semicolon, cp1252, decimal-comma CSV,
Albion's workbook (title rows above the header, a totals row; written cell by cell, so slower) and
Keystone's EDI 867 (one PTD loop with its reseller per line item).
The files are read with the shipped feed specs (`sampledata/feeds/`). Nothing here is imported by
the pipeline.
"""

from __future__ import annotations

from datetime import date, datetime, time
from pathlib import Path

import polars as pl
import xlsxwriter

from sampledata.generator import (
    ALBION,
    ALBION_HEADER_ROW,
    DISTRIBUTOR_SKUS,
    KEYSTONE,
    NORTHWIND,
    PRODUCTS,
    RHEINLAND,
    SITES,
)

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


def write_albion(
    path: Path, lines: int, *, first_invoice: int = 500_000, start: date = date(2026, 1, 5), days: int = 7
) -> Path:
    """Albion's workbook (spec `albion_uk`: Albion_SellOut_*.xlsx): two title rows and a blank row
    above the header, numeric and date cells, a TOTAL row closing the data."""
    frame = _frame(lines, first_invoice, start, days, ALBION)
    path.parent.mkdir(parents=True, exist_ok=True)
    workbook = xlsxwriter.Workbook(path, {"constant_memory": True})
    day_format = workbook.add_format({"num_format": "dd/mm/yyyy"})
    sheet = workbook.add_worksheet("Sell-Out")
    sheet.write(0, 0, "Albion Distribution Ltd - Weekly Sell-Out Report")
    sheet.write(1, 0, f"Vendor: Throughline Networks | Period from {start:%d/%m/%Y}")
    header = ["Invoice No", "Line No", "Invoice Date", "Customer Name", "Customer Postcode", "Customer Country",
              "Albion Part No", "Description", "Qty", "Unit Price", "Line Value", "Currency"]  # fmt: skip
    sheet.write_row(ALBION_HEADER_ROW - 1, 0, header)
    row = ALBION_HEADER_ROW
    for line in frame.iter_rows(named=True):
        sheet.write_string(row, 0, f"SI{line['invoice']:07d}")
        sheet.write_number(row, 1, line["line"])
        sheet.write_datetime(row, 2, datetime.combine(line["date"], time()), day_format)
        sheet.write_string(row, 3, line["reseller"])
        sheet.write_string(row, 4, line["postal"])
        sheet.write_string(row, 5, line["country"])
        sheet.write_string(row, 6, line["part"])
        sheet.write_string(row, 7, line["description"])
        sheet.write_number(row, 8, line["qty"])
        sheet.write_number(row, 9, line["price"])
        sheet.write_number(row, 10, line["amount"])
        sheet.write_string(row, 11, "GBP")
        row += 1
    sheet.write_string(row, 0, "TOTAL")
    workbook.close()
    return path


def write_keystone_867(
    path: Path, lines: int, *, first_invoice: int = 700_000, start: date = date(2026, 1, 5), days: int = 7
) -> Path:
    """Keystone's EDI 867 (spec `keystone_edi`: KEYSTONE_867_*.edi): one interchange and transaction
    set, a PTD loop per line item (date, invoice, reseller N1/N4) with its QTY, LIN, UIT and AMT."""
    frame = _frame(lines, first_invoice, start, days, KEYSTONE)
    items = frame.select(
        pl.concat_str(
            pl.lit("PTD*SS~\nDTM*003*"),
            pl.col("date").dt.strftime("%Y%m%d"),
            pl.lit("~\nREF*IV*K"),
            pl.col("invoice").cast(pl.String),
            pl.lit("~\nN1*BY*"),
            pl.col("reseller").str.strip_chars(),
            pl.lit("~\nN4*NEW YORK*NY*"),
            pl.col("postal"),
            pl.lit("*"),
            pl.col("country"),
            pl.lit("~\nQTY*32*"),
            pl.col("qty").cast(pl.String),
            pl.lit("*EA~\nLIN*"),
            pl.col("line").cast(pl.String),
            pl.lit("*VP*"),
            pl.col("part"),
            pl.lit("~\nUIT*EA*"),
            pl.col("price").round(2).cast(pl.String),
            pl.lit("~\nAMT*1*"),
            pl.col("amount").round(2).cast(pl.String),
            pl.lit("~"),
        ).alias("segments")
    )
    header = ["ST*867*0001", f"BPT*00*SO{start:%Y%m%d}*{start:%Y%m%d}*SD", "CUR*SE*USD"]
    segment_count = len(header) + 9 * lines + 2  # + CTT and SE
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        handle.write(
            f"ISA*00*{'':10}*00*{'':10}*ZZ*{'KEYSTONE':15}*ZZ*{'THROUGHLINE':15}*{start:%y%m%d}*0600"
            f"*U*00401*000000001*0*P*>~\n".encode("ascii")
        )
        handle.write(f"GS*PT*KEYSTONE*THROUGHLINE*{start:%Y%m%d}*0600*1*X*004010~\n".encode("ascii"))
        handle.write("".join(f"{segment}~\n" for segment in header).encode("ascii"))
        items.write_csv(handle, include_header=False, quote_style="never")
        handle.write(f"CTT*{lines}~\nSE*{segment_count}*0001~\nGE*1*1~\nIEA*1*000000001~\n".encode("ascii"))
    return path
