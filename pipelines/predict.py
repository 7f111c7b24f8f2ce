"""``forecast predict``: batch forecasts for one or many init times as CF NetCDF files (and a Zarr store for a
range); safe to run from cron: finished init times are skipped, missed ones caught up, nothing half-written."""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Sequence
from pathlib import Path

from jsonargparse import Namespace

from forecast.data.store import open_store
from forecast.data.timeaxis import format_time
from forecast.data.windows import window_inits
from forecast.inference.init_times import select_init_times
from forecast.inference.inputs import describe_missing, from_raw, from_store
from forecast.inference.predict import PredictResult, catch_up, predict
from forecast.inference.runner import Runner
from forecast.package import ModelPackage
from forecast.tracking.record import record
from pipelines.common import check_name, configured_model
from pipelines.config import parse

log = logging.getLogger(__name__)


def main(argv: Sequence[str]) -> int:
    _, cfg, objects = parse("predict", argv)
    settings = objects.predict
    output_dir = Path(settings.output_dir or Path("forecasts") / check_name(cfg.name))
    package, source = configured_model(settings.model, cfg.name, objects.tracking)
    runner = Runner(package, settings.batch_size)
    series = from_raw(settings.source, runner, source) if settings.source else \
        from_store(open_store(objects.data.store), runner, source)
    input_steps = package.card.input_steps
    inits = select_init_times(settings.init_time, series.times, series.segment, input_steps)
    if settings.init_time == "latest" and not settings.overwrite:
        inits = catch_up(inits[-1], window_inits(series.segment, input_steps).tolist(), series.times, output_dir,
                         cfg.name)
    partly = describe_missing(series, inits, input_steps)
    if partly:
        log.warning("input maps partly missing (filled with the training mean there): %s", partly)
    attrs = {"model": source, "model_run_id": str(package.card.training.get("run_id") or ""),
             "training_data_checksum": package.card.store["content_hash"]}
    result = predict(runner, series, inits, output_dir, cfg.name, attrs, settings.overwrite,
                     zarr="/" in settings.init_time)
    first, last = format_time(series.times[inits[0]]), format_time(series.times[inits[-1]])
    if result.written:
        record_run(objects, cfg.name, source, package, result, first, last)
    print(f"Forecasts {first} … {last} ({len(inits)} init time(s)) by {source} in {output_dir}/: "
          f"{len(result.written)} written, {len(result.skipped)} already there"
          + ("" if settings.overwrite or not result.skipped else " (--overwrite redoes them)"))
    if result.zarr:
        print(f"  Zarr store (WeatherBench2 layout): {result.zarr}")
    if result.written:
        print(f"  {len(result.written) / result.total_seconds:.1f} init times/s, {result.share_outside_model:.0%} "
              "of the time outside the model (inputs, writing)")
    return 0


def record_run(objects: Namespace, name: str, source: str, package: ModelPackage, result: PredictResult, first: str,
               last: str) -> None:
    """Which model forecast which init times into which files, as a run of the experiment."""
    with tempfile.TemporaryDirectory() as tmp:
        manifest = {"model": source, "init_times": [first, last], "written": [str(p) for p in result.written],
                    "skipped": [str(p) for p in result.skipped], "zarr": str(result.zarr) if result.zarr else None}
        (Path(tmp) / "manifest.json").write_text(json.dumps(manifest, indent=2))
        experiment = objects.tracking.experiment or name
        record(objects.tracking, experiment, run_name=f"{experiment}-predict-{first}",
               tags={"forecast.stage": "predict", "forecast.model_run_id": str(package.card.training.get("run_id"))},
               params={"model": source, "init_times": f"{first}/{last}", "files": str(len(result.written)),
                       "output_dir": str(result.written[0].parent)},
               metrics={"init_times_per_s": len(result.written) / result.total_seconds,
                        "share_outside_model": result.share_outside_model},
               artifacts=Path(tmp), artifact_path="predict", results=result.written[0].parent)
