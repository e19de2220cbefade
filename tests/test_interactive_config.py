"""The `interact` config group: presets are complete and valid, bad keys and values are named, no TensorFlow
is needed to validate, and README.md (Configuration) documents every key with the presets' values."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf

from iunet_bench.interactive.config import (
    KEYS,
    FinetuneConfig,
    PasteConfig,
    RandomWalkerConfig,
    finetune_config_from,
)
from iunet_bench.models.config import UNetConfig
from iunet_bench.models.groups import valid_groups

ROOT = Path(__file__).resolve().parents[1]
PRESETS = sorted((ROOT / "conf" / "interact").glob("*.yaml"))
DOCS = ROOT / "README.md"
GROUPS = valid_groups(UNetConfig(depth=3))


def load(name: str) -> dict:
    return yaml.safe_load((ROOT / "conf" / "interact" / f"{name}.yaml").read_text(encoding="utf-8"))


def flat(cfg: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in cfg.items():
        out.update(flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
    return out


def with_value(cfg: dict, key: str, value) -> dict:
    cfg = yaml.safe_load(yaml.safe_dump(cfg))
    node = cfg
    *parents, leaf = key.split(".")
    for p in parents:
        node = node[p]
    node[leaf] = value
    return cfg


def test_the_four_methods_have_presets():
    assert {p.stem for p in PRESETS} == set(KEYS) == {"iunet", "bifseg", "paste", "random_walker"}


@pytest.mark.parametrize("path", PRESETS, ids=lambda p: p.stem)
def test_each_preset_is_valid_and_sets_every_key_of_its_method(path):
    cfg = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert cfg["method"] == path.stem
    assert set(cfg) == KEYS[cfg["method"]]  # self-contained: nothing left to a default
    parsed = finetune_config_from(cfg, GROUPS)
    kind = {"paste": PasteConfig, "random_walker": RandomWalkerConfig}.get(path.stem, FinetuneConfig)
    assert isinstance(parsed, kind)


def test_iunet_preset_is_the_paper_setting():
    """Sections 2.5-2.6: head + bottleneck, lr 1e-4, weights 3 / 0 / 1 with the band at 0.2, lambda 0.1.

    `weights.mode: both` departs from eq. 3 as printed (which weights only the overlap term) on purpose:
    with the weight in the denominator too, a weight of 0 really removes a voxel from the Dice, as the
    text's reason for it asks (the band is "a region of segmentation uncertainty"); as printed, such a
    voxel would still count in the denominator. `numerator` keeps the printed form for comparison."""
    c = finetune_config_from(load("iunet"), GROUPS)
    assert c.trainable == ("head", "bottleneck") and c.lr == 1e-4 and c.lambda_volume == 0.1
    assert (c.weights.scribble, c.weights.uncertain, c.weights.threshold) == (3.0, 0.0, 0.2)
    assert c.weight_mode == "both"
    assert finetune_config_from(load("bifseg"), GROUPS).trainable == ("all",)


@pytest.mark.parametrize("method", sorted(KEYS))
def test_every_method_composes_with_the_smoke_experiment(compose, method):
    cfg = compose("experiment=smoke", f"interact={method}")
    depth = int(cfg.model.depth)
    m = cfg.model
    model = UNetConfig(depth=depth, norm=m.norm, convs_per_level=int(m.convs_per_level))
    parsed = finetune_config_from(OmegaConf.to_container(cfg.interact, resolve=True), valid_groups(model))
    if method in ("iunet", "bifseg"):
        assert parsed.steps == 3  # the experiment's value reaches the learning methods


def test_an_unknown_group_names_the_valid_ones():
    with pytest.raises(
        ValueError, match=r"interact\.trainable: unknown layer group\(s\) \['decoder\.5'\]"
    ) as e:
        finetune_config_from({**load("iunet"), "trainable": ["head", "decoder.5"]}, GROUPS)
    assert all(g in str(e.value) for g in GROUPS)
    assert len(str(e.value).splitlines()) < 15  # grouped, not one name a line
    with pytest.raises(ValueError, match=r"interact\.trainable: empty"):
        finetune_config_from({**load("iunet"), "trainable": []}, GROUPS)
    with pytest.raises(ValueError, match=r"interact\.trainable: expected a list"):
        finetune_config_from({**load("iunet"), "trainable": 3}, GROUPS)


def test_single_layers_are_groups_as_the_model_config_names_them():
    """The paper opens "a layer in the deepest section": `bottleneck.conv1`, `decoder.0.conv1`, ... are
    valid, as the configured model (depth, convs_per_level, norm) will name them, and nothing else."""
    c = finetune_config_from({**load("iunet"), "trainable": ["bottleneck.conv1", "decoder.0.conv1"]}, GROUPS)
    assert c.trainable == ("bottleneck.conv1", "decoder.0.conv1")
    assert {"decoder.2.up", "encoder.1.bn0", "bottleneck.bn1"} <= set(GROUPS)
    one_conv_no_norm = valid_groups(UNetConfig(depth=2, convs_per_level=1, norm="none"))
    for bad in ("bottleneck.conv1", "bottleneck.bn0", "decoder.2", "decoder.0.conv7"):
        with pytest.raises(ValueError, match=re.escape(f"unknown layer group(s) ['{bad}']")):
            finetune_config_from({**load("iunet"), "trainable": [bad]}, one_conv_no_norm)


def test_an_unknown_key_is_named_and_other_methods_keys_are_ignored():
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['interact\.stpes'\]"):
        finetune_config_from({**load("iunet"), "stpes": 3}, GROUPS)
    assert isinstance(finetune_config_from({**load("paste"), "steps": 3, "lr": 0.1}, GROUPS), PasteConfig)
    with pytest.raises(ValueError, match=r"interact\.trainable: method 'bifseg' fine-tunes all layers"):
        finetune_config_from({**load("bifseg"), "trainable": ["head"]}, GROUPS)
    with pytest.raises(ValueError, match=r"needs key\(s\) \['interact\.lr'\]"):
        finetune_config_from({k: v for k, v in load("iunet").items() if k != "lr"}, GROUPS)
    with pytest.raises(ValueError, match=r"interact\.weights: keys .* differ"):
        finetune_config_from(with_value(load("iunet"), "weights.scribbel", 3.0), GROUPS)
    with pytest.raises(ValueError, match=r"interact\.method: 'unet' is not one of"):
        finetune_config_from({**load("iunet"), "method": "unet"}, GROUPS)


@pytest.mark.parametrize(
    "method, key, value",
    [
        ("iunet", "steps", -1),
        ("iunet", "steps", 2.5),
        ("iunet", "lr", 0),
        ("iunet", "lr", "fast"),
        ("iunet", "lambda_volume", -0.1),
        ("iunet", "fast", "yes"),
        ("iunet", "accumulate", 1),
        ("bifseg", "weights.mode", "denominator"),
        ("bifseg", "weights.scribble", -3.0),
        ("bifseg", "weights.uncertain", True),
        ("iunet", "geodesic.threshold", 1.5),
        ("iunet", "geodesic.intensity_weight", -1.0),
        ("random_walker", "beta", 0.0),
        ("random_walker", "boundary_voxels", -1),
        ("random_walker", "tol", 0),
        ("random_walker", "geodesic.threshold", -0.2),
    ],
)
def test_a_bad_value_names_its_key(method, key, value):
    with pytest.raises(ValueError, match=re.escape(f"interact.{key}")):
        finetune_config_from(with_value(load(method), key, value), GROUPS)


def test_validation_does_not_import_tensorflow():
    code = (
        "import sys, yaml, pathlib\n"
        "from iunet_bench.interactive import finetune_config_from\n"
        "from iunet_bench.models.config import UNetConfig\n"
        "from iunet_bench.models.groups import valid_groups\n"
        "for p in sorted(pathlib.Path('conf/interact').glob('*.yaml')):\n"
        "    finetune_config_from(yaml.safe_load(p.read_text(encoding='utf-8')), valid_groups(UNetConfig(depth=3)))\n"
        "bad = [m for m in ('tensorflow', 'keras') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def docs_table() -> dict[str, str]:
    rows = {}
    for line in DOCS.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 3 and cells[0].startswith("`interact.") and cells[0].endswith("`"):
            rows[cells[0].strip("`").removeprefix("interact.")] = cells[1].strip("`")
    return rows


def test_docs_table_documents_every_key_with_the_presets_values():
    rows = docs_table()
    documented = set()
    for path in PRESETS:
        for key, value in flat(yaml.safe_load(path.read_text(encoding="utf-8"))).items():
            assert key in rows, f"{key} of {path.name} is missing from {DOCS.name}"
            documented.add(key)
            if key != "method":
                assert yaml.safe_load(rows[key]) == value, f"{key}: docs say {rows[key]}, {path.name} {value}"
    assert set(rows) == documented  # and nothing that no preset has
