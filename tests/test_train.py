"""Baseline training room: augmentation geometry and the cache lock (no network training here)."""

import os
import socket
import subprocess
import sys

import numpy as np
import pytest

from iunet_bench.train.augment import AugmentConfig, augment
from iunet_bench.train.baseline import _Lock


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


def test_a_lock_left_by_a_dead_process_is_broken_and_a_live_one_is_respected(tmp_path):
    path = tmp_path / ".lock"
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    path.write_text(f"{socket.gethostname()} {int(dead.stdout)}", encoding="utf-8")
    with _Lock(path, timeout=5):
        assert path.read_text(encoding="utf-8") == f"{socket.gethostname()} {os.getpid()}"
    assert not path.exists()
    path.write_text(
        f"{socket.gethostname()} {os.getpid()}", encoding="utf-8"
    )  # held by a live process (this one)
    with pytest.raises(TimeoutError), _Lock(path, timeout=1.5):
        pass
