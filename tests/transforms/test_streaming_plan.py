"""The main pass of every sample feed runs on Polars' streaming engine from end to end: no step
falls back to the in-memory engine, which would hold the whole file (`replace` did, and a 5M-line
ingest peaked at 2.4 GiB instead of 0.7 GiB). Read from the physical plan Polars would run."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from ingest.load import quarantine_sources
from sampledata.generator import generate_samples
from schemas.feed_spec import FeedSpec, load_spec_catalog
from schemas.rules import RuleContext
from transforms.normalize import normalize_records
from transforms.readers import read_records
from transforms.validate import RULE_COLUMN, flag_failures, quarantine_records

FEEDS = Path(__file__).resolve().parents[2] / "sampledata" / "feeds"
IN_MEMORY_FALLBACK = re.compile(r'label="([^"]*)",style=filled,fillcolor="0\.0 0\.3 1\.0"')
"""A node of `show_graph(engine="streaming", plan_stage="physical")` that the in-memory engine runs
(the graph's legend: "in-memory engine fallback")."""


def in_memory_steps(frame: pl.LazyFrame) -> list[str]:
    graph = frame.show_graph(engine="streaming", plan_stage="physical", raw_output=True, show=False)
    assert graph is not None
    return IN_MEMORY_FALLBACK.findall(graph)


def test_the_detector_sees_a_step_that_is_not_streamed() -> None:
    frame = pl.LazyFrame({"a": ["x", ""]})
    assert in_memory_steps(frame.with_columns(pl.col("a").replace("", None)))
    assert in_memory_steps(frame.with_columns(pl.col("a").str.strip_chars())) == []


@pytest.fixture(scope="module")
def sample_inbox(tmp_path_factory: pytest.TempPathFactory) -> Path:
    inbox = tmp_path_factory.mktemp("samples") / "inbox"
    generate_samples(inbox)
    return inbox


@pytest.mark.parametrize("spec", load_spec_catalog(FEEDS).specs.values(), ids=lambda spec: spec.id)
def test_normalization_and_rules_stream_for_every_sample_feed(
    spec: FeedSpec, sample_inbox: Path, tmp_path: Path
) -> None:
    files = sorted(
        p for p in sample_inbox.rglob("*") if p.is_file() and any(p.match(x) for x in spec.file_patterns)
    )
    assert files, f"no sample file of {spec.id}"
    context = RuleContext(spec=spec, as_of=date(2026, 11, 16))
    records = read_records(files[0], spec.format, tmp_path).records
    flagged = flag_failures(normalize_records(records, spec, customer_key_secret="k" * 32), context)
    failed = quarantine_records(
        flagged.filter(pl.col(RULE_COLUMN).is_not_null()), context, quarantine_sources(spec)
    )
    assert in_memory_steps(flagged) == []
    assert in_memory_steps(failed) == []
