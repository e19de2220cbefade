"""Robot annotators (`simulators/`): invariants on phantoms and on real labels, noise rates, effort, pictures."""

from __future__ import annotations

import math
from functools import cache
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import ndimage as ndi

from iunet_bench.data.phantom import PhantomConfig, make_phantoms
from iunet_bench.data.preprocess import PreprocessConfig, crop_box, preprocess
from simulators import Interaction, make_annotator
from simulators.box import bounding_box, jittered_box
from simulators.errors import analyse_errors
from simulators.interaction import ADD, REMOVE
from simulators.perturb import perturb
from simulators.policy import Policy, order_regions, plan_round
from simulators.render import ADD_RGBA, REMOVE_RGBA, pick_slice, save_round_png
from simulators.strokes import SHAPES, core, principal_axis, shape_path, truncate

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / ".." / "shared" / "data"
PRESETS = ROOT / "conf" / "simulator"
FULL = np.ones((3, 3, 3), bool)
HYPO = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def preset(name: str) -> dict:
    return yaml.safe_load((PRESETS / f"{name}.yaml").read_text(encoding="utf-8"))


def with_changes(name: str, **sections) -> dict:
    cfg = preset(name)
    for section, values in sections.items():
        cfg[section] = {**cfg[section], **values}
    return cfg


@cache
def phantom_volumes():
    cases = make_phantoms(PhantomConfig(n_cases=2, shape=(24, 64, 64)), seed=5)
    cfg = PreprocessConfig(grid=(16, 48, 48))
    return tuple(preprocess(c, cfg, crop_box(c.label, cfg.margin)) for c in cases)


predictions = st.tuples(
    st.integers(0, 1),  # which phantom
    st.integers(0, 2),  # erosion
    st.integers(0, 2),  # dilation
    st.tuples(st.integers(-2, 2), st.integers(-3, 3), st.integers(-3, 3)),
    st.none() | st.integers(0, 10_000),
)


def make_case(params):
    index, erode, dilate, shift, blob = params
    vol = phantom_volumes()[index]
    ref = vol.label.astype(bool)
    return vol, ref, perturb(ref, erode, dilate, shift, blob)


def connected_2d(stroke) -> bool:
    """The stroke's voxels lie on its slice and form one 8-connected piece there."""
    if not np.all(stroke.voxels[:, stroke.plane] == stroke.index):
        return False
    pix = np.delete(stroke.voxels, stroke.plane, axis=1)
    mask = np.zeros(tuple(pix.max(0) + 1), bool)
    mask[pix[:, 0], pix[:, 1]] = True
    return ndi.label(mask, structure=np.ones((3, 3), bool))[1] == 1


def check_ideal(it: Interaction, ref: np.ndarray, pred: np.ndarray) -> None:
    fn, fp = ref & ~pred, pred & ~ref
    assert not np.any(it.add & ~fn), "an add voxel outside reference AND NOT prediction"
    assert not np.any(it.remove & ~fp), "a remove voxel outside prediction AND NOT reference"
    for s in it.strokes:
        error = fn if s.target == ADD else fp
        assert s.label == s.target and not s.overshoot and s.pieces == 1
        assert error[tuple(s.voxels.T)].all() and error[tuple(s.path.T)].all()
        assert connected_2d(s), f"{s.shape} stroke not connected on its slice"
    e = it.effort
    assert e.voxels == it.add.sum() + it.remove.sum() == e.add_voxels + e.remove_voxels
    assert e.strokes + e.clicks == len(it.strokes)
    assert e.slices == len({(s.plane, s.index) for s in it.strokes})


def test_ideal_preset_scribbles_the_largest_error_of_each_polarity_on_its_worst_slice():
    vol, ref, pred = make_case((0, 1, 0, (0, 2, 2), 7))
    it = make_annotator(preset("scribble_ideal")).annotate(vol.image, ref, pred, np.random.default_rng(0))
    check_ideal(it, ref, pred)
    analysis = analyse_errors(ref, pred, min_voxels=10)
    assert {s.target for s in it.strokes} == {p for p in (ADD, REMOVE) if analysis.regions[p]}
    for s in it.strokes:
        labels, _ = ndi.label(analysis.error(s.target), structure=FULL)
        component = labels == labels[tuple(s.path[0])]
        sizes = np.bincount(labels.ravel())[1:]
        assert component.sum() == sizes.max() == s.region_voxels
        areas = component.sum(axis=(1, 2))
        assert areas[s.index] == areas.max()


@HYPO
@given(
    predictions,
    st.sampled_from(SHAPES),
    st.sampled_from([["axial"], ["coronal"], ["sagittal"], ["axial", "coronal", "sagittal"]]),
    st.sampled_from([1, 3]),
    st.sampled_from(["largest", "worst_slice", "random"]),
    st.integers(0, 2**32 - 1),
)
def test_ideal_robot_scribbles_only_where_the_prediction_is_wrong(
    params, shape, planes, thickness, region, seed
):
    vol, ref, pred = make_case(params)
    cfg = with_changes(
        "scribble_ideal",
        strokes={"shape": [shape], "planes": planes, "thickness": thickness, "max_length_mm": 40.0},
        policy={"region": region, "scribbles": 3, "slice": "random"},
    )
    it = make_annotator(cfg).annotate(vol.image, ref, pred, np.random.default_rng(seed), spacing=vol.spacing)
    check_ideal(it, ref, pred)
    assert all(s.plane in [{"axial": 0, "coronal": 1, "sagittal": 2}[p] for p in planes] for s in it.strokes)
    assert it.is_empty == analyse_errors(ref, pred, min_voxels=10).is_clean


@pytest.mark.parametrize(
    "name", ["scribble_ideal", "scribble_careful", "scribble_sloppy", "click_ritm", "click_center"]
)
def test_no_interaction_when_prediction_equals_reference(name):
    vol = phantom_volumes()[0]
    it = make_annotator(preset(name)).annotate(
        vol.image, vol.label, vol.label.copy(), np.random.default_rng(1)
    )
    assert it.is_empty and not it.strokes
    assert it.effort.seconds == 0 and it.effort.voxels == 0


def test_errors_below_the_minimum_region_size_are_not_worth_a_scribble():
    ref = np.zeros((8, 20, 20), bool)
    ref[2:6, 5:15, 5:15] = True
    pred = ref.copy()
    pred[3, 8:11, 8:11] = False  # 9 missed voxels
    robot = make_annotator(with_changes("scribble_ideal", policy={"min_region_voxels": 10}))
    assert robot.annotate(None, ref, pred, np.random.default_rng(0)).is_empty
    pred[4, 8:11, 8:11] = False  # 18, in one component
    it = robot.annotate(None, ref, pred, np.random.default_rng(0))
    assert not it.is_empty and it.remove.sum() == 0 and it.add.any()


def eligible_components(error: np.ndarray, min_voxels: int) -> list[np.ndarray]:
    """The 26-connected components of `error` with at least `min_voxels` voxels, as full-size masks."""
    labels, n = ndi.label(error, structure=FULL)
    return [labels == i for i in range(1, n + 1) if (labels == i).sum() >= min_voxels]


def slices_cutting(component: np.ndarray, axes) -> int:
    return sum(int(component.any(axis=tuple(b for b in range(3) if b != a)).sum()) for a in axes)


PLANE_SETS = [["axial"], ["coronal"], ["axial", "coronal", "sagittal"]]
AXES = {"axial": 0, "coronal": 1, "sagittal": 2}


@HYPO
@given(
    predictions,
    st.integers(1, 6),
    st.sampled_from(["largest", "worst_slice", "random"]),
    st.sampled_from(["worst", "random"]),
    st.sampled_from(["both", "larger"]),
    st.sampled_from(PLANE_SETS),
    st.integers(0, 2**32 - 1),
)
def test_fixed_count_gives_each_polarity_min_of_k_and_the_slices_that_cut_its_regions(
    params, k, region, slice_rule, polarity, planes, seed
):
    """count=fixed: a region takes at most one stroke per slice that cuts it, and a region's shortfall passes
    to the others, so a polarity gets exactly min(k, total such slices) strokes, on distinct slices of each
    region; the ideal robot (no length limit) draws every planned stroke."""
    vol, ref, pred = make_case(params)
    policy = {"count": "fixed", "scribbles": k, "max_scribbles": 6, "region": region, "slice": slice_rule}
    policy |= {"polarity": polarity, "min_region_voxels": 10}
    cfg = with_changes("scribble_ideal", policy=policy, strokes={"planes": planes, "min_length_mm": 0.0})
    robot = make_annotator(cfg)
    axes = tuple(AXES[p] for p in planes)
    errors = {ADD: ref & ~pred, REMOVE: pred & ~ref}
    comps = {p: eligible_components(e, 10) for p, e in errors.items()}
    expected = {p: min(k, sum(slices_cutting(c, axes) for c in cs)) for p, cs in comps.items()}
    if polarity == "larger" and comps[ADD] and comps[REMOVE]:
        volume = {p: sum(int(c.sum()) for c in cs) for p, cs in comps.items()}
        expected[REMOVE if volume[ADD] >= volume[REMOVE] else ADD] = 0

    analysis = analyse_errors(ref, pred, vol.spacing, min_voxels=10)
    plan = plan_round(analysis, robot.policy, axes, np.random.default_rng(seed))
    assert {p: sum(t.region.polarity == p for t in plan) for p in (ADD, REMOVE)} == expected
    assert len({(id(t.region), t.plane, t.index) for t in plan}) == len(plan)  # distinct slices per region

    it = robot.annotate(vol.image, ref, pred, np.random.default_rng(seed), spacing=vol.spacing)
    check_ideal(it, ref, pred)
    assert {p: sum(s.target == p for s in it.strokes) for p in (ADD, REMOVE)} == expected


def test_fixed_count_passes_a_regions_shortfall_on_and_bridging_two_regions_can_lower_the_count():
    ref = np.zeros((8, 20, 30), bool)
    ref[0:8, 1:19, 1:29] = True
    pred = ref.copy()
    pred[2, 3:12, 3:12] = False  # 81 missed voxels on one axial slice: room for one stroke
    pred[1:7, 14:16, 20:22] = False  # 24 missed voxels on six slices
    fixed = with_changes("scribble_ideal", policy={"count": "fixed", "scribbles": 3})
    it = make_annotator(fixed).annotate(None, ref, pred, np.random.default_rng(0))
    check_ideal(it, ref, pred)
    assert sorted(s.region_voxels for s in it.strokes) == [24, 24, 81]  # the big region's share moved on
    per_size = with_changes(
        "scribble_ideal", policy={"count": "per_size", "voxels_per_scribble": 20, "max_scribbles": 3}
    )
    it = make_annotator(per_size).annotate(None, ref, pred, np.random.default_rng(0))
    assert sorted(s.region_voxels for s in it.strokes) == [24, 24, 81]  # the cap counts placed strokes only

    # The limit of "more error, no fewer strokes": two separate misses on one slice take two strokes; the
    # same misses bridged into one region (more error) are cut by one slice only: one stroke.
    ref = np.zeros((5, 20, 30), bool)
    ref[1:4, 2:18, 2:28] = True
    pred = ref.copy()
    pred[2, 5:10, 5:10] = False
    pred[2, 5:10, 15:20] = False
    robot = make_annotator(with_changes("scribble_ideal", policy={"count": "fixed", "scribbles": 2}))
    apart = robot.annotate(None, ref, pred, np.random.default_rng(0))
    assert [s.region_voxels for s in apart.strokes] == [25, 25] and {s.index for s in apart.strokes} == {2}
    pred[2, 7, 10:15] = False
    bridged = robot.annotate(None, ref, pred, np.random.default_rng(0))
    assert [s.region_voxels for s in bridged.strokes] == [55]


def separate_error(ref, pred, rng, size=(1, 5)) -> np.ndarray:
    """`pred` with more error in a random box, none of it touching an existing error of its polarity (so
    no existing component grows or merges with another)."""
    fn, fp = ref & ~pred, pred & ~ref
    box = np.zeros_like(ref)
    lo = rng.integers(0, np.array(ref.shape) - 4)
    box[tuple(slice(a, a + s) for a, s in zip(lo, rng.integers(*size, size=3)))] = True
    new_fp = box & ~ref & ~pred & ~ndi.binary_dilation(fp, FULL)
    new_fn = box & ref & pred & ~ndi.binary_dilation(fn, FULL)
    return (pred | new_fp) & ~new_fn


@HYPO
@given(
    predictions,
    st.integers(0, 10_000),
    st.sampled_from(["scribble_ideal", "scribble_random", "click_ritm", "click_center"]),
    st.integers(1, 4),
)
def test_more_separate_error_never_gives_fewer_interactions_under_a_fixed_count(params, extra_seed, name, k):
    """Error components that touch no existing one of their polarity never lower the count of a fixed-count
    robot: scribbles get min(k, slices cutting the regions) per polarity, the centre rule one click per
    component up to k, and RITM's clicks only stop early once every component's voxels are used up by
    balls (each component on its own). Bridging components can lower it (the test above)."""
    vol, ref, pred = make_case(params)
    pred2 = separate_error(ref, pred, np.random.default_rng(extra_seed))
    if name.startswith("click"):
        cfg = preset(name)
        cfg["clicks"] = {**cfg["clicks"], "per_round": k}
    else:
        random = {"region": "random", "slice": "random"} if name == "scribble_random" else {}
        cfg = with_changes("scribble_ideal", policy={"count": "fixed", "scribbles": k, **random})
    robot = make_annotator(cfg)

    def interactions(p):
        e = robot.annotate(vol.image, ref, p, np.random.default_rng(extra_seed), spacing=vol.spacing).effort
        return e.strokes + e.clicks

    before, after = interactions(pred), interactions(pred2)
    assert after >= before
    if name == "click_center":
        assert before == min(k, sum(len(eligible_components(e, 10)) for e in (ref & ~pred, pred & ~ref)))


@HYPO
@given(predictions, st.integers(0, 10_000))
def test_more_separate_error_never_gives_fewer_strokes_under_ceil_n_over_100(params, extra_seed):
    """count=per_size: adding error components that touch no existing one never lowers the stroke count."""
    vol, ref, pred = make_case(params)
    pred2 = separate_error(ref, pred, np.random.default_rng(extra_seed), size=(3, 7))
    cfg = with_changes(
        "scribble_ideal",
        policy={"count": "per_size", "voxels_per_scribble": 40, "max_scribbles": 50, "min_region_voxels": 5},
    )
    robot = make_annotator(cfg)
    before = robot.annotate(vol.image, ref, pred, np.random.default_rng(0), spacing=vol.spacing)
    after = robot.annotate(vol.image, ref, pred2, np.random.default_rng(0), spacing=vol.spacing)
    assert after.effort.strokes >= before.effort.strokes
    check_ideal(after, ref, pred2)


def test_per_size_count_gives_ceil_n_over_k_strokes_per_region_on_distinct_slices():
    ref = np.zeros((20, 30, 30), bool)
    ref[2:18, 5:25, 5:25] = True
    pred = ref.copy()
    pred[3:15, 8:12, 8:12] = False  # 192 missed voxels on 12 slices
    pred[3:5, 18:21, 18:21] = False  # 18 missed voxels on 2 slices
    cfg = with_changes(
        "scribble_ideal", policy={"count": "per_size", "voxels_per_scribble": 50, "min_region_voxels": 5}
    )
    it = make_annotator(cfg).annotate(None, ref, pred, np.random.default_rng(0))
    check_ideal(it, ref, pred)
    by_region = {}
    for s in it.strokes:
        by_region.setdefault(s.region_voxels, []).append(s.index)
    assert {n: len(z) for n, z in by_region.items()} == {192: math.ceil(192 / 50), 18: 1}
    z = sorted(by_region[192])
    assert len(set(z)) == len(z) and min(np.diff(z)) >= 2  # spread out, min_slice_gap = 2


def test_polarity_larger_scribbles_only_the_larger_error_and_fixed_count_cycles_regions():
    ref = np.zeros((12, 30, 30), bool)
    ref[2:10, 5:25, 5:25] = True
    pred = ref.copy()
    pred[3:9, 8:14, 8:14] = False  # 216 missed
    pred[3:5, 18:21, 18:21] = False  # 18 missed
    pred[3:5, 0:3, 0:3] = True  # 18 false
    base = {"polarity": "larger", "count": "fixed", "scribbles": 3, "min_region_voxels": 5}
    it = make_annotator(with_changes("scribble_ideal", policy=base)).annotate(
        None, ref, pred, np.random.default_rng(0)
    )
    check_ideal(it, ref, pred)
    assert [s.target for s in it.strokes] == [ADD] * 3
    assert sorted(s.region_voxels for s in it.strokes) == [18, 216, 216]
    both = make_annotator(with_changes("scribble_ideal", policy={**base, "polarity": "both"}))
    assert {s.target for s in both.annotate(None, ref, pred, np.random.default_rng(0)).strokes} == {
        ADD,
        REMOVE,
    }


def test_worst_slice_policy_picks_the_component_with_the_largest_cross_section():
    ref = np.zeros((20, 30, 30), bool)
    ref[1:19, 2:28, 2:28] = True
    pred = ref.copy()
    pred[2:18, 4:7, 4:7] = False  # 144 voxels, thin and long: the largest by volume
    pred[8:9, 12:22, 12:22] = False  # 100 voxels on one slice: the largest cross-section
    largest = with_changes("scribble_ideal", policy={"region": "largest"})
    worst = with_changes("scribble_ideal", policy={"region": "worst_slice"})
    s1 = make_annotator(largest).annotate(None, ref, pred, np.random.default_rng(0)).strokes[0]
    s2 = make_annotator(worst).annotate(None, ref, pred, np.random.default_rng(0)).strokes[0]
    assert s1.region_voxels == 144 and (s2.region_voxels, s2.index) == (100, 8)


def test_same_generator_state_gives_same_scribbles_and_global_random_state_is_untouched():
    vol, ref, pred = make_case((1, 0, 1, (1, -2, 2), 3))
    for name in ("scribble_sloppy", "click_ritm"):
        cfg = preset(name)
        if name == "click_ritm":
            cfg["noise"] = {"jitter_voxels": 1.0, "wrong_label_rate": 0.3}
        robot = make_annotator(cfg)
        np.random.seed(0)  # noqa: NPY002 - the legacy global state, to show that the robot ignores it
        state = np.random.get_state()[1].copy()  # noqa: NPY002
        a = robot.annotate(vol.image, ref, pred, np.random.default_rng(42), spacing=vol.spacing)
        assert np.array_equal(np.random.get_state()[1], state)  # noqa: NPY002 - not consumed
        np.random.seed(123)  # noqa: NPY002 - a different global state must not matter
        b = robot.annotate(vol.image, ref, pred, np.random.default_rng(42), spacing=vol.spacing)
        assert np.array_equal(a.add, b.add) and np.array_equal(a.remove, b.remove) and a.effort == b.effort
        assert [s.voxels.tolist() for s in a.strokes] == [s.voxels.tolist() for s in b.strokes]
        others = [
            robot.annotate(vol.image, ref, pred, np.random.default_rng(s), spacing=vol.spacing)
            for s in range(5)
        ]
        assert any(not np.array_equal(o.add, a.add) or not np.array_equal(o.remove, a.remove) for o in others)


def pieces_2d(stroke) -> int:
    pix = np.delete(stroke.voxels, stroke.plane, axis=1)
    mask = np.zeros(tuple(pix.max(0) + 1), bool)
    mask[pix[:, 0], pix[:, 1]] = True
    return ndi.label(mask, structure=np.ones((3, 3), bool))[1]


def measured_rates(robot, cases, draws: int):
    """Per stroke, from the masks only: the error set its intended path lies in gives the meant polarity;
    wrong label = label differs from it; overshoot = any painted voxel outside that error set; broken =
    more than one 8-connected piece, among strokes whose path is long enough for a gap (2 gaps; exact only
    without jitter, which changes the drawn path)."""
    n = wrong = over = broken = long_enough = 0
    for i in range(draws):
        vol, ref, pred = cases[i % len(cases)]
        it = robot.annotate(vol.image, ref, pred, np.random.default_rng(1000 + i), spacing=vol.spacing)
        errors = {ADD: ref & ~pred, REMOVE: pred & ~ref}
        for s in it.strokes:
            meant = [p for p, e in errors.items() if e[tuple(s.path.T)].all()]
            assert len(meant) == 1, "the intended path lies in one error set"
            outside = bool((~errors[meant[0]][tuple(s.voxels.T)]).any())
            assert outside == s.overshoot
            n += 1
            wrong += s.label != meant[0]
            over += outside
            spacing2 = [sp for a, sp in enumerate(vol.spacing) if a != s.plane]
            steps = np.diff(np.delete(s.path, s.plane, axis=1), axis=0) * spacing2
            if np.sqrt((steps**2).sum(1)).sum() >= 2 * robot.noise.gap_mm:
                long_enough += 1
                broken += pieces_2d(s) > 1
    return n, wrong / n, over / n, broken / max(long_enough, 1), long_enough


def within(measured: float, rate: float, n: int) -> bool:
    return abs(measured - rate) <= 4 * math.sqrt(rate * (1 - rate) / n) + 2.0 / n


def noisy_cases():
    return [
        make_case((i % 2, e, d, sh, b))
        for i, (e, d, sh, b) in enumerate(
            [(1, 0, (0, 2, 2), 1), (0, 1, (1, -2, 0), 2), (2, 0, (0, 0, 3), 3), (0, 2, (-1, 1, -2), None)]
        )
    ]


def test_sloppy_preset_overshoot_and_wrong_label_rates_match_its_configuration():
    robot = make_annotator(preset("scribble_sloppy"))
    n, wrong, over, _, _ = measured_rates(robot, noisy_cases(), draws=120)
    assert n >= 400
    assert within(wrong, robot.noise.wrong_label_rate, n), (wrong, n)
    assert within(over, robot.noise.overshoot_rate, n), (over, n)


def test_high_noise_rates_are_measured_back_including_breaks():
    cfg = with_changes(
        "scribble_sloppy",
        noise={"jitter_voxels": 0.0, "overshoot_rate": 0.4, "wrong_label_rate": 0.25, "break_rate": 0.5},
        strokes={"shape": ["skeleton", "line", "centreline"], "max_length_mm": None},
    )
    robot = make_annotator(cfg)
    n, wrong, over, broken, long_enough = measured_rates(robot, noisy_cases(), draws=80)
    assert n >= 250 and long_enough >= 100
    assert within(wrong, 0.25, n) and within(over, 0.4, n) and within(broken, 0.5, long_enough)


def test_ideal_presets_have_no_noise_and_noisy_presets_are_not_ideal():
    assert make_annotator(preset("scribble_ideal")).noise.is_ideal
    assert not make_annotator(preset("scribble_careful")).noise.is_ideal
    assert not make_annotator(preset("scribble_sloppy")).noise.is_ideal


def random_masks(seed: int):
    rng = np.random.default_rng(seed)
    shape = tuple(int(n) for n in rng.integers(1, 18, size=3))
    smooth = [ndi.gaussian_filter(rng.random(shape), rng.uniform(0.0, 2.0)) for _ in range(2)]
    return (
        shape,
        (smooth[0] > np.quantile(smooth[0], rng.uniform(0.2, 0.95))),
        (smooth[1] > np.quantile(smooth[1], rng.uniform(0.2, 0.95))),
    )


@settings(max_examples=40, deadline=None)
@given(
    st.integers(0, 2**32 - 1),
    st.sampled_from(["scribble_ideal", "scribble_careful", "scribble_sloppy", "click_ritm", "click_center"]),
    st.tuples(*[st.floats(0.3, 6.0)] * 3),
    st.sampled_from([["axial"], ["axial", "coronal", "sagittal"]]),
)
def test_any_masks_any_spacing_any_preset_give_a_consistent_interaction(seed, name, spacing, planes):
    """Fuzz: odd shapes (down to one voxel thick), speckle, anisotropic spacing; nothing breaks."""
    shape, ref, pred = random_masks(seed)
    cfg = preset(name)
    if cfg["kind"] == "scribble":
        cfg["strokes"] = {**cfg["strokes"], "planes": planes, "min_length_mm": 0.0}
        cfg["policy"] = {**cfg["policy"], "min_region_voxels": 1}
    it = make_annotator(cfg).annotate(None, ref, pred, np.random.default_rng(seed), spacing=spacing)
    assert it.add.shape == shape
    errors = {ADD: ref & ~pred, REMOVE: pred & ~ref}
    for s in it.strokes:
        assert errors[s.target][tuple(s.path.T)].all() and len(s.voxels) > 0
        assert np.all(s.voxels[:, s.plane] == s.index)
    if name.endswith(("ideal", "ritm", "center")):
        check_ideal(it, ref, pred)
    if cfg["kind"] == "scribble":
        assert it.is_empty == (not (ref ^ pred).any())  # no size or length limit: any error gets a stroke


def test_random_region_order_is_weighted_by_volume():
    ref = np.zeros((10, 30, 30), bool)
    ref[1:9, 1:29, 1:29] = True
    pred = ref.copy()
    pred[2:8, 3:9, 3:9] = False  # 216 voxels
    pred[2:5, 15:21, 15:21] = False  # 108 voxels
    regions = analyse_errors(ref, pred).regions[ADD]
    rng = np.random.default_rng(0)
    firsts = [order_regions(regions, Policy(region="random"), (0,), rng)[0].voxels for _ in range(3000)]
    share = np.mean(np.array(firsts) == 216)
    assert within(share, 2 / 3, len(firsts))


def test_error_analysis_sizes_and_cross_sections_use_each_axis_spacing():
    ref = np.zeros((6, 8, 8), bool)
    ref[1:5, 2:6, 2:6] = True
    pred = ref.copy()
    pred[2, 3:5, 3:5] = False  # 4 missed voxels: z 2, y 3..4, x 3..4
    pred[0, 0, 0] = pred[5, 7, 7] = True  # two false voxels, far apart: below min_voxels
    a = analyse_errors(ref, pred, spacing=(2.0, 1.0, 0.5), min_voxels=2)  # three different spacings
    (r,) = a.regions[ADD]
    assert r.voxels == 4 and r.volume_mm3 == pytest.approx(4 * 2.0 * 1.0 * 0.5)
    assert a.regions[REMOVE] == () and a.error(REMOVE).sum() == 2
    # slices normal to z are y-x pixels of 1 x 0.5 mm2, normal to y z-x of 2 x 0.5, normal to x z-y of 2 x 1
    for axis, slices, area in ((0, [2], 4 * 0.5), (1, [3, 4], 2 * 1.0), (2, [3, 4], 2 * 2.0)):
        idx, areas = r.areas_mm2(axis)
        assert idx.tolist() == slices and areas == pytest.approx([area] * len(slices)), axis


# ------------------------------------------------------------------------------------------ shapes


def ellipse(shape=(40, 60), radii=(8, 22)) -> np.ndarray:
    r, c = np.indices(shape)
    return ((r - shape[0] / 2) / radii[0]) ** 2 + ((c - shape[1] / 2) / radii[1]) ** 2 <= 1


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("margin", [0, 2])
def test_every_shape_is_an_8_connected_path_in_the_core(shape, margin):
    blob = ellipse()
    path = shape_path(blob, shape, margin, (1.0, 1.0))
    core_mask, depth = core(blob, margin)
    assert core_mask[path[:, 0], path[:, 1]].all()
    assert (depth[path[:, 0], path[:, 1]] > margin).all()
    steps = np.abs(np.diff(path, axis=0)).max(1)
    assert (steps == 1).all()  # consecutive pixels are 8-adjacent and distinct
    extent = np.ptp(path[:, 1])
    assert extent >= 0.7 * np.ptp(np.nonzero(core_mask)[1])  # it spans the long axis of the region


def test_line_is_straight_contour_is_closed_on_the_core_border():
    blob = ellipse()
    line = shape_path(blob, "line", 1, (1.0, 1.0)).astype(float)
    a, b = line[0], line[-1]
    d = np.abs(np.cross(b - a, line - a)) / np.linalg.norm(b - a)
    assert d.max() <= 1.0
    contour = shape_path(blob, "contour", 1, (1.0, 1.0))
    core_mask, _ = core(blob, 1)
    inner = ndi.binary_erosion(core_mask)
    assert not inner[contour[:, 0], contour[:, 1]].any()  # every pixel on the core's border
    assert np.abs(contour[0] - contour[-1]).max() <= 1  # closed loop
    assert len({tuple(p) for p in contour}) == (core_mask & ~inner).sum()  # it visits the whole border


def test_contour_of_a_core_pinched_at_a_diagonal_is_one_loop_round_both_halves():
    blob = np.zeros((14, 14), bool)
    blob[1:7, 1:7] = True
    blob[7:13, 7:13] = True  # touches the first square only at a corner: one 8-connected region
    core_mask, _ = core(blob, 0)
    assert core_mask.sum() == blob.sum()
    path = shape_path(blob, "contour", 0, (1.0, 1.0))
    assert (np.abs(np.diff(path, axis=0)).max(1) == 1).all() and np.abs(path[0] - path[-1]).max() <= 1
    border = blob & ~ndi.binary_erosion(blob)
    assert {tuple(p) for p in path} == {tuple(p) for p in np.argwhere(border)}  # both squares, whole
    painted = np.zeros_like(blob)
    painted[path[:, 0], path[:, 1]] = True
    assert ndi.label(painted, structure=np.ones((3, 3), bool))[1] == 1


def test_line_direction_does_not_depend_on_the_eigenvector_sign_lapack_returns(monkeypatch):
    r, c = np.indices((40, 50))
    blob = ((r - 20) * 0.8 + (c - 25) * 0.6) ** 2 / 15**2 + ((c - 25) * 0.8 - (r - 20) * 0.6) ** 2 / 5**2 <= 1
    line = shape_path(blob, "line", 1, (1.0, 1.3))
    eigh = np.linalg.eigh
    monkeypatch.setattr(np.linalg, "eigh", lambda a: (eigh(a)[0], -eigh(a)[1]))
    assert np.array_equal(shape_path(blob, "line", 1, (1.0, 1.3)), line)
    assert line[-1][0] > line[0][0]  # canonical: the axis's first non-zero component is positive
    assert principal_axis(np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])).tolist() == [0.0, 1.0]
    assert principal_axis(np.array([[0.0, 3.0], [1.0, 2.0], [2.0, 1.0]]))[0] > 0


def test_perturb_erodes_or_dilates_only_when_asked():
    ref = np.zeros((10, 20, 20), bool)
    ref[2:8, 4:16, 4:16] = True
    assert np.array_equal(perturb(ref), ref)
    eroded, dilated = perturb(ref, erode=1), perturb(ref, dilate=1)  # the other count is 0: no-op, not flood
    assert 0 < eroded.sum() < ref.sum() and not (eroded & ~ref).any()
    assert ref.sum() < dilated.sum() < ref.size and not (ref & ~dilated).any()
    assert np.array_equal(perturb(ref, shift=(1, 0, -2)), np.roll(ref, (1, 0, -2), axis=(0, 1, 2)))
    with pytest.raises(ValueError, match="erode"):
        perturb(ref, erode=-1)


def test_perturb_erosion_does_not_eat_an_organ_from_the_volumes_edge():
    """A one-slice volume: erode=1 used to empty it (the array edge counted as background). With the edge
    as foreground, eroding one slice is eroding the slice in-plane (4-connected), independently computed."""
    flat = np.zeros((1, 20, 20), bool)
    flat[0, 4:16, 5:15] = True
    in_plane = ndi.binary_erosion(flat[0], structure=ndi.generate_binary_structure(2, 1), border_value=1)
    assert np.array_equal(perturb(flat, erode=1)[0], in_plane) and in_plane.any()
    cut = np.zeros((6, 12, 12), bool)
    cut[:, 3:9, 3:9] = True  # the organ runs through the top and bottom faces of the field of view
    eroded = perturb(cut, erode=1)
    assert eroded[0].sum() == eroded[3].sum() == 16  # every slice loses its rim, none loses more


def test_truncate_keeps_the_central_part_within_the_length_limit():
    path = np.stack([np.full(31, 5), np.arange(31)], 1)
    out = truncate(path, 10.0, (1.0, 2.0))  # 2 mm per step
    assert len(out) == 6 and np.all(np.diff(out[:, 1]) == 1)  # 5 steps of 2 mm: as long as allowed
    assert abs(out[:, 1].mean() - 15) <= 0.5  # and central
    assert truncate(path, None, (1.0, 1.0)) is path


def test_length_limits_bound_every_stroke():
    vol, ref, pred = make_case((0, 1, 1, (0, 3, 3), None))
    cfg = with_changes("scribble_ideal", strokes={"max_length_mm": 8.0}, policy={"scribbles": 4})
    it = make_annotator(cfg).annotate(vol.image, ref, pred, np.random.default_rng(0), spacing=vol.spacing)
    assert it.strokes and all(s.length_mm <= 8.0 for s in it.strokes)
    # a length no region allows: every planned stroke is still drawn, as long as the region lets it be
    want = with_changes("scribble_ideal", strokes={"min_length_mm": 1e6})
    longest = make_annotator(want).annotate(
        vol.image, ref, pred, np.random.default_rng(0), spacing=vol.spacing
    )
    plain = make_annotator(preset("scribble_ideal")).annotate(
        vol.image, ref, pred, np.random.default_rng(0), spacing=vol.spacing
    )
    assert len(longest.strokes) == len(plain.strokes) > 0
    assert all(a.length_mm >= b.length_mm for a, b in zip(longest.strokes, plain.strokes))
    check_ideal(longest, ref, pred)


@pytest.mark.parametrize("kind", ["thin band", "compact blob"])
def test_the_careful_robot_never_stops_while_an_error_worth_a_stroke_remains(kind):
    """scribble_careful keeps a 2-voxel margin and wants 3 mm strokes: in a small compact blob no path with
    that margin is long enough, and it used to return an empty interaction (the session stopped with the
    error left; a thin band, where the margin already shrank, is checked too). The margin now shrinks to 0,
    and a short stroke is drawn inside the error."""
    ref = np.zeros((6, 40, 40), np.uint8)
    ref[1:5, 8:32, 8:32] = 1
    pred = ref.copy()
    if kind == "thin band":
        pred[1:5, 8:10, 10:30] = 0  # a 2-voxel-wide missed band along the border
    else:
        pred[1:5, 18:21, 18:21] = 0  # a 3x3 missed blob in the middle, 36 voxels
    missed = (ref == 1) & (pred == 0)
    spacing = (2.0, 0.8, 0.8)
    robot = make_annotator(preset("scribble_careful"))
    it = robot.annotate(np.zeros(ref.shape, np.float32), ref, pred, np.random.default_rng(3), spacing=spacing)
    assert not it.is_empty and it.add.any()
    near = ndi.binary_dilation(missed, iterations=1)  # careful's overshoot: at most one voxel
    assert not (it.add & ~near).any() and not it.remove.any()


def test_thicker_brush_paints_more_but_stays_inside_and_connected():
    vol, ref, pred = make_case((1, 2, 0, (0, 1, 1), None))
    thin, thick = (
        make_annotator(with_changes("scribble_ideal", strokes={"thickness": t})).annotate(
            vol.image, ref, pred, np.random.default_rng(0), spacing=vol.spacing
        )
        for t in (1, 5)
    )
    check_ideal(thick, ref, pred)
    assert thick.effort.voxels > thin.effort.voxels
    assert thick.effort.length_mm == pytest.approx(thin.effort.length_mm)


# ------------------------------------------------------------------------------------------ effort


def test_effort_seconds_follow_the_time_model():
    vol, ref, pred = make_case((0, 1, 0, (0, 2, -2), 4))
    quiet = {"jitter_voxels": 0.0, "break_rate": 0.0, "overshoot_rate": 0.0}  # drawn path = recorded path
    cfg = with_changes("scribble_careful", noise=quiet)
    it = make_annotator(cfg).annotate(vol.image, ref, pred, np.random.default_rng(3), spacing=vol.spacing)
    t, e = cfg["time"], it.effort
    assert e.strokes > 1
    length = 0.0  # recomputed from the strokes' pixel paths and the volume's spacing
    for s in it.strokes:
        steps = np.diff(np.delete(s.path, s.plane, axis=1), axis=0) * np.delete(vol.spacing, s.plane)
        length += float(np.sqrt((steps**2).sum(1)).sum())
    slices = len({int(v[0]) for s in it.strokes for v in s.voxels})  # careful draws on axial slices only
    assert length > 0 and e.length_mm == pytest.approx(length) and e.slices == slices
    expected = (
        t["seconds_per_slice"] * slices
        + t["seconds_per_stroke"] * len(it.strokes)
        + t["seconds_per_cm"] * length / 10
        + t["wait_seconds"]
    )
    assert e.seconds == pytest.approx(expected)
    assert all(isinstance(v, (int, float)) for v in e.as_dict().values())
    click = preset("click_ritm")
    ce = (
        make_annotator(click)
        .annotate(vol.image, ref, pred, np.random.default_rng(3), spacing=vol.spacing)
        .effort
    )
    tc = click["time"]
    assert ce.clicks == 1 and ce.slices == 1 and ce.length_mm == 0
    assert ce.seconds == pytest.approx(tc["seconds_per_click"] + tc["seconds_per_slice"] + tc["wait_seconds"])


def test_stroke_length_is_measured_in_millimetres():
    ref = np.zeros((5, 20, 40), bool)
    ref[2, 8:13, 5:35] = True
    pred = np.zeros_like(ref)
    cfg = with_changes("scribble_ideal", strokes={"shape": ["line"], "margin_voxels": 2})
    for dx in (1.0, 2.5):
        it = make_annotator(cfg).annotate(None, ref, pred, np.random.default_rng(0), spacing=(3.0, 1.0, dx))
        (s,) = it.strokes
        assert np.ptp(s.path[:, 2]) == 25  # 26 pixels along x, two kept clear of each end
        assert s.length_mm == pytest.approx(25 * dx)


# ------------------------------------------------------------------------------------------ clicks


def depth_beyond_the_z_faces(error: np.ndarray, spacing) -> np.ndarray:
    """Independent reference of the click robot's depth: distance to the nearest voxel outside the error,
    the image's in-plane edge outside (as RITM pads it), the volume's first and last slice continued."""
    padded = np.pad(np.pad(error, ((1, 1), (0, 0), (0, 0)), mode="edge"), ((0, 0), (1, 1), (1, 1)))
    return ndi.distance_transform_edt(padded, sampling=spacing)[1:-1, 1:-1, 1:-1]


def test_a_click_on_a_one_slice_or_thin_volume_goes_to_the_in_plane_centre():
    """The volume's z faces are where the field of view ends, not the organ: on one slice, or on 3 slices
    the error runs through, the RITM click lands at the 2D distance-transform maximum of the error, not on
    its first voxel in raster order (what capping every depth at one slice spacing gave)."""
    for depth in (1, 3):
        ref = np.zeros((depth, 24, 24), np.uint8)
        ref[:, 4:20, 3:21] = 1
        pred = ref.copy()
        pred[:, 6:17, 5:14] = 0  # a missed box, off-centre, through every slice
        spacing = (3.0, 0.8, 0.8)
        image = np.zeros(ref.shape, np.float32)
        it = make_annotator(preset("click_ritm")).annotate(
            image, ref, pred, np.random.default_rng(0), spacing=spacing
        )
        (s,) = it.strokes
        missed = (ref == 1) & (pred == 0)
        in_plane = ndi.distance_transform_edt(np.pad(missed[depth // 2], 1), sampling=spacing[1:])[1:-1, 1:-1]
        z, y, x = (int(v) for v in s.path[0])
        assert s.label == ADD and in_plane[y, x] == pytest.approx(in_plane.max()), (depth, y, x)
        first = np.argwhere(missed)[0]
        assert (y, x) != (int(first[1]), int(first[2]))


@HYPO
@given(predictions)
def test_ritm_click_is_at_the_deepest_error_voxel(params):
    vol, ref, pred = make_case(params)
    it = make_annotator(preset("click_ritm")).annotate(
        vol.image, ref, pred, np.random.default_rng(0), spacing=vol.spacing
    )
    analysis = analyse_errors(ref, pred, vol.spacing, min_voxels=10)
    if analysis.is_clean:
        assert it.is_empty
        return
    depth = {}
    for p in (ADD, REMOVE):
        eligible = np.zeros_like(ref)
        for r in analysis.regions[p]:
            eligible[r.box] |= r.mask
        depth[p] = depth_beyond_the_z_faces(eligible, vol.spacing)
    (s,) = it.strokes
    polarity = ADD if depth[ADD].max() > depth[REMOVE].max() else REMOVE
    assert s.label == s.target == polarity
    assert depth[polarity][tuple(s.path[0])] == pytest.approx(depth[polarity].max())
    check_ideal(it, ref, pred)


def test_center_clicks_land_inside_the_largest_components_and_per_round_clicks_are_distinct():
    vol, ref, pred = make_case((1, 1, 0, (0, 2, 1), 9))
    cfg = preset("click_center")
    cfg["clicks"] = {**cfg["clicks"], "per_round": 3}
    it = make_annotator(cfg).annotate(vol.image, ref, pred, np.random.default_rng(0), spacing=vol.spacing)
    check_ideal(it, ref, pred)
    analysis = analyse_errors(ref, pred, vol.spacing, min_voxels=10)
    sizes = sorted((r.voxels for p in (ADD, REMOVE) for r in analysis.regions[p]), reverse=True)
    assert it.effort.clicks == min(3, len(sizes))
    for s, size in zip(it.strokes, sizes):
        labels, _ = ndi.label(analysis.error(s.target), structure=FULL)
        assert (labels == labels[tuple(s.path[0])]).sum() == size == s.region_voxels


@pytest.mark.parametrize(
    "params", [(1, 1, 0, (0, 2, 1), 9), (0, 0, 1, (1, -2, 0), 2), (1, 2, 0, (0, 0, 3), None)]
)
def test_ritm_clicks_of_a_round_each_take_the_deepest_voxel_left_after_the_earlier_balls(params):
    """Replays the rule on whole-volume distance maps: each click is the deepest voxel left (ties: "remove"
    over "add", then the first in raster order), and takes the open ball of its depth out of its component.
    Integer spacings keep every distance exact, so ties are ties on both sides."""
    vol, ref, pred = make_case(params)
    spacing = (2.0, 1.0, 1.0)
    cfg = preset("click_ritm")
    cfg["clicks"] = {**cfg["clicks"], "per_round": 4}
    it = make_annotator(cfg).annotate(vol.image, ref, pred, np.random.default_rng(0), spacing=spacing)
    check_ideal(it, ref, pred)
    assert it.effort.clicks == 4
    left, labels = {}, {}
    for p, error in ((ADD, ref & ~pred), (REMOVE, pred & ~ref)):
        labels[p] = ndi.label(error, structure=FULL)[0]
        left[p] = np.zeros_like(ref)
        for c in eligible_components(error, 10):
            left[p] |= c
    grid = np.indices(ref.shape, sparse=True)
    for s in it.strokes:
        depth = {
            p: ndi.distance_transform_edt(np.pad(m, 1), sampling=spacing)[1:-1, 1:-1, 1:-1]
            for p, m in left.items()
        }
        polarity = ADD if depth[ADD].max() > depth[REMOVE].max() else REMOVE
        radius = depth[polarity].max()
        first = np.unravel_index(int(np.flatnonzero(depth[polarity] == radius)[0]), ref.shape)
        assert s.target == s.label == polarity and tuple(s.path[0]) == first
        ball = sum(((g - v) * sp) ** 2 for g, v, sp in zip(grid, first, spacing)) < radius**2
        left[polarity] &= ~(ball & (labels[polarity] == labels[polarity][first]))


def test_ritm_ties_go_to_remove_then_to_the_first_voxel_in_raster_order():
    ref = np.zeros((12, 12, 24), bool)
    ref[1:11, 1:11, 1:15] = True
    pred = ref.copy()
    pred[2:5, 2:5, 2:5] = False  # a 3x3x3 miss: depth 2 at its centre (3, 3, 3)
    pred[6:9, 6:9, 3:10] = False  # a larger 3x3x7 miss, as deep, its deepest voxels later in raster order
    robot = make_annotator(preset("click_ritm"))

    def click(p):
        (s,) = robot.annotate(None, ref, p, np.random.default_rng(0)).strokes
        return s.target, tuple(int(v) for v in s.path[0])

    assert click(pred) == (ADD, (3, 3, 3))
    pred[2:4, 2:5, 18:21] = True  # a false 2x3x3 slab beside the reference: depth 1, shallower
    assert click(pred) == (ADD, (3, 3, 3))
    pred[2:5, 2:5, 18:21] = True  # now a false 3x3x3 cube: as deep as the misses, and "remove" wins ties
    assert click(pred) == (REMOVE, (3, 3, 19))


# ------------------------------------------------------------------------------------------ box


@settings(max_examples=40, deadline=None)
@given(predictions, st.floats(0.0, 0.5), st.floats(0.0, 6.0), st.integers(0, 2**32 - 1))
def test_jittered_box_moves_each_face_by_at_most_the_jitter(params, jitter, margin, seed):
    vol, ref, _ = make_case(params)
    box = jittered_box(ref, np.random.default_rng(seed), jitter, vol.spacing, margin)
    idx = np.argwhere(ref)
    lo, hi = idx.min(0), idx.max(0) + 1
    for a in range(3):
        n, grow = ref.shape[a], math.ceil(margin / vol.spacing[a] - 1e-9)
        slack = jitter * (hi[a] - lo[a]) + 0.5
        assert 0 <= box[a] < box[a + 3] <= n
        assert min(max(0, lo[a] - grow - slack), n - 1) <= box[a] <= min(max(0, lo[a] - grow + slack), n - 1)
        assert min(n, hi[a] + grow - slack) <= box[a + 3] <= max(min(n, hi[a] + grow + slack), box[a] + 1)
    assert box == jittered_box(ref, np.random.default_rng(seed), jitter, vol.spacing, margin)


def test_box_without_jitter_is_the_tight_box_and_empty_reference_is_an_error():
    ref = np.zeros((6, 10, 12), bool)
    ref[1:4, 2:7, 3:11] = True
    assert bounding_box(ref) == (1, 2, 3, 4, 7, 11)
    assert jittered_box(ref, np.random.default_rng(0), 0.0) == (1, 2, 3, 4, 7, 11)
    assert jittered_box(ref, np.random.default_rng(0), 0.0, (2.0, 1.0, 1.0), margin_mm=2.0) == (
        0,
        0,
        1,
        5,
        9,
        12,
    )
    with pytest.raises(ValueError, match="non-empty"):
        jittered_box(np.zeros_like(ref), np.random.default_rng(0), 0.1)


# ------------------------------------------------------------------------------------------ pictures


def test_round_picture_shows_the_slice_with_most_scribbles_and_paints_them_in_their_colours(tmp_path):
    import matplotlib.image as mpimg

    vol, ref, pred = make_case((0, 1, 0, (0, 2, 2), 5))
    it = make_annotator(preset("scribble_careful")).annotate(
        vol.image, ref, pred, np.random.default_rng(0), spacing=vol.spacing
    )
    counts = it.scribbles.sum(axis=(1, 2))
    z = save_round_png(tmp_path / "round.png", vol.image, ref, pred, it, title="case 0, round 1")
    assert counts[z] == counts.max() > 0
    pixels = mpimg.imread(tmp_path / "round.png")
    assert pixels.ndim == 3 and pixels.shape[0] > 200

    def coloured(png, rgb) -> int:  # the legend shows each colour too: compare pictures, never count alone
        px = mpimg.imread(png)[..., :3]
        return int((np.abs(px - np.asarray(rgb)) < 0.1).all(-1).sum())

    for polarity, rgb in ((ADD, ADD_RGBA[:3]), (REMOVE, REMOVE_RGBA[:3])):
        mask = it.add if polarity == ADD else it.remove
        zs = np.flatnonzero(mask.sum(axis=(1, 2)))
        assert len(zs), f"the case has no {polarity} scribble"
        zp = int(zs[0])
        without = Interaction(
            it.add & (polarity != ADD), it.remove & (polarity != REMOVE), it.effort, strokes=it.strokes
        )  # the same round, one polarity left out: same title, same layout
        save_round_png(tmp_path / "with.png", vol.image, ref, pred, it, z=zp)
        save_round_png(tmp_path / "without.png", vol.image, ref, pred, without, z=zp)
        gained = coloured(tmp_path / "with.png", rgb) - coloured(tmp_path / "without.png", rgb)
        assert gained >= mask[zp].sum(), polarity  # at least a pixel per scribbled voxel on that slice
    assert pick_slice(ref, pred, None) == int(np.argmax((ref ^ pred).sum(axis=(1, 2))))
    save_round_png(tmp_path / "r0.png", vol.image, ref, pred, None)
    assert (tmp_path / "r0.png").stat().st_size > 1000


# ------------------------------------------------------------------------------------------ real labels


def real_labels():
    import SimpleITK as sitk

    out = []
    for rel in ("abdomen-ct-totalseg/pancreas.nii.gz", "msd-spleen-mini/labelsTr/spleen_crop2.nii.gz"):
        f = DATA / rel
        if f.exists():
            img = sitk.ReadImage(str(f))
            label = sitk.GetArrayFromImage(img) > 0
            spacing = tuple(float(s) for s in reversed(img.GetSpacing()))
            idx = np.argwhere(label)
            lo, hi = np.maximum(idx.min(0) - 4, 0), idx.max(0) + 5
            out.append((rel, label[tuple(slice(a, b) for a, b in zip(lo, hi))], spacing))
    return out


@pytest.mark.skipif(not (DATA / "abdomen-ct-totalseg").exists(), reason="shared real data not present")
@pytest.mark.parametrize("op", ["erode", "dilate", "shift", "mixed"])
def test_real_labels_with_realistic_wrong_predictions(op):
    labels = real_labels()
    assert labels
    for rel, ref, spacing in labels:
        pred = {
            "erode": perturb(ref, 2, 0, (0, 0, 0)),
            "dilate": perturb(ref, 0, 2, (0, 0, 0)),
            "shift": perturb(ref, 0, 0, (1, 2, -2)),
            "mixed": perturb(ref, 1, 0, (0, -3, 2), blob_seed=11),
        }[op]
        for shape in SHAPES:
            cfg = with_changes(
                "scribble_ideal",
                strokes={"shape": [shape], "planes": ["axial", "coronal"], "thickness": 3},
                policy={"scribbles": 2},
            )
            it = make_annotator(cfg).annotate(None, ref, pred, np.random.default_rng(0), spacing=spacing)
            check_ideal(it, ref, pred)
            assert it.effort.strokes >= 1, rel
        sloppy = make_annotator(preset("scribble_sloppy"))
        it = sloppy.annotate(None, ref, pred, np.random.default_rng(1), spacing=spacing)
        assert not it.is_empty and not np.any(it.add & it.remove)


def test_pixel_graph_links_the_8_neighbours_with_exact_hypot_step_lengths():
    """Edge weights are np.hypot of the step in mm, bit for bit: skimage's own weights (sqrt of a sum of
    squares) differ in the last bit for spacings like this one, which can flip a shortest-path tie."""
    from simulators.strokes import _pixel_graph

    spacing2 = (1.982, 1.53)
    assert np.hypot(*spacing2) != np.sqrt(spacing2[0] ** 2 + spacing2[1] ** 2)  # a spacing where it matters
    mask = np.random.default_rng(0).random((9, 11)) < 0.6
    coords, graph = _pixel_graph(mask, spacing2)
    np.testing.assert_array_equal(coords, np.argwhere(mask))
    expected = {}
    for i, p in enumerate(coords):
        for j, q in enumerate(coords):
            d = np.abs(q - p)
            if i != j and d.max() == 1:
                expected[(i, j)] = np.hypot(d[0] * spacing2[0], d[1] * spacing2[1])
    assert dict(graph.todok().items()) == expected
