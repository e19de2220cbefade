"""Reading medical images with SimpleITK (NIfTI, MHA/MHD, NRRD, DICOM series) and writing masks back.

Every problem with one case raises `CaseError`, whose message names the case and the file; the data set
turns it into a `Failure` and goes on with the other cases.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from iunet_bench.data.case import Case, Geometry
from iunet_bench.data.nifti import nifti_problem

IMAGE_SUFFIXES = (".nii.gz", ".nii", ".mha", ".mhd", ".nrrd", ".nhdr")


class CaseError(ValueError):
    """A problem with one case's files. The message starts with 'case <id>: <file>: '."""

    def __init__(self, case_id: str, path: str | os.PathLike | None, what: str):
        self.case_id, self.path, self.what = case_id, None if path is None else str(path), what
        where = f"{self.path}: " if path is not None else ""
        super().__init__(f"case {case_id}: {where}{what}")


def strip_suffix(name: str) -> str:
    """File name without its image suffix ('a.nii.gz' -> 'a'), or the name as it is."""
    low = name.lower()
    for s in IMAGE_SUFFIXES:
        if low.endswith(s):
            return name[: -len(s)]
    return name


_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


def file_kind(path: str | os.PathLike) -> str | None:
    """What `path` is when it exists but is not a regular file ('a folder', 'a named pipe (FIFO)', ...),
    links followed; None for a regular file or a missing path. Looks at the inode only, never opens it
    (opening a FIFO waits for a writer: a job would hang)."""
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return None
    if stat.S_ISREG(mode):
        return None
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def require_files(case_id: str, path: Path) -> None:
    """Raise CaseError naming the file unless `path` is a regular file (with the data files its header
    names, for .mhd/.nhdr) or a folder (a DICOM series): missing, or a FIFO, socket or device."""
    if not path.exists():
        raise CaseError(case_id, path, "file does not exist")
    kind = file_kind(path)
    if kind == "a folder":
        return
    if kind is not None:
        raise CaseError(case_id, path, f"is {kind}, not a regular file; expected an image file")
    for data_file in companions(path):
        if not data_file.exists():
            raise CaseError(case_id, data_file, f"file does not exist (the voxel data of {path.name})")
        kind = file_kind(data_file)
        if kind is not None:
            raise CaseError(
                case_id, data_file, f"is {kind}, not a regular file (the voxel data of {path.name})"
            )


def companions(path: Path) -> list[Path]:
    """Data files a header refers to (MetaImage ElementDataFile, NRRD detached data); [] for other files."""
    low = path.name.lower()
    if not (low.endswith(".mhd") or low.endswith(".nhdr")):
        return []
    out = []
    for line in path.read_text(errors="replace").splitlines():
        m = re.match(r"\s*(ElementDataFile|data file|datafile)\s*[=:]\s*(.+)", line, re.IGNORECASE)
        if m and m.group(2).strip().upper() not in ("LOCAL", "LIST"):
            out.append(path.parent / m.group(2).strip())
    return out


def dicom_series_files(folder: Path) -> list[str]:
    """The files of the largest DICOM series found in `folder` or below it (sorted by SimpleITK)."""
    best: list[str] = []
    for dirpath, _, _ in os.walk(folder):
        for sid in sitk.ImageSeriesReader.GetGDCMSeriesIDs(dirpath) or ():
            files = list(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(dirpath, sid))
            if len(files) > len(best):
                best = files
    return best


def dicom_modality(folder: Path, tries: int = 5) -> str:
    """The Modality tag (0008,0060) of the first DICOM file under `folder` (walked in sorted order), e.g.
    'CT' or 'MR'; '' if the first `tries` files are not DICOM or the tag is absent. Reads one header only."""
    reader = sitk.ImageFileReader()
    reader.SetImageIO("GDCMImageIO")
    failed = 0
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames.sort()
        for name in sorted(n for n in filenames if not n.startswith(".")):
            reader.SetFileName(os.path.join(dirpath, name))
            try:
                reader.ReadImageInformation()
            except RuntimeError:  # not a DICOM file (a DICOMDIR index, a text note)
                failed += 1
                if failed >= tries:
                    return ""
                continue
            return reader.GetMetaData("0008|0060").strip() if reader.HasMetaDataKey("0008|0060") else ""
    return ""


def read_image(path: str | os.PathLike, case_id: str = "?") -> sitk.Image:
    """One image file, or the largest DICOM series in a folder. Raises CaseError naming case and file."""
    path = Path(path)
    try:
        require_files(case_id, path)
        if path.is_dir():
            files = dicom_series_files(path)
            if not files:
                raise CaseError(
                    case_id,
                    path,
                    "is a folder holding no DICOM series; expected an image file or a DICOM series folder",
                )
            reader = sitk.ImageSeriesReader()
            reader.SetFileNames(files)
            return reader.Execute()
        problem = nifti_problem(path) if path.name.lower().endswith((".nii", ".nii.gz")) else None
        if problem:
            raise CaseError(case_id, path, problem)
        return sitk.ReadImage(str(path))
    except CaseError:
        raise
    except Exception as exc:  # noqa: BLE001 - SimpleITK raises RuntimeError with ITK's text
        text = str(exc).strip().splitlines()
        detail = next(
            (t for t in text if "rror" in t or "annot" in t), text[-1] if text else type(exc).__name__
        )
        raise CaseError(case_id, path, f"unreadable or truncated image ({detail.strip()[:300]})") from exc


def _as_3d(img: sitk.Image, case_id: str, path) -> sitk.Image:
    if img.GetNumberOfComponentsPerPixel() != 1:
        raise CaseError(
            case_id,
            path,
            f"has {img.GetNumberOfComponentsPerPixel()} components per voxel; expected a scalar image",
        )
    size = img.GetSize()
    if img.GetDimension() == 4 and size[3] == 1:
        img = sitk.Extract(img, [*size[:3], 0], [0, 0, 0, 0])
    elif img.GetDimension() != 3:
        raise CaseError(case_id, path, f"is {img.GetDimension()}D (size {size}); expected a 3D volume")
    if min(img.GetSize()) < 2:
        raise CaseError(case_id, path, f"has size {img.GetSize()}: a 2D slice, expected a 3D volume")
    return img


def format_values(values, brackets: str = "()") -> str:
    """Numbers for a message, each as read to 6 significant digits: 1e-09 stays 1e-09 (never 0.0)."""
    return brackets[0] + ", ".join(f"{float(x):.6g}" for x in values) + brackets[1]


def check_same_grid(
    image: sitk.Image, label: sitk.Image, case_id: str, image_path, label_path, tol: float
) -> None:
    """Raise CaseError unless image and label share size, spacing, origin and direction (within `tol`:
    relative for spacing, voxels for origin, absolute for direction cosines)."""
    fmt = format_values
    if image.GetSize() != label.GetSize():
        raise CaseError(
            case_id, label_path, f"size {label.GetSize()} differs from the image's {image.GetSize()}"
        )
    isp, lsp = np.array(image.GetSpacing()), np.array(label.GetSpacing())
    if np.any(np.abs(isp - lsp) > tol * isp):
        raise CaseError(case_id, label_path, f"spacing {fmt(lsp)} differs from the image's {fmt(isp)}")
    if np.any(np.abs(np.array(image.GetOrigin()) - np.array(label.GetOrigin())) > tol * isp):
        raise CaseError(
            case_id,
            label_path,
            f"origin {fmt(label.GetOrigin())} differs from the image's {fmt(image.GetOrigin())}",
        )
    if np.any(np.abs(np.array(image.GetDirection()) - np.array(label.GetDirection())) > tol):
        raise CaseError(
            case_id,
            label_path,
            f"direction {fmt(label.GetDirection())} differs from the image's {fmt(image.GetDirection())}",
        )


_CHUNK = 1 << 22  # voxels per pass over a large label (a few tens of MB of temporaries at most)
_MAX_SPAN = 1 << 20  # label values within this range are counted with bincount, else np.unique


def _chunks(flat: np.ndarray):
    for start in range(0, flat.size, _CHUNK):
        yield flat[start : start + _CHUNK]


def label_values(label: np.ndarray, case_id: str = "?", path=None) -> np.ndarray:
    """The distinct values of a label array, sorted, as int64. CaseError for NaN/inf or non-integer values.

    Works in chunks without a full-size copy: min and max first, then counts of (value - min) in an
    integer offset type (np.unique only for labels whose values span over a million)."""
    flat = label.reshape(-1)
    if flat.size == 0:
        return np.zeros(0, np.int64)
    lo, hi = flat.min(), flat.max()
    if label.dtype.kind == "f":
        if not (np.isfinite(lo) and np.isfinite(hi)):  # min/max propagate NaN and show inf
            raise CaseError(case_id, path, "label holds non-integer values (NaN or infinite voxels)")
        if any(np.any(c != np.rint(c)) for c in _chunks(flat)):
            raise CaseError(case_id, path, "label holds non-integer values")
    elif label.dtype.kind not in "iub":
        raise CaseError(case_id, path, f"label has voxel type {label.dtype}; expected integers")
    lo, hi = int(lo), int(hi)
    if hi - lo < _MAX_SPAN:
        counts = np.zeros(hi - lo + 1, np.int64)
        offset = np.float64 if label.dtype.kind == "f" else np.int64
        for c in _chunks(flat):
            counts += np.bincount((c.astype(offset) - lo).astype(np.intp), minlength=counts.size)
        return np.flatnonzero(counts).astype(np.int64) + lo
    return np.unique(np.concatenate([np.unique(c) for c in _chunks(flat)])).astype(np.int64)


def label_to_mask(
    label: np.ndarray, allowed: Sequence[int] | None, foreground: Sequence[int], case_id: str, path
) -> np.ndarray:
    """uint8 0/1 mask of the `foreground` values; CaseError for non-integer values, values outside `allowed`
    (None: no check), or an empty result."""
    values = label_values(label, case_id, path)
    if allowed is not None:
        bad = sorted(set(values.tolist()) - set(int(a) for a in allowed))
        if bad:
            raise CaseError(
                case_id,
                path,
                f"label values {bad[:10]} are outside the mapping {sorted(int(a) for a in allowed)}",
            )
    fg = [int(v) for v in foreground]
    if not set(fg) & set(values.tolist()):
        raise CaseError(case_id, path, f"label is empty: no voxel has a foreground value {fg}")
    if fg == [1] and values.min() >= 0 and values.max() <= 1:
        return label.astype(np.uint8)
    mask = np.empty(label.shape, np.uint8)
    out = mask.reshape(-1)
    for start, c in zip(range(0, out.size, _CHUNK), _chunks(label.reshape(-1))):
        out[start : start + c.size] = np.isin(c, fg)
    return mask


def read_case(
    case_id: str,
    image_path,
    label_path,
    *,
    foreground: Sequence[int] = (1,),
    allowed: Sequence[int] | None = (0, 1),
    orientation: str | None = "LPS",
    tolerance: float = 1e-3,
) -> Case:
    """Read, check and reorient one case. Raises CaseError (naming case and file) on any problem."""
    if label_path is None:
        raise CaseError(case_id, image_path, "no label file found for this image")
    img = _as_3d(read_image(image_path, case_id), case_id, image_path)
    lab = _as_3d(read_image(label_path, case_id), case_id, label_path)
    check_same_grid(img, lab, case_id, image_path, label_path, tolerance)
    try:
        geometry = Geometry.from_image(
            img.GetSize(), img.GetSpacing(), img.GetOrigin(), img.GetDirection(), orientation
        )
    except ValueError as exc:
        raise CaseError(case_id, image_path, str(exc)) from exc
    image = sitk.GetArrayViewFromImage(img)  # views: valid only while img and lab live, so copy below
    if image.dtype.kind == "f" and not (np.isfinite(image.min()) and np.isfinite(image.max())):  # NaN, inf
        bad = int(np.size(image) - np.count_nonzero(np.isfinite(image)))
        raise CaseError(case_id, image_path, f"image holds {bad} NaN or infinite voxels")
    mask = label_to_mask(sitk.GetArrayViewFromImage(lab), allowed, foreground, case_id, label_path)
    return Case(
        case_id=case_id,
        # reoriented as a view, then one copy that also converts: never a view of img, one float32 array
        image=np.array(geometry.canonical_view(image), dtype=np.float32, order="C", copy=True),
        label=geometry.to_canonical(mask),
        spacing=geometry.canonical_spacing,
        geometry=geometry,
        source=str(image_path),
    )


def original_image(mask: np.ndarray, geometry: Geometry) -> sitk.Image:
    """A canonical-grid mask as a uint8 SimpleITK image on the original file's grid (size, spacing,
    origin and direction of the original)."""
    img = sitk.GetImageFromArray(geometry.from_canonical(np.asarray(mask).astype(np.uint8)))
    img.SetSpacing(geometry.spacing)
    img.SetOrigin(geometry.origin)
    img.SetDirection(geometry.direction)
    return img


def write_on_original_grid(mask: np.ndarray, geometry: Geometry, path) -> Path:
    """Write a canonical-grid mask on the original file's grid (format by the suffix, compressed)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(original_image(mask, geometry), str(path), True)
    return path
