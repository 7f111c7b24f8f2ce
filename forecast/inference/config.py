"""Settings of the predict stage."""

from __future__ import annotations

from dataclasses import dataclass

from forecast.data.config import require


@dataclass
class PredictConfig:
    """Which model forecasts from which maps, for which init times, into which folder.

    Args:
        model: models:/<name>@<alias>, runs:/<id>/model, a model folder or a checkpoint; default runs/<name>/model.
        init_time: ``latest`` (the last time with a full input window, plus any missed since the last run),
            an ISO time, or ``START/END`` (every init time in between, and one Zarr store of them all).
        source: new raw NetCDF/Zarr files to start from (normalised with the model's training statistics);
            default the prepared store.
        output_dir: where forecasts go; default forecasts/<name>.
        overwrite: redo init times whose file exists (otherwise they are skipped).
        batch_size: init times per model call.
    """

    model: str | None = None
    init_time: str = "latest"
    source: str | None = None
    output_dir: str | None = None
    overwrite: bool = False
    batch_size: int = 16

    def __post_init__(self) -> None:
        require(self.batch_size >= 1, "predict.batch_size", self.batch_size, "a whole number >= 1")
        require(bool(self.init_time.strip()), "predict.init_time", self.init_time, "'latest', an ISO time or START/END")
