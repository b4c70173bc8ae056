"""Fixtures of the sample-data tests: one generated sample per test session, read-only for tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from sampledata.generator import generate_samples
from sampledata.truth import SampleTruth


@pytest.fixture(scope="session")
def sample(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SampleTruth]:
    """The default sample (seed 7, as of 2026-11-16) in an inbox folder, and its truth."""
    inbox = tmp_path_factory.mktemp("sample") / "inbox"
    return inbox, generate_samples(inbox)
