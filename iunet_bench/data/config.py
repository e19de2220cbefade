"""The `data` config group: defaults, allowed keys per source, and validation before any heavy work.

`parse_config(mapping) -> DataConfig` raises ValueError naming the key (`data.<key>`) and what is allowed.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from iunet_bench.data.case import parse_orientation
from iunet_bench.data.phantom import PhantomConfig
from iunet_bench.data.preprocess import CROP_MODES, INTENSITY_MODES, LABEL_INTERPOLATIONS, PreprocessConfig

SOURCES = ("phantom", "msd", "folder", "dicom")
COMMON_KEYS = {
    "source",
    "root",
    "seed",
    "cache_dir",
    "foreground",
    "label_values",
    "crop",
    "box_jitter",
    "geometry_tolerance",
    "split",
    "preprocess",
}
SOURCE_KEYS = {
    "phantom": {"phantom"},
    "msd": set(),
    "folder": {"images_dir", "labels_dir", "manifest", "image_suffix", "label_suffix"},
    "dicom": {"images_dir", "label_pattern"},
}
SPLIT_KEYS = {"folds", "fold"}
PREPROCESS_KEYS = {
    "orientation",
    "intensity",
    "window",
    "percentiles",
    "zscore_clip",
    "sigma",
    "margin",
    "grid",
    "label_interpolation",
}
DEFAULT_CACHE_DIR = Path("runs") / "cache" / "preprocess"


@dataclass(frozen=True)
class DataConfig:
    source: str
    root: Path | None
    seed: int
    cache_dir: Path
    folds: int
    fold: int
    preprocess: PreprocessConfig
    foreground: tuple[int, ...] | None = None  # None: every non-zero value of the mapping
    label_values: tuple[int, ...] | None = None  # None: from dataset.json (msd) or {0} + foreground
    geometry_tolerance: float = 1e-3
    phantom: PhantomConfig | None = None
    options: dict[str, Any] = field(default_factory=dict)  # source-specific keys (images_dir, manifest, ...)


def _fail(key: str, message: str) -> ValueError:
    return ValueError(f"data.{key}: {message}")


def _int(cfg: Mapping, key: str, name: str, lo: int | None = None) -> int:
    v = cfg.get(key)
    if isinstance(v, bool) or not isinstance(v, int) or (lo is not None and v < lo):
        raise _fail(name, f"{v!r} must be an integer" + (f" >= {lo}" if lo is not None else ""))
    return v


def _float(cfg: Mapping, key: str, name: str, lo: float | None = None, hi: float | None = None) -> float:
    v = cfg.get(key)
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise _fail(name, f"{v!r} must be a number")
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        raise _fail(name, f"{v!r} must lie in [{lo}, {hi}]")
    return float(v)


def _pair(cfg: Mapping, key: str, name: str) -> tuple[float, float]:
    v = cfg.get(key)
    if not isinstance(v, list | tuple) or len(v) != 2 or not all(isinstance(x, int | float) for x in v):
        raise _fail(name, f"{v!r} must be a pair of numbers [lo, hi]")
    if not v[0] < v[1]:
        raise _fail(name, f"{list(v)}: lo must be below hi")
    return float(v[0]), float(v[1])


def _choice(cfg: Mapping, key: str, name: str, allowed) -> str:
    v = cfg.get(key)
    if v not in allowed:
        raise _fail(name, f"{v!r} is not one of {list(allowed)}")
    return v


def _int_list(cfg: Mapping, key: str, name: str, lo: int = 0) -> tuple[int, ...] | None:
    v = cfg.get(key)
    if v is None:
        return None
    if isinstance(v, int) and not isinstance(v, bool):
        v = [v]
    if not isinstance(v, list | tuple) or not v or not all(isinstance(x, int) and x >= lo for x in v):
        raise _fail(name, f"{v!r} must be null or a non-empty list of integers >= {lo}")
    return tuple(int(x) for x in v)


def _check_keys(cfg: Mapping, allowed: set[str], prefix: str, why: str) -> None:
    unknown = sorted(set(cfg) - allowed)
    if unknown:
        raise _fail(f"{prefix}{unknown[0]}", f"unknown key {why}; allowed keys: {sorted(allowed)}")


def _preprocess(cfg: Mapping, crop: str, box_jitter: float, seed: int) -> PreprocessConfig:
    if not isinstance(cfg, Mapping):
        raise _fail("preprocess", f"{cfg!r} must be a mapping")
    _check_keys(cfg, PREPROCESS_KEYS, "preprocess.", "")
    d = PreprocessConfig()
    p = {**{k: getattr(d, k) for k in ("orientation", "intensity", "percentiles", "zscore_clip")}, **cfg}
    p.setdefault("label_interpolation", d.label_interpolation)
    for key in ("sigma", "window", "margin", "grid"):
        if key not in cfg:
            raise _fail(
                f"preprocess.{key}", "missing (paper defaults: sigma 0.75, window [-160, 240], margin 0.05)"
            )
    grid = p["grid"]
    if (
        not isinstance(grid, list | tuple)
        or len(grid) != 3
        or not all(isinstance(g, int) and g >= 2 for g in grid)
    ):
        raise _fail("preprocess.grid", f"{grid!r} must be three integers >= 2 (z, y, x), e.g. [24, 64, 64]")
    orientation = p["orientation"]
    if orientation is not None:
        try:
            parse_orientation(orientation)
        except ValueError as exc:
            raise _fail("preprocess.orientation", f"{exc}; or null to keep each file's orientation") from None
    intensity = _choice(p, "intensity", "preprocess.intensity", (*INTENSITY_MODES, "auto"))
    pct = _pair(p, "percentiles", "preprocess.percentiles")
    if pct[0] < 0.0 or pct[1] > 100.0:
        raise _fail("preprocess.percentiles", f"{list(pct)} must lie in [0, 100]")
    return PreprocessConfig(
        sigma=_float(p, "sigma", "preprocess.sigma", 0.0, 10.0),
        window=_pair(p, "window", "preprocess.window"),
        margin=_float(p, "margin", "preprocess.margin", 0.0, 0.5),
        grid=tuple(int(g) for g in grid),
        orientation=None if orientation is None else str(orientation).upper(),
        intensity=intensity,
        percentiles=pct,
        zscore_clip=_float(p, "zscore_clip", "preprocess.zscore_clip", 0.1, 100.0),
        crop=crop,
        box_jitter=box_jitter,
        seed=seed,
        label_interpolation=_choice(
            p, "label_interpolation", "preprocess.label_interpolation", LABEL_INTERPOLATIONS
        ),
    )


def _phantom(cfg: Any) -> PhantomConfig:
    if not isinstance(cfg, Mapping):
        raise _fail("phantom", f"{cfg!r} must be a mapping of generator settings")
    names = {f.name for f in fields(PhantomConfig)}
    _check_keys(cfg, names, "phantom.", "")
    d = PhantomConfig()
    values = {}
    for f in fields(PhantomConfig):
        v = cfg.get(f.name, getattr(d, f.name))
        key = f"phantom.{f.name}"
        if f.name in ("n_cases", "bowel_loops"):
            values[f.name] = _int({"v": v}, "v", key, 1 if f.name == "n_cases" else 0)
        elif f.name in ("shape", "spacing"):
            ok = (
                isinstance(v, list | tuple)
                and len(v) == 3
                and all(isinstance(x, int | float) and x > 0 for x in v)
            )
            if not ok or (f.name == "shape" and not all(isinstance(x, int) and x >= 8 for x in v)):
                raise _fail(
                    key,
                    f"{v!r} must be three positive numbers (z, y, x)"
                    + (" >= 8" if f.name == "shape" else ""),
                )
            values[f.name] = tuple(int(x) if f.name == "shape" else float(x) for x in v)
        elif f.name == "z_spacing":
            values[f.name] = None if v is None else _pair({"v": v}, "v", key)
            if v is not None and values[f.name][0] <= 0:
                raise _fail(key, f"{v!r} must be positive millimetres or null")
        elif f.name in ("touch_fraction", "bowel_fill"):
            values[f.name] = _float({"v": v}, "v", key, 0.0, 1.0)
        elif f.name in (
            "fat_thickness",
            "noise_hu",
            "texture_hu",
            "lobulation",
            "hu_jitter",
            "shape_variability",
        ):
            values[f.name] = _float({"v": v}, "v", key, 0.0, 14.0 if f.name == "fat_thickness" else None)
        else:
            values[f.name] = _float({"v": v}, "v", key)
    return PhantomConfig(**values)


def parse_config(cfg: Mapping[str, Any]) -> DataConfig:
    """Validate the `data` mapping (cheap: touches the file system only to check that data.root exists)."""
    if not isinstance(cfg, Mapping):
        raise ValueError(f"data: expected a mapping, got {type(cfg).__name__}")
    source = cfg.get("source")
    if source not in SOURCES:
        raise _fail("source", f"{source!r} is not one of {list(SOURCES)}")
    # `phantom` sizes are tolerated (and ignored) for real sources: experiments such as `smoke` shrink the
    # phantoms without knowing which source the user picks (`experiment=smoke data=msd data.root=...`).
    _check_keys(cfg, COMMON_KEYS | SOURCE_KEYS[source] | {"phantom"}, "", f"for data.source={source}")
    seed = _int(cfg, "seed", "seed") if "seed" in cfg else 0

    root = cfg.get("root")
    if source == "phantom":
        root = None if root is None else Path(root)
    else:
        if root in (None, ""):
            raise _fail(
                "root", f"required for data.source={source}: set data.root=DIR (the data set's folder)"
            )
        root = Path(os.path.expanduser(str(root)))
        if not root.is_dir():
            raise _fail("root", f"{str(root)!r} is not an existing folder")

    split = cfg.get("split", {"folds": 4, "fold": 0})
    if not isinstance(split, Mapping):
        raise _fail("split", f"{split!r} must be a mapping with folds and fold")
    _check_keys(split, SPLIT_KEYS, "split.", "")
    folds = _int(split, "folds", "split.folds", 2)
    fold = _int(split, "fold", "split.fold", 0)
    if fold >= folds:
        raise _fail("split.fold", f"{fold} must lie in [0, {folds - 1}] for data.split.folds={folds}")

    crop = _choice({"v": cfg.get("crop", "reference")}, "v", "crop", CROP_MODES)
    box_jitter = _float({"v": cfg.get("box_jitter", 0.1)}, "v", "box_jitter", 0.0, 1.0)
    pre = _preprocess(cfg.get("preprocess", {}), crop, box_jitter, seed)

    cache_dir = cfg.get("cache_dir")
    cache_dir = (
        Path.cwd() / DEFAULT_CACHE_DIR
        if cache_dir in (None, "")
        else Path(os.path.expanduser(str(cache_dir)))
    )

    options = {k: cfg[k] for k in SOURCE_KEYS[source] - {"phantom"} if k in cfg}
    for k, v in options.items():
        if v is not None and not isinstance(v, str):
            raise _fail(k, f"{v!r} must be a string (a path or name part) or null")
    if source == "folder" and pre.intensity == "auto":
        raise _fail(
            "preprocess.intensity",
            "auto needs the images' modality, which data.source=folder does not know (NIfTI, MHA and NRRD "
            "files do not record it): set window (CT in HU), zscore or percentile",
        )
    if source == "dicom" and "{case_id}" not in str(options.get("label_pattern") or "{case_id}"):
        raise _fail("label_pattern", f"{options['label_pattern']!r} must contain {{case_id}}")

    return DataConfig(
        source=source,
        root=root,
        seed=seed,
        cache_dir=cache_dir.resolve(),
        folds=folds,
        fold=fold,
        preprocess=pre,
        foreground=_int_list(cfg, "foreground", "foreground", 1),
        label_values=_int_list(cfg, "label_values", "label_values", 0),
        geometry_tolerance=_float(
            {"v": cfg.get("geometry_tolerance", 1e-3)}, "v", "geometry_tolerance", 0.0, 0.5
        ),
        phantom=_phantom(cfg.get("phantom", {})) if source == "phantom" else None,
        options=options,
    )
