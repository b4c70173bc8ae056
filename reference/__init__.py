"""Reference data and the 360-degree model's resolution: partners, products, SKU map, rates and programs.

`files` loads and validates the reference folder into `ReferenceData` (Pandera rules in `schemas`,
YAML shapes in `documents`); `partners` resolves reported resellers to partner_ids (name keys in
`names`); `skus` maps part numbers to vendor SKUs; `fx` converts amounts to the base currency.
Pure functions over Polars frames: storing, scheduling and the CLI belong to other packages.
"""

from reference.files import (
    DEFAULT_BASE_CURRENCY,
    FILES,
    ReferenceData,
    ReferenceDataError,
    load_reference,
    read_reference,
)
from reference.fx import convert
from reference.partners import resolve_partners
from reference.schemas import ReferenceProblem
from reference.skus import map_skus

__all__ = [
    "DEFAULT_BASE_CURRENCY",
    "FILES",
    "ReferenceData",
    "ReferenceDataError",
    "ReferenceProblem",
    "convert",
    "load_reference",
    "map_skus",
    "read_reference",
    "resolve_partners",
]
