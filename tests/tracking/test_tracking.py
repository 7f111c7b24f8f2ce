"""Training runs against a real MLflow server: what a run logs, the registry, DDP, and outages."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from mlflow import MlflowClient
from mlflow.artifacts import download_artifacts
from mlflow.exceptions import MlflowException

from forecast.inference.model_source import load_folder
from forecast.inference.runner import Runner
from forecast.tracking.logger import ResilientMLFlowLogger
from forecast.tracking.server import REMOTE_RUN_TAG, offline_store
from tests.runs import experiment, subprocess_env, train_command, train_in_process

TRAINER = {"max_steps": 12, "val_check_interval": 6, "limit_val_batches": 2}
MODEL = {"kind": "convlstm", "options": {"hidden": [8]}}


def tracked(tmp_path: Path, store: Path, name: str, uri: str, **sections) -> Path:
    sections = {"model": MODEL, "trainer": TRAINER, **sections}
    # system metrics are tested on their own (test_mlflow_model): here they would only add requests to time out
    tracking = {"enabled": True, "uri": uri, "system_metrics_s": 0, **sections.pop("tracking", {})}
    return experiment(tmp_path, store, name=name, tracking=tracking, **sections)


def only_run(client: MlflowClient, experiment_name: str):
    [run] = client.search_runs([client.get_experiment_by_name(experiment_name).experiment_id])
    return run


def artifact_paths(client: MlflowClient, run_id: str, path: str = "") -> set[str]:
    found = set()
    for item in client.list_artifacts(run_id, path):
        found |= artifact_paths(client, run_id, item.path) if item.is_dir else {item.path}
    return found


@pytest.mark.slow
def test_a_training_run_logs_config_provenance_metrics_plots_checkpoint_and_a_registered_model(
        tmp_path, advecting_store, mlflow_server, capsys):
    config = tracked(tmp_path, advecting_store, "logged", mlflow_server.uri)
    assert train_in_process(tmp_path, config) == 0
    out = capsys.readouterr().out
    client = MlflowClient(mlflow_server.uri)
    run = only_run(client, "logged")

    assert run.data.params["model/kind"] == "convlstm"
    assert run.data.params["data/store"] == str(advecting_store)
    assert run.data.params["optim/lr"] == "0.003"
    assert {"model_kind", "dataset", "dataset_hash", "forecast_version"} <= set(run.data.tags)
    assert run.data.tags["model_kind"] == "convlstm"
    history = client.get_metric_history(run.info.run_id, "train/loss")
    assert len(history) >= 1 and max(m.step for m in history) >= 9
    for key in ("val/loss", "val/rmse_normalised", "val/rmse_normalised_persistence", "val/skill_vs_best_reference",
                "val/skill_vs_climatology", "val/t2m_rmse_K"):
        assert key in run.data.metrics, key
    # both validations and the packaged weights' one, not only the last
    assert len(client.get_metric_history(run.info.run_id, "val/rmse_normalised")) >= 2

    artifacts = artifact_paths(client, run.info.run_id)
    assert {"config.yaml", "data/provenance.json", "data/normalisation.json", "plots/learning_curves.png",
            "plots/rmse_by_lead.png", "plots/validation_maps.png", "tables/validation_scores.csv",
            "checkpoints/best.ckpt"} <= artifacts
    png = Path(download_artifacts(run_id=run.info.run_id, artifact_path="plots/rmse_by_lead.png",
                                  tracking_uri=mlflow_server.uri, dst_path=str(tmp_path / "dl")))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    version = client.get_model_version_by_alias("logged", "candidate")
    assert version.run_id == run.info.run_id
    [logged_model] = client.search_logged_models([run.info.experiment_id],
                                                 filter_string=f"source_run_id = '{run.info.run_id}'")
    assert version.source == f"models:/{logged_model.model_id}"  # the version is the run's logged model
    assert [m.model_id for m in run.outputs.model_outputs] == [logged_model.model_id]  # listed on the run page
    assert logged_model.name == run.info.run_name  # the Models tab tells one training's model from another
    # the UI opens the experiment in its model-training view
    assert client.get_experiment(run.info.experiment_id).tags["mlflow.experimentKind"] == "custom_model_development"
    score = float(version.tags["val_rmse_normalised"])
    assert score == pytest.approx(run.data.metrics["val/rmse_normalised"], rel=1e-5)
    assert float(version.tags["val_rmse_t2m_K"]) > 0 and version.tags["beats_references"] in {"true", "false"}
    assert "models:/logged@candidate" in out and run.info.run_id in out

    # The registered model loads with nothing but the project: weights, network and statistics together.
    folder = download_artifacts(artifact_uri="models:/logged@candidate", tracking_uri=mlflow_server.uri,
                                dst_path=str(tmp_path / "model"))
    package = load_folder(Path(folder))  # an MLflow Model folder around the package
    assert package.card.channel_names == ["t2m", "tp"] and package.card.input_steps == 4
    runner = Runner(package)
    times = np.array([[np.datetime64("2000-05-01T00") + np.timedelta64(6 * k, "h") for k in range(8)]])
    assert runner.forecast(np.zeros((1, 4, 2, 16, 32), np.float32), times).shape == (1, 4, 2, 16, 32)


@pytest.mark.slow
def test_a_version_that_does_not_beat_persistence_is_candidate_but_never_champion(
        tmp_path, advecting_store, mlflow_server, run_cli):
    config = tracked(tmp_path, advecting_store, "lazy", mlflow_server.uri, model={"kind": "persistence"},
                     trainer={"max_epochs": 1, "limit_train_batches": 1, "limit_val_batches": 2})
    assert train_in_process(tmp_path, config) == 0
    client = MlflowClient(mlflow_server.uri)
    version = client.get_model_version_by_alias("lazy", "candidate")
    assert version.tags["beats_references"] == "false"
    with pytest.raises(MlflowException):
        client.get_model_version_by_alias("lazy", "champion")

    # A reviewer may still promote it by hand.
    result = run_cli("promote", "--model", "lazy", "--version", version.version, "--uri", mlflow_server.uri)
    assert result.code == 0 and "models:/lazy@champion" in result.out
    assert client.get_model_version_by_alias("lazy", "champion").version == version.version
    failed = run_cli("promote", "--model", "lazy", "--version", "99", "--uri", mlflow_server.uri)
    assert failed.code == 4 and failed.err.count("\n") == 1 and "lazy version 99" in failed.err


def test_a_request_the_server_refuses_costs_a_warning_not_the_connection(tmp_path, mlflow_server, caplog):
    logger = ResilientMLFlowLogger(run_dir=tmp_path, experiment_name="refusals", tracking_uri=mlflow_server.uri)
    logger.log_hyperparams({"lr": 0.1})
    # params never change: the server answers 400, which is a refusal, not an outage
    logger.guarded(lambda client, run_id: client.log_param(run_id, "lr", "0.5"))
    logger.log_metrics({"train/loss": 1.5}, step=3)
    assert not logger.offline and "refused a request" in caplog.text
    run = MlflowClient(mlflow_server.uri).get_run(logger.run_id)
    assert run.data.params["lr"] == "0.1" and run.data.metrics["train/loss"] == 1.5


def test_a_resume_with_changed_settings_keeps_its_run_and_records_the_change(tmp_path, mlflow_server, caplog):
    first = ResilientMLFlowLogger(run_dir=tmp_path, experiment_name="resumes", tracking_uri=mlflow_server.uri)
    first.log_hyperparams({"trainer": {"max_steps": 300}, "optim": {"lr": 0.1}})
    first.finalize("success")
    resumed = ResilientMLFlowLogger(run_dir=tmp_path, experiment_name="resumes", tracking_uri=mlflow_server.uri,
                                    run_id=first.run_id)
    resumed.log_hyperparams({"trainer": {"max_steps": 30}, "optim": {"lr": 0.1}, "seed": 7})
    resumed.finalize("failed")  # the resume then fails: the finished run's status stays
    assert not resumed.offline and "refused" not in caplog.text
    run = MlflowClient(mlflow_server.uri).get_run(first.run_id)
    assert run.data.params["trainer/max_steps"] == "300" and run.data.params["seed"] == "7"
    assert run.data.tags["forecast.resumed.trainer/max_steps"] == "30"
    assert run.info.status == "FINISHED" and run.data.tags["forecast.resumed.failed"] == "failed"


def test_unreachable_server_at_start_stops_before_training(tmp_path, advecting_store, run_cli, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = experiment(tmp_path, advecting_store, name="nowhere", tracking={"enabled": True, "uri": "http://127.0.0.1:9"})
    result = run_cli("train", "--config", config)
    assert result.code == 4
    [line] = result.err.strip().splitlines()
    assert "http://127.0.0.1:9 is unreachable" in line and "--tracking.offline_fallback true" in line
    assert not (tmp_path / "runs" / "nowhere" / "checkpoints").exists()


@pytest.mark.slow
def test_offline_fallback_at_start_then_sync_runs_copies_and_registers(tmp_path, advecting_store, own_server,
                                                                       run_cli, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = tracked(tmp_path, advecting_store, "hpc", own_server.uri, tracking={"offline_fallback": True})
    assert run_cli("train", "--config", config).code == 0
    local = MlflowClient(offline_store(tmp_path / "runs" / "hpc")[0])
    assert "val/rmse_normalised" in only_run(local, "hpc").data.metrics

    own_server.start()
    result = run_cli("sync-runs")
    assert result.code == 0 and "1 run(s) copied" in result.out
    client = MlflowClient(own_server.uri)
    run = only_run(client, "hpc")
    assert len(client.get_metric_history(run.info.run_id, "val/rmse_normalised")) >= 2
    version = client.get_model_version_by_alias("hpc", "candidate")
    assert version.run_id == run.info.run_id and version.source.startswith("models:/m-")
    assert client.get_logged_model(version.source.removeprefix("models:/")).source_run_id == run.info.run_id
    assert "Nothing to copy" in run_cli("sync-runs").out  # idempotent


@pytest.mark.slow
def test_server_dying_mid_run_loses_no_metric_and_sync_runs_completes_the_run(tmp_path, advecting_store, own_server,
                                                                              run_cli, monkeypatch):
    own_server.start()
    steps = 60
    config = tracked(tmp_path, advecting_store, "outage", own_server.uri,
                     trainer={"max_steps": steps, "val_check_interval": 10, "log_every_n_steps": 2})
    training = subprocess.Popen(train_command(config), cwd=tmp_path, env=subprocess_env(),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    client = MlflowClient(own_server.uri)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:  # kill the server once the run has some of its metrics there
        experiment_ = client.get_experiment_by_name("outage")
        runs = client.search_runs([experiment_.experiment_id]) if experiment_ else []
        if runs and "train/loss" in runs[0].data.metrics:
            break
        time.sleep(0.2)
    own_server.kill()
    out, err = training.communicate(timeout=300)
    assert training.returncode == 0, err[-3000:]
    assert (tmp_path / "runs" / "outage" / "checkpoints" / "last.ckpt").exists()
    assert "sync-runs" in out

    local = only_run(MlflowClient(offline_store(tmp_path / "runs" / "outage")[0]), "outage")
    server_run_id = local.data.tags[REMOTE_RUN_TAG]
    assert server_run_id == runs[0].info.run_id

    own_server.start()
    monkeypatch.chdir(tmp_path)
    assert run_cli("sync-runs").code == 0
    run = client.get_run(server_run_id)
    steps_logged = {m.step for m in client.get_metric_history(server_run_id, "train/loss")}
    assert max(steps_logged) >= steps - 2 and min(steps_logged) <= 10  # before and after the outage
    assert run.info.status == "FINISHED"
    assert "plots/rmse_by_lead.png" in artifact_paths(client, server_run_id)
    assert client.get_model_version_by_alias("outage", "candidate").run_id == server_run_id
