"""Baseline training (paper section 2.4): augmented volumes, soft Dice loss, Adam; cached by config.

The cache key hashes everything that determines the weights: training volumes, model and training config,
and the seed. A sweep over interaction settings therefore trains the baseline once and reuses it.
"""

from __future__ import annotations

import hashlib
import json
import os
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
    """`train` mapping -> TrainConfig; a bad or unknown key raises ValueError naming `train.<key>`."""

    def number(tree: Mapping, key: str, name: str, kind=float, minimum: float = 0.0, strict: bool = False):
        value = tree.get(key)
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        if kind is int:
            ok = ok and float(value).is_integer()
        if not ok or value < minimum or (strict and value == minimum):
            bound = f"> {minimum:g}" if strict else f">= {minimum:g}"
            raise ValueError(
                f"{name}: {value!r} must be {'an integer' if kind is int else 'a number'} {bound}"
            )
        return kind(value)

    known = {"steps", "batch_size", "lr", "augment", "cache_dir"}
    unknown = sorted(set(cfg) - known)
    if unknown:
        raise ValueError(f"train.{unknown[0]}: unknown key; allowed keys: {sorted(known)}")
    a = dict(cfg.get("augment") or {})
    fields = set(AugmentConfig.__dataclass_fields__)
    unknown = sorted(set(a) - fields)
    if unknown:
        raise ValueError(f"train.augment.{unknown[0]}: unknown key; allowed keys: {sorted(fields)}")
    augment_cfg = AugmentConfig(
        **{k: number(a, k, f"train.augment.{k}", strict=(k == "hu_per_unit")) for k in fields if k in a}
    )
    return TrainConfig(
        steps=number(cfg, "steps", "train.steps", int),
        batch_size=number(cfg, "batch_size", "train.batch_size", int, 1),
        lr=number(cfg, "lr", "train.lr", strict=True),
        augment=augment_cfg,
    )


# Bump when a change to the model, the loss, the augmentation or the training loop changes trained weights:
# baselines cached by older code then stop being reused.
CACHE_VERSION = 1


def cache_key(
    volumes: Sequence[Volume],
    model_cfg: Mapping,
    train_cfg: TrainConfig,
    seed: int,
    precision: str = "float32",
) -> str:
    """Everything that determines the trained weights: code version, volumes, model/train config, seed, precision."""
    h = hashlib.sha256()
    settings = {
        "version": CACHE_VERSION,
        "model": dict(model_cfg),
        "train": asdict(train_cfg),
        "seed": seed,
        "precision": precision,
    }
    h.update(json.dumps(settings, sort_keys=True, default=str).encode())
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
    import tensorflow as tf

    from iunet_bench.train.loss import soft_dice_loss
    from iunet_bench.train.optim import make_optimizer

    if not volumes:
        raise ValueError("baseline training: no training volumes (check data.split and the data set)")
    rng = np.random.default_rng(np.random.SeedSequence([seed, 1]))
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


class _Lock:
    """An exclusive lock on a file (fcntl.flock), so parallel sweep jobs that need one baseline train it once.

    The kernel releases the lock when its holder exits, however it exits (a killed job leaves no stale lock).
    """

    def __init__(self, path: Path, timeout: float = 6 * 3600):
        self.path, self.timeout = path, timeout

    def __enter__(self):
        import fcntl

        self.fh = open(self.path, "a+")  # noqa: SIM115 - held until __exit__
        start, told = time.time(), False
        while True:
            try:
                fcntl.flock(self.fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return self
            except BlockingIOError:
                if not told:
                    print(f"waiting for another job that holds {self.path}", flush=True)
                    told = True
                if time.time() - start > self.timeout:
                    self.fh.close()
                    raise TimeoutError(f"waited {self.timeout:.0f} s for {self.path}") from None
                time.sleep(0.5)

    def __exit__(self, *exc):
        import fcntl

        fcntl.flock(self.fh, fcntl.LOCK_UN)
        self.fh.close()


def load_or_train(
    build_model: Callable[[], Any],
    volumes: Sequence[Volume],
    model_cfg: Mapping,
    train_cfg: TrainConfig,
    seed: int,
    cache_dir: Path,
    on_step: Callable[[int, float], None] | None = None,
    precision: str = "float32",
):
    """The baseline model for this configuration: from the cache if present, else trained and cached.

    Returns (model, info) where info has the cache key, whether it was a cache hit, and the training losses.
    """
    import keras

    key = cache_key(volumes, model_cfg, train_cfg, seed, precision)
    folder = Path(cache_dir) / key
    weights, meta_path = folder / "model.weights.h5", folder / "meta.json"
    folder.mkdir(parents=True, exist_ok=True)
    with _Lock(folder / ".lock"):
        if meta_path.exists():  # written last: its presence means the weights are complete
            model = build_model()
            model.load_weights(weights)
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            return model, {"key": key, "hit": True, "losses": meta.get("losses", []), "path": str(folder)}
        keras.utils.set_random_seed(seed)
        model = build_model()
        t0 = time.time()
        losses = train(model, volumes, train_cfg, seed, on_step)
        partial = folder / "partial.weights.h5"
        model.save_weights(partial)
        os.replace(partial, weights)
        meta = {
            "key": key,
            "losses": losses,
            "seconds": time.time() - t0,
            "train_ids": [v.case_id for v in volumes],
        }
        partial_meta = folder / "meta.json.partial"
        partial_meta.write_text(json.dumps(meta), encoding="utf-8")
        os.replace(partial_meta, meta_path)
        return model, {"key": key, "hit": False, "losses": losses, "path": str(folder)}
