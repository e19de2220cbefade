"""The engine agrees with itself on every Keras backend: from the same weights, one fine-tuning round gives
the same losses and prediction, and a short baseline training the same losses and DSC, within float32
tolerance. Keras picks its backend once per process, so each backend runs in a subprocess of this file.

TensorFlow and JAX run here and in CI (CPU, the smoke experiment's tiny network and volumes); PyTorch runs
where it is installed (the GPU machine has it) and is skipped with the reason elsewhere.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SMOKE = {
    "data": {"source": "phantom", "phantom": {"n_cases": 6}, "preprocess": {"grid": [8, 24, 24]}},
    "model": {"name": "iunet", "base_filters": 4, "depth": 2, "pool_z_levels": [1]},
    "train": {"steps": 12, "batch_size": 2, "lr": 3e-3},
}
# float32 on different kernels (oneDNN, XLA, ATen): sums in other orders
RTOL_LOSS, ATOL_PROB, TOL_DSC = 1e-3, 2e-3, 0.02
RTOL_MIXED, ATOL_MIXED = 3e-2, 3e-2  # bfloat16: 8 bits of mantissa


def probe(backend: str, weights: Path, out: Path) -> None:
    """One round (default groups and all layers) and a 12-step training from the weights in `weights`
    (written by the first backend), results to `out` (npz)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from iunet_bench.core.runtime import use_backend

    use_backend(backend, "cpu")
    from iunet_bench.core import metrics
    from iunet_bench.data.phantom import phantom_case
    from iunet_bench.data.preprocess import crop_box, preprocess
    from iunet_bench.interactive.refiner import predict_mask
    from iunet_bench.tasks.config import load_config
    from iunet_bench.tasks.prepare import JobSetup
    from iunet_bench.train.baseline import train

    config = load_config({**SMOKE, "backend": backend})
    setup = JobSetup(config)
    _ = setup.device
    p = config.data.preprocess
    volumes = [
        preprocess(c, p, crop_box(c.label, p.margin))
        for c in (phantom_case(config.data.phantom, config.seed, i) for i in range(3))
    ]
    model = setup.build_model()
    if weights.exists():
        with np.load(weights) as saved:
            model.set_weights([saved[f"arr_{i}"] for i in range(len(saved.files))])
    else:
        np.savez(weights, *model.get_weights())
    results = {}
    volume = volumes[0]
    # the robot draws on a backend-free prediction (an untrained network's p sits at 0.5, where float
    # rounding flips voxels): the reference shifted by two voxels
    initial = np.roll(volume.label, 2, axis=2)
    interaction = setup.robot.annotate(
        volume.image, volume.label, initial, np.random.default_rng(0), volume.spacing
    )
    for name, groups in (("default", config.interact.trainable), ("all", ("all",))):
        interact = config.interact.model_copy(
            update={"trainable": groups, "steps": 4, "until_agreement": None}
        )
        refiner = setup.refiner(interact, model)
        refiner.start(volume, initial)
        losses, prob = refiner.run_round(*refiner.round_inputs(interaction))
        results[f"{name}_losses"], results[f"{name}_prob"] = losses, prob
    history = train(model, volumes[1:], config.train, config.seed)
    results["train_losses"] = np.asarray(history["losses"], np.float32)
    results["train_dsc"] = np.asarray(
        [metrics.dsc(v.label, predict_mask(model, v.image)) for v in volumes], np.float32
    )
    # mixed precision (bfloat16: a CPU has it, so the path runs here; `precision=` refuses it on a CPU
    # only because it is slower there): the same round from the same weights
    import keras

    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    mixed = setup.build_model()
    with np.load(weights) as saved:
        mixed.set_weights([saved[f"arr_{i}"] for i in range(len(saved.files))])
    interact = config.interact.model_copy(update={"steps": 4, "until_agreement": None})
    refiner = setup.refiner(interact, mixed)
    refiner.start(volume, initial)
    losses, prob = refiner.run_round(*refiner.round_inputs(interaction))
    results["mixed_losses"], results["mixed_prob"] = (
        np.asarray(losses, np.float32),
        np.asarray(prob, np.float32),
    )
    keras.mixed_precision.set_global_policy("float32")
    np.savez(out, **results)


def run_probe(backend: str, weights: Path, out: Path) -> dict:
    done = subprocess.run(
        [sys.executable, __file__, backend, str(weights), str(out)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=900,
    )
    assert done.returncode == 0, f"{backend} probe failed:\n{done.stderr[-3000:]}"
    # a job on another backend than TensorFlow warns on a CPU that it will be slow; TensorFlow's does not
    assert ("is slow" in done.stderr) == (backend != "tensorflow"), done.stderr[-2000:]
    with np.load(out) as saved:
        return dict(saved)


@pytest.fixture(scope="module")
def tensorflow_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("backends")
    return folder / "weights.npz", run_probe("tensorflow", folder / "weights.npz", folder / "tf.npz")


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_a_round_and_a_short_training_agree_with_tensorflow(backend, tensorflow_run, tmp_path):
    if importlib.util.find_spec(backend) is None:
        pytest.skip(f"{backend} is not installed here (`pip install -e .[{backend}]`)")
    weights, tf = tensorflow_run
    other = run_probe(backend, weights, tmp_path / f"{backend}.npz")
    for name in ("default", "all"):
        np.testing.assert_allclose(other[f"{name}_losses"], tf[f"{name}_losses"], rtol=RTOL_LOSS)
        np.testing.assert_allclose(other[f"{name}_prob"], tf[f"{name}_prob"], atol=ATOL_PROB)
    assert len(other["train_losses"]) == len(tf["train_losses"]) == SMOKE["train"]["steps"]
    np.testing.assert_allclose(other["train_losses"], tf["train_losses"], rtol=RTOL_LOSS * 5)
    np.testing.assert_allclose(other["train_dsc"], tf["train_dsc"], atol=TOL_DSC)
    # bfloat16 keeps about 3 significant digits: the same round within that, on every backend
    np.testing.assert_allclose(other["mixed_losses"], tf["mixed_losses"], rtol=RTOL_MIXED)
    np.testing.assert_allclose(other["mixed_prob"], tf["mixed_prob"], atol=ATOL_MIXED)


def test_the_compared_rounds_train_so_agreement_is_no_accident(tensorflow_run):
    """The comparison above means something only if a round moves the network: its losses fall."""
    _, tf = tensorflow_run
    for name in ("default", "all", "mixed"):
        losses = tf[f"{name}_losses"]
        assert len(losses) == 4 and losses[-1] < losses[0]


def test_a_mixed_precision_round_computes_the_float32_round_within_bfloat16_rounding(tensorflow_run):
    _, tf = tensorflow_run
    assert np.isfinite(tf["mixed_losses"]).all()
    np.testing.assert_allclose(tf["mixed_losses"], tf["default_losses"], rtol=RTOL_MIXED)
    np.testing.assert_allclose(tf["mixed_prob"], tf["default_prob"], atol=ATOL_MIXED)
    assert not np.array_equal(tf["mixed_prob"], tf["default_prob"])  # the policy did apply


def test_a_second_backend_in_one_process_is_refused():
    code = (
        "from iunet_bench.core.runtime import use_backend\n"
        "use_backend('tensorflow')\nimport keras\n"
        "try:\n    use_backend('jax')\nexcept RuntimeError as e:\n    print('refused:', e)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert "refused: backend: 'jax' was asked for but Keras already runs on 'tensorflow'" in done.stdout


if __name__ == "__main__":
    probe(sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]))
