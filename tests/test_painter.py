"""The painter: a user who only paints, in a session of its own, the opponent of the job's headline (no
TensorFlow, fast)."""

import numpy as np
import pytest

from iunet_bench.analysis.results import against_painter, format_table, honesty, honesty_curves
from iunet_bench.interactive.base import CurrentPrediction, Refinement
from iunet_bench.interactive.classic import PasteRefiner
from iunet_bench.session.loop import painter_curve, run_session
from iunet_bench.session.records import RoundRecord
from tests.test_session import _Still, ideal_robot, volume, wrong_prediction  # noqa: F401 (fixture)


def test_the_painter_is_paste_run_as_a_method_and_not_the_in_run_floor(volume):  # noqa: F811
    initial = wrong_prediction(volume.label)
    painted = painter_curve(volume, initial, ideal_robot(), PasteRefiner(), rounds=5, seed=3)
    alone = run_session(volume, initial, ideal_robot(), PasteRefiner(), rounds=5, seed=3)
    assert painted == [r.dsc for r in alone]  # exactly `interact=paste` as a method, same robot and seed
    assert painted[-1] > painted[0]

    # a method that ignores the user: the floor pastes each round's strokes (drawn for the method's
    # unchanged errors) into its own prediction, while the painter's robot answers the painter's own errors
    still = run_session(volume, initial, ideal_robot(), _Still(), rounds=5, seed=3, floor=PasteRefiner())
    floor = [r.floor_dsc for r in still]
    assert floor != painted
    assert painted[-1] > still[-1].dsc


def _records(method_final: list[float], painter_final: list[float]) -> list[RoundRecord]:
    """Two-round curves per case: round 0 at 0.5 for both, round 1 at the given finals."""
    out = []
    for i, (m, p) in enumerate(zip(method_final, painter_final)):
        out.append(RoundRecord(f"c{i}", 0, 0.5, 1.0, painter_dsc=0.5, floor_dsc=0.5))
        out.append(RoundRecord(f"c{i}", 1, m, 1.0, painter_dsc=p, floor_dsc=0.5))
    return out


def test_against_the_painter_counts_wins_and_pairs_the_cases():
    # six cases, the method ahead in all: the exact two-sided signed-rank p is 2 / 2**6
    records = _records([0.8, 0.81, 0.7, 0.9, 0.75, 0.6], [0.7, 0.8, 0.69, 0.85, 0.5, 0.55])
    result = against_painter(records)
    assert result["painter_case_wins"] == 1.0
    assert result["painter_p_final"] == pytest.approx(2 / 64)
    assert result["painter_p_auc"] == pytest.approx(2 / 64)  # AUC of a 2-point curve moves with its end
    # ahead in 2, behind in 1, one tie (counted half): 2.5 of 4
    mixed = against_painter(_records([0.8, 0.8, 0.6, 0.7], [0.7, 0.7, 0.7, 0.7]))
    assert mixed["painter_case_wins"] == pytest.approx(2.5 / 4)
    one = against_painter(_records([0.8], [0.7]))
    assert np.isnan(one["painter_p_final"])  # one case: no test, never a made-up p


def test_the_headline_and_the_curves_compare_against_the_painter():
    records = _records([0.8, 0.81, 0.7, 0.9, 0.75, 0.6], [0.7, 0.8, 0.69, 0.85, 0.5, 0.55])
    m = honesty(records)
    method_final, painter_final = (
        np.mean([0.8, 0.81, 0.7, 0.9, 0.75, 0.6]),
        np.mean([0.7, 0.8, 0.69, 0.85, 0.5, 0.55]),
    )
    assert m["painter_dsc_final"] == pytest.approx(painter_final)
    assert m["dsc_gain_over_painter"] == pytest.approx(method_final - painter_final)
    assert m["dsc_gain_over_floor"] == pytest.approx(method_final - 0.5)
    curves = honesty_curves(records, 1)
    assert curves["dsc_painter"] == pytest.approx([0.5, painter_final])

    from iunet_bench.analysis.results import Summary, summarise

    summary = Summary("run", [0.5, method_final], summarise(records), curves=curves, round_seconds=[0, 1])
    text = format_table(summary)
    assert f"painter {painter_final:.3f}" in text and "p 0.031" in text and "ahead in 100% of cases" in text
    assert "in-run floor" in text


class _Forgetful(CurrentPrediction, _Still):
    """A refiner that ignores the user and starts from whatever it is told the user kept (`accept`)."""


class _Wrecker(PasteRefiner):
    """Pastes the strokes in, except in round 2, where it returns an empty mask."""

    def start(self, case, initial_prediction):
        super().start(case, initial_prediction)
        self.rounds = 0

    def refine(self, interaction):
        out = super().refine(interaction)
        self.rounds += 1
        return Refinement(np.zeros_like(out.prediction)) if self.rounds == 2 else out


def test_undo_keeps_the_painted_prediction_when_the_method_makes_it_worse(volume):  # noqa: F811
    initial = wrong_prediction(volume.label)
    painted = painter_curve(volume, initial, ideal_robot(), PasteRefiner(), rounds=5, seed=3)

    # a method that ignores the user, undone every round: the user ends up painting, stroke for stroke
    kept = {}
    ignored = _Forgetful()
    records = run_session(
        volume, initial, ideal_robot(), ignored, rounds=5, seed=3, undo=True,
        on_round=lambda rec, pred, _: kept.update(last=pred),
    )  # fmt: skip
    active = [r for r in records if r.round > 0 and not r.stopped]
    assert active and all(r.undone for r in active)
    assert [r.dsc for r in records] == painted
    assert np.array_equal(ignored.prediction, kept["last"])  # the refiner was told what the user kept
    assert honesty(records)["rounds_undone"] == 1.0

    # a method that wrecks round 2: without undo DSC falls there, with undo that round alone is undone
    plain = run_session(volume, initial, ideal_robot(), _Wrecker(), rounds=5, seed=3)
    assert plain[2].dsc == 0.0 and all(r.undone is None for r in plain)  # no undo offered
    assert "rounds_undone" not in honesty(plain)
    undone = run_session(volume, initial, ideal_robot(), _Wrecker(), rounds=5, seed=3, undo=True)
    assert undone[0].undone is None  # round 0: nothing to undo
    assert [r.undone for r in undone[1:]] == [False, True, False, False, False]
    curve = [r.dsc for r in undone]
    assert all(b >= a for a, b in zip(curve, curve[1:]))
    assert honesty(undone)["rounds_undone"] == pytest.approx(1 / 5)

    from iunet_bench.analysis.results import Summary, summarise

    summary = Summary("run", curve, summarise(undone), round_seconds=[0] * 6)
    assert "the user undid 20% of rounds (session.undo)" in format_table(summary)


def test_undo_never_touches_a_method_that_does_not_lower_dsc(volume):  # noqa: F811
    initial = wrong_prediction(volume.label)
    plain = run_session(volume, initial, ideal_robot(), PasteRefiner(), rounds=5, seed=3)
    undo = run_session(volume, initial, ideal_robot(), PasteRefiner(), rounds=5, seed=3, undo=True)
    assert [r.dsc for r in undo] == [r.dsc for r in plain]
    assert [r.undone for r in undo if r.round > 0 and not r.stopped] == [False] * 5
    assert honesty(undo)["rounds_undone"] == 0.0  # offered and never taken: 0%, not absent
