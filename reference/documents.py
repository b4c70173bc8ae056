"""The YAML reference documents, `tiers.yaml` and `rebate_programs.yaml`, as pydantic models.

Only the shape of one document lives here (types, allowed values, what one entry needs); checks
across files (a program's SKUs exist in products.csv, its tiers in tiers.yaml) are Pandera
checks in `reference.schemas`, so every error reads the same way. Amounts are in the base currency.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

NonEmpty = Annotated[str, Field(min_length=1, pattern=r"\S")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Tier(_Strict):
    """One tier: the revenue and certifications a partner needs to qualify for it."""

    tier: NonEmpty
    min_revenue_t12m: Annotated[Decimal, Field(ge=0, max_digits=18, decimal_places=2)] = Field(
        description="trailing-12-month revenue in the base currency needed to qualify"
    )
    certifications: list[NonEmpty] = Field(
        default_factory=list, description="certifications a partner must hold (unexpired) to qualify"
    )


class TiersDocument(_Strict):
    """`tiers.yaml`: the tiers lowest first (the list order is the rank)."""

    tiers: list[Tier]


class PercentAboveThreshold(_Strict):
    """`percent` of the covered revenue above `threshold` (per partner, over the program period)."""

    type: Literal["percent_above_threshold"]
    percent: Annotated[Decimal, Field(gt=0, le=100, max_digits=9, decimal_places=4)]
    threshold: Annotated[Decimal, Field(ge=0, max_digits=18, decimal_places=2)] = Decimal(0)


class GrowthKicker(_Strict):
    """`percent` of the covered revenue when it grew by at least `min_growth_percent` over the
    baseline: the same-length period just before the program (`previous_period`) or a year earlier
    (`prior_year`)."""

    type: Literal["growth_kicker"]
    percent: Annotated[Decimal, Field(gt=0, le=100, max_digits=9, decimal_places=4)]
    min_growth_percent: Annotated[Decimal, Field(ge=0, max_digits=9, decimal_places=4)]
    baseline: Literal["previous_period", "prior_year"] = "previous_period"


Rule = Annotated[PercentAboveThreshold | GrowthKicker, Field(discriminator="type")]


class RebateProgram(_Strict):
    """One rebate program: what it covers, when, for which tiers, and its rule."""

    program_id: NonEmpty
    name: NonEmpty
    skus: list[NonEmpty] = Field(default_factory=list, description="vendor SKUs covered")
    families: list[NonEmpty] = Field(default_factory=list, description="product families covered")
    period_start: date
    period_end: date
    eligible_tiers: list[NonEmpty] = Field(min_length=1)
    rule: Rule

    @model_validator(mode="after")
    def _covers_something(self) -> RebateProgram:
        if not self.skus and not self.families:
            raise ValueError("a program covers `skus`, `families` or both; neither is given")
        return self


class RebateProgramsDocument(_Strict):
    """`rebate_programs.yaml`: the list of programs."""

    programs: list[RebateProgram]


def describe(error: ValidationError) -> list[tuple[str, str]]:
    """Each pydantic error of one entry as (field path, message)."""
    out: list[tuple[str, str]] = []
    for item in error.errors():
        # Drop the union tag pydantic puts in a discriminated rule's path ("rule.growth_kicker.percent").
        path = ".".join(
            str(part) for part in item["loc"] if part not in ("percent_above_threshold", "growth_kicker")
        )
        message = str(item["msg"]).removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown key"
        elif item["type"] == "missing":
            message = "required key is missing"
        elif "input" in item and item["type"] not in ("model_type", "list_type", "model_attributes_type"):
            message = f"{item['input']!r}: {message}"
        out.append((path, message))
    return out
