"""The phantom generator: deterministic, pancreas-like, and its difficulty knobs do what they say.

Phantoms here use a coarse grid over the default field of view (80 x 150 x 150 mm) to stay fast.
"""

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage as ndi

from iunet_bench.data import build_dataset
from iunet_bench.data.phantom import PhantomConfig, make_phantoms, phantom_case, phantom_key

SMALL = PhantomConfig(shape=(20, 96, 96), spacing=(4.0, 1.5625, 1.5625), z_spacing=(2.0, 6.0))


def replace(cfg: PhantomConfig, **changes) -> PhantomConfig:
    """`cfg` with `changes`, validated (the config is a frozen pydantic schema)."""
    return PhantomConfig.model_validate({**cfg.model_dump(), **changes})


def test_same_seed_same_phantom_and_cases_do_not_depend_on_n_cases():
    a, b = phantom_case(SMALL, 7, 2), phantom_case(SMALL, 7, 2)
    np.testing.assert_array_equal(a.image, b.image)
    np.testing.assert_array_equal(a.label, b.label)
    third = make_phantoms(replace(SMALL, n_cases=3), 7)[2]
    np.testing.assert_array_equal(third.image, a.image)
    assert not np.array_equal(phantom_case(SMALL, 7, 1).label, a.label)
    assert not np.array_equal(phantom_case(SMALL, 8, 2).label, a.label)


def test_slice_spacing_varies_per_case_and_keeps_the_field_of_view():
    cases = [phantom_case(SMALL, 0, i) for i in range(6)]
    dz = [c.spacing[0] for c in cases]
    assert all(2.0 <= d <= 6.0 for d in dz) and np.ptp(dz) > 0.5
    for c in cases:
        assert c.spacing[1:] == pytest.approx((1.5625, 1.5625))
        assert c.image.shape[0] * c.spacing[0] == pytest.approx(80.0, abs=c.spacing[0])  # same z extent in mm
        assert c.geometry.canonical_shape == c.image.shape


def test_the_organ_is_soft_tissue_with_a_head_body_and_tail():
    cfg = replace(SMALL, hu_jitter=0.0, z_spacing=None)
    for i in range(3):
        c = phantom_case(cfg, 1, i)
        label = c.label > 0
        core = ndi.binary_erosion(label, iterations=1)
        assert 30.0 <= np.median(c.image[core]) <= 60.0  # the 30-60 HU
        sizes = np.bincount(ndi.label(label)[0].ravel())[1:]
        assert sizes.max() > 0.9 * label.sum()  # one organ (lobulation may chip off a few voxels)
        z, _, x = np.nonzero(label)
        right, left = x < np.quantile(x, 0.2), x > np.quantile(x, 0.8)
        assert z[left].mean() > z[right].mean()  # the tail (patient left) rises above the head
        # the head is thicker than the tail: a larger inscribed radius (mm) in the right-most fifth
        depth = ndi.distance_transform_edt(label, sampling=c.spacing)
        column = np.indices(label.shape)[2]
        head = label & (column < np.quantile(x, 0.2))
        tail = label & (column > np.quantile(x, 0.8))
        assert depth[head].max() > depth[tail].max()


def _shell_soft_tissue(cfg, n=3):
    """Fraction of voxels 1-3 voxels outside the organ that are soft tissue (HU > -30), noise-free."""
    out = []
    for i in range(n):
        c = phantom_case(replace(cfg, noise_hu=0.0), 0, i)
        label = c.label > 0
        shell = ndi.binary_dilation(label, iterations=3) & ~ndi.binary_dilation(label, iterations=1)
        out.append(np.mean(c.image[shell] > -30.0))
    return float(np.mean(out))


def test_less_fat_puts_more_soft_tissue_against_the_organ():
    thin, default, thick = (_shell_soft_tissue(replace(SMALL, fat_thickness=f)) for f in (0.5, 3.0, 8.0))
    assert thin > default > thick
    assert _shell_soft_tissue(replace(SMALL, bowel_fill=0.6)) > default  # packed bowel, less fat


def test_noise_knob_sets_the_noise_standard_deviation():
    quiet, noisy = (
        phantom_case(replace(SMALL, noise_hu=0.0), 3, 0),
        phantom_case(replace(SMALL, noise_hu=25.0), 3, 0),
    )
    assert np.std(noisy.image - quiet.image) == pytest.approx(25.0, rel=0.02)


def test_contrast_knob_moves_the_bowel_not_the_organ():
    near = phantom_case(replace(SMALL, hu_jitter=0.0, noise_hu=0.0, bowel_hu=45.0), 0, 0)
    far = phantom_case(replace(SMALL, hu_jitter=0.0, noise_hu=0.0, bowel_hu=-10.0), 0, 0)
    core = ndi.binary_erosion(near.label > 0, iterations=1)
    assert np.median(near.image[core]) == pytest.approx(np.median(far.image[core]), abs=2.0)
    assert far.image.mean() < near.image.mean() - 3.0  # everything of bowel HU got darker


def test_phantom_data_set_preprocesses_to_the_model_grid(tmp_path):
    cfg = {
        "source": "phantom",
        "seed": 0,
        "cache_dir": str(tmp_path),
        "phantom": {"n_cases": 2, "shape": [20, 96, 96], "spacing": [4.0, 1.5625, 1.5625]},
        "split": {"folds": 2, "fold": 0},
        "preprocess": {"sigma": 0.75, "window": [-160, 240], "margin": 0.05, "grid": [16, 48, 48]},
    }
    ds = build_dataset(cfg)
    volumes, failures = ds.volumes(ds.case_ids)
    assert failures == []
    for v in volumes:
        assert v.image.shape == (16, 48, 48)
        assert 0.03 < v.label.mean() < 0.5  # cropped to the curved organ, plus the margin
        out = ds.write_mask(v, v.label, tmp_path / f"{v.case_id}.nii.gz")
        case = ds.load_case(v.case_id)
        written = sitk.ReadImage(str(out))
        assert written.GetSize() == case.label.shape[::-1]  # the phantom's whole grid, x-y-z
        assert written.GetSpacing() == pytest.approx(case.spacing[::-1])  # its own (per-case z) spacing
        assert written.GetOrigin() == (0.0, 0.0, 0.0)
        assert written.GetDirection() == (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)
        mask = sitk.GetArrayFromImage(written)
        assert set(np.unique(mask)) == {0, 1}
        assert 2 * np.sum(mask & case.label) / (mask.sum() + case.label.sum()) > 0.85  # the organ, back


def _mean_pairwise_dice_on_the_model_grid(cfg, n=4):
    from iunet_bench.data.preprocess import PreprocessConfig, crop_box, preprocess

    pre = PreprocessConfig(grid=(8, 24, 24))
    cases = [phantom_case(cfg, 0, i) for i in range(n)]
    labels = [preprocess(c, pre, crop_box(c.label, pre.margin)).label > 0 for c in cases]
    pairs = [(a, b) for i, a in enumerate(labels) for b in labels[i + 1 :]]
    return np.mean([2 * np.sum(a & b) / (a.sum() + b.sum()) for a, b in pairs])


def test_shape_variability_makes_cases_less_alike_after_cropping():
    """The crop normalises position and size; what is left to generalise over is the organ's course."""
    alike = _mean_pairwise_dice_on_the_model_grid(replace(SMALL, shape_variability=0.0))
    varied = _mean_pairwise_dice_on_the_model_grid(replace(SMALL, shape_variability=1.5))
    assert varied < alike - 0.05


def test_phantom_key_holds_what_makes_the_phantom_and_the_generator_code(monkeypatch):
    import iunet_bench.core.files as cache

    key = phantom_key(SMALL, 7, 2)
    assert phantom_key(SMALL, 7, 2) == key
    assert phantom_key(replace(SMALL, n_cases=3), 7, 2) == key  # a case does not depend on n_cases
    for other in (
        phantom_key(replace(SMALL, noise_hu=5.0), 7, 2),
        phantom_key(SMALL, 8, 2),
        phantom_key(SMALL, 7, 1),
    ):
        assert other != key
    real = cache._source
    monkeypatch.setattr(
        cache, "_source", lambda m: real(m) + b"\n# edited" if m == "iunet_bench.data.phantom" else real(m)
    )
    cache.code_digest.cache_clear()
    try:
        assert phantom_key(SMALL, 7, 2) != key  # an edit of the generator is another phantom
    finally:
        monkeypatch.undo()
        cache.code_digest.cache_clear()
    assert phantom_key(SMALL, 7, 2) == key


def test_bad_phantom_settings_are_rejected():
    with pytest.raises(ValueError, match="shape"):
        PhantomConfig(shape=(4, 96, 96))
    with pytest.raises(ValueError, match="z_spacing"):
        PhantomConfig(z_spacing=(3.0, 1.0))
    with pytest.raises(ValueError, match="frozen"):
        SMALL.noise_hu = 1.0
