"""HTML rendering: the Jinja environment (autoescaping on, undefined names are errors) and filters.

Templates live in `reports/templates/` (package data). A page is one HTML string with its CSS, its
SVG charts and its one script inline, under a Content-Security-Policy that forbids fetching
anything: a scorecard opens the same from a mail attachment, a file share or offline.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import date
from decimal import Decimal
from functools import cache
from importlib.resources import files

import jinja2

from reports.views import OverviewPage, PartnerPage

CHART_CHECK_SCRIPT = """
window.addEventListener("load", function () {
  var drawn = 0;
  document.querySelectorAll("svg.chart").forEach(function (svg) {
    var marks = svg.querySelectorAll(".mark");
    for (var i = 0; i < marks.length; i++) {
      var box = marks[i].getBBox();
      if (box.width > 0 && box.height > 0) { drawn += 1; return; }
    }
  });
  document.body.dataset.chartsDrawn = String(drawn);
});
""".strip()
"""Counts the charts whose marks have a non-zero size once the page has loaded (`data-charts-drawn`);
the server writes how many it drew in `data-charts-expected`, so a browser test compares the two."""


def _csp() -> str:
    digest = base64.b64encode(hashlib.sha256(CHART_CHECK_SCRIPT.encode()).digest()).decode()
    return (
        "default-src 'none'; style-src 'unsafe-inline'; "
        f"script-src 'sha256-{digest}'; img-src 'none'; base-uri 'none'; form-action 'none'"
    )


MISSING = "\u2013"
"""What an empty cell shows (an en dash)."""


def money(value: Decimal | float | None) -> str:
    return MISSING if value is None else f"{value:,.2f}"


def percent(value: float | None, signed: bool = False) -> str:
    if value is None:
        return MISSING
    return f"{value:+.1f}%" if signed else f"{value:.0f}%"


def count(value: int | None) -> str:
    return MISSING if value is None else f"{value:,}"


def day(value: date | None) -> str:
    return MISSING if value is None else value.isoformat()


@cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FunctionLoader(_template_source),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(money=money, percent=percent, count=count, day=day)
    env.globals.update(chart_check_script=CHART_CHECK_SCRIPT, content_security_policy=_csp())
    return env


def _template_source(name: str) -> str:
    return files("reports").joinpath("templates", name).read_text(encoding="utf-8")


def render_partner(page: PartnerPage) -> str:
    """One partner's scorecard page."""
    return environment().get_template("partner.html.j2").render(page=page)


def render_overview(page: OverviewPage) -> str:
    """The vendor overview page."""
    return environment().get_template("overview.html.j2").render(page=page)
