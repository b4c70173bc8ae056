"""Fixtures of the system tests in this folder: the loaded warehouse every kill -9 trial of a writer
other than ingest starts from (tests/system/crash.py has the trial machinery).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from sampledata.generator import copy_feed_specs, generate_samples
from sampledata.reference import copy_reference
from tests.conftest import ingest_inbox

CRASH_BASE_DISTRIBUTORS = ("northwind_us", "rheinland_de", "albion_uk")
"""The sample distributors the base warehouse holds: CSV and xlsx, USD, EUR and GBP, sell-out and
inventory, a restatement, and the end customer `forget` trials erase (Rheinland's cp1252 CSV)."""


@pytest.fixture(scope="session")
def crash_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home with every sample feed spec and the sample reference data, and the sample weeks of
    CRASH_BASE_DISTRIBUTORS loaded through the real ingest path. Kept pristine: trials copy it."""
    home = tmp_path_factory.mktemp("crash-base") / "home"
    copy_feed_specs(home / "feeds")
    copy_reference(home / "reference")
    generate_samples(home / "inbox")
    for folder in (home / "inbox").iterdir():
        if folder.name not in CRASH_BASE_DISTRIBUTORS:
            shutil.rmtree(folder)
    report = ingest_inbox(home)
    assert {o.load.status for o in report.outcomes} <= {"loaded", "superseded"}, report.outcomes
    return home
