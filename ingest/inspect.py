"""Inspecting a file: the very chain a load runs (read, normalize, validate, split), writing nothing.

`inspect_file` returns what the file would become: its valid canonical records, its quarantine
rows, the lines skipped and why, and whether its `end_customer_key` values match the warehouse's.
"""

from __future__ import annotations

import json
import secrets
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from ingest.load import FOOTER_IS_DATA, _footer_message, quarantine_sources
from schemas.feed_spec import FeedSpec, SpecCatalog, load_feed_spec
from schemas.limits import ReadLimits
from schemas.rules import DEFAULT_MAX_FIELD_CHARS, RuleContext
from schemas.tables import TABLE_COLUMNS
from transforms.drift import detect_drift, has_named_header, source_header
from transforms.normalize import normalize_records
from transforms.readers import POLARS_READ_ERRORS, ROW_KIND, read_records
from transforms.readers.x12 import sniff_transaction_set, x12_spec
from transforms.validate import RULE_COLUMN, flag_failures, quarantine_records


@dataclass(frozen=True)
class Inspection:
    spec: FeedSpec
    valid: pl.DataFrame
    quarantined: pl.DataFrame
    skipped: dict[str, int]
    notes: list[str]

    @property
    def rows_read(self) -> int:
        return self.valid.height + self.quarantined.height

    def summary(self, name: str) -> str:
        counted = {rule: count for rule, count in self.skipped.items() if count}
        skipped = (
            f", {sum(counted.values())} skipped {json.dumps(counted, sort_keys=True)}" if counted else ""
        )
        return (
            f"{name}: {self.rows_read} records read, {self.valid.height} valid, "
            f"{self.quarantined.height} quarantined{skipped} (spec {self.spec.id})"
        )


class NoSpecError(ValueError):
    """No feed spec can be chosen for a file; the message says what to pass."""


def choose_spec(path: Path, catalog: SpecCatalog, explicit: str | None) -> FeedSpec:
    """The spec `inspect` reads a file with: given (an id or a YAML path), the one whose pattern
    matches (the inbox folder's when several do), or, for an X12 file, the standard 867/852 reading."""
    if explicit:
        candidate = Path(explicit)
        if candidate.is_file():
            return load_feed_spec(candidate)
        if explicit in catalog.specs:
            return catalog.specs[explicit]
        raise NoSpecError(f"no feed spec '{explicit}': give a YAML path or one of {sorted(catalog.specs)}")
    matching = [spec for spec in catalog.specs.values() if spec.matches(path.name)]
    if path.parent.name in {spec.distributor_id for spec in matching}:
        matching = [spec for spec in matching if spec.distributor_id == path.parent.name]
    if len(matching) == 1:
        return matching[0]
    transaction_set = sniff_transaction_set(path) if not matching else None
    if transaction_set in ("867", "852"):
        return x12_spec(transaction_set)
    found = ", ".join(spec.id for spec in matching) or "none"
    raise NoSpecError(
        f"{path.name}: {len(matching)} feed specs match its name ({found}); pass --spec ID or --spec FILE"
    )


def throwaway_secret() -> str:
    """A random key for inspecting without the warehouse's key: its hashes match nothing."""
    return secrets.token_hex(32)


def inspect_file(
    path: Path,
    spec: FeedSpec,
    *,
    secret: str,
    limits: ReadLimits,
    max_field_chars: int = DEFAULT_MAX_FIELD_CHARS,
) -> Inspection:
    """Read `path` with `spec` exactly as a load would; raises UnreadableFileError like a load rejects."""
    context = RuleContext(spec=spec, as_of=datetime.now(UTC).date(), max_field_chars=max_field_chars)
    with tempfile.TemporaryDirectory(prefix="throughline-inspect-") as scratch:
        for tolerant in (False, True):
            try:
                result = read_records(path, spec.format, Path(scratch), tolerant=tolerant, limits=limits)
                flagged = flag_failures(
                    normalize_records(result.records, spec, customer_key_secret=secret), context
                ).collect()
                break
            except POLARS_READ_ERRORS:
                if tolerant or spec.format.type != "csv":
                    raise
    skipped = dict(result.skipped)
    footer = flagged.filter(pl.col(ROW_KIND) == "footer")
    footer_data = footer.filter(pl.col(RULE_COLUMN).is_null())
    if footer.height - footer_data.height:
        skipped["footer"] = skipped.get("footer", 0) + footer.height - footer_data.height
    data = flagged.filter(pl.col(ROW_KIND) != "footer")
    canonical = [
        name for name in TABLE_COLUMNS[spec.dataset] if name in data.columns and name != "source_row"
    ]
    valid = data.filter(pl.col(RULE_COLUMN).is_null()).select("source_row", *canonical)
    allowed = quarantine_sources(spec)
    parts = [quarantine_records(data.filter(pl.col(RULE_COLUMN).is_not_null()), context, allowed)]
    if footer_data.height:
        parts.append(
            quarantine_records(
                footer_data.with_columns(pl.lit(FOOTER_IS_DATA).alias(RULE_COLUMN)), context, allowed
            ).with_columns(_footer_message(spec).alias("message"))
        )
    quarantined = pl.concat(parts).sort("source_row")
    # How the header differs from the spec (a load also compares it with the feed's previous file).
    drift = (
        detect_drift(source_header(result.records), spec).findings() if has_named_header(spec.format) else []
    )
    return Inspection(spec, valid, quarantined, skipped, [*result.notes, *drift])
