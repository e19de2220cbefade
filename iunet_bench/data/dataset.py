"""A data set as the session sees it: case ids, a seeded fold split, preprocessed volumes, and the way back.

    ds = build_dataset(config.data)           # a validated `data` schema (iunet_bench.data.config); cheap
    train_ids, heldout_ids = ds.split()
    volumes, failures = ds.volumes(heldout_ids)      # lazily read, preprocessed, cached under runs/
    ds.write_mask(volume, prediction, "out/<case_id>.nii.gz")            # on the original image's grid

Cases are read one at a time and dropped after preprocessing; only model-grid volumes stay in memory.
"""

from __future__ import annotations

import hashlib
import json
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk

from iunet_bench.core.files import require_writable
from iunet_bench.core.schema import ConfigError, validate_group
from iunet_bench.data.cache import content_digest, load_volume, save_volume, volume_cache
from iunet_bench.data.case import Case, Geometry, Volume
from iunet_bench.data.config import AnyData, ChecksConfig, DataConfig
from iunet_bench.data.io import (
    CaseError,
    dicom_modality,
    format_values,
    original_image,
    read_case,
    require_files,
    write_on_original_grid,
)
from iunet_bench.data.phantom import phantom_case, phantom_key
from iunet_bench.data.preprocess import PreprocessConfig, crop_box, preprocess, robot_box, to_case_grid
from iunet_bench.data.sources import LISTERS, CaseRef, Listing
from iunet_bench.data.splits import named_split


@dataclass
class Failure:
    case_id: str
    error: str


@dataclass
class Dataset:
    config: AnyData
    listing: Listing
    case_ids: list[str] = field(init=False)

    def __post_init__(self) -> None:
        self.case_ids = [r.case_id for r in self.listing.refs]
        self._refs = {r.case_id: r for r in self.listing.refs}
        self._cache = volume_cache(self.config.cache_folder)
        self._digests: dict[str, str] = {}

    # ------------------------------------------------------------------ the session's calls

    @cached_property
    def preprocess_config(self) -> PreprocessConfig:
        """The preprocessing in force, 'auto' intensity resolved: the HU window if every case is CT, else
        z-score. The modality comes from dataset.json (msd), each series' Modality tag (dicom: the first
        file's header) or is CT (phantom); data.source=folder rejects 'auto' (its files do not say)."""
        p = self.config.preprocess
        if p.intensity == "auto":
            modalities = self.modalities
            if not modalities:  # guessing CT would window an MR set to HU and saturate it, unseen
                where = (
                    f"{self.config.root / 'dataset.json'} has no 'modality'"
                    if self.config.source == "msd"
                    else "no series has a readable Modality tag"
                )
                raise ConfigError(
                    [
                        f"data.preprocess.intensity: auto needs the images' modality, but {where}; set "
                        "data.preprocess.intensity=window (CT in HU), zscore (MR and others) or percentile"
                    ]
                )
            ct = all(m.strip().upper() == "CT" for m in modalities)
            p = p.model_copy(update={"intensity": "window" if ct else "zscore"})
        return p

    @cached_property
    def modalities(self) -> tuple[str, ...]:
        """Modalities of the data set: dataset.json's (msd), CT (phantom), or for dicom the Modality tag of
        each case's series that has a readable one (one header per case, read on first use)."""
        if self.config.source != "dicom":
            return tuple(self.listing.modalities)
        found = [
            dicom_modality(r.image) for r in self.listing.refs if r.image is not None and r.image.is_dir()
        ]
        return tuple(m for m in found if m)

    def split(self) -> tuple[list[str], list[str]]:
        """(training ids, held-out ids), each in the listing's order: the split the user named
        (`data.split.file` or `.test`/`.train`), or a seeded k-fold split holding out `data.split.fold`."""
        if self.config.split.named:
            return named_split(self.config.split, self.case_ids)
        folds, fold = self.config.split.folds, self.config.split.fold
        order = np.random.default_rng(self.config.seed).permutation(len(self.case_ids))
        held = {self.case_ids[i] for i in order[fold::folds]}
        return [c for c in self.case_ids if c not in held], [c for c in self.case_ids if c in held]

    def volumes(self, ids: list[str]) -> tuple[list[Volume], list[Failure]]:
        """Preprocessed volumes for `ids` (from the cache when possible); a case that fails is reported as a
        `Failure` naming the case and file, never raised, so the rest still load. A case outside the
        `data.checks` bounds fails too (or, with `data.checks.action=warn`, loads with a warning)."""
        out, failures = [], []
        for cid in ids:
            ref = self._refs[cid]
            try:
                volume = self._volume(ref)
                problem = _implausible_error(ref, implausible(volume, self.config.checks))
                if problem and self.config.checks.action == "fail":
                    raise problem
                if problem:
                    warnings.warn(str(problem), RuntimeWarning, stacklevel=2)
                out.append(volume)
            except CaseError as exc:
                failures.append(Failure(cid, str(exc)))
            except Exception as exc:  # noqa: BLE001 - one bad case must not stop the others
                where = ref.image if ref.image is not None else "phantom"
                failures.append(Failure(cid, f"case {cid}: {where}: {type(exc).__name__}: {exc}"))
        return out, failures

    @cached_property
    def fingerprint(self) -> str:
        """16 hex digits over everything that decides what the baseline trains on and what is evaluated:
        each case's content (file bytes or phantom parameters), the label mapping, the preprocessing and
        the split. Reads each file once (digests are remembered in the cache folder). A case whose files
        cannot be hashed (missing, unreadable, two files for one name) enters as its error; it is reported
        once, as that case's `Failure` when loaded (a warning here would repeat it, and from inside
        `cached_property` it would point at functools.py)."""
        h = hashlib.sha256()
        for cid in self.case_ids:
            try:
                content = self._content(self._refs[cid])
            except CaseError as exc:
                content = {"fails": str(exc)}
            h.update(json.dumps([cid, content], sort_keys=True).encode())
        h.update(json.dumps(self._settings(), sort_keys=True, default=list).encode())
        h.update(json.dumps([self.config.seed, self.config.split.folds, self.config.split.fold]).encode())
        if self.config.split.named:  # (a seeded split's fingerprint stays what it always was)
            h.update(json.dumps(self.split()).encode())
        return h.hexdigest()[:16]

    def write_mask(self, volume: Volume, mask: np.ndarray, path) -> Path:
        """Write a model-grid mask (0/1 or probabilities) as an image on the original file's grid:
        uncropped, original size, spacing, origin and direction (NIfTI for a .nii.gz path)."""
        return write_mask(volume, mask, path)

    @cached_property
    def classes(self) -> dict[str, int]:
        """`data.classes` by the name their sessions carry (`<name>/<case>`): dataset.json's label name made
        safe for file names and metric keys (`right kidney` -> `right_kidney`), else the value; {} without
        `data.classes`."""
        out: dict[str, int] = {}
        for value in getattr(self.config, "classes", None) or ():
            name = re.sub(r"[^A-Za-z0-9_.-]+", "_", self.listing.names.get(value, "")).strip("_.")
            out[name if name and name not in out else str(value)] = value
        return out

    def for_class(self, value: int) -> Dataset:
        """The data set of one class of `data.classes`: as with `data.foreground=[value]` (the other label
        values still allowed in the files)."""
        update = {"foreground": (value,), "classes": None, "label_values": self.listing.label_values}
        return build_dataset(self.config.model_copy(update=update))

    # ------------------------------------------------------------------ more for users and tests

    @property
    def notes(self) -> list[str]:
        """Listing remarks (e.g. an image without a label); those cases fail when loaded."""
        return list(self.listing.notes)

    def load_case(self, case_id: str) -> Case:
        """Read (or generate) one full-resolution case in canonical orientation. Raises CaseError."""
        ref = self._refs[case_id]
        if ref.index is not None:
            return phantom_case(self.config.phantom, self.config.seed, ref.index)
        if ref.problem is not None:
            raise CaseError(case_id, None, ref.problem)
        if ref.image is None:
            raise CaseError(case_id, ref.label, "no image file found for this label")
        return read_case(
            case_id,
            ref.image,
            ref.label,
            foreground=self.listing.foreground,
            allowed=self.listing.label_values,
            orientation=self.preprocess_config.orientation,
            tolerance=self.config.geometry_tolerance,
        )

    # ------------------------------------------------------------------ inside

    def _settings(self) -> dict:
        crop = {"crop": self.config.crop}
        if self.config.crop == "robot_box":  # the jitter and seed matter for robot boxes only
            crop.update(box_jitter=self.config.box_jitter, seed=self.config.seed)
        mapping = {"values": self.listing.label_values, "foreground": self.listing.foreground}
        if getattr(self.config, "classes", None):  # (without classes the keys stay what they always were)
            mapping["classes"] = list(self.config.classes)
        return {"preprocess": {**self.preprocess_config.model_dump(mode="json"), **crop}, "mapping": mapping}

    def _box(self, case: Case):
        """The crop box of a case (margin included): the reference's bounding box, or a robot's box."""
        margin = self.preprocess_config.margin
        if self.config.crop == "robot_box":
            return robot_box(case, self.config.box_jitter, self.config.seed, margin)
        return crop_box(case.label, margin)

    def _content(self, ref: CaseRef):
        """The case's content for keys: phantom parameters, or digests of its files. Raises CaseError
        naming the file for a missing or unreadable one."""
        if ref.index is not None:
            return phantom_key(self.config.phantom, self.config.seed, ref.index)
        if ref.problem is not None:
            raise CaseError(ref.case_id, None, ref.problem)
        if ref.case_id not in self._digests:
            parts = []
            for role, p in (("image", ref.image), ("label", ref.label)):
                if p is None:
                    raise CaseError(
                        ref.case_id, ref.image or ref.label, f"no {role} file found for this case"
                    )
                require_files(ref.case_id, p)  # before opening: a FIFO would block the job
                try:
                    parts.append(content_digest(p, self.config.cache_folder / "digests"))
                except FileNotFoundError as exc:  # the file named may be a header's data file (.raw)
                    raise CaseError(ref.case_id, exc.filename or p, "file does not exist") from exc
                except OSError as exc:
                    raise CaseError(
                        ref.case_id,
                        exc.filename or p,
                        f"cannot be read ({type(exc).__name__}: {exc.strerror or exc})",
                    ) from exc
            self._digests[ref.case_id] = ":".join(parts)
        return self._digests[ref.case_id]

    def _volume(self, ref: CaseRef) -> Volume:
        key = self._cache.key({"content": self._content(ref), **self._settings()})

        def make() -> Volume:
            case = self.load_case(ref.case_id)
            return preprocess(case, self.preprocess_config, self._box(case), self.config.crop)

        volume, _ = self._cache.get_or_make(ref.case_id, key, make, save_volume, load_volume)
        return volume


def implausible(volume: Volume, checks: ChecksConfig) -> dict[str, list[str]]:
    """Why a preprocessed case is implausible under `checks`, by the file each reason is about ('label':
    too few foreground voxels, no background; 'image': spacing, contrast), each naming its `data.checks`
    key and what it expects; {} for a plausible case. Spacing: the original file's; contrast and label
    share: on the model grid, what the network sees; label voxels: in the original label."""
    reasons: dict[str, list[str]] = {}
    voxels = int(volume.meta.get("label_voxels", np.count_nonzero(volume.label)))
    if voxels < checks.min_label_voxels:
        reasons.setdefault("label", []).append(
            f"the label has {voxels} foreground voxels; expected at least {checks.min_label_voxels} "
            "(data.checks.min_label_voxels)"
        )
    share = np.count_nonzero(volume.label) / volume.label.size
    if share > checks.max_label_share:
        reasons.setdefault("label", []).append(
            f"the label covers {share:.0%} of the model grid (the box around it, with the margin); expected "
            f"at most {checks.max_label_share:.0%} (data.checks.max_label_share {checks.max_label_share:g}): "
            "a reference needs some background around its foreground"
        )
    spacing = (
        Geometry.from_dict(volume.meta["geometry"]).spacing if "geometry" in volume.meta else volume.spacing
    )
    lo, hi = checks.spacing_mm
    if not all(lo <= s <= hi for s in spacing):
        reasons.setdefault("image", []).append(
            f"voxel spacing {format_values(spacing)} mm is outside data.checks.spacing_mm "
            f"{format_values((lo, hi), '[]')}"
        )
    sd = float(np.std(volume.image))
    if sd < checks.min_contrast:
        mode = volume.meta.get("intensity", {}).get("mode", "?")
        reasons.setdefault("image", []).append(
            f"the preprocessed image (cropped to the box around the label) is nearly constant (sd {sd:.2g} "
            f"< data.checks.min_contrast {checks.min_contrast:g}; intensity mode {mode})"
        )
    return reasons


def _implausible_error(ref: CaseRef, reasons: dict[str, list[str]]) -> CaseError | None:
    """One CaseError for the reasons of `implausible`, each group after the file it is about (the label's
    first: a label too small also leaves a nearly constant crop of the image)."""
    files = {"label": ref.label, "image": ref.image}
    groups = [(files[role], "; ".join(reasons[role])) for role in ("label", "image") if reasons.get(role)]
    if not groups:
        return None
    (path, what), rest = groups[0], groups[1:]
    return CaseError(ref.case_id, path, "; ".join([what, *(f"{p}: {w}" if p else w for p, w in rest)]))


def build_dataset(config: AnyData | Mapping[str, Any]) -> Dataset:
    """List the cases of a `data` config (a validated schema, or a plain mapping validated here); no image
    is read. Raises ConfigError naming the `data.<key>` for a bad value, a cache folder that takes no file
    or a data set that cannot be listed at all."""
    if isinstance(config, Mapping):
        config = validate_group(DataConfig, config, "data")
    hint = "; set data.cache_dir to one (null: runs/cache/preprocess here)"
    require_writable(config.cache_folder, "data.cache_dir", hint)
    try:
        listing = LISTERS[config.source](config)
    except ValueError as exc:
        raise ConfigError([str(exc)]) from None
    n, folds = len(listing.refs), config.split.folds
    if not config.split.named and n < folds:
        raise ConfigError([f"data.split.folds: {folds} folds need at least {folds} cases; found {n}"])
    dataset = Dataset(config, listing)
    if config.split.named:
        named_split(config.split, dataset.case_ids)  # its errors now, before anything is computed
    return dataset


# ---------------------------------------------------------------------- the way back (pure functions)


def volume_geometry(volume: Volume) -> Geometry:
    """The original grid of the volume's case. A volume without one (a case made without a file) gets an
    identity grid with the case's spacing, recovered from the model-grid spacing and the crop."""
    g = volume.meta.get("geometry")
    if g is None:
        extent = np.array(volume.crop[3:]) - np.array(volume.crop[:3])
        spacing = np.asarray(volume.spacing, float) * np.array(volume.image.shape) / extent
        return Geometry.identity(volume.case_shape, tuple(float(s) for s in spacing))
    return Geometry.from_dict(g)


def to_original(volume: Volume, mask: np.ndarray) -> np.ndarray:
    """A model-grid mask -> uint8 0/1 array on the original file's grid (z-y-x as SimpleITK reads it)."""
    return volume_geometry(volume).from_canonical(to_case_grid(volume, mask))


def to_original_image(volume: Volume, mask: np.ndarray) -> sitk.Image:
    """Like `to_original`, as a SimpleITK image with the original spacing, origin and direction."""
    return original_image(to_case_grid(volume, mask), volume_geometry(volume))


def write_mask(volume: Volume, mask: np.ndarray, path) -> Path:
    """`to_original_image` written to `path` (format by suffix, compressed)."""
    return write_on_original_grid(to_case_grid(volume, mask), volume_geometry(volume), path)


__all__ = [
    "Dataset",
    "Failure",
    "build_dataset",
    "to_original",
    "to_original_image",
    "write_mask",
]
