"""The fine-tuning engine (iunet, bifseg): layer subsets, the eq. 3 loss, restoring, fast = straightforward.

Tiny model (base 4, depth 2) on an 8x24x24 grid; every refiner is built on one shared model, and each test
checks that the shared model is left exactly as it was (refiners fine-tune their own copy).
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
import yaml

from iunet_bench.core.schema import validate_group
from iunet_bench.data.case import Volume
from iunet_bench.interactive import Refinement, build_refiner
from iunet_bench.interactive.config import InteractConfig, IUnetInteract
from iunet_bench.interactive.loss import interactive_loss, weighted_cross_entropy
from iunet_bench.interactive.refiner import make_refiner, own_copy, predict_mask
from iunet_bench.interactive.weights import weight_map
from iunet_bench.models.groups import group_names, layers_in_groups, valid_groups
from iunet_bench.models.split import split_at_frozen_frontier
from iunet_bench.models.unet import UNetConfig, build_unet
from iunet_bench.session.loop import run_session
from iunet_bench.train import optim
from iunet_bench.train.optim import make_optimizer, needs_loss_scaling
from simulators import make_annotator
from simulators.interaction import Interaction

ROOT = Path(__file__).resolve().parents[1]
GRID = (8, 24, 24)


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(0)
    tf.config.experimental.enable_op_determinism()
    return build_unet(GRID, UNetConfig(base_filters=4, depth=2, pool_z_levels=(1,)))


@pytest.fixture(autouse=True)
def baseline(request):
    """The shared model's weights; after each test that uses it, they must be bit-identical (the job's
    model stays the baseline whatever a refiner did) and every layer still trainable."""
    if "model" not in request.fixturenames:
        yield None
        return
    m = request.getfixturevalue("model")
    saved = [w.numpy() for w in m.weights]
    yield saved
    for w, value in zip(m.weights, saved):
        np.testing.assert_array_equal(w.numpy(), value, err_msg=f"the shared model's {w.path} changed")
    assert all(layer.trainable for layer in m.layers)


def volume(seed: int, case_id: str) -> Volume:
    """A bright ellipsoid on a noisy background; the label is the ellipsoid."""
    rng = np.random.default_rng(seed)
    z, y, x = np.mgrid[: GRID[0], : GRID[1], : GRID[2]]
    cz, cy, cx = rng.uniform(3, 5), rng.uniform(9, 15), rng.uniform(9, 15)
    label = ((z - cz) / 3) ** 2 + ((y - cy) / 6) ** 2 + ((x - cx) / 7) ** 2 < 1
    image = np.where(label, 0.5, -0.3) + rng.normal(0, 0.1, GRID)
    return Volume(
        case_id, image.astype(np.float32), label.astype(np.uint8), (2.0, 1.0, 1.0), (0, 0, 0, *GRID), GRID
    )


def strokes(vol: Volume, k: int) -> Interaction:
    """Round k's deterministic scribbles: a foreground line in the label, a background line outside."""
    add = np.zeros(GRID, bool)
    remove = np.zeros(GRID, bool)
    zc, yc = np.argwhere(vol.label)[len(np.argwhere(vol.label)) // 2][:2]
    add[zc, yc, :] = vol.label[zc, yc, :].astype(bool)
    remove[(zc + k) % GRID[0], 1 + k, 2:20] = True
    return Interaction(add, remove & ~add)


def cfg(groups, steps=3, lr=1e-2, **kw) -> IUnetInteract:
    """Exactly `steps` steps per round unless a test asks for the stopping rule (the default has it)."""
    kw.setdefault("until_agreement", None)
    return IUnetInteract(trainable=tuple(groups), steps=steps, lr=lr, **kw)


def preset(name: str) -> dict:
    return yaml.safe_load((ROOT / "conf" / "interact" / f"{name}.yaml").read_text(encoding="utf-8"))


def robot():
    return make_annotator(
        yaml.safe_load((ROOT / "conf" / "simulator" / "scribble_ideal.yaml").read_text(encoding="utf-8"))
    )


# ---------------------------------------------------------------------------------------------- the split


@pytest.mark.parametrize(
    "groups, fold, frontier",
    [
        (["head"], False, ["decoder.0.relu1"]),
        (["head", "bottleneck"], False, ["encoder.0.relu1", "encoder.1.relu1", "encoder.1.pool"]),
        (["head", "bottleneck"], True, ["encoder.1.pool", "decoder.1.conv0[", "decoder.0.conv0["]),
        (["decoder.0"], True, ["encoder.0.relu1", "decoder.1.relu1"]),  # decoder.0.conv0 trains: no fold
        (["decoder.1"], True, ["encoder.1.relu1", "bottleneck.relu1", "decoder.0.conv0["]),
        (["all"], True, ["image"]),
        (["bottleneck.conv1"], True, ["bottleneck.relu0", "decoder.1.conv0[", "decoder.0.conv0["]),
        (["decoder.0.up"], True, ["decoder.1.relu1", "decoder.0.conv0["]),  # the skip folds into conv0
    ],
)
def test_split_at_the_frozen_frontier_reproduces_the_model_with_shared_layers(model, groups, fold, frontier):
    split = split_at_frozen_frontier(model, layers_in_groups(model, groups), fold=fold)
    assert [n.split("[")[0] + ("[" if "[" in n else "") for n in split.frontier_names] == frontier
    assert (split.prefix is None) == (groups == ["all"])
    x = tf.constant(volume(0, "a").image[None, ..., None])
    np.testing.assert_allclose(split.run_tail(split.features(x)).numpy(), model(x).numpy(), atol=1e-6)
    assert split.tail.get_layer("head") is model.get_layer("head")
    if fold and groups == ["head", "bottleneck"]:  # the skips' shares replace the skips: never recomputed
        assert "decoder.0.concat" not in [layer.name for layer in split.tail.layers]


# ---------------------------------------------------------------------------------------------- the loss


def numpy_eq3(target, pred, weight, lam, mode):
    """Paper eq. 3 per class, averaged over classes (eq. 4) and the batch, written out in numpy."""
    out = []
    for b in range(target.shape[0]):
        per_class = []
        for k in range(target.shape[-1]):
            y, p, w = target[b, ..., k], pred[b, ..., k], weight[b]
            overlap = 2 * np.sum(w * y * p)
            denom = np.sum(w * y) + np.sum(w * p) if mode == "both" else np.sum(y) + np.sum(p)
            volume_term = ((np.sum(p) - np.sum(y)) / np.sum(p)) ** 2
            per_class.append(-overlap / denom + lam * volume_term)
        out.append(np.mean(per_class))
    return float(np.mean(out))


def numpy_scribble_ce(target, pred, scribbles):
    """Mean over the scribbled voxels of -log(probability of the target class), per batch item, averaged."""
    p_target = np.sum(target * pred, -1)
    per_item = [np.mean(-np.log(p_target[b][scribbles[b] > 0])) for b in range(target.shape[0])]
    return float(np.mean(per_item))


@pytest.mark.parametrize("mode", ["both", "numerator"])
@pytest.mark.parametrize("lam", [0.0, 0.3])
@pytest.mark.parametrize("ce", [0.0, 0.7])
def test_loss_equals_a_numpy_evaluation_of_eq3_plus_the_scribble_cross_entropy(mode, lam, ce):
    rng = np.random.default_rng(1)
    fg = rng.random((2, 3, 4, 5)) < 0.3
    target = np.stack([~fg, fg], -1).astype(np.float32)
    logits = rng.normal(size=(2, 3, 4, 5, 2))
    pred = (np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)).astype(np.float32)
    weight = rng.choice([0.0, 1.0, 3.0], size=(2, 3, 4, 5)).astype(np.float32)
    scribbles = (weight == 3.0).astype(np.float32)
    got = interactive_loss(*map(tf.constant, (target, pred, weight)), lam, mode, tf.constant(scribbles), ce)
    expected = numpy_eq3(target, pred, weight, lam, mode) + ce * numpy_scribble_ce(target, pred, scribbles)
    assert float(got) == pytest.approx(expected, rel=1e-5)


def logit_gradient(loss_of_probabilities, logits: np.ndarray) -> np.ndarray:
    z = tf.Variable(logits.astype(np.float32))
    with tf.GradientTape() as tape:
        loss = loss_of_probabilities(tf.nn.softmax(z, -1))
    return tape.gradient(loss, z).numpy()


def test_a_scribble_the_network_is_sure_is_wrong_gets_a_gradient_from_the_cross_entropy_not_from_eq3():
    """Why the defaults add `scribble_ce`: eq. 3's Dice reaches the logits through p (1 - p), so on an "add"
    scribble the network calls background with a logit gap of 30 its gradient is about 1e-14 (p = 1e-13) and
    no number of steps flips it; the cross-entropy's gradient there is (p - y) / n, here
    -ce / 2 (two scribbled voxels) on the foreground logit. BIFSeg's loss is the same cross-entropy."""
    shape = (1, 4, 6, 6)
    fg = np.zeros(shape, bool)
    fg[0, 1:3, 1:5, 1:5] = True  # the organ, predicted right (gap 3) but for the scribbled voxels
    scribbled = np.zeros(shape, bool)
    scribbled[0, 2, 0, 2:4] = True  # the user adds two voxels the network calls background with gap 30
    target_fg = fg | scribbled
    target = np.stack([~target_fg, target_fg], -1).astype(np.float32)
    gap = np.where(fg, 3.0, -3.0)
    gap[scribbled] = -30.0
    logits = np.stack([-gap / 2, gap / 2], -1)
    weight = np.where(scribbled, 30.0, 1.0).astype(np.float32)
    y, w, s = tf.constant(target), tf.constant(weight), tf.constant(scribbled.astype(np.float32))

    dice_only = logit_gradient(lambda p: interactive_loss(y, p, w, 0.1, "both", s, 0.0), logits)
    # eq. 3 alone cannot move them: its gradient there is float32 rounding of the softmax (about 1e-14
    # exactly, up to 4e-9 as TensorFlow 2.21 rounds it), 1e7 times below the cross-entropy's below
    assert np.abs(dice_only[scribbled]).max() < 1e-7
    assert np.abs(dice_only[fg]).max() > 0  # while the unsaturated voxels do get a gradient

    ce = 0.3
    with_ce = logit_gradient(lambda p: interactive_loss(y, p, w, 0.1, "both", s, ce), logits)
    np.testing.assert_allclose(with_ce[scribbled][:, 1], -ce / 2, rtol=1e-5)  # (p - y) / n, p = 0, y = 1
    np.testing.assert_allclose(with_ce[scribbled][:, 0], ce / 2, rtol=1e-5)
    bifseg = logit_gradient(lambda p: weighted_cross_entropy(y, p, s), logits)
    np.testing.assert_allclose(bifseg[scribbled][:, 1], -1 / 2, rtol=1e-5)


# ---------------------------------------------------------------------------------------------- subsets


def weights_by_path(m) -> dict[str, np.ndarray]:
    return {w.path: w.numpy() for w in m.weights}


@pytest.mark.parametrize(
    "groups, fast",
    [
        (["head"], True),
        (["head", "bottleneck"], True),
        (["decoder.1"], True),
        (["encoder.0"], False),
        (["bottleneck.conv1", "decoder.0.up"], True),  # single layers, as the paper's "a layer"
        (["encoder.1.bn0"], False),  # a BatchNorm layer: its scale and offset train, its statistics never
    ],
)
def test_gradients_reach_only_the_chosen_groups(model, groups, fast):
    refiner = make_refiner(model, cfg(groups, fast=fast))
    tuned = refiner.model  # the refiner's own copy: the job's model stays the baseline
    before, original = weights_by_path(tuned), weights_by_path(model)
    trained = layers_in_groups(tuned, groups)
    vol = volume(0, "a")
    refiner.start(vol, predict_mask(model, vol.image))
    result = refiner.refine(strokes(vol, 0))
    after = weights_by_path(tuned)
    trainable_paths = {v.path for layer in trained for v in layer.trainable_weights}
    changed = {p for p in before if not np.array_equal(before[p], after[p])}
    assert changed <= trainable_paths  # everything else (BatchNorm statistics included) is bit-identical
    for layer in trained:  # and every chosen layer did learn
        assert {v.path for v in layer.trainable_weights} & changed, layer.name
    assert isinstance(result, Refinement) and len(result.losses) == 3
    assert all(type(v) is float for v in result.losses)
    assert not hasattr(refiner, "losses")  # a round's losses come with its result only
    assert all(np.array_equal(original[p], w) for p, w in weights_by_path(model).items())


def test_an_unknown_group_is_an_error_listing_the_valid_ones(model):
    """At build time (the job's schema checks the names earlier, tests/test_config.py): a name the built
    model lacks, or no name at all, is a ValueError listing the model's groups."""
    config = validate_group(InteractConfig, {**preset("iunet"), "trainable": ["decoder.7"]}, "interact")
    with pytest.raises(
        ValueError, match=r"interact\.trainable: unknown layer group\(s\) \['decoder\.7'\]"
    ) as e:
        build_refiner(config, model)
    message = str(e.value)
    assert all(g in message for g in group_names(model))
    assert len(message.splitlines()) < 15  # grouped: blocks, levels, one line of single layers per block
    with pytest.raises(ValueError, match=r"interact\.trainable: empty") as e:  # the schema refuses it too
        make_refiner(model, cfg(["head"]).model_copy(update={"trainable": ()}))
    assert all(g in str(e.value) for g in group_names(model))


@pytest.mark.parametrize(
    "depth, convs, norm", [(2, 2, "batch"), (3, 1, "none"), (1, 3, "batch")], ids=lambda v: str(v)
)
def test_the_config_vocabulary_is_the_built_models(depth, convs, norm):
    """`valid_groups(config)` (validation, no TensorFlow) and `group_names(model)` (the built network)
    are one vocabulary, single layers included."""
    z = (1,) if depth > 1 else ()  # pool z at level 1 where there is one (the schema refuses a missing level)
    c = UNetConfig(base_filters=2, depth=depth, convs_per_level=convs, norm=norm, pool_z_levels=z)
    built = group_names(build_unet(GRID, c))
    assert built == valid_groups(c)
    assert "bottleneck.conv0" in built and f"decoder.{depth - 1}.up" in built
    assert ("bottleneck.bn0" in built) == (norm == "batch")
    assert (f"bottleneck.conv{convs}" in built) is False


def test_a_callers_frozen_layer_still_trains_in_the_refiner(model):
    """own_copy makes every layer trainable: a caller's `layer.trainable = False` (carried by get_config)
    never silently drops variables from `interact.trainable`."""
    caller = own_copy(model)
    caller.get_layer("bottleneck.conv0").trainable = False
    refiner = make_refiner(caller, cfg(["bottleneck"]))
    kernel = refiner.model.get_layer("bottleneck.conv0").kernel
    assert any(v is kernel for v in refiner.variables)
    before = kernel.numpy()
    vol = volume(0, "a")
    refiner.start(vol, predict_mask(model, vol.image))
    refiner.refine(strokes(vol, 0))
    assert not np.array_equal(before, kernel.numpy())
    assert caller.get_layer("bottleneck.conv0").trainable is False  # the caller's flag is left alone


# ---------------------------------------------------------------------------------------------- sessions


def curve(refiner, model, vol, rounds=3):
    """Per-round losses and DSC, and the last probabilities, of one case (as the job runs it)."""
    refiner.start(vol, predict_mask(model, vol.image))
    losses, dscs = [], []
    for k in range(rounds):
        result = refiner.refine(strokes(vol, k))
        pred = result.prediction
        assert pred.dtype == np.uint8  # and it is what the next round's target starts from
        np.testing.assert_array_equal(pred, refiner.prediction)
        np.testing.assert_array_equal(pred, refiner.probability >= 0.5)
        losses.append(list(result.losses))
        dscs.append(2 * np.sum(pred & vol.label) / (pred.sum() + vol.label.sum()))
    return losses, dscs, refiner.probability.copy()


def test_restoring_between_cases_leaves_no_trace(model, baseline):
    refiner = make_refiner(model, cfg(["head", "bottleneck"]))
    a, b = volume(1, "a"), volume(2, "b")
    alone = curve(refiner, model, b)
    curve(refiner, model, a)
    after_a = curve(refiner, model, b)
    assert alone[0] == after_a[0] and alone[1] == after_a[1]  # bit-identical loss and DSC curves
    np.testing.assert_array_equal(alone[2], after_a[2])
    refiner.start(a, predict_mask(model, a.image))
    for w, value in zip(refiner.model.weights, baseline):
        np.testing.assert_array_equal(w.numpy(), value)
    assert int(refiner.optimizer.iterations.numpy()) == 0
    assert refiner._round.tracing_count() == 1  # one trace for all rounds and cases


def test_round_inputs_are_the_accumulated_scribbles_on_the_previous_prediction(model):
    """Round 2's target is the round-1 prediction (not the initial one) with the union of both rounds'
    scribbles pasted in, and its weight map and scribble mask are those of the union (not of round 2's
    strokes only)."""
    refiner = make_refiner(model, cfg(["head", "bottleneck"], steps=5, lr=5e-2))
    vol = volume(7, "g")
    initial = predict_mask(model, vol.image)
    refiner.start(vol, initial)
    first = refiner.refine(strokes(vol, 0)).prediction
    seen = []
    original = refiner.round_inputs
    refiner.round_inputs = lambda interaction: seen.append(original(interaction)) or seen[-1]
    refiner.refine(strokes(vol, 1))
    target, w, mask = seen[0]

    s0, s1 = strokes(vol, 0), strokes(vol, 1)
    union = Interaction((s0.add | s1.add) & ~s1.remove, (s0.remove | s1.remove) & ~s1.add)
    expected = union.paste(first)
    np.testing.assert_array_equal(target[..., 1], expected)
    np.testing.assert_array_equal(target[..., 0], 1 - expected)
    c = refiner.cfg
    np.testing.assert_array_equal(
        w, weight_map(vol.image, union.scribbles, vol.spacing, c.weights, c.geodesic)
    )
    np.testing.assert_array_equal(mask, union.scribbles)  # what the scribble cross-entropy averages over
    # The checks can tell: the alternatives differ here.
    assert not np.array_equal(union.paste(initial), expected)
    assert not np.array_equal(w, weight_map(vol.image, s1.scribbles, vol.spacing, c.weights, c.geodesic))


def test_refine_is_round_inputs_then_run_round(model):
    """`refine` = the public `round_inputs` + `run_round` (what a benchmark times): the same losses and
    probabilities, bit for bit, from the same start."""
    refiner = make_refiner(model, cfg(["head", "bottleneck"]))
    vol = volume(8, "h")
    initial = predict_mask(model, vol.image)
    refiner.start(vol, initial)
    by_refine = [refiner.refine(strokes(vol, k)) for k in range(2)]
    probability = refiner.probability.copy()
    refiner.start(vol, initial)
    for k, result in enumerate(by_refine):
        losses, prob = refiner.run_round(*refiner.round_inputs(strokes(vol, k)))
        assert losses.dtype == np.float32 and prob.dtype == np.float32 and prob.shape == GRID
        assert tuple(float(v) for v in losses) == result.losses
        refiner.prediction = (prob >= 0.5).astype(np.uint8)  # what `refine` keeps for the next round
        np.testing.assert_array_equal(refiner.prediction, result.prediction)
    np.testing.assert_array_equal(prob, probability)


@pytest.mark.parametrize(
    "groups", [["head", "bottleneck"], ["decoder.1"], ["all"], ["head", "bottleneck.conv1"]]
)
def test_fast_path_gives_the_straightforward_results(model, groups):
    fast = make_refiner(model, cfg(groups, fast=True))
    straight = make_refiner(model, cfg(groups, fast=False))
    vol = volume(3, "c")
    f_losses, f_dsc, f_prob = curve(fast, model, vol)
    s_losses, s_dsc, s_prob = curve(straight, model, vol)
    np.testing.assert_allclose(f_losses, s_losses, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(f_prob, s_prob, atol=1e-5)
    np.testing.assert_allclose(f_dsc, s_dsc, atol=1e-3)
    assert f_losses[0][0] != f_losses[-1][-1]  # it did train


def test_zero_steps_is_the_baseline_prediction(model):
    refiner = make_refiner(model, cfg(["head"], steps=0))
    vol = volume(4, "d")
    refiner.start(vol, predict_mask(model, vol.image))
    out = refiner.refine(strokes(vol, 0))
    assert out.losses == ()
    np.testing.assert_array_equal(out.prediction, predict_mask(model, vol.image))


REQUIRED = {  # the presets' required keys (`???`), given runnable values
    "plugin": {"target": "tests.plugins.recorder:Recorder"},
    "cvpr25_container": {"command": f"python {ROOT / 'examples' / 'cvpr25' / 'predict.py'}"},
}


def clicker():
    return make_annotator(
        yaml.safe_load((ROOT / "conf" / "simulator" / "click_cvpr25.yaml").read_text(encoding="utf-8"))
    )


@pytest.mark.parametrize("path", sorted((ROOT / "conf" / "interact").glob("*.yaml")), ids=lambda p: p.stem)
def test_every_method_runs_in_the_session_loop_and_logs_the_same_metrics(model, path, tmp_path):
    spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    if spec["method"] == "cvpr25_container":
        spec["workdir"] = str(tmp_path)  # not a folder in the current one
    if "steps" in spec:
        spec["steps"], spec["max_steps"] = 2, 6  # the stopping rule, where a preset has it: 1-3 chunks
    spec.update(REQUIRED.get(spec["method"], {}))
    config = validate_group(InteractConfig, spec, "interact")
    assert config.method == spec["method"] and path.stem.startswith(config.method)
    refiner = build_refiner(config, model)
    assert refiner.name.startswith(spec["method"])  # a plug-in's name says its target
    if spec["method"] == "bifseg":  # every layer, so nothing is frozen upstream
        assert len(refiner.variables) == len(model.trainable_variables) and refiner.split is None
    vol = volume(5, "e")
    annotator = (
        robot() if spec["method"] != "cvpr25_container" else clicker()
    )  # its file carries no scribbles
    records = run_session(vol, predict_mask(model, vol.image), annotator, refiner, rounds=2, seed=0)
    assert [r.round for r in records] == [0, 1, 2]
    active = [r for r in records[1:] if not r.stopped]
    assert active, "the robot found something to scribble"
    for r in active:
        assert 0.0 <= r.dsc <= 1.0 and r.refine_seconds > 0
        if spec.get("until_agreement") is None:
            assert len(r.losses) == spec.get("steps", 0)
        else:
            assert len(r.losses) in (2, 4, 6)


def test_loss_scaling_follows_the_model_not_the_global_policy(model):
    """A model computing in float16 gets a LossScaleOptimizer whatever the global policy says now (a float32
    job after a mixed one in the same process, or the reverse): the refiner asks its own copy."""
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        m16 = build_unet(GRID, UNetConfig(base_filters=4, depth=2, pool_z_levels=(1,)))  # symbolic only
        assert not needs_loss_scaling(model)
        assert not isinstance(make_optimizer(1e-3, model), keras.optimizers.LossScaleOptimizer)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert needs_loss_scaling(m16) and needs_loss_scaling(own_copy(m16))
    assert isinstance(make_optimizer(1e-3, own_copy(m16)), keras.optimizers.LossScaleOptimizer)


def test_the_loss_scaling_path_restores_and_matches_the_straightforward_one(model, monkeypatch):
    """The float16 path's optimizer (Adam inside a LossScaleOptimizer, with its own scale and step counter)
    forced under float32, where every kernel runs on the CPU: cases b, a, b give bit-identical curves (its
    state is restored too) and the fast path equals the straightforward one."""
    monkeypatch.setattr(optim, "needs_loss_scaling", lambda m: True)
    fast = make_refiner(model, cfg(["head", "bottleneck"], fast=True))
    straight = make_refiner(model, cfg(["head", "bottleneck"], fast=False))
    for r in (fast, straight):
        assert isinstance(r.optimizer, keras.optimizers.LossScaleOptimizer)
        own = {id(r.optimizer.step_counter), id(r.optimizer.dynamic_scale)}
        assert own <= {id(v) for v in r.optimizer.variables}  # restored with the rest at `start`
    a, b = volume(1, "a"), volume(2, "b")
    alone = curve(fast, model, b)
    curve(fast, model, a)
    after_a = curve(fast, model, b)
    assert alone[0] == after_a[0] and alone[1] == after_a[1]
    np.testing.assert_array_equal(alone[2], after_a[2])
    assert float(fast.optimizer.dynamic_scale.numpy()) == 2.0**15  # scaled, finite: the scale held
    assert int(fast.optimizer.step_counter.numpy()) > 0
    fast.start(a, predict_mask(model, a.image))
    assert int(fast.optimizer.step_counter.numpy()) == 0
    s_losses, s_dsc, s_prob = curve(straight, model, b)
    np.testing.assert_allclose(alone[0], s_losses, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(alone[2], s_prob, atol=1e-5)
    assert alone[0][0][0] != alone[0][-1][-1]  # it did train
    assert fast._round.tracing_count() == 1
    assert straight._round.tracing_count() == 1  # its step and its prediction, once each
    assert straight._predict.tracing_count() == 1


def test_mixed_precision_runs_the_same_engine():
    """mixed_bfloat16 runs on the CPU too, so the engine's dtype plumbing (cached features, skip shares,
    float32 loss) is exercised here."""
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        keras.utils.set_random_seed(1)
        m = build_unet(GRID, UNetConfig(base_filters=4, depth=2, pool_z_levels=(1,)))
        fast = make_refiner(m, cfg(["head", "bottleneck"], fast=True))
        straight = make_refiner(m, cfg(["head", "bottleneck"], fast=False))
        assert {t.dtype for t in fast.split.tail.inputs} == {"bfloat16"}
        assert not isinstance(fast.optimizer, keras.optimizers.LossScaleOptimizer)  # bfloat16: no scaling
        f_losses, _, f_prob = curve(fast, m, volume(6, "f"), rounds=1)
        s_losses, _, s_prob = curve(straight, m, volume(6, "f"), rounds=1)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert f_prob.dtype == np.float32
    np.testing.assert_allclose(f_losses, s_losses, rtol=2e-2)  # bfloat16 has 8 bits of mantissa
    assert np.mean(np.abs(f_prob - s_prob)) < 1e-2


def test_with_nothing_frozen_the_fast_setting_takes_the_straightforward_path(model):
    """trainable=[all] leaves no frozen prefix to compute once per case: the refiner runs the
    straightforward steps (faster there) and gives bit-identical rounds."""
    fast = make_refiner(model, cfg(["all"], fast=True))
    straight = make_refiner(model, cfg(["all"], fast=False))
    assert fast.fast is False and fast.split is None
    vol = volume(3, "c")
    f_losses, f_dsc, f_prob = curve(fast, model, vol)
    s_losses, s_dsc, s_prob = curve(straight, model, vol)
    assert f_losses == s_losses and f_dsc == s_dsc
    np.testing.assert_array_equal(f_prob, s_prob)
    assert make_refiner(model, cfg(["head"], fast=True)).fast is True


# ---------------------------------------------------------------------- stopping rule, pasting, bifseg


@pytest.mark.parametrize("fast", [True, False])
def test_until_agreement_fine_tunes_in_chunks_until_the_scribbles_carry_their_label(model, fast):
    """The stopping rule: whole chunks of `steps`, never past `max_steps`, and a round stops as soon as the
    network's own prediction labels the target share of the case's scribbled voxels as scribbled (or at
    the cap); the steps it took are the losses it reports."""
    rule = cfg(["head", "bottleneck"], steps=2, lr=3e-2, until_agreement=0.99, max_steps=40, fast=fast)
    refiner = make_refiner(model, rule)
    vol = volume(6, "f")
    refiner.start(vol, predict_mask(model, vol.image))
    steps_taken = []
    for k in range(3):
        out = refiner.refine(strokes(vol, k))
        taken = len(out.losses)
        steps_taken.append(taken)
        assert taken % 2 == 0 and 2 <= taken <= 40
        shares = [
            float(np.mean(np.r_[out.prediction[s.add] == 1, out.prediction[s.remove] == 0]))
            for s in (strokes(vol, k), refiner.scribbles)  # this round's, and all so far
        ]
        agreement = min(shares)
        assert agreement == refiner.agreement(out.prediction)
        assert agreement >= 0.99 or taken == 40
    assert max(steps_taken) > 2  # at least one round went on past its first chunk
    fixed = make_refiner(model, cfg(["head", "bottleneck"], steps=2, lr=3e-2, fast=fast))
    fixed.start(vol, predict_mask(model, vol.image))
    assert all(len(fixed.refine(strokes(vol, k)).losses) == 2 for k in range(3))


def test_until_agreement_needs_a_chunk():
    with pytest.raises(ValueError, match="until_agreement needs 1 <= steps <= max_steps"):
        cfg(["head"], steps=0, until_agreement=0.95)
    with pytest.raises(ValueError, match="steps=30, max_steps=20"):
        cfg(["head"], steps=30, until_agreement=0.95, max_steps=20)


def confident_copy(model, scale: float = 40.0):
    """The model with its head's logits multiplied by `scale`: a network sure of every voxel, as a Dice-trained
    baseline is of most of them."""
    sure = own_copy(model)
    head = sure.get_layer("head")
    with np.errstate(invalid="ignore"):  # inf x 0 = NaN on purpose (the diverged-round test)
        head.set_weights([w * scale for w in head.get_weights()])
    return sure


def test_a_network_sure_of_its_mistake_follows_the_scribble_only_with_the_cross_entropy(model):
    """End to end through `refine` and the stopping rule: an "add" stroke on voxels a confident network calls
    background with a logit gap of 18 to 60 (a Dice-trained baseline's boundary reaches such gaps). Eq. 3
    alone runs to the cap with not one of them followed (its gradient vanishes there); with `scribble_ce`
    the same refiner honours the stroke long before the cap."""
    sure = confident_copy(model, 6000.0)
    vol = volume(9, "i")
    probability = np.asarray(sure(vol.image[None, ..., None]), np.float64)[0]
    gap = np.log(np.maximum(probability[..., 1], 1e-300)) - np.log(np.maximum(probability[..., 0], 1e-300))
    start = (probability[..., 1] >= 0.5).astype(np.uint8)
    sure_of_it = vol.label.astype(bool) & (start == 0) & (gap < -18) & (gap > -60)
    z, y = np.unravel_index(np.argmax(sure_of_it.sum(-1)), GRID[:2])
    add = np.zeros(GRID, bool)
    add[z, y] = sure_of_it[z, y]  # the stroke: along the row of the missed organ with most such voxels
    assert add.sum() >= 3
    stroke = Interaction(add, np.zeros(GRID, bool))
    taken = {}
    for ce in (0.0, 0.3):
        refiner = make_refiner(
            sure,
            cfg(["head", "bottleneck"], steps=5, lr=1e-2, until_agreement=0.95, max_steps=60, scribble_ce=ce),
        )
        refiner.start(vol, start)
        out = refiner.refine(stroke)
        taken[ce] = (len(out.losses), refiner.agreement(out.prediction))
    assert taken[0.0] == (60, 0.0)  # the cap, and not one scribbled voxel followed
    assert taken[0.3][1] >= 0.95 and taken[0.3][0] <= 30


def test_a_diverged_round_is_an_error_naming_the_learning_rate_never_an_empty_segmentation(model):
    """NaN weights predict background everywhere: a round whose loss is not finite raises, so the case fails
    with the reason (the job records it and goes on) instead of logging DSC 0 as a result."""
    blown_up = confident_copy(model, float("inf"))  # inf x 0 = NaN among its head's weights
    refiner = make_refiner(blown_up, cfg(["head"], steps=3, lr=1e-2))
    vol = volume(10, "j")
    refiner.start(vol, predict_mask(model, vol.image))
    with pytest.raises(FloatingPointError, match=r"diverged .* at step 1 .*interact.lr \(now 0.01\)"):
        refiner.refine(strokes(vol, 0))


def test_paste_scribbles_is_separate_and_agreement_is_measured_on_the_network(model):
    """`paste_scribbles` puts the accumulated scribbles over the network's output (the user sees them), the
    network's own output is kept, and the session's agreement is measured on the network's output: a
    pasted round is never counted as honoured for free."""
    vol = volume(7, "g")
    start = predict_mask(model, vol.image)
    plain = make_refiner(model, cfg(["head"], steps=1, lr=1e-6))
    pasted = make_refiner(model, cfg(["head"], steps=1, lr=1e-6, paste_scribbles=True))
    plain.start(vol, start)
    pasted.start(vol, start)
    a, b = plain.refine(strokes(vol, 0)), pasted.refine(strokes(vol, 0))
    np.testing.assert_array_equal(a.prediction, b.network)  # same network output
    s = pasted.scribbles
    assert b.prediction[s.add].all() and not b.prediction[s.remove].any()
    assert a.network is None and a.own is a.prediction
    assert plain.agreement(a.prediction) < 1  # the tiny step did not honour them
    records = run_session(vol, start, robot(), pasted, rounds=1, seed=0)
    assert records[1].agreement < 1.0  # measured on the network's output, not on the pasted one


def test_bifseg_is_its_own_method_not_iunet_over_all_layers(model):
    """bifseg: every layer, BIFSeg's weighted cross-entropy and probability-based uncertainty; from the
    same start and the same budget it differs from iunet with trainable=[all]."""
    from iunet_bench.interactive.config import BifsegInteract
    from iunet_bench.interactive.objectives import BifsegObjective, IUnetObjective

    vol = volume(8, "h")
    start = predict_mask(model, vol.image)
    bif = build_refiner(BifsegInteract(steps=3, lr=1e-2), model)
    iun = build_refiner(cfg(["all"], steps=3, lr=1e-2), model)
    assert isinstance(bif.objective, BifsegObjective) and isinstance(iun.objective, IUnetObjective)
    assert len(bif.variables) == len(model.trainable_variables) and not bif.fast
    bif.start(vol, start)
    iun.start(vol, start)
    a, b = bif.refine(strokes(vol, 0)), iun.refine(strokes(vol, 0))
    assert not np.allclose(a.losses, b.losses)
    assert not np.array_equal(bif.probability, iun.probability)


def test_bifseg_weight_map_zeroes_what_the_network_is_unsure_of():
    from iunet_bench.interactive.weights import confidence_weight_map

    p = np.array([[[0.05, 0.3, 0.5, 0.75, 0.85, 0.99]]], np.float32)
    scribbles = np.zeros(p.shape, bool)
    scribbles[0, 0, 2] = True  # a scribble on an uncertain voxel keeps the scribble weight
    w = confidence_weight_map(p, scribbles, 5.0, 0.8)
    np.testing.assert_array_equal(w, [[[1.0, 0.0, 5.0, 0.0, 1.0, 1.0]]])


def test_a_local_round_changes_only_voxels_near_the_scribbles(model):
    """interact.local_mm: a trust region around the case's scribbles; outside it the previous prediction
    stays, inside it the network's own output (the same as without the trust region)."""
    vol = volume(6, "f")
    start = predict_mask(model, vol.image)
    interaction = strokes(vol, 0)
    outs = []
    for radius in (None, 4.0):  # one after the other: `start` restores the baseline both share
        refiner = make_refiner(model, cfg(["all"], steps=4, lr=3e-2, local_mm=radius))
        refiner.start(vol, start)
        outs.append(refiner.refine(interaction))
    out_free, out_local = outs
    from scipy import ndimage as ndi

    near = ndi.distance_transform_edt(~(interaction.add | interaction.remove), sampling=vol.spacing) <= 4.0
    assert (out_free.prediction != start)[~near].any()  # the free round does change far voxels
    np.testing.assert_array_equal(out_local.prediction[~near], start[~near])
    np.testing.assert_array_equal(out_local.prediction[near], out_free.prediction[near])
