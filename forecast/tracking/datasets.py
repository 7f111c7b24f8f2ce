"""The data a run trained on, as an MLflow dataset input: name, digest of the data alone, source files, splits."""

from __future__ import annotations

import warnings

from mlflow import MlflowClient
from mlflow.data.dataset_source_registry import resolve_dataset_source
from mlflow.data.meta_dataset import MetaDataset
from mlflow.entities import DatasetInput, InputTag

CONTEXT_TAG = "mlflow.data.context"  # MLflow's own: shown as the dataset's context in the run page


def log_dataset(client: MlflowClient, run_id: str, name: str, digest: str, source: str,
                splits: dict[str, str]) -> None:
    """Log the store as the run's training input: ``digest`` (the store's data hash) identifies the data,
    ``source`` (the raw files it was prepared from) where it came from, each split's period a tag."""
    with warnings.catch_warnings():
        # MLflow registers its local-file source once per scheme ("" and "file"), then warns that a path
        # matches both: the two are one class of source.
        warnings.filterwarnings("ignore", message="The specified dataset source can be interpreted in multiple")
        dataset = MetaDataset(resolve_dataset_source(source), name=name, digest=digest)
    tags = [InputTag(CONTEXT_TAG, "training"), *(InputTag(f"split.{k}", v) for k, v in splits.items())]
    client.log_inputs(run_id, datasets=[DatasetInput(dataset._to_mlflow_entity(), tags)])
