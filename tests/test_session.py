"""The round loop with a real robot and the no-learning `paste` refiner (no TensorFlow, fast)."""

import zlib

import numpy as np
import pytest
from scipy import ndimage as ndi

from iunet_bench.core import metrics
from iunet_bench.core.rng import derive_rng
from iunet_bench.interactive.base import Refinement
from iunet_bench.interactive.classic import PasteRefiner
from iunet_bench.session.loop import run_session
from simulators import make_annotator
from tests.conftest import group


@pytest.fixture(scope="module")
def volume():
    from iunet_bench.data import build_dataset

    ds = build_dataset(group("data", "data.phantom.n_cases=4"))
    vols, failures = ds.volumes(ds.case_ids[:1])
    assert not failures
    return vols[0]


def wrong_prediction(label: np.ndarray) -> np.ndarray:
    """A realistic miss: eroded, shifted by two voxels along x, with a false blob."""
    pred = np.roll(ndi.binary_erosion(label, iterations=1), 2, axis=2)
    z, y, x = (s // 4 for s in label.shape)
    pred[z : z + 2, y : y + 4, x : x + 4] = True
    return pred.astype(np.uint8)


def ideal_robot():
    return make_annotator(group("simulator", "simulator=scribble_ideal"))


def test_ideal_scribbles_pasted_in_never_lower_dsc_and_curves_have_every_round(volume):
    initial = wrong_prediction(volume.label)
    records = run_session(volume, initial, ideal_robot(), PasteRefiner(), rounds=6, seed=0)
    curve = [r.dsc for r in records]
    assert [r.round for r in records] == list(range(7))
    assert curve[0] == pytest.approx(metrics.dsc(volume.label, initial))
    assert all(b >= a for a, b in zip(curve, curve[1:]))
    active = [r for r in records[1:] if not r.stopped]
    assert active and all(r.effort["strokes"] > 0 for r in active)
    assert curve[-1] > curve[0]


def test_a_session_without_surface_metrics_has_the_same_curve_and_no_hd95(volume):
    """surfaces=False (the painter's own session) measures DSC and volume ratio only: same curve, same
    robot, no HD95/NSD computed."""
    initial = wrong_prediction(volume.label)
    full = run_session(volume, initial, ideal_robot(), PasteRefiner(), rounds=4, seed=3)
    lean = run_session(volume, initial, ideal_robot(), PasteRefiner(), rounds=4, seed=3, surfaces=False)
    assert [r.dsc for r in lean] == [r.dsc for r in full]
    assert [r.volume_ratio for r in lean] == [r.volume_ratio for r in full]
    assert np.isfinite([r.hd95 for r in full]).all() and np.isnan([r.hd95 for r in lean]).all()
    assert np.isnan([r.nsd for r in lean]).all()


def test_session_stops_at_target_and_carries_the_curve_forward(volume):
    initial = wrong_prediction(volume.label)
    target = metrics.dsc(volume.label, initial) + 0.01
    records = run_session(volume, initial, ideal_robot(), PasteRefiner(), rounds=8, seed=0, target_dsc=target)
    first_hit = next(r.round for r in records if r.dsc >= target)
    assert first_hit < 8
    after = records[first_hit + 1 :]
    assert after and all(r.stopped and r.dsc == records[first_hit].dsc for r in after)
    assert all(r.effort == {} for r in after)  # no effort is spent once the user is done


def test_perfect_prediction_needs_no_interaction(volume):
    records = run_session(volume, volume.label.copy(), ideal_robot(), PasteRefiner(), rounds=3, seed=0)
    assert [r.dsc for r in records] == [1.0] * 4
    assert all(r.stopped for r in records[1:])


class RecordingRobot:
    """The ideal robot, noting the state of the generator each round hands it (before it draws)."""

    def __init__(self):
        self.robot, self.states = ideal_robot(), []

    def annotate(self, image, reference, prediction, rng, spacing=(1.0, 1.0, 1.0)):
        self.states.append(rng.bit_generator.state)
        return self.robot.annotate(image, reference, prediction, rng, spacing=spacing)


class LossyPaste(PasteRefiner):
    """paste, reporting made-up losses per round: the session must log what `refine` returned."""

    def refine(self, interaction):
        self.rounds = getattr(self, "rounds", 0) + 1
        return Refinement(super().refine(interaction).prediction, (1.0 / self.rounds, 0.5 / self.rounds))


def test_round_r_draws_from_seed_case_and_round_only(volume):
    """The robot of round r gets `derive_rng(seed, case id, r)`, the numbers of the former
    `session.case_rng` (SeedSequence of seed, CRC-32 of the case id, round): a case's curve never depends
    on which cases ran before it."""
    initial = wrong_prediction(volume.label)
    robot = RecordingRobot()
    records = run_session(volume, initial, robot, PasteRefiner(), rounds=3, seed=7)
    rounds = [r.round for r in records[1:] if not r.stopped]
    assert len(robot.states) == len(rounds) >= 2
    for r, state in zip(rounds, robot.states):
        assert state == derive_rng(7, volume.case_id, r).bit_generator.state
        former = np.random.default_rng(np.random.SeedSequence([7, zlib.crc32(volume.case_id.encode()), r]))
        assert state == former.bit_generator.state
    again = RecordingRobot()
    run_session(volume, initial, again, PasteRefiner(), rounds=3, seed=7)
    assert again.states == robot.states
    other = RecordingRobot()
    run_session(volume, initial, other, PasteRefiner(), rounds=3, seed=8)
    assert other.states[0] != robot.states[0]


def test_the_record_of_a_round_holds_the_losses_its_refinement_returned(volume):
    initial = wrong_prediction(volume.label)
    seen = []
    records = run_session(
        volume,
        initial,
        ideal_robot(),
        LossyPaste(),
        rounds=3,
        seed=0,
        on_round=lambda rec, *_: seen.append(rec),
    )
    active = [r for r in records[1:] if not r.stopped]
    assert active and records[0].losses == []
    assert [r.losses for r in active] == [[1.0 / k, 0.5 / k] for k in range(1, len(active) + 1)]
    assert seen == [r for r in records if not r.stopped]  # round 0 too
    assert active[0].row()["loss_last"] == 0.5
    plain = run_session(volume, initial, ideal_robot(), PasteRefiner(), rounds=3, seed=0)
    assert [r.dsc for r in plain] == [r.dsc for r in records]  # the losses change nothing else
    assert all(r.losses == [] for r in plain)


class _Still:
    """A refiner that ignores the user: every round returns the prediction it started from."""

    name = "still"

    def start(self, volume, initial_prediction):
        self.prediction = initial_prediction.astype(np.uint8)

    def refine(self, interaction):
        from iunet_bench.interactive.base import Refinement

        return Refinement(self.prediction.copy())


def test_scribble_agreement_against_hand_counted_voxels():
    pred = np.zeros((1, 4, 4), np.uint8)
    pred[0, :2] = 1  # top half foreground
    add = np.zeros_like(pred, bool)
    remove = np.zeros_like(pred, bool)
    add[0, 0, :3] = True  # 3 add voxels, all on foreground: agree
    add[0, 3, 0] = True  # 1 add voxel on background: disagree
    remove[0, 1, 0] = True  # 1 remove voxel on foreground: disagree
    remove[0, 2, :2] = True  # 2 remove voxels on background: agree
    assert metrics.scribble_agreement(pred, add, remove) == pytest.approx(5 / 7)
    assert np.isnan(metrics.scribble_agreement(pred, add & False, remove & False))


def test_the_paste_floor_of_paste_is_paste_itself_and_pasting_always_honours_the_scribbles(volume):
    from iunet_bench.analysis.results import honesty, honesty_curves

    initial = wrong_prediction(volume.label)
    records = run_session(
        volume, initial, ideal_robot(), PasteRefiner(), rounds=5, seed=0, floor=PasteRefiner()
    )
    active = [r for r in records[1:] if not r.stopped]
    assert active
    assert all(r.floor_dsc == r.dsc for r in records)
    assert all(r.agreement == 1.0 and r.agreement_all == 1.0 for r in active)
    assert all(0 < r.changed_voxels <= r.effort["voxels"] for r in active)  # only scribbled voxels change
    summary = honesty(records)
    assert summary["rounds_honoured"] == 1.0 and summary["dsc_gain_over_floor"] == 0.0
    assert summary["dsc_auc_over_floor"] == 0.0 and summary["dsc_drop_rounds"] == 0.0
    curves = honesty_curves(records, 5)
    assert curves["dsc_gain_over_floor"] == [0.0] * 6 and np.isnan(curves["scribble_agreement"][0])


def test_a_method_that_ignores_the_user_agrees_with_no_scribbled_voxel_and_loses_to_the_floor(volume):
    from iunet_bench.analysis.results import honesty

    initial = wrong_prediction(volume.label)
    records = run_session(volume, initial, ideal_robot(), _Still(), rounds=4, seed=0, floor=PasteRefiner())
    active = [r for r in records[1:] if not r.stopped]
    # the noiseless robot scribbles only where the prediction is wrong, so a method that changes nothing
    # leaves every scribbled voxel with the label the user corrected
    assert active and all(r.agreement == 0.0 and r.changed_voxels == 0 for r in active)
    assert all(r.dsc == records[0].dsc for r in records)
    assert records[-1].floor_dsc > records[-1].dsc
    summary = honesty(records)
    assert summary["rounds_honoured"] == 0.0 and summary["dsc_gain_over_floor"] < 0


def test_without_a_floor_or_a_painter_no_opponent_metric_is_made_up(volume):
    from iunet_bench.analysis.results import curve_rows, honesty

    records = run_session(
        volume, wrong_prediction(volume.label), ideal_robot(), PasteRefiner(), rounds=2, seed=0
    )
    assert all(np.isnan(r.floor_dsc) and np.isnan(r.painter_dsc) for r in records)
    assert not {k for k in honesty(records) if "floor" in k or "painter" in k}
    names = {k for k, _, _ in curve_rows(records, 2)}
    assert not {"dsc_floor", "dsc_painter"} & names and "scribble_agreement" in names
