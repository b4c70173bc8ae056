"""Loading the reference folder: CSV and YAML files -> validated, typed Polars frames (`ReferenceData`).

`load_reference` reads every file of the folder (a missing file is an empty table), validates
each with its Pandera schema from `reference.schemas` against the keys of the others, and raises
`ReferenceDataError` listing every problem of every file at once, each naming its file and 1-based
row. Nothing here writes, and nothing here knows about the warehouse.

File formats (UTF-8, comma-separated, one header line; names as in `docs/CHANNEL_MODEL.md`):

    partners.csv          partner_id,legal_name,country,postal_code,tier,segment_type,region,vertical[,valid_from,valid_to]
    partner_sites.csv     partner_id,legal_name,country,postal_code
    partner_aliases.csv   distributor_id,reported_name,postal_code,country,partner_id[,method,approved_on,note]
    products.csv          sku,name,family,list_price,currency
    sku_map.csv           distributor_id,distributor_sku,sku[,units_per_distributor_unit]
    fx_rates.csv          rate_date,currency,rate_to_base
    quotas.csv            partner_id,period,target_base
    certifications.csv    partner_id,certification,earned_on,expires_on
    tiers.yaml            tiers: [{tier, min_revenue_t12m, certifications}], lowest first
    rebate_programs.yaml  programs: [{program_id, name, skus, families, period_start, period_end,
                                      eligible_tiers, rule: {type, percent, ...}}]

Columns in brackets may be left out. Dates are YYYY-MM-DD, months YYYY-MM, numbers plain
(`1234.50`, no thousands separator). A partner's versions (`partners_history`) are valid from
`valid_from` (inclusive; empty = since always) to `valid_to` (exclusive; empty = still valid).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Collection, Mapping
from dataclasses import dataclass, fields
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
import yaml
from pydantic import BaseModel, ValidationError

from reference import schemas as s
from reference.documents import RebateProgram, Tier, describe
from reference.names import clean_name
from reference.schemas import ROW, TABLES, ReferenceProblem, Table
from schemas.rules import ISO_4217_CODES

DEFAULT_BASE_CURRENCY = "USD"
FILES: dict[str, str] = {table.name: table.file for table in TABLES}
"""Table name -> file name in the reference folder."""

_UPPER = ("country", "currency")
_NAMES = ("legal_name", "reported_name")


class ReferenceDataError(ValueError):
    """The reference folder has problems; `problems` lists every one of every file."""

    def __init__(self, problems: list[ReferenceProblem]) -> None:
        self.problems = problems
        lines = "\n".join(f"  {problem}" for problem in problems)
        super().__init__(f"{len(problems)} problem(s) in the reference data:\n{lines}")


@dataclass(frozen=True)
class ReferenceData:
    """Every reference table as a typed Polars frame (empty, with its columns, when its file is absent)."""

    base_currency: str
    partners: pl.DataFrame
    """One row per partner: its latest version, `is_current` when that version is still open."""
    partners_history: pl.DataFrame
    partner_sites: pl.DataFrame
    partner_aliases: pl.DataFrame
    products: pl.DataFrame
    sku_map: pl.DataFrame
    fx_rates: pl.DataFrame
    quotas: pl.DataFrame
    """Plus `period_start`, the first day of `period`."""
    tiers: pl.DataFrame
    """Plus `rank`: 1 for the lowest tier."""
    certifications: pl.DataFrame
    rebate_programs: pl.DataFrame

    @property
    def partner_names(self) -> pl.DataFrame:
        """Every name a partner is known by, for `resolve_partners`: each version's legal name and
        every site, with its country and postal code."""
        columns = ["partner_id", "legal_name", "country", "postal_code"]
        return pl.concat([self.partners_history.select(columns), self.partner_sites.select(columns)]).unique(
            maintain_order=True
        )

    def tables(self) -> dict[str, pl.DataFrame]:
        """Table name -> frame, for storing them (the lead's `core/` assets)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "base_currency"}


def load_reference(
    folder: Path,
    *,
    base_currency: str = DEFAULT_BASE_CURRENCY,
    distributor_ids: Collection[str] | None = None,
) -> ReferenceData:
    """Read and validate the reference folder; raise `ReferenceDataError` with every problem.

    `distributor_ids` (the feed specs' distributors), when given, is what `sku_map` and
    `partner_aliases` may name. A missing folder or file is empty reference data.
    """
    data, problems = read_reference(folder, base_currency=base_currency, distributor_ids=distributor_ids)
    if problems or data is None:
        raise ReferenceDataError(problems)
    return data


def read_reference(
    folder: Path,
    *,
    base_currency: str = DEFAULT_BASE_CURRENCY,
    distributor_ids: Collection[str] | None = None,
) -> tuple[ReferenceData | None, list[ReferenceProblem]]:
    """The reference data and no problems, or None and every problem (a `check` command's form)."""
    if base_currency not in ISO_4217_CODES:
        raise ValueError(f"base currency {base_currency!r} is not an ISO 4217 code")
    problems: list[ReferenceProblem] = []
    raw: dict[str, pl.DataFrame] = {}
    readable: set[str] = set()
    yaml_keys: dict[str, set[str]] = {}
    for table in TABLES:
        path = folder / table.file
        if not path.is_file():
            raw[table.name] = _empty_raw(table)
            readable.add(table.name)
            continue
        reader = _read_yaml if table.file.endswith(".yaml") else _read_csv
        frame, found, keys = reader(path, table)
        problems += found
        yaml_keys[table.name] = keys
        if frame is not None:
            raw[table.name] = frame
            readable.add(table.name)
    keys = _keys(raw, yaml_keys, distributor_ids)
    # A reference into a file that could not be read at all is not checked: its problems are
    # reported, and calling every reference to it dangling would only bury them.
    references = {name for name, (table, _) in _REFERENCED.items() if table in readable}
    if distributor_ids is not None:
        references.add("distributors.distributor_id")
    for table in TABLES:
        if table.name in raw:
            problems += s.validate(table, raw[table.name], keys, base_currency, references)
    if problems:
        return None, sorted(set(problems), key=_problem_order)
    typed = {table.name: s.typed(table, raw[table.name]) for table in TABLES}
    return _assemble(typed, base_currency), []


def _problem_order(problem: ReferenceProblem) -> tuple[int, int, str, str]:
    position = next(i for i, table in enumerate(TABLES) if table.file == problem.file)
    return (position, problem.row or 0, problem.column or "", problem.message)


# --------------------------------------------------------------------------------------------------
# Reading.


def _empty_raw(table: Table) -> pl.DataFrame:
    schema: dict[str, pl.DataType] = {ROW: pl.Int64()}
    for column in table.columns:
        schema[column.name] = pl.List(pl.String()) if column.kind == "list" else pl.String()
    return pl.DataFrame(schema=schema)


def _read_csv(path: Path, table: Table) -> tuple[pl.DataFrame | None, list[ReferenceProblem], set[str]]:
    def problem(row: int | None, message: str, column: str | None = None) -> ReferenceProblem:
        return ReferenceProblem(table.file, row, column, message)

    content = path.read_bytes()
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = content[: error.start].count(b"\n")
        return (
            None,
            [
                problem(
                    line or None, f"is not UTF-8 text (byte {content[error.start]:#04x}); save it as UTF-8"
                )
            ],
            set(),
        )
    try:
        records = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as error:
        return None, [problem(None, f"is not a readable CSV file: {error}")], set()
    if not records or not any(cell.strip() for cell in records[0]):
        return None, [problem(None, f"has no header line (expected: {','.join(table.header)})")], set()
    header = [name.strip().lower() for name in records[0]]
    known = {column.name for column in table.columns}
    problems = [
        problem(None, f"column {name!r} appears twice in the header")
        for name in sorted({n for n in header if header.count(n) > 1})
    ]
    problems += [
        problem(None, f"unknown column {name!r} (allowed: {', '.join(c.name for c in table.columns)})")
        for name in dict.fromkeys(header)
        if name not in known
    ]
    problems += [
        problem(None, f"the header lacks the column {name!r}") for name in table.header if name not in header
    ]
    if problems:
        return None, problems, set()
    cells: dict[str, list[str | None]] = {column.name: [] for column in table.columns}
    rows: list[int] = []
    for row, record in enumerate(records[1:], start=1):
        if not any(cell.strip() for cell in record):
            continue  # a blank line: no record, but it keeps its row number
        if len(record) > len(header):
            problems.append(
                problem(
                    row,
                    f"has {len(record)} fields, the header {len(header)} (a comma inside a value needs quotes)",
                )
            )
            continue
        values = dict(zip(header, [*record, *[""] * (len(header) - len(record))], strict=True))
        rows.append(row)
        for column in table.columns:
            cells[column.name].append(values.get(column.name))
    frame = pl.DataFrame({ROW: rows, **cells}, schema={ROW: pl.Int64(), **dict.fromkeys(cells, pl.String())})
    return _clean(frame, table), problems, set()


def _clean(frame: pl.DataFrame, table: Table) -> pl.DataFrame:
    """Trimmed cells, '' as null, codes upper case, names and postal codes as the pipeline writes them."""
    exprs = []
    for column in table.columns:
        if column.kind == "list":
            continue
        value = pl.col(column.name).str.strip_chars()
        value = pl.when(value == "").then(None).otherwise(value)
        if column.kind in _UPPER:
            value = value.str.to_uppercase()
        if column.name == "postal_code":
            value = value.str.to_uppercase().str.replace_all(r"\s+", " ")
        if column.name in _NAMES:
            value = clean_name(value)
        exprs.append(value.alias(column.name))
    return frame.with_columns(exprs)


def _read_yaml(path: Path, table: Table) -> tuple[pl.DataFrame | None, list[ReferenceProblem], set[str]]:
    list_key, model = ("tiers", Tier) if table is s.TIERS else ("programs", RebateProgram)

    def problem(row: int | None, column: str | None, message: str) -> ReferenceProblem:
        return ReferenceProblem(table.file, row, column, message, table.row_word)

    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        return None, [problem(None, None, f"is not valid YAML: {' '.join(str(error).split())}")], set()
    if document is None:
        document = {list_key: []}
    if (
        not isinstance(document, dict)
        or set(document) != {list_key}
        or not isinstance(document[list_key], list)
    ):
        return (
            None,
            [problem(None, None, f"must be a mapping with one key, {list_key!r}, holding a list")],
            set(),
        )
    problems: list[ReferenceProblem] = []
    entries: list[tuple[int, BaseModel]] = []
    keys: set[str] = set()
    for row, entry in enumerate(document[list_key], start=1):
        key = entry.get(table.key[0]) if isinstance(entry, dict) else None
        if isinstance(key, str):
            keys.add(key)  # a broken entry's key still exists: no dangling-reference cascade
        try:
            entries.append((row, model.model_validate(entry)))
        except ValidationError as error:
            problems += [problem(row, column or None, message) for column, message in describe(error)]
    frame = (
        pl.DataFrame(
            [{ROW: row, **_flat(entry)} for row, entry in entries],
            schema=_empty_raw(table).schema,
            orient="row",
        )
        if entries
        else _empty_raw(table)
    )
    return frame, problems, keys


def _flat(entry: BaseModel) -> dict[str, Any]:
    """A validated YAML entry as the text cells of its table."""
    values = entry.model_dump()
    rule = values.pop("rule", None)
    if rule is not None:
        values.update(
            rule_type=rule["type"],
            percent=rule["percent"],
            threshold=rule.get("threshold"),
            min_growth_percent=rule.get("min_growth_percent"),
            baseline=rule.get("baseline"),
        )
    return {name: _text(value) for name, value in values.items()}


def _text(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, list):
        return [str(item) for item in value]
    return value


_REFERENCED: dict[str, tuple[str, str]] = {
    "partners.partner_id": ("partners_history", "partner_id"),
    "products.sku": ("products", "sku"),
    "products.family": ("products", "family"),
    "tiers.tier": ("tiers", "tier"),
}
"""What other tables may reference -> (table, column) holding the values."""


def _keys(
    raw: Mapping[str, pl.DataFrame],
    yaml_keys: Mapping[str, set[str]],
    distributor_ids: Collection[str] | None,
) -> dict[str, set[str]]:
    """The values other tables may reference, from the cells as read (valid or not)."""
    keys = {"distributors.distributor_id": set(distributor_ids or ())}
    for reference, (table, column) in _REFERENCED.items():
        frame = raw.get(table)
        found = set(frame[column].drop_nulls().to_list()) if frame is not None and frame.height else set()
        keys[reference] = found | yaml_keys.get(table, set())
    return keys


# --------------------------------------------------------------------------------------------------
# Typed tables -> ReferenceData.


def _assemble(typed: Mapping[str, pl.DataFrame], base_currency: str) -> ReferenceData:
    history = typed["partners_history"].sort("partner_id", "valid_from", nulls_last=False)
    partners = (
        history.group_by("partner_id", maintain_order=True)
        .last()
        .with_columns(pl.col("valid_to").is_null().alias("is_current"))
    )
    tiers = typed["tiers"].with_columns(pl.int_range(1, pl.len() + 1, dtype=pl.Int32).alias("rank"))
    quotas = typed["quotas"].with_columns(
        pl.col("period").str.to_date("%Y-%m", strict=False).alias("period_start")
    )
    return ReferenceData(
        base_currency=base_currency,
        partners=partners,
        partners_history=history,
        partner_sites=typed["partner_sites"],
        partner_aliases=typed["partner_aliases"],
        products=typed["products"],
        sku_map=typed["sku_map"],
        fx_rates=typed["fx_rates"].sort("currency", "rate_date"),
        quotas=quotas,
        tiers=tiers,
        certifications=typed["certifications"],
        rebate_programs=typed["rebate_programs"],
    )
