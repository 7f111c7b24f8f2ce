"""An MLflow Model folder as an MLflow 3 logged model of a run (the experiment's Models tab), ready to register."""

from __future__ import annotations

from pathlib import Path

from mlflow import MlflowClient
from mlflow.entities import LoggedModelOutput, LoggedModelStatus
from mlflow.models import Model


def log_model_folder(client: MlflowClient, run_id: str, folder: Path) -> str:
    """Upload ``folder`` (written by ``mlflow.pyfunc.save_model``) as a logged model of ``run_id``; returns its id.

    The logged model carries the run as its source, the folder's signature, and READY once complete; a failed
    upload marks it FAILED rather than leaving it pending."""
    run = client.get_run(run_id)
    # Named after its run (<experiment>-<kind>-<time>): the Models tab then tells one training's model from another.
    model = client.create_logged_model(run.info.experiment_id, name=run.info.run_name or "model", source_run_id=run_id,
                                       model_type=Model.load(str(folder)).flavors.get("python_function", {})
                                       .get("loader_module", "pyfunc"))
    try:
        client.log_model_artifacts(model.model_id, str(folder))
    except Exception:
        client.finalize_logged_model(model.model_id, LoggedModelStatus.FAILED)
        raise
    client.finalize_logged_model(model.model_id, LoggedModelStatus.READY)
    # The run's output: what its page lists under "Logged models", as mlflow.<flavor>.log_model records it.
    client.log_outputs(run_id, [LoggedModelOutput(model.model_id, step=0)])
    return model.model_id


def run_models(client: MlflowClient, run_id: str) -> list[str]:
    """Ids of the logged models a run produced (READY ones), newest first."""
    experiment = client.get_run(run_id).info.experiment_id
    models = client.search_logged_models([experiment], filter_string=f"source_run_id = '{run_id}'")
    return [m.model_id for m in models if str(m.status) in {"READY", "LoggedModelStatus.READY"}]
