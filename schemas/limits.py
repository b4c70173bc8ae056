"""Resource limits for reading untrusted files: how big a workbook, a line or a JSON nesting may be.

Only the limits' definitions belong here, with their defaults; the readers in `transforms/readers`
enforce them and raise `LimitExceededError` naming the limit as `limits.<field>`.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

MIB = 1 << 20


class ReadLimits(BaseModel):
    """Bounds that keep one hostile file (a zip bomb, a 300 MB field, nesting a million deep) from
    exhausting memory; a file breaching one is refused, and the other files of a run still load."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    max_workbook_uncompressed_bytes: int = Field(256 * MIB, gt=0)
    """Total uncompressed size of all parts of an xlsx workbook, as its zip directory declares it
    (for a legacy xls, which is not compressed, the file size)."""

    max_workbook_compression_ratio: float = Field(200, gt=0)
    """Total uncompressed size of an xlsx workbook divided by its compressed size; ordinary workbooks
    compress 5 to 30 times, a zip bomb a thousand times."""

    max_line_bytes: int = Field(16 * MIB, gt=0)
    """Longest line (CSV, fixed width, JSON lines) or CSV record spanning lines, in bytes."""

    max_json_depth: int = Field(64, gt=0)
    """Deepest nesting of JSON arrays and objects, counted from the document (or JSON-lines line)
    root: `{"a": [1]}` has depth 2."""


DEFAULT_LIMITS = ReadLimits()
"""The limits a reader applies when the caller passes none."""
