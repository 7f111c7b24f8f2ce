"""A careful, adversarial user: bad settings, names that are paths, damaged stores, checkpoints and packages.

Every case goes through the real CLI and must end as one ``error:`` line with the right exit code, having
written, moved or leaked nothing.
"""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import xarray as xr

from tests.pipelines.conftest import NAME, Trained
from tests.runs import experiment


def assert_one_error(result, code: int, *fragments: str) -> None:
    assert result.code == code, (result.code, result.err[-2000:])
    [line] = result.err.strip().splitlines()
    assert line.startswith("error:") and "Traceback" not in result.err, line
    for fragment in fragments:
        assert fragment in line, line


def written(folder: Path) -> set[str]:
    """Every file under ``folder``, relative, hidden ones included."""
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}


BAD_SETTINGS = {
    "windows.input_steps": ("0", "a whole number >= 1"),
    "windows.output_steps": ("-3", "a whole number >= 1"),
    "loader.batch_size": ("0", "a whole number >= 1"),
    "trainer.max_steps": ("-5", "-1 (no limit) or a whole number >= 1"),
    "trainer.val_check_interval": ("0", "positive"),
    "trainer.precision": ("7", "one of auto, 32-true"),
    "trainer.accelerator": ("gpu", "no CUDA GPU"),
    "optim.lr": ("-0.01", "positive"),
}


@pytest.mark.parametrize("key", list(BAD_SETTINGS))
def test_a_bad_training_setting_is_one_line_before_any_work(key, tmp_path, advecting_store, run_cli, monkeypatch):
    if key == "trainer.accelerator" and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    monkeypatch.chdir(tmp_path)
    config = experiment(tmp_path, advecting_store, tracking={"enabled": True})
    before = written(tmp_path)
    value, allowed = BAD_SETTINGS[key]
    result = run_cli("train", "--config", config, f"--{key}", value)
    assert_one_error(result, 2, key, value, allowed)
    assert written(tmp_path) == before  # no config.yaml, no tracking.json, no mlflow.db, no run


def test_max_steps_zero_is_refused_rather_than_packaging_an_untrained_model(tmp_path, advecting_store, run_cli,
                                                                            monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run_cli("train", "--config", experiment(tmp_path, advecting_store), "--trainer.max_steps", "0")
    assert_one_error(result, 2, "trainer.max_steps", "-1 (no limit) or a whole number >= 1")
    assert not (tmp_path / "runs").exists()


def test_a_bad_predict_setting_is_one_line(workdir, trained, run_cli):
    result = run_cli("predict", "--config", trained.config, "--predict.batch_size", "0")
    assert_one_error(result, 2, "predict.batch_size", "0")
    assert not (workdir / "forecasts").exists()


def test_a_key_of_another_stage_is_named_as_such(tmp_path, run_cli):
    result = run_cli("prepare", "--source", "x.nc", "--variables", "t2m", "--trainer.max_steps", "5")
    assert_one_error(result, 2, "--trainer.max_steps is not a setting of `forecast prepare`", "train")


def test_the_old_data_output_key_says_it_was_renamed(tmp_path, run_cli):
    config = tmp_path / "old.yaml"
    config.write_text("data:\n  output: stores/x.zarr\n")
    assert_one_error(run_cli("prepare", "--config", config), 2, "data.output was renamed data.store")


@pytest.mark.parametrize("name", ["../../escaped", "/tmp/escaped-forecast", "a/b", "..", ""])
@pytest.mark.parametrize("stage", ["train", "evaluate", "predict"])
def test_a_name_is_never_a_path(stage, name, workdir, trained, run_cli):
    before = written(workdir.parent)
    result = run_cli(stage, "--config", trained.config, "--name", name)
    assert_one_error(result, 2, "--name", "no '/'")
    assert written(workdir.parent) == before
    assert not Path("/tmp/escaped-forecast").exists()


def damage_chunk(store: Path, array: str, index: str = "0") -> Path:
    chunk = next((store / array / "c").rglob("*")) if index == "any" else store / array / "c" / index
    while chunk.is_dir():
        chunk = next(chunk.iterdir())
    chunk.write_bytes(chunk.read_bytes()[: max(1, chunk.stat().st_size // 3)])
    return chunk


@pytest.fixture
def damaged_store(workdir, trained) -> Path:
    store = workdir / "damaged.zarr"
    shutil.copytree(trained.store, store)
    damage_chunk(store, "fields", "0")
    return store


@pytest.mark.parametrize("stage", ["train", "evaluate", "predict"])
def test_a_truncated_store_chunk_is_a_data_error_naming_the_store_and_array(stage, workdir, trained, damaged_store,
                                                                           run_cli):
    result = run_cli(stage, "--config", trained.config, "--store", damaged_store)
    assert_one_error(result, 3, str(damaged_store), "'fields'", "prepare it again")


def test_a_store_missing_its_mean_is_refused_before_training(workdir, trained, run_cli):
    store = workdir / "no_mean.zarr"
    shutil.copytree(trained.store, store)
    shutil.rmtree(store / "mean" / "c")
    result = run_cli("train", "--config", trained.config, "--store", store)
    assert_one_error(result, 3, str(store), "statistics are not finite", "mean [nan")


def test_nan_statistics_are_refused(workdir, trained, run_cli):
    store = workdir / "nan_std.zarr"
    shutil.copytree(trained.store, store)
    ds = xr.open_zarr(store, consolidated=False)
    ds["std"].attrs.clear()
    std = xr.Dataset({"std": ("channel", np.array([np.nan, 1.0]))})
    std.to_zarr(store, mode="r+", consolidated=False)
    result = run_cli("train", "--config", trained.config, "--store", store)
    assert_one_error(result, 3, str(store), "statistics")


@pytest.mark.parametrize("content", ["truncated", "garbage", "pickle"])
def test_an_unloadable_checkpoint_is_a_model_error(content, workdir, trained, run_cli):
    checkpoint = workdir / "bad.ckpt"
    last = workdir / "runs" / NAME / "checkpoints" / "last.ckpt"
    if content == "truncated":
        checkpoint.write_bytes(last.read_bytes()[:2000])
    elif content == "garbage":
        checkpoint.write_bytes(b"not a checkpoint at all" * 100)
    else:
        checkpoint.write_bytes(pickle.dumps(Exploit()))
    for args in (("train", "--config", trained.config, "--ckpt_path", checkpoint),
                 ("predict", "--config", trained.config, "--model", checkpoint)):
        result = run_cli(*args)
        assert_one_error(result, 5, str(checkpoint))
    assert not (workdir / "exploited").exists()


class Exploit:
    """A pickle that would create a file if it were ever unpickled."""

    def __reduce__(self):
        return (Path.touch, (Path("exploited"),))


@pytest.mark.parametrize("damage", ["weights", "arrays", "card", "pickle"])
@pytest.mark.parametrize("stage", ["evaluate", "predict"])
def test_a_damaged_package_is_a_model_error_naming_the_file(stage, damage, workdir, trained, run_cli):
    package = workdir / "runs" / NAME / "model"
    file = {"weights": "weights.pt", "arrays": "data.npz", "card": "model.json", "pickle": "weights.pt"}[damage]
    if damage == "pickle":
        torch.save(Exploit(), package / file)  # refused by weights_only: never run
    elif damage == "card":
        (package / file).write_text("{not json")
    else:
        (package / file).write_bytes((package / file).read_bytes()[:100])
    result = run_cli(stage, "--config", trained.config)
    assert_one_error(result, 5, str(package.relative_to(workdir)), "model" if damage == "card" else file)
    assert not (workdir / "exploited").exists()
    assert not (workdir / "forecasts").exists()


@pytest.mark.parametrize("stage", ["evaluate", "predict"])
def test_a_model_from_another_grid_is_a_model_error_naming_both(stage, workdir, trained, run_cli):
    card = workdir / "runs" / NAME / "model" / "data.npz"
    with np.load(card) as data:
        arrays = {name: data[name] for name in data.files}
    arrays["latitude"] = arrays["latitude"] + 1.0  # trained on a shifted grid
    np.savez(card, **arrays)
    result = run_cli(stage, "--config", trained.config)
    assert_one_error(result, 5, "grid", str(trained.store))


def test_a_model_with_other_channels_is_a_model_error(workdir, trained, run_cli):
    card_path = workdir / "runs" / NAME / "model" / "model.json"
    card = json.loads(card_path.read_text())
    card["channels"][1]["name"] = "msl"
    card_path.write_text(json.dumps(card))
    result = run_cli("predict", "--config", trained.config)
    assert_one_error(result, 5, "'msl'", str(trained.store))


def test_a_worse_training_never_replaces_a_better_package_silently(workdir, trained: Trained, run_cli, caplog):
    package = workdir / "runs" / NAME / "model"
    before = json.loads((package / "model.json").read_text())
    result = run_cli("train", "--config", trained.config, "--trainer.max_steps", "1", "--optim.lr", "1",
                     "--trainer.val_check_interval", "1")
    assert result.code == 0, result.err
    assert json.loads((package / "model.json").read_text()) == before  # untouched
    assert (workdir / "runs" / NAME / "model.new" / "weights.pt").exists()
    assert "kept the better model" in caplog.text and "model.new" in result.out
