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

Landing and the Delta tables may live on an S3-compatible object store instead
(THROUGHLINE_WAREHOUSE_URI=s3://bucket/prefix, and optionally THROUGHLINE_LANDING_URI): the endpoint,
region and credentials then come from the standard AWS_* variables (`ObjectStoreSettings`), held as
secrets and never logged. The home folder still holds everything else, the catalog file and the
lock files included (docs/deploy.md, "Object storage").
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
WAREHOUSE_URI_ENV = "THROUGHLINE_WAREHOUSE_URI"
LANDING_URI_ENV = "THROUGHLINE_LANDING_URI"
OBJECT_STORE_SCHEMES = ("s3://",)
DEFAULT_AWS_REGION = "us-east-1"


class ObjectStoreSettings(BaseModel):
    """How to reach the S3-compatible store of a remote warehouse: resolved at launch from the standard
    AWS variables, the secrets held as `SecretStr` (never in a repr, a log line or run config).

    AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL (unset: AWS S3 itself), AWS_REGION or AWS_DEFAULT_REGION
    (default us-east-1), AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN (unset: the
    writers' own credential chain, e.g. an instance or pod role), AWS_S3_ADDRESSING_STYLE (`path`,
    the default for a custom endpoint, or `virtual`).
    """

    model_config = ConfigDict(frozen=True)

    endpoint_url: str | None = None
    region: str = DEFAULT_AWS_REGION
    access_key_id: SecretStr | None = None
    secret_access_key: SecretStr | None = None
    session_token: SecretStr | None = None
    virtual_addressing: bool = False

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> ObjectStoreSettings:
        def value(*names: str) -> str | None:
            return next((environ[name].strip() for name in names if (environ.get(name) or "").strip()), None)

        def secret(name: str) -> SecretStr | None:
            found = value(name)
            return SecretStr(found) if found else None

        endpoint = value("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")
        if endpoint and not endpoint.startswith(("http://", "https://")):
            raise SettingsError(f"AWS_ENDPOINT_URL must start with http:// or https:// (got {endpoint!r})")
        style = (value("AWS_S3_ADDRESSING_STYLE") or ("path" if endpoint else "virtual")).lower()
        if style not in ("path", "virtual"):
            raise SettingsError(f"AWS_S3_ADDRESSING_STYLE must be `path` or `virtual` (got {style!r})")
        return cls(
            endpoint_url=endpoint.rstrip("/") if endpoint else None,
            region=value("AWS_REGION", "AWS_DEFAULT_REGION") or DEFAULT_AWS_REGION,
            access_key_id=secret("AWS_ACCESS_KEY_ID"),
            secret_access_key=secret("AWS_SECRET_ACCESS_KEY"),
            session_token=secret("AWS_SESSION_TOKEN"),
            virtual_addressing=style == "virtual",
        )


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
    warehouse_uri: str | None = None
    """Where the Delta tables live when not under the home folder (THROUGHLINE_WAREHOUSE_URI,
    `s3://bucket/prefix`): the tables in `<prefix>/tables/`, landing in `<prefix>/landing/`."""
    landing_uri: str | None = None
    """Landing somewhere else on the same store (THROUGHLINE_LANDING_URI, `s3://bucket/prefix`)."""
    object_store: ObjectStoreSettings | None = None
    """How to reach the store of `warehouse_uri` (the AWS_* variables); None for a local warehouse."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ThroughlineSettings:
        """Resolve the home folder from THROUGHLINE_HOME (default ~/.throughline), the base currency
        from THROUGHLINE_BASE_CURRENCY (default USD), the landing retention from
        THROUGHLINE_LANDING_RETENTION_DAYS (default 730) and an object-store warehouse from
        THROUGHLINE_WAREHOUSE_URI, THROUGHLINE_LANDING_URI and the AWS_* variables."""
        env = os.environ if environ is None else environ
        raw = env.get(HOME_ENV) or str(DEFAULT_HOME)
        return cls.for_home(Path(raw), env)

    @classmethod
    def for_home(cls, home: Path, environ: Mapping[str, str] | None = None) -> ThroughlineSettings:
        """The settings of the home folder `home`, everything else resolved as `from_env` does."""
        env = os.environ if environ is None else environ
        base = (env.get(BASE_CURRENCY_ENV) or DEFAULT_BASE_CURRENCY).strip().upper()
        retention = _retention_days(env.get(LANDING_RETENTION_ENV))
        warehouse_uri = _object_store_uri(env, WAREHOUSE_URI_ENV)
        landing_uri = _object_store_uri(env, LANDING_URI_ENV)
        if landing_uri and not warehouse_uri:
            raise SettingsError(
                f"{LANDING_URI_ENV} is set but {WAREHOUSE_URI_ENV} is not: landing moves to object storage "
                f"together with the tables; set {WAREHOUSE_URI_ENV} too (e.g. s3://bucket/throughline)"
            )
        return cls(
            home=home.expanduser().resolve(),
            base_currency=base,
            landing_retention_days=retention,
            warehouse_uri=warehouse_uri,
            landing_uri=landing_uri,
            object_store=ObjectStoreSettings.from_env(env) if warehouse_uri else None,
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


def _object_store_uri(environ: Mapping[str, str], name: str) -> str | None:
    """An `s3://bucket/prefix` location from the environment (no trailing slash), or None when unset."""
    text = (environ.get(name) or "").strip()
    if not text:
        return None
    bucket = text.removeprefix("s3://").split("/", 1)[0]
    if not text.startswith(OBJECT_STORE_SCHEMES) or not bucket:
        raise SettingsError(
            f"{name} must be an S3 location, s3://bucket or s3://bucket/prefix (got {text!r}); unset it to "
            "keep the warehouse in the home folder"
        )
    return text.rstrip("/")


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
