"""A password in a tracking URI is used, never stored or shown: every file written and every line printed by
prepare, train, evaluate, predict and sync-runs is searched for it."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.conftest import cf_dataset
from tests.runs import experiment

SECRET = "S3cr3tPW-do-not-leak"
pytestmark = pytest.mark.slow


def with_password(uri: str) -> str:
    return uri.replace("http://", f"http://alice:{SECRET}@")


def leaks(folder: Path) -> list[str]:
    """Files under ``folder`` whose bytes contain the secret."""
    return [str(p) for p in folder.rglob("*") if p.is_file() and SECRET.encode() in p.read_bytes()]


def test_a_password_in_the_tracking_uri_is_never_stored_or_printed(tmp_path, advecting_store, mlflow_server, run_cli,
                                                                   monkeypatch, six_hourly, caplog):
    monkeypatch.chdir(tmp_path)
    printed = []

    def run(*args: str) -> None:
        result = run_cli(*args)
        printed.extend([result.out, result.err])
        assert result.code == 0, result.err

    # prepare: from a shared experiment file that also holds the tracking URI with its password
    cf_dataset(six_hourly).to_netcdf(tmp_path / "src.nc")
    shared = tmp_path / "shared.yaml"
    shared.write_text(yaml.safe_dump({"data": {"source": str(tmp_path / "src.nc"), "variables": ["t2m", "tp"],
                                               "store": str(tmp_path / "own.zarr")},
                                      "tracking": {"uri": with_password(mlflow_server.uri)}}))
    run("prepare", "--config", shared)

    model = {"kind": "convlstm", "options": {"hidden": [4]}}
    trainer = {"max_steps": 4, "val_check_interval": 2, "limit_val_batches": 1}
    tracking = {"enabled": True, "uri": with_password(mlflow_server.uri), "system_metrics_s": 0}
    config = experiment(tmp_path, advecting_store, name="secret", model=model, trainer=trainer, tracking=tracking)
    run("train", "--config", config)
    run("evaluate", "--config", config)
    run("predict", "--config", config, "--model", "models:/secret@candidate")

    # an outage at start: the run goes offline, then sync-runs copies it with the password given again
    offline = {**tracking, "uri": with_password("http://127.0.0.1:9/"), "offline_fallback": True}
    config = experiment(tmp_path / "hpc", advecting_store, name="hpc", model=model, trainer=trainer, tracking=offline)
    run("train", "--config", config)
    run("sync-runs", "--to", with_password(mlflow_server.uri))
    assert "http://***@127.0.0.1" in printed[-2]  # where a URI is shown, its credentials are masked

    for text in printed:
        assert SECRET not in text, text[max(0, text.find(SECRET) - 300): text.find(SECRET) + 100]
    assert SECRET not in caplog.text  # every log line, whichever library wrote it
    inputs = {str(shared), str(tmp_path / "experiment.yaml"), str(tmp_path / "hpc" / "experiment.yaml")}
    written = set(leaks(tmp_path)) - inputs
    assert not written  # only the user's own config files hold it: not runs/, stores, forecasts, offline stores
    assert not leaks(mlflow_server.folder)  # the server's database and artifacts: params, tags, config.yaml
