"""Loading the reference folder: typed tables, history, and errors that name the file and the row,
every one of every file at once."""

from __future__ import annotations

import shutil
from datetime import date
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from reference import FILES, ReferenceDataError, ReferenceProblem, load_reference, read_reference
from reference.schemas import TABLES

from .conftest import SAMPLE_DISTRIBUTORS


def _copy(reference_dir: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "reference"
    shutil.copytree(reference_dir, folder)
    return folder


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def _problems(folder: Path, **kwargs) -> list[ReferenceProblem]:
    with pytest.raises(ReferenceDataError) as raised:
        load_reference(folder, **kwargs)
    return raised.value.problems


def test_sample_folder_loads_into_typed_tables(reference, truth) -> None:
    tables = reference.tables()
    assert set(tables) == {"partners", *(table.name for table in TABLES)}
    assert reference.base_currency == "USD"
    assert reference.partners.height == 15 and reference.partners["partner_id"].is_unique().all()
    assert reference.partners_history.height > reference.partners.height
    assert reference.sku_map.schema["units_per_distributor_unit"] == pl.Int64
    assert reference.fx_rates.schema["rate_to_base"] == pl.Decimal(20, 10)
    assert reference.quotas.schema["period_start"] == pl.Date
    assert reference.tiers["tier"].to_list() == ["Registered", "Silver", "Gold", "Platinum"]
    assert reference.tiers["rank"].to_list() == [1, 2, 3, 4]
    programs = {row["program_id"]: row for row in reference.rebate_programs.iter_rows(named=True)}
    assert programs["WIFI7-LAUNCH-Q4"]["skus"] == ["AX-1000", "AX-2000"]
    assert programs["SECURITY-GROWTH-H2"]["rule_type"] == "growth_kicker"
    assert programs["SECURITY-GROWTH-H2"]["min_growth_percent"] == Decimal("10")
    quotas = {
        (r["partner_id"], r["period"]): r["target_base"] for r in reference.quotas.iter_rows(named=True)
    }
    assert quotas == truth.quotas


def test_partner_history_answers_the_tier_on_a_past_date(reference, truth) -> None:
    history = reference.partners_history

    def tier_on(partner_id: str, day: date) -> str | None:
        rows = history.filter(
            (pl.col("partner_id") == partner_id)
            & (pl.col("valid_from").is_null() | (pl.col("valid_from") <= day))
            & (pl.col("valid_to").is_null() | (pl.col("valid_to") > day))
        )
        assert rows.height <= 1
        return rows["tier"].item() if rows.height else None

    for partner_id in truth.partner_tiers:
        for day in (
            date(2019, 6, 1),
            date(2021, 1, 1),
            date(2022, 6, 1),
            date(2026, 4, 1),
            date(2026, 11, 16),
        ):
            assert tier_on(partner_id, day) == truth.tier_on(partner_id, day), (partner_id, day)
    current = reference.partners.filter(pl.col("partner_id") == "P0003").row(0, named=True)
    assert (current["tier"], current["is_current"], current["valid_to"]) == ("Gold", True, None)
    renamed = history.filter(pl.col("partner_id") == "P0009")["legal_name"].to_list()
    assert renamed == ["Liffey Computer Systems Limited", "Liffey Systems Limited"]
    # Every name a partner is known by (history and sites) is a candidate for resolution.
    names = reference.partner_names.filter(pl.col("partner_id").is_in(["P0009", "P0015"]))
    assert {"Liffey Computer Systems Limited", "Global Reach Solutions GmbH"} <= set(names["legal_name"])


def test_missing_folder_and_missing_files_are_empty_tables(tmp_path: Path, reference_dir: Path) -> None:
    empty = load_reference(tmp_path / "nowhere")
    for name, frame in empty.tables().items():
        assert frame.height == 0, name
    assert empty.partners.columns[:4] == ["partner_id", "legal_name", "country", "postal_code"]
    folder = tmp_path / "only_products"
    folder.mkdir()
    shutil.copy(reference_dir / "products.csv", folder)
    data = load_reference(folder)
    assert data.products.height == 8 and data.sku_map.height == 0 and data.rebate_programs.height == 0


def test_every_error_of_every_file_names_file_row_and_column(tmp_path: Path, reference_dir: Path) -> None:
    folder = _copy(reference_dir, tmp_path)
    _edit(folder / "products.csv", "AX-2000,Aerial X2000 outdoor access point,Wireless,589.00,USD",
          "AX-1000,Aerial X2000 outdoor access point,Wireless,58x.00,US")  # fmt: skip
    _edit(folder / "sku_map.csv", "northwind_us,NW-884102,AX-2000,1", "northwind_us,NW-884102,AX-9999,0")
    _edit(folder / "quotas.csv", "P0001,2026-02,", "P9999,2026-13,")
    _edit(folder / "certifications.csv", "P0001,Wireless Associate,2025-03-10,2027-03-10",
          "P0001,Wireless Associate,2025-03-10,2024-03-10")  # fmt: skip
    _edit(folder / "partner_aliases.csv", "rheinland_de,", "rheinland,")
    _edit(folder / "tiers.yaml", "min_revenue_t12m: 1000000", "min_revenue_t12m: 100")
    _edit(folder / "rebate_programs.yaml", "skus: [AX-1000, AX-2000]", "skus: [AX-1000, AX-3000]")
    _edit(folder / "rebate_programs.yaml", "percent: 2\n", "percent: -2\n")
    lines = (folder / "fx_rates.csv").read_text().splitlines()
    lines[3] = lines[3].replace(lines[3].split(",")[0], "2025-11-31")
    (folder / "fx_rates.csv").write_text("\n".join(lines) + "\n")

    found = {
        (p.file, p.row, p.column, p.message) for p in _problems(folder, distributor_ids=SAMPLE_DISTRIBUTORS)
    }
    expected = {
        ("products.csv", 1, "sku", "duplicate key (sku='AX-1000') (also row 2)"),
        ("products.csv", 2, "sku", "duplicate key (sku='AX-1000') (also row 1)"),
        ("products.csv", 2, "currency", "'US' is not an ISO 4217 currency code"),
        ("products.csv", 2, "list_price", "'58x.00' is not a plain number at least 0 with at most 4 decimal places"),
        ("sku_map.csv", 2, "units_per_distributor_unit", "'0' is not a whole number of at least 1"),
        ("sku_map.csv", 2, "sku", "'AX-9999' is not a sku of products.csv (dangling reference)"),
        ("quotas.csv", 2, "partner_id", "'P9999' is not a partner_id of partners.csv (dangling reference)"),
        ("quotas.csv", 2, "period", "'2026-13' is not a month (YYYY-MM)"),
        ("certifications.csv", 1, "expires_on", "expires_on '2024-03-10' must be after earned_on"),
        ("partner_aliases.csv", 1, "distributor_id", "'rheinland' is not a distributor_id of the feed specs (dangling reference)"),
        ("tiers.yaml", 3, "min_revenue_t12m", "'100' is below the previous tier's: tiers are listed lowest first, thresholds ascending"),
        ("rebate_programs.yaml", 1, "skus", '["AX-1000", "AX-3000"] names SKUs that are not in products.csv (dangling reference)'),
        ("rebate_programs.yaml", 2, "rule.percent", "-2: Input should be greater than 0"),
        ("fx_rates.csv", 3, "rate_date", "'2025-11-31' is not a date (YYYY-MM-DD)"),
    }  # fmt: skip
    assert expected <= found, sorted(expected - found)
    # The other AX-2000 rows of sku_map dangle now that products.csv lost AX-2000: each reported too.
    dangling = [p for p in found if p[0] == "sku_map.csv" and "'AX-2000'" in p[3]]
    assert len(dangling) == len(SAMPLE_DISTRIBUTORS) - 1  # northwind_us's row now names AX-9999
    assert found - expected == set(dangling)
    text = str(ReferenceDataError(_problems(folder, distributor_ids=SAMPLE_DISTRIBUTORS)))
    assert "quotas.csv, row 2, period: '2026-13' is not a month (YYYY-MM)" in text
    assert (
        "tiers.yaml, tier 3, min_revenue_t12m" in text
        and "rebate_programs.yaml, program 2, rule.percent" in text
    )


def test_history_versions_must_not_overlap(tmp_path: Path, reference_dir: Path) -> None:
    folder = _copy(reference_dir, tmp_path)
    # P0003: Silver 2020-04-01..2022-06-01, then Gold from 2022-06-01; close the first a month late.
    _edit(
        folder / "partners.csv", "Public Sector,2020-04-01,2022-06-01", "Public Sector,2020-04-01,2022-07-01"
    )
    _edit(folder / "partners.csv", "P0002,Cobalt Systems LLC,US,60601,Silver,MSP,NA,SMB,2024-01-15,",
          "P0002,Cobalt Systems LLC,US,60601,Silver,MSP,NA,SMB,2024-01-15,2024-01-01")  # fmt: skip
    problems = [str(p) for p in _problems(folder)]
    assert any(p.startswith("partners.csv, row 4, valid_from: '2022-06-01' overlaps") for p in problems), (
        problems
    )
    assert "partners.csv, row 2, valid_to: valid_to '2024-01-01' must be after valid_from " \
           "(valid_to is exclusive: the day the next version starts)" in problems  # fmt: skip
    assert len(problems) == 2
    # A second open version, and a later version without valid_from: both overlap.
    with (folder / "partners.csv").open("a", encoding="utf-8") as out:
        out.write("P0001,Brightline Technologies Inc.,US,10001,Gold,VAR,NA,Education,2026-01-01,\n")
        out.write("P0001,Brightline Technologies Inc.,US,10001,Gold,VAR,NA,Education,,\n")
    rows = [(p.row, p.column) for p in _problems(folder) if p.file == "partners.csv"]
    assert rows == [(1, "valid_from"), (2, "valid_to"), (4, "valid_from"), (21, "valid_from")]


def test_structural_problems_of_one_file_do_not_hide_the_others(tmp_path: Path, reference_dir: Path) -> None:
    folder = _copy(reference_dir, tmp_path)
    (folder / "products.csv").write_text("sku,name,colour\nAX-1000,x,red\n", encoding="utf-8")
    (folder / "fx_rates.csv").write_bytes(
        b"rate_date,currency,rate_to_base\n2026-01-02,EUR,1.1\n2026-01-05,EUR,\xff\n"
    )
    (folder / "tiers.yaml").write_text("tiers:\n  - tier: Gold\n    min_revenue_t12m: [\n", encoding="utf-8")
    (folder / "rebate_programs.yaml").write_text("- program_id: X\n", encoding="utf-8")
    _edit(folder / "quotas.csv", "P0001,2026-03,90000", 'P0001,2026-03,90000,"extra"')
    _edit(folder / "certifications.csv", "partner_id,certification,earned_on,expires_on", "partner_id,certification,earned_on,expires_on,expires_on")  # fmt: skip
    problems = [str(p) for p in _problems(folder)]
    assert (
        "products.csv: unknown column 'colour' (allowed: sku, name, family, list_price, currency)" in problems
    )
    assert "fx_rates.csv, row 2: is not UTF-8 text (byte 0xff); save it as UTF-8" in problems
    assert any(p.startswith("tiers.yaml: is not valid YAML") for p in problems)
    assert "rebate_programs.yaml: must be a mapping with one key, 'programs', holding a list" in problems
    assert "quotas.csv, row 3: has 4 fields, the header 3 (a comma inside a value needs quotes)" in problems
    assert "certifications.csv: column 'expires_on' appears twice in the header" in problems
    # products.csv could not be read at all: sku_map's references to it are not called dangling.
    assert not any(p.startswith("sku_map.csv") for p in problems)


def test_missing_required_values_columns_and_yaml_keys(tmp_path: Path, reference_dir: Path) -> None:
    folder = _copy(reference_dir, tmp_path)
    (folder / "sku_map.csv").write_text("distributor_id,sku\nnorthwind_us,AX-1000\n", encoding="utf-8")
    _edit(folder / "partners.csv", "P0002,Cobalt Systems LLC,US", "P0002,,US")
    _edit(folder / "rebate_programs.yaml", "    name: Switching volume rebate\n", "")
    _edit(
        folder / "rebate_programs.yaml",
        "    families: [Security]\n",
        "    families: [Security]\n    colour: red\n",
    )
    problems = [str(p) for p in _problems(folder)]
    assert "sku_map.csv: the header lacks the column 'distributor_sku'" in problems
    assert "partners.csv, row 2, legal_name: is empty: a value is required" in problems
    assert "rebate_programs.yaml, program 3, name: required key is missing" in problems
    assert "rebate_programs.yaml, program 2, colour: unknown key" in problems


def test_cells_are_trimmed_codes_upper_cased_and_optional_columns_defaulted(tmp_path: Path) -> None:
    folder = tmp_path / "reference"
    folder.mkdir()
    (folder / "products.csv").write_text(
        "\ufeffsku,name,family,list_price,currency\n AX-1 , Thing ,,12.5, usd \n\n", encoding="utf-8"
    )
    (folder / "sku_map.csv").write_text("DISTRIBUTOR_ID,distributor_sku,sku\nd1,P-1,AX-1\n", encoding="utf-8")
    (folder / "partners.csv").write_text(
        "partner_id,legal_name,country,postal_code,tier,segment_type,region,vertical\n"
        'P1,"Acme   Computing  Ltd",gb, ab1  2cd ,,,,\n',
        encoding="utf-8",
    )
    data = load_reference(folder)
    assert data.products.row(0) == ("AX-1", "Thing", None, Decimal("12.5"), "USD")
    assert data.sku_map.row(0) == ("d1", "P-1", "AX-1", 1)
    partner = data.partners.row(0, named=True)
    assert (partner["legal_name"], partner["country"], partner["postal_code"]) == (
        "Acme Computing Ltd",
        "GB",
        "AB1 2CD",
    )
    assert (partner["valid_from"], partner["valid_to"], partner["is_current"]) == (None, None, True)


def test_base_currency_rate_must_be_one_and_base_must_be_a_currency(tmp_path: Path) -> None:
    folder = tmp_path / "reference"
    folder.mkdir()
    (folder / "fx_rates.csv").write_text(
        "rate_date,currency,rate_to_base\n2026-01-02,USD,1.2\n2026-01-02,EUR,1.1\n"
    )
    assert [str(p) for p in _problems(folder)] == [
        "fx_rates.csv, row 1, rate_to_base: '1.2' is not 1: the base currency's own rate must be 1"
    ]
    assert [str(p) for p in _problems(folder, base_currency="EUR")] == [
        "fx_rates.csv, row 2, rate_to_base: '1.1' is not 1: the base currency's own rate must be 1"
    ]
    (folder / "fx_rates.csv").write_text("rate_date,currency,rate_to_base\n2026-01-02,EUR,1.1\n")
    with pytest.raises(ValueError, match="not an ISO 4217"):
        read_reference(folder, base_currency="EURO")


def test_files_constant_names_every_table() -> None:
    assert FILES["partners_history"] == "partners.csv"
    assert sorted(FILES.values()) == sorted(
        ["tiers.yaml", "partners.csv", "partner_sites.csv", "partner_aliases.csv", "products.csv", "sku_map.csv",
         "fx_rates.csv", "quotas.csv", "certifications.csv", "rebate_programs.yaml"]
    )  # fmt: skip
