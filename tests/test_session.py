"""The round loop with a real robot and the no-learning `paste` refiner (no TensorFlow, fast)."""

import numpy as np
import pytest
from scipy import ndimage as ndi

from iunet_bench import metrics
from iunet_bench.interactive.classic import PasteRefiner
from iunet_bench.session import run_session
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
