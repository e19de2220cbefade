"""Baseline training room: augmentation geometry, the one cache mechanism (lock, atomic entries, code
hashes) and the baseline it caches."""

import subprocess
import sys

import numpy as np
import pytest
from filelock import Timeout

from iunet_bench.core import files as cache_module
from iunet_bench.core.files import Cache
from iunet_bench.train.augment import augment
from iunet_bench.train.config import AugmentConfig


def test_augment_keeps_image_and_label_aligned_and_within_the_configured_motion():
    rng = np.random.default_rng(0)
    label = np.zeros((12, 32, 32), np.uint8)
    label[4:8, 10:22, 12:20] = 1
    image = np.where(label, 0.5, -0.5).astype(np.float32)
    cfg = AugmentConfig(translate_voxels=3.0, rotate_degrees=10.0, noise_hu=0.0)
    for _ in range(20):
        img, lab = augment(image, label, rng, cfg)
        assert img.shape == image.shape and lab.shape == label.shape
        # the label moves with the image: labelled voxels are bright, the others dark (trilinear edges aside)
        inside, outside = img[lab == 1], img[lab == 0]
        assert np.median(inside) > 0.4 and np.median(outside) < -0.4
        # a rigid motion keeps the volume (up to interpolation at the edges)
        assert abs(int(lab.sum()) - int(label.sum())) < 0.2 * label.sum()
        # centroid moves at most the translation plus what a 10-degree turn does to an off-centre blob
        shift = np.array(np.nonzero(lab)).mean(1) - np.array(np.nonzero(label)).mean(1)
        assert np.all(np.abs(shift) <= 3.0 + 1.5)


HOLD = """
import sys, time
from filelock import FileLock
lock = FileLock(sys.argv[1])  # kept referenced: a collected FileLock lets go
lock.acquire()
print("held", flush=True)
time.sleep(60)
"""


def _text_cache(root, wait=1.0) -> Cache:
    return Cache(root, code=("iunet_bench.core.rng",), what="test entries", wait_seconds=wait)


def _save(value, folder):
    (folder / "value.txt").write_text(value, encoding="utf-8")


def _load(folder):
    return (folder / "value.txt").read_text(encoding="utf-8")


def test_an_entry_is_made_once_waits_for_a_live_maker_and_is_free_once_the_maker_is_killed(tmp_path):
    c = _text_cache(tmp_path)
    key = c.key({"x": 1})
    made = []
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(c.folder("entry", key)) + ".lock"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(
            Timeout
        ):  # another job is making this entry: wait for it (here: 1 s, then give up)
            c.get_or_make("entry", key, lambda: made.append(1) or "v", _save, _load)
        assert made == []
        holder.kill()  # a job killed while making it: no stale lock may remain
        holder.wait()
        assert c.get_or_make("entry", key, lambda: made.append(1) or "v", _save, _load) == ("v", False)
        assert c.get_or_make("entry", key, lambda: made.append(1) or "w", _save, _load) == ("v", True)
        assert made == [1]
        assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]  # nothing half-written left
    finally:
        holder.kill()


def test_a_damaged_entry_is_made_again_and_an_unwritable_cache_warns_and_still_returns_the_value(tmp_path):
    c = _text_cache(tmp_path)
    key = c.key("k")
    c.get_or_make("e", key, lambda: "v", _save, _load)
    (c.folder("e", key) / "value.txt").unlink()  # damaged: load fails
    assert c.get_or_make("e", key, lambda: "again", _save, _load) == ("again", False)

    def broken(value, folder):
        raise OSError(28, "No space left on device")

    with pytest.warns(RuntimeWarning, match=r"cannot write test entries under .*No space left"):
        assert c.get_or_make("e", c.key("other"), lambda: "v2", broken, _load) == ("v2", False)


def test_a_key_changes_with_the_source_of_the_code_that_makes_the_entry(tmp_path, monkeypatch):
    c = _text_cache(tmp_path)
    before = c.key({"x": 1})
    real = cache_module._source
    monkeypatch.setattr(
        cache_module, "_source", lambda m: real(m) + (b"# edited" if m == "iunet_bench.core.rng" else b"")
    )
    cache_module.code_digest.cache_clear()
    try:
        assert c.key({"x": 1}) != before
        # a module the cache does not list changes nothing
        other = Cache(tmp_path, code=("iunet_bench.core.schema",))
        unlisted = other.key({"x": 1})
    finally:
        monkeypatch.setattr(cache_module, "_source", real)
        cache_module.code_digest.cache_clear()
    assert other.key({"x": 1}) == unlisted
    assert c.key({"x": 1}) == before  # the edit undone, the key is the old one again


@pytest.mark.slow
def test_a_baseline_is_trained_once_reused_and_retrained_when_a_model_or_training_file_changes(
    tmp_path, monkeypatch, compose
):
    from omegaconf import OmegaConf

    from iunet_bench.tasks.config import load_config
    from iunet_bench.tasks.prepare import JobSetup

    monkeypatch.chdir(tmp_path)
    from tests.conftest import shared_data_cache

    overrides = ("experiment=smoke", "train.steps=2", shared_data_cache())
    config = load_config(OmegaConf.to_container(compose(*overrides), resolve=True))
    first = JobSetup(config).baseline()
    again = JobSetup(config).baseline()
    assert (first.hit, again.hit, again.key) == (False, True, first.key)
    weights = [np.array_equal(a, b) for a, b in zip(first.model.get_weights(), again.model.get_weights())]
    assert all(weights)
    real = cache_module._source
    for module in ("iunet_bench.models.unet", "iunet_bench.train.loss"):
        monkeypatch.setattr(
            cache_module, "_source", lambda m, module=module: real(m) + (b"# edited" if m == module else b"")
        )
        cache_module.code_digest.cache_clear()
        changed = JobSetup(config).baseline()
        assert not changed.hit and changed.key != first.key, module
    monkeypatch.setattr(cache_module, "_source", real)
    cache_module.code_digest.cache_clear()
    # the precision is part of the key: a mixed-precision baseline is never served to a float32 job
    from iunet_bench.train.baseline import baseline_key

    vols = JobSetup(config).volumes().train
    keys = {
        p: baseline_key(vols, config.model, config.train, config.seed, p)
        for p in ("float32", "mixed_float16")
    }
    assert keys["float32"] == first.key != keys["mixed_float16"]


# ------------------------------------------------------------------------------------------ training


def _tiny(seed: int = 0):
    import keras

    from iunet_bench.models.unet import UNetConfig, build_unet

    keras.utils.set_random_seed(seed)
    return build_unet((8, 24, 24), UNetConfig(base_filters=2, depth=2, pool_z_levels=(1,)))


def _volumes(n: int = 3):
    from tests.test_interactive import volume

    return [volume(i, f"v{i}") for i in range(n)]


class _Interrupt(Exception):
    pass


@pytest.mark.slow
def test_an_interrupted_training_resumes_from_its_checkpoint_to_the_same_weights(tmp_path):
    """Killed after step 5 with checkpoints every 3 steps, training continues from step 3 and ends with the
    weights of a training that was never interrupted (stream, moments and step restored)."""
    from iunet_bench.train.baseline import train
    from iunet_bench.train.config import TrainConfig

    cfg = TrainConfig(steps=8, batch_size=1, checkpoint_every=3)
    whole = _tiny()
    train(whole, _volumes(), cfg, seed=0, checkpoint=tmp_path / "a.partial")

    def stop_after_five(p):
        if p.step == 4:
            raise _Interrupt

    cut = _tiny()
    with pytest.raises(_Interrupt):
        train(cut, _volumes(), cfg, seed=0, on_step=stop_after_five, checkpoint=tmp_path / "b.partial")
    assert (tmp_path / "b.partial" / "state.json").is_file()
    again = _tiny()  # a fresh process would build the model anew
    steps = []
    result = train(
        again,
        _volumes(),
        cfg,
        seed=0,
        on_step=lambda p: steps.append(p.step),
        checkpoint=tmp_path / "b.partial",
    )
    assert result["resumed_from"] == 3 and steps == list(range(3, 8)) and len(result["losses"]) == 8
    for a, b in zip(whole.get_weights(), again.get_weights()):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)
    assert not (tmp_path / "b.partial").exists()  # a finished training leaves no checkpoint


@pytest.mark.slow
def test_early_stopping_ends_after_validations_without_improvement_and_keeps_the_best_weights():
    from iunet_bench.train.baseline import train, validation_dsc
    from iunet_bench.train.config import TrainConfig

    vols = _volumes(4)
    # a vanishing learning rate: the validation DSC never gets better, so training stops at the third
    # validation (the first sets the best, two more without improvement)
    cfg = TrainConfig(steps=40, batch_size=1, lr=1e-12, validation_cases=1, validate_every=2, early_stop=2)
    seen = []
    model = _tiny()
    result = train(model, vols, cfg, seed=0, on_step=seen.append)
    assert result["stopped_at"] == 6 and [s for s, _ in result["validation"]] == [2, 4, 6]
    assert validation_dsc(model, vols[-1:]) == pytest.approx(max(v for _, v in result["validation"]))
    assert seen[0].val_dsc is None and seen[1].val_dsc == result["validation"][0][1]
    with pytest.raises(ValueError, match="train.validation_cases"):
        TrainConfig(early_stop=3)
