"""Pulling from a real SFTP server and a real HTTP API on 127.0.0.1 (the demo's), through ingest."""

from __future__ import annotations

import logging
from pathlib import Path

import polars as pl
import pytest

from ingest.context import IngestContext, Progress
from ingest.pull import pull
from sampledata.demo import API_TOKEN_ENV, SFTP_PASSWORD_ENV, demo_sources
from sampledata.generator import copy_feed_specs, generate_samples
from schemas.settings import ThroughlineSettings, resolve_customer_key
from tests.conftest import TEST_SECRET
from warehouse.tables import scan_table

pytestmark = pytest.mark.system


class RecordingProgress(Progress):
    def __init__(self) -> None:
        self.messages: list[str] = []

    def message(self, text: str) -> None:
        self.messages.append(text)


def _context(home: Path, progress: Progress) -> IngestContext:
    settings = ThroughlineSettings(home=home)
    settings.ensure_layout()
    key = resolve_customer_key(settings, {"THROUGHLINE_CUSTOMER_KEY_SECRET": TEST_SECRET})
    return IngestContext.open(settings, key, progress)


def _loads(home: Path) -> pl.DataFrame:
    settings = ThroughlineSettings(home=home)
    from warehouse.storage import storage_for_home

    storage = storage_for_home(settings.landing_dir, settings.warehouse_dir)
    return scan_table(storage, "loads").collect()


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    copy_feed_specs(home / "feeds")
    generate_samples(home / "inbox")
    return home


def test_pull_lands_sftp_files_and_an_api_page_file_once(
    home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    progress = RecordingProgress()
    with demo_sources(home) as sources:
        first = pull(_context(home, progress), environ=sources.environ)
        assert {r.spec_id: (r.error, len(r.fetched), len(r.waiting)) for r in first} == {
            "nordic_fw": (None, 0, 4),  # seen once: not complete until it holds still across two looks
            "pacific_api": (None, 1, 0),
        }
        second = pull(_context(home, progress), environ=sources.environ)
        assert {r.spec_id: len(r.fetched) for r in second} == {"nordic_fw": 4, "pacific_api": 0}
        third = pull(_context(home, progress), environ=sources.environ)
        assert {r.spec_id: len(r.fetched) for r in third} == {"nordic_fw": 0, "pacific_api": 0}
        secrets = list(sources.environ.values())
    loads = _loads(home)
    by_channel = (
        loads.group_by("channel", "status").agg(pl.len(), pl.col("rows_loaded").sum()).sort("channel")
    )
    assert by_channel.rows() == [("api", "loaded", 1, 30), ("sftp", "loaded", 4, 159)]
    assert loads.filter(pl.col("channel") == "api")["source_name"][0].startswith("pacific_api_")
    said = "\n".join([*progress.messages, caplog.text, *(str(r) for r in first + second + third)])
    assert all(secret not in said for secret in secrets)


def test_one_failing_source_does_not_stop_the_other(home: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    progress = RecordingProgress()
    with demo_sources(home) as sources:
        wrong = {SFTP_PASSWORD_ENV: "not-the-password", API_TOKEN_ENV: sources.environ[API_TOKEN_ENV]}
        results = {r.spec_id: r for r in pull(_context(home, progress), environ=wrong)}
        missing = {r.spec_id: r for r in pull(_context(home, progress), environ={})}
        secrets = list(sources.environ.values())
    assert results["nordic_fw"].error is not None and "nordic_fw" in results["nordic_fw"].error
    assert results["pacific_api"].error is None and len(results["pacific_api"].fetched) == 1
    assert f"environment variable {SFTP_PASSWORD_ENV} is not set" in str(missing["nordic_fw"].error)
    assert f"environment variable {API_TOKEN_ENV} is not set" in str(missing["pacific_api"].error)
    assert not (home / "channels" / "nordic_fw.json").exists(), "a failed poll remembers nothing"
    said = "\n".join([*progress.messages, caplog.text, *(str(r.error) for r in results.values())])
    assert "not-the-password" not in said
    assert all(secret not in said for secret in secrets)
