"""Shared fixtures: a Throughline home on tmp_path, and one loaded sample warehouse per session.

Tests that only read a loaded warehouse share `sample_warehouse` (the sample feeds plus files
the pipeline must reject, loaded once through the real ingest path); tests that write make their
own home with the `home` fixture.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest

from tests.guarantees import Figures, record_run

REPO_ROOT = Path(__file__).resolve().parents[1]
TEST_DATA = REPO_ROOT / "tests" / "data"
TEST_SECRET = "test-secret-0123456789abcdef-not-for-production"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh THROUGHLINE_HOME with the secret set, and DAGSTER_HOME inside it."""
    home = tmp_path / "home"
    monkeypatch.setenv("THROUGHLINE_HOME", str(home))
    monkeypatch.setenv("THROUGHLINE_CUSTOMER_KEY_SECRET", TEST_SECRET)
    monkeypatch.setenv("DAGSTER_HOME", str(home / "dagster"))
    return home


class SampleWarehouse:
    """A home loaded with the sample feeds (and unreadable files), and helpers to query it."""

    def __init__(self, home: Path, truth, unreadable: dict[str, Path], report) -> None:
        from schemas.settings import ThroughlineSettings
        from warehouse.storage import storage_for_home

        self.home = home
        self.settings = ThroughlineSettings(home=home)
        self.truth = truth
        self.unreadable = unreadable
        self.report = report
        self.storage = storage_for_home(self.settings.landing_dir, self.settings.warehouse_dir)

    def query(self, sql: str) -> pl.DataFrame:
        return query_home(self.home, sql)


def query_home(home: Path, sql: str) -> pl.DataFrame:
    """`sql` against the home's DuckDB views (a fresh connection, closed again)."""
    from schemas.settings import ThroughlineSettings
    from warehouse.catalog import connect
    from warehouse.storage import storage_for_home

    settings = ThroughlineSettings(home=home)
    connection = connect(storage_for_home(settings.landing_dir, settings.warehouse_dir))
    try:
        return connection.sql(sql).pl()
    finally:
        connection.close()


def ingest_inbox(home: Path):
    """Load everything waiting in the home's inbox through the real ingest path (in-process)."""
    from connectors.folder import list_inbox
    from ingest.context import IngestContext
    from ingest.plan import plan_paths
    from ingest.run import ingest_files, settle_inbox_files
    from schemas.settings import ThroughlineSettings, resolve_customer_key

    settings = ThroughlineSettings(home=home)
    settings.ensure_layout()
    context = IngestContext.open(
        settings, resolve_customer_key(settings, {"THROUGHLINE_CUSTOMER_KEY_SECRET": TEST_SECRET})
    )
    incoming, problems = plan_paths(context, [f.path for f in list_inbox(settings.inbox_dir)], None)
    assert problems == []
    report = ingest_files(context, incoming)
    settle_inbox_files(report, settings.rejected_dir)
    return report


@pytest.fixture(scope="session")
def sample_warehouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SampleWarehouse]:
    from sampledata.generator import copy_feed_specs, generate_samples, write_unreadable_samples
    from sampledata.reference import copy_reference

    home = tmp_path_factory.mktemp("sample") / "home"
    copy_feed_specs(home / "feeds")
    copy_reference(home / "reference")
    truth = generate_samples(home / "inbox")
    unreadable = write_unreadable_samples(home / "inbox")
    report = ingest_inbox(home)
    yield SampleWarehouse(home, truth, unreadable, report)


SYSTEM_FOLDERS = ("ingest", "cli", "connectors", "pipelines", "system")
"""Tests in these folders run real loads, servers, processes or Dagster: the system tier."""


SYSTEM_TESTS = (
    "test_867_round_trip",
    "test_852_round_trip",
    "test_fuzzed_bytes_give_records_or_a_refusal",
    "test_reading_in_tiny_chunks_gives_the_same_records",
    "test_resolution_never_returns_a_partner_from_another_country",
    "test_property_every_csv_line_is_accounted_for",
)
"""Property and fuzz tests that run hundreds of generated cases: the system tier too."""


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        relative = Path(str(item.path)).relative_to(REPO_ROOT / "tests")
        long = item.get_closest_marker("long") is not None
        if relative.parts[0] in SYSTEM_FOLDERS or long or item.originalname in SYSTEM_TESTS:
            item.add_marker(pytest.mark.system)


@pytest.fixture
def figures() -> Figures:
    """What the test checked (trials, faults injected, rows checked, rows lost), for docs/guarantees.md."""
    return Figures()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    """Record each run of a guarantee's test (`make guarantees`; see tests/guarantees.py)."""
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" or (report.when == "setup" and not report.passed):
        funcargs = getattr(item, "funcargs", {})
        record_run(item.nodeid, report.outcome, report.duration, funcargs.get("figures"))
