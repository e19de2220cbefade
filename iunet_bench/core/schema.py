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
- `Rule`, `RuledSchema`: rules across keys (of several groups) that still run, and report, when other keys are
  invalid: `validate` leaves the invalid keys out and runs the rules that read none of them;
- the configuration page's tables of the groups are `core.schema_tables`' (from the same fields).
"""

from __future__ import annotations

import copy
import os
import re
import types
from collections.abc import Callable, Mapping
from functools import cache
from pathlib import Path
from typing import Annotated, Any, ClassVar, NamedTuple, Union, get_args, get_origin

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    ValidationError,
    ValidationInfo,
    create_model,
    model_validator,
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


class Rule(NamedTuple):
    """A rule across keys: `check(config)` returns the problem (a text naming the keys) or None. `reads`: the
    dotted keys it reads (`model`, `data.preprocess.grid`); it is not run when one of them is invalid, so its
    verdict never rests on a default standing in for an invalid value."""

    reads: tuple[str, ...]
    check: Callable[[Any], str | None]


LEFT_OUT = "left_out"  # validation context: the dotted keys `validate` left out as invalid


class RuledSchema(Schema):
    """A Schema with `rules` across its keys, checked after its fields; `validate` reports them together
    with the field errors (the invalid keys left out, see `Rule`)."""

    rules: ClassVar[tuple[Rule, ...]] = ()

    @model_validator(mode="after")
    def _rules(self, info: ValidationInfo):
        left_out = (info.context or {}).get(LEFT_OUT, ())
        problems = [
            problem
            for rule in self.rules
            if not any(_overlap(read, key) for read in rule.reads for key in left_out)
            and (problem := rule.check(self))
        ]
        if problems:
            raise ValueError("\n".join(problems))
        return self


def _overlap(a: str, b: str) -> bool:
    """Whether dotted keys `a` and `b` are the same or one holds the other (`model` holds `model.depth`)."""
    return a == b or a.startswith(b + ".") or b.startswith(a + ".")


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
        problems = _problems(cls, exc.errors(), prefix)
        if getattr(cls, "rules", ()):
            problems += [p for p in _rule_problems(cls, data, exc.errors(), prefix) if p not in problems]
        raise ConfigError(problems) from None


def _problems(cls: type[Schema], errors: list[dict], prefix: str) -> list[str]:
    merged: dict[str, list[str]] = {}  # a union's members fail one by one: one problem per key
    for err in errors:
        text = _problem(cls, err, prefix)
        head, _, rest = text.partition(": Input should")
        if rest and head in merged:
            merged[head].append(f"should{rest}")
        else:
            merged.setdefault(head if rest else text, []).append(f"Input should{rest}" if rest else "")
    return [k + (": " + " or ".join(v) if v[0] else "") for k, v in merged.items()]


def _rule_problems(cls: type[RuledSchema], data: Mapping, errors: list[dict], prefix: str) -> list[str]:
    """The problems of `cls.rules` when some keys are invalid (pydantic runs a model's own validators only
    once its fields are valid): the invalid keys are left out, so their defaults stand in, and the rest is
    validated again, with the rules that read an invalid key skipped (`Rule`). A key whose leaving out does
    not make its group valid (a required key, a variant's tag) takes its whole group with it."""
    data = copy.deepcopy(dict(data))
    left_out: set[str] = set()
    for _ in range(3):
        fields = [err for err in errors if err["loc"]]
        if not fields:  # only the rules' own problems are left
            return _problems(cls, errors, prefix)
        for err in fields:
            path = _walk(cls, tuple(err["loc"]))[2]
            if not _drop(data, path):
                path = path[:1]
                _drop(data, path)
            left_out.add(".".join(path))
        try:
            cls.model_validate(data, context={LEFT_OUT: frozenset(left_out)})
            return []
        except ValidationError as exc:
            errors = exc.errors()
    return []


def _drop(tree: dict, path: list[str]) -> bool:
    """Remove the key at `path` from a nested mapping; False if it is not there."""
    for key in path[:-1]:
        tree = tree.get(key) if isinstance(tree, dict) else None
    if not path or not isinstance(tree, dict) or path[-1] not in tree:
        return False
    del tree[path[-1]]
    return True


@cache
def _holder(schema: Any, name: str) -> type[Schema]:
    return create_model(f"_{name}_holder", __base__=Schema, **{name: (schema, ...)})


def validate_group(schema: Any, data: Mapping[str, Any], name: str) -> Any:
    """One group's config (a Schema class or a `variants(...)` type) from a plain mapping, outside a job
    (tests, notebooks, other tools); errors name `<name>.<key>` as the job's do."""
    return getattr(validate(_holder(schema, name), {name: data}), name)


def _walk(cls: type[Schema], loc: tuple) -> tuple[str, type[Schema] | None, list[str]]:
    """The dotted key of an error location (variant tags removed; list items as `[i]`), the model that
    holds its last key, and the path of keys to it in the input (up to the list a list item is in)."""
    key, model, holder, path = "", cls, cls, []
    i = 0
    while i < len(loc):
        name = loc[i]
        i += 1
        key += f"[{name}]" if isinstance(name, int) else f"{'.' if key else ''}{name}"
        if "[" not in key:  # not inside a list yet
            path.append(name)
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
    return key, holder, path


_NAMES_KEY = re.compile(r"^[A-Za-z_][\w.\[\]]*: ")


def _problem(cls: type[Schema], err: dict, prefix: str) -> str:
    key, holder, _ = _walk(cls, tuple(err["loc"]))
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


__all__ = [
    "Bool",
    "ConfigError",
    "Float",
    "Int",
    "Rule",
    "RuledSchema",
    "Schema",
    "UserPath",
    "flatten",
    "ignored_keys",
    "validate",
    "validate_group",
    "variants",
]
