"""Schema drift: how a file's header differs from what its feed spec maps and from the header of the
feed's previous load, named column by column.

`detect_drift` is a pure function over (header, spec, baseline header): columns added, dropped,
renamed (a dropped and an added one that look alike, scored with rapidfuzz) and reordered, plus
`resolve_header`, the one place that decides which file column a mapped spec column is read from
(the same name, or the only one that differs from it in case, spacing or punctuation). Reading the
header is the readers' job, recording the drift the loader's; nothing here does I/O.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import polars as pl
from rapidfuzz import fuzz, utils

from schemas.feed_spec import REQUIRED_FIELDS, CsvFormat, FeedSpec, FileFormat
from transforms.readers import READ_ERROR, ROW_KIND, SOURCE_ROW

HEADER_FORMATS = ("csv", "xlsx", "json", "jsonl")
"""Formats whose column names come from the file (a CSV only with `has_header`): the others (fixed
width, X12, a CSV with `column_names`) name their columns from the spec, so they cannot drift."""

ORDERED_FORMATS = ("csv", "xlsx")
"""Formats whose column order means something: a JSON object's keys have no order to drift from."""

RENAME_MIN_SCORE = 80.0
"""Least rapidfuzz `WRatio` (0-100, over names with common abbreviations spelled out) at which a
dropped column and an added one are reported as a rename."""

MAX_NAME_CHARS = 120
"""Longest column name quoted in a message (a header that is really a data row can be long)."""

ABBREVIATIONS: dict[str, str] = {
    "qty": "quantity",
    "amt": "amount",
    "no": "number",
    "nr": "number",
    "nbr": "number",
    "num": "number",
    "ext": "extended",
    "desc": "description",
    "dt": "date",
    "inv": "invoice",
    "cust": "customer",
    "prod": "product",
    "loc": "location",
    "uom": "unit of measure",
    "zip": "postal code",
    "postcode": "postal code",
    "ccy": "currency",
    "curr": "currency",
}
"""Abbreviations distributors use in headers, spelled out before names are compared."""


def source_header(records: pl.LazyFrame) -> list[str]:
    """The source column names of a reader's records, in the reader's order (its own `source_row`,
    `_read_error` and `_row_kind` left out)."""
    return [
        name for name in records.collect_schema().names() if name not in (SOURCE_ROW, READ_ERROR, ROW_KIND)
    ]


def has_named_header(file_format: FileFormat) -> bool:
    """True when the file itself names its columns, so its header can drift."""
    if isinstance(file_format, CsvFormat):
        return file_format.has_header
    return file_format.type in HEADER_FORMATS


def folded(name: str) -> str:
    """A column name with case, spacing and punctuation taken out: `Qty  Sold`, `qty_sold` and
    `QTY-SOLD` fold alike."""
    return "".join(character for character in name.casefold() if character.isalnum())


def _spelled_out(name: str) -> str:
    words = re.findall(r"[^\W_]+", name.casefold())
    return " ".join(ABBREVIATIONS.get(word, word) for word in words)


def name_similarity(expected: str, found: str) -> float:
    """How alike two column names look, 0-100: rapidfuzz `WRatio` over the names with common
    abbreviations spelled out (`Qty Sold` and `Quantity` score 90)."""
    return fuzz.WRatio(_spelled_out(expected), _spelled_out(found), processor=utils.default_process)


def needed_fields(spec: FeedSpec) -> set[str]:
    """Canonical fields a load cannot do without: the dataset's required fields, the natural key,
    and the fields another setting of the spec reads (`currency` of a sell-out feed, the
    transaction type that `returns` or `transaction_types` decode, the unit `unit_factors` scales).
    A file missing the column of one of these is refused; any other mapped field loads empty."""
    needed = {*REQUIRED_FIELDS[spec.dataset], *spec.natural_key}
    if spec.dataset == "sellout":
        needed.add("currency")
        if spec.returns.convention == "type_column" or spec.transaction_types is not None:
            needed.add("transaction_type")
    if spec.unit_factors:
        needed.add("unit_of_measure")
    return {name for name in needed if name in spec.columns}


def resolve_header(header: Sequence[str], spec: FeedSpec) -> dict[str, str]:
    """Mapped source column -> the file column it is read from, for every mapped column the file has:
    the same name, else the one column whose name folds alike (`folded`). Mapped columns the file
    lacks are left out."""
    present = set(header)
    by_fold: dict[str, list[str]] = {}
    for name in header:
        by_fold.setdefault(folded(name), []).append(name)
    resolved: dict[str, str] = {}
    for source in spec.columns.values():
        if source in present:
            resolved[source] = source
            continue
        key = folded(source)
        variants = [name for name in by_fold.get(key, []) if name not in spec.columns.values()]
        if key and len(variants) == 1:  # a name of punctuation alone folds to nothing: never a match
            resolved[source] = variants[0]
    return resolved


def _quoted(name: str) -> str:
    shown = name if len(name) <= MAX_NAME_CHARS else f"{name[:MAX_NAME_CHARS]}…"
    return f"`{shown}`"


def _listed(names: Sequence[str]) -> str:
    return ", ".join(_quoted(name) for name in names)


@dataclass(frozen=True)
class ColumnRename:
    """A column the spec or the baseline names, found in the file under another name."""

    expected: str
    found: str
    field: str | None
    """The canonical field when the spec maps `expected`, else None."""
    applied: bool
    """True when the names differ only in case, spacing or punctuation: the load read `found`."""
    score: float


@dataclass(frozen=True)
class SchemaDrift:
    """How a file's header differs from its spec and its baseline, by column name.

    - `added`: in the file, not in the baseline header, and not read by the spec;
    - `dropped`: in the baseline header (or mapped by the spec) and not in the file, renames aside;
    - `dropped_fields`: every mapped field whose column is not in the file, renamed or not (field ->
      column); `refused_fields` those of them a load needs;
    - `renamed`: a missing column paired with a new one that looks like it;
    - `moved`: columns present in both headers whose order changed (harmless).

    Without a baseline header only the spec is compared: nothing is `added` or `moved`.
    """

    header: tuple[str, ...]
    baseline: str | None = None
    """What the header was compared with besides the spec (e.g. "the header of load X"), or None."""
    added: tuple[str, ...] = ()
    dropped: tuple[str, ...] = ()
    dropped_fields: dict[str, str] = field(default_factory=dict)
    renamed: tuple[ColumnRename, ...] = ()
    moved: tuple[str, ...] = ()
    refused_fields: tuple[str, ...] = ()
    spec_id: str = ""

    def __bool__(self) -> bool:
        return bool(self.added or self.dropped or self.renamed or self.moved)

    def findings(self) -> list[str]:
        """One line per finding, each starting with its kind (`renamed:`, `dropped:`, `added:`,
        `reordered:`), naming the columns and what to do; [] when the header did not drift."""
        lines = [f"renamed: {self._rename_text(rename)}" for rename in self.renamed]
        field_of = {column: name for name, column in self.dropped_fields.items()}
        for column in self.dropped:
            if column in field_of:
                name = field_of[column]
                lines.append(
                    f"dropped: {_quoted(column)} (columns.{name}) is not in the file, so {self._effect(name)}; "
                    f"map `{name}` to another column in feed spec '{self.spec_id}', or remove it from "
                    "`columns:` if the distributor no longer reports it"
                )
        unmapped = [column for column in self.dropped if column not in field_of]
        if unmapped:
            lines.append(
                f"dropped: {_listed(unmapped)} (in {self.baseline}; the spec does not read {_them(unmapped)})"
            )
        if self.added:
            lines.append(
                f"added: {_listed(self.added)} (not in {self.baseline}; the spec does not read "
                f"{_them(self.added)}: map {_them(self.added)} in `columns:` to load {_them(self.added)})"
            )
        if self.moved:
            lines.append(
                f"reordered: {_listed(self.moved)} moved (the same columns in a new order; harmless, "
                "columns are read by name)"
            )
        return lines

    def _effect(self, name: str) -> str:
        return (
            "the file is refused"
            if name in self.refused_fields
            else f"`{name}` is loaded empty for every record"
        )

    def _rename_text(self, rename: ColumnRename) -> str:
        mapped = f" (columns.{rename.field})" if rename.field else ""
        if rename.applied:
            return (
                f"{_quoted(rename.found)} differs from {_quoted(rename.expected)}{mapped} only in case, "
                "spacing or punctuation, and was read as it"
            )
        if rename.field:
            return (
                f"{_quoted(rename.found)} looks like a rename of {_quoted(rename.expected)}{mapped}, so "
                f"{self._effect(rename.field)}: set `columns.{rename.field}: {rename.found}` in feed spec "
                f"'{self.spec_id}' (or restore the column's name in the file)"
            )
        return f"{_quoted(rename.found)} looks like a rename of {_quoted(rename.expected)} (the spec does not read it)"

    def summary(self) -> str | None:
        """The findings as one text (`loads.schema_drift`), or None when there are none."""
        return "\n".join(self.findings()) or None

    def refusal(self) -> str | None:
        """Why the file cannot be loaded (a column of a needed field is missing), naming each column,
        its field and the fix; None when it can."""
        if not self.refused_fields:
            return None
        missing = ", ".join(
            f"{_quoted(self.dropped_fields[name])} (columns.{name})" for name in self.refused_fields
        )
        hints = [
            f"; {_quoted(rename.found)} looks like a rename of {_quoted(rename.expected)}: set "
            f"`columns.{rename.field}: {rename.found}` in the spec"
            for rename in self.renamed
            if rename.field in self.refused_fields and not rename.applied
        ]
        return (
            f"the file has no column {missing} that feed spec '{self.spec_id}' maps and a load needs"
            f"{''.join(hints)}; its columns are {list(self.header)}. Fix `columns:` in the spec or check "
            "the file's header row."
        )


def _pair_renames(
    missing: Sequence[str], candidates: Sequence[str], positions: dict[str, int], header: Sequence[str]
) -> list[tuple[str, str, float]]:
    """Pairs (missing, candidate, score) that look alike, best first, each name used once. A pair at
    the same position in both headers counts as more alike."""
    scored = []
    for expected in missing:
        for found in candidates:
            score = name_similarity(expected, found)
            if expected in positions and positions[expected] == header.index(found):
                score = min(100.0, score + 10.0)
            if score >= RENAME_MIN_SCORE:
                scored.append((score, expected, found))
    pairs: list[tuple[str, str, float]] = []
    taken: set[str] = set()
    for score, expected, found in sorted(scored, key=lambda item: (-item[0], item[1], item[2])):
        if expected in taken or found in taken:
            continue
        taken |= {expected, found}
        pairs.append((expected, found, score))
    return pairs


def _moved(before: Sequence[str], after: Sequence[str]) -> tuple[str, ...]:
    """Names of `after` outside its longest common subsequence with `before` (same names assumed)."""
    if list(before) == list(after):
        return ()
    matcher = difflib.SequenceMatcher(a=list(before), b=list(after), autojunk=False)
    kept = {
        after[block.b + offset] for block in matcher.get_matching_blocks() for offset in range(block.size)
    }
    return tuple(name for name in after if name not in kept)


def detect_drift(
    header: Sequence[str],
    spec: FeedSpec,
    baseline: Sequence[str] | None = None,
    *,
    baseline_name: str = "the previous load's header",
) -> SchemaDrift:
    """Compare a file's `header` (column names as the reader gives them) with what `spec` maps and,
    when given, with `baseline` (the header of the feed's previous load).

    Mapped columns are looked up by `resolve_header`; a mapped column missing from the file is
    dropped, and refused when its field is needed (`needed_fields`); a missing column (mapped, or
    in the baseline) and a new one that look alike (`name_similarity`) are a rename. For formats
    whose header comes from the spec (`has_named_header` false) there is never drift.
    """
    header = tuple(header)
    compared = baseline_name if baseline is not None else None
    if not has_named_header(spec.format):
        return SchemaDrift(header=header, baseline=compared, spec_id=spec.id)
    resolved = resolve_header(header, spec)
    read_by_spec = set(resolved.values()) | {name for name in spec.quarantine_fields if name in header}
    missing_fields = {name: column for name, column in spec.columns.items() if column not in resolved}
    missing_columns = list(dict.fromkeys(missing_fields.values()))
    variants = [
        ColumnRename(source, found, _field_of(spec, source), True, 100.0)
        for source, found in resolved.items()
        if source != found
    ]
    known = set(baseline) if baseline is not None else set()
    new = [name for name in header if name not in read_by_spec and name not in known]
    gone = (
        [
            name
            for name in baseline
            if name not in header and name not in spec.columns.values() and name not in resolved.values()
        ]
        if baseline is not None
        else []
    )
    positions = {name: index for index, name in enumerate(baseline)} if baseline is not None else {}
    renames = [
        ColumnRename(expected, found, _field_of(spec, expected), False, score)
        for expected, found, score in _pair_renames([*missing_columns, *gone], new, positions, header)
    ]
    renamed_to = {rename.found for rename in renames}
    renamed_from = {rename.expected for rename in renames}
    moved: tuple[str, ...] = ()
    if baseline is not None and spec.format.type in ORDERED_FORMATS:
        in_both = set(header) & set(baseline)
        moved = _moved([n for n in baseline if n in in_both], [n for n in header if n in in_both])
    needed = needed_fields(spec)
    return SchemaDrift(
        header=header,
        baseline=compared,
        added=tuple(name for name in new if name not in renamed_to) if baseline is not None else (),
        dropped=tuple(name for name in (*missing_columns, *gone) if name not in renamed_from),
        dropped_fields=missing_fields,
        renamed=(*variants, *renames),
        moved=moved,
        refused_fields=tuple(name for name in missing_fields if name in needed),
        spec_id=spec.id,
    )


def _them(names: Sequence[str]) -> str:
    return "it" if len(names) == 1 else "them"


def _field_of(spec: FeedSpec, column: str) -> str | None:
    return next((name for name, source in spec.columns.items() if source == column), None)


def header_json(header: Sequence[str]) -> str:
    """A header as stored in `loads.source_columns` (a JSON list of names)."""
    return json.dumps(list(header), ensure_ascii=False)


def header_from_json(text: str | None) -> list[str] | None:
    """`loads.source_columns` back as a list of names (None when not recorded)."""
    if not text:
        return None
    names = json.loads(text)
    return [str(name) for name in names] if isinstance(names, list) else None
