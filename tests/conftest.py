"""Shared fixtures: the real-data folder beside the repository, a Throughline home on tmp_path."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
REALDATA = REPO_ROOT.parent / "shared" / "realdata"
TEST_SECRET = "test-secret-0123456789abcdef-not-for-production"


@pytest.fixture
def realdata() -> Path:
    assert REALDATA.is_dir(), f"{REALDATA} is missing: tests read the shared real-data samples from there"
    return REALDATA


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh THROUGHLINE_HOME with the secret set, and DAGSTER_HOME inside it."""
    home = tmp_path / "home"
    monkeypatch.setenv("THROUGHLINE_HOME", str(home))
    monkeypatch.setenv("THROUGHLINE_CUSTOMER_KEY_SECRET", TEST_SECRET)
    monkeypatch.setenv("DAGSTER_HOME", str(home / "dagster"))
    return home
