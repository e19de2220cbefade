"""Baseline training (paper section 2.4): augmented volumes, soft Dice loss, Adam; cached by config.

The cache key hashes everything that determines the weights: training volumes, model and training config,
and the seed. A sweep over interaction settings therefore trains the baseline once and reuses it.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from iunet_bench.data.case import Volume
from iunet_bench.train.augment import AugmentConfig, augment


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 300
    batch_size: int = 4
    lr: float = 1e-4
    augment: AugmentConfig = AugmentConfig()


def train_config_from(cfg: Mapping[str, Any]) -> TrainConfig:
    a = dict(cfg.get("augment", {}))
    return TrainConfig(
        steps=int(cfg["steps"]),
        batch_size=int(cfg["batch_size"]),
        lr=float(cfg["lr"]),
        augment=AugmentConfig(**a),
    )


def cache_key(volumes: Sequence[Volume], model_cfg: Mapping, train_cfg: TrainConfig, seed: int) -> str:
    h = hashlib.sha256()
    h.update(
        json.dumps(
            {"model": dict(model_cfg), "train": asdict(train_cfg), "seed": seed}, sort_keys=True, default=str
        ).encode()
    )
    for v in volumes:
        h.update(v.case_id.encode())
        h.update(np.ascontiguousarray(v.image).tobytes())
        h.update(np.ascontiguousarray(v.label).tobytes())
    return h.hexdigest()[:20]


def batches(volumes: Sequence[Volume], cfg: TrainConfig, rng: np.random.Generator):
    """Endless augmented batches: (images (B, z, y, x, 1), one-hot labels (B, z, y, x, 2))."""
    while True:
        idx = rng.integers(0, len(volumes), size=cfg.batch_size)
        xs, ys = [], []
        for i in idx:
            img, lab = augment(volumes[i].image, volumes[i].label, rng, cfg.augment)
            xs.append(img)
            ys.append(lab)
        x = np.stack(xs)[..., None]
        y = np.stack(ys)
        yield x, np.stack([1 - y, y], axis=-1).astype(np.float32)


def train(
    model,
    volumes: Sequence[Volume],
    cfg: TrainConfig,
    seed: int,
    on_step: Callable[[int, float], None] | None = None,
) -> list[float]:
    """Train `model` in place for `cfg.steps` steps; returns the loss per step."""
    import keras
    import tensorflow as tf

    from iunet_bench.train.loss import soft_dice_loss

    if not volumes:
        raise ValueError("baseline training: no training volumes (check data.split and the data set)")
    rng = np.random.default_rng(np.random.SeedSequence([seed, 1]))
    optimizer = keras.optimizers.Adam(cfg.lr)
    variables = model.trainable_variables

    @tf.function(reduce_retracing=True)
    def step(x, y):
        with tf.GradientTape() as tape:
            p = model(x, training=True)
            loss = soft_dice_loss(y, tf.cast(p, tf.float32))
        grads = tape.gradient(loss, variables)
        optimizer.apply_gradients(zip(grads, variables))
        return loss

    losses = []
    stream = batches(volumes, cfg, rng)
    for i in range(cfg.steps):
        x, y = next(stream)
        loss = float(step(tf.constant(x), tf.constant(y)))
        losses.append(loss)
        if on_step:
            on_step(i, loss)
    return losses


class _Lock:
    """An exclusive lock file, so parallel sweep jobs that need the same baseline train it once.

    The file holds "<host> <pid>"; a lock left by a process that no longer runs on this host (a killed
    job) is broken instead of waited on.
    """

    def __init__(self, path: Path, timeout: float = 6 * 3600):
        self.path, self.timeout = path, timeout
        self.owner = f"{socket.gethostname()} {os.getpid()}"

    def _stale(self) -> bool:
        try:
            host, pid = self.path.read_text(encoding="utf-8").split()
        except (OSError, ValueError):
            return False  # being written, or gone: try again
        if host != socket.gethostname():
            return False  # another machine's job: cannot tell, keep waiting
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False

    def __enter__(self):
        start = time.time()
        while True:
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
                os.write(fd, self.owner.encode())
                os.close(fd)
                return self
            except FileExistsError:
                if self._stale():
                    self.path.unlink(missing_ok=True)
                    continue
                if time.time() - start > self.timeout:
                    raise TimeoutError(
                        f"waited {self.timeout:.0f} s for {self.path}; delete it if stale"
                    ) from None
                time.sleep(1.0)

    def __exit__(self, *exc):
        self.path.unlink(missing_ok=True)


def load_or_train(
    build_model: Callable[[], Any],
    volumes: Sequence[Volume],
    model_cfg: Mapping,
    train_cfg: TrainConfig,
    seed: int,
    cache_dir: Path,
    on_step: Callable[[int, float], None] | None = None,
):
    """The baseline model for this configuration: from the cache if present, else trained and cached.

    Returns (model, info) where info has the cache key, whether it was a cache hit, and the training losses.
    """
    import keras

    key = cache_key(volumes, model_cfg, train_cfg, seed)
    folder = Path(cache_dir) / key
    weights = folder / "model.weights.h5"
    folder.mkdir(parents=True, exist_ok=True)
    with _Lock(folder / ".lock"):
        model = build_model()
        if weights.exists():
            model.load_weights(weights)
            meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
            return model, {"key": key, "hit": True, "losses": meta.get("losses", []), "path": str(folder)}
        keras.utils.set_random_seed(seed)
        model = build_model()
        t0 = time.time()
        losses = train(model, volumes, train_cfg, seed, on_step)
        model.save_weights(weights)
        meta = {
            "key": key,
            "losses": losses,
            "seconds": time.time() - t0,
            "train_ids": [v.case_id for v in volumes],
        }
        (folder / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
        return model, {"key": key, "hit": False, "losses": losses, "path": str(folder)}
