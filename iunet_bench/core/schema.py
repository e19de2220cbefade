"""How configuration is typed, validated and documented: pydantic v2, one way for every room.

Each room owns the schema of its config group, next to its code (`simulators/config.py`,
`iunet_bench/data/config.py`, `models/config.py`, `train/config.py`, `interactive/config.py`,
`session/config.py`, `tracking/tracker.py`, `tasks/observers_config.py`); `iunet_bench.tasks.config.JobConfig`
composes them. This module holds what they
share, and imports nothing but pydantic (so `simulators/` may use it and stay free of TensorFlow):

- `Schema`: the base class: unknown keys are errors, values are immutable;
- `Int`, `Float`, `Bool`: scalars that are not silently converted (`true` is no integer, `"3"` no number);
- `variants(*classes, tag=...)`: a discriminated union (`data.source`, `interact.method`, ...). A key that
  belongs to another variant of the same group only is ignored (experiment files set e.g.
  `interact.steps` whichever method a user picks); `ignored_keys` lists what was ignored;
- `validate(cls, mapping)`: the config, or one `ConfigError` listing every problem, each naming the full
  key, the value and what is allowed;
- `markdown_table(cls, prefix)`: the README's table of a group, from the fields' descriptions, types,
  bounds and defaults (one generator for every group; `python -m iunet_bench.tasks.reference` writes them).
"""

from __future__ import annotations

import os
import re
import types
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import annotated_types as at
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    ValidationError,
    create_model,
)
from pydantic.fields import FieldInfo

Int = Annotated[int, Strict()]
UserPath = Annotated[Path, AfterValidator(lambda p: Path(os.path.expanduser(str(p))))]  # `~` expanded
Float = Annotated[float, Strict()]  # an integer is accepted and becomes a float
Bool = Annotated[bool, Strict()]


class Schema(BaseModel):
    """A config group or section: unknown keys are errors; values are immutable once validated."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class ConfigError(ValueError):
    """Invalid configuration. `problems`: one line per problem, each naming the full key, the value and what
    is allowed; the message lists them all."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__(self.problems[0] if len(self.problems) == 1 else "\n  " + "\n  ".join(self.problems))


# ------------------------------------------------------------------------------------------ variants


def variants(*classes: type[Schema], tag: str):
    """A field type for one of `classes`, chosen by the value of their `tag` field (a Literal)."""
    by_tag = {_tag_value(c, tag): c for c in classes}
    known = {name for c in classes for name in c.model_fields}

    def drop_sibling_keys(value):
        if isinstance(value, Mapping) and value.get(tag) in by_tag:
            own = by_tag[value[tag]].model_fields
            return {k: v for k, v in value.items() if k in own or k not in known}
        return value

    return Annotated[Union[classes], BeforeValidator(drop_sibling_keys), Field(discriminator=tag)]  # noqa: UP007


def _tag_value(cls: type[Schema], tag: str) -> str:
    (value,) = get_args(cls.model_fields[tag].annotation)
    return value


def _union_members(field: FieldInfo) -> dict[str, type[Schema]] | None:
    """{tag value: class} when `field` is a `variants(...)` field, else None."""
    tag = field.discriminator
    if not isinstance(tag, str):
        return None
    return {_tag_value(c, tag): c for c in get_args(field.annotation)}


def _model_of(annotation) -> type[Schema] | None:
    return annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None


# ------------------------------------------------------------------------------------------ validation


def validate(cls: type[Schema], data: Mapping[str, Any], prefix: str = "") -> Schema:
    """`cls` validated from a plain mapping, or ConfigError listing every problem at once."""
    if not isinstance(data, Mapping):
        raise ConfigError([f"{prefix.rstrip('.') or 'config'}: expected a mapping, got {data!r}"])
    try:
        return cls.model_validate(dict(data))
    except ValidationError as exc:
        problems: dict[str, list[str]] = {}  # a union's members fail one by one: one problem per key
        for err in exc.errors():
            text = _problem(cls, err, prefix)
            head, _, rest = text.partition(": Input should")
            if rest and head in problems:
                problems[head].append(f"should{rest}")
            else:
                problems.setdefault(head if rest else text, []).append(f"Input should{rest}" if rest else "")
        raise ConfigError(
            [k + (": " + " or ".join(v) if v[0] else "") for k, v in problems.items()]
        ) from None


@cache
def _holder(schema: Any, name: str) -> type[Schema]:
    return create_model(f"_{name}_holder", __base__=Schema, **{name: (schema, ...)})


def validate_group(schema: Any, data: Mapping[str, Any], name: str) -> Any:
    """One group's config (a Schema class or a `variants(...)` type) from a plain mapping, outside a job
    (tests, notebooks, other tools); errors name `<name>.<key>` as the job's do."""
    return getattr(validate(_holder(schema, name), {name: data}), name)


def _walk(cls: type[Schema], loc: tuple) -> tuple[str, type[Schema] | None]:
    """The dotted key of an error location (variant tags removed; list items as `[i]`) and the model
    that holds its last key."""
    key, model, holder = "", cls, cls
    i = 0
    while i < len(loc):
        name = loc[i]
        i += 1
        key += f"[{name}]" if isinstance(name, int) else f"{'.' if key else ''}{name}"
        holder = model
        field = model.model_fields.get(name) if model is not None and isinstance(name, str) else None
        model = None
        if field is None:
            continue
        members = _union_members(field)
        if members is None:
            model = _model_of(field.annotation)
            if get_origin(field.annotation) in (Union, types.UnionType) and i < len(loc):
                i += 1  # a plain union names the member type that failed: not a key
        elif i < len(loc) and loc[i] in members:
            model = members[loc[i]]
            i += 1
    return key, holder


_NAMES_KEY = re.compile(r"^[A-Za-z_][\w.\[\]]*: ")


def _problem(cls: type[Schema], err: dict, prefix: str) -> str:
    key, holder = _walk(cls, tuple(err["loc"]))
    parts = bool(key)
    key = prefix + key if key else prefix.rstrip(".") or "config"
    value = err.get("input")
    kind = err["type"]
    if kind == "extra_forbidden":
        allowed = sorted(holder.model_fields) if holder is not None else []
        return f"{key}: unknown key; allowed keys: {allowed}"
    if kind == "missing":
        return f"{key}: missing (required)"
    if kind == "union_tag_invalid":
        ctx = err.get("ctx", {})
        tag = str(ctx.get("discriminator", "")).strip("'")
        expected = [t.strip().strip("'") for t in str(ctx.get("expected_tags", "")).split(",")]
        return f"{key}.{tag}: {ctx.get('tag')!r} is not one of {expected}"
    message = err["msg"].removeprefix("Value error, ")
    if kind == "value_error" and (not parts or _NAMES_KEY.match(message)):  # a rule across keys names them
        return message
    return f"{key}: {value!r}: {message}"


def ignored_keys(data: Mapping[str, Any], config: BaseModel, prefix: str = "") -> list[str]:
    """Keys of `data` that validation dropped (they belong to another variant of their group)."""
    out = []
    fields = type(config).model_fields
    for key, value in data.items():
        if key not in fields:
            out.append(f"{prefix}{key}")
        elif isinstance(value, Mapping) and isinstance(getattr(config, key), BaseModel):
            out += ignored_keys(value, getattr(config, key), f"{prefix}{key}.")
    return out


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{'a': {'b': 1}} -> {'a.b': 1}."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, Mapping):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


# ------------------------------------------------------------------------------------------ documentation


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


__all__ = [
    "Bool",
    "ConfigError",
    "Float",
    "Int",
    "Schema",
    "UserPath",
    "describe_type",
    "flatten",
    "ignored_keys",
    "markdown_table",
    "validate",
    "validate_group",
    "variants",
]
