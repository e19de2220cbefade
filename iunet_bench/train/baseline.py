"""Baseline training (paper section 2.4): augmented volumes, soft Dice loss, Adam; cached.

The cache (`iunet_bench.cache`, the project's one mechanism) keys a baseline by everything that determines
its weights: the training volumes, the model and training config, the seed, the precision, and the source
of the code that builds and trains it (`CODE_MODULES`) with the versions of the libraries under it. A sweep
over interaction settings therefore trains the baseline once, parallel jobs train it once (the others wait
under the entry's lock), and a change to the model, the loss, the augmentation or the training loop trains
anew instead of reusing a stale baseline.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from iunet_bench.cache import Cache
from iunet_bench.data.case import Volume
from iunet_bench.models.config import UNetConfig
from iunet_bench.rng import derive_rng
from iunet_bench.train.augment import augment
from iunet_bench.train.config import TrainConfig

CODE_MODULES = (
    "iunet_bench.models.unet",
    "iunet_bench.models.config",
    "iunet_bench.train.baseline",
    "iunet_bench.train.config",
    "iunet_bench.train.augment",
    "iunet_bench.train.loss",
    "iunet_bench.train.optim",
    "iunet_bench.rng",
)
LIBRARIES = ("numpy", "scipy", "keras", "tensorflow", "tensorflow-cpu")


def baseline_cache(root: Path) -> Cache:
    return Cache(root, CODE_MODULES, LIBRARIES, what="trained baselines", config_key="train.cache_dir")


def volumes_digest(volumes: Sequence[Volume]) -> str:
    h = hashlib.sha256()
    for v in volumes:
        h.update(v.case_id.encode())
        h.update(np.ascontiguousarray(v.image).tobytes())
        h.update(np.ascontiguousarray(v.label).tobytes())
    return h.hexdigest()


def baseline_key(
    volumes: Sequence[Volume], model: UNetConfig, train: TrainConfig, seed: int, precision: str
) -> str:
    """The cache key of the baseline these settings train (code and library versions included)."""
    payload = {
        "volumes": volumes_digest(volumes),
        "model": model.model_dump(mode="json"),
        "train": train.model_dump(mode="json", exclude={"cache_dir"}),
        "seed": int(seed),
        "precision": precision,
    }
    return baseline_cache(train.cache_dir).key(payload)


@dataclass
class Baseline:
    model: Any  # keras.Model
    key: str
    hit: bool  # loaded from the cache
    losses: list[float] = field(default_factory=list)  # training loss per step (as recorded when trained)
    path: str = ""


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
    import tensorflow as tf

    from iunet_bench.train.loss import soft_dice_loss
    from iunet_bench.train.optim import make_optimizer

    if not volumes:
        raise ValueError("baseline training: no training volumes (check data.split and the data set)")
    rng = derive_rng(seed, 1)
    optimizer = make_optimizer(cfg.lr, model)  # loss-scaled under mixed_float16
    variables = model.trainable_variables

    @tf.function(reduce_retracing=True)
    def step(x, y):
        with tf.GradientTape() as tape:
            p = model(x, training=True)
            loss = soft_dice_loss(y, tf.cast(p, tf.float32))
            scaled = optimizer.scale_loss(loss)
        optimizer.apply(tape.gradient(scaled, variables), variables)
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


def load_or_train(
    build_model: Callable[[], Any],
    volumes: Sequence[Volume],
    model_cfg: UNetConfig,
    train_cfg: TrainConfig,
    seed: int,
    precision: str = "float32",
    on_step: Callable[[int, float], None] | None = None,
) -> Baseline:
    """The baseline model for this configuration: from the cache if present, else trained and cached."""
    import keras

    cache = baseline_cache(train_cfg.cache_dir)
    key = baseline_key(volumes, model_cfg, train_cfg, seed, precision)

    def make():
        keras.utils.set_random_seed(seed)
        model = build_model()
        t0 = time.time()
        losses = train(model, volumes, train_cfg, seed, on_step)
        return model, {
            "key": key,
            "losses": losses,
            "seconds": time.time() - t0,
            "train_ids": [v.case_id for v in volumes],
        }

    def save(value, folder: Path) -> None:
        model, meta = value
        model.save_weights(folder / "model.weights.h5")
        (folder / "meta.json").write_text(json.dumps(meta), encoding="utf-8")

    def load(folder: Path):
        model = build_model()
        model.load_weights(folder / "model.weights.h5")
        return model, json.loads((folder / "meta.json").read_text(encoding="utf-8"))

    (model, meta), hit = cache.get_or_make("baseline", key, make, save, load)
    return Baseline(model, key, hit, list(meta.get("losses", [])), str(cache.folder("baseline", key)))
