"""Shared fixtures: a Throughline home on tmp_path, one loaded sample warehouse per session, and a
local S3-compatible server for the warehouse on object storage.

Tests that only read a loaded warehouse share `sample_warehouse` (the sample feeds plus files
the pipeline must reject, loaded once through the real ingest path); tests that write make their
own home with the `home` fixture. A test that takes `warehouse_env` runs once per backend: on the
home folder (`local`) and on a fresh prefix of moto's S3 server (`s3`, the `object_store` fixture).
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path

import polars as pl
import pytest

from tests.guarantees import Figures, record_run

REPO_ROOT = Path(__file__).resolve().parents[1]
TEST_DATA = REPO_ROOT / "tests" / "data"
TEST_SECRET = "test-secret-0123456789abcdef-not-for-production"
OBJECT_STORE_BUCKET = "throughline-tests"
OBJECT_STORE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "throughline-test-key",
    "AWS_SECRET_ACCESS_KEY": "throughline-test-secret-not-for-production",
    "AWS_REGION": "us-east-1",
}
"""moto accepts any credentials; these are the variables a deployment sets (docs/deploy.md)."""
WAREHOUSE_BACKENDS = ("local", "s3")


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh THROUGHLINE_HOME with the secret set, and DAGSTER_HOME inside it."""
    home = tmp_path / "home"
    monkeypatch.setenv("THROUGHLINE_HOME", str(home))
    monkeypatch.setenv("THROUGHLINE_CUSTOMER_KEY_SECRET", TEST_SECRET)
    monkeypatch.setenv("DAGSTER_HOME", str(home / "dagster"))
    return home


class SampleWarehouse:
    """A home loaded with the sample feeds (and unreadable files), and helpers to query it.
    `environ`: the object-store settings of a warehouse on S3 (empty: the home folder's)."""

    def __init__(
        self, home: Path, truth, unreadable: dict[str, Path], report, environ: Mapping[str, str] | None = None
    ) -> None:
        from schemas.settings import ThroughlineSettings
        from warehouse.storage import storage_for

        self.home = home
        self.environ = dict(environ or {})
        self.settings = ThroughlineSettings.for_home(home, self.environ)
        self.truth = truth
        self.unreadable = unreadable
        self.report = report
        self.storage = storage_for(self.settings)
        self._connection = None

    def query(self, sql: str) -> pl.DataFrame:
        """`sql` against the DuckDB views, on one connection kept open (its views read the tables'
        latest version at every query; opening one is what costs, on object storage most)."""
        from warehouse.catalog import connect

        if self._connection is None:
            self._connection = connect(self.storage)
        return self._connection.sql(sql).pl()

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


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


def ingest_inbox(home: Path, environ: Mapping[str, str] | None = None):
    """Load everything waiting in the home's inbox through the real ingest path (in-process);
    `environ`: the object-store settings of a warehouse on S3."""
    from connectors.folder import list_inbox
    from ingest.context import IngestContext
    from ingest.plan import plan_paths
    from ingest.run import ingest_files, settle_inbox_files
    from schemas.settings import ThroughlineSettings, resolve_customer_key

    settings = ThroughlineSettings.for_home(home, environ or {})
    settings.ensure_layout()
    context = IngestContext.open(
        settings, resolve_customer_key(settings, {"THROUGHLINE_CUSTOMER_KEY_SECRET": TEST_SECRET})
    )
    incoming, problems = plan_paths(context, [f.path for f in list_inbox(settings.inbox_dir)], None)
    assert problems == []
    report = ingest_files(context, incoming)
    settle_inbox_files(report, settings.rejected_dir)
    return report


def _load_sample(home: Path, environ: Mapping[str, str] | None = None) -> SampleWarehouse:
    from sampledata.generator import copy_feed_specs, generate_samples, write_unreadable_samples
    from sampledata.reference import copy_reference

    copy_feed_specs(home / "feeds")
    copy_reference(home / "reference")
    truth = generate_samples(home / "inbox")
    unreadable = write_unreadable_samples(home / "inbox")
    report = ingest_inbox(home, environ)
    return SampleWarehouse(home, truth, unreadable, report, environ)


@pytest.fixture(scope="session")
def sample_warehouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SampleWarehouse]:
    warehouse = _load_sample(tmp_path_factory.mktemp("sample") / "home")
    yield warehouse
    warehouse.close()


class ObjectStoreServer:
    """moto's S3-compatible server on 127.0.0.1 and the bucket the tests' warehouses live in."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint

    def environment(self, prefix: str | None = None) -> dict[str, str]:
        """The settings of a warehouse at `prefix` of the bucket (default: a new one), as a deployment
        sets them (docs/deploy.md, "Object storage")."""
        return {
            "THROUGHLINE_WAREHOUSE_URI": f"s3://{OBJECT_STORE_BUCKET}/{prefix or uuid.uuid4().hex[:12]}",
            "AWS_ENDPOINT_URL": self.endpoint,
            **OBJECT_STORE_CREDENTIALS,
        }

    def filesystem(self):
        """pyarrow's client of the server (to create the bucket, copy or inspect prefixes)."""
        from pyarrow import fs

        return fs.S3FileSystem(
            access_key=OBJECT_STORE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            secret_key=OBJECT_STORE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            region=OBJECT_STORE_CREDENTIALS["AWS_REGION"],
            endpoint_override=self.endpoint.removeprefix("http://"),
            scheme="http",
            allow_bucket_creation=True,
        )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def object_store() -> Iterator[ObjectStoreServer]:
    """moto's server in its own process (so it has its own interpreter lock), on a free port, with
    the tests' bucket created; stopped after the session."""
    import urllib.request

    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=5):
                    break
            except OSError:
                assert process.poll() is None, "moto's server exited at start"
                assert time.monotonic() < deadline, "moto's server did not answer within 60 s"
                time.sleep(0.2)
        server = ObjectStoreServer(endpoint)
        server.filesystem().create_dir(OBJECT_STORE_BUCKET)
        yield server
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture(params=WAREHOUSE_BACKENDS)
def warehouse_env(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The warehouse backend of a test: `local` (the home folder) or `s3` (a fresh prefix of the local
    S3 server). Its variables are set in the environment and returned, for subprocesses."""
    monkeypatch.delenv("THROUGHLINE_WAREHOUSE_URI", raising=False)
    monkeypatch.delenv("THROUGHLINE_LANDING_URI", raising=False)
    if request.param == "local":
        return {}
    environ = request.getfixturevalue("object_store").environment()
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    return environ


@pytest.fixture(scope="session")
def sample_warehouse_on_s3(
    tmp_path_factory: pytest.TempPathFactory, object_store: ObjectStoreServer
) -> Iterator[SampleWarehouse]:
    """The same sample as `sample_warehouse`, its landing and tables on the local S3 server."""
    warehouse = _load_sample(
        tmp_path_factory.mktemp("sample-s3") / "home", object_store.environment("sample")
    )
    yield warehouse
    warehouse.close()


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


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "long_on_s3: long when its warehouse backend is `s3` (a parameter), a default test on disk"
    )


RUN_FIRST = ("system/test_load.py",)
"""The longest single tests: started first, so the other worker (`-n 2`) takes the rest meanwhile."""


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    items.sort(
        key=lambda item: Path(str(item.path)).relative_to(REPO_ROOT / "tests").as_posix() not in RUN_FIRST
    )
    for item in items:
        backends = getattr(getattr(item, "callspec", None), "params", {}).values()
        if item.get_closest_marker("long_on_s3") is not None and "s3" in backends:
            item.add_marker(pytest.mark.long)
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
