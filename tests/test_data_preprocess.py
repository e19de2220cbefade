"""Canonical orientation and the preprocessing steps, on small synthetic arrays (fast, no files)."""

import itertools
import zlib
from dataclasses import replace

import numpy as np
import pytest
import SimpleITK as sitk
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage as ndi

from iunet_bench.data import to_original_image
from iunet_bench.data.case import Case, Geometry, parse_orientation
from iunet_bench.data.preprocess import (
    PreprocessConfig,
    crop_box,
    grow_box,
    intensity_range,
    preprocess,
    resample,
    robot_box,
    smooth_region,
    to_case_grid,
    window_to_unit,
)
from simulators.box import jittered_box


def _direction(perm, signs):
    d = np.zeros((3, 3))
    for axis, (p, s) in enumerate(zip(perm, signs)):
        d[p, axis] = s
    return d


AXIS_ALIGNED = [
    _direction(p, s) for p in itertools.permutations(range(3)) for s in itertools.product((1, -1), repeat=3)
]


@pytest.mark.parametrize("direction", AXIS_ALIGNED, ids=lambda d: "".join(f"{v:+.0f}" for v in d.ravel()))
def test_canonical_orientation_matches_simpleitk_dicomorient(direction):
    array = np.arange(3 * 4 * 5, dtype=np.float32).reshape(3, 4, 5)
    img = sitk.GetImageFromArray(array)
    img.SetDirection(direction.ravel().tolist())
    img.SetSpacing((1.0, 2.0, 3.0))
    for code in ("LPS", "RAS"):
        expected = sitk.DICOMOrient(img, code)
        g = Geometry.from_image(img.GetSize(), img.GetSpacing(), img.GetOrigin(), img.GetDirection(), code)
        canonical = g.to_canonical(array)
        np.testing.assert_array_equal(canonical, sitk.GetArrayFromImage(expected))
        assert g.canonical_spacing == pytest.approx(expected.GetSpacing()[::-1])
        np.testing.assert_array_equal(g.from_canonical(canonical), array)


def _rotation(axis: int, degrees: float) -> np.ndarray:
    c, s = np.cos(np.deg2rad(degrees)), np.sin(np.deg2rad(degrees))
    i, j = [a for a in range(3) if a != axis]
    r = np.eye(3)
    r[i, i], r[i, j], r[j, i], r[j, j] = c, -s, s, c
    return r


@pytest.mark.parametrize(("axis", "degrees"), [(2, 20), (0, -25), (1, 35)])
@pytest.mark.parametrize(
    "direction", AXIS_ALIGNED[::5], ids=lambda d: "".join(f"{v:+.0f}" for v in d.ravel())
)
def test_oblique_direction_maps_to_the_nearest_axes(axis, degrees, direction):
    """Rotated up to 35 degrees off the axes, the canonical array is the one DICOMOrient makes."""
    oblique = _rotation(axis, degrees) @ direction
    array = np.arange(3 * 4 * 5, dtype=np.float32).reshape(3, 4, 5)
    img = sitk.GetImageFromArray(array)
    img.SetDirection(oblique.ravel().tolist())
    for code in ("LPS", "RAS"):
        g = Geometry.from_image(img.GetSize(), img.GetSpacing(), img.GetOrigin(), img.GetDirection(), code)
        np.testing.assert_array_equal(
            g.to_canonical(array), sitk.GetArrayFromImage(sitk.DICOMOrient(img, code))
        )
        np.testing.assert_array_equal(g.from_canonical(g.to_canonical(array)), array)


def test_orientation_code_is_validated():
    assert parse_orientation("lps") == ((0, 1), (1, 1), (2, 1))
    for bad in ("LPX", "LLS", "LP", "RASR"):
        with pytest.raises(ValueError, match="orientation code"):
            parse_orientation(bad)


@settings(database=None)  # no example database in the working tree
@given(
    st.lists(st.floats(-3000, 3000), min_size=1, max_size=50),
    st.floats(-1000, 500),
    st.floats(1, 2000),
)
def test_window_maps_lo_hi_to_unit_range_and_clips(values, lo, width):
    hi = lo + width
    out = window_to_unit(np.array(values), lo, hi)
    assert out.min() >= -1.0 and out.max() <= 1.0
    assert window_to_unit(np.array([lo, hi]), lo, hi) == pytest.approx([-1.0, 1.0], abs=1e-3)  # float32
    assert np.all(np.diff(out[np.argsort(values)]) >= -1e-6)  # monotone


def test_paper_window_on_hu_values():
    out = window_to_unit(np.array([-1000.0, -160.0, 40.0, 240.0, 1000.0]), -160, 240)
    np.testing.assert_allclose(out, [-1, -1, 0, 1, 1], atol=1e-6)


def test_percentile_and_zscore_make_an_mr_like_image_independent_of_its_scale():
    rng = np.random.default_rng(0)
    mr = rng.gamma(4.0, 150.0, (20, 30, 30)).astype(np.float32)  # arbitrary units, no HU meaning
    for mode in ("percentile", "zscore"):
        cfg = PreprocessConfig(intensity=mode)
        lo, hi = intensity_range(mr, cfg)
        lo10, hi10 = intensity_range(mr * 10 + 7, cfg)
        assert (lo10, hi10) == pytest.approx((lo * 10 + 7, hi * 10 + 7), rel=1e-4)
        unit = window_to_unit(mr, lo, hi)
        assert -1 <= unit.min() < -0.5 and 0.5 < unit.max() <= 1
    p_lo, p_hi = intensity_range(mr, PreprocessConfig(intensity="percentile", percentiles=(1.0, 99.0)))
    assert np.mean(mr < p_lo) == pytest.approx(0.01, abs=0.002)
    assert np.mean(mr > p_hi) == pytest.approx(0.01, abs=0.002)


def test_crop_box_adds_five_percent_of_the_image_extent_and_clips():
    label = np.zeros((20, 100, 200), np.uint8)
    label[5:10, 40:60, 1:50] = 1
    # margins: round(0.05 * 20) = 1, round(0.05 * 100) = 5, round(0.05 * 200) = 10 (clipped at 0 in x)
    assert crop_box(label, 0.05) == (4, 35, 0, 11, 65, 60)
    with pytest.raises(ValueError, match="empty"):
        crop_box(np.zeros((4, 4, 4)), 0.05)
    with pytest.raises(ValueError, match="outside"):
        grow_box((0, 0, 50, 2, 2, 60), (4, 4, 20), 0.0)


@settings(max_examples=25, deadline=None, database=None)
@given(st.data())
def test_smoothing_the_box_equals_smoothing_the_whole_image(data):
    shape = (9, 14, 17)
    image = np.random.default_rng(data.draw(st.integers(0, 99))).normal(size=shape).astype(np.float32)
    lo = [data.draw(st.integers(0, n - 1)) for n in shape]
    hi = [data.draw(st.integers(a + 1, n)) for a, n in zip(lo, shape)]
    sigma = data.draw(st.sampled_from([0.0, 0.5, 0.75, 1.3]))
    box = (*lo, *hi)
    full = ndi.gaussian_filter(image, sigma) if sigma else image
    np.testing.assert_allclose(
        smooth_region(image, box, sigma), full[tuple(slice(a, b) for a, b in zip(lo, hi))], atol=1e-5
    )


def _ramp(n: int) -> np.ndarray:
    return np.arange(n, dtype=np.float32)[:, None, None] * np.ones((1, 2, 2), np.float32)


def test_resample_aligns_voxel_corners_and_keeps_constants():
    """Corner alignment: output voxel i of n (input m) samples input index (i + 0.5) * m / n - 0.5, edges
    held. Centre alignment (i * (m - 1) / (n - 1)) would give 0, 0.47, 0.95 and 0, 3.67, 7.33, 11 here."""
    a = np.full((7, 13, 5), 3.0, np.float32)
    assert np.allclose(resample(a, (4, 20, 9), order=1), 3.0)
    up = resample(_ramp(10), (20, 2, 2), order=1)[:, 0, 0]  # samples -0.25 (held at 0), 0.25, 0.75, ...
    np.testing.assert_allclose(up[:3], [0.0, 0.25, 0.75], atol=1e-6)
    np.testing.assert_allclose(up[-2:], [8.75, 9.0], atol=1e-6)
    down = resample(_ramp(12), (4, 2, 2), order=1)[:, 0, 0]  # the centres of blocks of 3: 1, 4, 7, 10
    np.testing.assert_allclose(down, [1.0, 4.0, 7.0, 10.0], atol=1e-6)
    np.testing.assert_array_equal(resample(_ramp(12), (4, 2, 2), order=0)[:, 0, 0], [1, 4, 7, 10])


def _blob_case(shape=(30, 80, 90), spacing=(2.5, 0.8, 0.8)):
    zz, yy, xx = np.indices(shape)
    label = ((zz - 14) / 8.0) ** 2 + ((yy - 40) / 20.0) ** 2 + ((xx - 50) / 12.0) ** 2 < 1
    rng = np.random.default_rng(1)
    image = np.where(label, 50.0, -100.0) + rng.normal(0, 10, shape)
    return Case(
        "blob", image.astype(np.float32), label.astype(np.uint8), spacing, Geometry.identity(shape, spacing)
    )


def _reference(case, cfg):
    """The paper's crop: the reference label's bounding box plus the margin."""
    return preprocess(case, cfg, crop_box(case.label, cfg.margin))


def test_preprocess_config_defaults_and_frozen_copies():
    cfg = PreprocessConfig()
    assert cfg.grid == (16, 48, 48)  # the YAML default (the paper's [24, 64, 64] is experiment=paper)
    assert (cfg.sigma, cfg.window, cfg.margin) == (0.75, (-160.0, 240.0), 0.05)  # the paper's values
    with pytest.raises(ValueError, match="frozen"):
        cfg.sigma = 0.5
    other = cfg.model_copy(update={"sigma": 0.5})
    assert other.sigma == 0.5 and cfg.sigma == 0.75
    for removed in ("crop", "box_jitter", "seed"):  # the crop box is an argument of preprocess now
        with pytest.raises(ValueError, match=removed):
            PreprocessConfig(**{removed: 0})


def test_preprocess_produces_the_model_grid_and_its_spacing():
    case = _blob_case()
    cfg = PreprocessConfig(grid=(16, 48, 48))
    v = _reference(case, cfg)
    assert v.image.shape == v.label.shape == (16, 48, 48)
    assert v.image.dtype == np.float32 and v.label.dtype == np.uint8
    assert v.image.min() >= -1.0 and v.image.max() <= 1.0
    assert v.crop == crop_box(case.label, 0.05)
    extent = np.array(v.crop[3:]) - np.array(v.crop[:3])
    np.testing.assert_allclose(v.spacing, np.array(case.spacing) * extent / np.array(cfg.grid))
    # the HU window [-160, 240]: organ 50 HU -> 0.05, fat -100 HU -> -0.7 (edges blur both a little)
    assert v.image[v.label > 0].mean() == pytest.approx(0.05, abs=0.1)
    assert v.image[v.label == 0].mean() == pytest.approx(-0.7, abs=0.1)
    assert tuple(v.meta["geometry"]["size"]) == (90, 80, 30)  # x-y-z of the original grid


@pytest.mark.parametrize("interpolation", ["linear", "nearest"])
def test_to_case_grid_inverts_crop_and_resampling(interpolation):
    case = _blob_case()
    v = _reference(case, PreprocessConfig(grid=(16, 48, 48), label_interpolation=interpolation))
    back = to_case_grid(v, v.label)
    assert back.shape == case.label.shape
    assert all(v.crop[i] > 0 and v.crop[i + 3] < case.label.shape[i] for i in range(3))  # a real crop
    outside = back.copy()
    outside[tuple(slice(v.crop[i], v.crop[i + 3]) for i in range(3))] = 0
    assert not outside.any()  # nothing outside the crop box, along every axis
    assert to_case_grid(v, np.ones_like(v.label)).sum() == np.prod(np.subtract(v.crop[3:], v.crop[:3]))
    dice = 2 * np.sum(back & case.label) / (back.sum() + case.label.sum())
    assert dice > 0.95
    probabilities = to_case_grid(v, v.label * 0.8 + 0.1)  # soft masks threshold at 0.5
    np.testing.assert_array_equal(probabilities, back)
    with pytest.raises(ValueError, match="model grid"):
        to_case_grid(v, np.zeros((3, 3, 3)))


def test_robot_box_crop_uses_the_box_robot_with_a_seeded_generator():
    case = _blob_case()
    cfg = PreprocessConfig(grid=(8, 24, 24))
    box = robot_box(case, 0.2, 3, cfg.margin)
    assert robot_box(case, 0.2, 3, cfg.margin) == box  # seeded: the same box every time
    # the box robot's box (simulators.box.jittered_box) drawn with the per-case generator of seed 3 (the
    # numbers of the former case_rng(seed, case_id, "robot_box")), grown by the margin
    rng = np.random.default_rng([3, zlib.crc32(b"blob"), zlib.crc32(b"robot_box")])
    drawn = jittered_box(case.label.astype(bool), rng, 0.2, tuple(case.spacing))
    assert box == grow_box(tuple(int(b) for b in drawn), case.label.shape, cfg.margin)
    a, b = preprocess(case, cfg, box, "robot_box"), preprocess(case, cfg, box, "robot_box")
    assert a.crop == b.crop == box and a.meta["box"] == "robot_box"
    np.testing.assert_array_equal(a.image, b.image)
    assert _reference(case, cfg).meta["box"] == "reference"
    others = {robot_box(case, 0.2, s, cfg.margin) for s in range(6)}
    assert len(others) > 1  # the jitter moves the box
    assert robot_box(case, 0.0, 3, 0.0) == crop_box(case.label, 0.0)  # no jitter: the reference's box


def test_a_case_without_geometry_maps_back_with_its_own_spacing():
    case = replace(_blob_case(), geometry=None)
    v = _reference(case, PreprocessConfig(grid=(8, 24, 24)))
    img = to_original_image(v, v.label)
    assert img.GetSpacing() == pytest.approx(case.spacing[::-1])  # x-y-z, not 1 mm
    assert img.GetSize() == case.label.shape[::-1]
    old = replace(v, meta={**v.meta, "geometry": None})  # a volume stored without one
    assert to_original_image(old, v.label).GetSpacing() == pytest.approx(case.spacing[::-1])
