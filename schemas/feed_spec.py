"""Feed specs: one YAML file per distributor says how to read that distributor's files.

This module holds the pydantic models of a feed spec and the loader that turns YAML into them,
with errors that name the file, the field and what is allowed. Reading and normalizing records
belongs in `transforms/`; this module only describes them.
"""

from __future__ import annotations

import hashlib
import re
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

SELLOUT_FIELDS: tuple[str, ...] = (
    "transaction_date",
    "invoice_number",
    "invoice_line",
    "transaction_type",
    "transfer_code",
    "reseller_name",
    "reseller_postal_code",
    "reseller_country",
    "distributor_sku",
    "quantity",
    "unit_of_measure",
    "unit_price",
    "currency",
    "net_amount",
    "end_customer_name",
    "end_customer_email",
    "end_customer_phone",
    "end_customer_address",
    "end_customer_country",
)
"""Canonical fields a sell-out feed can map (see CHANNEL_MODEL.md, `sellout`)."""

INVENTORY_FIELDS: tuple[str, ...] = (
    "snapshot_date",
    "distributor_sku",
    "location_id",
    "quantity_on_hand",
    "quantity_on_order",
    "unit_of_measure",
)
"""Canonical fields an inventory feed can map (see CHANNEL_MODEL.md, `inventory`)."""

END_CUSTOMER_IDENTITY_FIELDS: tuple[str, ...] = (
    "end_customer_name",
    "end_customer_email",
    "end_customer_phone",
    "end_customer_address",
)
"""Fields that identify an end customer: hashed into `end_customer_key`, never stored (invariant 7)."""

Dataset = Literal["sellout", "inventory"]


class StrictModel(BaseModel):
    """Base for spec models: unknown keys are errors, so a typo never passes silently."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class CsvFormat(StrictModel):
    """A delimited text file of any dialect."""

    type: Literal["csv"]
    encoding: str = "utf-8"
    delimiter: str = Field(",", min_length=1, max_length=4)
    quote_char: str | None = Field('"', max_length=1)
    escape_char: str | None = Field(None, max_length=1, description="backslash-style escape inside quotes")
    skip_rows: int = Field(0, ge=0, description="lines to skip before the header (title rows)")
    has_header: bool = True
    column_names: list[str] | None = Field(None, description="names to use when the file has no header")
    footer_rows: int = Field(0, ge=0, description="records to drop at the end (totals, trailers)")
    comment_prefix: str | None = None

    @model_validator(mode="after")
    def _names_when_headerless(self) -> CsvFormat:
        if not self.has_header and not self.column_names:
            raise ValueError("a csv feed without a header row needs 'column_names'")
        return self


class ExcelFormat(StrictModel):
    """An xlsx workbook; one sheet holds the records."""

    type: Literal["xlsx"]
    sheet: str | int = Field(0, description="sheet name, or 0-based sheet index")
    header_row: int = Field(1, ge=1, description="1-based sheet row that holds the column names")
    footer_rows: int = Field(0, ge=0, description="data rows to drop at the end (totals)")


class FixedWidthColumn(StrictModel):
    """One field of a fixed-width record: 1-based start position and width in characters."""

    name: str
    start: int = Field(ge=1)
    width: int = Field(ge=1)


class FixedWidthFormat(StrictModel):
    """A fixed-width text file, optionally with header/trailer records told apart by a prefix."""

    type: Literal["fixed_width"]
    encoding: str = "utf-8"
    columns: list[FixedWidthColumn] = Field(min_length=1)
    record_prefix: str | None = Field(None, description="only lines starting with this are data records")
    skip_rows: int = Field(0, ge=0, description="lines to skip at the top (when there is no record_prefix)")
    footer_rows: int = Field(0, ge=0, description="lines to drop at the end (when there is no record_prefix)")


class JsonFormat(StrictModel):
    """JSON lines (one object per line) or one JSON document holding an array of records."""

    type: Literal["jsonl", "json"]
    encoding: str = "utf-8"
    records_path: str | None = Field(None, description="dotted path to the record array in a json document")


FileFormat = Annotated[CsvFormat | ExcelFormat | FixedWidthFormat | JsonFormat, Field(discriminator="type")]


class ParsingRules(StrictModel):
    """How numbers and dates are written in this feed."""

    decimal_separator: Literal[".", ","] = "."
    thousands_separator: Literal[",", ".", " ", "'", ""] = ""
    date_formats: list[str] = Field(default_factory=lambda: ["%Y-%m-%d"], min_length=1)

    @model_validator(mode="after")
    def _separators_differ(self) -> ParsingRules:
        if self.decimal_separator == self.thousands_separator:
            raise ValueError("decimal_separator and thousands_separator must differ")
        return self


class ReturnsRule(StrictModel):
    """How the feed marks returns and credits.

    - `negative_quantity`: returns already carry a negative quantity (the default).
    - `type_column`: quantities are positive; the mapped `transaction_type` value says which
      lines are returns, and Throughline negates their quantity and amount.
    """

    convention: Literal["negative_quantity", "type_column"] = "negative_quantity"


class TransactionTypes(StrictModel):
    """Maps the feed's own transaction codes (mapped to `transaction_type`) to canonical types."""

    sale: list[str] = Field(default_factory=list)
    return_: list[str] = Field(default_factory=list, alias="return")
    price_adjustment: list[str] = Field(default_factory=list)
    other: list[str] = Field(default_factory=list)
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class PeriodRule(StrictModel):
    """How the report period of a file is found, so a re-sent period supersedes the earlier file.

    `pattern` is a regular expression searched in the file name; its named group `period`
    holds the period's first day, parsed with `format`.
    """

    source: Literal["filename"] = "filename"
    pattern: str
    format: str = "%Y%m%d"

    @field_validator("pattern")
    @classmethod
    def _has_period_group(cls, pattern: str) -> str:
        try:
            compiled = re.compile(pattern)
        except re.error as error:
            raise ValueError(f"not a valid regular expression: {error}") from error
        if "period" not in compiled.groupindex:
            raise ValueError("the pattern needs a named group (?P<period>...)")
        return pattern

    def period_of(self, file_name: str) -> date | None:
        """The report period's first day as named in `file_name`, or None when it does not say."""
        match = re.search(self.pattern, file_name)
        if not match:
            return None
        try:
            return datetime.strptime(match.group("period"), self.format).date()
        except ValueError:
            return None


class FeedSpec(StrictModel):
    """Everything Throughline needs to read one distributor's files, with no code."""

    id: str = Field(
        pattern=r"^[a-z0-9][a-z0-9_]*$", description="the feed's id: lower-case letters, digits, _"
    )
    distributor: str | None = Field(
        None,
        pattern=r"^[a-z0-9][a-z0-9_]*$",
        description="distributor_id when one distributor sends several feeds (defaults to id)",
    )
    name: str
    country: str = Field(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2")
    currency: str = Field(pattern=r"^[A-Z]{3}$", description="ISO 4217, the feed's usual currency")
    cadence: Literal["daily", "weekly", "monthly"] = "weekly"
    dataset: Dataset = "sellout"
    file_patterns: list[str] = Field(min_length=1, description="glob patterns of file names, e.g. 'NW_*.csv'")
    format: FileFormat
    parsing: ParsingRules = Field(default_factory=ParsingRules)
    columns: dict[str, str] = Field(description="canonical field -> source column (dotted path for JSON)")
    constants: dict[str, str | int | float] = Field(default_factory=dict)
    returns: ReturnsRule = Field(default_factory=ReturnsRule)
    transaction_types: TransactionTypes | None = None
    unit_factors: dict[str, int] = Field(
        default_factory=dict, description="unit-of-measure code -> units per code (e.g. BX: 12)"
    )
    natural_key: list[str] = Field(min_length=1, description="canonical fields that identify a line")
    period: PeriodRule | None = None

    @model_validator(mode="after")
    def _fields_are_canonical(self) -> FeedSpec:
        allowed = SELLOUT_FIELDS if self.dataset == "sellout" else INVENTORY_FIELDS
        for section, names in (("columns", self.columns), ("constants", self.constants)):
            unknown = sorted(set(names) - set(allowed))
            if unknown:
                raise ValueError(
                    f"{section}: unknown canonical field(s) {unknown}; allowed for {self.dataset}: "
                    f"{', '.join(allowed)}"
                )
        provided = set(self.columns) | set(self.constants)
        missing_key = [name for name in self.natural_key if name not in provided]
        if missing_key:
            raise ValueError(f"natural_key: {missing_key} are neither mapped in columns nor constants")
        required = (
            ("transaction_date", "distributor_sku", "quantity")
            if self.dataset == "sellout"
            else ("snapshot_date", "distributor_sku", "quantity_on_hand")
        )
        absent = [name for name in required if name not in provided]
        if absent:
            raise ValueError(f"columns: required field(s) {absent} are not mapped")
        if self.returns.convention == "type_column" and "transaction_type" not in self.columns:
            raise ValueError("returns.convention 'type_column' needs columns.transaction_type")
        if self.unit_factors and "unit_of_measure" not in self.columns:
            raise ValueError("unit_factors needs columns.unit_of_measure")
        return self

    @property
    def distributor_id(self) -> str:
        """The reporting distributor: its inbox folder is `inbox/<distributor_id>/`."""
        return self.distributor or self.id

    @property
    def version(self) -> str:
        """A short hash of the spec's content: `loads.spec_version`."""
        canonical = self.model_dump_json(by_alias=True, exclude_none=False)
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    def matches(self, file_name: str) -> bool:
        """True when `file_name` matches one of the spec's file name patterns (case-insensitive)."""
        from fnmatch import fnmatch

        return any(fnmatch(file_name.lower(), pattern.lower()) for pattern in self.file_patterns)


class FeedSpecError(ValueError):
    """A feed spec file that cannot be used; the message names the file, the field and what is allowed."""


def _describe(errors: list[dict[str, Any]], path: Path) -> str:
    lines = [f"{path}: invalid feed spec"]
    for error in errors:
        location = ".".join(str(part) for part in error["loc"]) or "(top level)"
        lines.append(f"  - {location}: {error['msg']}")
    return "\n".join(lines)


def load_feed_spec(path: Path) -> FeedSpec:
    """Read and validate one feed spec YAML file."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise FeedSpecError(f"{path}: not valid YAML: {error}") from error
    except OSError as error:
        raise FeedSpecError(f"{path}: cannot be read: {error}") from error
    if not isinstance(raw, dict):
        raise FeedSpecError(f"{path}: a feed spec is a YAML mapping (key: value), got {type(raw).__name__}")
    try:
        return FeedSpec.model_validate(raw)
    except ValidationError as error:
        raise FeedSpecError(_describe(error.errors(), path)) from error


def load_feed_specs(folder: Path) -> dict[str, FeedSpec]:
    """All feed specs in `folder` (*.yaml, *.yml), keyed by distributor id.

    Raises FeedSpecError listing every bad file, so one run of `feeds check` shows all of them.
    """
    specs: dict[str, FeedSpec] = {}
    problems: list[str] = []
    files = sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]) if folder.is_dir() else []
    for path in files:
        try:
            spec = load_feed_spec(path)
        except FeedSpecError as error:
            problems.append(str(error))
            continue
        if spec.id in specs:
            problems.append(f"{path}: id '{spec.id}' is already used by another spec in {folder}")
            continue
        specs[spec.id] = spec
    if problems:
        raise FeedSpecError("\n".join(problems))
    return specs
