"""What a bad case's message says: the file it is about, the value as read, what was expected; and files
that ITK would read wrong without a word (a NIfTI voxel size of 0 or -1.5) or that would block a job (a
FIFO named like an image). Small volumes written into tmp_path; each test takes about a second."""

import contextlib
import gzip
import os
import struct
import threading
import time
import warnings

import numpy as np
import pytest
import SimpleITK as sitk

from iunet_bench.data import CaseError, build_dataset
from iunet_bench.data.io import read_image
from iunet_bench.data.nifti import nifti_problem
from tests.test_data_dataset import SHAPE, data_cfg, make_folder, volume_pair, write, write_msd

PIXDIM = 76  # byte offset of pixdim[0] in a NIfTI-1 header (8 float32)


def set_pixdim(path, axis, value, units=None):
    """Patch pixdim[axis] (and xyzt_units) in the header of a .nii or .nii.gz file written by SimpleITK."""
    gz = path.name.endswith(".gz")
    data = bytearray(gzip.decompress(path.read_bytes()) if gz else path.read_bytes())
    assert struct.unpack("<i", data[:4])[0] == 348  # NIfTI-1, little-endian
    struct.pack_into("<f", data, PIXDIM + 4 * axis, value)
    if units is not None:
        data[123] = (data[123] & ~7) | units
    path.write_bytes(gzip.compress(bytes(data)) if gz else bytes(data))
    return path


def errors_of(ds):
    volumes, failures = ds.volumes(ds.case_ids)
    return [v.case_id for v in volumes], {f.case_id: f.error for f in failures}


# ---------------------------------------------------------------------- the file a check is about


def test_label_checks_name_the_label_file_and_what_is_expected(tmp_path):
    root = make_folder(tmp_path / "data", n=2)
    image, _ = volume_pair(5)
    speck = np.zeros(SHAPE, np.uint8)
    speck[5, 12, 13:16] = 1  # 3 voxels
    for cid, label in (("whole", np.ones(SHAPE, np.uint8)), ("speck", speck)):
        write(root / "images" / f"{cid}.nii.gz", image)
        write(root / "labels" / f"{cid}.nii.gz", label)
    loaded, errors = errors_of(build_dataset(data_cfg(root, tmp_path)))
    assert loaded == ["case0", "case1"] and sorted(errors) == ["speck", "whole"]
    whole, three = errors["whole"], errors["speck"]
    assert whole.startswith(f"case whole: {root / 'labels' / 'whole.nii.gz'}: the label covers 100%"), whole
    assert str(root / "images" / "whole.nii.gz") not in whole
    assert (
        "expected at most 90%" in whole and "background" in whole and "data.checks.max_label_share" in whole
    )
    assert three.startswith(f"case speck: {root / 'labels' / 'speck.nii.gz'}: the label has 3 foreground"), (
        three
    )
    assert "expected at least 10 (data.checks.min_label_voxels)" in three
    # the crop around 3 voxels is nearly constant: said too, after the image file it is about
    assert f"{root / 'images' / 'speck.nii.gz'}: the preprocessed image" in three


def test_a_spacing_out_of_bounds_is_shown_as_read(tmp_path):
    root = make_folder(tmp_path / "data", n=2)
    image, label = volume_pair(5)
    write(root / "images" / "thin.nii.gz", image, spacing=(0.8, 0.8, 1e-9))
    write(root / "labels" / "thin.nii.gz", label, spacing=(0.8, 0.8, 1e-9))
    _, errors = errors_of(build_dataset(data_cfg(root, tmp_path)))
    (error,) = errors.values()
    assert f"case thin: {root / 'images' / 'thin.nii.gz'}: voxel spacing (0.8, 0.8, 1e-09) mm" in error, error
    assert "outside data.checks.spacing_mm [0.05, 20]" in error


# ---------------------------------------------------------------------- entries that are no regular file


def test_a_folder_or_fifo_named_like_an_image_is_named_as_such(tmp_path):
    root = make_folder(tmp_path / "data", n=3)
    folder, fifo = root / "images" / "case1.nii.gz", root / "labels" / "case2.nii.gz"
    folder.unlink()
    folder.mkdir()
    fifo.unlink()
    os.mkfifo(fifo)
    ds = build_dataset(data_cfg(root, tmp_path))
    assert ds.case_ids == ["case0", "case1", "case2"]
    loaded, errors = errors_of(ds)
    assert loaded == ["case0"]
    assert f"{folder} is a folder, not an image file" in errors["case1"], errors["case1"]
    assert f"{fifo} is a named pipe (FIFO), not an image file" in errors["case2"], errors["case2"]
    assert not any("no image file" in e or "no label file" in e for e in errors.values())


def finishes(fn, fifos, seconds=20.0):
    """fn() in a thread; False if it is still blocked after `seconds` (then unblocked by writing EOF into
    each FIFO until it ends, so no thread is left behind)."""
    out = {}
    thread = threading.Thread(target=lambda: out.update(value=fn()), daemon=True)
    thread.start()
    thread.join(seconds)
    blocked = thread.is_alive()
    while thread.is_alive():
        for f in fifos:
            with contextlib.suppress(OSError):  # no reader waits yet
                os.close(os.open(f, os.O_WRONLY | os.O_NONBLOCK))  # a reader waits: it sees EOF
        time.sleep(0.05)
    return not blocked, out.get("value")


def test_a_fifo_listed_by_dataset_json_or_a_manifest_fails_its_case_instead_of_blocking(tmp_path):
    root = write_msd(tmp_path / "Task", n=3)
    fifo, folder = root / "imagesTr" / "pancreas_001.nii.gz", root / "labelsTr" / "pancreas_002.nii.gz"
    fifo.unlink()
    os.mkfifo(fifo)
    folder.unlink()
    folder.mkdir()
    ds = build_dataset(data_cfg(root, tmp_path, source="msd"))
    done, result = finishes(lambda: (ds.fingerprint, errors_of(ds)), [fifo])
    assert done, f"reading the data set blocked on the FIFO {fifo}"
    _, (loaded, errors) = result
    assert loaded == ["pancreas_000"]
    assert (
        errors["pancreas_001"]
        == f"case pancreas_001: {fifo}: is a named pipe (FIFO), not a regular file; expected an image file"
    )
    assert f"{folder}: is a folder holding no DICOM series" in errors["pancreas_002"]
    (root / "cases.csv").write_text(
        "case_id,image,label\np0,imagesTr/pancreas_000.nii.gz,labelsTr/pancreas_000.nii.gz\n"
        "p1,imagesTr/pancreas_001.nii.gz,labelsTr/pancreas_001.nii.gz\n",
        encoding="utf-8",
    )
    manifest = build_dataset(data_cfg(root, tmp_path, manifest="cases.csv", foreground=[1, 2]))
    done, result = finishes(lambda: errors_of(manifest), [fifo])
    assert done and result[0] == ["p0"] and f"{fifo}: is a named pipe (FIFO)" in result[1]["p1"]


# ---------------------------------------------------------------------- NIfTI voxel sizes ITK would rewrite


@pytest.mark.parametrize(
    ("suffix", "axis", "value", "shown", "itk"),
    [
        (".nii", 3, 0.0, "is 0;", 1.0),
        (".nii.gz", 3, -1.5, "is -1.5;", 1.5),
        (".nii.gz", 1, float("nan"), "is nan;", None),
    ],
)
def test_a_non_positive_nifti_pixdim_is_refused_naming_file_and_value(
    tmp_path, suffix, axis, value, shown, itk
):
    root = make_folder(tmp_path / "data", n=2)
    image, label = volume_pair(5)
    bad = {}
    for folder, array in (("images", image), ("labels", label)):  # both: their grids still agree
        path = write(root / folder / f"bad{suffix}", array, spacing=(0.8, 0.8, 1.5))
        bad[folder] = set_pixdim(path, axis, value)
    if itk is not None:  # what ITK makes of it, without a word
        assert sitk.ReadImage(str(bad["images"])).GetSpacing()[axis - 1] == pytest.approx(itk)
    loaded, errors = errors_of(build_dataset(data_cfg(root, tmp_path)))
    assert loaded == ["case0", "case1"]  # before: "bad" loaded too, on a grid the file does not have
    error = errors["bad"]
    assert error.startswith(f"case bad: {bad['images']}: NIfTI header pixdim[{axis}]"), error
    assert shown in error and "expected a positive size" in error
    with pytest.raises(CaseError, match=r"pixdim\[") as info:
        read_image(bad["labels"], "bad")
    assert info.value.path == str(bad["labels"])


def test_a_positive_pixdim_in_metres_still_loads_and_its_size_in_mm_is_checked(tmp_path):
    root = make_folder(tmp_path / "data", n=2)
    image, label = volume_pair(5)
    for folder, array in (("images", image), ("labels", label)):
        path = write(root / folder / "metres.nii", array, spacing=(0.8, 0.8, 1.5))
        for axis, v in ((1, 0.0008), (2, 0.0008), (3, 0.0015)):
            set_pixdim(path, axis, v, units=1)  # NIFTI_UNITS_METER: ITK reads 0.8 x 0.8 x 1.5 mm
    assert read_image(root / "images" / "metres.nii").GetSpacing() == pytest.approx((0.8, 0.8, 1.5))
    loaded, errors = errors_of(build_dataset(data_cfg(root, tmp_path)))
    assert errors == {} and "metres" in loaded
    for folder in ("images", "labels"):
        set_pixdim(root / folder / "metres.nii", 3, 0.5, units=1)  # 500 mm: a plausible header, not a size
    _, errors = errors_of(build_dataset(data_cfg(root, tmp_path)))
    assert "(0.8, 0.8, 500) mm is outside data.checks.spacing_mm" in errors["metres"], errors


def nifti2(path, array, pixdim):
    """A minimal little-endian NIfTI-2 file of int16 voxels (SimpleITK writes NIfTI-1 only)."""
    a = np.ascontiguousarray(array, "<i2")
    header = bytearray(540)
    struct.pack_into("<i8s2h", header, 0, 540, b"n+2\0\r\n\x1a\n", 4, 16)
    struct.pack_into("<8q", header, 16, 3, *a.shape[::-1], 1, 1, 1, 1)
    struct.pack_into("<8d", header, 104, 1.0, *pixdim, 0, 0, 0, 0)
    struct.pack_into("<q", header, 168, 544)  # vox_offset: after the 4 extension bytes
    path.write_bytes(bytes(header) + bytes(4) + a.tobytes())
    return path


def test_the_nifti2_header_is_read_too(tmp_path):
    array = np.zeros((4, 5, 6), np.int16)
    assert nifti_problem(nifti2(tmp_path / "good.nii", array, (0.8, 0.8, 1.5))) is None
    problem = nifti_problem(nifti2(tmp_path / "flat.nii", array, (0.8, 0.0, 1.5)))
    assert problem.startswith("NIfTI header pixdim[2] (the voxel size along y) is 0;"), problem
    gz = tmp_path / "neg.nii.gz"
    gz.write_bytes(gzip.compress(nifti2(tmp_path / "neg.nii", array, (-2.0, 0.8, 1.5)).read_bytes()))
    assert "pixdim[1] (the voxel size along x) is -2;" in nifti_problem(gz)


# ---------------------------------------------------------------------- each problem said once


def test_listing_problems_are_said_once_as_their_case_failure_with_no_warning(tmp_path):
    root = make_folder(tmp_path / "data", n=3)
    (root / "labels" / "case1.nii.gz").unlink()  # an image without a label
    image, _ = volume_pair(0)
    write(root / "images" / "case2.mha", image)  # two images for one case name
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = build_dataset(data_cfg(root, tmp_path))
        fingerprint = ds.fingerprint
        loaded, errors = errors_of(ds)
    assert [str(w.message) for w in caught] == []  # before: one RuntimeWarning "from functools.py"
    assert loaded == ["case0"] and sorted(errors) == ["case1", "case2"]
    assert "no label file" in errors["case1"] and "share the case name" in errors["case2"]
    assert fingerprint != build_dataset(data_cfg(make_folder(tmp_path / "fine", n=3), tmp_path)).fingerprint
    assert any("share the case name" in n for n in ds.notes)  # still there for a caller who asks
