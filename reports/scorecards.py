"""Writing the scorecards: one HTML page per partner and the vendor overview, from the marts.

`write_reports` filters every input to one partner before building that partner's page (the
privacy rule: a partner page holds its own partner's data only), writes each page atomically and
removes the pages of partners no longer present. What a page shows is `reports.views`; how it
looks is `reports/templates/`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import polars as pl

from reports.files import file_stem, remove_stray_temporaries, write_text_atomic
from reports.render import render_overview, render_partner
from reports.views import overview_page, partner_page, window_start
from schemas.settings import DEFAULT_BASE_CURRENCY

PARTNERS_DIR = "partners"
INDEX = "index.html"

Frame = pl.DataFrame | pl.LazyFrame


@dataclass(frozen=True)
class ReportsWritten:
    """What one `write_reports` call left in `out_dir`."""

    out_dir: Path
    index: Path
    pages: dict[str, Path]
    """Partner id -> its page."""
    removed: tuple[Path, ...]
    """Pages of partners no longer in `partners`, deleted."""
    charts: int
    """Charts drawn across all partner pages."""


def _collect(frame: Frame) -> pl.DataFrame:
    return frame.collect() if isinstance(frame, pl.LazyFrame) else frame


def _partners(partners: pl.DataFrame) -> pl.DataFrame:
    """One row per partner id; of a history (`valid_from`), the latest row."""
    if "valid_from" in partners.columns:
        partners = partners.sort("valid_from", nulls_last=False)
    return partners.unique("partner_id", keep="last", maintain_order=True).sort("partner_id")


def _by_partner(frame: pl.DataFrame) -> dict[str, pl.DataFrame]:
    return {key[0]: part for key, part in frame.partition_by("partner_id", as_dict=True).items()}


def _sales(sellout: Frame, as_of: date) -> pl.DataFrame:
    """Sell-out per partner and sku over the trailing window: units and base-currency revenue."""
    return (
        sellout.lazy()
        .filter(
            pl.col("partner_id").is_not_null()
            & pl.col("transaction_date").is_between(window_start(as_of), as_of, closed="both")
        )
        .group_by("partner_id", "sku")
        .agg(units=pl.col("quantity").sum(), revenue=pl.col("net_amount_base").sum())
        .collect()
    )


def write_reports(
    out_dir: Path,
    *,
    partners: Frame,
    partner_performance: Frame,
    rebate_accruals: Frame,
    sellout: Frame,
    products: Frame,
    certifications: Frame,
    as_of: date,
    base_currency: str = DEFAULT_BASE_CURRENCY,
) -> ReportsWritten:
    """Write `out_dir/partners/<partner_id>.html` for every partner and `out_dir/index.html`.

    Amounts are in `base_currency` (`revenue_base`, `net_amount_base`); figures are those of the
    latest month at or before `as_of`. Pages of partners no longer in `partners` are removed, and so
    are the temporary files of a run killed mid-write (callers never write reports concurrently:
    `ingest.publish` holds a lock); the overview is written last, so it never links to a page not
    yet written.
    """
    out_dir = Path(out_dir)
    for folder in (out_dir, out_dir / PARTNERS_DIR):
        remove_stray_temporaries(folder)
    partner_rows = _partners(_collect(partners))
    performance, accruals, held = (
        _collect(frame) for frame in (partner_performance, rebate_accruals, certifications)
    )
    sales = _sales(sellout, as_of)
    catalogue = _collect(products)
    # Each partner's page is built from these per-partner slices only; an absent partner gets an
    # empty frame of the same schema.
    slices = {
        name: _by_partner(frame)
        for name, frame in (
            ("performance", performance),
            ("accruals", accruals),
            ("sales", sales),
            ("certifications", held),
        )
    }
    empty = {
        "performance": performance.clear(),
        "accruals": accruals.clear(),
        "sales": sales.clear(),
        "certifications": held.clear(),
    }

    def slice_of(name: str, partner_id: str) -> pl.DataFrame:
        return slices[name].get(partner_id, empty[name])

    pages_dir = out_dir / PARTNERS_DIR
    pages: dict[str, Path] = {}
    charts = 0
    for partner in partner_rows.iter_rows(named=True):
        partner_id = partner["partner_id"]
        page = partner_page(
            partner,
            performance=slice_of("performance", partner_id),
            accruals=slice_of("accruals", partner_id),
            sales=slice_of("sales", partner_id),
            certifications=slice_of("certifications", partner_id),
            products=catalogue,
            as_of=as_of,
            base_currency=base_currency,
        )
        charts += len(page.charts)
        pages[partner_id] = write_text_atomic(
            pages_dir / f"{file_stem(partner_id)}.html", render_partner(page)
        )

    removed = []
    if pages_dir.is_dir():
        kept = set(pages.values())
        for stale in sorted(pages_dir.glob("*.html")):
            if stale not in kept:
                stale.unlink()
                removed.append(stale)

    overview = overview_page(
        partner_rows,
        performance,
        hrefs={pid: f"{PARTNERS_DIR}/{path.name}" for pid, path in pages.items()},
        as_of=as_of,
        base_currency=base_currency,
    )
    index = write_text_atomic(out_dir / INDEX, render_overview(overview))
    return ReportsWritten(out_dir=out_dir, index=index, pages=pages, removed=tuple(removed), charts=charts)
