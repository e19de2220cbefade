"""The preprocessing cache: file content digests and preprocessed volumes on disk.

A volume is stored as `<cache_dir>/<case id>-<key>.npz`, the key hashing the case's content (file bytes or
phantom parameters), the preprocessing config and the code that computes volumes (`code_digest`), so a
sweep preprocesses each case once and a changed file, setting or reader never reads a stale volume. Digests
of files are remembered by (path, size, mtime, ctime, inode) under `<cache_dir>/digests/`, so listing a
large data set twice does not read every byte twice. Writes go through a temporary file and an atomic
rename, so parallel jobs can share the folder.

The cache is best-effort: a write that fails (disk full, folder gone read-only) warns once and the run goes
on with the volume it computed. `build_dataset` checks up front that `data.cache_dir` is a writable folder.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import tempfile
import warnings
from functools import lru_cache
from pathlib import Path

import numpy as np
import scipy
import SimpleITK as sitk

from iunet_bench.data.case import Volume
from iunet_bench.data.io import companions

# What a cached volume depends on beyond the content, preprocessing config and label mapping in its key is
# the code that reads, checks, reorients, generates and preprocesses a case, and the numerical libraries
# under it. The source files of CODE_MODULES and the versions of numpy, scipy and SimpleITK are folded into
# every key (`code_digest`), so editing any of those modules, even a comment, recomputes the cache instead
# of serving a stale volume. Add a module to CODE_MODULES when `Volume` contents come to depend on it. Bump
# CACHE_VERSION by hand only for a change that none of this sees (e.g. a behaviour change of another
# dependency such as simulators.box's imports).
CACHE_VERSION = 2
CODE_MODULES = (
    "iunet_bench.data.io",  # reading, checks, label mapping
    "iunet_bench.data.case",  # Geometry: canonical orientation
    "iunet_bench.data.preprocess",  # crop, smoothing, intensity, resampling
    "iunet_bench.data.phantom",  # generated cases
    "iunet_bench.data.cache",  # this file: the stored format
    "simulators.box",  # bounding box and the robot box used for crops
)


@lru_cache(maxsize=1)
def code_digest() -> str:
    """sha256 over the source files of CODE_MODULES and the library versions (once per process)."""
    h = hashlib.sha256(f"{CACHE_VERSION}|{np.__version__}|{scipy.__version__}".encode())
    h.update(sitk.Version_VersionString().encode())
    for name in CODE_MODULES:
        spec = importlib.util.find_spec(name)
        try:
            h.update(name.encode() + Path(spec.origin).read_bytes())
        except (OSError, TypeError, AttributeError):  # no source file (e.g. a zipped install): name only
            h.update(name.encode())
    return h.hexdigest()[:16]


_warned: set[tuple[str, str]] = set()


def _warn_once(what: str, folder: Path, exc: OSError) -> None:
    """One warning per cache folder and kind of write: the run goes on without caching."""
    if (what, str(folder)) in _warned:
        return
    _warned.add((what, str(folder)))
    warnings.warn(
        f"data.cache_dir: cannot write {what} under {folder} ({type(exc).__name__}: {exc}); "
        "going on without caching them (further failures are not reported)",
        RuntimeWarning,
        stacklevel=3,
    )


def _atomic_write(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def check_writable(folder: Path) -> None:
    """Create `folder` if needed and prove it takes a file; raises OSError otherwise."""
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".probe-")
    os.close(fd)
    os.unlink(tmp)


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
            _atomic_write(memo, lambda f: f.write(digest.encode()))
        except OSError as exc:
            _warn_once("file digests", memo_dir, exc)
    return digest


def volume_key(content: object, preprocess: dict, mapping: dict) -> str:
    blob = json.dumps(
        {"content": content, "preprocess": preprocess, "mapping": mapping, "code": code_digest()},
        sort_keys=True,
        default=list,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


class VolumeCache:
    def __init__(self, root: Path):
        self.root = Path(root)

    def path(self, case_id: str, key: str) -> Path:
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", case_id)[:80]
        return self.root / f"{safe}-{key}.npz"

    def get(self, case_id: str, key: str) -> Volume | None:
        path = self.path(case_id, key)
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as z:
                meta = json.loads(str(z["meta"]))
                return Volume(
                    case_id=case_id,
                    image=z["image"],
                    label=z["label"],
                    spacing=tuple(float(s) for s in z["spacing"]),
                    crop=tuple(int(b) for b in z["crop"]),
                    case_shape=tuple(int(s) for s in z["case_shape"]),
                    meta=meta,
                )
        except Exception:  # noqa: BLE001 - a damaged cache entry is recomputed, never trusted
            return None

    def put(self, key: str, volume: Volume) -> None:
        """Store `volume` (best-effort: a failed write warns once and is otherwise ignored)."""
        arrays = {
            "image": volume.image,
            "label": volume.label,
            "spacing": np.asarray(volume.spacing, float),
            "crop": np.asarray(volume.crop, np.int64),
            "case_shape": np.asarray(volume.case_shape, np.int64),
            "meta": np.asarray(json.dumps(volume.meta)),
        }
        try:
            _atomic_write(self.path(volume.case_id, key), lambda f: np.savez(f, **arrays))
        except OSError as exc:
            _warn_once("preprocessed volumes", self.root, exc)
