"""Analyses that go to the data: the node's allow-list (no arbitrary code runs), what each declares it
returns, and the rules its outputs must pass before they leave: aggregates only, every row saying how many
images it sums (``n``), and rows of fewer than ``k`` images suppressed (small-cell suppression), so that
no pixel and no single image's values leave a node that holds restricted data."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

MAX_ROWS = 1_000
MAX_WEIGHTS = 100_000
SUPPRESSED = "suppressed"


@dataclass(frozen=True)
class Parameter:
    kind: type
    default: Any
    help: str
    choices: tuple[str, ...] = ()  # where only these values are allowed
    low: float | None = None  # the smallest value allowed, where there is one
    high: float | None = None

    def allows(self, value: Any) -> bool:
        if self.choices and value not in self.choices:
            return False
        return (self.low is None or value >= self.low) and (self.high is None or value <= self.high)


@dataclass(frozen=True)
class Analysis:
    name: str
    summary: str
    returns: str  # "table" (rows of aggregates, each with its n) or "weights" (a model's, with n)
    parameters: dict[str, Parameter] = field(default_factory=dict)
    # One node's part of a federated training run that a coordinator leads: its weights leave each round,
    # so over restricted studies it needs approval of the plan before it starts, not a review after.
    federated: bool = False
    needs_labels: bool = False


ANALYSES = {
    analysis.name: analysis
    for analysis in (
        Analysis(
            "intensity_statistics",
            "per channel: how many images, the mean and spread of their mean intensities, their minimum and "
            "maximum (at a low pyramid level)",
            "table",
        ),
        Analysis(
            "image_counts",
            "how many images have each value of a field (dtype, dimensionality, channel count, split)",
            "table",
            {
                "by": Parameter(
                    str,
                    "dtype",
                    "the field: dtype, dimensionality, channels or split",
                    ("dtype", "dimensionality", "channels", "split"),
                )
            },
        ),
        Analysis(
            "train_pixel_classifier",
            "this node's part of a federated training run (Flower, FedAvg): a pixel classifier (logistic "
            "regression of the dataset's label, foreground against background) learns on the train split "
            "here; only its weights leave, each round, and its accuracy on the test split at the end",
            "weights",
            {
                "coordinator": Parameter(str, "", "HOST:PORT of the coordinator's Flower server"),
                "session": Parameter(str, "", "the run's session token, as the coordinator gave it"),
                "epochs": Parameter(
                    int, 20, "gradient steps per round, a whole number from 1 to 1000", low=1, high=1000
                ),
                "learning_rate": Parameter(
                    float, 1.0, "the step size, from 0.0001 to 100", low=1e-4, high=100
                ),
                "channel": Parameter(int, 0, "the channel to classify, from 0", low=0, high=10_000),
                "pixels": Parameter(
                    int, 4096, "pixels learnt from per plane, from 16 to 1000000", low=16, high=1e6
                ),
                "seed": Parameter(int, 0, "the seed of the pixels chosen"),
            },
            federated=True,
            needs_labels=True,
        ),
    )
}


class OutputError(ValueError):
    """What an analysis returned breaks the rules; nothing of it is released."""


def check_table(rows: Any, k: int) -> list[dict[str, Any]]:
    """A table's rows as they may leave: each a flat mapping of names to numbers or short strings with an
    integer ``n`` >= 0; rows of fewer than ``k`` images (but some) keep their key columns and lose their
    values, their ``n`` replaced by "suppressed"."""
    if not isinstance(rows, list) or len(rows) > MAX_ROWS:
        raise OutputError(f"a table is a list of at most {MAX_ROWS} rows")
    checked = []
    for row in rows:
        if not isinstance(row, dict) or not isinstance(row.get("n"), int) or row["n"] < 0:
            raise OutputError("every row of a table says how many images it sums, as an integer n")
        for name, value in row.items():
            if not isinstance(name, str) or not _scalar(value):
                raise OutputError(f"column {name!r}: a table holds numbers and short strings only")
        checked.append(_suppressed(row, k) if 0 < row["n"] < k else row)
    return checked


def check_weights(weights: Any, n: Any, k: int) -> list[float]:
    """A model's weights may leave when it learnt from at least ``k`` images."""
    if not isinstance(n, int) or n < k:
        raise OutputError(f"a model trained on fewer than {k} images does not leave this node")
    if not isinstance(weights, list) or len(weights) > MAX_WEIGHTS:
        raise OutputError(f"weights are a list of at most {MAX_WEIGHTS} numbers")
    if not all(isinstance(w, (int, float)) and math.isfinite(w) for w in weights):
        raise OutputError("weights are finite numbers")
    return [float(w) for w in weights]


def _scalar(value: Any) -> bool:
    if isinstance(value, str):
        return len(value) <= 200
    if isinstance(value, bool) or value is None:
        return True
    return isinstance(value, (int, float)) and math.isfinite(value)


def _suppressed(row: dict[str, Any], k: int) -> dict[str, Any]:
    """A row of too few images: its strings (the keys that say what it counts) stay, its numbers go."""
    kept = {name: value for name, value in row.items() if isinstance(value, str)}
    return {**kept, "n": SUPPRESSED, "note": f"fewer than {k} images"}
