"""The pixel classifier that federated learning trains (fairimage.model.federation.pixels): its features
are what they say, and its training learns."""

from __future__ import annotations

import numpy as np
import pytest

from fairimage.model.federation import pixels


def test_features_are_window_means_of_the_scaled_plane() -> None:
    rng = np.random.default_rng(0)
    plane = rng.integers(0, 4000, (20, 30)).astype(np.uint16)
    found = pixels.features(plane).reshape(20, 30, len(pixels.FEATURES))
    low, high = np.percentile(plane.astype(np.float64), (1, 99))
    scaled = (plane - low) / (high - low)
    padded = np.pad(scaled, 4, mode="edge")
    for radius, column in ((1, 1), (2, 2), (4, 3)):
        side = 2 * radius + 1
        for y, x in ((0, 0), (7, 11), (19, 29)):
            window = padded[y + 4 - radius : y + 4 - radius + side, x + 4 - radius : x + 4 - radius + side]
            assert found[y, x, column] == pytest.approx(window.mean(), abs=1e-5)
    assert np.allclose(found[..., 0], scaled, atol=1e-6)
    assert np.allclose(found[..., 5], found[..., 1] - found[..., 3], atol=1e-5)
    with pytest.raises(ValueError, match="non-empty 2D"):
        pixels.features(np.zeros((3, 4, 5)))


def test_training_learns_and_weights_are_checked() -> None:
    rng = np.random.default_rng(1)
    mask = np.zeros((64, 64), np.uint8)
    mask[10:30, 10:30] = mask[40:60, 35:55] = 1
    plane = (200 + rng.normal(0, 80, mask.shape) + 400.0 * mask).astype(np.float32)
    x, y = pixels.features(plane), pixels.targets(mask)
    start = pixels.score(np.zeros(pixels.WEIGHTS), x, y)
    trained = pixels.train(np.zeros(pixels.WEIGHTS), x, y, 200, 2.0)
    after = pixels.score(trained, x, y)
    assert after.loss < start.loss and after.accuracy > 0.95
    assert (start + after).pixels == 2 * x.shape[0]
    with pytest.raises(ValueError, match="finite weights"):
        pixels.predict([1.0, 2.0], x)
    assert len(pixels.sample(10, 1000, rng)) == 10 and len(set(pixels.sample(10, 1000, rng))) == 10
