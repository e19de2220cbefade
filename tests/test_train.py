"""Baseline training room: augmentation geometry and the cache lock (no network training here)."""

import subprocess
import sys

import numpy as np
import pytest

from iunet_bench.train.augment import AugmentConfig, augment
from iunet_bench.train.baseline import _Lock, train_config_from


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
import fcntl, sys, time
fh = open(sys.argv[1], "a+")
fcntl.flock(fh, fcntl.LOCK_EX)
print("held", flush=True)
time.sleep(60)
"""


def test_the_baseline_lock_waits_for_a_live_holder_and_is_free_once_the_holder_is_killed(tmp_path):
    path = tmp_path / ".lock"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(TimeoutError), _Lock(path, timeout=1.0):
            pass
        holder.kill()  # a job killed while training: no stale lock may remain
        holder.wait()
        with _Lock(path, timeout=5.0):
            pass
    finally:
        holder.kill()


def test_train_config_names_bad_and_unknown_keys():
    good = {"steps": 3, "batch_size": 2, "lr": 1e-3, "cache_dir": "x", "augment": {"noise_hu": 3.0}}
    assert train_config_from(good).augment.noise_hu == 3.0
    for change, key in [
        ({"steps": -1}, "train.steps"),
        ({"steps": 2.5}, "train.steps"),
        ({"lr": 0}, "train.lr"),
        ({"batch_size": True}, "train.batch_size"),
        ({"augment": {"noise_hu": -1}}, "train.augment.noise_hu"),
        ({"augment": {"hu_per_unit": 0}}, "train.augment.hu_per_unit"),
        ({"augment": {"flip": 1}}, "train.augment.flip"),
        ({"epochs": 3}, "train.epochs"),
    ]:
        with pytest.raises(ValueError, match=key.replace(".", r"\.")):
            train_config_from({**good, **change})
