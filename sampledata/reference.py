"""The sample's reference data: partners, products, SKU map, rates, quotas, tiers, certifications,
rebate programs and approved aliases, built from the generator's own tables, with its truth.

`write_reference(folder)` writes the files a home's `reference/` folder holds (the same bytes as
the copy shipped in `sampledata/reference/`, which a test keeps in step); `reference_truth()` says
what the pipeline must make of them. Deterministic: fixed tables and seeded draws, no clock. The
dates that must stay near the sample's weeks (certifications, alias approvals, quotas, rebate
programs, rates) follow the as-of date they are written for; the shipped copy is the default's.
"""

from __future__ import annotations

import csv
import io
import itertools
import random
import shutil
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from importlib import resources
from pathlib import Path

from sampledata.generator import (
    DEFAULT_AS_OF,
    DISTRIBUTOR_SKUS,
    NORTHWIND,
    PARTNERS,
    PRODUCTS,
    RATES,
    RHEINLAND,
    SITES,
    report_weeks,
)

BASE_CURRENCY = "USD"
RATE_PLACES = Decimal("0.000001")

# --------------------------------------------------------------------------------------------------
# Partners: the generator's pool plus programme attributes, history and local entities.

REGIONS = {"US": "NA", "CA": "NA", "DE": "EMEA", "GB": "EMEA", "IE": "EMEA", "SE": "EMEA", "NO": "EMEA",
           "AU": "APAC", "NZ": "APAC"}  # fmt: skip

PROFILES: dict[str, tuple[str, str, str, date]] = {
    "P0001": ("Gold", "VAR", "Education", date(2023, 3, 1)),
    "P0002": ("Silver", "MSP", "SMB", date(2024, 1, 15)),
    "P0003": ("Gold", "System Integrator", "Public Sector", date(2022, 6, 1)),
    "P0004": ("Silver", "VAR", "SMB", date(2024, 5, 1)),
    "P0005": ("Gold", "System Integrator", "Manufacturing", date(2021, 9, 1)),
    "P0006": ("Silver", "VAR", "Healthcare", date(2023, 11, 1)),
    "P0007": ("Gold", "MSP", "Financial Services", date(2022, 2, 1)),
    "P0008": ("Silver", "VAR", "Education", date(2023, 4, 1)),
    "P0009": ("Registered", "VAR", "SMB", date(2025, 2, 1)),
    "P0010": ("Silver", "MSP", "Public Sector", date(2024, 8, 1)),
    "P0011": ("Registered", "VAR", "SMB", date(2025, 6, 1)),
    "P0012": ("Registered", "MSP", "Energy", date(2025, 3, 1)),
    "P0013": ("Gold", "System Integrator", "Healthcare", date(2022, 10, 1)),
    "P0014": ("Silver", "MSP", "SMB", date(2024, 2, 1)),
    "P0015": ("Platinum", "Global System Integrator", "Enterprise", date(2020, 1, 1)),
}
"""partner_id -> (current tier, segment type, vertical, date the current version starts)."""

EARLIER_VERSIONS: dict[str, tuple[tuple[str, str, date], ...]] = {
    "P0003": (("Summit Data Solutions Inc.", "Silver", date(2020, 4, 1)),),
    "P0008": (("Kingsbridge Networks Ltd", "Gold", date(2021, 7, 1)),),
    "P0009": (("Liffey Computer Systems Limited", "Registered", date(2019, 5, 1)),),
    "P0013": (("Southern Cross IT Pty Ltd", "Registered", date(2018, 2, 1)),
              ("Southern Cross IT Pty Ltd", "Silver", date(2020, 3, 1))),
}  # fmt: skip
"""partner_id -> earlier versions (legal name, tier, valid_from), oldest first; each ends the day
the next starts. P0003 moved up to Gold, P0008 down to Silver, P0009 changed its legal name."""

LOCAL_ENTITIES: dict[tuple[str, str], str] = {
    ("P0015", "US"): "Global Reach Solutions Inc.",
    ("P0015", "DE"): "Global Reach Solutions GmbH",
    ("P0015", "SE"): "Global Reach Solutions AB",
    ("P0015", "AU"): "Global Reach Solutions Pty Ltd",
}
"""A partner's registered entities outside its home country (`partner_sites.csv`): the sites the
distributors report it under, whose postal codes come from the generator's SITES."""

ALIASES: tuple[tuple[str, str, str, str, str, str, str], ...] = (
    (RHEINLAND, "Global Reach Solutions Deutschland GmbH", "60311", "DE", "P0015", "2026-10-28",
     "Frankfurt office of Global Reach; confirmed with the partner manager"),
)  # fmt: skip
"""Approved aliases: (distributor, reported name, postal code, country, partner, approved_on, note)."""

# --------------------------------------------------------------------------------------------------
# Products, programme rules, quotas, certifications.

FAMILIES = {"AX-1000": "Wireless", "AX-2000": "Wireless", "SW-24P": "Switching", "SW-48P": "Switching",
            "FW-500": "Security", "LIC-SEC-1Y": "Security", "CBL-C6-3M": "Accessories", "PSU-150": "Accessories"}  # fmt: skip

PACKS: tuple[tuple[str, str, str, int], ...] = ((NORTHWIND, "NW-100336-12", "CBL-C6-3M", 12),)
"""Pack part numbers (distributor, part number, vendor SKU, units per pack): a case of 12 cables.
No sample file reports it; it shows the format and the conversion."""

TIERS: tuple[tuple[str, Decimal, tuple[str, ...]], ...] = (
    ("Registered", Decimal("0"), ()),
    ("Silver", Decimal("250000"), ("Wireless Associate",)),
    ("Gold", Decimal("1000000"), ("Wireless Associate", "Security Professional")),
    ("Platinum", Decimal("3000000"), ("Wireless Associate", "Security Professional", "Switching Expert")),
)
"""(tier, trailing-12-month revenue in USD, certifications required), lowest first."""

MONTHLY_QUOTA = {"Registered": Decimal("8000"), "Silver": Decimal("25000"), "Gold": Decimal("90000"),
                 "Platinum": Decimal("260000")}  # fmt: skip
QUOTA_YEAR = 2026

CERTIFICATIONS: tuple[tuple[str, str, date, date | None], ...] = (
    ("P0001", "Wireless Associate", date(2025, 3, 10), date(2027, 3, 10)),
    ("P0001", "Security Professional", date(2025, 9, 1), date(2027, 9, 1)),
    ("P0002", "Wireless Associate", date(2024, 2, 1), date(2027, 2, 1)),
    ("P0003", "Wireless Associate", date(2024, 6, 15), date(2027, 6, 15)),
    ("P0003", "Security Professional", date(2025, 1, 20), date(2027, 1, 20)),
    ("P0004", "Wireless Associate", date(2024, 5, 20), date(2026, 11, 30)),
    ("P0005", "Wireless Associate", date(2023, 9, 1), date(2027, 9, 1)),
    ("P0005", "Security Professional", date(2024, 10, 1), date(2026, 12, 10)),
    ("P0006", "Wireless Associate", date(2024, 1, 10), date(2027, 1, 10)),
    ("P0007", "Wireless Associate", date(2023, 2, 1), date(2027, 2, 1)),
    ("P0007", "Security Professional", date(2024, 4, 1), date(2027, 4, 1)),
    ("P0008", "Wireless Associate", date(2023, 5, 1), date(2027, 5, 1)),
    ("P0010", "Wireless Associate", date(2024, 9, 1), date(2027, 9, 1)),
    ("P0012", "Wireless Associate", date(2024, 9, 30), date(2026, 9, 30)),
    ("P0013", "Wireless Associate", date(2022, 11, 1), date(2027, 11, 1)),
    ("P0013", "Security Professional", date(2023, 3, 1), date(2027, 3, 1)),
    ("P0013", "Switching Expert", date(2025, 8, 1), None),
    ("P0014", "Wireless Associate", date(2024, 3, 1), date(2027, 3, 1)),
    ("P0015", "Wireless Associate", date(2020, 2, 1), date(2027, 2, 1)),
    ("P0015", "Security Professional", date(2021, 5, 1), date(2027, 5, 1)),
    ("P0015", "Switching Expert", date(2022, 7, 1), date(2027, 7, 1)),
)
"""(partner, certification, earned_on, expires_on or None for no expiry). Within 30 days of the
as-of date 2026-11-16: P0004's Wireless Associate (11-30) and P0005's Security Professional
(12-10); P0012's expired on 2026-09-30. A sample of another as-of date moves them with it
(`certifications(as_of)`)."""


def certifications(as_of: date = DEFAULT_AS_OF) -> tuple[tuple[str, str, date, date | None], ...]:
    """CERTIFICATIONS moved by as many days as `as_of` is from DEFAULT_AS_OF, so the same ones
    lapse soon, whenever the sample is generated."""
    shift = as_of - DEFAULT_AS_OF
    return tuple(
        (pid, name, earned + shift, expires + shift if expires else None)
        for pid, name, earned, expires in CERTIFICATIONS
    )


def _aliases(as_of: date) -> tuple[tuple[str, str, str, str, str, str, str], ...]:
    """ALIASES, approved as long before `as_of` as before DEFAULT_AS_OF."""
    shift = as_of - DEFAULT_AS_OF
    return tuple(
        (*alias[:5], (date.fromisoformat(alias[5]) + shift).isoformat(), alias[6]) for alias in ALIASES
    )


REBATE_PROGRAMS_TEMPLATE = """\
# Rebate programs. A program covers `skus`, product `families` or both, runs from period_start to
# period_end (inclusive) and pays partners of the eligible tiers by its rule, in the base currency:
#   percent_above_threshold: `percent` of the covered revenue above `threshold` over the period;
#   growth_kicker: `percent` of the covered revenue when it grew by `min_growth_percent` or more over
#   the baseline (`previous_period`: the same number of days just before period_start; `prior_year`).
programs:
  - program_id: WIFI7-LAUNCH-Q{quarter}
    name: Wi-Fi 7 launch rebate
    skus: [AX-1000, AX-2000]
    period_start: {quarter_start}
    period_end: {quarter_end}
    eligible_tiers: [Silver, Gold, Platinum]
    rule:
      type: percent_above_threshold
      percent: 3
      threshold: 5000
  - program_id: SECURITY-GROWTH-H{half}
    name: Security growth kicker
    families: [Security]
    period_start: {half_start}
    period_end: {half_end}
    eligible_tiers: [Gold, Platinum]
    rule:
      type: growth_kicker
      percent: 2
      min_growth_percent: 10
      baseline: previous_period
  - program_id: SWITCHING-{year}
    name: Switching volume rebate
    families: [Switching]
    period_start: {year_start}
    period_end: {year_end}
    eligible_tiers: [Registered, Silver, Gold, Platinum]
    rule:
      type: percent_above_threshold
      percent: 1.5
      threshold: 0
"""
"""The rebate programs: a launch rebate over a quarter, a growth kicker over a half year, a volume
rebate over a year, those holding the sample's first week (`rebate_programs(as_of)`)."""

FX_START = date(2025, 11, 3)
"""Rates from a year before the default sample's first week to the as-of date: business days only
(the as-of join carries Friday's rate over the weekend), no rates on the year-end holidays below.
The walk is seeded, so a day's rate is the same whatever the as-of date."""
EARLIEST_AS_OF = FX_START + timedelta(weeks=4)
"""The earliest as-of date the sample covers: its first week (four weeks before the as-of date's
week) is then the first with exchange rates."""
FX_HOLIDAYS = ((12, 25), (12, 26), (1, 1))
"""(month, day) of the holidays without rates, in every year."""


@dataclass(frozen=True)
class RebateProgram:
    """A rebate program as the truth states it (amounts in USD)."""

    program_id: str
    skus: tuple[str, ...]
    families: tuple[str, ...]
    period_start: date
    period_end: date
    eligible_tiers: tuple[str, ...]
    rule_type: str
    percent: Decimal
    threshold: Decimal | None = None
    min_growth_percent: Decimal | None = None


@dataclass(frozen=True)
class _ProgramCalendar:
    """The quarter, half year and year the sample's programs run over: those holding the first day
    of the sample's first week, so every program covers the whole of that week and has started by
    the as-of date (at the default as-of date: Q4, H2 and 2026)."""

    year: int
    quarter: int
    half: int

    @classmethod
    def of(cls, as_of: date) -> _ProgramCalendar:
        first = report_weeks(as_of)[0]
        return cls(first.year, (first.month - 1) // 3 + 1, (first.month - 1) // 6 + 1)

    @property
    def quarter_start(self) -> date:
        return date(self.year, 3 * self.quarter - 2, 1)

    @property
    def half_start(self) -> date:
        return date(self.year, 6 * self.half - 5, 1)


def rebate_programs(as_of: date = DEFAULT_AS_OF) -> tuple[RebateProgram, ...]:
    """The sample's programs for a sample as of `as_of` (what `rebate_programs.yaml` holds)."""
    calendar = _ProgramCalendar.of(as_of)
    year_start, year_end = date(calendar.year, 1, 1), date(calendar.year, 12, 31)
    return (
        RebateProgram(f"WIFI7-LAUNCH-Q{calendar.quarter}", ("AX-1000", "AX-2000"), (), calendar.quarter_start,
                      _month_end(calendar.quarter_start, 3), ("Silver", "Gold", "Platinum"),
                      "percent_above_threshold", Decimal("3"), Decimal("5000")),
        RebateProgram(f"SECURITY-GROWTH-H{calendar.half}", (), ("Security",), calendar.half_start,
                      _month_end(calendar.half_start, 6), ("Gold", "Platinum"), "growth_kicker", Decimal("2"),
                      min_growth_percent=Decimal("10")),
        RebateProgram(f"SWITCHING-{calendar.year}", (), ("Switching",), year_start, year_end,
                      ("Registered", "Silver", "Gold", "Platinum"), "percent_above_threshold", Decimal("1.5"),
                      Decimal("0")),
    )  # fmt: skip


def _month_end(start: date, months: int) -> date:
    """The last day of the `months`-month span starting on the first of `start`'s month."""
    following = start.month - 1 + months
    return date(start.year + following // 12, following % 12 + 1, 1) - timedelta(days=1)


def _rebate_programs_yaml(as_of: date) -> str:
    """`rebate_programs.yaml` for a sample as of `as_of`: the template filled with `rebate_programs`."""
    calendar = _ProgramCalendar.of(as_of)
    launch, growth, volume = rebate_programs(as_of)
    return REBATE_PROGRAMS_TEMPLATE.format(
        quarter=calendar.quarter,
        quarter_start=launch.period_start,
        quarter_end=launch.period_end,
        half=calendar.half,
        half_start=growth.period_start,
        half_end=growth.period_end,
        year=calendar.year,
        year_start=volume.period_start,
        year_end=volume.period_end,
    )


@dataclass(frozen=True)
class ReportedReseller:
    """One reseller spelling a distributor uses, and the partner it is."""

    distributor_id: str
    reported_name: str
    postal_code: str
    country: str
    partner_id: str


@dataclass(frozen=True)
class ReferenceTruth:
    """What the sample's reference data says, for the tests of resolution, rates, tiers and rebates."""

    as_of: date
    base_currency: str
    reported_resellers: tuple[ReportedReseller, ...]
    """Every name variant of every site of every distributor (names trimmed as sellout holds them)."""
    sku_map: dict[str, dict[str, tuple[str, int]]]
    """distributor_id -> distributor_sku -> (vendor sku, units per distributor unit)."""
    fx_rates: dict[tuple[date, str], Decimal]
    """(rate_date, currency) -> rate to USD (USD itself has no rows: its rate is 1)."""
    quotas: dict[tuple[str, str], Decimal]
    """(partner_id, 'YYYY-MM') -> target in USD."""
    tiers: tuple[tuple[str, Decimal, tuple[str, ...]], ...]
    certifications: tuple[tuple[str, str, date, date | None], ...]
    expiring_certifications: tuple[tuple[str, str, date], ...]
    """(partner, certification, expires_on) expiring within 30 days after the as-of date."""
    rebate_programs: tuple[RebateProgram, ...]
    partner_tiers: dict[str, tuple[tuple[date | None, date | None, str], ...]]
    """partner_id -> its versions' (valid_from, valid_to, tier), oldest first."""

    @property
    def reseller_partners(self) -> dict[str, dict[str, str]]:
        """distributor_id -> reported name -> partner_id (like SampleTruth.reseller_names, for all variants)."""
        out: dict[str, dict[str, str]] = {}
        for item in self.reported_resellers:
            out.setdefault(item.distributor_id, {})[item.reported_name] = item.partner_id
        return out

    def tier_on(self, partner_id: str, day: date) -> str | None:
        """The partner's tier on `day` (None before its first version)."""
        for start, end, tier in self.partner_tiers[partner_id]:
            if (start is None or start <= day) and (end is None or day < end):
                return tier
        return None

    def rate_on(self, currency: str, day: date) -> Decimal | None:
        """The rate the pipeline must use: that day's, else the latest earlier one (None if none)."""
        if currency == self.base_currency:
            return Decimal(1)
        earlier = [d for (d, c) in self.fx_rates if c == currency and d <= day]
        return self.fx_rates[(max(earlier), currency)] if earlier else None


# --------------------------------------------------------------------------------------------------
# Building the tables.


def _partner_rows() -> list[list[str]]:
    rows = []
    for partner in PARTNERS:
        tier, segment, vertical, since = PROFILES[partner.partner_id]
        versions = [*EARLIER_VERSIONS.get(partner.partner_id, ()), (partner.legal_name, tier, since)]
        for index, (legal_name, version_tier, valid_from) in enumerate(versions):
            valid_to = versions[index + 1][2].isoformat() if index + 1 < len(versions) else ""
            rows.append(
                [partner.partner_id, legal_name, partner.country, partner.postal_code, version_tier, segment,
                 REGIONS[partner.country], vertical, valid_from.isoformat(), valid_to]
            )  # fmt: skip
    return rows


def _site_rows() -> list[list[str]]:
    home = {partner.partner_id: partner.country for partner in PARTNERS}
    found: dict[tuple[str, str], str] = {}
    for sites in SITES.values():
        for site in sites:
            if site.country != home[site.partner_id]:
                assert (site.partner_id, site.country) in LOCAL_ENTITIES, f"no local entity for {site}"
                found.setdefault((site.partner_id, site.country), site.postal_code)
    return [
        [pid, LOCAL_ENTITIES[(pid, country)], country, postal]
        for (pid, country), postal in sorted(found.items())
    ]


def _fx_rates(as_of: date) -> dict[tuple[date, str], Decimal]:
    """Daily rates to USD on business days: a seeded walk within 4% of the generator's price-list rate."""
    rates: dict[tuple[date, str], Decimal] = {}
    for currency in sorted(c for c in RATES if c != BASE_CURRENCY):
        rng = random.Random(f"fx-{currency}")
        centre = 1 / RATES[currency]
        drift = Decimal(0)
        day = FX_START
        while day <= as_of:
            if day.weekday() < 5 and (day.month, day.day) not in FX_HOLIDAYS:
                drift = max(
                    Decimal("-0.04"), min(Decimal("0.04"), drift + Decimal(rng.randint(-40, 40)) / 10000)
                )
                rates[(day, currency)] = (centre * (1 + drift)).quantize(RATE_PLACES, ROUND_HALF_EVEN)
            day += timedelta(days=1)
    return rates


def _quotas(as_of: date) -> dict[tuple[str, str], Decimal]:
    """Monthly targets of every partner for each year from QUOTA_YEAR (or the sample's first week's,
    when earlier) to `as_of`'s."""
    first_year = min(QUOTA_YEAR, report_weeks(as_of)[0].year)
    quotas = {}
    for index, partner in enumerate(PARTNERS):
        tier = PROFILES[partner.partner_id][0]
        for year, month in itertools.product(
            range(first_year, max(QUOTA_YEAR, as_of.year) + 1), range(1, 13)
        ):
            seasonal = Decimal(100 + (month % 3) * 5 + (index % 4) * 10) / 100
            quotas[(partner.partner_id, f"{year}-{month:02d}")] = (MONTHLY_QUOTA[tier] * seasonal).quantize(
                Decimal("1")
            )
    return quotas


def _csv(header: list[str], rows: list[list[str]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def _tiers_yaml() -> str:
    lines = [
        "# Partner tiers, lowest first. A partner qualifies for a tier with at least min_revenue_t12m",
        "# (revenue over the trailing 12 months, in the base currency) and every listed certification",
        "# held unexpired.",
        "tiers:",
    ]
    for tier, revenue, required in TIERS:
        lines += [
            f"  - tier: {tier}",
            f"    min_revenue_t12m: {revenue}",
            f"    certifications: [{', '.join(required)}]",
        ]
    return "\n".join(lines) + "\n"


def reference_files(as_of: date = DEFAULT_AS_OF) -> dict[str, str]:
    """File name -> text of every sample reference file."""
    partner_header = ["partner_id", "legal_name", "country", "postal_code", "tier", "segment_type", "region",
                      "vertical", "valid_from", "valid_to"]  # fmt: skip
    sku_rows = [
        [distributor, part, sku, "1"]
        for distributor, skus in DISTRIBUTOR_SKUS.items()
        for sku, part in skus.items()
    ] + [[distributor, part, sku, str(units)] for distributor, part, sku, units in PACKS]
    return {
        "partners.csv": _csv(partner_header, _partner_rows()),
        "partner_sites.csv": _csv(["partner_id", "legal_name", "country", "postal_code"], _site_rows()),
        "partner_aliases.csv": _csv(
            [
                "distributor_id",
                "reported_name",
                "postal_code",
                "country",
                "partner_id",
                "method",
                "approved_on",
                "note",
            ],
            [
                [d, name, postal, country, pid, "manual", approved, note]
                for d, name, postal, country, pid, approved, note in _aliases(as_of)
            ],
        ),
        "products.csv": _csv(
            ["sku", "name", "family", "list_price", "currency"],
            [
                [sku, name, FAMILIES[sku], f"{price:.2f}", BASE_CURRENCY]
                for sku, (name, price) in PRODUCTS.items()
            ],
        ),
        "sku_map.csv": _csv(
            ["distributor_id", "distributor_sku", "sku", "units_per_distributor_unit"], sku_rows
        ),
        "fx_rates.csv": _csv(
            ["rate_date", "currency", "rate_to_base"],
            [
                [day.isoformat(), currency, f"{rate}"]
                for (day, currency), rate in sorted(_fx_rates(as_of).items())
            ],
        ),
        "quotas.csv": _csv(
            ["partner_id", "period", "target_base"],
            [[pid, period, f"{target}"] for (pid, period), target in _quotas(as_of).items()],
        ),
        "certifications.csv": _csv(
            ["partner_id", "certification", "earned_on", "expires_on"],
            [
                [pid, name, earned.isoformat(), expires.isoformat() if expires else ""]
                for pid, name, earned, expires in certifications(as_of)
            ],
        ),
        "tiers.yaml": _tiers_yaml(),
        "rebate_programs.yaml": _rebate_programs_yaml(as_of),
    }


def write_reference(folder: Path, as_of: date = DEFAULT_AS_OF) -> list[Path]:
    """Write the sample reference files into `folder` (created); returns their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, text in reference_files(as_of).items():
        path = folder / name
        path.write_text(text, encoding="utf-8", newline="")
        paths.append(path)
    return paths


SAMPLE_MARKER = ".sample-as-of"
"""Written beside a sample set by `write_sample_reference`: the as-of date the set is for."""


def write_sample_reference(folder: Path, as_of: date) -> list[Path]:
    """The demo's reference data: write the sample set for `as_of` into `folder` when the folder
    holds no CSV yet, or holds the sample set of another as-of date (its SAMPLE_MARKER says so), so
    a demo run weeks later gets certifications, programs and rates near its own weeks. Files of any
    other origin are never touched. Returns the files written (none when the folder was kept)."""
    marker = folder / SAMPLE_MARKER
    written_for = marker.read_text(encoding="utf-8").strip() if marker.is_file() else None
    if any(folder.glob("*.csv")) and written_for in (None, as_of.isoformat()):
        return []
    paths = write_reference(folder, as_of)
    marker.write_text(as_of.isoformat() + "\n", encoding="utf-8")
    return paths


def shipped_reference_dir() -> Path:
    """The copy shipped with the package (`sampledata/reference/`), identical to `write_reference`'s."""
    return Path(str(resources.files("sampledata") / "reference"))


def copy_reference(dest_dir: Path) -> list[Path]:
    """Copy the shipped reference files into `dest_dir` (a home's `reference/`); returns the copies."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    return [
        Path(shutil.copyfile(source, dest_dir / source.name))
        for source in sorted(shipped_reference_dir().iterdir())
        if source.suffix in (".csv", ".yaml")
    ]


def reference_truth(as_of: date = DEFAULT_AS_OF) -> ReferenceTruth:
    """What the sample reference data means, computed from the same tables the files come from."""
    resellers = tuple(
        ReportedReseller(distributor, name.strip(), site.postal_code, site.country, site.partner_id)
        for distributor, sites in SITES.items()
        for site in sites
        for name in site.names
    )
    partner_tiers = {}
    for partner in PARTNERS:
        tier, _, _, since = PROFILES[partner.partner_id]
        versions = [*EARLIER_VERSIONS.get(partner.partner_id, ()), (partner.legal_name, tier, since)]
        partner_tiers[partner.partner_id] = tuple(
            (start, versions[i + 1][2] if i + 1 < len(versions) else None, version_tier)
            for i, (_, version_tier, start) in enumerate(versions)
        )
    sku_map: dict[str, dict[str, tuple[str, int]]] = {
        distributor: {part: (sku, 1) for sku, part in skus.items()}
        for distributor, skus in DISTRIBUTOR_SKUS.items()
    }
    for distributor, part, sku, units in PACKS:
        sku_map[distributor][part] = (sku, units)
    return ReferenceTruth(
        as_of=as_of,
        base_currency=BASE_CURRENCY,
        reported_resellers=resellers,
        sku_map=sku_map,
        fx_rates=_fx_rates(as_of),
        quotas=_quotas(as_of),
        tiers=TIERS,
        certifications=certifications(as_of),
        expiring_certifications=tuple(
            (pid, name, expires)
            for pid, name, _, expires in certifications(as_of)
            if expires is not None and as_of <= expires <= as_of + timedelta(days=30)
        ),
        rebate_programs=rebate_programs(as_of),
        partner_tiers=partner_tiers,
    )
