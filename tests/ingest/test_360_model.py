"""The 360-degree model on the loaded sample: partners, SKUs and base amounts resolved, against the
generator's truth; exceptions and the fixes a person makes, applied to history without a new load."""

from __future__ import annotations

import shutil
from pathlib import Path

import polars as pl
import pytest

from cli.main import main
from sampledata.reference import reference_truth
from tests.conftest import TEST_SECRET, SampleWarehouse, ingest_inbox
from warehouse.catalog import view_names
from warehouse.tables import add_actions

pytestmark = pytest.mark.system


@pytest.fixture
def own_copy(sample_warehouse: SampleWarehouse, tmp_path: Path) -> SampleWarehouse:
    home = tmp_path / "home"
    shutil.copytree(sample_warehouse.home, home, symlinks=True)
    return SampleWarehouse(home, sample_warehouse.truth, sample_warehouse.unreadable, sample_warehouse.report)


def test_lines_have_partner_sku_and_base_amount(sample_warehouse: SampleWarehouse) -> None:
    shares = sample_warehouse.query(
        """select count(*) as lines,
                  avg(case when partner_id is not null then 1 else 0 end) as with_partner,
                  avg(case when sku is not null then 1 else 0 end) as with_sku,
                  count(*) filter (where currency is not null and net_amount is not null
                                   and net_amount_base is null) as known_currency_without_base
           from sellout"""
    ).row(0, named=True)
    assert shares["lines"] > 500
    assert shares["with_partner"] >= 0.95
    assert shares["with_sku"] >= 0.95
    assert shares["known_currency_without_base"] == 0


def test_each_line_matches_the_generator_truth(sample_warehouse: SampleWarehouse) -> None:
    expected = pl.DataFrame(
        [
            (line.distributor_id, line.invoice_number, line.invoice_line, line.partner_id, line.sku)
            for line in sample_warehouse.truth.sellout_lines
        ],
        schema=["distributor_id", "invoice_number", "invoice_line", "truth_partner", "truth_sku"],
        orient="row",
    )
    found = sample_warehouse.query(
        "select distributor_id, invoice_number, invoice_line, partner_id, sku from sellout"
    ).join(expected, on=["distributor_id", "invoice_number", "invoice_line"], how="inner")
    assert found.height >= 0.95 * expected.height
    matched = found.filter(pl.col("partner_id").is_not_null())
    wrong = matched.filter(pl.col("partner_id") != pl.col("truth_partner"))
    assert wrong.is_empty(), wrong.head(5)
    assert matched.height >= 0.95 * found.height
    assert found.filter(pl.col("sku").is_not_null() & (pl.col("sku") != pl.col("truth_sku"))).is_empty()


def test_resolution_precision_and_recall_over_every_name_variant(sample_warehouse: SampleWarehouse) -> None:
    """Every spelling the generator uses, as resolved in `partner_aliases`: never a wrong partner."""
    truth = pl.DataFrame(
        [
            (r.distributor_id, r.reported_name, r.postal_code, r.country, r.partner_id)
            for r in reference_truth().reported_resellers
        ],
        schema=["distributor_id", "reseller_name", "postal", "reseller_country", "truth_partner"],
        orient="row",
    ).unique()
    resolved = sample_warehouse.query("select * from partner_aliases")
    seen = resolved.join(truth, on=["distributor_id", "reseller_name", "reseller_country"], how="inner")
    assert seen.height >= 30, "the sample's resellers are in partner_aliases"
    decided = seen.filter(pl.col("partner_id").is_not_null())
    assert decided.filter(pl.col("partner_id") != pl.col("truth_partner")).is_empty()
    assert decided.height / seen.height >= 0.95
    assert set(resolved["method"]) <= {"alias", "exact", "normalized", "fuzzy", "none"}


def test_invariant_7_no_end_customer_identity_in_any_catalog_view(sample_warehouse: SampleWarehouse) -> None:
    from sampledata.generator import END_CUSTOMERS

    identities = [
        value
        for customers in END_CUSTOMERS.values()
        for c in customers
        for value in (c.name, c.email, c.phone, c.address)
        if value
    ]
    views = view_names(sample_warehouse.storage)
    assert {"sellout", "quarantine", "partners", "partner_aliases", "unmatched_resellers"} <= set(views)
    for view in views:
        frame = sample_warehouse.query(f"select * from {view}")
        text = "\n".join(str(row) for row in frame.iter_rows())
        leaked = [value for value in identities if value in text]
        assert leaked == [], f"{view} shows {leaked[:3]}"
    keyed = sample_warehouse.query("select count(end_customer_key) as n from sellout")["n"][0]
    assert keyed == sum(line.end_customer_reported for line in sample_warehouse.truth.sellout_lines) > 0


def _run(home: Path, monkeypatch: pytest.MonkeyPatch, *argv: str) -> int:
    monkeypatch.setenv("THROUGHLINE_HOME", str(home))
    monkeypatch.setenv("THROUGHLINE_CUSTOMER_KEY_SECRET", TEST_SECRET)
    return main(list(argv))


def _files(warehouse: SampleWarehouse, table: str) -> dict[str, set[str]]:
    actions = add_actions(warehouse.storage, table)
    by_load: dict[str, set[str]] = {}
    for path, load_id in actions.select("path", "partition.load_id").iter_rows():
        by_load.setdefault(load_id, set()).add(path)
    return by_load


def test_approving_an_alias_rewrites_only_the_loads_holding_that_reseller(
    own_copy: SampleWarehouse, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    aliases = own_copy.settings.reference_dir / "partner_aliases.csv"
    header, *approved = aliases.read_text(encoding="utf-8").splitlines()
    name, postal, country, partner = "Global Reach Solutions Deutschland GmbH", "60311", "DE", "P0015"
    assert any(line.startswith(f"rheinland_de,{name},") for line in approved)
    aliases.write_text(header + "\n", encoding="utf-8")  # the approval is withdrawn...
    ingest_inbox(own_copy.home)  # ...and the next run applies that to history
    reseller = (pl.col("reseller_name") == name) & (pl.col("reseller_postal_code") == postal)
    before = own_copy.query("select * from sellout")
    assert before.filter(reseller)["partner_id"].null_count() == before.filter(reseller).height > 0
    unmatched = own_copy.query("select * from unmatched_resellers")
    assert unmatched["reseller_name"].to_list() == [name]
    fix = unmatched["fix"][0]
    assert fix.startswith("throughline partners approve rheinland_de --name ") and "--partner P0015" in fix
    files_before = _files(own_copy, "sellout")
    holding = set(before.filter(reseller)["load_id"])
    loads_before = own_copy.query("select count(*) as n from loads")["n"][0]

    assert (
        _run(
            own_copy.home,
            monkeypatch,
            "partners",
            "approve",
            "rheinland_de",
            "--name",
            name,
            "--postal-code",
            postal,
            "--country",
            country,
            "--partner",
            partner,
        )
        == 0
    )
    assert "sellout/rheinland_de" in capsys.readouterr().out
    after = own_copy.query("select * from sellout")
    assert set(after.filter(reseller)["partner_id"]) == {partner}
    files_after = _files(own_copy, "sellout")
    changed = {load for load in files_before if files_before[load] != files_after.get(load)}
    assert changed == holding, "only the load partitions holding the reseller were rewritten"
    key = ["load_id", "line_id"]
    others_before = before.filter(~reseller).sort(key)
    others_after = after.filter(~reseller).sort(key)
    assert others_after.equals(others_before), "no other line changed"
    assert after.height == before.height
    assert own_copy.query("select count(*) as n from loads")["n"][0] == loads_before, "no new load"
    assert (
        aliases.read_text(encoding="utf-8")
        .splitlines()[-1]
        .startswith(f"rheinland_de,{name},{postal},DE,P0015,manual,")
    )


def test_a_missing_rate_is_an_exception_until_added(
    own_copy: SampleWarehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    rates = own_copy.settings.reference_dir / "fx_rates.csv"
    lines = rates.read_text(encoding="utf-8").splitlines()
    kept = [lines[0], *[line for line in lines[1:] if ",SEK," not in line]]
    removed = [line for line in lines[1:] if ",SEK," in line]
    assert removed
    rates.write_text("\n".join(kept) + "\n", encoding="utf-8")
    loads_before = own_copy.query("select count(*) as n from loads")["n"][0]
    assert _run(own_copy.home, monkeypatch, "reference", "refresh") == 0
    missing = own_copy.query("select * from missing_fx_rates")
    assert missing["currency"].to_list() == ["SEK"]
    sek_lines = own_copy.query("select count(*) as n from sellout where currency = 'SEK'")["n"][0]
    assert missing["lines"][0] == sek_lines > 0
    assert missing["fix"][0].startswith("throughline rates add SEK --date ")
    assert own_copy.query("select count(*) as n from sellout where net_amount_base = 0")["n"][0] == 0

    first = missing["first_date"][0]
    rate = removed[0].split(",")[2]
    assert (
        _run(
            own_copy.home, monkeypatch, "rates", "add", "SEK", "--date", f"{first - _week()}", "--rate", rate
        )
        == 0
    )
    assert own_copy.query("select * from missing_fx_rates").is_empty()
    assert own_copy.query("select count(*) as n from loads")["n"][0] == loads_before


def _week():
    from datetime import timedelta

    return timedelta(days=7)


def test_exceptions_command_lists_and_exits_one_when_any(
    own_copy: SampleWarehouse, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run(own_copy.home, monkeypatch, "exceptions") == 0
    capsys.readouterr()
    sku_map = own_copy.settings.reference_dir / "sku_map.csv"
    lines = sku_map.read_text(encoding="utf-8").splitlines()
    dropped = next(line for line in lines[1:] if line.startswith("northwind_us,"))
    sku_map.write_text("\n".join(line for line in lines if line != dropped) + "\n", encoding="utf-8")
    assert _run(own_copy.home, monkeypatch, "reference", "refresh") == 0
    capsys.readouterr()
    assert _run(own_copy.home, monkeypatch, "exceptions", "--kind", "unmapped_skus", "--format", "csv") == 1
    out = capsys.readouterr().out
    part = dropped.split(",")[1]
    assert f"throughline skus map northwind_us --part '{part}' --sku SKU --units 1" in out
    _, _, sku, units = dropped.split(",")
    assert (
        _run(
            own_copy.home,
            monkeypatch,
            "skus",
            "map",
            "northwind_us",
            "--part",
            part,
            "--sku",
            sku,
            "--units",
            units,
        )
        == 0
    )
    assert own_copy.query("select * from unmapped_skus").is_empty()


def test_bad_reference_data_changes_nothing_and_loads_go_on(own_copy: SampleWarehouse) -> None:
    partners_before = own_copy.query("select * from partners")
    (own_copy.settings.reference_dir / "quotas.csv").write_text(
        "partner_id,period,target_base\nP0001,2026-13,abc\n", encoding="utf-8"
    )
    report = ingest_inbox(own_copy.home)
    assert report.reference.problems and all("quotas.csv" in p for p in report.reference.problems)
    assert any("row 1, period" in p for p in report.reference.problems)
    assert own_copy.query("select * from partners").equals(partners_before)
