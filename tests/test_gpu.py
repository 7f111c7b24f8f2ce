"""On a GPU: windows cut from maps held on the device, the fast path picked by default, checkpoints that move
between GPU and CPU, DDP with NCCL. Skipped where there is no CUDA device (CI)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from forecast.data.dataset import WindowDataset
from forecast.data.store import open_store
from forecast.inference.model_source import load_model
from forecast.inference.runner import Runner
from tests.runs import experiment, run_train

pytestmark = [pytest.mark.gpu, pytest.mark.slow]
GPU_TRAINER = {"accelerator": "gpu", "devices": 1, "max_steps": 20, "val_check_interval": 10, "limit_val_batches": 2}
MODEL = {"kind": "convlstm", "options": {"hidden": [16, 16]}}


def test_windows_cut_on_the_device_equal_the_store_windows(advecting_store):
    info = open_store(advecting_store)
    host = WindowDataset(info, "train", 4, 4)
    device = WindowDataset(info, "train", 4, 4)
    device.make_resident(torch.device("cuda"))
    for index in (0, len(host) // 2, len(host) - 1):
        a, b = host[index], device[index]
        assert b["x"].device.type == "cuda" and b["climatology"].device.type == "cuda"
        for key in ("x", "y", "climatology", "forcing", "mask"):
            torch.testing.assert_close(b[key].cpu(), a[key], rtol=0, atol=0)


def test_train_on_the_gpu_picks_bf16_and_compiled_cells_and_says_so(tmp_path, advecting_store):
    config = experiment(tmp_path, advecting_store, name="fast", model=MODEL, trainer=GPU_TRAINER)
    fast = run_train(tmp_path, config)
    assert "GPU: precision bf16-mixed, compiled cells on" in fast.stdout
    assert "of the time waiting for data" in fast.stdout
    plain = run_train(tmp_path, config, "--name", "plain", "--trainer.precision", "32", "--model.compile", "false")
    assert "precision 32, compiled cells off" in plain.stdout


def test_a_gpu_checkpoint_predicts_on_the_cpu_and_a_cpu_checkpoint_resumes_on_the_gpu(tmp_path, advecting_store):
    gpu = experiment(tmp_path, advecting_store, name="gpu", model=MODEL, trainer=GPU_TRAINER)
    run_train(tmp_path, gpu)
    package, _ = load_model(str(tmp_path / "runs" / "gpu" / "model"), "sqlite:///unused.db")
    runner = Runner(package, device="cpu")
    times = np.array([[np.datetime64("2000-05-01T00") + np.timedelta64(6 * k, "h") for k in range(8)]])
    assert np.isfinite(runner.forecast(np.zeros((1, 4, 2, 16, 32), np.float32), times)).all()

    cpu_trainer = {**GPU_TRAINER, "accelerator": "cpu", "max_steps": 10}
    cpu = experiment(tmp_path / "cpu", advecting_store, name="moved", model=MODEL, trainer=cpu_trainer)
    run_train(tmp_path / "cpu", cpu)
    resumed = run_train(tmp_path / "cpu", cpu, "--ckpt_path", "last", "--trainer.accelerator", "gpu",
                        "--trainer.max_steps", "20")
    assert "Training done: 20 steps" in resumed.stdout


def test_ddp_runs_with_nccl_on_one_gpu(tmp_path, advecting_store):
    config = experiment(tmp_path, advecting_store, name="nccl", model=MODEL,
                        trainer={**GPU_TRAINER, "strategy": "ddp"})
    result = run_train(tmp_path, config)
    assert "Training done" in result.stdout
