"""The paper's second experiment, simulated: its statistics on hand-made segmentations, and the task end to
end on the smoke volumes."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from omegaconf import OmegaConf

from iunet_bench.core import metrics
from iunet_bench.tasks.observers import Segmentation, pairwise, summarise


def seg(case, observer, mode, mask, seconds=60.0, reference=None):
    ref = reference if reference is not None else mask
    return Segmentation(case, observer, mode, metrics.dsc(ref, mask), 1.0, seconds, mask)


def test_pairwise_agreement_and_the_summary_on_hand_made_masks():
    reference = np.zeros((4, 8, 8), np.uint8)
    reference[1:3, 2:6, 2:6] = 1
    grown = reference.copy()
    grown[1:3, 1:7, 2:6] = 1  # 48 voxels against 32
    segs = []
    for case in ("a", "b", "c"):
        segs.append(seg(case, -1, "automatic", np.zeros_like(reference), 0.0, reference))
        segs.append(seg(case, 0, "manual", reference, 600.0, reference))
        segs.append(seg(case, 1, "manual", grown, 400.0, reference))
        segs.append(seg(case, 0, "interactive", reference, 200.0, reference))
        segs.append(seg(case, 1, "interactive", reference, 300.0, reference))
    pairs = pairwise(segs, "manual")
    assert list(pairs) == [(0, 1)] and pairs[(0, 1)] == pytest.approx([2 * 32 / 80] * 3)
    m = summarise(segs)
    assert m["observer_dsc_manual"] == pytest.approx(0.8) and m["observer_dsc_interactive"] == pytest.approx(
        1.0
    )
    assert m["dsc_manual"] == pytest.approx((1.0 + 0.8) / 2) and m["dsc_automatic"] == 0.0
    # time reduction per (case, observer): 1 - 200/600 and 1 - 300/400, median of six values
    assert m["time_reduction_median"] == pytest.approx(np.median([2 / 3, 0.25] * 3))
    assert m["minutes_manual_median"] == pytest.approx(500 / 60) and m["pairs"] == 6


@pytest.mark.slow
def test_the_observers_task_runs_every_observer_both_ways_on_every_case(compose, tmp_path, monkeypatch):
    from iunet_bench.tasks.config import load_config
    from iunet_bench.tasks.observers import run
    from tests.conftest import shared_data_cache, shared_train_cache

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CI", "1")
    cfg = OmegaConf.to_container(
        compose("experiment=smoke", "task=observers", shared_data_cache(), shared_train_cache()), resolve=True
    )
    config = load_config(cfg)
    run_id, m, text = run(config)
    assert "assumptions" in text and "Table 1" in text and run_id
    rows = list(csv.DictReader(next(tmp_path.rglob("observers.csv")).open(encoding="utf-8")))
    cases = {r["case_id"] for r in rows}
    assert len(rows) == len(cases) * (2 * len(config.observers.manual) + 1)
    assert all(0.0 <= float(r["dsc"]) <= 1.0 for r in rows)
    manual = [float(r["seconds"]) for r in rows if r["mode"] == "manual"]
    assert all(s > 0 for s in manual)
    assert all(0.0 <= m[k] <= 1.0 for k in m if k.startswith("p_"))
    assert m["observer_dsc_manual_lo"] <= m["observer_dsc_manual"] <= m["observer_dsc_manual_hi"]
