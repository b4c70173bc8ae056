"""Settings: where Throughline keeps its files, resolved once at launch from the environment.

The home folder (THROUGHLINE_HOME, default ~/.throughline) holds everything a deployment owns:

    feeds/       feed spec YAML files, one per distributor feed
    reference/   reference data: partners, products, sku_map, fx_rates, quotas, tiers, ... (CSV, YAML)
    inbox/       watched folders, one per distributor: inbox/<distributor_id>/
    rejected/    inbox files that matched no spec or could not be read, with a .error.txt beside each
    landing/     every received file exactly as received, content-addressed by SHA-256 (immutable,
                 until `throughline retention` deletes it after `landing_retention_days` or
                 `throughline forget` replaces it with a redacted copy)
    channels/    what each pulled source (SFTP manifest, API watermark) has already given
    warehouse/   Delta Lake tables and the DuckDB catalog of views (throughline.duckdb)
    reports/     partner scorecards (partners/<partner_id>.html) and the vendor overview (index.html)
    dagster/     the Dagster instance (DAGSTER_HOME), runs, event logs and schedules
    work/        scratch space for loads in progress (safe to delete when nothing runs)
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from schemas.limits import ReadLimits
from schemas.rules import DEFAULT_MAX_FIELD_CHARS

HOME_ENV = "THROUGHLINE_HOME"
CUSTOMER_KEY_SECRET_ENV = "THROUGHLINE_CUSTOMER_KEY_SECRET"
BASE_CURRENCY_ENV = "THROUGHLINE_BASE_CURRENCY"
DEFAULT_BASE_CURRENCY = "USD"
LANDING_RETENTION_ENV = "THROUGHLINE_LANDING_RETENTION_DAYS"
DEFAULT_LANDING_RETENTION_DAYS = 730
"""Two years: a year-on-year comparison and a restatement of last year's reports can still be re-run
from landing; raw end-customer data is kept no longer (docs/privacy.md, "Retention")."""
DEFAULT_HOME = Path("~/.throughline")


class ThroughlineSettings(BaseModel):
    """The resolved layout of one Throughline home folder."""

    model_config = ConfigDict(frozen=True)

    home: Path
    limits: ReadLimits = ReadLimits()
    max_field_chars: int = DEFAULT_MAX_FIELD_CHARS
    quarantine_rate_warn: float = 0.05
    """Share of a load's records quarantined above which the load carries a warning."""
    base_currency: str = DEFAULT_BASE_CURRENCY
    """ISO 4217 code `net_amount_base` is in (THROUGHLINE_BASE_CURRENCY); `fx_rates` are rates to it."""
    landing_retention_days: int = Field(DEFAULT_LANDING_RETENTION_DAYS, ge=1)
    """How long a received file is kept in landing (THROUGHLINE_LANDING_RETENTION_DAYS): `throughline
    retention` deletes the files received longer ago. Their rows stay in the warehouse."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ThroughlineSettings:
        """Resolve the home folder from THROUGHLINE_HOME (default ~/.throughline), the base currency
        from THROUGHLINE_BASE_CURRENCY (default USD) and the landing retention from
        THROUGHLINE_LANDING_RETENTION_DAYS (default 730)."""
        env = os.environ if environ is None else environ
        raw = env.get(HOME_ENV) or str(DEFAULT_HOME)
        base = (env.get(BASE_CURRENCY_ENV) or DEFAULT_BASE_CURRENCY).strip().upper()
        retention = _retention_days(env.get(LANDING_RETENTION_ENV))
        return cls(
            home=Path(raw).expanduser().resolve(), base_currency=base, landing_retention_days=retention
        )

    @property
    def feeds_dir(self) -> Path:
        return self.home / "feeds"

    @property
    def reference_dir(self) -> Path:
        return self.home / "reference"

    @property
    def inbox_dir(self) -> Path:
        return self.home / "inbox"

    @property
    def rejected_dir(self) -> Path:
        return self.home / "rejected"

    @property
    def landing_dir(self) -> Path:
        return self.home / "landing"

    @property
    def channels_dir(self) -> Path:
        return self.home / "channels"

    @property
    def warehouse_dir(self) -> Path:
        return self.home / "warehouse"

    @property
    def reports_dir(self) -> Path:
        return self.home / "reports"

    @property
    def catalog_path(self) -> Path:
        return self.warehouse_dir / "throughline.duckdb"

    @property
    def dagster_home(self) -> Path:
        return self.home / "dagster"

    @property
    def work_dir(self) -> Path:
        return self.home / "work"

    @property
    def lock_dir(self) -> Path:
        return self.work_dir / "locks"

    @property
    def tables_dir(self) -> Path:
        return self.warehouse_dir / "tables"

    def ensure_layout(self) -> None:
        """Create the home folder's sub-folders if they are missing."""
        for folder in (
            self.feeds_dir,
            self.reference_dir,
            self.inbox_dir,
            self.rejected_dir,
            self.landing_dir,
            self.channels_dir,
            self.warehouse_dir,
            self.dagster_home,
            self.work_dir,
        ):
            folder.mkdir(parents=True, exist_ok=True)


class SettingsError(ValueError):
    """An environment variable holds a value Throughline cannot use; the message names it."""


def _retention_days(text: str | None) -> int:
    if text is None or not text.strip():
        return DEFAULT_LANDING_RETENTION_DAYS
    try:
        days = int(text.strip())
    except ValueError:
        days = 0
    if days < 1:
        raise SettingsError(
            f"{LANDING_RETENTION_ENV} must be a whole number of days, at least 1 (got {text.strip()!r}); "
            f"unset it for the default, {DEFAULT_LANDING_RETENTION_DAYS}"
        )
    return days


DEMO_KEY_FILE = "demo-customer-key.secret"
"""Written by `throughline demo` (and `make dev` on a demo home) only: a demo's key, never production's."""


class CustomerKeyError(RuntimeError):
    """No end-customer key can be resolved; the message says exactly what to set."""


@dataclass(frozen=True)
class CustomerKey:
    """The HMAC key of `end_customer_key` and where it came from (`environment` or `demo key file`)."""

    secret: SecretStr
    source: str

    @property
    def fingerprint(self) -> str:
        """Identifies the key without revealing it: the warehouse records it to refuse a different key."""
        digest = hmac.new(self.secret.get_secret_value().encode(), b"throughline-key-check", "sha256")
        return digest.hexdigest()[:16]


def resolve_customer_key(
    settings: ThroughlineSettings, environ: Mapping[str, str] | None = None
) -> CustomerKey:
    """The end-customer key, resolved the same way by the CLI, the demo, `make dev` and Dagster.

    THROUGHLINE_CUSTOMER_KEY_SECRET when set (production); otherwise the demo key file that
    `throughline demo` wrote in this home. Raises CustomerKeyError saying what to set.
    """
    env = os.environ if environ is None else environ
    value = env.get(CUSTOMER_KEY_SECRET_ENV, "")
    if value:
        if len(value) < 16:
            raise CustomerKeyError(
                f"{CUSTOMER_KEY_SECRET_ENV} is shorter than 16 characters: set it to a long random string"
            )
        return CustomerKey(SecretStr(value), "environment")
    demo_file = settings.home / DEMO_KEY_FILE
    if demo_file.is_file():
        return CustomerKey(SecretStr(demo_file.read_text(encoding="utf-8").strip()), "demo key file")
    raise CustomerKeyError(
        f"{CUSTOMER_KEY_SECRET_ENV} is not set. Set it to the key this warehouse's end_customer_key values "
        "were made with; for a new warehouse, a long random string, e.g. `export "
        f"{CUSTOMER_KEY_SECRET_ENV}=$(python3 -c 'import secrets; print(secrets.token_hex(32))')`, and keep "
        f"it stable. (A demo home made by `make run` keeps its key in {demo_file}.)"
    )


def customer_key_secret(environ: dict[str, str] | None = None) -> SecretStr:
    """The key from the environment only (kept for callers without a home); see `resolve_customer_key`."""
    settings = ThroughlineSettings.from_env(environ)
    return resolve_customer_key(settings, environ).secret
