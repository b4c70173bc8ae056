"""The deterministic sample-data generator: realistic weekly feeds of five distributors plus the truth.

This module writes report files the way each distributor would send them (one writer per format)
and computes what the pipeline must make of them (`truth.SampleTruth`). It draws only from
`random.Random(seed)` and fixed tables, never the wall clock, so a seed and an as-of date give the
same bytes and the same mtimes on every run. The feed specs describing the files live in `feeds/`.
"""

from __future__ import annotations

import csv
import io
import json
import os
import random
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from importlib import resources
from itertools import groupby
from pathlib import Path

import xlsxwriter

from sampledata.truth import (
    BadRecord,
    FileTruth,
    InventoryTotals,
    LateReport,
    Overlap,
    Partner,
    Restatement,
    SampleTruth,
    SelloutLine,
    SelloutTotals,
    write_truth,
)

DEFAULT_SEED = 7
DEFAULT_AS_OF = date(2026, 11, 16)
"""The fixed as-of date of the tests' sample (a Monday); the demo's follows the clock (`live_as_of`)."""
WEEKS = 4
"""Weekly reports per distributor: the complete weeks (Monday to Sunday) before the as-of date."""
REPORT_DUE_DAYS_AFTER_MONDAY = 9
"""A weekly report is due 9 days after its Monday: the Sunday it ends plus the pipeline's default 3
grace days (`marts.data_quality.DEFAULT_GRACE_DAYS`)."""

CENT = Decimal("0.01")
PRICE_PLACES = Decimal("0.0001")

NORTHWIND = "northwind_us"
NORTHWIND_INVENTORY = "northwind_us_inventory"
RHEINLAND = "rheinland_de"
ALBION = "albion_uk"
NORDIC = "nordic_fw"
PACIFIC = "pacific_jsonl"
KEYSTONE = "keystone_edi"
KEYSTONE_INVENTORY = "keystone_edi_inventory"
SELLOUT_FEEDS = (NORTHWIND, RHEINLAND, ALBION, NORDIC, PACIFIC, KEYSTONE)

OVERLAP_FEED = NORTHWIND
"""Each weekly file repeats the previous week's last two invoices (late postings re-sent)."""
RESTATED_FEED, RESTATED_WEEK = RHEINLAND, 1
"""Re-sends the second week's report with lines changed, added and removed."""
LATE_FEED = ALBION
"""Its latest weekly report never arrives."""

# --------------------------------------------------------------------------------------------------
# Reference data: the vendor's products, each distributor's part numbers, the reseller pool.

PRODUCTS: dict[str, tuple[str, Decimal]] = {
    "AX-1000": ("Aerial X1000 Wi-Fi 7 access point", Decimal("349.00")),
    "AX-2000": ("Aerial X2000 outdoor access point", Decimal("589.00")),
    "SW-24P": ('Switch 24-port PoE, 19" rack', Decimal("1299.00")),
    "SW-48P": ('Switch 48-port PoE, 19" rack', Decimal("2149.00")),
    "FW-500": ("Firewall appliance FW-500", Decimal("1890.00")),
    "LIC-SEC-1Y": ("Security subscription, 1 year", Decimal("240.00")),
    "CBL-C6-3M": ("Cat6 patch cable 3 m", Decimal("4.99")),
    "PSU-150": ("Spare power supply 150 W", Decimal("119.00")),
}
"""Vendor SKU -> (name, list price in USD)."""

DISTRIBUTOR_SKUS: dict[str, dict[str, str]] = {
    NORTHWIND: {
        "AX-1000": "NW-884101",
        "AX-2000": "NW-884102",
        "SW-24P": "NW-884210",
        "SW-48P": "NW-884211",
        "FW-500": "NW-884350",
        "LIC-SEC-1Y": "NW-884900",
        "CBL-C6-3M": "NW-100336",
        "PSU-150": "NW-884499",
    },
    RHEINLAND: {
        "AX-1000": "4001001",
        "AX-2000": "4001002",
        "SW-24P": "4002024",
        "SW-48P": "4002048",
        "FW-500": "4003500",
        "LIC-SEC-1Y": "4009001",
        "CBL-C6-3M": "2100363",
        "PSU-150": "4004150",
    },
    ALBION: {
        "AX-1000": "ALB-AX1000",
        "AX-2000": "ALB-AX2000",
        "SW-24P": "ALB-SW24P",
        "SW-48P": "ALB-SW48P",
        "FW-500": "ALB-FW500",
        "LIC-SEC-1Y": "ALB-LICSEC1",
        "CBL-C6-3M": "ALB-C6-3M",
        "PSU-150": "ALB-PSU150",
    },
    NORDIC: {
        "AX-1000": "N0710001",
        "AX-2000": "N0710002",
        "SW-24P": "N0720024",
        "SW-48P": "N0720048",
        "FW-500": "N0730500",
        "LIC-SEC-1Y": "N0790001",
        "CBL-C6-3M": "N0500363",
        "PSU-150": "N0740150",
    },
    KEYSTONE: {
        "AX-1000": "0884101000",
        "AX-2000": "0884102000",
        "SW-24P": "0884210000",
        "SW-48P": "0884211000",
        "FW-500": "0884350000",
        "LIC-SEC-1Y": "0884900000",
        "CBL-C6-3M": "0100336000",
        "PSU-150": "0884499000",
    },
    PACIFIC: {
        "AX-1000": "PAC/AX1000",
        "AX-2000": "PAC/AX2000",
        "SW-24P": "PAC/SW24P",
        "SW-48P": "PAC/SW48P",
        "FW-500": "PAC/FW500",
        "LIC-SEC-1Y": "PAC/LIC-SEC",
        "CBL-C6-3M": "PAC/CBL-C6",
        "PSU-150": "PAC/PSU150",
    },
}

RATES: dict[str, Decimal] = {
    "USD": Decimal("1"),
    "CAD": Decimal("1.37"),
    "EUR": Decimal("0.92"),
    "GBP": Decimal("0.79"),
    "SEK": Decimal("10.60"),
    "AUD": Decimal("1.52"),
    "NZD": Decimal("1.66"),
}
"""Fixed price-list conversion from USD; the pipeline's fx_rates are its own business."""

PARTNERS: tuple[Partner, ...] = (
    Partner("P0001", "Brightline Technologies, Inc.", "US", "10001"),
    Partner("P0002", "Cobalt Systems LLC", "US", "60601"),
    Partner("P0003", "Summit Data Solutions Inc.", "US", "94105"),
    Partner("P0004", "Maple Leaf Micro Inc.", "CA", "M5V 2T6"),
    Partner("P0005", "Müller IT-Systeme GmbH", "DE", "50672"),
    Partner("P0006", "Schäfer & Söhne Datentechnik GmbH", "DE", "80331"),
    Partner("P0007", "Thames Valley Computing Ltd", "GB", "RG1 1AF"),
    Partner("P0008", "Kingsbridge Networks Ltd", "GB", "M1 1AE"),
    Partner("P0009", "Liffey Systems Limited", "IE", "D02 X285"),
    Partner("P0010", "Nordlys Data AB", "SE", "114 55"),
    Partner("P0011", "Skärgårds IT-Konsult AB", "SE", "411 04"),
    Partner("P0012", "Fjordnett AS", "NO", "0150"),
    Partner("P0013", "Southern Cross IT Pty Ltd", "AU", "2000"),
    Partner("P0014", "Kiwi Cloud Services Limited", "NZ", "1010"),
    Partner("P0015", "Global Reach Solutions Ltd", "GB", "EC2A 4NE"),
)


@dataclass(frozen=True)
class Site:
    """A partner as one distributor knows it: the names it writes, the site's postcode and currency."""

    partner_id: str
    names: tuple[str, ...]
    postal_code: str
    country: str
    currency: str
    address: str = ""


SITES: dict[str, tuple[Site, ...]] = {
    NORTHWIND: (
        Site(
            "P0001",
            ("Brightline Technologies, Inc.", "BRIGHTLINE TECHNOLOGIES INC", "Brightline Tech."),
            "10001",
            "US",
            "USD",
        ),
        Site(
            "P0002",
            ("Cobalt Systems LLC", "Cobalt Systems, L.L.C.", "cobalt systems llc  "),
            "60601",
            "US",
            "USD",
        ),
        Site(
            "P0003",
            ("Summit Data Solutions Inc.", "Summit  Data Solutions", "SUMMIT DATA SOL"),
            "94105",
            "US",
            "USD",
        ),
        Site("P0004", ("Maple Leaf Micro Inc.", "MAPLE LEAF MICRO"), "M5V 2T6", "CA", "CAD"),
        Site("P0015", ("Global Reach Solutions Inc.", "GLOBAL REACH SOLUTIONS"), "10017", "US", "USD"),
    ),
    RHEINLAND: (
        Site(
            "P0005",
            ("Müller IT-Systeme GmbH", "Mueller IT Systeme GmbH", "MÜLLER IT-SYSTEME GMBH"),
            "50672",
            "DE",
            "EUR",
            "Hohenzollernring 22\n50672 Köln",
        ),
        Site(
            "P0006",
            ("Schäfer & Söhne Datentechnik GmbH", "Schäfer u. Söhne Datentechnik", "Schaefer & Soehne GmbH"),
            "80331",
            "DE",
            "EUR",
            "Sendlinger Straße 7\n80331 München",
        ),
        Site(
            "P0015",
            ("Global Reach Solutions GmbH", "Global Reach Solutions Deutschland GmbH"),
            "60311",
            "DE",
            "EUR",
            "Neue Mainzer Straße 52\n60311 Frankfurt am Main",
        ),
    ),
    ALBION: (
        Site(
            "P0007",
            (
                "Thames Valley Computing Ltd",
                "Thames Valley Computing Limited",
                "THAMES VALLEY COMPUTING LTD.",
            ),
            "RG1 1AF",
            "GB",
            "GBP",
        ),
        Site(
            "P0008",
            ("Kingsbridge Networks Ltd", "Kingsbridge Netwks Ltd", "Kingsbridge Networks"),
            "M1 1AE",
            "GB",
            "GBP",
        ),
        Site("P0009", ("Liffey Systems Ltd", "Liffey Systems Limited"), "D02 X285", "IE", "EUR"),
        Site("P0006", ("Schafer & Sohne Datentechnik GmbH",), "80331", "DE", "EUR"),
        Site("P0015", ("Global Reach Solutions Ltd", "Global Reach Soln. Ltd"), "EC2A 4NE", "GB", "GBP"),
    ),
    NORDIC: (
        Site("P0010", ("NORDLYS DATA AB", "NORDLYS DATA AKTIEBOLAG"), "114 55", "SE", "SEK"),
        Site("P0011", ("SKÄRGÅRDS IT-KONSULT AB", "SKARGARDS IT KONSULT"), "411 04", "SE", "SEK"),
        Site("P0012", ("FJORDNETT AS", "FJORDNETT A/S"), "0150", "NO", "SEK"),
        Site("P0015", ("GLOBAL REACH SOLUTIONS AB",), "111 57", "SE", "SEK"),
    ),
    KEYSTONE: (
        Site("P0001", ("BRIGHTLINE TECHNOLOGIES INC", "Brightline Technologies"), "10001", "US", "USD"),
        Site("P0002", ("COBALT SYSTEMS LLC",), "60601", "US", "USD"),
        Site("P0003", ("SUMMIT DATA SOLUTIONS INC", "Summit Data Solutions Inc."), "94105", "US", "USD"),
    ),
    PACIFIC: (
        Site(
            "P0013",
            ("Southern Cross IT Pty Ltd", "Southern Cross I.T. Pty. Ltd.", "Sthn Cross IT"),
            "2000",
            "AU",
            "AUD",
        ),
        Site("P0014", ("Kiwi Cloud Services Limited", "Kiwi Cloud Services Ltd"), "1010", "NZ", "NZD"),
        Site(
            "P0015", ("Global Reach Solutions Pty Ltd", "GLOBAL REACH SOLUTIONS PTY LTD"), "3000", "AU", "AUD"
        ),
    ),
}


@dataclass(frozen=True)
class EndCustomer:
    """An end customer named on a line (only some feeds report them)."""

    name: str
    email: str
    phone: str
    address: str
    country: str


END_CUSTOMERS: dict[str, tuple[EndCustomer, ...]] = {
    RHEINLAND: (
        EndCustomer(
            "Stadtwerke Bergheim GmbH",
            "einkauf@stadtwerke-bergheim.example",
            "",
            "Bahnhofstraße 3\n50126 Bergheim",
            "DE",
        ),
        EndCustomer(
            "Klinikum Südstadt gGmbH",
            "it-beschaffung@klinikum-suedstadt.example",
            "",
            "Südring 40\n50969 Köln",
            "DE",
        ),
        EndCustomer(
            "Bäckerei Löffler KG",
            "info@baeckerei-loeffler.example",
            "",
            "Marktplatz 1\n82211 Herrsching",
            "DE",
        ),
        EndCustomer(
            "Gemeinde Weißenbach", "amt@weissenbach.example", "", "Dorfstraße 9\n6671 Weißenbach", "AT"
        ),
    ),
    PACIFIC: (
        EndCustomer(
            "Harbourside Dental Group", "accounts@harbourside-dental.example", "+61 2 5550 0101", "", "AU"
        ),
        EndCustomer("Tasman Freight Ltd", "it@tasmanfreight.example", "+64 9 555 0199", "", "NZ"),
        EndCustomer("Te Whānau Health Trust", "procurement@tewhanau.example", "+64 4 555 0123", "", "NZ"),
        EndCustomer("Outback Mining Services", "ict@outbackmining.example", "+61 8 5550 0177", "", "AU"),
    ),
}

INVENTORY_LOCATIONS = ("MEM1", "RNO2")

UNITS_PER_BOX = 12

RECEIVED_MINUTES = {
    NORTHWIND: 5,
    NORTHWIND_INVENTORY: 6,
    RHEINLAND: 20,
    ALBION: 45,
    NORDIC: 70,
    PACIFIC: 95,
    KEYSTONE: 110,
    KEYSTONE_INVENTORY: 115,
}
"""Minutes after 06:00 UTC on the Monday after a week when each feed's report arrives."""

# --------------------------------------------------------------------------------------------------
# Lines as generated, before a writer renders them.


@dataclass
class Line:
    """One sell-out line as the distributor means it; `raw` holds deliberately bad renderings."""

    invoice_number: str
    invoice_line: int
    transaction_date: date
    site: Site
    reseller_name: str
    sku: str
    distributor_sku: str
    quantity: int
    """Reported units, negative for returns (writers of type-code feeds write the absolute value)."""
    unit: str
    factor: int
    unit_price: Decimal
    currency: str
    net_amount: Decimal
    """Reported amount with the canonical sign (negative for returns)."""
    end_customer: EndCustomer | None = None
    rule: str | None = None
    reason: str = ""
    raw: dict[str, str] = field(default_factory=dict)

    @property
    def is_return(self) -> bool:
        return self.quantity < 0

    @property
    def key(self) -> tuple[str, int]:
        return (self.invoice_number, self.invoice_line)


@dataclass
class Report:
    """One file to write: its lines (sell-out) or stock rows (inventory) and when it arrives."""

    feed_id: str
    distributor_id: str
    file_name: str
    period_start: date
    received_at: datetime
    lines: list[Line] = field(default_factory=list)
    stock: list[StockRow] = field(default_factory=list)
    status: str = "loaded"
    superseded_by: str | None = None


@dataclass
class StockRow:
    """One stock position of an inventory snapshot."""

    snapshot_date: date
    distributor_sku: str
    location_id: str
    on_hand: int
    on_order: int
    rule: str | None = None
    reason: str = ""
    raw: dict[str, str] = field(default_factory=dict)


class _Invoices:
    """Invoice numbering of one distributor: one running counter for invoices and credit notes."""

    def __init__(self, start: int, sale: str, credit: str) -> None:
        self.next = start
        self.sale = sale
        self.credit = credit

    def take(self, is_return: bool) -> str:
        number = self.next
        self.next += 1
        return (self.credit if is_return else self.sale).format(number)


INVOICE_FORMATS = {
    NORTHWIND: ("INV{:07d}", "CM{:07d}"),
    RHEINLAND: ("RE-2026-{:05d}", "GS-2026-{:05d}"),
    ALBION: ("SI{:06d}", "SC{:06d}"),
    NORDIC: ("{:09d}", "{:09d}"),
    PACIFIC: ("PD-{:06d}", "PC-{:06d}"),
    KEYSTONE: ("K{:07d}", "KC{:07d}"),
}


def _price(rng: random.Random, sku: str, currency: str) -> Decimal:
    discount = Decimal(rng.randint(80, 100)) / 100
    return (PRODUCTS[sku][1] * RATES[currency] * discount).quantize(CENT)


def _quantity(rng: random.Random, sku: str, unit: str) -> int:
    if unit == "BX":
        return rng.randint(2, 40)
    if sku == "CBL-C6-3M":
        return rng.randint(20, 1500)
    if sku == "LIC-SEC-1Y":
        return rng.randint(1, 60)
    if sku.startswith("SW-") or sku == "FW-500":
        return rng.randint(1, 6)
    return rng.randint(1, 24)


def _invoice(
    rng: random.Random, feed: str, invoices: _Invoices, monday: date, *, is_return: bool | None = None
) -> list[Line]:
    """One invoice (1-4 lines) or credit note (1 line) dated in the week starting `monday`."""
    if is_return is None:
        is_return = rng.random() < 0.12
    site = rng.choice(SITES[feed])
    name = rng.choice(site.names)
    day = monday + timedelta(days=rng.randint(0, 4))
    number = invoices.take(is_return)
    skus = rng.sample(sorted(PRODUCTS), 1 if is_return else rng.randint(1, 4))
    customers = END_CUSTOMERS.get(feed)
    customer = None
    if customers and (feed == PACIFIC or rng.random() < 0.5):
        customer = rng.choice(customers)
    lines = []
    for position, sku in enumerate(skus, start=1):
        unit = "BX" if feed == NORDIC and sku == "CBL-C6-3M" and rng.random() < 0.8 else "EA"
        factor = UNITS_PER_BOX if unit == "BX" else 1
        price = _price(rng, sku, site.currency) * factor
        quantity = rng.randint(1, 3) if is_return else _quantity(rng, sku, unit)
        sign = -1 if is_return else 1
        lines.append(
            Line(
                invoice_number=number,
                invoice_line=position,
                transaction_date=day,
                site=site,
                reseller_name=name,
                sku=sku,
                distributor_sku=DISTRIBUTOR_SKUS[feed][sku],
                quantity=sign * quantity,
                unit=unit,
                factor=factor,
                unit_price=price,
                currency=site.currency,
                net_amount=(sign * quantity * price).quantize(CENT),
                end_customer=customer,
            )
        )
    return lines


def _week(rng: random.Random, feed: str, invoices: _Invoices, monday: date) -> list[Line]:
    """A week's fresh lines, in invoice order, 22 to 40 of them."""
    target = rng.randint(22, 40)
    lines: list[Line] = []
    while len(lines) < target:
        lines.extend(_invoice(rng, feed, invoices, monday))
    lines.sort(key=lambda line: (line.transaction_date, line.invoice_number, line.invoice_line))
    return lines


# --------------------------------------------------------------------------------------------------
# Bad records: each fails exactly one validation rule (the first in the pipeline's order).

Mutator = Callable[[Line], str]


def _unquoted_comma(line: Line) -> str:
    line.reseller_name = "Brightline Technologies, Inc."
    line.raw["malformed"] = "unquoted_comma"
    return "reseller name with a comma written without quotes: the row has one field too many"


def _truncated_json(line: Line) -> str:
    line.raw["malformed"] = "truncated"
    return "the line is cut off mid-object: not valid JSON"


def _set(field_name: str, value: str, reason: str) -> Mutator:
    def mutate(line: Line) -> str:
        line.raw[field_name] = value
        return reason

    return mutate


def _pasted_name(line: Line) -> str:
    line.reseller_name = ("Southern Cross IT Pty Ltd " * 200).strip()
    return "a reseller name pasted in 200 times: 5,199 characters"


def _negative_price(line: Line) -> str:
    line.quantity = 1
    line.unit_price = -line.unit_price
    line.net_amount = line.unit_price.quantize(CENT)
    return "a rebate booked as a negative unit price"


BAD_PLAN: tuple[tuple[str, int, str, Mutator], ...] = (
    (NORTHWIND, 1, "record_malformed", _unquoted_comma),
    (NORTHWIND, 2, "quantity_not_integral", _set("quantity", "2.5", "quantity 2.5 is not a whole number")),
    (
        RHEINLAND,
        0,
        "required_missing",
        _set("distributor_sku", "", "the article number (Artikelnr) is empty"),
    ),
    (RHEINLAND, 2, "date_unparseable", _set("transaction_date", "31.09.2026", "31 September does not exist")),
    (
        RHEINLAND,
        3,
        "country_invalid",
        _set("reseller_country", "Deutschland", "country written out, not alpha-2"),
    ),
    (ALBION, 0, "country_invalid", _set("reseller_country", "UK", "'UK' is not ISO 3166-1 alpha-2 (GB is)")),
    (ALBION, 1, "number_unparseable", _set("unit_price", "TBC", "unit price 'TBC' is not a number")),
    (ALBION, 2, "currency_invalid", _set("currency", "EURO", "'EURO' is not an ISO 4217 code")),
    (NORDIC, 1, "unit_unknown", _set("unit", "PK", "unit of measure 'PK' is not in the feed's unit_factors")),
    (
        NORDIC,
        2,
        "transaction_type_unknown",
        _set("transaction_type", "X", "transaction code 'X' is not mapped"),
    ),
    (PACIFIC, 0, "record_malformed", _truncated_json),
    (PACIFIC, 1, "date_implausible", _set("transaction_date", "1900-01-01", "placeholder date before 2000")),
    (PACIFIC, 2, "price_negative", _negative_price),
    (PACIFIC, 2, "field_too_long", _pasted_name),
    (PACIFIC, 3, "currency_invalid", _set("currency", "NZ$", "'NZ$' is not an ISO 4217 code")),
)
"""(feed, week index, rule, how the record is broken)."""

INVENTORY_BAD = (1, "required_missing", "quantity on hand is empty")
"""(week index, rule, reason) of the inventory feed's bad stock row."""


def _insert_bad_records(
    rng: random.Random, feed: str, week: int, lines: list[Line], invoices: _Invoices
) -> None:
    """Insert this week's planned bad records in the first half of `lines` (never in repeated lines)."""
    for plan_feed, plan_week, rule, mutate in BAD_PLAN:
        if plan_feed != feed or plan_week != week:
            continue
        monday = lines[0].transaction_date - timedelta(days=lines[0].transaction_date.weekday())
        bad = _invoice(rng, feed, invoices, monday, is_return=False)[0]
        if mutate is _unquoted_comma:
            bad.site, bad.currency = SITES[NORTHWIND][0], SITES[NORTHWIND][0].currency
        bad.rule = rule
        bad.reason = mutate(bad)
        boundaries = [
            i for i in range(1, len(lines) // 2 + 1) if lines[i - 1].invoice_number != lines[i].invoice_number
        ]
        lines.insert(rng.choice(boundaries), bad)


def _restate(
    rng: random.Random, feed: str, original: list[Line], invoices: _Invoices
) -> tuple[list[Line], int, int, int]:
    """The corrected report of a week: two lines changed, two removed, one new invoice added."""
    lines = [replace(line) for line in original]
    changed = rng.sample(range(len(lines)), 4)
    for index in changed[:2]:
        line = lines[index]
        delta = 1 if line.quantity > 0 else -1
        line.quantity += delta
        line.net_amount = (line.quantity * line.unit_price).quantize(CENT)
    removed = {id(lines[index]) for index in changed[2:]}
    lines = [line for line in lines if id(line) not in removed]
    monday = original[0].transaction_date - timedelta(days=original[0].transaction_date.weekday())
    added = _invoice(rng, feed, invoices, monday, is_return=False)
    while len(added) < 2:
        added = _invoice(rng, feed, invoices, monday, is_return=False)
    lines.extend(added)
    lines.sort(key=lambda line: (line.transaction_date, line.invoice_number, line.invoice_line))
    return lines, 2, len(added), 2


# --------------------------------------------------------------------------------------------------
# Writers: one per format. Each returns the source_row of every record in file order.


def _de_number(value: Decimal | int, places: int = 2) -> str:
    text = f"{value:,.{places}f}" if isinstance(value, Decimal) else f"{value:,d}"
    return text.replace(",", "\x00").replace(".", ",").replace("\x00", ".")


def _us_date(day: date) -> str:
    return f"{day.month:02d}/{day.day:02d}/{day.year}"


def _write_northwind(path: Path, lines: list[Line]) -> list[int]:
    header = [
        "Invoice Number", "Line", "Invoice Date", "Reseller Name", "Reseller Zip", "Reseller Country",
        "Part Number", "Description", "Qty", "Unit Price", "Extended Price", "Currency",
    ]  # fmt: skip
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    for line in lines:
        row = [
            line.invoice_number,
            str(line.invoice_line),
            line.raw.get("transaction_date", _us_date(line.transaction_date)),
            line.reseller_name,
            line.site.postal_code,
            line.raw.get("reseller_country", line.site.country),
            line.raw.get("distributor_sku", line.distributor_sku),
            PRODUCTS[line.sku][0],
            line.raw.get("quantity", f"{line.quantity:,d}"),
            line.raw.get("unit_price", f"{line.unit_price:,.2f}"),
            line.raw.get("net_amount", f"{line.net_amount:,.2f}"),
            line.raw.get("currency", line.currency),
        ]
        if line.raw.get("malformed") == "unquoted_comma":
            quoted = io.StringIO()
            csv.writer(quoted, lineterminator="\r\n").writerow(row)
            buffer.write(quoted.getvalue().replace(f'"{line.reseller_name}"', line.reseller_name))
        else:
            writer.writerow(row)
    path.write_bytes(buffer.getvalue().encode("utf-8-sig"))
    return list(range(1, len(lines) + 1))


def _write_northwind_stock(path: Path, rows: list[StockRow]) -> list[int]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(["Snapshot Date", "Part Number", "Warehouse", "On Hand", "On Order"])
    for row in rows:
        writer.writerow(
            [
                _us_date(row.snapshot_date),
                row.distributor_sku,
                row.location_id,
                row.raw.get("quantity_on_hand", f"{row.on_hand:,d}"),
                f"{row.on_order:,d}",
            ]
        )
    path.write_bytes(buffer.getvalue().encode("utf-8-sig"))
    return list(range(1, len(rows) + 1))


def _write_rheinland(path: Path, lines: list[Line]) -> list[int]:
    def text(value: str) -> str:
        return '"' + value.replace('"', '""') + '"'

    header = [
        "Beleg-Nr", "Pos", "Belegdatum", "Kunde", "Kunde PLZ", "Kunde Land", "Lieferadresse", "Artikelnr",
        "Artikelbezeichnung", "Menge", "Einzelpreis", "Nettobetrag", "Währung", "Endkunde",
        "Endkunde E-Mail", "Endkunde Adresse", "Endkunde Land",
    ]  # fmt: skip
    records = [";".join(text(name) for name in header)]
    for line in lines:
        customer = line.end_customer
        sku = line.raw.get("distributor_sku", line.distributor_sku)
        fields = [
            text(line.invoice_number),
            str(line.invoice_line),
            line.raw.get("transaction_date", line.transaction_date.strftime("%d.%m.%Y")),
            text(line.reseller_name),
            text(line.site.postal_code),
            text(line.raw.get("reseller_country", line.site.country)),
            text(customer.address if customer else line.site.address),
            text(sku) if sku else "",
            text(PRODUCTS[line.sku][0]),
            _de_number(line.quantity),
            _de_number(line.unit_price),
            _de_number(line.net_amount),
            text(line.currency),
            text(customer.name) if customer else "",
            text(customer.email) if customer else "",
            text(customer.address) if customer else "",
            text(customer.country) if customer else "",
        ]
        records.append(";".join(fields))
    path.write_bytes(("\r\n".join(records) + "\r\n").encode("cp1252"))
    return list(range(1, len(lines) + 1))


ALBION_HEADER_ROW = 4


def _albion_workbook(
    target: Path | io.BytesIO, lines: list[Line], monday: date, created: datetime
) -> list[int]:
    options = {"constant_memory": False, "in_memory": isinstance(target, io.BytesIO)}
    workbook = xlsxwriter.Workbook(target, options)
    workbook.set_properties(
        {"title": "Weekly sell-out report", "author": "Albion Distribution Ltd", "created": created}
    )
    bold = workbook.add_format({"bold": True})
    title = workbook.add_format({"bold": True, "font_size": 14})
    day_format = workbook.add_format({"num_format": "dd/mm/yyyy"})
    money = workbook.add_format({"num_format": "#,##0.00"})
    sheet = workbook.add_worksheet("Sell-Out")
    sheet.write(0, 0, "Albion Distribution Ltd - Weekly Sell-Out Report", title)
    period = f"{monday:%d/%m/%Y} - {monday + timedelta(days=6):%d/%m/%Y}"
    sheet.write(1, 0, f"Vendor: Throughline Networks | Period: {period}")
    header = [
        "Invoice No", "Line No", "Invoice Date", "Customer Name", "Customer Postcode", "Customer Country",
        "Albion Part No", "Description", "Qty", "Unit Price", "Line Value", "Currency",
    ]  # fmt: skip
    sheet.write_row(ALBION_HEADER_ROW - 1, 0, header, bold)
    rows = []
    for index, line in enumerate(lines):
        row = ALBION_HEADER_ROW + index  # 0-based index of sheet row ALBION_HEADER_ROW + 1 + index
        sheet.write_string(row, 0, line.invoice_number)
        sheet.write_number(row, 1, line.invoice_line)
        sheet.write_datetime(row, 2, datetime.combine(line.transaction_date, time()), day_format)
        sheet.write_string(row, 3, line.reseller_name)
        sheet.write_string(row, 4, line.site.postal_code)
        sheet.write_string(row, 5, line.raw.get("reseller_country", line.site.country))
        sheet.write_string(row, 6, line.distributor_sku)
        sheet.write_string(row, 7, PRODUCTS[line.sku][0])
        sheet.write_number(row, 8, line.quantity)
        if "unit_price" in line.raw:
            sheet.write_string(row, 9, line.raw["unit_price"])
        else:
            sheet.write_number(row, 9, float(line.unit_price), money)
        sheet.write_number(row, 10, float(line.net_amount), money)
        sheet.write_string(row, 11, line.raw.get("currency", line.currency))
        rows.append(row + 1)
    total_row = ALBION_HEADER_ROW + len(lines)
    sheet.write_string(total_row, 0, "TOTAL", bold)
    sheet.write_number(total_row, 8, sum(line.quantity for line in lines), bold)
    sheet.set_column(0, 0, 12)
    sheet.set_column(3, 3, 34)
    sheet.set_column(7, 7, 36)
    notes = workbook.add_worksheet("Notes")
    notes.write(0, 0, "Notes", title)
    notes.write(1, 0, "Line values are net of discounts, in the currency shown on each line.")
    notes.write(2, 0, "Credit notes (SC...) carry negative quantities and values.")
    notes.write(3, 0, "Queries: channel.reporting@albion-distribution.example")
    workbook.close()
    return rows


def _write_albion(path: Path, lines: list[Line], monday: date, created: datetime) -> list[int]:
    return _albion_workbook(path, lines, monday, created)


def _write_nordic(path: Path, lines: list[Line], monday: date, created: datetime) -> list[int]:
    width = 101
    records = [
        f"H{'NORDIC DISTRIBUTION AB':<30}{'SELLOUT':<10}{monday:%Y%m%d}{monday + timedelta(days=6):%Y%m%d}"
        f"{created:%Y%m%d%H%M%S}".ljust(width)
    ]
    control = Decimal(0)
    for line in lines:
        code = line.raw.get("transaction_type", "R" if line.is_return else "S")
        net = abs(line.net_amount)
        control += net
        record = (
            f"D{line.invoice_number:<10}{line.invoice_line:03d}{line.transaction_date:%Y%m%d}{code}"
            f"{line.reseller_name:<30}{line.site.postal_code:<6}{line.site.country:<2}{line.distributor_sku:<10}"
            f"{abs(line.quantity):06d}{line.raw.get('unit', line.unit):<2}"
            f"{line.unit_price:>10.2f}{net:>12.2f}"
        )
        assert len(record) == width, record
        records.append(record)
    records.append(f"T{len(lines):07d}{control:>15.2f}".ljust(width))
    path.write_bytes(("\n".join(records) + "\n").encode("iso-8859-1"))
    return list(range(1, len(lines) + 1))


def _write_pacific(path: Path, lines: list[Line]) -> list[int]:
    out = []
    for line in lines:
        customer = line.end_customer
        record = {
            "invoice": {
                "number": line.invoice_number,
                "line": line.invoice_line,
                "date": line.raw.get("transaction_date", line.transaction_date.isoformat()),
            },
            "reseller": {
                "name": line.reseller_name,
                "address": {"postal_code": line.site.postal_code, "country": line.site.country},
            },
            "item": {
                "sku": line.distributor_sku,
                "quantity": line.quantity,
                "unit_price": f"{line.unit_price:.2f}",
            },
            "amount": {"net": f"{line.net_amount:.2f}", "currency": line.raw.get("currency", line.currency)},
            "end_customer": (
                {
                    "name": customer.name,
                    "email": customer.email,
                    "phone": customer.phone,
                    "country": customer.country,
                }
                if customer
                else None
            ),
        }
        text = json.dumps(record, ensure_ascii=False)
        if line.raw.get("malformed") == "truncated":
            text = text[: len(text) * 2 // 3]
        out.append(text)
    path.write_bytes(("\n".join(out) + "\n").encode("utf-8"))
    return list(range(1, len(lines) + 1))


def _x12(segments: list[list[str]], created: datetime, group: str, control: int) -> bytes:
    """One interchange holding one transaction set: ISA/GS/ST ... SE/GE/IEA with true counts."""
    body = [["ST", segments[0][1], "0001"], *segments[1:]]
    body.append(["SE", str(len(body) + 1), "0001"])
    isa = (
        f"ISA*00*{'':10}*00*{'':10}*ZZ*{'KEYSTONE':15}*ZZ*{'THROUGHLINE':15}*{created:%y%m%d}*{created:%H%M}"
        f"*U*00401*{control:09d}*0*P*>"
    )
    lines = [isa, f"GS*{group}*KEYSTONE*THROUGHLINE*{created:%Y%m%d}*{created:%H%M}*{control}*X*004010"]
    lines += ["*".join(segment) for segment in body]
    lines += [f"GE*1*{control}", f"IEA*1*{control:09d}"]
    return ("~\n".join(lines) + "~\n").encode("ascii")


def _write_867(path: Path, lines: list[Line], monday: date, created: datetime) -> list[int]:
    """Keystone's weekly EDI 867: one PTD loop per invoice, one QTY/LIN line item per line."""
    segments: list[list[str]] = [
        ["ST", "867"],
        ["BPT", "00", f"SO{monday:%Y%m%d}", f"{created:%Y%m%d}", "SD"],
    ]
    segments += [["DTM", "090", f"{monday:%Y%m%d}"], ["DTM", "091", f"{monday + timedelta(days=6):%Y%m%d}"]]
    segments.append(["CUR", "SE", "USD"])
    items = 0
    for invoice, group in groupby(lines, key=lambda line: line.invoice_number):
        group = list(group)
        first = group[0]
        segments += [
            ["PTD", "BN" if first.is_return else "SS"],
            ["DTM", "003", f"{first.transaction_date:%Y%m%d}"],
            ["REF", "IV", invoice],
            ["N1", "BY", first.reseller_name, "91", first.site.partner_id],
            ["N4", "NEW YORK", "NY", first.site.postal_code, first.site.country],
        ]
        for line in group:
            segments += [
                ["QTY", "32", str(abs(line.quantity)), "EA"],
                ["LIN", str(line.invoice_line), "VP", line.distributor_sku],
                ["UIT", "EA", f"{line.unit_price:.2f}"],
                ["AMT", "1", f"{abs(line.net_amount):.2f}"],
            ]
            items += 1
    segments.append(["CTT", str(items)])
    path.write_bytes(_x12(segments, created, "PT", int(f"{monday:%y%m%d}")))
    return list(range(1, len(lines) + 1))


def _write_852(path: Path, rows: list[StockRow], monday: date, created: datetime) -> list[int]:
    """Keystone's EDI 852 for a week: per store (N1 RL), per product (LIN), on hand and on order (ZA)."""
    segments: list[list[str]] = [
        ["ST", "852"],
        ["XQ", "H", f"{monday:%Y%m%d}", f"{monday + timedelta(days=6):%Y%m%d}"],
    ]
    items = 0
    for store, group in groupby(rows, key=lambda row: row.location_id):
        segments.append(["N1", "RL", f"Keystone {store}", "92", store])
        for row in group:
            segments += [["LIN", "", "VP", row.distributor_sku], ["ZA", "QA", str(row.on_hand), "EA"]]
            segments.append(["ZA", "QP", str(row.on_order), "EA"])
            items += 1
    segments.append(["CTT", str(items)])
    path.write_bytes(_x12(segments, created, "PD", int(f"{monday:%y%m%d}") + 1))
    return list(range(1, len(rows) + 1))


# --------------------------------------------------------------------------------------------------
# The scenario.


def live_as_of(today: date) -> date:
    """The as-of date a demo run on `today` uses: the Monday of the week holding `today` - 2 days.

    The sample then always looks current: its last week (the Monday before that one) is due on
    as-of + 2 days, on or before `today`, so Albion's deliberately missing report shows as missing;
    the week after it falls due on as-of + 9 days, after `today`, so no other report is missing yet.
    """
    # The last week's Monday is as-of - 7, so it is due on as-of + (REPORT_DUE_DAYS_AFTER_MONDAY - 7).
    due_after_as_of = timedelta(days=REPORT_DUE_DAYS_AFTER_MONDAY - 7)
    latest = today - due_after_as_of
    return latest - timedelta(days=latest.weekday())


def report_weeks(as_of: date) -> list[date]:
    """Mondays of the complete weeks before `as_of` that each distributor reports, oldest first."""
    this_monday = as_of - timedelta(days=as_of.weekday())
    return [this_monday - timedelta(weeks=WEEKS - index) for index in range(WEEKS)]


def _received(feed: str, monday: date, *, days_after: int = 7, hour: int = 6) -> datetime:
    return datetime.combine(monday + timedelta(days=days_after), time(hour)) + timedelta(
        minutes=RECEIVED_MINUTES[feed]
    )


FILE_NAMES = {
    NORTHWIND: "NW_SALES_{:%Y%m%d}.csv",
    NORTHWIND_INVENTORY: "NW_STOCK_{:%Y%m%d}.csv",
    RHEINLAND: "RH_Abverkauf_{:%Y%m%d}.csv",
    ALBION: "Albion_SellOut_{:%Y%m%d}.xlsx",
    NORDIC: "NORDIC_SO_{:%Y%m%d}.txt",
    PACIFIC: "pacific_sellout_{:%Y%m%d}.jsonl",
    KEYSTONE: "KEYSTONE_867_{:%Y%m%d}.edi",
    KEYSTONE_INVENTORY: "KEYSTONE_852_{:%Y%m%d}.edi",
}
DISTRIBUTOR_OF = {NORTHWIND_INVENTORY: NORTHWIND, KEYSTONE_INVENTORY: KEYSTONE}
EDI_STORES = ("STORE-0101", "STORE-0102")


def _plan(rng: random.Random, weeks: list[date]) -> tuple[list[Report], list[Restatement], list[Overlap]]:
    """Every report of the scenario, with lines, statuses and arrival times (nothing written yet)."""
    reports: list[Report] = []
    restatements: list[Restatement] = []
    overlaps: list[Overlap] = []
    for feed in SELLOUT_FEEDS:
        sale, credit = INVOICE_FORMATS[feed]
        invoices = _Invoices(rng.randint(10_000, 90_000) * (1000 if feed == NORDIC else 1), sale, credit)
        previous: list[Line] = []
        repeated = 0
        for index, monday in enumerate(weeks):
            fresh = _week(rng, feed, invoices, monday)
            _insert_bad_records(rng, feed, index, fresh, invoices)
            lines = list(fresh)
            if feed == OVERLAP_FEED and previous:
                valid = [line for line in previous if line.rule is None]
                last_two = set(list(dict.fromkeys(line.invoice_number for line in valid))[-2:])
                carried = [line for line in valid if line.invoice_number in last_two]
                lines = carried + lines
                repeated += len(carried)
            previous = fresh
            if feed == LATE_FEED and index == len(weeks) - 1:
                continue
            name = FILE_NAMES[feed].format(monday)
            report = Report(feed, feed, name, monday, _received(feed, monday), lines)
            reports.append(report)
            if feed == RESTATED_FEED and index == RESTATED_WEEK:
                restated_lines, changed, added, removed = _restate(rng, feed, fresh, invoices)
                restated_name = name.replace(".csv", "_restated.csv")
                received = _received(feed, monday, days_after=16, hour=10)
                reports.append(Report(feed, feed, restated_name, monday, received, restated_lines))
                report.status, report.superseded_by = "superseded", restated_name
                restatements.append(
                    Restatement(feed, feed, monday, name, restated_name, changed, added, removed)
                )
        if repeated:
            overlaps.append(Overlap(feed, feed, repeated))
    for index, monday in enumerate(weeks):
        rows = []
        sunday = monday + timedelta(days=6)
        for location in INVENTORY_LOCATIONS:
            for sku in sorted(PRODUCTS):
                high = 5000 if sku == "CBL-C6-3M" else 400
                on_order = rng.choice((0, 0, 0, 25, 50, 100, 250))
                rows.append(
                    StockRow(
                        sunday, DISTRIBUTOR_SKUS[NORTHWIND][sku], location, rng.randint(0, high), on_order
                    )
                )
        if index == INVENTORY_BAD[0]:
            bad = rows[rng.randrange(len(rows))]
            bad.rule, bad.reason, bad.raw["quantity_on_hand"] = INVENTORY_BAD[1], INVENTORY_BAD[2], ""
        name = FILE_NAMES[NORTHWIND_INVENTORY].format(monday)
        received = _received(NORTHWIND_INVENTORY, monday)
        reports.append(Report(NORTHWIND_INVENTORY, NORTHWIND, name, monday, received, stock=rows))
    monday = weeks[-1]
    sunday = monday + timedelta(days=6)
    rows = [
        StockRow(sunday, DISTRIBUTOR_SKUS[KEYSTONE][sku], store, rng.randint(0, 300), rng.choice((0, 20, 40)))
        for store in EDI_STORES
        for sku in sorted(PRODUCTS)
    ]
    name = FILE_NAMES[KEYSTONE_INVENTORY].format(monday)
    reports.append(
        Report(KEYSTONE_INVENTORY, KEYSTONE, name, monday, _received(KEYSTONE_INVENTORY, monday), stock=rows)
    )
    reports.sort(key=lambda report: (report.received_at, report.file_name))
    return reports, restatements, overlaps


def _write(report: Report, folder: Path) -> list[int]:
    path = folder / report.file_name
    if report.feed_id == NORTHWIND:
        rows = _write_northwind(path, report.lines)
    elif report.feed_id == NORTHWIND_INVENTORY:
        rows = _write_northwind_stock(path, report.stock)
    elif report.feed_id == RHEINLAND:
        rows = _write_rheinland(path, report.lines)
    elif report.feed_id == ALBION:
        rows = _write_albion(path, report.lines, report.period_start, report.received_at)
    elif report.feed_id == NORDIC:
        rows = _write_nordic(path, report.lines, report.period_start, report.received_at)
    elif report.feed_id == KEYSTONE:
        rows = _write_867(path, report.lines, report.period_start, report.received_at)
    elif report.feed_id == KEYSTONE_INVENTORY:
        rows = _write_852(path, report.stock, report.period_start, report.received_at)
    else:
        rows = _write_pacific(path, report.lines)
    stamp = report.received_at.replace(tzinfo=UTC).timestamp()
    os.utime(path, (stamp, stamp))
    return rows


def _canonical(line: Line, distributor_id: str) -> SelloutLine:
    return SelloutLine(
        distributor_id=distributor_id,
        invoice_number=line.invoice_number,
        invoice_line=line.invoice_line,
        transaction_date=line.transaction_date,
        transaction_type="return" if line.is_return else "sale",
        reseller_name=line.reseller_name.strip(),
        partner_id=line.site.partner_id,
        reseller_postal_code=line.site.postal_code,
        reseller_country=line.site.country,
        distributor_sku=line.distributor_sku,
        sku=line.sku,
        quantity=line.quantity * line.factor,
        unit_price=(line.unit_price / line.factor).quantize(PRICE_PLACES),
        currency=line.currency,
        net_amount=line.net_amount,
        end_customer_reported=line.end_customer is not None,
    )


def generate_samples(out_dir: Path, *, seed: int = DEFAULT_SEED, as_of: date = DEFAULT_AS_OF) -> SampleTruth:
    """Write every distributor's weekly reports into `out_dir/<distributor_id>/` and return the truth.

    `out_dir` plays the inbox. Files get deterministic mtimes in the order they would be received;
    the same seed and as-of date give the same bytes and mtimes on every run.
    """
    rng = random.Random(seed)
    weeks = report_weeks(as_of)
    reports, restatements, overlaps = _plan(rng, weeks)
    files: list[FileTruth] = []
    bad_records: list[BadRecord] = []
    counted: dict[str, dict[tuple[str, int], SelloutLine]] = {feed: {} for feed in SELLOUT_FEEDS}
    duplicates = dict.fromkeys(SELLOUT_FEEDS, 0)
    stock: dict[str, dict[tuple[date, str, str], StockRow]] = {
        NORTHWIND_INVENTORY: {},
        KEYSTONE_INVENTORY: {},
    }
    for report in reports:
        folder = out_dir / report.distributor_id
        folder.mkdir(parents=True, exist_ok=True)
        source_rows = _write(report, folder)
        records: list[Line] | list[StockRow] = report.lines or report.stock
        bad = [(row, record) for row, record in zip(source_rows, records, strict=True) if record.rule]
        for row, record in bad:
            assert record.rule is not None
            bad_records.append(
                BadRecord(
                    report.distributor_id, report.feed_id, report.file_name, row, record.rule, record.reason
                )
            )
        files.append(
            FileTruth(
                distributor_id=report.distributor_id,
                feed_id=report.feed_id,
                file_name=report.file_name,
                period_start=report.period_start,
                status="superseded" if report.status == "superseded" else "loaded",
                rows_read=len(records),
                rows_quarantined=len(bad),
                rows_loaded=len(records) - len(bad),
                received_at=report.received_at.replace(tzinfo=UTC).isoformat(),
                superseded_by=report.superseded_by,
            )
        )
        if report.status == "superseded":
            continue
        for line in report.lines:
            if line.rule:
                continue
            canonical = _canonical(line, report.distributor_id)
            seen = counted[report.feed_id].setdefault(line.key, canonical)
            if seen is not canonical:
                assert seen == canonical, f"{line.key} repeated with different values"
                duplicates[report.feed_id] += 1
        for row in report.stock:
            if not row.rule:
                stock[report.feed_id].setdefault(
                    (row.snapshot_date, row.location_id, row.distributor_sku), row
                )
    sellout = {feed: _totals(feed, list(lines.values()), duplicates[feed]) for feed, lines in counted.items()}
    reseller_names: dict[str, dict[str, str]] = {}
    for feed, lines in counted.items():
        names = reseller_names.setdefault(feed, {})
        for line in lines.values():
            assert names.setdefault(line.reseller_name, line.partner_id) == line.partner_id
        reseller_names[feed] = dict(sorted(names.items()))
    inventory = {
        feed: InventoryTotals(
            distributor_id=DISTRIBUTOR_OF[feed],
            feed_id=feed,
            rows=len(rows),
            quantity_on_hand=sum(row.on_hand for row in rows.values()),
            quantity_on_order=sum(row.on_order for row in rows.values()),
        )
        for feed, rows in stock.items()
    }
    all_lines = sorted(
        (line for lines in counted.values() for line in lines.values()),
        key=lambda line: (line.distributor_id, line.invoice_number, line.invoice_line),
    )
    return SampleTruth(
        seed=seed,
        as_of=as_of,
        periods=weeks,
        files=files,
        bad_records=bad_records,
        sellout=sellout,
        inventory=inventory,
        partners=list(PARTNERS),
        reseller_names=reseller_names,
        sku_map={
            feed: dict(sorted((d, v) for v, d in skus.items())) for feed, skus in DISTRIBUTOR_SKUS.items()
        },
        late_reports=[LateReport(LATE_FEED, LATE_FEED, weeks[-1])],
        restatements=restatements,
        overlaps=overlaps,
        sellout_lines=all_lines,
    )


def _totals(distributor_id: str, lines: list[SelloutLine], duplicates: int) -> SelloutTotals:
    by_currency: dict[str, Decimal] = {}
    for line in lines:
        by_currency[line.currency] = by_currency.get(line.currency, Decimal("0.00")) + line.net_amount
    return SelloutTotals(
        distributor_id=distributor_id,
        lines=len(lines),
        return_lines=sum(1 for line in lines if line.transaction_type == "return"),
        quantity=sum(line.quantity for line in lines),
        net_amount_by_currency=dict(sorted(by_currency.items())),
        net_amount_total=sum(by_currency.values(), Decimal("0.00")),
        duplicate_lines=duplicates,
    )


# --------------------------------------------------------------------------------------------------
# Feed specs, unreadable files and the one-call setup the CLI uses.


def feed_spec_paths() -> list[Path]:
    """The shipped feed spec files (package data in `sampledata/feeds/`)."""
    folder = resources.files("sampledata") / "feeds"
    return sorted(Path(str(entry)) for entry in folder.iterdir() if entry.name.endswith(".yaml"))


def copy_feed_specs(dest_dir: Path) -> list[Path]:
    """Copy the sample's feed specs into `dest_dir` (a home's `feeds/` folder); returns the copies."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    return [Path(shutil.copyfile(source, dest_dir / source.name)) for source in feed_spec_paths()]


def write_unreadable_samples(
    out_dir: Path, *, seed: int = DEFAULT_SEED, as_of: date = DEFAULT_AS_OF
) -> dict[str, Path]:
    """Write files the pipeline must reject, into the inbox layout `out_dir/<distributor_id>/`.

    Kept out of the default sample. Names match the feeds' patterns and carry the as-of week, a
    period the regular sample never reports. Keys: `random_bytes` (northwind_us .csv),
    `truncated_xlsx` (albion_uk), `wrong_encoding` (northwind_us, UTF-16 where UTF-8 is declared).
    """
    rng = random.Random(seed)
    monday = as_of - timedelta(days=as_of.weekday())
    created = datetime.combine(as_of, time(8))
    paths = {
        "random_bytes": out_dir / NORTHWIND / f"NW_SALES_{monday:%Y%m%d}_garbled.csv",
        "truncated_xlsx": out_dir / ALBION / FILE_NAMES[ALBION].format(monday),
        "wrong_encoding": out_dir / NORTHWIND / f"NW_SALES_{monday:%Y%m%d}_utf16.csv",
    }
    for path in paths.values():
        path.parent.mkdir(parents=True, exist_ok=True)
    # A lone 0xC3 followed by "(" is never valid UTF-8, whatever the random bytes happen to be.
    paths["random_bytes"].write_bytes(b"\xc3(" + rng.randbytes(4094))
    invoices = _Invoices(50_000, *INVOICE_FORMATS[ALBION])
    lines = _invoice(rng, ALBION, invoices, monday, is_return=False)
    workbook = io.BytesIO()
    _albion_workbook(workbook, lines, monday, created)
    whole = workbook.getvalue()
    paths["truncated_xlsx"].write_bytes(whole[: len(whole) // 2])
    scratch = out_dir / NORTHWIND / ".utf16.tmp"
    lines = _invoice(rng, NORTHWIND, _Invoices(60_000, *INVOICE_FORMATS[NORTHWIND]), monday, is_return=False)
    _write_northwind(scratch, lines)
    text = scratch.read_bytes().decode("utf-8-sig")
    scratch.unlink()
    paths["wrong_encoding"].write_bytes(text.encode("utf-16"))
    stamp = created.replace(tzinfo=UTC).timestamp()
    for path in paths.values():
        os.utime(path, (stamp, stamp))
    return paths


TRUTH_FILE = "sample_truth.json"


def generate_into(out_dir: Path, seed: int = DEFAULT_SEED, as_of: date = DEFAULT_AS_OF) -> SampleTruth:
    """Set up a demo home in `out_dir`: reports in `inbox/<distributor_id>/`, feed specs in `feeds/`
    and the truth in `sample_truth.json`. Returns the truth."""
    truth = generate_samples(out_dir / "inbox", seed=seed, as_of=as_of)
    copy_feed_specs(out_dir / "feeds")
    write_truth(truth, out_dir / TRUTH_FILE)
    return truth
