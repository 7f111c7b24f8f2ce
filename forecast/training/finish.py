"""What a finished training leaves behind: the model package, and a folder of provenance, statistics, score
tables and plots for the tracking server (which only uploads it)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

import forecast
from forecast import plots
from forecast.data.dataset import WindowDataset
from forecast.data.stats import denormalise
from forecast.data.store import StoreInfo
from forecast.data.timeaxis import format_time
from forecast.errors import ModelError
from forecast.models.base import Context
from forecast.package import ModelCard, ModelPackage, NetworkSpec, Selection, load_card, save_package
from forecast.training.module import ForecastModule
from forecast.verification import unit_label


def model_card(spec: NetworkSpec, info: StoreInfo, input_steps: int, output_steps: int,
               training: dict[str, Any]) -> ModelCard:
    """The card of a network trained on ``info``'s store with these windows; ``training`` is run id, skill, steps."""
    data = info.settings.get("data", {})
    selection = Selection(variables=list(dict.fromkeys(c.variable for c in info.channels)),
                          levels=list(data.get("levels", [])), region=dict(data.get("region", {})),
                          coarsen=int(data.get("coarsen", 1)), time_range=data.get("time_range"),
                          max_missing=float(data.get("max_missing", 0.5)))
    return ModelCard(
        network=spec, channels=list(info.channels), input_steps=input_steps, output_steps=output_steps,
        time_step=str(info.time_step), time_anchor=info.time_step.anchor, calendar=info.calendar, slots=info.slots,
        selection=selection, longitude_convention=info.longitude_convention,
        source_longitude_convention=info.source_longitude_convention, source_latitude_order=info.source_latitude_order,
        store={"path": str(info.path.resolve()), "content_hash": info.content_hash}, training=training,
        forecast_version=forecast.__version__)


def package_arrays(info: StoreInfo, damping: np.ndarray) -> dict[str, np.ndarray]:
    """The arrays a package carries from its store, plus the fitted damping."""
    return {"mean": info.mean, "std": info.std, "mask": info.mask, "climatology": info.climatology,
            "static": info.static, "lat_weights": info.lat_weights, "latitude": info.latitude,
            "longitude": info.longitude, "source_longitude": info.source_longitude, "damping": damping}


def training_record(module: ForecastModule, run_id: str | None) -> dict[str, Any]:
    """The card's ``training`` entry: run, steps, and the last validation's RMSE of the model and references."""
    skill = module.skill()
    return {"run_id": run_id, "steps": int(module.global_step), "validation_rmse_normalised": skill.rmse,
            "beats_references": skill.beats_references}


def build_package(module: ForecastModule, info: StoreInfo, spec: NetworkSpec, input_steps: int,
                  run_id: str | None) -> ModelPackage:
    card = model_card(spec, info, input_steps, module.hparams.output_steps, training_record(module, run_id))
    return ModelPackage(module.net, card, package_arrays(info, module.damping.cpu().numpy()))


def save_model(directory: Path, package: ModelPackage) -> tuple[Path, str]:
    """Save ``package`` at ``directory`` unless a better model of the same data and windows is there: then it goes
    beside it (``<directory>.new``), and the returned message says why. Never replaces a better model silently."""
    card = package.card
    score = card.training.get("validation_rmse_normalised", {}).get("model")
    try:
        existing = load_card(directory) if (directory / "model.json").exists() else None
    except ModelError:
        existing = None  # an old or damaged package is no better than anything
    comparable = existing is not None and existing.store.get("content_hash") == card.store["content_hash"] and (
        existing.input_steps, existing.output_steps) == (card.input_steps, card.output_steps)
    previous = existing.training.get("validation_rmse_normalised", {}).get("model") if comparable else None
    if previous is not None and score is not None and previous < score:
        aside = directory.with_name(f"{directory.name}.new")
        save_package(aside, package.net, card, package.arrays)
        return aside, (f"kept the better model at {directory} (validation RMSE {previous:.4f} against this run's "
                       f"{score:.4f}); this run's model is at {aside}")
    return save_package(directory, package.net, card, package.arrays), ""


def physical_rmse(module: ForecastModule, info: StoreInfo) -> dict[str, np.ndarray]:
    """The last validation's RMSE ``[T, C]`` of the model and every reference, in the channels' units."""
    return {name: values.cpu().double().numpy() * info.std for name, values in module.lead_rmse().items()}


def version_tags(module: ForecastModule, info: StoreInfo) -> dict[str, str]:
    """Registry tags a reviewer reads: per channel, the validation RMSE of the model and of the strongest
    reference in physical units, and whether the model beats the best reference."""
    rmse = {name: np.sqrt((values ** 2).mean(axis=0)) for name, values in physical_rmse(module, info).items()}
    skill = module.skill()
    strongest = skill.strongest
    tags = {"beats_references": str(skill.beats_references).lower(), "strongest_reference": strongest,
            "val_skill_vs_best_reference": f"{skill.against('best_reference'):.4f}"}
    for c, channel in enumerate(info.channels):
        unit = unit_label(channel.units)
        tags[f"val_rmse_{channel.name}_{unit}"] = f"{rmse['model'][c]:.5g}"
        tags[f"val_rmse_{channel.name}_{unit}_{strongest}"] = f"{rmse[strongest][c]:.5g}"
    return tags


def write_artifacts(folder: Path, module: ForecastModule, info: StoreInfo, spec: NetworkSpec, input_steps: int,
                    metrics_csv: Path) -> Path:
    """``data/`` (provenance, normalisation), ``tables/`` (validation scores per lead and channel) and ``plots/``
    (learning curves, RMSE by lead against every reference, a validation sample's maps)."""
    (folder / "data").mkdir(parents=True, exist_ok=True)
    provenance = {"store": str(info.path.resolve()), "content_hash": info.content_hash, "sources": info.sources,
                  "splits": info.split_periods, "calendar": info.calendar, "time_step": str(info.time_step),
                  "missing_maps": info.missing_maps, "gaps": info.gaps}
    (folder / "data" / "provenance.json").write_text(json.dumps(provenance, indent=2, default=str))
    normalisation = {c.name: {"mean": float(m), "std": float(s), "units": c.units}
                     for c, m, s in zip(info.channels, info.mean, info.std, strict=True)}
    (folder / "data" / "normalisation.json").write_text(json.dumps(normalisation, indent=2))
    rmse = physical_rmse(module, info)
    leads, lead_unit = info.time_step.lead_values(module.hparams.output_steps)
    (folder / "tables").mkdir(exist_ok=True)
    score_table(rmse, info, leads, lead_unit).to_csv(folder / "tables" / "validation_scores.csv", index=False,
                                                     float_format="%.6g")
    units = [c.units for c in info.channels]
    if metrics_csv.exists():
        plots.learning_curves(pd.read_csv(metrics_csv), folder / "plots" / "learning_curves.png")
    plots.rmse_by_lead(rmse, info.channel_names, leads, lead_unit, units, folder / "plots" / "rmse_by_lead.png",
                       "Validation RMSE by lead time")
    _validation_maps(folder / "plots" / "validation_maps.png", module, info, spec, input_steps)
    return folder


def score_table(rmse: dict[str, np.ndarray], info: StoreInfo, leads: list[float], lead_unit: str) -> pd.DataFrame:
    """Long table: forecast, channel, units, lead, lead time, RMSE (physical)."""
    rows = [{"forecast": name, "channel": channel.name, "units": channel.units, "lead": k + 1,
             f"lead_time_{lead_unit}": leads[k], "rmse": float(values[k, c])}
            for name, values in rmse.items() for c, channel in enumerate(info.channels) for k in range(len(leads))]
    return pd.DataFrame(rows)


def _validation_maps(path: Path, module: ForecastModule, info: StoreInfo, spec: NetworkSpec, input_steps: int) -> None:
    output_steps = module.hparams.output_steps
    dataset = WindowDataset(info, "val", input_steps, output_steps, cycles=spec.cycles)
    sample = dataset[0]
    context = Context(sample["climatology"][None], sample["forcing"][None]).to(module.device)
    with torch.no_grad():
        y_hat = module.net.eval()(sample["x"][None].to(module.device), output_steps, context)[0].float().cpu()
    lead = output_steps - 1
    truth, forecast_ = (np.where(info.mask, denormalise(a[lead].numpy(), info.mean, info.std, 0), np.nan)
                        for a in (sample["y"], y_hat))
    valid = format_time(info.times[int(sample["init"]) + 1 + lead])
    plots.forecast_maps(truth, forecast_, info.channel_names, [c.units for c in info.channels], info.latitude,
                        info.longitude, path, f"Validation sample, lead {info.time_step.lead_label(lead + 1)} "
                                              f"(valid {valid})")
