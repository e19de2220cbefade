"""The preprocessing cache: file content digests and preprocessed volumes on disk.

A volume is stored as `<cache_dir>/<case id>-<key>.npz`, the key hashing the case's content (file bytes or
phantom parameters) and the preprocessing config, so a sweep preprocesses each case once and a changed
file or setting never reads a stale volume. Digests of files are remembered by (path, size, mtime) under
`<cache_dir>/digests/`, so listing a large data set twice does not read every byte twice. Writes go
through a temporary file and an atomic rename, so parallel jobs can share the folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from pathlib import Path

import numpy as np

from iunet_bench.data.case import Volume

CACHE_VERSION = 1  # bump when preprocessing changes what it computes


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


def _companions(path: Path) -> list[Path]:
    """Data files a header refers to (MetaImage ElementDataFile, NRRD detached data)."""
    low = path.name.lower()
    if not (low.endswith(".mhd") or low.endswith(".nhdr")):
        return []
    out = []
    for line in path.read_text(errors="replace").splitlines():
        m = re.match(r"\s*(ElementDataFile|data file|datafile)\s*[=:]\s*(.+)", line, re.IGNORECASE)
        if m and m.group(2).strip().upper() not in ("LOCAL", "LIST"):
            out.append(path.parent / m.group(2).strip())
    return out


def _files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.is_file())
    return [path, *_companions(path)]


def content_digest(path: Path, memo_dir: Path | None) -> str:
    """sha256 of a file's bytes (with the data file of a .mhd/.nhdr header), or of every file under a
    folder (a DICOM series); raises FileNotFoundError if it is missing."""
    path = Path(path)
    files = _files(path)
    stats = [(str(f.resolve()), f.stat().st_size, f.stat().st_mtime_ns) for f in files]
    memo = None
    if memo_dir is not None:
        memo = memo_dir / (hashlib.sha256(json.dumps(stats).encode()).hexdigest()[:32] + ".txt")
        if memo.is_file():
            return memo.read_text().strip()
    h = hashlib.sha256()
    for f in files:
        h.update(f.relative_to(path).as_posix().encode() if path.is_dir() else f.name.encode())
        with f.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 22), b""):
                h.update(chunk)
    digest = h.hexdigest()
    if memo is not None:
        _atomic_write(memo, lambda f: f.write(digest.encode()))
    return digest


def volume_key(content: object, preprocess: dict, mapping: dict) -> str:
    blob = json.dumps(
        {"content": content, "preprocess": preprocess, "mapping": mapping, "version": CACHE_VERSION},
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
        arrays = {
            "image": volume.image,
            "label": volume.label,
            "spacing": np.asarray(volume.spacing, float),
            "crop": np.asarray(volume.crop, np.int64),
            "case_shape": np.asarray(volume.case_shape, np.int64),
            "meta": np.asarray(json.dumps(volume.meta)),
        }
        _atomic_write(self.path(volume.case_id, key), lambda f: np.savez(f, **arrays))
