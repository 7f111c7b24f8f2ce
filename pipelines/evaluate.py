"""``forecast evaluate``: skill of a model against every reference forecast on a split, in physical units."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from forecast import plots
from forecast.atomic import write_then_rename
from forecast.data.store import StoreInfo, open_store
from forecast.evaluation.evaluate import Evaluation, evaluate
from forecast.evaluation.metrics import scores_table
from forecast.evaluation.results import wb2_results
from forecast.inference.inputs import from_store
from forecast.inference.runner import Runner
from forecast.tracking.record import record
from forecast.verification import BEST, MODEL
from pipelines.common import configured_model, run_folder
from pipelines.config import parse


def main(argv: Sequence[str]) -> int:
    _, cfg, objects = parse("evaluate", argv)
    settings = objects.evaluate
    folder = run_folder(cfg.name) / "evaluation" / settings.split
    info = open_store(objects.data.store)
    package, source = configured_model(settings.model, cfg.name, objects.tracking)
    runner = Runner(package, settings.batch_size)
    series = from_store(info, runner, source)
    result = evaluate(runner, info, series, settings.split, settings.thresholds, settings.map_dates)
    write_then_rename(folder, lambda tmp: write_outputs(tmp, result, info, source))
    run_id = record(objects.tracking, objects.tracking.experiment or cfg.name,
                    parent_run_id=package.card.training.get("run_id"), run_name=f"evaluate-{settings.split}",
                    tags={"forecast.stage": "evaluate"},
                    params={"model": source, "split": settings.split, "store": str(info.path)},
                    metrics=flat_metrics(result, settings.split), artifacts=folder,
                    artifact_path=f"evaluation/{settings.split}", results=folder)
    summary = skill_summary(result, folder, source, run_id, info)
    write_then_rename(folder / "summary.txt", lambda tmp: tmp.write_text(summary + "\n"))
    print(f"{tables(result, info.channel_names)}\n\n{summary}")
    return 0


def write_outputs(folder: Path, result: Evaluation, info: StoreInfo, source: str) -> None:
    folder.mkdir(parents=True)
    results = wb2_results(result.scores, result.step, info.channels,
                          {"model": source, "store": str(info.path), "store_content_hash": info.content_hash})
    results.to_netcdf(folder / "scores.nc")
    result.table().to_csv(folder / "scores.csv", index=False, float_format="%.6g")
    units = [c.units for c in info.channels]
    rmse = {name: ds["rmse"].values for name, ds in result.scores.items()}
    leads, lead_unit = result.step.lead_values(len(next(iter(rmse.values()))))
    plots.rmse_by_lead(rmse, info.channel_names, leads, lead_unit, units, folder / "rmse_by_lead.png",
                       "Test RMSE by lead time")
    for init, (truth, forecast) in result.maps.items():
        stamp = init.replace(" ", "T").replace(":", "")[:15]
        plots.forecast_maps(truth, forecast, info.channel_names, units, info.latitude, info.longitude,
                            folder / f"maps_{stamp}.png",
                            f"Forecast from {init}, lead {result.step.lead_label(len(leads))}")
    (folder / "table.txt").write_text(tables(result, info.channel_names))


def tables(result: Evaluation, channels: list[str]) -> str:
    leads = list(range(1, result.scores[MODEL].sizes["lead"] + 1))
    return "\n\n".join(f"[{channel}]\n{scores_table(result.scores, channel, leads)}" for channel in channels)


def flat_metrics(result: Evaluation, split: str) -> dict[str, float]:
    """Headline metrics: skill against each reference and the best; mean RMSE per channel of every forecast."""
    metrics = {f"{split}/skill_vs_{name}": result.mean_skill(name) for name in (*result.references, BEST)}
    for name in (MODEL, *result.references, BEST):
        for channel, value in result.mean_rmse(name).to_series().items():
            metrics[f"{split}/{channel}_rmse_{name}"] = float(value)
    return metrics


def skill_summary(result: Evaluation, folder: Path, source: str, run_id: str | None, info: StoreInfo) -> str:
    """Skill against every reference and where everything went: what a user reads first."""
    n_leads = result.scores[MODEL].sizes["lead"]
    lines = [f"Evaluation of {source}: {result.scores[MODEL].attrs.get('n_samples', '?')} forecasts, leads "
             f"{result.step.lead_label(1)}–{result.step.lead_label(n_leads)}"]
    for name in (*result.references, BEST):
        lines.append(f"  RMSE skill vs {name:<19} {result.mean_skill(name):+.3f}")
    lines.append("  (mean over leads and variables; 1 perfect, 0 no better, < 0 worse; best_reference: the best of "
                 "them at each lead)")
    for channel in info.channels:
        means = "  ".join(f"{name} {float(result.mean_rmse(name).sel(channel=channel.name)):.4g}"
                          for name in (MODEL, *result.references))
        lines.append(f"  mean RMSE {channel.name} ({channel.units}): {means}")
    wins = all((result.scores[MODEL]["rmse"] < result.scores[name]["rmse"]).all() for name in result.references)
    lines.append(f"  the model is {'below' if wins else 'NOT below'} every reference at every lead")
    lines += [f"  note         {note}" for note in result.notes]
    lines.append(f"  metrics      {folder}/scores.csv, scores.nc, table.txt")
    lines.append(f"  plots        {folder}/rmse_by_lead.png, maps_*.png")
    if run_id:
        lines.append(f"  MLflow run   {run_id} (nested under the model's training run; artifacts under evaluation/)")
    return "\n".join(lines)
