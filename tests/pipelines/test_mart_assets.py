"""The marts in Dagster: one run builds and stores the five marts and writes the scorecards, the
mart checks pass on the sample, and a stored mart that no longer adds up to sell-out fails the
blocking reconciliation check."""

from __future__ import annotations

import shutil
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from pipelines.mart_assets import SCORECARDS, MartsConfig, mart_key, publish_marts
from pipelines.mart_checks import (
    COLUMNS_AND_TYPES,
    KEYS_UNIQUE,
    MART_CHECK_SPECS,
    NOT_EMPTY,
    RECONCILES_WITH_SELLOUT,
    mart_checks,
)
from pipelines.resources import ThroughlineResource
from pipelines.schedules import build_marts_schedule
from schemas.settings import ThroughlineSettings
from tests.conftest import SampleWarehouse
from warehouse.catalog import connect_read_only
from warehouse.reference_tables import MART_TABLES, read_reference_table, write_reference_table
from warehouse.storage import storage_for_home

pytestmark = pytest.mark.system

AS_OF = "2026-11-24"


def _publish(instance: dg.DagsterInstance, home: Path) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [publish_marts, mart_checks],
        instance=instance,
        resources={"throughline": ThroughlineResource(home=str(home))},
        run_config=dg.RunConfig({"publish_marts": MartsConfig(as_of=AS_OF)}),
    )


def _check(instance: dg.DagsterInstance, home: Path) -> dg.ExecuteInProcessResult:
    """The mart checks alone, as "Execute checks" in the UI runs them."""
    return dg.materialize(
        [publish_marts, mart_checks],
        instance=instance,
        resources={"throughline": ThroughlineResource(home=str(home))},
        selection=dg.AssetSelection.checks_for_assets(publish_marts),
        raise_on_error=False,
    )


def _evaluations(result: dg.ExecuteInProcessResult) -> dict[tuple[str, str], dg.AssetCheckEvaluation]:
    return {(e.asset_key.path[-1], e.check_name): e for e in result.get_asset_check_evaluations()}


@pytest.fixture
def published_home(sample_warehouse: SampleWarehouse, home: Path) -> Path:
    shutil.copytree(sample_warehouse.home, home, symlinks=True)
    return home


def test_one_run_stores_the_marts_writes_the_scorecards_and_passes_every_check(published_home: Path) -> None:
    with dg.instance_for_test() as instance:
        result = _publish(instance, published_home)
    assert result.success
    metadata = {e.asset_key: e.materialization.metadata for e in result.get_asset_materialization_events()}
    assert set(metadata) == {*(mart_key(name) for name in MART_TABLES), SCORECARDS}

    storage = storage_for_home(*_dirs(published_home))
    for name in MART_TABLES:
        stored = read_reference_table(storage, name)
        assert stored is not None
        assert metadata[mart_key(name)]["dagster/row_count"].value == stored.height
        assert metadata[mart_key(name)]["as_of"].value == AS_OF
    assert metadata[mart_key("partner_performance")]["dagster/row_count"].value > 0

    scorecards = metadata[SCORECARDS]
    overview = Path(scorecards["overview"].value)
    assert overview == published_home / "reports" / "index.html" and overview.is_file()
    pages = sorted((published_home / "reports" / "partners").glob("*.html"))
    assert scorecards["partner_pages"].value == len(pages) > 10

    with connect_read_only(storage) as connection:  # the catalog shows the marts as views
        counts = {name: connection.sql(f"select count(*) from {name}").fetchone()[0] for name in MART_TABLES}
    assert counts == {name: metadata[mart_key(name)]["dagster/row_count"].value for name in MART_TABLES}

    evaluations = _evaluations(result)
    assert set(evaluations) == {(spec.asset_key.path[-1], spec.name) for spec in MART_CHECK_SPECS}
    failed = {key: e.metadata for key, e in evaluations.items() if not e.passed}
    assert failed == {}
    reconciled = evaluations[("partner_performance", RECONCILES_WITH_SELLOUT)].metadata
    assert reconciled["mart_revenue_base"].value == reconciled["sellout_revenue_base"].value
    assert Decimal(reconciled["mart_revenue_base"].value) > 0


def test_a_mart_that_no_longer_adds_up_fails_the_blocking_reconciliation(published_home: Path) -> None:
    storage = storage_for_home(*_dirs(published_home))
    with dg.instance_for_test() as instance:
        assert _publish(instance, published_home).success
        performance = read_reference_table(storage, "partner_performance")
        assert performance is not None
        row = performance["revenue_base"].arg_max()
        changed = performance.with_columns(
            pl.when(pl.int_range(pl.len()) == row)
            .then(pl.col("revenue_base") + Decimal("0.01"))
            .otherwise(pl.col("revenue_base"))
            .cast(performance.schema["revenue_base"])
            .alias("revenue_base")
        )
        assert write_reference_table(storage, "partner_performance", changed)

        checked = _check(instance, published_home)
    assert not checked.success, "a blocking check failed"
    assert checked.get_asset_materialization_events() == [], "the checks ran alone"
    evaluations = _evaluations(checked)
    reconciliation = evaluations[("partner_performance", RECONCILES_WITH_SELLOUT)]
    assert (reconciliation.passed, reconciliation.severity) == (False, dg.AssetCheckSeverity.ERROR)
    assert reconciliation.metadata["difference_revenue_base"].value == "0.01"
    assert reconciliation.metadata["difference_units"].value == "0"
    for check in (NOT_EMPTY, KEYS_UNIQUE, COLUMNS_AND_TYPES):
        assert evaluations[("partner_performance", check)].passed, check
    assert evaluations[("partner_anomalies", RECONCILES_WITH_SELLOUT)].passed, "anomalies were not touched"


def test_a_mart_with_a_repeated_key_and_a_changed_type_warns(published_home: Path) -> None:
    storage = storage_for_home(*_dirs(published_home))
    with dg.instance_for_test() as instance:
        assert _publish(instance, published_home).success
        inventory = read_reference_table(storage, "inventory_health")
        assert inventory is not None and inventory.height > 0
        broken = pl.concat([inventory, inventory.head(1)]).with_columns(pl.col("locations").cast(pl.Int32))
        write_reference_table(storage, "inventory_health", broken)
        checked = _check(instance, published_home)
    assert checked.success, "these checks warn; only the reconciliation blocks"
    evaluations = _evaluations(checked)
    keys = evaluations[("inventory_health", KEYS_UNIQUE)]
    assert (keys.passed, keys.severity) == (False, dg.AssetCheckSeverity.WARN)
    assert keys.metadata["repeated_keys"].value == 1
    types = evaluations[("inventory_health", COLUMNS_AND_TYPES)]
    assert (types.passed, types.severity) == (False, dg.AssetCheckSeverity.WARN)
    assert types.metadata["differences"].value == [
        {"column": "locations", "expected": "Int64", "stored": "Int32"}
    ]


def _dirs(home: Path) -> tuple[Path, Path]:
    settings = ThroughlineSettings(home=home)
    return settings.landing_dir, settings.warehouse_dir


def test_as_of_is_a_date_or_today() -> None:
    assert MartsConfig(as_of=AS_OF).as_of_date() == date(2026, 11, 24)
    assert MartsConfig().as_of_date() == datetime.now(UTC).date()
    with pytest.raises(Exception, match="as_of must be a date as YYYY-MM-DD"):
        MartsConfig(as_of="24/11/2026")


def test_the_daily_schedule_names_its_own_day() -> None:
    schedule = build_marts_schedule(dg.define_asset_job("marts", selection=[publish_marts]))
    assert schedule.default_status == dg.DefaultScheduleStatus.STOPPED
    context = dg.build_schedule_context(scheduled_execution_time=datetime(2026, 11, 24, 6, tzinfo=UTC))
    (request,) = schedule.evaluate_tick(context).run_requests
    assert request.run_key == AS_OF
    assert request.run_config == {"ops": {"publish_marts": {"config": {"as_of": AS_OF}}}}
