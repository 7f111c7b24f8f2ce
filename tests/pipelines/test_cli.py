"""A CLI shaped like the stages: each shows and reads its own sections, quickly, and only imports what it needs."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.runs import subprocess_env

OWN = {"prepare": {"data", "windows"}, "train": {"data", "windows", "model", "optim", "loader", "trainer", "tracking"},
       "evaluate": {"data", "evaluate", "tracking"}, "predict": {"data", "predict", "tracking"}}


@pytest.mark.parametrize("stage", list(OWN))
def test_each_stage_help_is_short_and_lists_only_its_own_sections(stage, run_cli):
    result = run_cli(stage, "--help")
    assert result.code == 0
    lines = result.out.splitlines()
    assert len(lines) < 80
    # a section's heading is "<name>: <what it holds>", one word before the colon
    sections = {line.split(":")[0] for line in lines if line and not line.startswith(" ")
                and line.split(":")[0].isidentifier() and line.split(":")[0] not in {"usage", "Shortcuts"}}
    assert sections == OWN[stage], sections
    if stage != "prepare":
        assert "--data.source" not in result.out and "--data.store" in result.out


def imported(*args: str, code: int = 0) -> set[str]:
    """The top-level packages a ``forecast`` command imports (``python -X importtime``)."""
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "pipelines.cli", *args], env=subprocess_env(),
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == code, result.stderr[-2000:]
    return {line.split("|")[-1].strip().split(".")[0] for line in result.stderr.splitlines() if "|" in line}


def test_sync_runs_starts_without_torch_or_lightning():
    modules = imported("sync-runs", "--help")
    assert "mlflow" in modules and "torch" not in modules and "lightning" not in modules


@pytest.mark.parametrize("stage", ["prepare", "evaluate", "predict"])
def test_stages_that_train_nothing_do_not_import_lightning(stage, tmp_path):
    # the stage runs (and stops at its missing input): its module and everything it imports were loaded
    modules = imported(stage, "--store" if stage != "prepare" else "--source", str(tmp_path / "missing"),
                       code=3 if stage == "prepare" else 5 if stage == "predict" else 3)
    assert "lightning" not in modules
    if stage == "prepare":
        assert "torch" not in modules  # maps in, a store out: no neural-network library
