"""Baseline training (paper section 2.4): augmented volumes, soft Dice loss, Adam; cached.

The cache (`iunet_bench.core.files`, the project's one mechanism) keys a baseline by everything that determines
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

from iunet_bench.core.files import Cache
from iunet_bench.core.rng import derive_rng
from iunet_bench.data.case import Volume
from iunet_bench.models.config import ModelSchema
from iunet_bench.train.augment import augment
from iunet_bench.train.config import TrainConfig

CODE_MODULES = (
    "iunet_bench.models",
    "iunet_bench.models.unet",
    "iunet_bench.models.cicek",
    "iunet_bench.models.dilated",
    "iunet_bench.models.byo",
    "iunet_bench.models.config",
    "iunet_bench.train.baseline",
    "iunet_bench.train.config",
    "iunet_bench.train.augment",
    "iunet_bench.train.loss",
    "iunet_bench.train.optim",
    "iunet_bench.core.rng",
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


def _file_digest(path) -> str:
    h = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def baseline_key(
    volumes: Sequence[Volume],
    model: ModelSchema,
    train: TrainConfig,
    seed: int,
    precision: str,
    backend: str = "tensorflow",
) -> str:
    """The cache key of the baseline these settings train (code and library versions included)."""
    payload = {
        "volumes": volumes_digest(volumes),
        "model": model.model_dump(mode="json"),
        # a user's model file: its bytes, not its name (a file saved again is another baseline)
        "model_file": _file_digest(model.path) if getattr(model, "path", None) else None,
        # where and how often it is checkpointed never changes the weights (tests/test_train.py)
        "train": train.model_dump(mode="json", exclude={"cache_dir", "checkpoint_every"}),
        "seed": int(seed),
        "precision": precision,
    }
    if backend != "tensorflow":  # TensorFlow's keys stay those cached before backends were a choice
        payload["backend"] = backend
    return baseline_cache(train.cache_dir).key(payload)


@dataclass
class Baseline:
    model: Any  # keras.Model
    key: str
    hit: bool  # loaded from the cache
    losses: list[float] = field(default_factory=list)  # training loss per step (as recorded when trained)
    path: str = ""
    validation: list[tuple[int, float]] = field(default_factory=list)  # (step, validation DSC)
    stopped_at: int | None = None  # the step early stopping ended training at
    resumed_from: int | None = None  # the checkpoint step an interrupted training continued from


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


@dataclass
class Progress:
    """What one training step reports: the step, its loss, and the latest validation DSC (None before the
    first validation or without validation cases)."""

    step: int
    loss: float
    val_dsc: float | None = None


def validation_dsc(model, volumes: Sequence[Volume]) -> float:
    """Mean DSC of the model's own segmentation (argmax) of each volume."""
    from keras import ops

    from iunet_bench.core import metrics

    out = []
    for v in volumes:
        probs = ops.convert_to_numpy(model(v.image[None, ..., None], training=False))[0]
        out.append(metrics.dsc(v.label, probs.argmax(-1)))
    return float(np.mean(out))


class Checkpoint:
    """An unfinished training's state in a folder: weights, optimiser variables, the augmentation stream's
    state, the losses and validations so far, and the best weights (early stopping). Written atomically
    (a new folder renamed over the old), so a kill leaves the previous checkpoint whole."""

    def __init__(self, folder: Path | None):
        self.folder = folder

    def save(self, model, optimizer, step: int, rng, state: dict, best: list | None) -> None:
        if self.folder is None:
            return
        import shutil

        tmp = self.folder.with_name(self.folder.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        model.save_weights(tmp / "model.weights.h5")
        np.savez(tmp / "optimizer.npz", *[np.asarray(v) for v in optimizer.variables])
        if best is not None:
            np.savez(tmp / "best.npz", *best)
        meta = {"step": step, "rng": rng.bit_generator.state, **state}
        (tmp / "state.json").write_text(json.dumps(meta), encoding="utf-8")
        shutil.rmtree(self.folder, ignore_errors=True)
        tmp.rename(self.folder)

    def load(self, model, optimizer, variables, rng) -> tuple[int, dict, list | None] | None:
        """(next step, state, best weights) restored into `model`, `optimizer` and `rng`; None when there is
        no checkpoint (or it cannot be read: training starts over)."""
        if self.folder is None or not (self.folder / "state.json").is_file():
            return None
        try:
            meta = json.loads((self.folder / "state.json").read_text(encoding="utf-8"))
            model.load_weights(self.folder / "model.weights.h5")
            optimizer.build(variables)
            with np.load(self.folder / "optimizer.npz") as saved:
                values = [saved[f"arr_{i}"] for i in range(len(saved.files))]
            if len(values) != len(optimizer.variables):
                return None
            for var, value in zip(optimizer.variables, values):
                var.assign(value)
            best = None
            if (self.folder / "best.npz").is_file():
                with np.load(self.folder / "best.npz") as saved:
                    best = [saved[f"arr_{i}"] for i in range(len(saved.files))]
            rng.bit_generator.state = meta.pop("rng")
            return int(meta.pop("step")), meta, best
        except (OSError, ValueError, KeyError) as exc:
            print(f"checkpoint {self.folder} unreadable ({exc}); training starts over", flush=True)
            return None

    def clear(self) -> None:
        import shutil

        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)


def train(
    model,
    volumes: Sequence[Volume],
    cfg: TrainConfig,
    seed: int,
    on_step: Callable[[Progress], None] | None = None,
    checkpoint: Path | None = None,
) -> dict:
    """Train `model` in place; returns {"losses": per step, "validation": [[step, DSC], ...], "stopped_at":
    the step early stopping ended at or None, "resumed_from": the checkpoint's step or None}.

    The last `cfg.validation_cases` volumes only validate. With `checkpoint` (a folder) the state is saved
    every `cfg.checkpoint_every` steps and a training interrupted earlier continues from its last
    checkpoint, giving the weights an uninterrupted training gives (the augmentation stream, the
    optimiser's moments and the step count are restored)."""
    from keras import ops

    from iunet_bench.train.backends import engine
    from iunet_bench.train.loss import soft_dice_loss
    from iunet_bench.train.optim import make_optimizer

    n_val = cfg.validation_cases
    if len(volumes) - n_val < 1:
        raise ValueError(
            f"baseline training: {len(volumes)} training volumes leave none to train on with "
            f"train.validation_cases={n_val} (check data.split and the data set)"
        )
    fit, val = list(volumes[: len(volumes) - n_val]), list(volumes[len(volumes) - n_val :])
    rng = derive_rng(seed, 1)
    optimizer = make_optimizer(cfg.lr, model)  # loss-scaled under mixed_float16
    variables = model.trainable_variables

    saved = Checkpoint(checkpoint)
    state = {"losses": [], "validation": [], "best_dsc": None, "since_best": 0}
    best, first = None, 0
    restored = saved.load(model, optimizer, variables, rng) if cfg.checkpoint_every else None
    if restored is not None:
        first, state, best = restored
    # after a restore (which builds the optimizer): a backend may build it here otherwise
    step = engine.current().train_step(
        model, optimizer, lambda y, p: soft_dice_loss(y, ops.cast(p, "float32"))
    )
    stream = batches(fit, cfg, rng)
    stopped = None
    for i in range(first, cfg.steps):
        x, y = next(stream)
        loss = step(x, y)
        state["losses"].append(loss)
        if val and ((i + 1) % cfg.validate_every == 0 or i + 1 == cfg.steps):
            dsc = validation_dsc(model, val)
            state["validation"].append([i + 1, dsc])
            if state["best_dsc"] is None or dsc > state["best_dsc"]:
                state["best_dsc"], state["since_best"] = dsc, 0
                best = [np.array(w) for w in model.get_weights()] if cfg.early_stop else None
            else:
                state["since_best"] += 1
        if on_step:
            on_step(Progress(i, loss, state["validation"][-1][1] if state["validation"] else None))
        if cfg.early_stop and state["since_best"] >= cfg.early_stop:
            stopped = i + 1
            break
        if cfg.checkpoint_every and (i + 1) % cfg.checkpoint_every == 0 and i + 1 < cfg.steps:
            saved.save(model, optimizer, i + 1, rng, state, best)
    if cfg.early_stop and best is not None:
        model.set_weights(best)  # the best validation DSC's weights
    saved.clear()
    return {
        "losses": state["losses"],
        "validation": state["validation"],
        "stopped_at": stopped,
        "resumed_from": first or None,
    }


def load_or_train(
    build_model: Callable[[], Any],
    volumes: Sequence[Volume],
    model_cfg: ModelSchema,
    train_cfg: TrainConfig,
    seed: int,
    precision: str = "float32",
    on_step: Callable[[Progress], None] | None = None,
) -> Baseline:
    """The baseline model for this configuration: from the cache if present, else trained and cached."""
    import keras

    if model_cfg.pretrained:  # a user's model: its own weights, trained further only if asked
        train_cfg = train_cfg.model_copy(update={"steps": model_cfg.train_steps})
    cache = baseline_cache(train_cfg.cache_dir)
    from iunet_bench.train.backends import engine

    key = baseline_key(volumes, model_cfg, train_cfg, seed, precision, engine.name())
    if model_cfg.pretrained and train_cfg.steps == 0:  # as it was saved: nothing to train or cache
        return Baseline(build_model(), key, True)

    def make():
        keras.utils.set_random_seed(seed)
        model = build_model()
        t0 = time.time()
        partial = cache.folder("baseline", key).with_name(f"{key}.partial")
        result = train(model, volumes, train_cfg, seed, on_step, checkpoint=partial)
        return model, {
            "key": key,
            **result,
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
    return Baseline(
        model,
        key,
        hit,
        list(meta.get("losses", [])),
        str(cache.folder("baseline", key)),
        [tuple(v) for v in meta.get("validation", [])],
        meta.get("stopped_at"),
        meta.get("resumed_from"),
    )
