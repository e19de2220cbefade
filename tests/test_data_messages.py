"""What a bad case's message says: the file it is about, the value as read, what was expected; and files
that ITK would read wrong without a word (a NIfTI voxel size of 0 or -1.5) or that would block a job (a
FIFO named like an image). Small volumes written into tmp_path; each test takes about a second."""

import numpy as np

from iunet_bench.data import build_dataset
from tests.test_data_dataset import SHAPE, data_cfg, make_folder, volume_pair, write


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
