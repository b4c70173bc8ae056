"""The feed-spec reference, generated from the pydantic models of `schemas.feed_spec`.

`python -m schemas.specdoc > docs/feed-spec.md` writes it; a test holds the committed file equal to
`render_reference()`, so the reference cannot drift from the code. Only rendering belongs here:
what a spec means (fields, defaults, constraints, descriptions) is declared on the models.
"""

from __future__ import annotations

import inspect
import json
import re
import sys
import types
import typing
from pathlib import Path
from typing import Annotated, Any, Literal

import annotated_types
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from schemas.feed_spec import (
    CATALOG_CHECKS,
    CROSS_FIELD_CHECKS,
    END_CUSTOMER_IDENTITY_FIELDS,
    INVENTORY_FIELDS,
    NUMERIC_FIELDS,
    SELLOUT_FIELDS,
    FeedSpec,
)

EXAMPLE_SPEC = Path(__file__).resolve().parent.parent / "sampledata" / "feeds" / "northwind_us.yaml"
COMMAND = "python -m schemas.specdoc > docs/feed-spec.md"


def _strip_annotated(annotation: Any) -> tuple[Any, list[Any]]:
    """The bare type and the metadata of any `Annotated` wrappers around it."""
    metadata: list[Any] = []
    while typing.get_origin(annotation) is Annotated:
        annotation, *extra = typing.get_args(annotation)
        metadata.extend(extra)
    return annotation, metadata


def _members(annotation: Any) -> list[Any]:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return list(typing.get_args(annotation))
    return []


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _anchor(model: type[BaseModel]) -> str:
    return model.__name__.lower()


def _type_text(annotation: Any) -> str:
    """A type in words, with links to the sections of nested models."""
    annotation, _ = _strip_annotated(annotation)
    members = _members(annotation)
    if members:
        shown = [_type_text(member) for member in members if member is not type(None)]
        text = " or ".join(dict.fromkeys(shown))
        return f"{text} or null" if type(None) in members else text
    origin = typing.get_origin(annotation)
    if origin is Literal:
        return "text" if all(isinstance(v, str) for v in typing.get_args(annotation)) else "value"
    if origin is list:
        return f"list of {_type_text(typing.get_args(annotation)[0])}"
    if origin is dict:
        key, value = typing.get_args(annotation)
        return f"mapping of {_type_text(key)} to {_type_text(value)}"
    if _is_model(annotation):
        return f"[{annotation.__name__}](#{_anchor(annotation)})"
    return {str: "text", int: "whole number", float: "number", bool: "true or false"}.get(
        annotation, getattr(annotation, "__name__", str(annotation))
    )


def _constraints(metadata: list[Any], unit: str = "") -> list[str]:
    """Ranges, lengths and patterns of annotated-types / pydantic metadata, in words."""
    found: list[str] = []
    for item in metadata:
        if isinstance(item, FieldInfo):
            found.extend(_constraints(item.metadata, unit))
        elif isinstance(item, annotated_types.Ge):
            found.append(f">= {item.ge}")
        elif isinstance(item, annotated_types.Gt):
            found.append(f"> {item.gt}")
        elif isinstance(item, annotated_types.Le):
            found.append(f"<= {item.le}")
        elif isinstance(item, annotated_types.Lt):
            found.append(f"< {item.lt}")
        elif isinstance(item, annotated_types.MinLen):
            found.append(f"at least {item.min_length} {unit}".rstrip())
        elif isinstance(item, annotated_types.MaxLen):
            found.append(f"at most {item.max_length} {unit}".rstrip())
        elif getattr(item, "pattern", None):
            found.append(f"pattern `{item.pattern}`")
    return found


def _literal_text(annotation: Any) -> str | None:
    values = typing.get_args(annotation)
    return ", ".join(
        f"`{json.dumps(value)}`"
        if (isinstance(value, str) and value.strip() != value) or value == ""
        else f"`{value}`"
        for value in values
    )


def _allowed(annotation: Any, metadata: list[Any]) -> str:
    """Allowed values of a field: its literals, ranges and patterns, and those of keys and items."""
    annotation, inner = _strip_annotated(annotation)
    members = [m for m in _members(annotation) if m is not type(None)]
    bare = _strip_annotated(members[0])[0] if len(members) == 1 else annotation
    unit = "item(s)" if typing.get_origin(bare) is list else "character(s)" if bare is str else ""
    parts = _constraints([*metadata, *inner], unit)
    if members and all(_is_model(m) for m in members) and len(members) > 1:
        tags = [_literal_text(m.model_fields["type"].annotation) for m in members]
        parts.append("`type`: " + ", ".join(tags))
    elif len(members) == 1:
        annotation, inner = _strip_annotated(members[0])
        parts.extend(_constraints(inner, unit))
    origin = typing.get_origin(annotation)
    if origin is Literal:
        parts.insert(0, _literal_text(annotation) or "")
    elif origin is list:
        item = _allowed(typing.get_args(annotation)[0], [])
        if item:
            parts.append(f"items: {item}")
    elif origin is dict:
        key, value = typing.get_args(annotation)
        key_text, value_text = _allowed(key, []), _allowed(value, [])
        if key_text:
            parts.append(f"keys: {key_text}")
        if value_text:
            parts.append(f"values: {value_text}")
    return "; ".join(part for part in parts if part)


def _default(field: FieldInfo) -> str:
    if field.is_required():
        return "required"
    factory = field.default_factory
    value = factory() if factory is not None else field.default  # type: ignore[call-arg]
    if value is PydanticUndefined:
        return "required"
    if isinstance(value, BaseModel):
        return "(all defaults)"
    return f"`{json.dumps(value, ensure_ascii=False)}`"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _nested_models(annotation: Any) -> list[type[BaseModel]]:
    """The models inside an annotation (through unions, lists and mappings), in order."""
    annotation, _ = _strip_annotated(annotation)
    if _is_model(annotation):
        return [annotation]
    if typing.get_origin(annotation) is Literal:
        return []
    return [model for arg in typing.get_args(annotation) for model in _nested_models(arg)]


def _collect_models(model: type[BaseModel], found: dict[type[BaseModel], list[str]], path: str = "") -> None:
    """Every model reachable from `model`, in order of first appearance, with the keys that hold it."""
    for name, field in model.model_fields.items():
        key = f"{path}.{field.alias or name}" if path else field.alias or name
        for nested in _nested_models(field.annotation):
            place = f"`{key}`"
            if "type" in nested.model_fields:
                place += (
                    f" with `type: {' | '.join(typing.get_args(nested.model_fields['type'].annotation))}`"
                )
            first = nested not in found
            found.setdefault(nested, []).append(place)
            if first:
                _collect_models(nested, found, key)


def spec_models() -> dict[type[BaseModel], list[str]]:
    """Every model of a feed spec, FeedSpec first, each with the keys (and format types) that hold it."""
    models: dict[type[BaseModel], list[str]] = {FeedSpec: []}
    _collect_models(FeedSpec, models)
    return models


def _model_section(model: type[BaseModel], used_at: list[str]) -> list[str]:
    title = "FeedSpec (the top level of a spec file)" if model is FeedSpec else model.__name__
    lines = [f"## {title}", ""]
    if model is not FeedSpec:
        lines += ["Used at: " + ", ".join(used_at), ""]
    lines += [inspect.cleandoc(model.__doc__ or ""), ""]
    lines += ["| Key | Type | Default | Allowed | Description |", "| --- | --- | --- | --- | --- |"]
    for name, field in model.model_fields.items():
        key = field.alias or name
        row = [
            f"`{key}`",
            _type_text(field.annotation),
            _default(field),
            _allowed(field.annotation, list(field.metadata)),
            field.description or "",
        ]
        lines.append("| " + " | ".join(_cell(cell) for cell in row) + " |")
    lines.append("")
    return lines


def render_reference() -> str:
    """The Markdown reference of every feed spec model, with the example spec."""
    models = spec_models()
    lines = [
        "# Feed spec reference",
        "",
        f"<!-- Generated from schemas/feed_spec.py by `{COMMAND}`; do not edit by hand. -->",
        "",
        "One YAML file per feed in `$THROUGHLINE_HOME/feeds/` says everything a distributor's file means.",
        "Unknown keys are errors, and `throughline feeds check` lists every problem of every spec, each",
        "as `<file>: <location>: <problem>; <what is allowed / what to do>`. A spec with problems disables",
        "its distributor (its files are rejected with the spec error) and no other.",
        "",
        "Contents: " + ", ".join(f"[{model.__name__}](#{_anchor(model)})" for model in models),
        "",
    ]
    for model, used_at in models.items():
        section = _model_section(model, used_at)
        section[0] = f'<a id="{_anchor(model)}"></a>\n\n{section[0]}'
        lines += section
    lines += [
        "## Canonical fields",
        "",
        "The keys of `columns` and `constants`, by `dataset`:",
        "",
        "- `sellout`: " + ", ".join(f"`{name}`" for name in SELLOUT_FIELDS),
        "- `inventory`: " + ", ".join(f"`{name}`" for name in INVENTORY_FIELDS),
        "",
        "Numbers (" + ", ".join(f"`{name}`" for name in NUMERIC_FIELDS) + ") follow `parsing`. End-customer",
        "identity (" + ", ".join(f"`{name}`" for name in END_CUSTOMER_IDENTITY_FIELDS) + ") is hashed into",
        "`end_customer_key` and never stored.",
        "",
        "## Checks across fields",
        "",
        *[f"- {check}" for check in CROSS_FIELD_CHECKS],
        "",
        "## Checks across spec files",
        "",
        *[f"- {check}" for check in CATALOG_CHECKS],
        "",
        "## Example",
        "",
        f"`sampledata/feeds/{EXAMPLE_SPEC.name}`:",
        "",
        "```yaml",
        EXAMPLE_SPEC.read_text(encoding="utf-8").rstrip("\n"),
        "```",
    ]
    text = "\n".join(lines) + "\n"
    return re.sub(r"\n{3,}", "\n\n", text)


def main() -> None:
    """Write the reference to standard output."""
    sys.stdout.write(render_reference())


if __name__ == "__main__":
    main()
