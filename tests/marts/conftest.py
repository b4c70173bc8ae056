"""Fixtures of the mart tests: the generated sample turned into the frames the marts read, built
from the generator's truth (no warehouse, no pipeline), with helpers for small hand-made frames.

`sellout` holds the truth's expected lines, `net_amount_base` converted with
`ReferenceTruth.rate_on`; `loads` the truth's files; `inventory` the stock rows of the generated
stock files (their totals checked against the truth); `distributors` the sample feed specs.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import yaml

from marts import MartInputs
from reference import ReferenceData, load_reference
from sampledata.generator import feed_spec_paths, generate_samples
from sampledata.reference import ReferenceTruth, reference_truth, shipped_reference_dir
from sampledata.truth import SampleTruth, SelloutLine
from schemas.tables import INVENTORY_COLUMNS, LOADS_COLUMNS, SELLOUT_COLUMNS
from tests.marts.helpers import frame, monday

CENT = Decimal("0.01")


@dataclass(frozen=True)
class StockRow:
    """One stock position of a generated stock file, in vendor units."""

    distributor_id: str
    feed_id: str
    period_start: date
    snapshot_date: date
    sku: str
    distributor_sku: str
    location_id: str
    on_hand: int
    on_order: int


@dataclass(frozen=True)
class Sample:
    truth: SampleTruth
    reference_truth: ReferenceTruth
    reference: ReferenceData
    stock: list[StockRow]
    sellout: pl.DataFrame
    inventory: pl.DataFrame
    loads: pl.DataFrame
    distributors: pl.DataFrame

    def base(self, line: SelloutLine) -> Decimal:
        """The line's amount in USD, as enrichment computes it."""
        rate = self.reference_truth.rate_on(line.currency, line.transaction_date)
        assert rate is not None
        return (line.net_amount * rate).quantize(CENT, ROUND_HALF_EVEN)

    def inputs(self, as_of: date | None = None, **settings: Any) -> MartInputs:
        return MartInputs.from_reference(
            self.reference,
            sellout=self.sellout,
            inventory=self.inventory,
            loads=self.loads,
            distributors=self.distributors,
            as_of=as_of or self.truth.as_of,
            **settings,
        )


@pytest.fixture(scope="session")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Sample:
    inbox = tmp_path_factory.mktemp("marts-sample") / "inbox"
    truth = generate_samples(inbox)
    ref_truth = reference_truth(truth.as_of)
    reference = load_reference(shipped_reference_dir())
    stock = read_stock(inbox, truth)
    partial = Sample(truth, ref_truth, reference, stock, *(pl.DataFrame(),) * 4)
    return Sample(
        truth,
        ref_truth,
        reference,
        stock,
        sellout=frame(
            [_sellout_row(line, partial.base(line)) for line in truth.sellout_lines], SELLOUT_COLUMNS
        ),
        inventory=frame([_inventory_row(row) for row in stock], INVENTORY_COLUMNS),
        loads=loads_frame(truth),
        distributors=distributors_frame(),
    )


def _sellout_row(line: SelloutLine, base: Decimal) -> dict[str, Any]:
    return {
        "line_id": f"{line.distributor_id}:{line.invoice_number}:{line.invoice_line}",
        "distributor_id": line.distributor_id,
        "feed_id": line.distributor_id,
        # A line counts in the first report holding it: the week of its transaction date.
        "period_start": monday(line.transaction_date),
        "transaction_date": line.transaction_date,
        "invoice_number": line.invoice_number,
        "invoice_line": line.invoice_line,
        "transaction_type": line.transaction_type,
        "partner_id": line.partner_id,
        "reseller_name": line.reseller_name,
        "sku": line.sku,
        "distributor_sku": line.distributor_sku,
        "units_per_distributor_unit": 1,
        "quantity": line.quantity,
        "unit_price": line.unit_price,
        "currency": line.currency,
        "net_amount": line.net_amount,
        "net_amount_base": base,
    }


def _inventory_row(row: StockRow) -> dict[str, Any]:
    return {
        "line_id": f"{row.feed_id}:{row.snapshot_date}:{row.location_id}:{row.distributor_sku}",
        "distributor_id": row.distributor_id,
        "feed_id": row.feed_id,
        "period_start": row.period_start,
        "snapshot_date": row.snapshot_date,
        "sku": row.sku,
        "distributor_sku": row.distributor_sku,
        "units_per_distributor_unit": 1,
        "location_id": row.location_id,
        "quantity_on_hand": row.on_hand,
        "quantity_on_order": row.on_order,
    }


def read_stock(inbox: Path, truth: SampleTruth) -> list[StockRow]:
    """The valid stock rows of the generated stock files (CSV and EDI 852), checked against the
    truth's inventory totals."""
    rows: list[StockRow] = []
    for item in truth.files:
        if item.feed_id not in truth.inventory:
            continue
        path = inbox / item.relative_path
        skus = truth.sku_map[item.distributor_id]
        if path.suffix == ".csv":
            with path.open(encoding="utf-8-sig", newline="") as handle:
                for record in csv.DictReader(handle):
                    if not record["On Hand"]:
                        continue  # the deliberately bad row: quarantined
                    part = record["Part Number"]
                    snapshot = datetime.strptime(record["Snapshot Date"], "%m/%d/%Y").date()
                    rows.append(
                        StockRow(
                            item.distributor_id, item.feed_id, item.period_start, snapshot, skus[part], part,
                            record["Warehouse"], int(record["On Hand"].replace(",", "")),
                            int(record["On Order"].replace(",", "")),
                        )
                    )  # fmt: skip
        else:
            rows += _read_852(path, item.distributor_id, item.feed_id, item.period_start, skus)
    for feed, totals in truth.inventory.items():
        mine = [row for row in rows if row.feed_id == feed]
        assert (len(mine), sum(r.on_hand for r in mine), sum(r.on_order for r in mine)) == (
            totals.rows,
            totals.quantity_on_hand,
            totals.quantity_on_order,
        )
    return rows


def _read_852(path: Path, distributor: str, feed: str, period: date, skus: dict[str, str]) -> list[StockRow]:
    segments = [segment.strip().split("*") for segment in path.read_text(encoding="ascii").split("~")]
    rows, store, part, on_hand, snapshot = [], "", "", 0, period
    for segment in segments:
        if segment[0] == "XQ":
            snapshot = datetime.strptime(segment[3], "%Y%m%d").date()
        elif segment[0] == "N1":
            store = segment[4]
        elif segment[0] == "LIN":
            part = segment[3]
        elif segment[0] == "ZA" and segment[1] == "QA":
            on_hand = int(segment[2])
        elif segment[0] == "ZA" and segment[1] == "QP":
            rows.append(
                StockRow(
                    distributor, feed, period, snapshot, skus[part], part, store, on_hand, int(segment[2])
                )
            )
    return rows


def loads_frame(truth: SampleTruth) -> pl.DataFrame:
    rows = [
        {
            "load_id": item.file_name,
            "distributor_id": item.distributor_id,
            "feed_id": item.feed_id,
            "dataset": "inventory" if item.feed_id in truth.inventory else "sellout",
            "source_name": item.file_name,
            "period_start": item.period_start,
            "rows_read": item.rows_read,
            "rows_loaded": item.rows_loaded,
            "rows_quarantined": item.rows_quarantined,
            "status": item.status,
            "received_at": datetime.fromisoformat(item.received_at).astimezone(UTC),
        }
        for item in truth.files
    ]
    return frame(rows, LOADS_COLUMNS)


def distributors_frame() -> pl.DataFrame:
    """`distributors` as the feed specs declare them (one row per distributor, its feeds listed)."""
    rows: dict[str, dict[str, Any]] = {}
    for path in feed_spec_paths():
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
        distributor = spec.get("distributor", spec["id"])
        row = rows.setdefault(
            distributor,
            {
                "distributor_id": distributor,
                "name": spec["name"],
                "country": spec["country"],
                "currency": spec["currency"],
                "cadence": spec.get("cadence", "weekly"),
                "feeds": [],
                "datasets": [],
            },
        )
        row["feeds"].append(spec["id"])
        if spec["dataset"] not in row["datasets"]:
            row["datasets"].append(spec["dataset"])
    return pl.DataFrame(list(rows.values()))
