"""What the generated sample must produce: the truth the generator knows about its own files.

Plain dataclasses with exact figures (Decimal sums, serialized as strings), so tests of the
pipeline can assert numbers rather than shapes. Writing the files belongs in `generator.py`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

FileStatus = Literal["loaded", "superseded"]

RULES: tuple[str, ...] = (
    "record_malformed",
    "field_too_long",
    "required_missing",
    "date_unparseable",
    "date_implausible",
    "quantity_not_integral",
    "number_unparseable",
    "price_negative",
    "unit_unknown",
    "transaction_type_unknown",
    "currency_invalid",
    "country_invalid",
)
"""The pipeline's validation rules in precedence order: a bad record is reported under the first it fails."""


@dataclass(frozen=True)
class FileTruth:
    """One generated report file and what loading it must record in `loads`."""

    distributor_id: str
    feed_id: str
    file_name: str
    period_start: date
    status: FileStatus
    rows_read: int
    rows_quarantined: int
    rows_loaded: int
    received_at: str
    """ISO timestamp (UTC) that the file's mtime is set to."""
    superseded_by: str | None = None

    @property
    def relative_path(self) -> str:
        """Path below the inbox: `<distributor_id>/<file name>`."""
        return f"{self.distributor_id}/{self.file_name}"


@dataclass(frozen=True)
class BadRecord:
    """A record the pipeline must quarantine, with the one rule it fails and why."""

    distributor_id: str
    feed_id: str
    file_name: str
    source_row: int
    rule: str
    reason: str


@dataclass(frozen=True)
class SelloutLine:
    """One expected row of `sellout` (canonical values, after unit factors and return signs)."""

    distributor_id: str
    invoice_number: str
    invoice_line: int
    transaction_date: date
    transaction_type: str
    reseller_name: str
    partner_id: str
    reseller_postal_code: str
    reseller_country: str
    distributor_sku: str
    sku: str
    quantity: int
    unit_price: Decimal
    currency: str
    net_amount: Decimal
    end_customer_reported: bool = False
    """True when the line names an end customer (so `end_customer_key` is set)."""


@dataclass(frozen=True)
class SelloutTotals:
    """Expected `sellout` figures of one distributor after superseding and de-duplication."""

    distributor_id: str
    lines: int
    """Distinct natural keys among valid lines of non-superseded files."""
    return_lines: int
    quantity: int
    net_amount_by_currency: dict[str, Decimal]
    net_amount_total: Decimal
    """Plain sum over currencies (no conversion): a checksum, not a business figure."""
    duplicate_lines: int
    """Valid lines of loaded files that repeat a line already counted (overlapping reports)."""


@dataclass(frozen=True)
class InventoryTotals:
    """Expected `inventory` figures of one inventory feed."""

    distributor_id: str
    feed_id: str
    rows: int
    quantity_on_hand: int
    quantity_on_order: int


@dataclass(frozen=True)
class Partner:
    """A reseller of the shared pool, as the `partners` reference data would hold it."""

    partner_id: str
    legal_name: str
    country: str
    postal_code: str


@dataclass(frozen=True)
class LateReport:
    """A weekly report that never arrives."""

    distributor_id: str
    feed_id: str
    missing_period: date


@dataclass(frozen=True)
class Restatement:
    """A week re-sent by a distributor: the restated file supersedes the original."""

    distributor_id: str
    feed_id: str
    period_start: date
    original_file: str
    restated_file: str
    lines_changed: int
    lines_added: int
    lines_removed: int


@dataclass(frozen=True)
class Overlap:
    """A distributor whose weekly files repeat lines of the previous week (counted once)."""

    distributor_id: str
    feed_id: str
    repeated_lines: int


@dataclass
class SampleTruth:
    """Everything the generated sample must produce, for tests and the demo to assert against."""

    seed: int
    as_of: date
    periods: list[date]
    files: list[FileTruth]
    bad_records: list[BadRecord]
    sellout: dict[str, SelloutTotals]
    inventory: dict[str, InventoryTotals]
    partners: list[Partner]
    reseller_names: dict[str, dict[str, str]]
    """distributor_id -> reported name (trimmed, as `sellout.reseller_name` shows it) -> partner_id."""
    sku_map: dict[str, dict[str, str]]
    """distributor_id -> distributor_sku -> vendor sku (one unit per distributor unit)."""
    late_reports: list[LateReport]
    restatements: list[Restatement]
    overlaps: list[Overlap]
    sellout_lines: list[SelloutLine] = field(default_factory=list)

    def file(self, file_name: str) -> FileTruth:
        """The truth of one file, by name."""
        for item in self.files:
            if item.file_name == file_name:
                return item
        raise KeyError(file_name)

    def bad_records_of(self, file_name: str) -> list[BadRecord]:
        """The bad records of one file, in source_row order."""
        return sorted((r for r in self.bad_records if r.file_name == file_name), key=lambda r: r.source_row)

    @property
    def distributors(self) -> list[str]:
        """Every distributor that sends files in the sample."""
        return sorted({item.distributor_id for item in self.files})

    @property
    def currencies(self) -> list[str]:
        """Every currency of a counted sell-out line."""
        return sorted({c for totals in self.sellout.values() for c in totals.net_amount_by_currency})

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: dates as ISO strings, Decimals as strings."""
        return _jsonable(asdict(self))

    def to_json(self) -> str:
        """Stable JSON text (sorted keys), identical for identical truths."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    if isinstance(value, Decimal | date):
        return str(value) if isinstance(value, Decimal) else value.isoformat()
    return value


def write_truth(truth: SampleTruth, path: Path) -> Path:
    """Write the truth as JSON to `path` (parents created) and return the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(truth.to_json(), encoding="utf-8")
    return path


def load_truth(path: Path) -> SampleTruth:
    """Read a truth written by `write_truth` back into dataclasses."""
    raw = json.loads(path.read_text(encoding="utf-8"))

    def day(text: str) -> date:
        return date.fromisoformat(text)

    return SampleTruth(
        seed=raw["seed"],
        as_of=day(raw["as_of"]),
        periods=[day(p) for p in raw["periods"]],
        files=[FileTruth(**{**f, "period_start": day(f["period_start"])}) for f in raw["files"]],
        bad_records=[BadRecord(**b) for b in raw["bad_records"]],
        sellout={
            key: SelloutTotals(
                **{
                    **t,
                    "net_amount_by_currency": {c: Decimal(v) for c, v in t["net_amount_by_currency"].items()},
                    "net_amount_total": Decimal(t["net_amount_total"]),
                }
            )
            for key, t in raw["sellout"].items()
        },
        inventory={key: InventoryTotals(**t) for key, t in raw["inventory"].items()},
        partners=[Partner(**p) for p in raw["partners"]],
        reseller_names=raw["reseller_names"],
        sku_map=raw["sku_map"],
        late_reports=[
            LateReport(**{**r, "missing_period": day(r["missing_period"])}) for r in raw["late_reports"]
        ],
        restatements=[
            Restatement(**{**r, "period_start": day(r["period_start"])}) for r in raw["restatements"]
        ],
        overlaps=[Overlap(**o) for o in raw["overlaps"]],
        sellout_lines=[
            SelloutLine(
                **{
                    **line,
                    "transaction_date": day(line["transaction_date"]),
                    "unit_price": Decimal(line["unit_price"]),
                    "net_amount": Decimal(line["net_amount"]),
                }
            )
            for line in raw["sellout_lines"]
        ],
    )
