"""The model zoo (`model.name`: iunet, unet3d_cicek, dilated_fcn, keras): every network gives a 2-class
softmax on the grid, names its layer groups as its config says before building, fine-tunes only the chosen
groups through the interactive engine, takes the fast path to the same result, and is costed by the summary.

Small networks on an 8x24x24 grid (CPU, seconds); the `keras` (bring your own) models are built here and
saved to a temporary `.keras` file.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from omegaconf import OmegaConf

from iunet_bench.data.case import Volume
from iunet_bench.interactive.config import IUnetInteract
from iunet_bench.interactive.refiner import make_refiner, predict_mask
from iunet_bench.models import build_model
from iunet_bench.models.__main__ import main
from iunet_bench.models.config import CicekConfig, DilatedFCNConfig, KerasModelConfig, UNetConfig
from iunet_bench.models.groups import describe, group_names, layers_in_groups, valid_groups
from iunet_bench.models.split import can_split, split_or_reason
from iunet_bench.models.summary import format_summary, layer_macs, summarize
from iunet_bench.tasks.config import ConfigError, load_config
from simulators.interaction import Interaction
from tests.conftest import composed

GRID = (8, 24, 24)


def byo_file(path, output: str = "softmax", free_axes: bool = False):
    """A small functional model saved as `.keras`: enc_conv -> mid_conv -> [enc, mid] -> final_conv."""
    keras.utils.set_random_seed(1)
    shape = (None, None, None, 1) if free_axes else (*GRID, 1)
    x = keras.Input(shape, name="scan")
    a = keras.layers.Conv3D(4, 3, padding="same", activation="relu", name="enc_conv")(x)
    b = keras.layers.Conv3D(4, 3, padding="same", activation="relu", name="mid_conv")(a)
    c = keras.layers.Concatenate(name="join")([a, b])
    channels, activation = {"softmax": (2, "softmax"), "sigmoid": (1, "sigmoid"), "three": (3, "softmax")}[
        output
    ]
    y = keras.layers.Conv3D(channels, 1, activation=activation, name="final_conv")(c)
    keras.Model(x, y, name="mine").save(path)
    return path


GROUPS = {"head": ("^final_",), "bottleneck": ("^mid",)}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("byo")
    return {
        "softmax": byo_file(folder / "softmax.keras"),
        "sigmoid": byo_file(folder / "sigmoid.keras", "sigmoid", free_axes=True),
        "three": byo_file(folder / "three.keras", "three"),
    }


def configs(files) -> dict:
    return {
        "iunet": UNetConfig(base_filters=4, depth=2, pool_z_levels=(1,)),
        "unet3d_cicek": CicekConfig(base_filters=16, depth=3, pool_z_levels=(1, 2)),  # half width
        "dilated_fcn": DilatedFCNConfig(
            filters=4, dilations=(1, 2, 4), convs_per_block=(1, 2, 1), compress=2, fuse_filters=4
        ),
        "keras": KerasModelConfig(path=files["softmax"], groups=GROUPS),
        "keras_sigmoid": KerasModelConfig(path=files["sigmoid"], groups={"head": ("final",)}),
    }


@pytest.fixture(scope="module")
def models(files):
    keras.utils.set_random_seed(0)
    tf.config.experimental.enable_op_determinism()
    built = {}
    for name, cfg in configs(files).items():
        built[name] = (cfg, build_model(GRID, cfg))
    return built


def volume(seed: int = 0) -> Volume:
    rng = np.random.default_rng(seed)
    z, y, x = np.mgrid[: GRID[0], : GRID[1], : GRID[2]]
    label = ((z - 4) / 3) ** 2 + ((y - 12) / 6) ** 2 + ((x - 11) / 7) ** 2 < 1
    image = np.where(label, 0.5, -0.3) + rng.normal(0, 0.1, GRID)
    return Volume(
        "toy", image.astype(np.float32), label.astype(np.uint8), (2.0, 1.0, 1.0), (0, 0, 0, *GRID), GRID
    )


def strokes(vol: Volume) -> Interaction:
    add, remove = np.zeros(GRID, bool), np.zeros(GRID, bool)
    add[4, 12, 6:16] = vol.label[4, 12, 6:16].astype(bool)
    remove[1, 2, 2:20] = True
    return Interaction(add, remove & ~add)


def interact(groups, fast=True, steps=2) -> IUnetInteract:
    return IUnetInteract(trainable=tuple(groups), steps=steps, lr=1e-2, fast=fast, until_agreement=None)


ALL = ["iunet", "unet3d_cicek", "dilated_fcn", "keras", "keras_sigmoid"]


@pytest.mark.parametrize("name", ALL)
def test_every_model_gives_a_two_class_softmax_and_the_groups_its_config_names(models, name):
    cfg, model = models[name]
    x = tf.constant(volume().image[None, ..., None])
    probs = model(x, training=False).numpy()
    assert probs.shape == (1, *GRID, 2) and probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-5)
    assert group_names(model) == cfg.valid_groups() == valid_groups(cfg)  # known before building
    for group in group_names(model):
        assert layers_in_groups(model, [group]), group


def test_the_vocabularies():
    cicek = CicekConfig(depth=2, pool_z_levels=(1,))
    assert cicek.valid_groups() == UNetConfig(depth=2, pool_z_levels=(1,)).valid_groups()  # same language
    dilated = DilatedFCNConfig(dilations=(1, 2), convs_per_block=(1, 2), norm="none").valid_groups()
    assert dilated == [
        "head",
        "concat",
        "block",
        "all",
        "block.0",
        "block.1",
        "block.0.conv0",
        "block.1.conv0",
        "block.1.conv1",
        "concat.0",
        "concat.1",
        "concat.fuse",
    ]
    text = describe(dilated)
    assert (
        "blocks: head, concat, block, all" in text
        and "levels (0 = full resolution): block.0, block.1" in text
    )
    assert KerasModelConfig.model_construct(groups={"head": ("x",), "mine": ("y",)}).valid_groups() == [
        "head",
        "mine",
        "all",
    ]


def test_cicek_widths_double_within_each_level(models):
    _, model = models["unet3d_cicek"]
    filters = {layer.name: layer.filters for layer in model.layers if hasattr(layer, "filters")}
    assert [filters[f"encoder.{i}.conv{j}"] for i in range(3) for j in range(2)] == [16, 32, 32, 64, 64, 128]
    assert (filters["bottleneck.conv0"], filters["bottleneck.conv1"]) == (128, 256)
    assert [filters[f"decoder.{i}.up"] for i in (2, 1, 0)] == [256, 128, 64]  # channels of the level below
    assert [filters[f"decoder.{i}.conv1"] for i in (2, 1, 0)] == [128, 64, 32]
    full = CicekConfig()
    assert [full.filters(level) for level in range(4)] == [(32, 64), (64, 128), (128, 256), (256, 512)]


@pytest.mark.parametrize(
    "name, groups",
    [
        ("unet3d_cicek", ["head", "bottleneck.conv1"]),
        ("dilated_fcn", ["block.1", "head"]),
        ("dilated_fcn", ["concat.fuse"]),
        ("keras", ["bottleneck"]),
        ("keras_sigmoid", ["head"]),
    ],
)
def test_one_round_changes_only_the_chosen_groups(models, name, groups):
    cfg, model = models[name]
    refiner = make_refiner(model, interact(groups, steps=1))
    tuned = refiner.model  # the refiner's own copy, rebuilt from the config: its groups survive
    assert group_names(tuned) == cfg.valid_groups()
    before = {w.path: w.numpy() for w in tuned.weights}
    chosen = {v.path for layer in layers_in_groups(tuned, groups) for v in layer.trainable_weights}
    vol = volume()
    refiner.start(vol, predict_mask(model, vol.image))
    refiner.refine(strokes(vol))
    after = {w.path: w.numpy() for w in tuned.weights}
    changed = {p for p in before if not np.array_equal(before[p], after[p])}
    assert changed and changed <= chosen, (sorted(changed - chosen), groups)
    for layer in layers_in_groups(tuned, groups):
        assert {v.path for v in layer.trainable_weights} & changed, layer.name


@pytest.mark.parametrize(
    "name, groups",
    [
        ("unet3d_cicek", ["head", "bottleneck"]),  # the skips' shares fold into frozen decoder convolutions
        ("dilated_fcn", ["block.1", "head"]),  # concat.fuse folds the frozen blocks' compressed features
        ("dilated_fcn", ["concat", "head"]),
        ("keras", ["bottleneck"]),
    ],
)
def test_the_fast_path_gives_the_straightforward_prediction(models, name, groups):
    _, model = models[name]
    vol = volume(2)
    results = []
    for fast in (True, False):
        refiner = make_refiner(model, interact(groups, fast=fast))
        assert refiner.fast is fast
        refiner.start(vol, predict_mask(model, vol.image))
        results.append(refiner.run_round(*refiner.round_inputs(strokes(vol))))
    (f_losses, f_prob), (s_losses, s_prob) = results
    np.testing.assert_allclose(f_losses, s_losses, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(f_prob, s_prob, atol=1e-5)
    assert f_losses[0] != f_losses[-1]  # it did train


@pytest.mark.parametrize("name", ALL)
def test_the_summary_adds_up_to_the_models_parameters(models, name):
    _, model = models[name]
    s = summarize(model, GRID)
    assert s.total_params == model.count_params()
    assert sum(g.params for g in s.partition) == model.count_params()
    assert sum(g.macs for g in s.partition) == s.total_macs
    by_name = {g.name: g for g in s.groups}
    assert by_name["all"].params == model.count_params()
    assert "parameters" in format_summary(s)


def test_multiply_adds_are_counted_as_documented(models):
    _, model = models["iunet"]
    voxels = int(np.prod(GRID))
    conv = model.get_layer("encoder.0.conv0")  # 1 -> 4 channels, 3x3x3, full resolution
    assert layer_macs(conv, (1, *GRID, 1), (1, *GRID, 4)) == voxels * 27 * 1 * 4
    up = model.get_layer("decoder.0.up")  # level 0 pools (1, 2, 2): kernel volume 4, stride = kernel
    cin = int(up.input.shape[-1])
    small = (1, GRID[0], GRID[1] // 2, GRID[2] // 2, cin)
    assert layer_macs(up, small, (1, *GRID, up.filters)) == (voxels // 4) * 4 * cin * up.filters
    head = model.get_layer("head")
    assert layer_macs(head, (1, *GRID, 4), (1, *GRID, 2)) == voxels * 4 * 2
    assert layer_macs(model.get_layer("encoder.0.bn0"), (1, *GRID, 4), (1, *GRID, 4)) == 0


def test_the_summary_command_composes_any_override(capsys):
    code = main(
        [
            "summary",
            "model=dilated_fcn",
            "model.filters=4",
            "model.dilations=[1,2]",
            "model.convs_per_block=[1,1]",
            "data.preprocess.grid=[8,24,24]",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert "model dilated_fcn on grid [8, 24, 24]" in out and "block.1.conv0" in out and "concat.fuse" in out
    assert main(["nonsense"]) == 2


# ---------------------------------------------------------------------------------------------- keras


def test_a_sigmoid_output_is_wrapped_into_two_classes_and_free_axes_take_the_grid(models):
    _, model = models["keras_sigmoid"]
    assert model.get_layer("byo.two_class").weights == []
    assert tuple(model.inputs[0].shape[1:]) == (*GRID, 1)
    x = tf.constant(volume().image[None, ..., None])
    probs = model(x).numpy()
    inner = model.get_layer("final_conv").output
    p = keras.Model(model.inputs, inner)(x).numpy()[..., 0]
    np.testing.assert_allclose(probs[..., 1], p, atol=1e-6)
    np.testing.assert_allclose(probs[..., 0], 1 - p, atol=1e-6)


def test_bad_keras_models_are_errors_naming_the_key(files, tmp_path):
    with pytest.raises(
        ValueError, match=r"model\.path: .*output shape \(None, 8, 24, 24, 3\).*2-class softmax"
    ):
        build_model(GRID, KerasModelConfig(path=files["three"]))
    with pytest.raises(ValueError, match=r"model\.path: .*input shape \(None, 8, 24, 24, 1\) does not match"):
        build_model((8, 32, 32), KerasModelConfig(path=files["softmax"]))
    with pytest.raises(ValueError, match=r"model\.groups\.decoder: \['\^dec'\] match no layer"):
        build_model(GRID, KerasModelConfig(path=files["softmax"], groups={"decoder": ("^dec",)}))
    junk = tmp_path / "junk.keras"
    junk.write_bytes(b"not a zip")
    with pytest.raises(ValueError, match=r"model\.path: .*could not be loaded"):
        build_model(GRID, KerasModelConfig(path=junk))


def test_a_sequential_model_is_made_functional_and_splits(tmp_path):
    keras.utils.set_random_seed(2)
    seq = keras.Sequential(
        [
            keras.Input((*GRID, 1)),
            keras.layers.Conv3D(3, 3, padding="same", activation="relu", name="body"),
            keras.layers.Conv3D(2, 1, activation="softmax", name="out"),
        ]
    )
    seq.save(tmp_path / "seq.keras")
    model = build_model(GRID, KerasModelConfig(path=tmp_path / "seq.keras", groups={"head": ("^out$",)}))
    assert can_split(model) is None
    split, why = split_or_reason(model, layers_in_groups(model, ["head"]))
    assert why == "" and split.prefix is not None
    x = tf.constant(volume().image[None, ..., None])
    np.testing.assert_allclose(split.run_tail(split.features(x)).numpy(), model(x).numpy(), atol=1e-6)


def test_a_layer_called_twice_cannot_split():
    x = keras.Input((*GRID, 1))
    shared = keras.layers.Conv3D(1, 1, name="twice")
    y = keras.layers.Conv3D(2, 1, activation="softmax", name="head")(shared(shared(x)))
    model = keras.Model(x, y)
    assert "'twice' is called more than once" in can_split(model)
    split, why = split_or_reason(model, [model.get_layer("head")])
    assert split is None and "twice" in why


def raw(*overrides):
    return OmegaConf.to_container(composed(*overrides), resolve=True)


def test_keras_groups_are_validated_without_loading_the_file(files):
    path = f"model.path={files['softmax']}"
    config = load_config(
        raw("model=keras", path, '+model.groups.head=["^final_"]', "interact.trainable=[head]")
    )
    assert config.model.groups == {"head": ("^final_",)} and config.model.pretrained
    with pytest.raises(ConfigError, match=r"interact\.trainable: unknown layer group\(s\) \['bottleneck'\]"):
        load_config(
            raw("model=keras", path, '+model.groups.head=["^final_"]', "interact.trainable=[bottleneck]")
        )
    with pytest.raises(ConfigError, match=r"model\.path: required"):
        load_config(raw("model=keras", "interact=paste"))
    with pytest.raises(ConfigError, match=r"model\.groups\.head\[0\]: '\(' is not a regular expression"):
        load_config(raw("model=keras", path, '+model.groups.head=["("]', "interact=paste"))
    with pytest.raises(ConfigError, match=r"model\.groups\.all: `all` is always every layer"):
        load_config(raw("model=keras", path, "+model.groups.all=[x]", "interact=paste"))
    with pytest.raises(ConfigError, match=r"model\.path: .*must be a Keras 3 `\.keras` file"):
        load_config(raw("model=keras", "model.path=/tmp/x.h5", "interact=paste"))


def test_each_model_preset_spells_out_its_schema_defaults(files):
    for name, cls in (
        ("iunet", UNetConfig),
        ("unet3d_cicek", CicekConfig),
        ("dilated_fcn", DilatedFCNConfig),
    ):
        config = load_config(raw(f"model={name}", "interact=paste"))
        assert config.model == cls()
    keras_cfg = load_config(raw("model=keras", f"model.path={files['softmax']}", "interact=paste")).model
    assert keras_cfg == KerasModelConfig(path=files["softmax"])
    # the default interact.trainable (head, bottleneck, decoder.0) fits the U-Nets, not the dilated FCN
    load_config(raw("model=unet3d_cicek"))
    with pytest.raises(ConfigError, match=r"valid for model\.name=dilated_fcn"):
        load_config(raw("model=dilated_fcn"))
    load_config(raw("model=dilated_fcn", "interact.trainable=[head,concat,block.4]"))
