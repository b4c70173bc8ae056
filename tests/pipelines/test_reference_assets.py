"""Reference data in Dagster: the `reference/<table>` assets, which fail on bad reference data, and
the exception checks of core sell-out, which warn while something is left unresolved."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import pytest

from pipelines.assets import load_reports
from pipelines.checks import EXCEPTION_COLUMNS, MISSING_FX_RATES, UNMAPPED_SKUS, sellout_exceptions
from pipelines.reference_assets import reference_key, reference_tables
from pipelines.resources import ThroughlineResource
from sampledata.generator import copy_feed_specs
from sampledata.reference import copy_reference
from tests.conftest import SampleWarehouse, query_home
from warehouse.catalog import EXCEPTION_VIEWS
from warehouse.reference_tables import REFERENCE_TABLES

pytestmark = pytest.mark.system


def _resources(home: Path) -> dict[str, object]:
    return {"throughline": ThroughlineResource(home=str(home))}


@pytest.fixture
def reference_home(home: Path) -> Path:
    """A home with the sample feed specs and reference folder, nothing loaded yet."""
    copy_feed_specs(home / "feeds")
    copy_reference(home / "reference")
    return home


def test_reference_assets_store_every_table_and_report_rows(reference_home: Path) -> None:
    with dg.instance_for_test() as instance:
        result = dg.materialize([reference_tables], instance=instance, resources=_resources(reference_home))
        assert result.success
        metadata = {
            event.asset_key: event.materialization.metadata
            for event in result.get_asset_materialization_events()
        }
        assert set(metadata) == {reference_key(table) for table in REFERENCE_TABLES}
        counts = " union all ".join(f"select '{t}' as t, count(*) as n from {t}" for t in REFERENCE_TABLES)
        rows = dict(query_home(reference_home, counts).iter_rows())
        assert {table: metadata[reference_key(table)]["dagster/row_count"].value for table in rows} == rows
        assert metadata[reference_key("partners")]["dagster/row_count"].value > 10
        assert metadata[reference_key("sku_map")]["written"].value is True
        assert "sku_map" in metadata[reference_key("partners")]["tables_written"].value
        assert metadata[reference_key("partners")]["load_partitions_rewritten"].value == 0

        again = dg.materialize([reference_tables], instance=instance, resources=_resources(reference_home))
        assert again.success
        (first, *_) = again.get_asset_materialization_events()
        assert first.materialization.metadata["tables_written"].value == [], "re-read, nothing changed"


def test_bad_reference_data_fails_the_run_naming_file_and_row(reference_home: Path) -> None:
    with dg.instance_for_test() as instance:
        assert dg.materialize(
            [reference_tables], instance=instance, resources=_resources(reference_home)
        ).success
        partners_before = query_home(reference_home, "select * from partners")
        (reference_home / "reference" / "quotas.csv").write_text(
            "partner_id,period,target_base\nP0001,2026-13,abc\n", encoding="utf-8"
        )
        result = dg.materialize(
            [reference_tables], instance=instance, resources=_resources(reference_home), raise_on_error=False
        )
        assert not result.success
        assert result.get_asset_materialization_events() == []
        (failure,) = result.get_step_failure_events()
        message = failure.step_failure_data.error.message
        assert "reference data not applied" in message
        assert "quotas.csv" in message and "row 1, period" in message
    assert query_home(reference_home, "select * from partners").equals(partners_before)


def _check(instance: dg.DagsterInstance, home: Path) -> dg.ExecuteInProcessResult:
    """Run the checks of core sell-out alone, as "Execute checks" in the UI does (a load reports
    the same results after it completes core; see test_assets)."""
    return dg.materialize(
        [load_reports, sellout_exceptions],
        instance=instance,
        resources=_resources(home),
        selection=dg.AssetSelection.checks(sellout_exceptions),
    )


def _evaluations(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def test_exception_checks_pass_on_the_sample_and_warn_when_a_sku_is_unmapped(
    sample_warehouse: SampleWarehouse, home: Path
) -> None:
    shutil.copytree(sample_warehouse.home, home, symlinks=True)
    resources = _resources(home)
    with dg.instance_for_test() as instance:
        result = _check(instance, home)
        evaluations = _evaluations(result)
        assert set(evaluations) == set(EXCEPTION_COLUMNS)
        assert all(e.passed for e in evaluations.values()), evaluations
        assert evaluations[UNMAPPED_SKUS].metadata["exceptions"].value == 0

        sku_map = home / "reference" / "sku_map.csv"
        lines = sku_map.read_text(encoding="utf-8").splitlines()
        dropped = next(line for line in lines[1:] if line.startswith("northwind_us,"))
        sku_map.write_text("\n".join(line for line in lines if line != dropped) + "\n", encoding="utf-8")
        refreshed = dg.materialize([reference_tables], instance=instance, resources=resources)
        assert refreshed.success
        (event, *_) = refreshed.get_asset_materialization_events()
        assert event.materialization.metadata["load_partitions_rewritten"].value > 0
        assert "sellout/northwind_us" in event.materialization.metadata["rewritten"].value

        checked = _check(instance, home)
    assert checked.success, "the exception checks warn; they never fail the run"
    evaluations = _evaluations(checked)
    unmapped = evaluations[UNMAPPED_SKUS]
    assert (unmapped.passed, unmapped.severity) == (False, dg.AssetCheckSeverity.WARN)
    part = dropped.split(",")[1]
    assert unmapped.metadata["exceptions"].value == 1
    assert unmapped.metadata["lines"].value > 0 and unmapped.metadata["revenue_base"].value > 0
    top = unmapped.metadata["top"].value
    assert "| distributor_id | distributor_sku | lines | revenue_base | fix |" in top
    assert f"throughline skus map northwind_us --part '{part}' --sku SKU --units 1" in top
    assert evaluations[MISSING_FX_RATES].passed


def test_one_check_per_exception_view() -> None:
    assert set(EXCEPTION_COLUMNS) == set(EXCEPTION_VIEWS)
