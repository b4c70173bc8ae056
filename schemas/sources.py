"""Where a feed's files come from: the `source:` section of a feed spec (SFTP server or HTTP API).

Only the typed settings belong here, with the checks a YAML can fail: secrets are given as the
NAMES of environment variables (read by `connectors/` at connect time, never stored), and a
server's host key is pinned in the spec. Connecting, listing and downloading live in `connectors/`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

ENV_NAME_PATTERN = r"^[A-Z_][A-Z0-9_]*$"
ENV_NAME_RULE = (
    "the NAME of an environment variable (upper-case letters, digits and '_', e.g. ACME_SFTP_PASSWORD), "
    "never the secret itself"
)

SSH_KEY_TYPES: tuple[str, ...] = (
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
)
"""Host key types a pinned known_hosts line may hold."""

_FINGERPRINT = re.compile(r"^SHA256:[A-Za-z0-9+/]{43}=?$")
_CRON_FIELD = re.compile(r"^[0-9A-Za-z*/,?LW#-]+$")
_LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}


def _env_name(value: str | None, field: str) -> str | None:
    """`value` when it is a plausible environment variable NAME; a ValueError that never echoes it."""
    if value is None:
        return None
    if not re.fullmatch(ENV_NAME_PATTERN, value):
        # The value is not echoed: if someone pasted the secret here, it must not reach a log.
        raise ValueError(f"{field} must be {ENV_NAME_RULE}; the value given is not such a name")
    return value


@dataclass(frozen=True)
class HostKeyPin:
    """A pinned SSH host key: the full public key (type and blob), or only its SHA256 fingerprint."""

    fingerprint: str
    key_type: str | None = None
    blob: bytes | None = None

    @classmethod
    def parse(cls, text: str) -> HostKeyPin:
        """A pin from a known_hosts line, a public key line ('ssh-ed25519 AAAA...'), or 'SHA256:...'."""
        tokens = text.split()
        if len(tokens) == 1 and tokens[0].startswith("SHA256:"):
            if not _FINGERPRINT.fullmatch(tokens[0]):
                raise ValueError(
                    "host_key: a fingerprint is 'SHA256:' and 43 base64 characters, as `ssh-keygen -lf` prints it"
                )
            return cls(fingerprint=tokens[0].rstrip("="))
        if tokens and tokens[0].upper().startswith("MD5:"):
            raise ValueError(
                "host_key: MD5 fingerprints are not accepted; give the SHA256 fingerprint or the known_hosts line "
                "(`ssh-keyscan -p PORT HOST` prints it)"
            )
        if tokens and tokens[0].startswith("@"):
            raise ValueError(
                f"host_key: known_hosts markers ({tokens[0]}) are not supported; give the server's own key"
            )
        for index, token in enumerate(tokens[:-1]):
            if token in SSH_KEY_TYPES:
                try:
                    blob = base64.b64decode(tokens[index + 1], validate=True)
                except (binascii.Error, ValueError):
                    raise ValueError(f"host_key: the {token} key is not valid base64") from None
                length = int.from_bytes(blob[:4], "big") if len(blob) >= 4 else -1
                if blob[4 : 4 + length].decode("ascii", "replace") != token:
                    raise ValueError(f"host_key: the key data does not hold a {token} key")
                return cls(fingerprint=fingerprint_of(blob), key_type=token, blob=blob)
        raise ValueError(
            "host_key must be a known_hosts line ('host ssh-ed25519 AAAA...'), a public key "
            "('ssh-ed25519 AAAA...') or a SHA256 fingerprint ('SHA256:...'); key types: "
            + ", ".join(SSH_KEY_TYPES)
        )


def fingerprint_of(blob: bytes) -> str:
    """The OpenSSH SHA256 fingerprint of a public key blob, as `ssh-keygen -lf` prints it."""
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode("ascii").rstrip("=")


class SourceModel(BaseModel):
    """Base for source models: unknown keys are errors, so a typo never passes silently."""

    # A value in the wrong place may be a pasted secret: errors never echo what was given.
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)


class SftpSource(SourceModel):
    """A distributor's SFTP server: files are pulled from one remote folder once complete."""

    type: Literal["sftp"] = Field(description="selects this source")
    host: str = Field(min_length=1, description="the server's host name or IP address")
    port: int = Field(22, ge=1, le=65535, description="the server's TCP port")
    username: str = Field(min_length=1, description="the account to log in as")
    password_env: str | None = Field(
        None,
        description="NAME of the environment variable holding the password (never the password itself)",
    )
    private_key_env: str | None = Field(
        None,
        description=(
            "NAME of the environment variable holding the private key: either its PEM/OpenSSH text "
            "(starting with '-----BEGIN') or the path of the key file; tried before the password"
        ),
    )
    private_key_passphrase_env: str | None = Field(
        None, description="NAME of the environment variable holding the private key's passphrase, if any"
    )
    remote_dir: str = Field(min_length=1, description="the remote folder the distributor drops files into")
    include: list[str] = Field(
        default_factory=lambda: ["*"],
        min_length=1,
        description="glob patterns of file names to take (case-insensitive), e.g. 'NW_*.csv'",
    )
    exclude: list[str] = Field(
        default_factory=list, description="glob patterns of file names never to take, even if included"
    )
    host_key: str = Field(
        description=(
            "the server's host key, pinned: a known_hosts line (`ssh-keyscan -p PORT HOST` prints it), "
            "a public key 'ssh-ed25519 AAAA...', or a fingerprint 'SHA256:...'; an unknown or changed key "
            "is refused, nothing is ever auto-accepted"
        )
    )
    completeness: Literal["stable", "ready_marker", "part_suffix"] = Field(
        "stable",
        description=(
            "when a file is complete: 'stable' = size and mtime unchanged across two looks; "
            "'ready_marker' = a '<name>.ready' file is present; 'part_suffix' = uploads are named "
            "'<name>.part' until renamed, so '*.part' is ignored"
        ),
    )
    archive_dir: str | None = Field(
        None,
        description="remote folder a file is moved to once its bytes are safe in landing; null leaves it",
    )
    timeout_seconds: float = Field(
        30.0, gt=0, le=3600, description="connect, handshake and per-read timeout in seconds"
    )
    max_retries: int = Field(
        3,
        ge=0,
        le=20,
        description="retries after a timeout or disconnect (never after an auth or host-key error)",
    )
    max_connections_per_host: int = Field(
        2, ge=1, le=32, description="most connections open at once to this host (backfills included)"
    )
    poll_interval_seconds: int = Field(
        300, ge=10, description="how often the server is looked at (two looks decide 'stable')"
    )

    @field_validator("password_env", "private_key_env", "private_key_passphrase_env")
    @classmethod
    def _names_not_values(cls, value: str | None, info: ValidationInfo) -> str | None:
        return _env_name(value, str(info.field_name))

    @field_validator("host_key")
    @classmethod
    def _host_key_parses(cls, value: str) -> str:
        HostKeyPin.parse(value)
        return value.strip()

    @field_validator("include", "exclude")
    @classmethod
    def _patterns_are_names(cls, patterns: list[str]) -> list[str]:
        for pattern in patterns:
            if not pattern or "/" in pattern or "\\" in pattern:
                raise ValueError(f"{pattern!r}: a pattern matches file names only (no '/' or '\\\\')")
        return patterns

    @model_validator(mode="after")
    def _some_credential(self) -> SftpSource:
        if not self.password_env and not self.private_key_env:
            raise ValueError("an sftp source needs password_env or private_key_env (or both)")
        return self

    @property
    def host_key_pin(self) -> HostKeyPin:
        """The pinned host key, parsed."""
        return HostKeyPin.parse(self.host_key)

    @property
    def endpoint(self) -> str:
        """'host:port', for messages and per-host limits."""
        return f"{self.host}:{self.port}"


class HttpApiSource(SourceModel):
    """A distributor's HTTP API: records pulled page by page, only what changed since the last pull."""

    type: Literal["api"] = Field(description="selects this source")
    base_url: str = Field(
        description="scheme and host, e.g. 'https://api.example.com' (plain http only for loopback addresses)"
    )
    path: str = Field("/", description="the endpoint's path, e.g. '/v1/sellout'")
    token_env: str = Field(
        description="NAME of the environment variable holding the API token (never the token itself)"
    )
    auth_header: str = Field("Authorization", min_length=1, description="the header that carries the token")
    auth_scheme: str | None = Field(
        "Bearer", description="written before the token in the header ('Bearer'); null sends the bare token"
    )
    query: dict[str, str] = Field(
        default_factory=dict, description="fixed query parameters sent with every request (no secrets)"
    )
    pagination: Literal["cursor", "page"] = Field(
        "cursor",
        description="'cursor': each page names the next (cursor_path); 'page': numbered pages until a short one",
    )
    page_param: str = Field("page", description="query parameter of the page number (pagination: page)")
    first_page: int = Field(1, ge=0, description="number of the first page (pagination: page)")
    page_size_param: str | None = Field(
        "page_size", description="query parameter of the page size; null when the API fixes it"
    )
    page_size: int = Field(500, ge=1, le=100_000, description="records asked for per page")
    cursor_param: str = Field(
        "cursor", description="query parameter that sends the cursor (pagination: cursor)"
    )
    cursor_path: str = Field(
        "next_cursor",
        description="dotted path in a page's body to the next cursor; missing, null or '' ends the pull",
    )
    records_path: str = Field(
        "data", description="dotted path in a page's body to its array of records ('' for a bare array)"
    )
    watermark_param: str | None = Field(
        None, description="query parameter asking only for records changed since the watermark"
    )
    watermark_path: str | None = Field(
        None,
        description="dotted path in each record to its change timestamp; the greatest becomes the watermark",
    )
    timeout_seconds: float = Field(30.0, gt=0, le=3600, description="connect and read timeout per request")
    max_retries: int = Field(
        5, ge=0, le=20, description="retries of one request after a timeout, 429 or 5xx (then the pull fails)"
    )
    max_retry_wait_seconds: float = Field(
        120.0, gt=0, description="longest wait between retries, whatever a Retry-After header asks"
    )
    max_pages: int = Field(10_000, ge=1, description="a pull stops with an error after this many pages")
    schedule: str = Field(
        "0 6 * * *",
        description="when to pull: a cron expression of five fields (minute hour day month weekday)",
    )
    landing_name: str = Field(
        "api_pull_{pulled_at}.jsonl",
        description=(
            "name of the file a pull lands as; '{pulled_at}' becomes the UTC time (20250102T060000Z). "
            "The feed's file_patterns must match it"
        ),
    )

    @field_validator("token_env")
    @classmethod
    def _name_not_value(cls, value: str) -> str:
        return _env_name(value, "token_env") or value

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("base_url must be 'https://host[:port]'")
        if parts.username or parts.password:
            raise ValueError("base_url must not carry credentials; use token_env")
        if parts.query or parts.fragment:
            raise ValueError("base_url takes no query or fragment; use `query` for fixed parameters")
        if parts.scheme == "http" and parts.hostname not in _LOOPBACK_HOSTS:
            raise ValueError("plain http would send the token in clear: use https (http only for 127.0.0.1)")
        return value.rstrip("/")

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        if not value.startswith("/") or "?" in value or "#" in value:
            raise ValueError("path must start with '/' and hold no query (use `query`)")
        return value

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str) -> str:
        fields = value.split()
        if len(fields) != 5 or not all(_CRON_FIELD.fullmatch(field) for field in fields):
            raise ValueError("schedule must be a cron expression of five fields, e.g. '0 6 * * *'")
        return value

    @field_validator("landing_name")
    @classmethod
    def _landing_name(cls, value: str) -> str:
        if "{pulled_at}" not in value or "/" in value or "\\" in value or value.startswith("."):
            raise ValueError(
                "landing_name must be a file name holding '{pulled_at}', e.g. 'acme_{pulled_at}.jsonl'"
            )
        return value

    @model_validator(mode="after")
    def _watermark_pair(self) -> HttpApiSource:
        if (self.watermark_param is None) != (self.watermark_path is None):
            raise ValueError("watermark_param and watermark_path go together: set both or neither")
        return self


Source = Annotated[SftpSource | HttpApiSource, Field(discriminator="type")]
"""A feed's `source:` section, chosen by its `type` ('sftp' or 'api')."""
