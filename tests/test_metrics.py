import numpy as np
import pytest

from iunet_bench.core import metrics


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


# --- surface metrics (DeepMind surface-distance) -------------------------------------------------------

ANISO = (2.5, 0.8, 0.8)  # z-y-x mm


def ball(shape, spacing, radius_mm):
    """Digital ball of `radius_mm` centred in the volume, in physical (mm) coordinates."""
    centre = [(n - 1) / 2 * s for n, s in zip(shape, spacing)]
    grid = np.indices(shape).astype(float)
    r2 = sum((grid[i] * spacing[i] - centre[i]) ** 2 for i in range(len(shape)))
    return r2 <= radius_mm**2


def test_concentric_spheres_hd95_and_nsd_match_the_radius_gap():
    shape, r1, r2 = (24, 64, 64), 20.0, 10.0
    a, b = ball(shape, ANISO, r1), ball(shape, ANISO, r2)
    gap, diag = abs(r1 - r2), float(np.linalg.norm(ANISO))
    assert metrics.hd95(a, b, ANISO) == pytest.approx(gap, abs=diag)
    assert metrics.nsd(a, b, ANISO, gap + diag) >= 0.99
    assert metrics.nsd(a, b, ANISO, 0.5 * (gap - diag)) <= 0.01
    # spacing is per array axis (z-y-x): the reversed spacing describes other shapes, and a different HD95
    assert metrics.hd95(a, b, ANISO[::-1]) != pytest.approx(metrics.hd95(a, b, ANISO), abs=0.5)


def test_identical_masks_have_hd95_zero_and_nsd_one():
    a = ball((24, 64, 64), ANISO, 12.0)
    assert metrics.hd95(a, a, ANISO) == 0.0
    assert metrics.nsd(a, a, ANISO, 0.0) == pytest.approx(1.0)
    assert metrics.surface_metrics(a, a, ANISO, 1.0) == (0.0, pytest.approx(1.0))


@pytest.mark.parametrize("k", [1, 2, 3, 5])
def test_box_shifted_k_voxels_along_x_has_hd95_k_times_spacing_x(k):
    # the end faces perpendicular to x (~20 % of the surface) lie exactly k * 0.8 mm from the other box's
    a = cube((24, 40, 40), (6, 10, 10), (12, 20, 20))
    b = np.roll(a, k, axis=2)
    assert metrics.hd95(a, b, ANISO) == pytest.approx(k * ANISO[2], abs=1e-6)
    # no surface point is further than k * sx from the other surface, and the end faces are exactly that far
    assert metrics.nsd(a, b, ANISO, k * ANISO[2]) == pytest.approx(1.0)
    assert metrics.nsd(a, b, ANISO, k * ANISO[2] - 0.1) < 0.95
    # the same shift along z is k * 2.5 mm: the spacing is applied per axis in z-y-x order
    assert metrics.hd95(a, np.roll(a, k, axis=0), ANISO) == pytest.approx(k * ANISO[0], abs=1e-6)


def test_surface_metrics_equals_hd95_and_nsd_and_handles_empty_masks():
    a, b = ball((24, 64, 64), ANISO, 12.0), ball((24, 64, 64), ANISO, 9.0)
    assert metrics.surface_metrics(a, b, ANISO, 2.0) == (
        metrics.hd95(a, b, ANISO),
        metrics.nsd(a, b, ANISO, 2.0),
    )
    empty = np.zeros_like(a)
    assert metrics.surface_metrics(empty, empty, ANISO, 2.0) == (0.0, 1.0)
    assert metrics.surface_metrics(a, empty, ANISO, 2.0) == (float("inf"), 0.0)
    assert metrics.surface_metrics(empty, a, ANISO, 2.0) == (float("inf"), 0.0)
    # integer masks are accepted (the package itself insists on bool)
    assert metrics.hd95(a.astype(np.uint8), b.astype(np.uint8), ANISO) == metrics.hd95(a, b, ANISO)


def test_hd95_is_the_max_of_directed_95th_percentiles_not_the_pooled_one():
    """The prediction misses a small blob inside a large reference (a cavity in the middle of the box).

    Prediction -> reference: the cavity's wall (~7-8 % of the prediction's surface) is ~12-14 mm from the
    reference's surface, the rest at 0, so that directed 95th percentile is ~13 mm; reference -> prediction is
    0 everywhere. Pooled, the cavity is only ~4 % of all distances, so the pooled 95th percentile is 0.

    Independent value: medpy 0.5.2's `__surface_distances` (directed distances between voxel surfaces,
    border = mask minus its erosion, unweighted); medpy's public `hd95` is the pooled convention. medpy
    uses voxel surfaces and voxel counts, surface-distance uses surfels (on the voxel-corner grid) weighted
    by area, so the two agree to about one voxel, not exactly.
    """
    binary = pytest.importorskip("medpy.metric.binary")
    directed = getattr(binary, "__surface_distances")  # module-level double underscore: not name-mangled
    spacing = (2.0, 1.0, 1.0)
    ref = cube((24, 48, 48), (2, 4, 4), (22, 44, 44))
    pred = ref.copy()
    pred[10:15, 18:30, 18:30] = False
    max_directed = max(
        np.percentile(directed(pred, ref, spacing), 95), np.percentile(directed(ref, pred, spacing), 95)
    )
    pooled = binary.hd95(pred, ref, spacing)
    assert max_directed > 10.0 and pooled == 0.0  # the two conventions differ clearly here
    ours = metrics.hd95(ref, pred, spacing)
    assert ours == pytest.approx(max_directed, abs=float(np.linalg.norm(spacing)))
    assert metrics.hd95(pred, ref, spacing) == ours  # symmetric


def test_effort_auc_step_function_with_carry_forward_and_budget_cut():
    dsc, secs = [0.5, 0.8, 0.9], [0.0, 10.0, 30.0]
    # 0.5 on [0, 10), 0.8 on [10, 30), 0.9 carried forward on [30, 60): (5 + 16 + 27) / 60
    assert metrics.effort_auc(dsc, secs, 60.0) == pytest.approx(48.0 / 60.0)
    # budget 20 s cuts round 1 at 20 s and drops round 2: (5 + 8) / 20
    assert metrics.effort_auc(dsc, secs, 20.0) == pytest.approx(13.0 / 20.0)
    # budget inside round 0: only the baseline counts
    assert metrics.effort_auc(dsc, secs, 5.0) == pytest.approx(0.5)
    # a round that takes no time holds for no time: (5 + 0 + 9) / 20
    assert metrics.effort_auc([0.5, 0.7, 0.9], [0.0, 10.0, 10.0], 20.0) == pytest.approx(14.0 / 20.0)
    assert metrics.effort_auc([0.6], [0.0], 30.0) == pytest.approx(0.6)
    # faster gains score higher
    assert metrics.effort_auc(dsc, [0.0, 5.0, 10.0], 60.0) > metrics.effort_auc(dsc, secs, 60.0)


@pytest.mark.parametrize(
    ("dsc", "secs", "budget"),
    [
        ([0.5, 0.8], [0.0, 10.0], 0.0),
        ([0.5, 0.8], [0.0, 10.0], -5.0),
        ([0.5, 0.8], [0.0], 60.0),
        ([0.5, 0.8, 0.9], [0.0, 20.0, 10.0], 60.0),
    ],
)
def test_effort_auc_rejects_bad_input(dsc, secs, budget):
    with pytest.raises(ValueError):
        metrics.effort_auc(dsc, secs, budget)


def test_seconds_to_threshold():
    dsc, secs = [0.5, 0.8, 0.9], [0.0, 10.0, 30.0]
    assert metrics.seconds_to(dsc, secs, 0.8) == 10.0
    assert metrics.seconds_to(dsc, secs, 0.85) == 30.0
    assert metrics.seconds_to(dsc, secs, 0.5) == 0.0  # the baseline already reaches it
    assert metrics.seconds_to(dsc, secs, 0.95) == float("inf")  # never reached
    assert metrics.seconds_to([0.5, 0.9, 0.7], [0.0, 4.0, 9.0], 0.9) == 4.0  # first time, not last
    with pytest.raises(ValueError):
        metrics.seconds_to(dsc, [0.0, 10.0], 0.8)


def test_volume_ratio():
    a = cube((10, 10, 10), (0, 0, 0), (4, 10, 10))  # 400 voxels
    b = cube((10, 10, 10), (0, 0, 0), (2, 10, 10))  # 200 voxels
    assert metrics.volume_ratio(a, b) == pytest.approx(0.5)
    assert metrics.volume_ratio(b, a) == pytest.approx(2.0)
    assert metrics.volume_ratio(a, a) == 1.0
    assert metrics.volume_ratio(a, np.zeros_like(a)) == 0.0
    assert np.isnan(metrics.volume_ratio(np.zeros_like(a), a))
