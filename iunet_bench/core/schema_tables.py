"""The configuration page's tables, from the schemas (`core.schema`): each key's default, meaning and allowed
values from its field's description, type, bounds and default.

- `markdown_table(cls, prefix)`: the table of a group (one generator for every group;
  `python -m iunet_bench.tasks.reference` writes them into docs/reference/configuration.md);
- `describe_type(annotation)`: what a value of a type may be, in words.
"""

from __future__ import annotations

import types
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import annotated_types as at
from pydantic.fields import FieldInfo

from iunet_bench.core.schema import Schema, _model_of, _tag_value, _union_members


def _show(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, str):
        return value or '""'
    return f"{value:g}" if isinstance(value, float) else str(value)


def _bounds(metadata: list) -> str:
    lo = hi = None
    for m in metadata:
        if isinstance(m, at.Ge):
            lo = f">= {_show(m.ge)}"
        elif isinstance(m, at.Gt):
            lo = f"> {_show(m.gt)}"
        elif isinstance(m, at.Le):
            hi = f"<= {_show(m.le)}"
        elif isinstance(m, at.Lt):
            hi = f"< {_show(m.lt)}"
    return " and ".join(b for b in (lo, hi) if b)


def _plural(text: str) -> str:
    for one, many in (("an integer", "integers"), ("a number", "numbers"), ("text", "strings")):
        if text.startswith(one):
            return many + text[len(one) :]
    return text


def describe_type(annotation, metadata: list | None = None) -> str:
    """What a value of this type may be, in words: 'an integer >= 1', "one of ['a', 'b']", ..."""
    metadata = list(metadata or [])
    origin = get_origin(annotation)
    if origin is Annotated:
        base, *extra = get_args(annotation)
        return describe_type(base, metadata + [m for m in extra if not isinstance(m, FieldInfo)])
    if origin in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        text = " or ".join(t for t in (describe_type(a, metadata) for a in args) if t)
        return f"null or {text}" if len(args) < len(get_args(annotation)) else text
    if origin is Literal:
        values = [_show(v) for v in get_args(annotation)]
        return values[0] if len(values) == 1 else f"one of {', '.join(values)}"
    if origin in (tuple, list):
        args = get_args(annotation)
        bounds = _bounds(metadata)
        if origin is tuple and args and args[-1] is not Ellipsis:
            return f"{len(args)} {_plural(describe_type(args[0]))}"
        inner = _plural(describe_type(args[0])) if args else "values"
        size = (
            "a non-empty list"
            if any(isinstance(m, at.MinLen) and m.min_length > 0 for m in metadata)
            else "a list"
        )
        return f"{size} of {inner}" + (f" ({bounds})" if bounds else "")
    bounds = _bounds(metadata)
    names = {int: "an integer", float: "a number", bool: "true or false", str: "text", Path: "a path"}
    if annotation in names:
        return f"{names[annotation]} {bounds}".rstrip()
    if _model_of(annotation) is not None:
        return "a mapping"
    return getattr(annotation, "__name__", str(annotation))


def _rows(cls: type[Schema], prefix: str) -> list[tuple[str, Any, str, str]]:
    """(dotted key, default, description, allowed values) of every leaf key of `cls`, nested sections
    expanded."""
    out = []
    for name, field in cls.model_fields.items():
        nested = _model_of(field.annotation)
        if nested is not None and _union_members(field) is None:
            out += _rows(nested, f"{prefix}{name}.")
            continue
        default = field.get_default(call_default_factory=True) if not field.is_required() else "(required)"
        single = get_origin(field.annotation) is Literal and len(get_args(field.annotation)) == 1
        allowed = "" if single else describe_type(field.annotation, field.metadata)
        out.append((f"{prefix}{name}", default, (field.description or "").rstrip("."), allowed))
    return out


def markdown_table(schema: Any, prefix: str, only: tuple[str, ...] | None = None) -> str:
    """Key | default | meaning for a group: a Schema class, or a `variants(...)` type, whose keys are merged
    (a key used by some variants only says which; defaults that differ are given per variant). `only`:
    just these fields of a Schema class (e.g. the top-level scalars of the job's schema)."""
    if get_origin(schema) is Annotated:
        base, *extra = get_args(schema)
        tag = next(m.discriminator for m in extra if isinstance(m, FieldInfo))
        members = {_tag_value(c, tag): c for c in get_args(base)}
    else:
        members = {"": schema}
    keys: dict[str, dict[str, tuple[Any, str, str]]] = {}
    for name, cls in members.items():
        for key, default, description, allowed in _rows(cls, prefix):
            if only is None or key.removeprefix(prefix).split(".")[0] in only:
                keys.setdefault(key, {})[name] = (default, description, allowed)
    lines = ["| key | default | meaning |", "| --- | --- | --- |"]
    everyone = set(members)
    if len(members) > 1:  # the variant's name first
        keys = {f"{prefix}{tag}": keys.pop(f"{prefix}{tag}"), **keys}
    for key, per in keys.items():
        # the first variant that describes the key (a variant may redefine just its default)
        description = next((d for _, d, _ in per.values() if d), "")
        allowed = next(iter(per.values()))[2]
        meaning = (
            f"{description}; {allowed}"
            if description and allowed and allowed != "a mapping"
            else description or allowed
        )
        if len(members) > 1 and key.removeprefix(prefix) == tag:
            meaning = f"{meaning.split(';')[0]}; one of {', '.join(members)}"
        defaults: dict[str, list[str]] = {}
        for name, (default, _, _) in per.items():
            shown = default if isinstance(default, str) and default == "(required)" else f"`{_show(default)}`"
            defaults.setdefault(shown, []).append(name)
        if len(defaults) == 1 or len(members) == 1:
            default_text = next(iter(defaults))
        else:
            default_text = ", ".join(f"{d} ({', '.join(n)})" for d, n in defaults.items())
        if len(members) > 1 and key.removeprefix(prefix) == tag:
            default_text = f"`{next(iter(members))}`"
        users = "" if set(per) == everyone or len(members) == 1 else f"({', '.join(per)}) "
        meaning = meaning.replace("|", "\\|")  # a pipe in a description would end the cell
        lines.append(f"| `{key}` | {default_text} | {users}{meaning} |")
    return "\n".join(lines) + "\n"


__all__ = ["describe_type", "markdown_table"]
