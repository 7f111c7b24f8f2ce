"""Skill against the references: one definition for validation, evaluation, the registry and sync-runs.

The best reference is taken per lead and channel (the envelope of all references), so "beats the best
reference" means beating, on average, whichever simple forecast is hardest at each lead.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

MODEL, BEST = "model", "best_reference"
PREFIX = "rmse_normalised"


def unit_label(units: str) -> str:
    """Units as part of an MLflow metric or tag name (letters, digits, ``_ - .`` only): ``kg m-2`` → ``kg_m-2``,
    ``m s**-1`` → ``m_s-1``, none → ``1``."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", units.replace("**", "")).strip("_") or "1"


def _numpy(value: Any) -> np.ndarray:
    return np.asarray(value.detach().cpu().double().numpy() if hasattr(value, "detach") else value, np.float64)


@dataclass(frozen=True)
class Skill:
    """RMSE (normalised units, over leads, channels and points) of the model, of each reference and of the best
    reference per lead and channel."""

    rmse: dict[str, float]

    @classmethod
    def from_errors(cls, errors: Mapping[str, tuple[Any, Any]]) -> Skill:
        """From per-forecast ``(squared error sums, weight sums)``, each ``[T, C]``; keys ``model`` and references."""
        sums = {name: (_numpy(sq), _numpy(w)) for name, (sq, w) in errors.items()}
        rmse = {name: float(np.sqrt(sq.sum() / max(w.sum(), 1e-300))) for name, (sq, w) in sums.items()}
        references = [name for name in sums if name != MODEL]
        if references:
            weight = sums[MODEL][1]
            mse = np.stack([sums[r][0] / np.maximum(sums[r][1], 1e-300) for r in references])  # [R, T, C]
            rmse[BEST] = float(np.sqrt((mse.min(axis=0) * weight).sum() / max(weight.sum(), 1e-300)))
        return cls(rmse)

    @classmethod
    def from_metrics(cls, metrics: Mapping[str, Any], prefix: str = "val/") -> Skill:
        """From a run's logged ``val/rmse_normalised[_<reference>]`` metrics."""
        head = f"{prefix}{PREFIX}"
        rmse = {MODEL if key == head else key.removeprefix(f"{head}_"): float(value)
                for key, value in metrics.items() if key == head or key.startswith(f"{head}_")}
        return cls(rmse)

    @property
    def references(self) -> list[str]:
        return [name for name in self.rmse if name not in (MODEL, BEST)]

    def against(self, reference: str) -> float:
        """``1 - rmse_model / rmse_reference``: 1 perfect, 0 no better, negative worse."""
        return 1.0 - self.rmse[MODEL] / self.rmse[reference] if self.rmse[reference] > 0 else float("nan")

    @property
    def strongest(self) -> str:
        """The single reference with the lowest RMSE overall."""
        return min(self.references, key=self.rmse.__getitem__)

    @property
    def beats_references(self) -> bool:
        """The model's RMSE is below the best reference's (the per-lead envelope, when there is one)."""
        return self.rmse[MODEL] < self.rmse.get(BEST, min((self.rmse[r] for r in self.references), default=np.inf))

    def metrics(self) -> dict[str, float]:
        """Headline metrics: RMSE of each forecast (normalised units) and skill against each reference."""
        out = {PREFIX if name == MODEL else f"{PREFIX}_{name}": value for name, value in self.rmse.items()}
        out.update({f"skill_vs_{name}": self.against(name) for name in self.rmse if name != MODEL})
        return out
