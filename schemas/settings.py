"""Settings: where Throughline keeps its files, resolved once at launch from the environment.

The home folder (THROUGHLINE_HOME, default ~/.throughline) holds everything a deployment owns:

    feeds/       feed spec YAML files, one per distributor feed
    inbox/       watched folders, one per distributor: inbox/<distributor_id>/
    rejected/    inbox files that matched no spec or could not be read, with a .error.txt beside each
    landing/     every received file exactly as received, content-addressed by SHA-256 (immutable)
    warehouse/   Delta Lake tables and the DuckDB catalog of views (throughline.duckdb)
    dagster/     the Dagster instance (DAGSTER_HOME), runs, event logs and schedules
    work/        scratch space for loads in progress (safe to delete when nothing runs)
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, SecretStr

HOME_ENV = "THROUGHLINE_HOME"
CUSTOMER_KEY_SECRET_ENV = "THROUGHLINE_CUSTOMER_KEY_SECRET"
DEFAULT_HOME = Path("~/.throughline")


class ThroughlineSettings(BaseModel):
    """The resolved layout of one Throughline home folder."""

    model_config = ConfigDict(frozen=True)

    home: Path

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> ThroughlineSettings:
        """Resolve the home folder from THROUGHLINE_HOME (default ~/.throughline)."""
        env = os.environ if environ is None else environ
        raw = env.get(HOME_ENV) or str(DEFAULT_HOME)
        return cls(home=Path(raw).expanduser().resolve())

    @property
    def feeds_dir(self) -> Path:
        return self.home / "feeds"

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
    def warehouse_dir(self) -> Path:
        return self.home / "warehouse"

    @property
    def catalog_path(self) -> Path:
        return self.warehouse_dir / "throughline.duckdb"

    @property
    def dagster_home(self) -> Path:
        return self.home / "dagster"

    @property
    def work_dir(self) -> Path:
        return self.home / "work"

    def ensure_layout(self) -> None:
        """Create the home folder's sub-folders if they are missing."""
        for folder in (
            self.feeds_dir,
            self.inbox_dir,
            self.rejected_dir,
            self.landing_dir,
            self.warehouse_dir,
            self.dagster_home,
            self.work_dir,
        ):
            folder.mkdir(parents=True, exist_ok=True)


def customer_key_secret(environ: dict[str, str] | None = None) -> SecretStr:
    """The HMAC key for `end_customer_key`, from THROUGHLINE_CUSTOMER_KEY_SECRET only.

    Raises a RuntimeError that says how to set it; the secret itself never appears in a message.
    """
    env = os.environ if environ is None else environ
    value = env.get(CUSTOMER_KEY_SECRET_ENV, "")
    if len(value) < 16:
        raise RuntimeError(
            f"{CUSTOMER_KEY_SECRET_ENV} is not set (or shorter than 16 characters). Set it to a long random "
            "string, e.g. `export THROUGHLINE_CUSTOMER_KEY_SECRET=$(python3 -c 'import secrets; "
            "print(secrets.token_hex(32))')`; keep it stable, since end_customer_key values depend on it."
        )
    return SecretStr(value)
