"""The weight map of paper section 2.6 and its geodesic distance (numpy / scikit-image only)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from pydantic import ValidationError

from iunet_bench.interactive.config import GeodesicConfig, WeightsConfig
from iunet_bench.interactive.weights import (
    Geodesic,
    geodesic_distance,
    uncertain_band,
    weight_map,
)

SPACING = (2.0, 1.0, 0.5)


def noisy_image(seed: int = 0, shape=(6, 20, 24)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    image = np.full(shape, -0.5, np.float32)
    image[:, 6:14, 8:18] = 0.5  # a bright box: an edge the geodesic distance must feel
    return image + rng.normal(0, 0.05, shape).astype(np.float32)


def two_strokes(shape=(6, 20, 24)) -> np.ndarray:
    s = np.zeros(shape, bool)
    s[3, 10, 10:15] = True  # inside the box
    s[2, 2, 3:20] = True  # outside
    return s


def test_weight_map_has_exactly_the_configured_values_where_they_belong():
    image, scribbles = noisy_image(), two_strokes()
    weights = WeightsConfig(scribble=5.0, uncertain=0.25)
    geodesic = GeodesicConfig(threshold=0.3, intensity_weight=4.0)
    w = weight_map(image, scribbles, SPACING, weights, geodesic)

    d = geodesic_distance(image, scribbles, SPACING, geodesic.intensity_weight)
    band = (d / d.max() < geodesic.threshold) & ~scribbles
    assert 0 < band.sum() < band.size - scribbles.sum()  # a real band, not nothing and not everything
    assert w.dtype == np.float32
    np.testing.assert_array_equal(w[scribbles], 5.0)
    np.testing.assert_array_equal(w[band], 0.25)
    np.testing.assert_array_equal(w[~band & ~scribbles], 1.0)


def test_the_papers_weights_are_3_on_scribbles_and_0_in_the_band():
    """The paper's weights, read from `interact=iunet_paper` (the default raises the scribbles' to 30)."""
    preset = Path(__file__).parents[1] / "conf" / "interact" / "iunet_paper.yaml"
    spec = yaml.safe_load(preset.read_text(encoding="utf-8"))
    paper, geodesic = WeightsConfig(**spec["weights"]), GeodesicConfig(**spec["geodesic"])
    assert (paper.scribble, paper.uncertain, geodesic.threshold) == (3.0, 0.0, 0.2)
    image, scribbles = noisy_image(1), two_strokes()
    w = weight_map(image, scribbles, SPACING, paper, geodesic)
    assert set(np.unique(w)) == {0.0, 1.0, 3.0}
    np.testing.assert_array_equal(w == 3.0, scribbles)
    np.testing.assert_array_equal(w == 0.0, uncertain_band(image, scribbles, SPACING, geodesic))


def test_no_band_without_scribbles_or_with_threshold_zero():
    image, scribbles = noisy_image(), two_strokes()
    assert (
        weight_map(image, np.zeros_like(scribbles), SPACING, WeightsConfig(), GeodesicConfig()) == 1
    ).all()
    w = weight_map(image, scribbles, SPACING, WeightsConfig(), GeodesicConfig(threshold=0.0))
    np.testing.assert_array_equal(w, np.where(scribbles, WeightsConfig().scribble, 1.0))


def test_geodesic_distance_is_euclidean_in_millimetres_without_intensity_term():
    image = noisy_image()
    seed = np.zeros(image.shape, bool)
    seed[3, 10, 2] = True
    d = geodesic_distance(image, seed, SPACING, intensity_weight=0.0)
    np.testing.assert_allclose(d[3, 10, 2:12], 0.5 * np.arange(10), atol=1e-9)  # along x: 0.5 mm per voxel
    np.testing.assert_allclose(d[0:4, 10, 2], 2.0 * np.arange(3, -1, -1), atol=1e-9)  # along z: 2 mm


def test_geodesic_distance_grows_across_an_intensity_edge():
    image = np.zeros((1, 1, 30), np.float32)
    image[..., 15:] = 1.0  # a step edge between x = 14 and x = 15
    seed = np.zeros(image.shape, bool)
    seed[0, 0, 0] = True
    flat = geodesic_distance(image, seed, (1.0, 1.0, 1.0), intensity_weight=0.0)[0, 0]
    edged = geodesic_distance(image, seed, (1.0, 1.0, 1.0), intensity_weight=10.0)[0, 0]
    np.testing.assert_allclose(edged[:13], flat[:13])  # the same before the edge
    assert edged[20] - flat[20] > 5.0  # the edge adds length beyond it


def test_a_geodesic_kept_per_case_gives_bit_identical_distances_and_weights():
    """The refiners build one `Geodesic` per case (cost map and path graph) and reuse it every round."""
    image, both = noisy_image(2), two_strokes()
    one = np.zeros_like(both)
    one[3, 10, 10:15] = True
    weights, cfg = WeightsConfig(), GeodesicConfig(intensity_weight=6.0)
    cached = Geodesic(image, SPACING, cfg.intensity_weight)
    assert cached.matches(image, SPACING, cfg) and not cached.matches(image, (1.0, 1.0, 1.0), cfg)
    first = cached.distance(both)
    for seeds in (one, both, one):  # reuse after other seeds; an earlier result is not overwritten
        np.testing.assert_array_equal(cached.distance(seeds), geodesic_distance(image, seeds, SPACING, 6.0))
        np.testing.assert_array_equal(
            weight_map(image, seeds, SPACING, weights, cfg, cached),
            weight_map(image, seeds, SPACING, weights, cfg),
        )
    np.testing.assert_array_equal(first, geodesic_distance(image, both, SPACING, 6.0))
    with pytest.raises(ValueError, match="another image, spacing or weight"):
        weight_map(image, both, SPACING, weights, GeodesicConfig(intensity_weight=1.0), cached)
    with pytest.raises(ValueError, match="another image, spacing or weight"):
        uncertain_band(image[:, :, :-1], both[:, :, :-1], SPACING, cfg, cached)


@pytest.mark.parametrize("threshold", [-0.1, 1.5])
def test_threshold_outside_unit_interval_is_rejected(threshold):
    """The band's threshold is on a distance normalised to [0, 1]; the schema refuses anything else (the
    job's messages, naming `interact.geodesic.threshold`, are tested in tests/test_config.py)."""
    with pytest.raises(ValidationError, match="threshold"):
        GeodesicConfig(threshold=threshold)
