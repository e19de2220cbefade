"""The `data` config group: one schema per source (`data.source` = phantom | msd | folder | dicom).

Checked without reading any image; a real source's `data.root` must be an existing folder. Keys of every
source are in `_DataBase`; each source adds its own. `DataConfig` is the union the job's schema uses.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from iunet_bench.core.schema import Float, Int, Schema, UserPath, variants
from iunet_bench.data.phantom import PhantomConfig
from iunet_bench.data.preprocess import PreprocessConfig

DEFAULT_CACHE_DIR = Path("runs") / "cache" / "preprocess"
Labels = tuple[Int, ...] | None


class SplitConfig(Schema):
    """Which cases train the baseline and which are held out for the sessions: a seeded k-fold split
    (`folds`, `fold`), or a split a researcher names: a splits file in nnU-Net's style (`file`, its entry
    `fold`), or case lists (`test`, and optionally `train`)."""

    folds: Int = Field(
        2,
        ge=2,
        description="k of the seeded k-fold split of the cases (at most the number of cases); 2 holds out "
        "half of them, enough for the paired tests a comparison of refiners needs",
    )
    fold: Int = Field(
        0,
        ge=0,
        description="the fold held out for interactive sessions (the entry of `file` when given); the "
        "baseline trains on the others",
    )
    file: UserPath | None = Field(
        None,
        description="a splits file in nnU-Net's style (splits_final.json: a list of folds, each "
        '{"train": [case ids], "val": [case ids]}): entry `fold` is used, its `val` cases held out; replaces '
        "the seeded split (and `folds`)",
    )
    test: tuple[str, ...] | None = Field(
        None,
        description="case ids held out for the sessions, e.g. [case_0003, case_0007]; the baseline trains "
        "on `train`, or on every other case; replaces the seeded split",
    )
    train: tuple[str, ...] | None = Field(
        None, description="case ids the baseline trains on (with `test`; null: every case not in `test`)"
    )

    @model_validator(mode="after")
    def _one_split(self) -> SplitConfig:
        if self.file is not None and (self.test is not None or self.train is not None):
            raise ValueError("data.split: give a splits `file` or case lists (`test`, `train`), not both")
        if self.train is not None and self.test is None:
            raise ValueError("data.split.train: needs data.split.test (the cases held out for the sessions)")
        if self.test is not None:
            if not self.test:
                raise ValueError("data.split.test: must list at least one case id")
            both = sorted(set(self.test) & set(self.train or ()))
            if both:
                raise ValueError(f"data.split: cases both in train and test: {both}")
        if self.file is not None and not self.file.is_file():
            raise ValueError(f"data.split.file: {self.file} is not an existing file")
        if self.file is None and self.test is None and self.fold >= self.folds:
            raise ValueError(
                f"data.split.fold: {self.fold} must lie in [0, {self.folds - 1}] for data.split.folds={self.folds}"
            )
        return self

    @property
    def named(self) -> bool:
        """A split the user named (a file or case lists), not the seeded k-fold one."""
        return self.file is not None or self.test is not None


class ChecksConfig(Schema):
    """Plausibility of each case, checked when it is loaded: a case outside these bounds fails with a message
    naming the key (`action: warn` keeps it with a warning), so that one implausible file (a spacing of 1e6
    mm, a constant image) cannot dominate a job's means."""

    action: Literal["fail", "warn"] = Field(
        "fail", description="fail: the implausible case fails (the others go on); warn: kept, with a warning"
    )
    spacing_mm: tuple[Float, Float] = Field(
        (0.05, 20.0), description="[min, max] voxel spacing of the original image along every axis (mm)"
    )
    min_contrast: Float = Field(
        0.01,
        ge=0,
        description="least standard deviation of the preprocessed image (in [-1, 1]); below it the image is "
        "constant (or its intensity mode saturates it)",
    )
    max_label_share: Float = Field(
        0.9, gt=0, le=1, description="largest share of the model grid the reference label may cover"
    )
    min_label_voxels: Int = Field(
        10, ge=0, description="fewest reference voxels in the original image (fewer: nothing to segment)"
    )

    @field_validator("spacing_mm")
    @classmethod
    def _ordered(cls, bounds):
        if not 0 < bounds[0] <= bounds[1]:
            raise ValueError(f"must be [min, max] with 0 < min <= max, got {list(bounds)}")
        return bounds


class _DataBase(Schema):
    seed: Int = Field(0, ge=0, description="seeds the fold split, the phantoms and robot boxes (`${seed}`)")
    cache_dir: UserPath | None = Field(
        None,
        description="preprocessed volumes, keyed by file content, preprocessing config and the data code; "
        "null = runs/cache/preprocess under the working directory; must be a writable folder (checked "
        "before any image is read); a write failing later (disk full) warns once and the run goes on uncached",
    )
    crop: Literal["reference", "robot_box"] = Field(
        "reference",
        description="reference: the bounding box of the reference label (the paper); robot_box: a box drawn "
        "by `simulators.box.jittered_box` around the reference, as a user would (the paper's discussion)",
    )
    box_jitter: Float = Field(
        0.1, ge=0, le=1, description="robot_box only: jitter of the box as a fraction of its size"
    )
    split: SplitConfig = SplitConfig()
    preprocess: PreprocessConfig = PreprocessConfig()
    checks: ChecksConfig = ChecksConfig()

    @property
    def cache_folder(self) -> Path:
        folder = Path.cwd() / DEFAULT_CACHE_DIR if self.cache_dir is None else self.cache_dir
        return Path(os.path.expanduser(str(folder))).resolve()


class _RealData(_DataBase):
    """Keys of the sources that read files (msd, folder, dicom)."""

    root: Path = Field(description="the data set's folder (an existing folder)")
    foreground: Labels = Field(
        (1,),
        min_length=1,
        description="label values that become foreground (msd null = every non-zero label of dataset.json; "
        "Task07: pancreas 1 and tumour 2; e.g. `data.foreground=[1]` for pancreas only)",
    )
    label_values: Labels = Field(
        None,
        description="label values a file may hold; others are an error for that case (null = the labels of "
        "dataset.json (msd), else 0 and the foreground values, or the `classes`)",
    )
    classes: Labels = Field(
        None,
        min_length=1,
        description="label values segmented separately in the same images, e.g. [1, 2, 3, 11] of BTCV: each "
        "held-out case becomes one session per class, case id `<class name>/<case>` (names from dataset.json's "
        "labels, else the value), each exactly the session of a job with `data.foreground=[<class>]` (its own "
        "crop, baseline, robot and metrics); a class missing from a case fails that session only; null = one "
        "structure, `foreground` merged. Leave `foreground` at its default (or null) with it",
    )
    geometry_tolerance: Float = Field(
        0.001,
        ge=0,
        le=0.5,
        description="how far image and label grids may differ: relative for spacing, in voxels for origin, "
        "absolute for direction cosines",
    )

    @field_validator("foreground", "label_values", "classes")
    @classmethod
    def _values(cls, values, info):
        if values is not None and any(v < (0 if info.field_name == "label_values" else 1) for v in values):
            raise ValueError(f"must be {'>= 0' if info.field_name == 'label_values' else '>= 1'}")
        if values is not None and info.field_name == "classes" and len(set(values)) < len(values):
            raise ValueError(f"lists a value twice: {list(values)}")
        return values

    @model_validator(mode="after")
    def _classes_or_foreground(self):
        default = type(self).model_fields["foreground"].default
        if self.classes is not None and self.foreground not in (None, default):
            raise ValueError(
                f"data.classes and data.foreground: give one, not both (classes {list(self.classes)}: each "
                f"value its own session with foreground [value]; foreground {list(self.foreground)}: those "
                "values merged into one structure); with data.classes leave data.foreground null"
            )
        return self

    @field_validator("root", mode="before")
    @classmethod
    def _required(cls, root):
        if root in (None, ""):
            raise ValueError("required for this data.source: set data.root=DIR (the data set's folder)")
        return root

    @field_validator("root")
    @classmethod
    def _exists(cls, root: Path) -> Path:
        root = Path(os.path.expanduser(str(root)))
        if not root.is_dir():
            raise ValueError("is not an existing folder")
        return root


class PhantomData(_DataBase):
    source: Literal["phantom"] = Field("phantom", description="where the cases come from")
    phantom: PhantomConfig = PhantomConfig()


class MsdData(_RealData):
    source: Literal["msd"] = "msd"
    foreground: Labels = Field(None, min_length=1)
    preprocess: PreprocessConfig = PreprocessConfig(intensity="auto")


class FolderData(_RealData):
    source: Literal["folder"] = "folder"
    images_dir: str = Field(
        "images",
        description="folder of images, relative to `data.root` (dicom: of one series folder per case)",
    )
    labels_dir: str = Field(
        "labels", description="folder of labels, paired with images by file name (NIfTI, MHA/MHD, NRRD)"
    )
    image_suffix: str = Field(
        "", description="removed from image names before pairing (e.g. `_0000` for nnU-Net names)"
    )
    label_suffix: str = Field("", description="removed from label names before pairing (e.g. `_seg`)")
    manifest: UserPath | None = Field(
        None,
        description="a CSV with `case_id,image,label` columns (paths relative to the CSV and inside `data.root`; an image may be a "
        "DICOM folder); replaces the folders",
    )

    @model_validator(mode="after")
    def _no_auto(self) -> FolderData:
        if self.preprocess.intensity == "auto":
            raise ValueError(
                "data.preprocess.intensity: auto needs the images' modality, which data.source=folder does not "
                "know (NIfTI, MHA and NRRD files do not record it): set window (CT in HU), zscore or percentile"
            )
        return self


class DicomData(_RealData):
    source: Literal["dicom"] = "dicom"
    images_dir: str = Field(".")
    label_pattern: str = Field(
        "{case_id}.nii.gz",
        description="each case's label file, relative to `data.root`; must contain {case_id}",
    )

    @field_validator("label_pattern")
    @classmethod
    def _has_case_id(cls, pattern: str) -> str:
        if "{case_id}" not in pattern:
            raise ValueError("must contain {case_id}")
        return pattern


DataConfig = variants(PhantomData, MsdData, FolderData, DicomData, tag="source")
AnyData = PhantomData | MsdData | FolderData | DicomData
