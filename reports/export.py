"""Partner-scoped exports: one partner's sell-out lines as CSV (safe to open in a spreadsheet) and Parquet.

The CSV neutralizes cells a spreadsheet would run as a formula (OWASP CSV injection guidance);
the Parquet keeps the values exactly as stored. Both files hold that partner's lines only.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from reports.files import atomic_path, file_stem

FORMULA_TRIGGERS = r"^[=+\-@\t\r\n]"
"""A text cell starting with one of these is read as a formula by Excel, LibreOffice or Sheets
(OWASP lists `=`, `+`, `-`, `@`, tab and carriage return; line feed is added for the same reason)."""


def neutralize_formulas(frame: pl.DataFrame) -> pl.DataFrame:
    """Prefix `'` to every text cell that starts like a formula; other columns are left as they are."""
    text = [name for name, dtype in frame.schema.items() if dtype in (pl.String, pl.Categorical, pl.Enum)]
    return frame.with_columns(
        pl.when(pl.col(name).cast(pl.String).str.contains(FORMULA_TRIGGERS))
        .then(pl.lit("'") + pl.col(name).cast(pl.String))
        .otherwise(pl.col(name).cast(pl.String))
        .alias(name)
        for name in text
    )


def export_partner(
    sellout: pl.DataFrame | pl.LazyFrame,
    partner_id: str,
    out_dir: Path,
    *,
    partners: pl.DataFrame | None = None,
) -> tuple[Path, Path]:
    """Write `<partner_id>-sellout.csv` and `<partner_id>-sellout.parquet` into `out_dir`.

    Only the lines whose `partner_id` is `partner_id` are written, ordered by transaction date and
    line id. A partner with no line is unknown (ValueError) unless `partners` lists it; then the
    files hold the header alone.
    """
    stem = file_stem(partner_id)
    lines = (
        sellout.lazy()
        .filter(pl.col("partner_id") == partner_id)
        .sort([c for c in ("transaction_date", "line_id") if c in sellout.lazy().collect_schema()])
        .collect()
    )
    known = partners is not None and partner_id in set(partners.get_column("partner_id").to_list())
    if lines.is_empty() and not known:
        raise ValueError(f"unknown partner {partner_id!r}: no sell-out line and not in partners")

    out_dir = Path(out_dir)
    csv_path = out_dir / f"{stem}-sellout.csv"
    parquet_path = out_dir / f"{stem}-sellout.parquet"
    with atomic_path(parquet_path) as temporary:
        lines.write_parquet(temporary)
    with atomic_path(csv_path) as temporary:
        # Text is quoted and numbers are not, so a spreadsheet reads numbers as numbers.
        neutralize_formulas(lines).write_csv(temporary, quote_style="non_numeric")
    return csv_path, parquet_path
