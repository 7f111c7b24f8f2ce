"""The registered model is an MLflow Model: pyfunc, ``mlflow models predict`` and ``serve`` give the forecast that
``forecast predict`` writes; the run page holds what a reviewer needs and nothing twice."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
import pytest
import requests
import xarray as xr
from mlflow import MlflowClient

from forecast.data.stats import denormalise
from forecast.data.store import open_store
from forecast.inference.pyfunc import hours_from_init_times
from tests.runs import experiment, train_in_process
from tests.tracking.conftest import free_port

NAME = "served"
TRAINER = {"max_steps": 12, "val_check_interval": 6, "limit_val_batches": 2}
pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Served:
    folder: Path
    config: Path
    uri: str
    run_id: str


@pytest.fixture(scope="module")
def served(tmp_path_factory, advecting_store, mlflow_server) -> Served:
    folder = tmp_path_factory.mktemp("served")
    config = experiment(folder, advecting_store, name=NAME, model={"kind": "convlstm", "options": {"hidden": [8]}},
                        trainer=TRAINER, tracking={"enabled": True, "uri": mlflow_server.uri, "system_metrics_s": 1})
    cwd = Path.cwd()
    os.chdir(folder)
    try:
        assert train_in_process(folder, config) == 0
    finally:
        os.chdir(cwd)
    client = MlflowClient(mlflow_server.uri)
    run_id = client.get_model_version_by_alias(NAME, "candidate").run_id
    return Served(folder, config, mlflow_server.uri, run_id)


def window(store: Path, init: int, input_steps: int = 4) -> dict[str, np.ndarray]:
    """The input window ending at ``init`` as a client sends it: physical units, init time in hours since 1970."""
    info = open_store(store)
    fields = xr.open_zarr(store, consolidated=False)["fields"].values[init - input_steps + 1: init + 1]
    x = np.where(info.mask, denormalise(fields, info.mean, info.std, channel_axis=1), np.nan).astype(np.float32)
    return {"x": x[None], "init_time": hours_from_init_times(info.times[[init]], info.calendar)}


def test_the_pyfunc_forecast_equals_forecast_predict(served, advecting_store, run_cli, monkeypatch):
    monkeypatch.chdir(served.folder)
    info = open_store(advecting_store)
    init = len(info.times) - 3
    iso = str(np.datetime_as_string(info.times[init], unit="m"))
    result = run_cli("predict", "--config", served.config, "--model", f"models:/{NAME}@candidate", "--init-time", iso,
                     "--output", "pinned")
    assert result.code == 0, result.err
    [path] = (served.folder / "pinned").glob("*.nc")
    with xr.open_dataset(path, decode_timedelta=True) as ds:
        written = np.stack([ds[c].values[0] for c in ("t2m", "tp")], axis=1)  # [T, C, H, W]
        assert ds.attrs["model"] == f"models:/{NAME}/1"  # the version that made it, not the moving alias
    mlflow.set_tracking_uri(served.uri)
    model = mlflow.pyfunc.load_model(f"models:/{NAME}@candidate")
    forecast = model.predict(window(advecting_store, init))
    assert forecast.shape == (1, 4, 2, 16, 32) and forecast.dtype == np.float32
    np.testing.assert_allclose(forecast[0], written, rtol=1e-5, atol=1e-4)


def test_the_model_carries_a_signature_and_a_real_input_example(served):
    mlflow.set_tracking_uri(served.uri)
    info = mlflow.models.get_model_info(f"models:/{NAME}@candidate")
    inputs = {spec.name: spec for spec in info.signature.inputs.inputs}
    assert inputs["x"].shape == (-1, 4, 2, 16, 32) and inputs["init_time"].shape == (-1,)
    assert info.signature.outputs.inputs[0].shape == (-1, 4, 2, 16, 32)
    assert info.saved_input_example_info is not None


def test_mlflow_models_predict_from_the_registry(served, tmp_path, advecting_store):
    example = window(advecting_store, 500)
    request = tmp_path / "input.json"
    request.write_text(json.dumps({"inputs": {k: v.tolist() for k, v in example.items()}}))
    result = subprocess.run(
        [str(Path(sys.executable).with_name("mlflow")), "models", "predict", "-m", f"models:/{NAME}@candidate",
         "-i", str(request), "-t", "json", "-o", str(tmp_path / "out.json"), "--env-manager", "local"],
        env={**os.environ, "MLFLOW_TRACKING_URI": served.uri}, capture_output=True, text=True, timeout=300,
        check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    answer = np.asarray(json.loads((tmp_path / "out.json").read_text())["predictions"], np.float32)
    mlflow.set_tracking_uri(served.uri)
    expected = mlflow.pyfunc.load_model(f"models:/{NAME}@candidate").predict(example)
    np.testing.assert_allclose(answer, expected, rtol=1e-5, atol=1e-4)


def test_mlflow_models_serve_answers_a_request(served, advecting_store):
    port = free_port()
    process = subprocess.Popen(
        [str(Path(sys.executable).with_name("mlflow")), "models", "serve", "-m", f"models:/{NAME}@candidate",
         "-p", str(port), "-h", "127.0.0.1", "--env-manager", "local", "--workers", "1"],
        # the server starts uvicorn by name: the virtualenv's bin folder must be on PATH, as when it is activated
        env={**os.environ, "MLFLOW_TRACKING_URI": served.uri,
             "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"},
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            try:
                if requests.get(f"http://127.0.0.1:{port}/ping", timeout=1).ok:
                    break
            except requests.RequestException:
                assert process.poll() is None, process.stderr.read()[-3000:]
                time.sleep(0.5)
        example = window(advecting_store, 500)
        answer = requests.post(f"http://127.0.0.1:{port}/invocations",
                               json={"inputs": {k: v.tolist() for k, v in example.items()}}, timeout=120)
        assert answer.status_code == 200, answer.text[:2000]
        predictions = np.asarray(answer.json()["predictions"], np.float32)
        assert predictions.shape == (1, 4, 2, 16, 32) and np.isfinite(predictions).all()
    finally:
        if process.poll() is None:
            os.killpg(process.pid, 9)
        process.wait()


def test_the_run_page_holds_the_dataset_system_metrics_and_only_training_params(served, advecting_store):
    client = MlflowClient(served.uri)
    run = client.get_run(served.run_id)
    [dataset_input] = run.inputs.dataset_inputs
    dataset = dataset_input.dataset
    assert dataset.name == "store" and dataset.digest == open_store(advecting_store).content_hash
    assert "src" in json.loads(dataset.source)["uri"]  # the raw files the store was prepared from
    tags = {tag.key: tag.value for tag in dataset_input.tags}
    assert tags["mlflow.data.context"] == "training" and {"split.train", "split.val", "split.test"} <= set(tags)
    assert any(key.startswith("system/cpu_utilization") for key in run.data.metrics)
    sections = {key.split("/")[0] for key in run.data.params}
    assert sections == {"name", "seed", "data", "windows", "model", "optim", "loader", "trainer", "tracking"}
    assert run.data.params["data/store"] == str(advecting_store) and len(run.data.params) < 60
    assert run.info.run_name.startswith(f"{NAME}-convlstm-") and run.data.tags["mlflow.note.content"]


def test_evaluate_logs_a_nested_run_and_leaves_the_training_run_alone(served, run_cli, monkeypatch):
    monkeypatch.chdir(served.folder)
    client = MlflowClient(served.uri)
    before = client.get_run(served.run_id).data.tags
    assert run_cli("evaluate", "--config", served.config).code == 0
    assert client.get_run(served.run_id).data.tags == before
    children = client.search_runs([client.get_run(served.run_id).info.experiment_id],
                                  filter_string=f"tags.mlflow.parentRunId = '{served.run_id}'")
    [child] = children
    assert child.info.run_name == "evaluate-test" and "test/skill_vs_best_reference" in child.data.metrics
