"""``forecast evaluate``: skill of a model, persistence and climatology on the test split, in physical units."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from forecast.atomic import write_then_rename
from forecast.data.store import StoreInfo, open_store
from forecast.data.timeaxis import format_step
from forecast.errors import ConfigError
from forecast.evaluation.evaluate import Evaluation, evaluate
from forecast.evaluation.metrics import scores_table
from forecast.inference.output import channel_meta
from forecast.inference.runner import Runner
from forecast.tracking import plots
from forecast.tracking.record import record
from pipelines.common import configured_model
from pipelines.config import EVALUATE_SHORTCUTS, build_parser, parse

DESCRIPTION = """Score a model and the persistence and climatology forecasts on a split of the store.
Shortcuts: --model (models:/<name>@<alias>, runs:/<id>/model, a folder or a checkpoint) --split"""


def main(argv: Sequence[str]) -> int:
    parser = build_parser("evaluate", DESCRIPTION)
    cfg, objects = parse(parser, argv, EVALUATE_SHORTCUTS)
    settings = objects.evaluate
    info = open_store(objects.data.output)
    if settings.split not in info.split_ranges:
        raise ConfigError(f"--evaluate.split {settings.split}: the store has {', '.join(info.split_ranges)}.")
    package, source = configured_model(settings.model, cfg.name, objects.tracking)
    if package.channels != info.channels:
        raise ConfigError(f"model {source} forecasts {package.channels}; the store {info.path} holds {info.channels}.")
    runner = Runner(package, settings.batch_size)
    result = evaluate(runner, info, settings.split, settings.thresholds, settings.map_dates)
    folder = Path("runs") / cfg.name / "evaluation" / settings.split
    write_then_rename(folder, lambda tmp: write_outputs(tmp, result, info, source))
    metrics = flat_metrics(result, settings.split)
    run_id = record(objects.tracking, objects.tracking.experiment or cfg.name, run_id=package.description.get("run_id"),
                    run_name="evaluate", tags={"forecast.stage": "evaluate"},
                    params={"model": source, "split": settings.split, "store": str(info.path)},
                    metrics=metrics, artifacts=folder, artifact_path=f"evaluation/{settings.split}")
    summary = skill_summary(result, folder, source, run_id)
    write_then_rename(folder / "summary.txt", lambda tmp: tmp.write_text(summary + "\n"))
    print(f"{tables(result, info.channels)}\n\n{summary}")
    return 0


def write_outputs(folder: Path, result: Evaluation, info: StoreInfo, source: str) -> None:
    folder.mkdir(parents=True)
    combined = result.combined()
    combined.attrs.update(model=source, store=str(info.path), store_content_hash=str(info.attrs.get("content_hash")))
    combined.to_netcdf(folder / "scores.nc")
    result.table().to_csv(folder / "scores.csv", index=False, float_format="%.6g")
    units = [meta.units for meta in channel_meta(info.path)]
    rmse = {name: ds["rmse"].values for name, ds in result.scores.items()}
    plots.rmse_by_lead(rmse, info.channels, result.lead_hours, units, folder / "rmse_by_lead.png",
                       "Test RMSE by lead time")
    for init, (truth, forecast) in result.maps.items():
        stamp = init.replace(" ", "T").replace(":", "")[:15]
        plots.forecast_maps(truth, forecast, info.channels, units, info.latitude, info.longitude,
                            folder / f"maps_{stamp}.png", f"Forecast from {init}, lead {len(result.lead_hours)}")
    (folder / "table.txt").write_text(tables(result, info.channels))


def tables(result: Evaluation, channels: list[str]) -> str:
    leads = list(range(1, len(result.lead_hours) + 1))
    return "\n\n".join(f"[{channel}]\n{scores_table(result.scores, channel, leads)}" for channel in channels)


def flat_metrics(result: Evaluation, split: str) -> dict[str, float]:
    metrics = {}
    model = result.scores["model"]
    for reference in ("persistence", "climatology"):
        metrics[f"{split}/rmse_skill_vs_{reference}"] = result.mean_skill(reference)
    for channel in model["channel"].values:
        for lead in model["lead"].values:
            for score in ("rmse", "acc"):
                metrics[f"{split}/{score}/{channel}/lead_{int(lead):02d}"] = float(
                    model[score].sel(channel=channel, lead=lead))
    return metrics


def skill_summary(result: Evaluation, folder: Path, source: str, run_id: str | None) -> str:
    """Skill against the references and where everything went: what a user reads first."""
    first, last = (format_step(pd.Timedelta(hours=h)) for h in (result.lead_hours[0], result.lead_hours[-1]))
    lines = [f"Evaluation of {source}: {result.scores['model'].attrs.get('n_samples', '?')} test forecasts, "
             f"leads {first}–{last}"]
    for reference in ("persistence", "climatology"):
        lines.append(f"  RMSE skill vs {reference:<12} {result.mean_skill(reference):+.3f}  (mean over leads and "
                     "variables; 1 perfect, 0 no better, < 0 worse)")
    lines.append(f"  metrics      {folder}/scores.csv, scores.nc, table.txt")
    lines.append(f"  plots        {folder}/rmse_by_lead.png, maps_*.png")
    if run_id:
        lines.append(f"  MLflow run   {run_id} (artifacts under evaluation/)")
    return "\n".join(lines)
