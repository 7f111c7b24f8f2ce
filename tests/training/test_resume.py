"""A training killed with SIGKILL mid-epoch resumes from ``last`` and ends with the uninterrupted run's weights."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch

from tests.runs import experiment, run_train, subprocess_env, train_command

EPOCH = 15  # batches per epoch
TRAINER = {"max_steps": 60, "limit_train_batches": EPOCH, "val_check_interval": 10, "limit_val_batches": 2,
           "checkpoint_every_n_steps": 7, "deterministic": True}
MODEL = {"kind": "convlstm", "options": {"hidden": [8, 8]}}
SECTIONS = {"model": MODEL, "trainer": TRAINER, "optim": {"teacher_forcing_start": 0.5, "teacher_forcing_steps": 50}}


def checkpoint_step(path: Path) -> int:
    return torch.load(path, map_location="cpu", weights_only=False)["global_step"]


def kill_after(command: list[str], cwd: Path, last: Path, min_step: int) -> int:
    """Start ``command``, SIGKILL it once ``last`` holds a mid-epoch step of at least ``min_step``; that step."""
    process = subprocess.Popen(command, cwd=cwd, env=subprocess_env(), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and process.poll() is None:
            if last.exists() and (step := checkpoint_step(last)) >= min_step and step % EPOCH:
                process.send_signal(signal.SIGKILL)
                process.wait()
                return checkpoint_step(last)
            time.sleep(0.02)
        raise AssertionError(f"training ended (exit {process.poll()}) before a checkpoint at step >= {min_step}")
    finally:
        process.kill()


def weights(run: Path) -> dict[str, torch.Tensor]:
    return torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)["state_dict"]


@pytest.mark.slow
def test_killed_training_resumes_from_last_and_matches_an_uninterrupted_run(tmp_path, advecting_store):
    straight = experiment(tmp_path / "straight", advecting_store, name="run", **SECTIONS)
    run_train(tmp_path / "straight", straight)

    config = experiment(tmp_path / "killed", advecting_store, name="run", **SECTIONS)
    run = tmp_path / "killed" / "runs" / "run"
    killed_at = kill_after(train_command(config), tmp_path / "killed", run / "checkpoints" / "last.ckpt", 20)
    assert killed_at < TRAINER["max_steps"]
    assert not list(run.glob("checkpoints/.*tmp*"))  # an interrupted checkpoint write leaves nothing behind
    result = run_train(tmp_path / "killed", config, "--ckpt_path", "last")
    assert f"{TRAINER['max_steps']} steps" in result.stdout

    expected, resumed = weights(tmp_path / "straight" / "runs" / "run"), weights(run)
    assert expected.keys() == resumed.keys()
    for name, tensor in expected.items():
        torch.testing.assert_close(resumed[name], tensor, rtol=0, atol=0, msg=name)
