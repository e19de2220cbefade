import numpy as np
import pytest

from iunet_bench import metrics


def cube(shape, lo, hi):
    m = np.zeros(shape, bool)
    m[tuple(slice(a, b) for a, b in zip(lo, hi))] = True
    return m


def test_dsc_known_overlap():
    a = cube((10, 10, 10), (0, 0, 0), (4, 10, 10))  # 400 voxels
    b = cube((10, 10, 10), (2, 0, 0), (6, 10, 10))  # 400 voxels, 200 shared
    assert metrics.dsc(a, b) == pytest.approx(0.5)
    assert metrics.dsc(a, a) == 1.0
    assert metrics.dsc(a, ~a) == 0.0
    assert metrics.dsc(np.zeros((3, 3)), np.zeros((3, 3))) == 1.0


def test_hd95_is_zero_for_identical_and_bounded_by_the_shift_in_mm():
    a = cube((12, 20, 20), (3, 5, 5), (9, 15, 15))
    assert metrics.hd95(a, a, (2.0, 1.0, 1.0)) == 0.0
    b = np.roll(a, 3, axis=2)  # shift 3 voxels along x at 0.5 mm
    d = metrics.hd95(a, b, (2.0, 1.0, 0.5))
    assert 0.0 < d <= 1.5 + 1e-9
    assert metrics.hd95(a, np.zeros_like(a), (1, 1, 1)) == float("inf")


def test_hd95_is_the_95th_percentile_not_the_maximum():
    # a 1-voxel-thick slab against a copy with one far outlier voxel: the maximum sees the outlier, HD95 not
    a = np.zeros((1, 1, 400), bool)
    a[0, 0, :200] = True
    b = a.copy()
    b[0, 0, 399] = True  # 199 voxels away from a's surface, at 1 mm
    spacing = (1.0, 1.0, 1.0)
    # surfaces (1-voxel structures are all surface): 200 voxels of a at distance 0, and b's 201 voxels, 200
    # at 0 and one at 199: the 95th percentile of 401 distances is 0
    assert metrics.hd95(a, b, spacing) == 0.0
    b[0, 0, 370:400] = True  # now 30 far voxels of 430 distances: above 5 %, so HD95 reaches into them
    assert metrics.hd95(a, b, spacing) > 100.0


def test_noi_counts_rounds_until_threshold_and_caps_at_last_round():
    curve = [0.7, 0.8, 0.86, 0.91, 0.92]
    assert metrics.noi(curve, 0.85) == 2
    assert metrics.noi(curve, 0.90) == 3
    assert metrics.noi(curve, 0.95) == len(curve) - 1
    assert metrics.noi([0.9], 0.85) == 0


def test_auc_of_constant_curve_is_the_constant_and_rewards_early_gains():
    assert metrics.auc([0.6] * 5) == pytest.approx(0.6)
    early = [0.5, 0.9, 0.9, 0.9]
    late = [0.5, 0.5, 0.5, 0.9]
    assert metrics.auc(early) > metrics.auc(late)
