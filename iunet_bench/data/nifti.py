"""What ITK's NIfTI reader does not say, read from the NIfTI-1 or NIfTI-2 header and data (plain or gzip'ed)
with struct and numpy: a truncated file (ITK zero-fills the missing voxels), NaN/inf voxels in float data
(it reads them as 0) and a voxel size (pixdim) that is 0, negative or not a number (it reads 0 as 1 mm and
-1.5 as 1.5 mm). Each is returned as a sentence for `io.CaseError`, which names the case and the file.
"""

from __future__ import annotations

import gzip
import os
import struct
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

_FLOATS = {16: "f4", 64: "f8"}  # NIfTI datatype codes of float32 and float64


def pixdim_problem(pixdim: Sequence[float], ndim: int) -> str | None:
    """Why the voxel sizes of a NIfTI header are refused, or None: each spatial one (pixdim[1..3], as many
    as the image has axes) must be a positive finite number. Whether a positive size is plausible is for
    `data.checks.spacing_mm` to say: it sees the size ITK reads (the pixdim times its unit: mm, m or um)."""
    for i in range(1, min(ndim, 3) + 1):
        v = float(pixdim[i])
        if not (np.isfinite(v) and v > 0):
            return (
                f"NIfTI header pixdim[{i}] (the voxel size along {'xyz'[i - 1]}) is {v:g}; expected a positive "
                "size (ITK would read 0 as 1 mm and a negative size as its absolute value)"
            )
    return None


def nifti_problem(path: Path) -> str | None:
    """Why a .nii / .nii.gz file is refused, or None (also for a header this function does not know: left
    to ITK). Costs one extra pass over the data only for float images, or for a .gz whose size trailer does
    not match the header."""
    gz = path.name.lower().endswith(".gz")
    opener = gzip.open if gz else open
    try:
        with opener(path, "rb") as f:
            head = f.read(540)
    except (OSError, EOFError) as exc:
        return f"unreadable or truncated image ({exc})"
    for order in "<>":
        size = struct.unpack(order + "i", head[:4])[0] if len(head) >= 4 else 0
        if size in (348, 540):
            break
    else:
        return None
    if size == 348:  # NIfTI-1
        dims = struct.unpack(order + "8h", head[40:56])
        datatype, bitpix = struct.unpack(order + "2h", head[70:74])
        pixdim = struct.unpack(order + "8f", head[76:108])
        offset = int(struct.unpack(order + "f", head[108:112])[0])
    else:  # NIfTI-2
        datatype, bitpix = struct.unpack(order + "2h", head[12:16])
        dims = struct.unpack(order + "8q", head[16:80])
        pixdim = struct.unpack(order + "8d", head[104:168])
        offset = int(struct.unpack(order + "q", head[168:176])[0])
    ndim = max(1, min(int(dims[0]), 7))
    problem = pixdim_problem(pixdim, ndim)
    if problem:
        return problem
    nbytes = int(np.prod([max(1, int(d)) for d in dims[1 : ndim + 1]])) * max(1, int(bitpix)) // 8
    offset = max(offset, size + 4 if size == 348 else size)
    if gz:
        with path.open("rb") as raw:
            raw.seek(-4, os.SEEK_END)
            trailer = struct.unpack("<I", raw.read(4))[0]
        complete = trailer == (offset + nbytes) % 2**32
    else:
        complete = path.stat().st_size >= offset + nbytes
    if complete and datatype not in _FLOATS:
        return None
    try:
        with opener(path, "rb") as f:
            f.seek(offset)
            data = f.read(nbytes)
    except (OSError, EOFError, zlib.error) as exc:
        return f"unreadable or truncated image ({type(exc).__name__}: {exc})"
    if len(data) < nbytes:
        return f"truncated image: {len(data)} of {nbytes} bytes of voxel data"
    if datatype in _FLOATS:
        values = np.frombuffer(data, order + _FLOATS[datatype])
        bad = int(values.size - np.count_nonzero(np.isfinite(values)))
        if bad:
            return f"image holds {bad} NaN or infinite voxels"
    return None
