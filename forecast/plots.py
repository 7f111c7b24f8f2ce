"""The pictures reviewers look at in the MLflow UI: learning curves, skill by lead, and maps."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display on servers and in cron
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

# The model solid and thick; each reference its own dash, so the figure reads in grey print too.
STYLE = {"model": ("-", 2.2), "persistence": (":", 1.4), "climatology": ("--", 1.4), "window_mean": ("-.", 1.4),
         "damped_persistence": ((0, (5, 1, 1, 1)), 1.4), "optical_flow": ((0, (1, 1)), 1.4)}


def _save(fig: plt.Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def learning_curves(metrics: pd.DataFrame, path: Path) -> Path:
    """Training and validation loss against optimiser step, from a Lightning CSV log."""
    fig, ax = plt.subplots(figsize=(7, 4), layout="constrained")
    for column, label in (("train/loss", "training"), ("val/loss", "validation")):
        if column in metrics:
            series = metrics[["step", column]].dropna()
            ax.plot(series["step"], series[column], marker="o" if label == "validation" else None, label=label)
    ax.set(xlabel="step", ylabel="loss (normalised units)", yscale="log", title="Learning curves")
    ax.grid(alpha=0.3)
    ax.legend()
    return _save(fig, path)


def rmse_by_lead(rmse: Mapping[str, np.ndarray], channels: Sequence[str], leads: Sequence[float], lead_unit: str,
                 units: Sequence[str], path: Path, title: str) -> Path:
    """RMSE ``[T, C]`` against lead time (in ``lead_unit``), one panel per channel, the model beside every
    reference forecast."""
    fig, axes = plt.subplots(1, len(channels), figsize=(5 * len(channels), 3.8), squeeze=False, layout="constrained")
    for c, (ax, channel) in enumerate(zip(axes[0], channels, strict=True)):
        for name, values in rmse.items():
            style, width = STYLE.get(name, ("-", 1.4))
            ax.plot(leads, values[:, c], linestyle=style, linewidth=width, marker="o", ms=3, label=name)
        ax.set(title=channel, xlabel=f"lead time ({lead_unit})", ylabel=f"RMSE ({units[c]})")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize="small")
    fig.suptitle(title)
    return _save(fig, path)


def forecast_maps(truth: np.ndarray, forecast: np.ndarray, channels: Sequence[str], units: Sequence[str],
                  latitude: np.ndarray, longitude: np.ndarray, path: Path, title: str) -> Path:
    """Truth, forecast and error ``[C, H, W]`` side by side, one row per channel (NaN shows as blank)."""
    fig, axes = plt.subplots(len(channels), 3, figsize=(13, 3.2 * len(channels)), squeeze=False, layout="constrained")
    extent = (longitude[0], longitude[-1], latitude[0], latitude[-1])
    for c, channel in enumerate(channels):
        low, high = np.nanpercentile(np.stack([truth[c], forecast[c]]), [1, 99])
        error = forecast[c] - truth[c]
        span = float(np.nanmax(np.abs(error))) or 1.0
        panels = ((truth[c], "truth", "viridis", low, high), (forecast[c], "forecast", "viridis", low, high),
                  (error, "forecast − truth", "RdBu_r", -span, span))
        for ax, (values, name, cmap, vmin, vmax) in zip(axes[c], panels, strict=True):
            image = ax.imshow(values, origin="lower", extent=extent, aspect="auto", cmap=cmap, vmin=vmin, vmax=vmax)
            ax.set(title=f"{channel}: {name}", xlabel="longitude (°E)", ylabel="latitude (°N)")
            fig.colorbar(image, ax=ax, label=units[c])
    fig.suptitle(title)
    return _save(fig, path)
