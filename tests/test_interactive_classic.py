"""The non-learning comparison refiners (paste, random walker) and the scribble memory all refiners share."""

from __future__ import annotations

import numpy as np

from iunet_bench.core.metrics import dsc
from iunet_bench.data.case import Volume
from iunet_bench.interactive import Refinement, build_refiner
from iunet_bench.interactive.base import ScribbleMemory
from iunet_bench.interactive.classic import (
    BACKGROUND,
    FOREGROUND,
    PasteRefiner,
    RandomWalkerRefiner,
    random_walker_seeds,
)
from iunet_bench.interactive.config import GeodesicConfig, PasteInteract, RandomWalkerInteract
from iunet_bench.interactive.weights import Geodesic, uncertain_band
from simulators.interaction import Interaction

SHAPE = (8, 24, 24)
SPACING = (2.0, 1.0, 1.0)


def mask(*slices) -> np.ndarray:
    m = np.zeros(SHAPE, bool)
    m[slices] = True
    return m


def two_blobs(seed: int = 0) -> Volume:
    """Two bright boxes on a dark background with clear edges; the label is both boxes."""
    label = mask(slice(2, 6), slice(3, 10), slice(3, 10)) | mask(slice(2, 6), slice(13, 21), slice(12, 20))
    image = np.where(label, 0.6, -0.6).astype(np.float32)
    image += np.random.default_rng(seed).normal(0, 0.05, SHAPE).astype(np.float32)
    return Volume("blobs", image, label.astype(np.uint8), SPACING, (0, 0, 0, *SHAPE), SHAPE)


def test_scribble_memory_accumulates_and_a_later_opposite_stroke_wins():
    a, b = mask(4, 5, slice(2, 8)), mask(4, 5, slice(6, 12))
    memory = ScribbleMemory(SHAPE, accumulate=True)
    memory.update(Interaction(a, np.zeros(SHAPE, bool)))
    now = memory.update(Interaction(np.zeros(SHAPE, bool), b))
    np.testing.assert_array_equal(now.add, a & ~b)
    np.testing.assert_array_equal(now.remove, b)
    forgetful = ScribbleMemory(SHAPE, accumulate=False)
    forgetful.update(Interaction(a, np.zeros(SHAPE, bool)))
    now = forgetful.update(Interaction(np.zeros(SHAPE, bool), b))
    assert not now.add.any()
    np.testing.assert_array_equal(now.remove, b)


def test_paste_is_the_previous_prediction_with_scribbles_pasted_in():
    vol = two_blobs()
    prediction = vol.label.copy()
    prediction[2:6, 13:21, 12:20] = 0  # missed the second blob
    prediction[0, 0:3, 0:3] = 1  # and a false positive
    refiner = PasteRefiner(PasteInteract())
    refiner.start(vol, prediction)
    add, remove = mask(4, 16, slice(13, 18)), mask(0, 1, slice(0, 3))
    result = refiner.refine(Interaction(add, remove))
    assert isinstance(result, Refinement) and result.losses == ()  # no learning, no losses
    out = result.prediction
    expected = prediction.astype(bool) | add
    expected &= ~remove
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, expected.astype(np.uint8))
    second = refiner.refine(Interaction(mask(3, 16, slice(13, 18)), np.zeros(SHAPE, bool))).prediction
    assert second[4, 16, 13:18].all() and not second[0, 1, 0:3].any()  # earlier strokes stay


def test_random_walker_seeds_keep_the_prediction_except_the_contradicted_class_near_strokes():
    vol = two_blobs()
    prediction = mask(slice(2, 6), slice(3, 10), slice(3, 10))
    add = mask(4, 16, slice(13, 18))
    remove = mask(3, 6, slice(4, 8))
    cfg = RandomWalkerInteract(geodesic=GeodesicConfig(threshold=0.2, intensity_weight=10.0))
    labels = random_walker_seeds(vol.image, prediction, Interaction(add, remove), vol.spacing, cfg)
    near_add = uncertain_band(vol.image, add, vol.spacing, cfg.geodesic)
    near_remove = uncertain_band(vol.image, remove, vol.spacing, cfg.geodesic)
    assert (labels[add] == FOREGROUND).all() and (labels[remove] == BACKGROUND).all()
    strokes = add | remove
    free = (near_add & ~prediction) | (near_remove & prediction)
    assert free.any()
    assert (labels[free & ~strokes] == 0).all()
    kept = ~free & ~strokes
    np.testing.assert_array_equal(labels[kept], np.where(prediction[kept], FOREGROUND, BACKGROUND))
    cached = Geodesic(vol.image, vol.spacing, cfg.geodesic.intensity_weight)  # as the refiner keeps per case
    for _ in range(2):
        again = random_walker_seeds(vol.image, prediction, Interaction(add, remove), vol.spacing, cfg, cached)
        np.testing.assert_array_equal(again, labels)


def test_random_walker_recovers_a_missed_blob_from_one_stroke_and_beats_paste():
    vol = two_blobs()
    prediction = mask(slice(2, 6), slice(3, 10), slice(3, 10)).astype(np.uint8)  # only the first blob
    stroke = Interaction(mask(4, 16, slice(13, 19)), np.zeros(SHAPE, bool))
    paste = PasteRefiner(PasteInteract())
    paste.start(vol, prediction)
    floor = dsc(vol.label, paste.refine(stroke).prediction)
    for threshold, at_least in ((0.2, floor + 0.03), (0.4, 0.95)):  # a wider band frees the whole blob
        walker = RandomWalkerRefiner(RandomWalkerInteract(geodesic=GeodesicConfig(threshold=threshold)))
        walker.start(vol, prediction)
        result = walker.refine(stroke)
        assert isinstance(result, Refinement) and result.losses == ()
        out = result.prediction
        assert out.dtype == np.uint8
        assert dsc(vol.label, out) > at_least, threshold
        assert not out[vol.label == 0].any()  # no leak into the dark background


def test_random_walker_removes_a_false_blob_from_one_remove_stroke():
    vol = two_blobs()
    prediction = vol.label.copy()
    prediction[2:6, 3:10, 10:21] = 1  # a false positive: dark voxels beside the first blob
    stroke = Interaction(np.zeros(SHAPE, bool), mask(4, 6, slice(12, 20)))
    walker = RandomWalkerRefiner(RandomWalkerInteract())
    walker.start(vol, prediction)
    out = walker.refine(stroke).prediction
    assert dsc(vol.label, out) > dsc(vol.label, prediction) + 0.1


def test_build_refiner_makes_the_classic_methods_without_a_model():
    """paste and random_walker never read the model: `build_refiner` makes them from their schema alone."""
    for config, kind in (
        (PasteInteract(accumulate=False), PasteRefiner),
        (RandomWalkerInteract(beta=90.0), RandomWalkerRefiner),
    ):
        refiner = build_refiner(config, None)
        assert type(refiner) is kind and refiner.cfg is config and refiner.name == config.method
