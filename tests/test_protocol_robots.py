"""Robots of the public protocols: each test checks a protocol's defining rule on a hand-made case.

CVPR 2025 challenge (`CVPR25_iter_eval.py`, `get_boxes.py`): the `cvpr25` click rule and the box prompt.
"""

from __future__ import annotations

import numpy as np
import pytest

from simulators.box import BoxRobot, box_interaction, challenge_box, median_slice
from simulators.click import CLICK_RULES, ClickRobot, ClickStyle, cvpr25_tie
from simulators.effort import ClickTime
from simulators.interaction import ADD, REMOVE, Click, SliceBox
from simulators.noise import ClickNoise
from simulators.policy import ClickPolicy


def robot(rule: str, per_round: int = 1, min_voxels: int = 1) -> ClickRobot:
    return ClickRobot(
        clicks=ClickStyle(rule=rule, per_round=per_round), policy=ClickPolicy(min_region_voxels=min_voxels)
    )


def clicks(rule, reference, prediction, spacing=(1.0, 1.0, 1.0), per_round=1, rng=None):
    rng = rng if rng is not None else np.random.default_rng(0)
    out = robot(rule, per_round).annotate(reference, reference, prediction, rng, spacing)
    return [(tuple(int(v) for v in s.path[0]), s.label) for s in out.strokes], out


def split_cube(fn_width: int) -> tuple[np.ndarray, np.ndarray]:
    """A 7x7x7 error cube (z, y, x in 1..7): its first `fn_width` columns missed organ, the rest false
    organ. Touching, they are one component of the challenge's error mask, two of ours."""
    reference = np.zeros((9, 9, 10), np.uint8)
    prediction = np.zeros_like(reference)
    reference[1:8, 1:8, 1 : 1 + fn_width] = 1
    prediction[1:8, 1:8, 1 + fn_width : 8] = 1
    return reference, prediction


def test_cvpr25_is_a_click_rule():
    assert "cvpr25" in CLICK_RULES
    assert ClickStyle(rule="cvpr25").rule == "cvpr25"


@pytest.mark.parametrize("fn_width, label", [(3, REMOVE), (4, ADD)])
def test_cvpr25_clicks_the_edt_maximum_of_the_mixed_component_labelled_by_the_reference(fn_width, label):
    reference, prediction = split_cube(fn_width)
    [(voxel, got)] = clicks("cvpr25", reference, prediction)[0]
    # the cube's centre is the only voxel 4 voxels from the outside, whichever side of the seam it is on
    assert voxel == (4, 4, 4)
    assert got == label == (ADD if reference[voxel] else REMOVE)
    # the per-polarity rules see two slabs (3 and 4 wide) and click elsewhere: the test tells them apart
    for rule in ("ritm", "center"):
        [(other, _)] = clicks(rule, reference, prediction)[0]
        assert other != voxel, rule


def test_cvpr25_clicks_the_largest_component_not_the_deepest():
    reference = np.zeros((9, 22, 30), np.uint8)
    prediction = np.zeros_like(reference)
    reference[1, 1:21, 1:21] = 1  # a one-slice missed sheet: 400 voxels, depth 1
    prediction[2:7, 2:7, 23:28] = 1  # a false cube: 125 voxels, depth 3
    [(voxel, label)] = clicks("cvpr25", reference, prediction)[0]
    assert voxel[0] == 1 and reference[voxel] and label == ADD
    [(deepest, ritm_label)] = clicks("ritm", reference, prediction)[0]
    assert ritm_label == REMOVE and deepest == (4, 4, 25)


def test_cvpr25_depth_is_in_voxels_and_the_volume_border_is_outside():
    # a 5x5x5 missed cube filling the volume's 5 slices: the challenge's zero padding makes z=0 and z=4
    # border voxels, so the deepest voxel is the centre, at any spacing
    reference = np.zeros((5, 7, 9), np.uint8)
    reference[:, 1:6, 2:7] = 1
    prediction = np.zeros_like(reference)
    for spacing in ((1.0, 1.0, 1.0), (5.0, 0.7, 0.7), (0.5, 2.0, 3.0)):
        [(voxel, label)] = clicks("cvpr25", reference, prediction, spacing)[0]
        assert voxel == (2, 3, 4) and label == ADD, spacing


@pytest.mark.parametrize("ties, index", [(1, 0), (2, 0), (3, 2), (4, 2), (7, 6)])
def test_cvpr25_ties_are_the_challenges_seeded_choice_and_draw_nothing_from_rng(ties, index):
    # a 3x3x(ties+2) bar: the voxels of its centre line but the two end ones are all 2 deep
    reference = np.zeros((5, 5, ties + 4), np.uint8)
    reference[1:4, 1:4, 1 : ties + 3] = 1
    prediction = np.zeros_like(reference)
    assert cvpr25_tie(ties) == index  # np.random.seed(42); np.random.choice(ties), as the challenge does
    seen = set()
    for seed in range(3):
        rng = np.random.default_rng(seed)
        before = rng.bit_generator.state
        [(voxel, _)] = clicks("cvpr25", reference, prediction, rng=rng)[0]
        assert rng.bit_generator.state == before
        seen.add(voxel)
    assert seen == {(2, 2, 2 + index)}


def test_cvpr25_empty_or_too_small_error_gives_an_empty_interaction():
    reference, _ = split_cube(3)
    rng = np.random.default_rng(0)
    assert robot("cvpr25").annotate(reference, reference, reference.copy(), rng).is_empty
    prediction = reference.copy()
    prediction[0, 0, 0] = 1  # one false voxel: under a minimum of 2
    assert robot("cvpr25", min_voxels=2).annotate(reference, reference, prediction, rng).is_empty
    assert not robot("cvpr25").annotate(reference, reference, prediction, rng).is_empty


def test_cvpr25_per_round_clicks_the_largest_components_in_turn_and_paints_like_the_other_rules():
    reference, prediction = split_cube(3)  # one 343-voxel mixed component (x 1..7)
    prediction[0:3, 0:3, 9] = 1  # a 9-voxel false component, not touching the cube
    [(a, la), (b, lb)], out = clicks("cvpr25", reference, prediction, per_round=2)
    assert a == (4, 4, 4) and la == REMOVE
    assert b[2] == 9 and lb == REMOVE and prediction[b] and not reference[b]
    assert out.effort.clicks == 2 and out.effort.seconds == ClickTime().seconds(0, 0.0, out.effort.slices, 2)
    assert out.remove[a] and out.remove[b] and not out.add.any()
    assert not (out.remove & reference.astype(bool)).any()  # painted inside the error, as every rule


# --- the box prompt -------------------------------------------------------------------------------


def curved_organ() -> np.ndarray:
    """An organ on slices 2..6 whose section on its median slice (3) is narrower than elsewhere."""
    reference = np.zeros((12, 30, 30), np.uint8)
    reference[2, 3:27, 3:27] = 1  # 576 voxels
    reference[3, 12:18, 12:18] = 1  # the waist: 36 voxels, holding the median (606th of 1212) voxel
    reference[4:7, 10:20, 5:25] = 1  # 3 x 200 voxels
    return reference


def test_median_slice_is_the_slice_of_the_median_voxel():
    reference = curved_organ()
    z, _, _ = np.nonzero(reference)
    assert median_slice(reference) == z[len(z) // 2] == 3  # the challenge's z_indices[len // 2]
    assert median_slice(reference) != (2 + 6) // 2


def test_box_marks_nothing_inside_the_box_and_no_organ_voxel_without_jitter():
    reference = curved_organ()
    box = challenge_box(reference, np.random.default_rng(0))
    out = box_interaction(reference, np.random.default_rng(0))
    inside = np.zeros(reference.shape, bool)
    inside[box.z0 : box.z1, box.y0 : box.y1, box.x0 : box.x1] = True
    assert not (out.remove & inside).any()
    assert not (out.remove & reference.astype(bool)).any()
    assert not out.add.any()
    # the z range is the organ's, and outside it every voxel is marked
    zs = np.flatnonzero(reference.any(axis=(1, 2)))
    assert (box.z0, box.z1) == (zs[0], zs[-1] + 1)
    assert out.remove[: box.z0].all() and out.remove[box.z1 :].all()
    # on the middle slice the 2D box is the organ's tight box there
    ys, xs = np.nonzero(reference[box.z_mid])
    assert (box.y0, box.x0, box.y1, box.x1) == (ys.min(), xs.min(), ys.max() + 1, xs.max() + 1)
    assert out.remove[box.z_mid].sum() == reference[box.z_mid].size - inside[box.z_mid].sum()
    # extruding that 2D box over the z range would have marked organ as background
    assert (reference.astype(bool) & ~inside)[box.z0 : box.z1].any()


def test_box_with_the_challenges_outward_shift_still_marks_no_organ():
    reference = np.zeros((6, 512, 256), np.uint8)
    reference[1:5, 100:200, 50:120] = 1
    for seed in range(5):
        box = challenge_box(reference, np.random.default_rng(seed), shift_max=5)
        grow_y, grow_x = 100 - box.y0, 50 - box.x0
        assert grow_y == box.y1 - 200 and grow_x == box.x1 - 120
        assert grow_y == 2 * grow_x and 0 <= grow_x <= 5  # int(s * H / 256), int(s * W / 256)
        out = box_interaction(reference, np.random.default_rng(seed), shift_max=5)
        assert not (out.remove & reference.astype(bool)).any()


def test_box_jitter_is_reproducible_and_no_jitter_draws_nothing():
    reference = curved_organ()
    rng = np.random.default_rng(3)
    before = rng.bit_generator.state
    box_interaction(reference, rng)
    assert rng.bit_generator.state == before
    a = box_interaction(reference, np.random.default_rng(7), jitter_fraction=0.3)
    b = box_interaction(reference, np.random.default_rng(7), jitter_fraction=0.3)
    assert np.array_equal(a.remove, b.remove)
    assert challenge_box(reference, np.random.default_rng(7), 0.3).z0 == 2  # z range is never jittered


def test_box_effort_is_two_clicks_and_the_robot_matches_the_function():
    reference = curved_organ()
    time = ClickTime(seconds_per_click=2.0, seconds_per_slice=3.0, wait_seconds=1.0)
    out = BoxRobot(time=time).annotate(
        reference, reference, np.zeros_like(reference), np.random.default_rng(0)
    )
    ref = box_interaction(reference, np.random.default_rng(0), time=time)
    assert np.array_equal(out.remove, ref.remove)
    e = out.effort
    assert (e.clicks, e.strokes, e.slices, e.add_voxels) == (2, 0, 3, 0)
    assert e.seconds == 2 * 2.0 + 3 * 3.0 + 1.0
    assert e.voxels == e.remove_voxels == int(out.remove.sum())
    assert [s.is_click for s in out.strokes] == [True, True]


def test_box_as_large_as_the_volume_is_an_empty_interaction():
    reference = np.ones((3, 4, 5), np.uint8)
    assert box_interaction(reference, np.random.default_rng(0)).is_empty


# --- the prompts in native form (what a plug-in model receives) ----------------------------------


@pytest.mark.parametrize("rule", CLICK_RULES)
def test_clicks_ride_along_as_given_after_jitter_and_with_the_label_said(rule):
    reference, prediction = split_cube(3)
    prediction[0:3, 0:3, 9] = 1
    noisy = ClickRobot(
        clicks=ClickStyle(rule=rule, per_round=2, radius_voxels=0),
        policy=ClickPolicy(min_region_voxels=1),
        noise=ClickNoise(jitter_voxels=2.0, wrong_label_rate=0.5),
    )
    moved = relabelled = 0
    for seed in range(12):
        out = noisy.annotate(reference, reference, prediction, np.random.default_rng(seed))
        assert len(out.clicks) == len(out.strokes) == out.effort.clicks == 2 and out.box is None
        for click, stroke in zip(out.clicks, out.strokes):
            assert isinstance(click, Click) and click.label == stroke.label and click.zyx[0] == stroke.index
            # the voxel given is the one painted, with the label given (radius 0: that voxel alone)
            assert (out.add if click.label == ADD else out.remove)[click.zyx]
            moved += click.zyx != tuple(int(v) for v in stroke.path[0])
            relabelled += stroke.wrong_label
    assert moved and relabelled  # the jittered voxel, not the one aimed at; the label said, not meant
    # without noise the click is the voxel aimed at
    [(aimed, label)], out = clicks(rule, reference, prediction)
    assert out.clicks == (Click(aimed, label),)


def test_the_box_rides_along_and_scribbles_carry_no_native_prompt():
    reference = curved_organ()
    out = BoxRobot(shift_max=5).annotate(
        reference, reference, np.zeros_like(reference), np.random.default_rng(4)
    )
    box = challenge_box(reference, np.random.default_rng(4), shift_max=5)
    assert isinstance(out.box, SliceBox) and out.box == box and out.clicks == ()
    assert np.array_equal(out.remove, ~box.inside(reference.shape))
    from simulators import ScribbleRobot

    scribbles = ScribbleRobot().annotate(
        reference, reference, np.zeros_like(reference), np.random.default_rng(0)
    )
    assert not scribbles.is_empty and scribbles.clicks == () and scribbles.box is None


# ------------------------------------------------------------------------------------------ the presets


def preset_robot(protocol: str):
    """The robot a `protocol=...` preset composes (its defining rule is what the tests below check)."""
    from iunet_bench.tasks.config import compose_config

    return compose_config([f"protocol={protocol}"]).simulator.build()


def strokes_in(out, region: np.ndarray) -> int:
    return sum(bool(region[tuple(s.voxels.T)].all()) for s in out.strokes)


def test_deepigeos_gives_ceil_n_over_100_strokes_per_component_and_none_under_30_voxels():
    reference = np.zeros((12, 24, 24), np.uint8)
    big = np.zeros_like(reference, bool)
    big[2:7, 2:12, 2:7] = True  # 250 voxels over 5 slices: ceil(250 / 100) = 3 strokes
    small = np.zeros_like(reference, bool)
    small[8:11, 15:18, 15:18] = True
    small[10, 17, 17] = False  # 26 voxels: below DeepIGeoS's 30, no stroke
    reference[big | small] = 1
    out = preset_robot("deepigeos").annotate(
        reference, reference, np.zeros_like(reference), np.random.default_rng(0)
    )
    assert strokes_in(out, big) == 3 and strokes_in(out, small) == 0 and len(out.strokes) == 3


def test_davis_scribbles_the_worst_slice_first():
    """A thin column has more voxels, a flat plate the larger cross-section: the user who scrolls to the
    worst slice scribbles the plate."""
    reference = np.zeros((24, 24, 24), np.uint8)
    column = np.zeros_like(reference, bool)
    column[2:22, 3:6, 3:6] = True  # 180 voxels, 9 per slice
    plate = np.zeros_like(reference, bool)
    plate[11, 12:22, 12:22] = True  # 100 voxels, all on one slice
    reference[column | plate] = 1
    out = preset_robot("davis").annotate(
        reference, reference, np.zeros_like(reference), np.random.default_rng(0)
    )
    assert len(out.strokes) == 1 and strokes_in(out, plate) == 1


def test_ritm_clicks_the_deepest_error_voxel():
    reference = np.zeros((16, 16, 16), np.uint8)
    prediction = np.zeros_like(reference)
    reference[2:9, 2:9, 2:9] = 1  # a 7-cube miss: deepest voxel its centre (5, 5, 5)
    prediction[11:14, 11:14, 11:14] = 1  # a 3-cube false positive, shallower
    out = preset_robot("ritm").annotate(reference, reference, prediction, np.random.default_rng(0))
    ((z, y, x),) = [tuple(int(v) for v in s.path[0]) for s in out.strokes]
    assert (z, y, x) == (5, 5, 5) and out.strokes[0].label == ADD


def test_every_protocol_sets_its_robot_rounds_and_measure():
    from iunet_bench.tasks.config import compose_config

    expected = {  # protocol: (robot, rounds, first prompt, time budget)
        "iunet": ("scribble_ideal", 10, "none", 480.0),
        "ritm": ("click_ritm", 20, "none", 480.0),
        "cvpr25": ("click_cvpr25", 6, "box", 480.0),
        "deepigeos": ("scribble_deepigeos", 10, "none", 480.0),
        "davis": ("scribble_davis", 8, "none", 240.0),
    }
    for name, (robot_name, rounds, first, budget) in expected.items():
        c = compose_config([f"protocol={name}"])
        assert (c.simulator.name, c.session.rounds, c.protocol.first, c.protocol.time_budget_s) == (
            robot_name,
            rounds,
            first,
            budget,
        ), name
        assert c.protocol.name == name and c.interact.accumulate and c.session.target_dsc is None
    # a robot named on the command line wins over the protocol's
    assert compose_config(["protocol=ritm", "simulator=click_center"]).simulator.name == "click_center"
