"""The job's one typed configuration: every key's type and range through the one schema, every problem of a
config reported at once naming its full key, unknown keys refused at every level, defaults in one place
(the schema) and equal to the YAML presets, rules across groups, no TensorFlow needed to validate."""

from __future__ import annotations

import copy
import functools
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Annotated, Literal, Union, get_args, get_origin

import annotated_types as at
import pytest
from omegaconf import OmegaConf
from pydantic import BaseModel

from iunet_bench.core.schema import flatten
from iunet_bench.tasks.config import ConfigError, JobConfig, dropped_keys, load_config
from tests.conftest import CONF, ROOT, composed

UNIONS = {"data": "source", "model": "name", "simulator": "kind", "interact": "method"}
# model=keras needs an existing `.keras` file; validation never reads it, so an empty one will do
KERAS_FILE = Path(tempfile.mkdtemp(prefix="iunet_bench_byo_")) / "model.keras"
KERAS_FILE.touch()


@functools.cache
def _raw(overrides: tuple[str, ...]) -> dict:
    return OmegaConf.to_container(composed(*overrides), resolve=True)


def raw(*overrides: str) -> dict:
    """The composed configuration as a plain (fresh) mapping."""
    return copy.deepcopy(_raw(overrides))


def variant_overrides() -> dict[str, list[str]]:
    """The composition that selects each variant of each group with variants (real data needs a root: an
    existing folder; validation only checks that it is one)."""
    root = f"data.root={ROOT / 'tests'}"
    return {
        "data.phantom": [],
        "data.msd": ["data=msd", root],
        "data.folder": ["data=folder", root],
        "data.dicom": ["data=dicom", root],
        "model.iunet": [],
        "model.unet3d_cicek": ["model=unet3d_cicek"],
        "model.dilated_fcn": ["model=dilated_fcn", "interact.trainable=[head]"],  # no bottleneck, decoder
        "model.keras": ["model=keras", f"model.path={KERAS_FILE}", "interact.trainable=[all]"],
        "simulator.scribble": [],
        "simulator.click": ["simulator=click_ritm"],
        "interact.iunet": [],
        "interact.bifseg": ["interact=bifseg"],
        "interact.paste": ["interact=paste"],
        "interact.random_walker": ["interact=random_walker"],
        "interact.plugin": ["interact=plugin", "interact.target=package.module:Name"],
        "interact.cvpr25_container": ["interact=cvpr25_container", "interact.command=sh predict.sh"],
    }


def _unwrap(annotation):
    """(base type, constraint metadata) of an annotation, Annotated layers peeled."""
    meta = []
    while get_origin(annotation) is Annotated:
        annotation, *extra = get_args(annotation)
        meta += extra
    return annotation, meta


def bad_values(annotation, metadata) -> list:
    """Values the schema must refuse for a key of this type, written from the type, not from the schema's
    own error messages: wrong types, values out of range, unknown choices."""
    base, meta = _unwrap(annotation)
    meta = list(metadata) + meta
    if get_origin(base) in (Union, type(int | None)):
        args = [a for a in get_args(base) if a is not type(None)]
        bases = [_unwrap(a)[0] for a in args]
        if any(get_origin(b) is Literal for b in bases) and bool in bases:  # progress: auto | a boolean
            return ["sometimes", 3, "yes"]
        if get_origin(bases[0]) is Literal and len(args) == 2:  # threads: auto | an integer >= 1
            return ["nonsense-value", True, *bad_values(args[1], [])]
        base, inner = _unwrap(args[0])
        meta += inner
    if get_origin(base) is dict:  # model.groups: a mapping of lists of strings
        return ["not-a-mapping", {"g": 5}]
    if get_origin(base) is Literal:
        values = get_args(base)
        return [] if len(values) == 1 else ["nonsense-value"]
    if get_origin(base) is tuple:
        args = get_args(base)
        if args and args[-1] is not Ellipsis:
            return [[1] * (len(args) + 1), "not-a-list"]
        return ["x" if _unwrap(args[0])[0] is not str else 5] if args else []
    out = []
    for m in meta:
        if isinstance(m, at.Ge):
            out.append(m.ge - 1)
        elif isinstance(m, at.Gt):
            out.append(m.gt)
        elif isinstance(m, at.Le):
            out.append(m.le + 1)
        elif isinstance(m, at.Lt):
            out.append(m.lt)
    if base is int:
        return out + ["abc", True, 2.5]
    if base is float:
        return out + ["abc", True]
    if base is bool:
        return ["yes", 1]
    if base is str:
        return [5]
    return out


def leaves(cls: type[BaseModel], prefix: str = ""):
    for name, field in cls.model_fields.items():
        if field.discriminator or name in UNIONS:
            continue
        base = field.annotation
        if isinstance(base, type) and issubclass(base, BaseModel):
            yield from leaves(base, f"{prefix}{name}.")
        else:
            yield f"{prefix}{name}", field


def variant_classes():
    for group, tag in UNIONS.items():
        for cls in get_args(get_args(JobConfig.model_fields[group].annotation)[0]) or get_args(
            JobConfig.model_fields[group].annotation
        ):
            yield group, get_args(cls.model_fields[tag].annotation)[0], cls


def cases():
    out = [("", key, field) for key, field in leaves(JobConfig)]
    for group, name, cls in variant_classes():
        out += [(f"{group}.{name}", f"{group}.{key}", f) for key, f in leaves(cls)]
    return out


def set_key(tree: dict, key: str, value) -> dict:
    node = tree
    *parents, leaf = key.split(".")
    for p in parents:
        node = node.setdefault(p, {})
    node[leaf] = value
    return tree


ALL_CASES = cases()


def test_the_cases_cover_every_group():
    groups = {key.split(".")[0] for _, key, _ in ALL_CASES}
    assert groups >= {"seed", "session", "data", "model", "train", "simulator", "interact", "tracking"}
    assert len(ALL_CASES) > 120


@pytest.mark.parametrize(
    ("variant", "key", "field"), ALL_CASES, ids=[f"{v or 'job'}:{k}" for v, k, _ in ALL_CASES]
)
def test_every_key_refuses_wrong_types_and_out_of_range_values_naming_the_full_key(variant, key, field):
    base = raw(*variant_overrides().get(variant, []))
    load_config(base)  # the composition itself is valid
    values = bad_values(field.annotation, field.metadata)
    if key.endswith((".root", ".cache_dir", ".manifest", ".split.file", "artifact_root", "model.path")):
        values = [5]
    if key == "interact.options":  # any values: keyword arguments of the plug-in's class
        values = ["not-a-mapping", {"not an identifier": 1}]
    assert values or key.endswith((".name", ".method", ".source", ".kind")), f"no bad value known for {key}"
    for value in values:
        tree = set_key(copy.deepcopy(base), key, value)
        with pytest.raises(ConfigError) as err:
            load_config(tree)
        assert any(p.startswith(key) for p in err.value.problems), (key, value, err.value.problems)


def test_every_problem_of_a_config_is_reported_at_once():
    with pytest.raises(ConfigError) as err:
        load_config(
            raw(
                "seed=-1",
                "session.rounds=true",
                "+sesion.rounds=1",
                "model.norm=instance",
                "train.lr=0",
                "simulator.policy.region=everywhere",
                "interact.weights.mode=denominator",
                "tracking.uri=runs/mlflow.db",
                "data.preprocess.sigma=-1",
            )
        )
    keys = [p.split(":")[0] for p in err.value.problems]
    assert sorted(keys) == sorted(
        [
            "seed",
            "data.seed",  # ${seed}
            "session.rounds",
            "sesion",
            "model.norm",
            "train.lr",
            "simulator.policy.region",
            "interact.weights.mode",
            "tracking.uri",
            "data.preprocess.sigma",
        ]
    )
    assert "'everywhere'" in str(err.value) and "largest" in str(err.value)  # the value and what is allowed


@pytest.mark.parametrize(
    "override",
    [
        "+sesion.rounds=1",
        "+session.round=1",
        "+model.depht=2",
        "+tracking.urii=x",
        "+train.augment.flip=1",
        "+data.preprocess.gird=[8,8,8]",
        "+simulator.noise.wrong_label=0.1",
        "+interact.weights.scribbel=3",
        "+interact.stpes=3",
    ],
)
def test_unknown_keys_are_refused_at_every_level_with_the_allowed_ones(override):
    key = override.lstrip("+").split("=")[0]
    key = "sesion" if key.startswith("sesion.") else key  # an unknown group is named, not its keys
    with pytest.raises(ConfigError, match=rf"{key.replace('.', '[.]')}: unknown key; allowed keys: \["):
        load_config(raw(override))


def test_a_key_of_another_variant_is_ignored_and_reported():
    tree = raw("experiment=smoke", "interact=paste")
    config = load_config(tree)
    assert config.interact.method == "paste"
    assert set(dropped_keys(tree, config)) == {"interact.steps", "interact.max_steps"}
    assert dropped_keys(raw(), load_config(raw())) == []
    # a nested key unknown to the chosen variant is still an error
    with pytest.raises(ConfigError, match=r"simulator\.policy\.region: unknown key"):
        load_config(raw("simulator=click_ritm", "+simulator.policy.region=largest"))
    # bifseg fine-tunes every layer: a subset is refused, not ignored
    with pytest.raises(ConfigError, match=r"interact\.trainable"):
        load_config(raw("interact=bifseg", "+interact.trainable=[head]"))


def test_grid_must_fit_the_models_pooling():
    with pytest.raises(ConfigError, match=r"data\.preprocess\.grid: \[10, 48, 48\] does not fit") as err:
        load_config(raw("data.preprocess.grid=[10,48,48]"))
    assert "z=10 (needs a multiple of 4)" in str(err.value)
    load_config(raw("data.preprocess.grid=[10,48,48]", "model.pool_z_levels=[1]"))  # z halves once: fits
    with pytest.raises(ConfigError, match=r"model\.pool_z_levels: \[5\] must be levels in \[0, 2\]"):
        load_config(raw("model.pool_z_levels=[5]"))


def test_rules_across_groups_are_reported_with_the_field_errors_at_once():
    """A rule across groups runs on the keys that are valid, so one message lists every problem; a rule that
    reads an invalid key is skipped (its verdict would rest on the default standing in for it)."""
    with pytest.raises(ConfigError) as err:
        load_config(
            raw(
                "experiment=smoke",
                "session.rounds=-1",
                "interact.lr=0",
                "+foo=1",
                "data.preprocess.grid=[7,24,24]",
            )
        )
    keys = [p.split(":")[0] for p in err.value.problems]
    assert keys == ["session.rounds", "interact.lr", "foo", "data.preprocess.grid"]
    assert "z=7 (needs a multiple of 2)" in err.value.problems[-1]
    # another key of the same group invalid: the rule still reads the user's own trainable groups
    with pytest.raises(ConfigError) as err:
        load_config(raw("interact.lr=0", "interact.trainable=[nosuch]"))
    assert [p.split(":")[0] for p in err.value.problems] == ["interact.lr", "interact.trainable"]
    # the model itself invalid: the rules that read it are not run (no misfit against a default depth)
    with pytest.raises(ConfigError) as err:
        load_config(raw("model.depth=-1", "data.preprocess.grid=[7,24,24]", "interact.trainable=[nosuch]"))
    assert [p.split(":")[0] for p in err.value.problems] == ["model.depth"]


def test_trainable_names_are_checked_against_the_configured_model():
    from iunet_bench.models.config import UNetConfig
    from iunet_bench.models.groups import valid_groups

    with pytest.raises(
        ConfigError, match=r"interact\.trainable: unknown layer group\(s\) \['decoder\.5'\]"
    ) as err:
        load_config(raw("interact.trainable=[head,decoder.5]"))
    assert all(g in str(err.value) for g in valid_groups(UNetConfig()))
    config = load_config(raw("interact.trainable=[bottleneck.conv1,decoder.0.up]"))
    assert config.interact.trainable == ("bottleneck.conv1", "decoder.0.up")
    assert load_config(raw("interact.trainable=head")).interact.trainable == ("head",)
    for bad in ("bottleneck.conv1", "bottleneck.bn0", "decoder.2"):  # not in a 1-conv, no-norm, depth-2 model
        with pytest.raises(ConfigError, match=rf"\['{bad}'\]"):
            load_config(
                raw(
                    "model.depth=2",
                    "model.convs_per_level=1",
                    "model.norm=none",
                    "model.pool_z_levels=[1]",
                    f"interact.trainable=[{bad}]",
                )
            )
    with pytest.raises(ConfigError, match=r"interact\.trainable"):
        load_config(raw("interact.trainable=[]"))


def test_task_cv_fixes_round_zero_and_paste_before_validation(capsys):
    """task=cv's two values (`tasks.cv`) replace the user's before validation: a model whose groups lack
    the default `interact.trainable` (+sweep=models) is not refused for a fine-tuning it never does."""
    config = load_config(raw("task=cv", "session.rounds=7", "model=dilated_fcn"), note=sys.stderr)
    assert config.session.rounds == 0 and config.interact.method == "paste"
    assert config.params()["interact"]["method"] == "paste" and config.params()["session"]["rounds"] == 0
    # the user's interact keys are said to be ignored, as with any other variant's keys
    assert "interact.trainable" in capsys.readouterr().err
    with pytest.raises(ConfigError, match=r"interact\.trainable"):
        load_config(raw("model=dilated_fcn"))  # the same model, task=interactive: refused
    assert load_config(raw("session.rounds=7")).session.rounds == 7


def test_every_task_has_one_entry_in_the_registry():
    from iunet_bench.tasks.registry import TASKS

    assert set(TASKS) == set(get_args(JobConfig.model_fields["task"].annotation))


def test_observers_robots_must_be_simulator_presets_for_task_observers():
    def tree(task: str) -> dict:
        t = raw(f"task={task}")
        t["observers"] = {"manual": ["careful", "hurried"], "interactive": ["scribble_ideal", "nosuch"]}
        return t

    with pytest.raises(ConfigError, match=r"observers\.interactive: no simulator preset \['nosuch'\]"):
        load_config(tree("observers"))
    # checked for its own task only
    assert load_config(tree("interactive")).observers.interactive == ("scribble_ideal", "nosuch")


def test_the_schema_holds_the_defaults_and_the_default_composition_equals_them():
    assert load_config(raw()) == JobConfig()


def test_every_key_of_the_default_job_can_be_overridden_without_a_plus():
    """A schema key missing from conf/config.yaml is refused by Hydra as `key=value` ("Key 'undo' is not in
    struct": it needs `+key=value`). Only the groups a preset adds (the data checks' defaults live in the
    schema, the observers' in experiment=observers) may be absent."""
    composed = raw()

    def present(key: str) -> bool:
        node = composed
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                return False
            node = node[part]
        return True

    missing = [k for k, _ in leaves(JobConfig) if not present(k)]
    assert all(k.startswith(("data.checks.", "observers.")) for k in missing), missing


@pytest.mark.parametrize(
    "override",
    ["data=msd", "data=folder", "data=dicom", "simulator=click_ritm"]
    + ["model=unet3d_cicek", "model=dilated_fcn", "model=keras"]
    + [f"interact={p.stem}" for p in sorted((CONF / "interact").glob("*.yaml")) if p.stem != "iunet_paper"],
)
def test_each_base_preset_spells_out_the_schema_defaults_of_its_variant(tmp_path, override):
    """A group's base preset (one per variant) sets nothing the schema does not already default to, so
    defaults live in one place; named variations (scribble_careful, experiment files) set what differs."""
    extra = [f"data.root={tmp_path}"] if override.startswith("data=") else []
    if override.startswith("model="):  # the default interact.trainable names U-Net groups
        extra = ["interact.trainable=[all]"] + (
            [f"model.path={KERAS_FILE}"] if override == "model=keras" else []
        )
    if override == "interact=plugin":  # its target is required (`???` in the preset)
        extra = ["interact.target=package.module:Name"]
    if override == "interact=cvpr25_container":  # its command is required
        extra = ["interact.command=sh predict.sh"]
    tree = raw(override, *extra)
    config = load_config(tree)
    group = override.split("=")[0]
    cls = type(getattr(config, group))
    required = {"root"} if group == "data" else {"path"} if override == "model=keras" else set()
    required |= {"target"} if override == "interact=plugin" else set()
    required |= {"command"} if override == "interact=cvpr25_container" else set()
    defaults = cls(**{k: getattr(getattr(config, group), k) for k in required})
    assert getattr(config, group) == defaults
    assert flatten(tree[group]).keys() <= flatten(defaults.model_dump()).keys()


def sweep_jobs(path) -> list[tuple[str, ...]]:
    """The overrides of every job a sweep file launches (its sweeper params expanded as Hydra does)."""
    import itertools

    import yaml
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()
    params = yaml.safe_load(path.read_text(encoding="utf-8"))["hydra"]["sweeper"]["params"]
    axes = []
    for key, values in params.items():
        (override,) = parser.parse_overrides([f"{key}={values}"])
        axes.append([f"{key}={v}" for v in override.sweep_string_iterator()])
    return list(itertools.product(*axes))


@pytest.mark.parametrize("path", sorted((CONF / "sweep").glob("*.yaml")), ids=lambda p: p.stem)
def test_every_job_of_every_sweep_is_a_valid_configuration(path):
    jobs = sweep_jobs(path)
    assert len(jobs) >= 2
    for job in jobs:  # as CI's smoke sweeps run them (experiment=smoke also sets keys some variants ignore)
        load_config(raw(f"+sweep={path.stem}", "experiment=smoke", *job))


def test_experiments_compose_into_valid_configurations():
    for overrides in [("experiment=smoke",), ("experiment=paper",)]:
        load_config(raw(*overrides))
    paper = load_config(raw("experiment=paper"))
    assert paper.data.preprocess.grid == (24, 64, 64) and paper.train.steps == 2000 and paper.train.lr == 1e-4


def test_validation_does_not_import_tensorflow():
    code = (
        "import sys\n"
        "from tests.conftest import composed\n"
        "from omegaconf import OmegaConf\n"
        "from iunet_bench.tasks.config import load_config\n"
        "from iunet_bench.tasks.prepare import JobSetup\n"
        "for o in [(), ('experiment=smoke',), ('experiment=paper',), ('+sweep=layers',)]:\n"
        "    c = load_config(OmegaConf.to_container(composed(*o), resolve=True))\n"
        "    assert JobSetup(c).dataset.case_ids\n"
        "bad = [m for m in ('tensorflow', 'keras') if m in sys.modules]\n"
        "assert not bad, f'validation imported {bad}'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]


def test_the_paper_preset_keeps_the_papers_literal_values():
    """`interact=iunet_paper` is the paper's method as printed (sections 2.5-2.6): it must not follow the
    default when the default moves."""
    i = load_config(raw("interact=iunet_paper")).interact
    assert (i.method, i.trainable, i.steps, i.lr, i.lambda_volume) == (
        "iunet",
        ("head", "bottleneck"),
        20,
        1e-4,
        0.1,
    )
    assert (i.weights.scribble, i.weights.uncertain, i.until_agreement, i.paste_scribbles) == (
        3.0,
        0.0,
        None,
        False,
    )
    assert i.scribble_ce == 0.0  # eq. 3 alone: no cross-entropy term beside it
