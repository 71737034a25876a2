"""The plots of a plate's QC report, drawn with matplotlib into PNGs that the page embeds, so the report
reads offline and prints: a heatmap of the plate per measure, the focus distribution, the controls."""

from __future__ import annotations

import base64
import io
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display: the server draws into memory

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

SLOPE = "power_log_log_slope"
HEATMAPS = (("mean", "mean intensity"), ("power_log_log_slope", "focus (power log-log slope)"),
            ("percent_saturated", "% saturated"))  # fmt: skip


def plate_heatmaps(report: dict[str, Any], rows: list[str], columns: list[str]) -> list[tuple[str, str]]:
    """(title, PNG data URL) per channel and measure: each well's median over its fields."""
    pictures = []
    channels = sorted({field["channel"] for field in report["fields"]})
    for channel in channels:
        for measure, label in HEATMAPS:
            grid = np.full((len(rows), len(columns)), np.nan)
            values: dict[str, list[float]] = {}
            for field in report["fields"]:
                value = field["measures"].get(measure)
                if field["channel"] == channel and value is not None:
                    values.setdefault(field["well"], []).append(value)
            for well, found in values.items():
                row, column = _split(well)
                grid[rows.index(row), columns.index(column)] = float(np.median(found))
            pictures.append((f"{channel}: {label}", _heatmap(grid, rows, columns, label)))
    return pictures


def focus_distribution(report: dict[str, Any]) -> str:
    """Histograms of the focus measure per channel, flagged fields marked."""
    figure, axes = plt.subplots(figsize=(6, 3), dpi=100)
    channels = sorted({field["channel"] for field in report["fields"]})
    for channel in channels:
        measured = (f["measures"].get(SLOPE) for f in report["fields"] if f["channel"] == channel)
        slopes = [value for value in measured if value is not None]
        axes.hist(slopes, bins=30, alpha=0.6, label=channel)
    blurred = [f["measures"][SLOPE] for f in report["fields"] if "blurred" in f["flags"]]
    if blurred:
        axes.plot(blurred, np.zeros(len(blurred)), "rv", markersize=8, label="flagged blurred")
    axes.set_xlabel("power log-log slope (lower: blurrier)")
    axes.set_ylabel("fields")
    axes.legend(fontsize=8)
    return _png(figure)


def control_readouts(report: dict[str, Any], controls: dict[str, str]) -> str:
    """Each well's readout by control type, with the Z'-factor in the title."""
    channel = report["readout"]["channel"]
    by_well: dict[str, list[float]] = {}
    for field in report["fields"]:
        if field["channel"] == channel and field["measures"].get("mean") is not None:
            by_well.setdefault(field["well"], []).append(field["measures"]["mean"])
    groups: dict[str, list[float]] = {"negative": [], "positive": [], "neutral": [], "sample": []}
    for well, values in by_well.items():
        groups[controls.get(well, "sample")].append(float(np.median(values)))
    figure, axes = plt.subplots(figsize=(6, 3), dpi=100)
    rng = np.random.default_rng(0)
    for position, values in enumerate(groups.values()):
        axes.scatter(position + rng.uniform(-0.15, 0.15, len(values)), values, s=14, alpha=0.7)
    axes.set_xticks(range(len(groups)), list(groups))
    axes.set_ylabel(f"{channel}: median field mean")
    z_prime = report["statistics"]["z_prime"]
    shown = f"{z_prime:.2f}" if z_prime is not None else "n/a (needs 2+ positive and 2+ negative wells)"
    axes.set_title(f"Z' = {shown}", fontsize=10)
    return _png(figure)


def _heatmap(grid: np.ndarray, rows: list[str], columns: list[str], label: str) -> str:
    figure, axes = plt.subplots(figsize=(max(4.0, len(columns) * 0.35), max(2.5, len(rows) * 0.3)), dpi=100)
    shown = axes.imshow(np.ma.masked_invalid(grid), cmap="viridis", aspect="auto")
    axes.set_xticks(range(len(columns)), columns, fontsize=7)
    axes.set_yticks(range(len(rows)), rows, fontsize=7)
    figure.colorbar(shown, ax=axes, label=label, shrink=0.8)
    return _png(figure)


def _png(figure: Any) -> str:
    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _split(well: str) -> tuple[str, str]:
    letters = "".join(ch for ch in well if ch.isalpha())
    return letters, well[len(letters) :]
