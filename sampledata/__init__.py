"""Sample data: realistic distributor feeds with a known truth, for the demo and the tests.

`generator` writes the files and computes the truth, `truth` holds the truth's dataclasses, and
`feeds/` ships the feed specs that describe the files. Nothing here is imported by the pipeline.
"""

from sampledata.generator import (
    DEFAULT_AS_OF,
    DEFAULT_SEED,
    copy_feed_specs,
    generate_into,
    generate_samples,
    write_unreadable_samples,
)
from sampledata.truth import SampleTruth, load_truth, write_truth

__all__ = [
    "DEFAULT_AS_OF",
    "DEFAULT_SEED",
    "SampleTruth",
    "copy_feed_specs",
    "generate_into",
    "generate_samples",
    "load_truth",
    "write_truth",
    "write_unreadable_samples",
]
