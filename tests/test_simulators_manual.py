"""The manual observer robot (`simulators/manual.py`): invariants on synthetic organs."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from simulators.manual import OBSERVERS, ManualResult, ManualStyle, contour_case, signed_distance

ROOT = Path(__file__).resolve().parents[1]
SPACING = (2.5, 0.8, 0.8)
IDEAL = ManualStyle(noise_mm=0.0, bias_mm=0.0, z_end_rate=0.0, min_area_mm2=0.0)


def ellipsoid(shape=(24, 96, 96), spacing=SPACING, semi_mm=(25.0, 14.0, 30.0), centre=None) -> np.ndarray:
    grids = np.indices(shape, dtype=float)
    centre = [(s - 1) / 2 for s in shape] if centre is None else centre
    r2 = sum(((g - c) * s / a) ** 2 for g, c, s, a in zip(grids, centre, spacing, semi_mm))
    return (r2 <= 1.0).astype(np.uint8)


def dsc(a, b) -> float:
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    total = a.sum() + b.sum()
    return 1.0 if total == 0 else float(2 * (a & b).sum() / total)


def run(reference, seed=0, spacing=SPACING, **changes) -> ManualResult:
    style = ManualStyle(**{**IDEAL.model_dump(), **changes})
    return contour_case(reference, spacing, np.random.default_rng(seed), style)


def organ_slices(mask) -> np.ndarray:
    return np.flatnonzero(np.asarray(mask).any(axis=(1, 2)))


# ------------------------------------------------------------------------------------------ identity


def test_the_ideal_observer_reproduces_the_reference_and_draws_no_random_number():
    ref = ellipsoid()
    ref[3, 10:30, 10:30] = 1  # a second cross-section on a slice of its own
    ref[3, 15:25, 15:25] = 0  # ... ring-shaped: a hole is an inner contour
    ref[12, 5:8, 80:83] = 1  # a small extra component beside the organ
    ref[12, 8, 83] = 1  # ... touching it diagonally (8-connected)
    ref[12, 0:6, 0:6] = 1  # a component touching the slice's edge
    rng = np.random.default_rng(5)
    before = rng.bit_generator.state
    out = contour_case(ref, SPACING, rng, IDEAL)
    assert out.mask.dtype == np.uint8 and out.mask.shape == ref.shape
    np.testing.assert_array_equal(out.mask, ref)
    assert rng.bit_generator.state == before
    assert out.slices == len(organ_slices(ref)) and out.contours > out.slices
    full = np.ones((2, 5, 5), np.uint8)  # a component that fills its slices
    np.testing.assert_array_equal(run(full).mask, full)


def test_cross_sections_under_the_minimum_area_are_not_drawn():
    ref = np.zeros((3, 40, 40), np.uint8)
    ref[1, 5:9, 5:9] = 1  # 16 px * 0.64 mm2 = 10.24 mm2
    ref[1, 20:23, 20:23] = 1  # 9 px = 5.76 mm2
    out = run(ref, min_area_mm2=8.0)
    np.testing.assert_array_equal(out.mask[1, 5:9, 5:9], 1)
    assert out.mask.sum() == 16 and out.contours == 1
    assert run(ref, min_area_mm2=11.0).mask.sum() == 0


# ------------------------------------------------------------------------------------------ randomness


def test_the_seed_alone_decides_the_mask():
    ref = ellipsoid()
    style = OBSERVERS["average"]
    a, b, c = (contour_case(ref, SPACING, np.random.default_rng(s), style) for s in (7, 7, 8))
    np.testing.assert_array_equal(a.mask, b.mask)
    assert a.seconds == b.seconds and a.contour_mm == b.contour_mm
    assert not np.array_equal(a.mask, c.mask)


def test_dsc_falls_as_the_boundary_noise_rises():
    ref = ellipsoid()
    means = [
        np.mean([dsc(run(ref, seed, noise_mm=a).mask, ref) for seed in range(3)])
        for a in (0.0, 0.5, 1.0, 2.0, 3.0)
    ]
    assert means[0] == 1.0
    assert all(x > y for x, y in zip(means, means[1:])), means


def test_the_displacement_has_the_asked_standard_deviation():
    """The field moves a straight edge by noise_mm (standard deviation) on average over the edge."""
    ref = np.zeros((1, 400, 400), np.uint8)
    ref[0, 100:300, 100:300] = 1
    spacing = (1.0, 0.5, 0.5)
    shifts = []
    for seed in range(4):
        mask = run(ref, seed, spacing=spacing, noise_mm=2.0, smoothness_mm=5.0).mask[0]
        # the top edge: rows drawn above (outside) or missing below (inside), per column of its middle
        column = mask[:, 150:250].astype(int)
        shifts.append((column[:200].sum(0) - 100) * 0.5)  # mm outwards
    shifts = np.concatenate(shifts)
    assert abs(shifts.mean()) < 0.6
    assert 1.4 < shifts.std() < 2.6


# ------------------------------------------------------------------------------------------ bias


def test_positive_bias_grows_and_negative_bias_shrinks_the_volume_nested():
    ref = ellipsoid()
    masks = {b: run(ref, bias_mm=b).mask.astype(bool) for b in (-1.5, -0.8, 0.0, 0.8, 1.5)}
    volumes = [m.sum() for m in masks.values()]
    assert all(x < y for x, y in zip(volumes, volumes[1:])), volumes
    ordered = list(masks.values())
    assert all((small & ~big).sum() == 0 for small, big in zip(ordered, ordered[1:]))  # zero noise: nested
    noisy = {
        b: np.mean([run(ref, s, noise_mm=1.0, bias_mm=b).mask.sum() for s in range(3)]) for b in (-1.0, 1.0)
    }
    assert noisy[-1.0] < ref.sum() < noisy[1.0]


def test_bias_is_in_millimetres_on_anisotropic_spacing():
    ref = np.zeros((1, 60, 40), np.uint8)
    ref[0, 20:40, 10:30] = 1
    spacing = (1.0, 0.5, 2.0)  # rows 0.5 mm, columns 2 mm

    def extent(mask):
        rows = np.flatnonzero(mask[0, :, 20])
        cols = np.flatnonzero(mask[0, 30, :])
        return rows[0], rows[-1], cols[0], cols[-1]

    assert extent(run(ref, spacing=spacing).mask) == (20, 39, 10, 29)
    assert extent(run(ref, spacing=spacing, bias_mm=2.0).mask) == (16, 43, 9, 30)  # 4 rows, 1 column
    assert extent(run(ref, spacing=spacing, bias_mm=-1.0).mask) == (22, 37, 11, 28)  # 2 rows, 1 column


def test_signed_distance_sits_on_the_pixel_edges():
    region = np.zeros((9, 9), bool)
    region[3:6, 3:6] = True
    phi = signed_distance(region, (0.5, 2.0))
    assert phi[4, 4] == pytest.approx(-0.75)  # 1.5 pixels of 0.5 mm to the nearest edge (a row edge)
    assert phi[2, 4] == pytest.approx(0.25) and phi[1, 4] == pytest.approx(0.75)
    assert phi[4, 2] == pytest.approx(1.0) and phi[4, 1] == pytest.approx(3.0)
    assert (phi[region] < 0).all() and (phi[~region] > 0).all()


# ------------------------------------------------------------------------------------------ z extent


@pytest.mark.parametrize("share", [0.0, 0.5, 1.0])
def test_z_extent_errors_change_only_the_end_slices(share):
    ref = ellipsoid()
    z = organ_slices(ref)
    lo, hi = int(z[0]), int(z[-1])
    changed_any = missed_any = added_any = False
    for seed in range(12):
        mask = run(ref, seed, z_end_rate=0.6, z_miss_share=share).mask
        differs = np.flatnonzero((mask != ref).any(axis=(1, 2)))
        # the changed slices are runs that start at an end: missed ones inside, added ones beyond it
        d = set(differs.tolist())
        for part, start, step in (
            ({z for z in d if z < lo}, lo - 1, -1),
            ({z for z in d if lo <= z <= (lo + hi) // 2}, lo, 1),
            ({z for z in d if (lo + hi) // 2 < z <= hi}, hi, -1),
            ({z for z in d if z > hi}, hi + 1, 1),
        ):
            assert part == {start + step * i for i in range(len(part))}, (seed, sorted(d))
        for z_diff in differs:  # a changed slice is missed in full or added as a copy of the end slice
            if lo <= z_diff <= hi:
                assert mask[z_diff].sum() == 0
            else:
                end = lo if z_diff < lo else hi
                np.testing.assert_array_equal(mask[z_diff], ref[end])
        changed_any |= len(differs) > 0
        missed_any |= bool((ref & ~mask.astype(bool)).any())
        added_any |= bool((mask.astype(bool) & ~ref.astype(bool)).any())
    assert changed_any
    assert missed_any == (share > 0) and added_any == (share < 1)


def test_misses_leave_at_least_one_slice():
    ref = np.zeros((6, 20, 20), np.uint8)
    ref[2:4, 5:15, 5:15] = 1
    for seed in range(20):
        out = run(ref, seed, z_end_rate=0.9, z_miss_share=1.0)
        assert out.slices >= 1 and out.mask.sum() >= 100


# ------------------------------------------------------------------------------------------ time


def test_time_is_the_sum_of_its_terms_and_zero_for_an_empty_reference():
    ref = ellipsoid()
    style = OBSERVERS["average"]
    out = contour_case(ref, SPACING, np.random.default_rng(1), style)
    assert out.seconds > 0 and out.slices > 0 and out.contours >= out.slices and out.contour_mm > 0
    expected = (
        style.seconds_per_slice * out.slices
        + style.seconds_per_component * out.contours
        + style.seconds_per_cm * out.contour_mm / 10
    )
    assert out.seconds == pytest.approx(expected)
    assert out.slices == len(organ_slices(out.mask))
    for empty in (np.zeros((5, 30, 30), np.uint8), _speck()):
        none = contour_case(empty, SPACING, np.random.default_rng(0), style)
        assert none.mask.sum() == 0 and none.mask.shape == empty.shape
        assert (none.seconds, none.slices, none.contours, none.contour_mm) == (0.0, 0, 0, 0.0)


def _speck():
    ref = np.zeros((5, 30, 30), np.uint8)
    ref[2, 10:12, 10:12] = 1  # 2.56 mm2, under the default minimum area
    return ref


def test_contour_length_is_measured_in_millimetres():
    ref = ellipsoid(shape=(1, 120, 120), spacing=(1.0, 0.5, 0.5), semi_mm=(10.0, 20.0, 20.0))
    out = run(ref, spacing=(1.0, 0.5, 0.5))
    assert out.contour_mm == pytest.approx(2 * math.pi * 20.0, rel=0.05)
    aniso = ellipsoid(shape=(1, 120, 60), spacing=(1.0, 0.5, 1.0), semi_mm=(10.0, 20.0, 20.0))
    assert run(aniso, spacing=(1.0, 0.5, 1.0)).contour_mm == pytest.approx(2 * math.pi * 20.0, rel=0.05)


def test_time_grows_with_the_organ_slices_and_the_contour_length():
    style = OBSERVERS["average"]

    def mean_seconds(semi):
        ref = ellipsoid(semi_mm=semi)
        return np.mean(
            [contour_case(ref, SPACING, np.random.default_rng(s), style).seconds for s in range(3)]
        )

    short, tall = mean_seconds((12.0, 14.0, 30.0)), mean_seconds((25.0, 14.0, 30.0))
    thin, wide = mean_seconds((25.0, 8.0, 15.0)), mean_seconds((25.0, 14.0, 30.0))
    assert short < tall and thin < wide
    a, b = run(ellipsoid(semi_mm=(12.0, 14.0, 30.0))), run(ellipsoid(semi_mm=(25.0, 14.0, 30.0)))
    assert a.slices < b.slices and a.seconds < b.seconds
    c, d = run(ellipsoid(semi_mm=(25.0, 8.0, 15.0))), run(ellipsoid(semi_mm=(25.0, 14.0, 30.0)))
    assert c.slices == d.slices and c.contour_mm < d.contour_mm and c.seconds < d.seconds


# ------------------------------------------------------------------------------------------ observers


def test_three_observers_differ_in_bias_sign_noise_and_time():
    assert list(OBSERVERS) == ["careful", "average", "hurried"]
    careful, average, hurried = OBSERVERS.values()
    assert average == ManualStyle()
    assert careful.bias_mm > 0 > hurried.bias_mm
    assert careful.noise_mm < average.noise_mm < hurried.noise_mm
    ref = ellipsoid()
    seconds = [contour_case(ref, SPACING, np.random.default_rng(0), s).seconds for s in OBSERVERS.values()]
    assert seconds[0] > seconds[1] > seconds[2] > 0
    with pytest.raises(TypeError):
        OBSERVERS["new"] = ManualStyle()  # type: ignore[index]


def test_observer_agreement_on_a_pancreas_sized_phantom_is_plausible():
    ref = ellipsoid()
    style = ManualStyle()
    pairs = [
        dsc(
            contour_case(ref, SPACING, np.random.default_rng(s), style).mask,
            contour_case(ref, SPACING, np.random.default_rng(100 + s), style).mask,
        )
        for s in range(4)
    ]
    results = {
        name: [contour_case(ref, SPACING, np.random.default_rng(s), st) for s in range(4)]
        for name, st in OBSERVERS.items()
    }
    for name, out in results.items():
        print(
            f"{name}: DSC vs reference {np.mean([dsc(o.mask, ref) for o in out]):.3f}, "
            f"{np.mean([o.seconds for o in out]):.0f} s"
        )
    names = list(results)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            pair = np.mean([dsc(x.mask, y.mask) for x, y in zip(results[a], results[b])])
            print(f"{a} vs {b}: DSC {pair:.3f}")
            assert 0.6 < pair < 0.99
    print(f"default vs default observer DSC: {np.mean(pairs):.3f}")
    assert 0.6 < np.mean(pairs) < 0.99


# ------------------------------------------------------------------------------------------ schema, inputs


def test_style_rejects_unknown_keys_and_out_of_range_values_and_documents_every_key():
    for field in ManualStyle.model_fields.values():
        assert field.description
    with pytest.raises(ValidationError):
        ManualStyle(noise=1.0)  # type: ignore[call-arg]
    for bad in ({"noise_mm": -1.0}, {"z_end_rate": 1.0}, {"z_miss_share": 1.5}, {"smoothness_mm": 0.0}):
        with pytest.raises(ValidationError):
            ManualStyle(**bad)
    with pytest.raises(ValidationError):
        ManualStyle(bias_mm="1")  # type: ignore[arg-type]


def test_inputs_are_checked():
    with pytest.raises(ValueError, match="3D"):
        contour_case(np.zeros((5, 5), np.uint8), SPACING, np.random.default_rng(0))
    with pytest.raises(ValueError, match="spacing"):
        contour_case(np.zeros((2, 5, 5), np.uint8), (1.0, 0.0, 1.0), np.random.default_rng(0))


def test_the_module_never_imports_tensorflow():
    code = "import sys, simulators.manual; sys.exit('tensorflow' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode == 0
