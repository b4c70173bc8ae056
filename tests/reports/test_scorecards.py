"""Scorecard pages: one partner's data per page, nothing fetched from anywhere, hostile text escaped,
and a rewrite that leaves only the current partners' pages."""

from __future__ import annotations

import html
import re
from dataclasses import replace
from pathlib import Path

import polars as pl
import pytest

from reports import write_reports
from reports.charts import nice_ticks
from reports.views import partner_page
from tests.reports.conftest import ALPHA, AS_OF, BRAVO, Marts, PartnerFacts, make_marts


def _facts(partner: PartnerFacts) -> list[str]:
    return [
        partner.partner_id,
        partner.name,
        partner.reseller_name,
        partner.sku,
        partner.product_name,
        partner.certification,
        partner.program_id,
        *partner.amounts,
    ]


def test_each_page_holds_its_partner_and_nothing_of_the_other(tmp_path: Path, marts: Marts) -> None:
    written = write_reports(tmp_path, **marts.inputs(), as_of=AS_OF)

    assert set(written.pages) == {ALPHA.partner_id, BRAVO.partner_id}
    for own, other in ((ALPHA, BRAVO), (BRAVO, ALPHA)):
        page = written.pages[own.partner_id].read_text(encoding="utf-8")
        # Reseller names are not shown (the partner's legal name is), so they are checked only as absent.
        shown = [fact for fact in _facts(own) if fact != own.reseller_name]
        assert [fact for fact in shown if fact not in page] == []
        assert [fact for fact in _facts(other) if fact in page] == []
        assert "Never Sold Widget" not in page


def test_partner_page_shows_quota_tier_products_certifications_and_rebates(
    tmp_path: Path, marts: Marts
) -> None:
    written = write_reports(tmp_path, **marts.inputs(), as_of=AS_OF)
    page = written.pages[ALPHA.partner_id].read_text(encoding="utf-8")

    assert page.count('<svg class="chart"') == 3
    assert 'data-charts-expected="3"' in page
    assert 'id="chart-revenue"' in page and "quota 10,000.00 USD" in page
    assert "Next tier <strong>Gold</strong>" in page and "66,666.68" in page
    assert f"{ALPHA.certification} Pro" in page  # missing for Gold
    assert "Aurora Switch 24" in page and "5,550.55" in page  # sale 5,555.55 less a return of 5.00
    assert re.search(
        r"Alpha Network Associate</td><td>2024-07-30</td><td>2026-07-30</td><td class=\"num\">45</td>", page
    )
    assert "expired" in page  # Alpha Legacy Cert expired on 2026-01-01
    assert "REB-ALPHA" in page and "1,234.56" in page

    bravo = written.pages[BRAVO.partner_id].read_text(encoding="utf-8")
    assert "no higher tier to reach" in bravo


def test_overview_ranks_every_partner_by_trailing_revenue_and_links_their_pages(
    tmp_path: Path, marts: Marts
) -> None:
    written = write_reports(tmp_path, **marts.inputs(), as_of=AS_OF)
    index = written.index.read_text(encoding="utf-8")

    assert written.index == tmp_path / "index.html"
    assert index.index(BRAVO.name) < index.index(ALPHA.name)  # 933,333.24 before 133,333.32
    links = re.findall(r'href="([^"]*)"', index)
    assert links == [f"partners/{BRAVO.partner_id}.html", f"partners/{ALPHA.partner_id}.html"]
    assert all((tmp_path / link).is_file() for link in links)
    assert "66,666.68" in index and "Gold" in index


def test_no_page_refers_to_anything_outside_itself(tmp_path: Path, marts: Marts) -> None:
    written = write_reports(tmp_path, **marts.inputs(), as_of=AS_OF)

    for path in [written.index, *written.pages.values()]:
        page = path.read_text(encoding="utf-8")
        assert not re.search(r"(?i)https?:|//[a-z0-9]|\bsrc\s*=|url\(|@import|ftp:|data:", page), path.name
        for target in re.findall(r'(?i)href\s*=\s*"([^"]*)"', page):
            assert re.fullmatch(r"partners/[A-Za-z0-9._-]+\.html", target), (path.name, target)
        assert "Content-Security-Policy" in page and "default-src 'none'" in html.unescape(page)
    for page in written.pages.values():
        assert "href" not in page.read_text(encoding="utf-8")


def test_a_hostile_partner_name_is_escaped_everywhere(tmp_path: Path) -> None:
    hostile = "<script>alert('pwned')</script> & <img src=x onerror=alert(1)>"
    marts = make_marts(alpha_name=hostile)

    written = write_reports(tmp_path, **marts.inputs(), as_of=AS_OF)

    for path in (written.index, written.pages[ALPHA.partner_id]):
        page = path.read_text(encoding="utf-8")
        assert "<script>alert" not in page and "<img" not in page
        assert "&lt;script&gt;alert(&#39;pwned&#39;)&lt;/script&gt; &amp; &lt;img src=x" in page
        assert page.count("<script") == 1  # the chart check alone


def test_rewriting_removes_the_pages_of_partners_no_longer_present(tmp_path: Path, marts: Marts) -> None:
    first = write_reports(tmp_path, **marts.inputs(), as_of=AS_OF)
    stale = first.pages[BRAVO.partner_id]
    alpha_only = replace(marts, partners=marts.partners.filter(pl.col("partner_id") == ALPHA.partner_id))

    second = write_reports(tmp_path, **alpha_only.inputs(), as_of=AS_OF)

    assert not stale.exists()
    assert second.removed == (stale,)
    assert sorted(p.name for p in (tmp_path / "partners").iterdir()) == [f"{ALPHA.partner_id}.html"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index.html", "partners"]  # no temporary left
    assert BRAVO.name not in second.index.read_text(encoding="utf-8")


def test_a_partner_without_any_data_gets_a_page_saying_so(tmp_path: Path, marts: Marts) -> None:
    newcomer = pl.DataFrame(
        {"partner_id": ["P0009"], "legal_name": ["Charlie New"], "country": ["FR"], "tier": [None]}
    )
    inputs = marts.inputs() | {"partners": pl.concat([marts.partners, newcomer], how="vertical_relaxed")}

    written = write_reports(tmp_path, **inputs, as_of=AS_OF)

    page = written.pages["P0009"].read_text(encoding="utf-8")
    assert "Charlie New" in page and "No sell-out reported" in page and "No rebate accrued" in page
    assert 'data-charts-expected="1"' in page  # the tier bar alone
    assert ALPHA.name not in page and BRAVO.name not in page


def test_lazy_inputs_give_the_same_pages(tmp_path: Path, marts: Marts) -> None:
    eager = write_reports(tmp_path / "eager", **marts.inputs(), as_of=AS_OF)
    lazy = write_reports(
        tmp_path / "lazy", **{name: frame.lazy() for name, frame in marts.inputs().items()}, as_of=AS_OF
    )
    for partner_id, path in eager.pages.items():
        assert path.read_bytes() == lazy.pages[partner_id].read_bytes()


def test_a_page_is_never_built_from_another_partners_rows(marts: Marts) -> None:
    with pytest.raises(ValueError, match="other partners"):
        partner_page(
            marts.partners.row(0, named=True),
            performance=marts.partner_performance,  # both partners: refused
            accruals=marts.rebate_accruals.clear(),
            sales=pl.DataFrame(
                schema={"partner_id": pl.String, "sku": pl.String, "units": pl.Int64, "revenue": pl.Float64}
            ),
            certifications=marts.certifications.clear(),
            products=marts.products,
            as_of=AS_OF,
            base_currency="USD",
        )


def test_a_partner_id_that_cannot_name_a_file_is_refused(tmp_path: Path, marts: Marts) -> None:
    evil = marts.partners.with_columns(
        pl.when(pl.col("partner_id") == BRAVO.partner_id)
        .then(pl.lit("../evil"))
        .otherwise("partner_id")
        .alias("partner_id")
    )
    with pytest.raises(ValueError, match=r"\.\./evil"):
        write_reports(tmp_path / "out", **(marts.inputs() | {"partners": evil}), as_of=AS_OF)
    assert not (tmp_path / "evil.html").exists()


@pytest.mark.parametrize(("low", "high"), [(0, 1), (0, 11111.11), (-5, 44444.44), (0, 933333.24)])
def test_axis_ticks_cover_the_values(low: float, high: float) -> None:
    ticks = nice_ticks(low, high)
    assert ticks[0] <= low and ticks[-1] >= high and 2 <= len(ticks) <= 7
