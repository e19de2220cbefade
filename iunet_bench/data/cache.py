"""The preprocessing cache: file content digests and preprocessed volumes on disk.

Volumes are entries of an `iunet_bench.core.files.Cache` (one mechanism for every cache of the project): keyed
by the case's content (file bytes or phantom parameters), the preprocessing settings and the source of
`CODE_MODULES` with the versions of numpy, scipy and SimpleITK, so a sweep preprocesses each case once and
a changed file, setting or reader never reads a stale volume; written atomically; made once under a lock
when parallel jobs need the same case. Digests of files are remembered by (path, size, mtime, ctime,
inode) under `<cache_dir>/digests/`, so listing a large data set twice does not read every byte twice.

The cache is best-effort: a write that fails (disk full, folder gone read-only) warns once and the run goes
on with the volume it computed. `build_dataset` checks up front that `data.cache_dir` is a writable folder.
"""

from __future__ import annotations

import hashlib
import json
import re
import warnings
from pathlib import Path

import numpy as np

from iunet_bench.core.files import Cache, atomic_write
from iunet_bench.data.case import Volume
from iunet_bench.data.io import companions

# What a volume depends on beyond its key's content and settings: the code that reads, checks, reorients,
# generates, crops and preprocesses a case. Add a module here when `Volume` contents come to depend on it.
CODE_MODULES = (
    "iunet_bench.data.io",  # reading, checks, label mapping
    "iunet_bench.data.nifti",  # NIfTI header and data checks
    "iunet_bench.data.case",  # Geometry: canonical orientation
    "iunet_bench.data.preprocess",  # crop, smoothing, intensity, resampling
    "iunet_bench.data.phantom",  # generated cases
    "iunet_bench.data.cache",  # this file: the stored format
    "iunet_bench.data.dataset",  # which box a case is cropped to
    "simulators.box",  # bounding box and the robot box used for crops
    "iunet_bench.core.rng",  # the robot box's generator
)
LIBRARIES = ("numpy", "scipy", "SimpleITK")


def volume_cache(root: Path) -> Cache:
    return Cache(root, CODE_MODULES, LIBRARIES, what="preprocessed volumes", config_key="data.cache_dir")


def save_volume(volume: Volume, folder: Path) -> None:
    np.savez(
        folder / "volume.npz",
        image=volume.image,
        label=volume.label,
        spacing=np.asarray(volume.spacing, float),
        crop=np.asarray(volume.crop, np.int64),
        case_shape=np.asarray(volume.case_shape, np.int64),
        meta=np.asarray(json.dumps(volume.meta)),
        case_id=np.asarray(volume.case_id),
    )


def load_volume(folder: Path) -> Volume:
    with np.load(folder / "volume.npz", allow_pickle=False) as z:
        return Volume(
            case_id=str(z["case_id"]),
            image=z["image"],
            label=z["label"],
            spacing=tuple(float(s) for s in z["spacing"]),
            crop=tuple(int(b) for b in z["crop"]),
            case_shape=tuple(int(s) for s in z["case_shape"]),
            meta=json.loads(str(z["meta"])),
        )


_warned: set[str] = set()


def _warn_once(folder: Path, exc: OSError) -> None:
    if str(folder) in _warned:
        return
    _warned.add(str(folder))
    warnings.warn(
        f"data.cache_dir: cannot write file digests under {folder} ({type(exc).__name__}: {exc}); "
        "going on without remembering them (further failures are not reported)",
        RuntimeWarning,
        stacklevel=3,
    )


def _files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.is_file())
    return [path, *companions(path)]


def content_digest(path: Path, memo_dir: Path | None) -> str:
    """sha256 of a file's bytes (with the data file of a .mhd/.nhdr header), or of every file under a
    folder (a DICOM series). Raises FileNotFoundError (its `filename` the missing file, e.g. the .raw of a
    .mhd) or another OSError for a file that cannot be read. The memo is best-effort."""
    path = Path(path)
    files = _files(path)
    stats = []
    for f in files:
        st = f.stat()
        stats.append((str(f.resolve()), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino))
    memo = None
    if memo_dir is not None:
        memo = memo_dir / (hashlib.sha256(json.dumps(stats).encode()).hexdigest()[:32] + ".txt")
        try:
            known = memo.read_text(encoding="utf-8").strip()
            if re.fullmatch(r"[0-9a-f]{64}", known):
                return known
        except OSError:
            pass  # no memo (or an unreadable one): hash the bytes
    h = hashlib.sha256()
    for f in files:
        h.update(f.relative_to(path).as_posix().encode() if path.is_dir() else f.name.encode())
        with f.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 22), b""):
                h.update(chunk)
    digest = h.hexdigest()
    if memo is not None:
        try:
            atomic_write(memo, lambda f: f.write(digest.encode()))
        except OSError as exc:
            _warn_once(memo_dir, exc)
    return digest
