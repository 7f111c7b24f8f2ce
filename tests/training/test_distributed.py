"""Real DDP (two CPU processes, gloo) against one process, torchrun, and a SLURM requeue."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from mlflow import MlflowClient

from tests.runs import experiment, last_validation, run_train, subprocess_env, train_command

# Both runs: 20 optimiser steps of 8 windows each, then one validation over the same 48 windows.
TRAINER = {"max_steps": 20, "val_check_interval": 20, "limit_val_batches": 6, "deterministic": True}


@pytest.mark.slow
def test_two_process_ddp_matches_one_process_with_the_same_global_batch(tmp_path, advecting_store):
    model = {"kind": "convlstm", "options": {"hidden": [8, 8]}}
    single = experiment(tmp_path / "single", advecting_store, name="single", model=model, trainer=TRAINER)
    run_train(tmp_path / "single", single)
    ddp = experiment(tmp_path / "ddp", advecting_store, name="ddp", model=model, loader={"batch_size": 4},
                     trainer={**TRAINER, "devices": 2, "strategy": "ddp"})
    result = run_train(tmp_path / "ddp", ddp)

    assert result.stdout.count("Training done") == 1  # the report is rank zero's alone
    checkpoints = tmp_path / "ddp" / "runs" / "ddp" / "checkpoints"
    assert sorted(p.name for p in checkpoints.iterdir()) == ["best.ckpt", "last.ckpt"]  # written once, no temp files
    one, two = last_validation(tmp_path / "single" / "runs" / "single"), last_validation(checkpoints.parent)
    # the last validation is that of the packaged (best) weights, after the last step
    assert one["step"] == two["step"] == TRAINER["max_steps"]
    # Rank r trains on windows r, r+2, ... of each global batch and DDP averages the two ranks' gradients,
    # which equals the one-process gradient because every window carries the same total weight. What
    # differs is only float32 summation order (all-reduce vs one sum): ~1e-7 relative per step, grown
    # by 20 Adam steps to well under 1e-4.
    for key in ("val/loss", "val/rmse_normalised", "val/rmse_normalised_persistence"):
        assert two[key] == pytest.approx(one[key], rel=1e-4), key


@pytest.mark.slow
def test_torchrun_with_two_cpu_ranks_trains_once_logs_one_run_and_warns_nothing(tmp_path, advecting_store):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    model = {"kind": "convlstm", "options": {"hidden": [8]}}
    config = experiment(tmp_path, advecting_store, name="torchrun", model=model,
                        trainer={"max_steps": 8, "val_check_interval": 4, "limit_val_batches": 2, "devices": 2,
                                 "strategy": "ddp"}, loader={"batch_size": 4},
                        tracking={"enabled": True, "uri": uri, "system_metrics_s": 0})
    torchrun = Path(sys.executable).with_name("torchrun")
    result = subprocess.run([str(torchrun), "--nproc_per_node", "2", "-m", "pipelines.cli", "train", "--config",
                             str(config)], cwd=tmp_path, env=subprocess_env(), capture_output=True, text=True,
                            timeout=600, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("Training done") == 1
    assert "sync_dist" not in result.stderr  # Lightning's API used as intended: no warning flood
    client = MlflowClient(uri)
    [run] = client.search_runs([client.get_experiment_by_name("torchrun").experiment_id])
    assert run.info.status == "FINISHED" and "val/rmse_normalised" in run.data.metrics


def fake_scontrol(folder: Path) -> Path:
    """A ``scontrol`` that records what it was asked, on a PATH of its own."""
    folder.mkdir()
    script = folder / "scontrol"
    script.write_text(f"#!/bin/sh\necho \"$@\" >> {folder / 'calls'}\n")
    script.chmod(0o755)
    return folder


@pytest.mark.slow
def test_a_slurm_requeue_saves_last_and_resumes_the_same_mlflow_run(tmp_path, advecting_store):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    config = experiment(tmp_path, advecting_store, name="slurm", model={"kind": "convlstm", "options": {"hidden": [8]}},
                        trainer={"max_steps": 60, "val_check_interval": 20, "limit_val_batches": 2,
                                 "checkpoint_every_n_steps": 5},
                        tracking={"enabled": True, "uri": uri, "system_metrics_s": 0})
    bin_dir = fake_scontrol(tmp_path / "bin")
    env = {**subprocess_env(), "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "SLURM_JOB_ID": "4242",
           "SLURM_NTASKS": "1", "SLURM_PROCID": "0", "SLURM_LOCALID": "0", "SLURM_NODEID": "0",
           "SLURM_JOB_NAME": "forecast"}
    last = tmp_path / "runs" / "slurm" / "checkpoints" / "last.ckpt"
    job = subprocess.Popen(train_command(config, "--ckpt_path", "last"), cwd=tmp_path, env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while not last.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    job.send_signal(signal.SIGUSR1)  # SLURM's warning before the time limit
    out, err = job.communicate(timeout=240)
    assert job.returncode == 0, err[-3000:]
    assert "Requeued at step" in out
    assert (bin_dir / "calls").read_text().split() == ["requeue", "4242"]
    step = torch.load(last, map_location="cpu", weights_only=True)["global_step"]
    assert 0 < step < 60
    assert not (tmp_path / "runs" / "slurm" / "model").exists()  # not packaged half-trained
    client = MlflowClient(uri)
    [run] = client.search_runs([client.get_experiment_by_name("slurm").experiment_id])
    assert run.info.status == "RUNNING" and run.data.tags["forecast.requeued"] == "true"

    # the requeued job: the same command, the same environment
    result = subprocess.run(train_command(config, "--ckpt_path", "last"), cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Training done: 60 steps" in result.stdout
    [again] = client.search_runs([client.get_experiment_by_name("slurm").experiment_id])
    assert again.info.run_id == run.info.run_id and again.info.status == "FINISHED"
    steps = {m.step for m in client.get_metric_history(run.info.run_id, "train/loss")}
    assert min(steps) < step <= max(steps)  # one history across both jobs
    assert (tmp_path / "runs" / "slurm" / "model" / "model.json").exists()
