"""A pixel classifier small enough to train where the data are and to average between nodes: logistic
regression of "is this pixel in the label (foreground)?" on a few local features of the plane (its
intensity, box means at three radii, the local spread and a difference of means), as ilastik-style
pixel classification does with many more. Pure arithmetic on arrays: the sandbox reads the pixels, the
coordinator averages the weights (Flower's FedAvg), a user applies the model with ``predict``.

Every plane is scaled by its own 1st and 99th percentiles first, so that nodes whose cameras differ in gain
still learn one model."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

Weights = Sequence[float] | np.ndarray

FEATURES = ("intensity", "mean_r1", "mean_r2", "mean_r4", "spread_r2", "mean_r1_minus_r4")
WEIGHTS = len(FEATURES) + 1  # one per feature, then the bias


def features(plane: np.ndarray) -> np.ndarray:
    """One row of FEATURES per pixel of a 2D plane, in row-major order, as float32."""
    if plane.ndim != 2 or 0 in plane.shape:
        raise ValueError(f"a plane is a non-empty 2D array, not shape {plane.shape}")
    scaled = _scaled(plane.astype(np.float64))
    means = {radius: _box_mean(scaled, radius) for radius in (1, 2, 4)}
    spread = np.sqrt(np.maximum(_box_mean(scaled * scaled, 2) - means[2] ** 2, 0.0))
    columns = (scaled, means[1], means[2], means[4], spread, means[1] - means[4])
    return np.stack([column.ravel() for column in columns], axis=1).astype(np.float32)


def _scaled(plane: np.ndarray) -> np.ndarray:
    low, high = np.percentile(plane, (1, 99))
    return (plane - low) / (high - low if high > low else 1.0)


def _box_mean(plane: np.ndarray, radius: int) -> np.ndarray:
    """The mean of the (2r+1)^2 window around each pixel, the edges repeated (an integral image)."""
    padded = np.pad(plane, radius + 1, mode="edge")
    total = padded.cumsum(axis=0).cumsum(axis=1)
    side = 2 * radius + 1
    height, width = plane.shape
    window = (
        total[side : side + height, side : side + width]
        - total[:height, side : side + width]
        - total[side : side + height, :width]
        + total[:height, :width]
    )
    return window / (side * side)


def targets(mask: np.ndarray) -> np.ndarray:
    """1 where the label has an object, 0 for background, in the order of ``features``."""
    return (mask.ravel() > 0).astype(np.float32)


def sample(count: int, available: int, rng: np.random.Generator) -> np.ndarray:
    """Which of ``available`` pixels to learn from: ``count`` of them at most, chosen without repeats."""
    if available <= count:
        return np.arange(available)
    return np.sort(rng.choice(available, size=count, replace=False))


def train(weights: Weights, x: np.ndarray, y: np.ndarray, epochs: int, learning_rate: float) -> np.ndarray:
    """``epochs`` steps of full-batch gradient descent on the mean log loss, from ``weights``."""
    w = _checked(weights)
    if len(x) == 0:
        return w
    design = np.hstack([x.astype(np.float64), np.ones((len(x), 1))])
    for _ in range(epochs):
        w = w - learning_rate * design.T @ (_sigmoid(design @ w) - y) / len(x)
    return w


def predict(weights: Weights, x: np.ndarray) -> np.ndarray:
    """The probability that each row's pixel is foreground."""
    w = _checked(weights)
    return _sigmoid(x.astype(np.float64) @ w[:-1] + w[-1])


@dataclass(frozen=True)
class Score:
    pixels: int
    correct: int
    loss_sum: float  # summed log loss, so that scores of several planes add up

    def __add__(self, other: Score) -> Score:
        return Score(self.pixels + other.pixels, self.correct + other.correct, self.loss_sum + other.loss_sum)

    @property
    def accuracy(self) -> float:
        return self.correct / self.pixels if self.pixels else float("nan")

    @property
    def loss(self) -> float:
        return self.loss_sum / self.pixels if self.pixels else float("nan")


def score(weights: Weights, x: np.ndarray, y: np.ndarray) -> Score:
    """How well the model classifies these pixels (threshold 0.5)."""
    p = np.clip(predict(weights, x), 1e-7, 1 - 1e-7)
    loss = -(y * np.log(p) + (1 - y) * np.log(1 - p))
    return Score(len(y), int(((p >= 0.5) == (y >= 0.5)).sum()), float(loss.sum()))


def _checked(weights: Weights) -> np.ndarray:
    w = np.asarray(weights, dtype=np.float64).ravel()
    if w.shape != (WEIGHTS,) or not np.isfinite(w).all():
        raise ValueError(f"the classifier has {WEIGHTS} finite weights ({', '.join(FEATURES)}, bias)")
    return w


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))
