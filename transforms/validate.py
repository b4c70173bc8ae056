"""Validation over the stream: the rule registry evaluated as Polars expressions, no Pandera at run time.

`flag_failures` adds `_rule` (the first failed rule, null when valid) and `_message` to normalized
records, lazily, so validation costs one pass with the read. `quarantine_records` turns failed
records into `quarantine` rows with the source record as redacted JSON text.
"""

from __future__ import annotations

from typing import TypeVar

import polars as pl

from schemas.feed_spec import END_CUSTOMER_IDENTITY_FIELDS, FeedSpec
from schemas.rules import READ_ERROR_COLUMN, RuleContext, rules_for
from transforms.normalize import SOURCE_PREFIX, source_column
from transforms.readers import SOURCE_ROW

Frame = TypeVar("Frame", pl.DataFrame, pl.LazyFrame)
RULE_COLUMN = "_rule"
MESSAGE_COLUMN = "_message"
REDACTED = "<redacted>"


def flag_failures(normalized: pl.LazyFrame, context: RuleContext) -> pl.LazyFrame:
    """Add `_rule`: the first rule (in registry order) each record fails, or null when it passes all.

    Only the rule name is computed over the stream; messages are built for failed records alone
    (`describe_failures`), since most records pass.
    """
    rule_name: pl.Expr = pl.lit(None, dtype=pl.String)
    # Built from the last rule to the first so the first failing rule wins.
    for rule in reversed(rules_for(context)):
        rule_name = pl.when(~rule.passes(context)).then(pl.lit(rule.name)).otherwise(rule_name)
    return normalized.with_columns(rule_name.alias(RULE_COLUMN))


def describe_failures(failed: Frame, context: RuleContext) -> Frame:
    """Add `_message` to flagged records: what the failed rule found and what a person should fix."""
    message: pl.Expr = pl.lit(None, dtype=pl.String)
    for rule in rules_for(context):
        message = pl.when(pl.col(RULE_COLUMN) == rule.name).then(rule.message(context)).otherwise(message)
    return failed.with_columns(message.alias(MESSAGE_COLUMN))


def redacted_source_columns(spec: FeedSpec) -> set[str]:
    """Source columns that carry end-customer identity: never written outside landing."""
    return {
        source_column(spec.columns[name]) for name in END_CUSTOMER_IDENTITY_FIELDS if name in spec.columns
    }


def unaligned_record(spec: FeedSpec) -> pl.Expr:
    """True for a delimited record the reader could not split into the header's columns (a wrong
    field count, a stray quote): its values may sit under other columns' names, so an end
    customer's identity may be under any of them (e.g. an address with an unquoted delimiter)."""
    if spec.format.type != "csv":
        return pl.lit(False)
    return pl.col(READ_ERROR_COLUMN).is_not_null()


def quarantine_records(failed: Frame, context: RuleContext, allowed_sources: set[str] | None = None) -> Frame:
    """Failed records -> load-independent quarantine columns (source_row, raw_record, rule, message).

    `raw_record` holds the source columns in `allowed_sources` (all when None), with end-customer
    identity redacted: an address in a column the spec does not map never reaches quarantine. Every
    value of a record whose columns cannot be trusted (`unaligned_record`) is redacted; the record
    is at its `source_row` in the landed file.
    """
    spec = context.spec
    failed = describe_failures(failed, context)
    source_columns = [
        name
        for name in failed.collect_schema().names()
        if name.startswith(SOURCE_PREFIX)
        and (allowed_sources is None or name.removeprefix(SOURCE_PREFIX) in allowed_sources)
    ]
    redacted = redacted_source_columns(spec)
    unaligned = unaligned_record(spec)
    limit = context.max_field_chars
    record_fields = [
        (
            pl.when(pl.col(name).is_not_null()).then(pl.lit(REDACTED))
            if name in redacted
            else pl.when(unaligned & pl.col(name).is_not_null())
            .then(pl.lit(REDACTED))
            .when(pl.col(name).str.len_chars() > limit)
            .then(
                pl.format("{}… ({} characters)", pl.col(name).str.slice(0, 200), pl.col(name).str.len_chars())
            )
            .otherwise(pl.col(name))
        ).alias(name.removeprefix(SOURCE_PREFIX))
        for name in source_columns
    ]
    raw_record = pl.struct(record_fields).struct.json_encode() if record_fields else pl.lit("{}")
    return failed.select(
        pl.col(SOURCE_ROW).cast(pl.Int32),
        raw_record.alias("raw_record"),
        pl.col(RULE_COLUMN).alias("rule"),
        pl.col(MESSAGE_COLUMN).alias("message"),
    )
