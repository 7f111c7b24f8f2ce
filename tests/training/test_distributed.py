"""Real DDP: two CPU processes (gloo) against one process with the same global batch."""

from __future__ import annotations

import pytest

from tests.runs import experiment, last_validation, run_train

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
