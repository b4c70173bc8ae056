"""A partner sees only its own rows: `throughline export --partner P` and P's scorecard, for partners
Hypothesis picks among the sample's, hold every line of P and no row, id or reseller of another.

The sample warehouse (loaded through the real ingest path) is copied, published once (marts and
scorecards), and then exported partner by partner through the command itself.
"""

from __future__ import annotations

import csv
import os
import re
import shutil
import tempfile
from pathlib import Path
from unittest import mock

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cli.main import main
from tests.conftest import TEST_SECRET, SampleWarehouse
from tests.guarantees import Figures

pytestmark = pytest.mark.system

PARTNER_ID = re.compile(r"\bP\d{4}\b")


class Published:
    def __init__(self, home: Path) -> None:
        self.home = home
        self.env = {"THROUGHLINE_HOME": str(home), "THROUGHLINE_CUSTOMER_KEY_SECRET": TEST_SECRET}
        with mock.patch.dict(os.environ, self.env):
            assert main(["publish", "--as-of", "2026-11-16"]) == 0
        from warehouse.catalog import connect
        from warehouse.storage import storage_for_home

        connection = connect(storage_for_home(home / "landing", home / "warehouse"))
        try:
            self.sellout = connection.sql("select * from sellout").pl()
            self.partners = connection.sql("select partner_id, legal_name from partners").pl()
        finally:
            connection.close()
        self.partner_ids = sorted(set(self.partners["partner_id"]))


@pytest.fixture(scope="module")
def published(sample_warehouse: SampleWarehouse, tmp_path_factory: pytest.TempPathFactory) -> Published:
    home = tmp_path_factory.mktemp("scope") / "home"
    shutil.copytree(sample_warehouse.home, home, symlinks=True)
    return Published(home)


def _own_text(lines: pl.DataFrame) -> str:
    """Everything P's own lines say, so a name of another partner's reseller that P's own text also
    contains (a shorter name inside a longer one) is not taken for a leak."""
    return "\n".join(str(value) for row in lines.iter_rows() for value in row if value is not None)


def test_a_partner_export_and_scorecard_hold_only_that_partner(
    published: Published, figures: Figures
) -> None:
    assert len(published.partner_ids) >= 10
    assert published.sellout.filter(pl.col("partner_id").is_not_null())["partner_id"].n_unique() >= 10

    @settings(max_examples=30, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
    @given(partner=st.sampled_from(published.partner_ids))
    def check(partner: str) -> None:
        mine = published.sellout.filter(pl.col("partner_id") == partner)
        others = published.sellout.filter(pl.col("partner_id") != partner)
        own = _own_text(mine)
        with tempfile.TemporaryDirectory() as out, mock.patch.dict(os.environ, published.env):
            assert main(["export", "--partner", partner, "--out", out, "--format", "csv"]) == 0
            exported = pl.read_parquet(Path(out) / f"{partner}-sellout.parquet")
            text = (Path(out) / f"{partner}-sellout.csv").read_text(encoding="utf-8")
            with (Path(out) / f"{partner}-sellout.csv").open(newline="", encoding="utf-8") as handle:
                rows = list(csv.DictReader(handle))
        assert set(exported["partner_id"]) <= {partner}
        assert sorted(exported["line_id"]) == sorted(mine["line_id"]), "every line of the partner, once"
        assert sorted(row["line_id"] for row in rows) == sorted(mine["line_id"])
        assert {row["partner_id"] for row in rows} <= {partner}
        assert not [line for line in others["line_id"] if line in text]
        assert set(PARTNER_ID.findall(text)) <= {partner}
        strangers = set(others["reseller_name"].drop_nulls()) - set(mine["reseller_name"].drop_nulls())
        assert not [name for name in strangers if name in text and name not in own]

        page = (published.home / "reports" / "partners" / f"{partner}.html").read_text(encoding="utf-8")
        assert partner in page
        assert set(PARTNER_ID.findall(page)) <= {partner}
        names = dict(published.partners.iter_rows())
        other_names = {name for pid, name in names.items() if pid != partner and name not in names[partner]}
        assert not [name for name in other_names if name in page and name not in own]
        assert not [name for name in strangers if name in page and name not in own]
        figures.add(
            trials=1, rows_checked=mine.height + others.height, rows_lost=mine.height - exported.height
        )

    check()
    assert figures.trials >= 10
