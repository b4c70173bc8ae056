"""The sample's reference files: shipped as written, consistent with the generator and its truth."""

from __future__ import annotations

import ast
from datetime import timedelta
from pathlib import Path

import polars as pl

from sampledata.generator import DEFAULT_AS_OF, PARTNERS, SITES, report_weeks
from sampledata.reference import copy_reference, reference_files, shipped_reference_dir

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_shipped_files_are_what_write_reference_writes() -> None:
    shipped = {
        path.name: path.read_text(encoding="utf-8")
        for path in shipped_reference_dir().iterdir()
        if path.is_file()
    }
    assert shipped == reference_files(), (
        "run: python -c 'from pathlib import Path; from sampledata.reference import write_reference; write_reference(Path(\"sampledata/reference\"))'"
    )


def test_copy_reference_copies_every_file(tmp_path: Path) -> None:
    copies = copy_reference(tmp_path / "reference")
    assert sorted(path.name for path in copies) == sorted(reference_files())


def test_truth_covers_every_site_name_and_partner(truth) -> None:
    names = sum(len(site.names) for sites in SITES.values() for site in sites)
    assert len(truth.reported_resellers) == names
    assert {item.partner_id for item in truth.reported_resellers} == {
        partner.partner_id for partner in PARTNERS
    }
    assert truth.reseller_partners["albion_uk"]["Kingsbridge Netwks Ltd"] == "P0008"


def test_truth_matches_the_loaded_tables(reference, truth) -> None:
    certifications = reference.certifications
    assert certifications.height == len(truth.certifications)
    soon = certifications.filter(
        pl.col("expires_on").is_between(truth.as_of, truth.as_of + timedelta(days=30))
    )
    assert sorted(soon.select("partner_id", "certification", "expires_on").rows()) == sorted(
        truth.expiring_certifications
    )
    assert len(truth.expiring_certifications) >= 1
    assert certifications.filter(pl.col("expires_on") < truth.as_of).height >= 1  # one already lapsed
    tiers = [
        (row["tier"], row["min_revenue_t12m"], tuple(row["certifications"]))
        for row in reference.tiers.iter_rows(named=True)
    ]
    assert tiers == list(truth.tiers)
    assert sorted(reference.rebate_programs["program_id"]) == sorted(
        p.program_id for p in truth.rebate_programs
    )
    rates = {
        (row["rate_date"], row["currency"]): row["rate_to_base"]
        for row in reference.fx_rates.iter_rows(named=True)
    }
    assert rates == truth.fx_rates
    # Rates of every currency on every business day of the report weeks, up to the as-of date.
    first = report_weeks(DEFAULT_AS_OF)[0]
    days = [first + timedelta(days=n) for n in range((DEFAULT_AS_OF - first).days + 1)]
    for currency in {site.currency for sites in SITES.values() for site in sites} - {"USD"}:
        assert all((day, currency) in truth.fx_rates for day in days if day.weekday() < 5), currency
    assert reference.partner_aliases["method"].to_list() == ["manual"]


def test_reference_package_imports_only_what_its_layer_allows() -> None:
    """`reference/` may import `schemas` and `transforms`, never storage, use cases, Dagster or the CLI."""
    forbidden = {"warehouse", "ingest", "pipelines", "cli", "connectors", "sampledata", "dagster"}
    offences = []
    for path in sorted((REPO_ROOT / "reference").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            offences += [f"{path.name} imports {name}" for name in names if name.split(".")[0] in forbidden]
    assert offences == []
    sample = ast.parse((REPO_ROOT / "sampledata" / "reference.py").read_text(encoding="utf-8"))
    modules = {n.module for n in ast.walk(sample) if isinstance(n, ast.ImportFrom) and n.module}
    assert {m.split(".")[0] for m in modules} <= {
        "__future__",
        "sampledata",
        "csv",
        "io",
        "random",
        "shutil",
        "dataclasses",
        "datetime",
        "decimal",
        "importlib",
        "pathlib",
    }
