"""Fixtures of the reference tests: the sample reference folder, loaded once, and its truth."""

from __future__ import annotations

from pathlib import Path

import pytest

from reference import ReferenceData, load_reference
from sampledata.generator import SITES, generate_samples
from sampledata.reference import ReferenceTruth, reference_truth, write_reference
from sampledata.truth import SampleTruth

SAMPLE_DISTRIBUTORS = tuple(SITES)


@pytest.fixture(scope="session")
def reference_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample reference files, written by `write_reference` (read-only for tests)."""
    folder = tmp_path_factory.mktemp("reference") / "reference"
    write_reference(folder)
    return folder


@pytest.fixture(scope="session")
def reference(reference_dir: Path) -> ReferenceData:
    return load_reference(reference_dir, distributor_ids=SAMPLE_DISTRIBUTORS)


@pytest.fixture(scope="session")
def truth() -> ReferenceTruth:
    return reference_truth()


@pytest.fixture(scope="session")
def sample_truth(tmp_path_factory: pytest.TempPathFactory) -> SampleTruth:
    """The generated sample's own truth (its lines, dates and currencies)."""
    return generate_samples(tmp_path_factory.mktemp("sample") / "inbox")
