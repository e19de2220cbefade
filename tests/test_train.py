"""Baseline training room: augmentation geometry, the one cache mechanism (lock, atomic entries, code
hashes) and the baseline it caches."""

import subprocess
import sys

import numpy as np
import pytest
from filelock import Timeout

from iunet_bench import cache as cache_module
from iunet_bench.cache import Cache
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
    return Cache(root, code=("iunet_bench.rng",), what="test entries", wait_seconds=wait)


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
        cache_module, "_source", lambda m: real(m) + (b"# edited" if m == "iunet_bench.rng" else b"")
    )
    cache_module.code_digest.cache_clear()
    try:
        assert c.key({"x": 1}) != before
        # a module the cache does not list changes nothing
        other = Cache(tmp_path, code=("iunet_bench.schema",))
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

    from iunet_bench.config import load_config
    from iunet_bench.prepare import JobSetup

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
