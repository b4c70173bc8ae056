"""Routing: the one place that decides which distributor sent a file, which feed spec reads it,
why none does, and the file's report date (its partition). Every caller asks here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

from schemas.feed_spec import FeedSpec, SpecCatalog, validate_distributor_id

PARTITIONS_START = date(2020, 1, 1)
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def printable(name: str) -> str:
    """A file name safe for one log line: control characters (newlines too) shown escaped."""
    return _CONTROL_CHARACTERS.sub(lambda match: f"\\x{ord(match.group()):02x}", name)


@dataclass(frozen=True)
class Route:
    """Where a file goes: its distributor, the spec that reads it (None: why not), the report period
    its name declares (None when the spec has no period rule or the name does not say), and its
    report date (the partition: that period, else the day it arrived)."""

    distributor_id: str
    spec: FeedSpec | None
    reason: str | None
    report_date: date
    period_start: date | None = None


class RoutingError(ValueError):
    """A file that cannot be routed at all (no distributor can be told); the message says what to do."""


def distributor_of(path: Path, catalog: SpecCatalog, explicit: str | None, inbox_dir: Path) -> str:
    """Which distributor a file belongs to: given, its inbox folder, or the one spec its name matches."""
    if explicit:
        return validate_distributor_id(explicit)
    if inbox_folder_of(path, inbox_dir) is not None:
        return validate_distributor_id(path.parent.name)
    matching = sorted({spec.distributor_id for spec in catalog.specs.values() if spec.matches(path.name)})
    if len(matching) == 1:
        return matching[0]
    found = f" (it matches {', '.join(matching)})" if matching else ""
    raise RoutingError(
        f"{printable(str(path))}: cannot tell which distributor sent it{found}; "
        "pass --distributor ID or drop it in inbox/<distributor_id>/"
    )


def inbox_folder_of(path: Path, inbox_dir: Path) -> Path | None:
    """The inbox folder holding `path` (`inbox/<distributor_id>/`), or None when it is not in one."""
    parent = path.absolute().parent
    if parent.parent == inbox_dir.absolute():
        return parent
    return None


def refuse_unsafe_source(path: Path, inbox_dir: Path) -> str | None:
    """Why a file must not be received (a symlink, or something resolving outside its inbox), or None."""
    if path.is_symlink():
        return f"{printable(str(path))} is a symbolic link: only regular files are received"
    if not path.is_file():
        return f"{printable(str(path))} is not a regular file"
    folder = inbox_folder_of(path, inbox_dir)
    if folder is not None and path.resolve().parent != folder.resolve():
        return f"{printable(str(path))} resolves outside its inbox folder {folder}"
    return None


def spec_for(
    catalog: SpecCatalog, distributor_id: str, source_name: str
) -> tuple[FeedSpec | None, str | None]:
    """The distributor's spec whose file patterns match `source_name`, or (None, why not)."""
    disabled = catalog.disabled_distributors.get(distributor_id)
    if disabled:
        return None, (
            f"the feed spec of distributor '{distributor_id}' is invalid, so its files are rejected until "
            f"it is fixed:\n{disabled}"
        )
    mine = [
        catalog.specs[key]
        for key in sorted(catalog.specs)
        if catalog.specs[key].distributor_id == distributor_id
    ]
    for spec in mine:
        if spec.matches(source_name):
            return spec, None
    if not mine:
        return None, (
            f"no feed spec for distributor '{distributor_id}': add feeds/{distributor_id}.yaml "
            "(see README, 'Onboarding a distributor') or drop the file in the right inbox folder"
        )
    patterns = [pattern for spec in mine for pattern in spec.file_patterns]
    return None, (
        f"'{printable(source_name)}' matches none of distributor '{distributor_id}''s file patterns "
        f"{patterns}; rename the file or add its pattern to the feed spec's file_patterns"
    )


def report_date_of(spec: FeedSpec | None, source_name: str, received_at: datetime) -> date:
    """The partition date of a file: its report period's first day, else the day it arrived.

    Clamped to the partition range (a file dated in the future lands in today's partition).
    """
    chosen = period_of(spec, source_name) or received_at.astimezone(UTC).date()
    today = datetime.now(UTC).date()
    return min(max(chosen, PARTITIONS_START), today)


def period_of(spec: FeedSpec | None, source_name: str) -> date | None:
    """The report period a file's name declares, per its spec's period rule."""
    return spec.period.period_of(source_name) if spec and spec.period else None


def route(catalog: SpecCatalog, distributor_id: str, source_name: str, received_at: datetime) -> Route:
    spec, reason = spec_for(catalog, distributor_id, source_name)
    return Route(
        distributor_id,
        spec,
        reason,
        report_date_of(spec, source_name, received_at),
        period_of(spec, source_name),
    )
