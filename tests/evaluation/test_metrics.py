"""Verification scores against values counted and computed by hand on tiny grids."""

import math

import numpy as np
import pytest
import xarray as xr

from forecast.evaluation.metrics import ScoreAccumulator, scores_table, skill_score

LAT_WEIGHTS = np.array([0.5, 1.5])  # mean 1, the southern row weighs a third as much as the northern


class Scores(ScoreAccumulator):
    """The accumulator with one climatology map ``[C, H, W]`` for every valid time, as the tests set it."""

    def __init__(self, climatology: np.ndarray, **kwargs):
        super().__init__(**kwargs)
        self.climatology = climatology

    def update(self, forecast: np.ndarray, truth: np.ndarray) -> None:
        super().update(forecast, truth, self.climatology)


def accumulator(shape: tuple[int, int], mask: np.ndarray | None = None, climatology: np.ndarray | None = None,
                channels: tuple[str, ...] = ("t2m",), leads: int = 1,
                thresholds: dict[str, list[float]] | None = None) -> Scores:
    grid = (len(channels), *shape)
    return Scores(
        channels=list(channels),
        leads=leads,
        lat_weights=LAT_WEIGHTS,
        mask=np.ones(grid, dtype=bool) if mask is None else mask,
        climatology=np.zeros(grid) if climatology is None else climatology,
        thresholds=thresholds,
    )


def test_rmse_mae_bias_are_latitude_weighted_and_skip_masked_nan():
    mask = np.array([[[True, True], [True, False]]])  # [C=1, H=2, W=2]
    forecast = np.array([[1.0, -2.0], [3.0, np.nan]])[None, None, None]  # [1, 1, 1, 2, 2]
    truth = np.array([[0.0, 0.0], [1.0, 7.0]])[None, None, None]
    acc = accumulator((2, 2), mask=mask)
    acc.update(forecast, truth)
    scores = acc.result()
    # errors 1, -2 (weight 0.5 each) and 2 (weight 1.5); the NaN point weighs 0; Σw = 0.5 + 0.5 + 1.5 = 2.5
    # RMSE = sqrt((0.5·1 + 0.5·4 + 1.5·4) / 2.5) = sqrt(8.5 / 2.5) = sqrt(3.4)
    assert scores.rmse.sel(lead=1, channel="t2m").item() == pytest.approx(math.sqrt(3.4))
    # MAE = (0.5·1 + 0.5·2 + 1.5·2) / 2.5 = 4.5 / 2.5
    assert scores.mae.sel(lead=1, channel="t2m").item() == pytest.approx(1.8)
    # bias = (0.5·1 − 0.5·2 + 1.5·2) / 2.5 = 2.5 / 2.5
    assert scores.bias.sel(lead=1, channel="t2m").item() == pytest.approx(1.0)
    assert scores.attrs["n_samples"] == 1


def test_fully_masked_channel_scores_nan():
    mask = np.zeros((1, 2, 2), dtype=bool)
    acc = accumulator((2, 2), mask=mask)
    acc.update(np.full((1, 1, 1, 2, 2), np.nan), np.full((1, 1, 1, 2, 2), np.nan))
    scores = acc.result()
    assert np.isnan(scores.rmse).all()
    assert np.isnan(scores.acc).all()


def test_acc_is_one_for_a_perfect_forecast_and_minus_one_for_an_anti_correlated_one():
    climatology = np.array([[[10.0, 20.0], [30.0, 40.0]]])  # [C=1, H=2, W=2]
    truth = climatology + np.array([[1.0, -2.0], [0.5, 3.0]])
    anti = 2 * climatology - truth  # anomaly −(truth anomaly)
    for forecast, expected in ((truth, 1.0), (anti, -1.0)):
        acc = accumulator((2, 2), climatology=climatology)
        acc.update(forecast[None, None], truth[None, None])
        assert acc.result().acc.item() == pytest.approx(expected)


def test_acc_averages_per_sample_values_and_skips_flat_anomalies():
    climatology = np.array([[[10.0], [20.0]]])  # [C=1, H=2, W=1]
    truth = np.broadcast_to(np.array([[[11.0], [21.0]]]), (3, 1, 1, 2, 1))  # anomaly 1 on both rows
    forecast = np.stack([
        np.array([[[11.0], [20.0]]]),  # anomaly (1, 0): Σw f'o' = 0.5, Σw f'² = 0.5, Σw o'² = 2 → 0.5 / sqrt(1)
        np.array([[[11.0], [21.0]]]),  # perfect → 1
        np.array([[[10.0], [20.0]]]),  # the climatology itself: no anomaly, no correlation, not counted
    ])[:, None]  # [N=3, T=1, C=1, H=2, W=1]
    acc = accumulator((2, 1), climatology=climatology)
    acc.update(forecast, truth)
    assert acc.result().acc.item() == pytest.approx((0.5 + 1.0) / 2)

    flat = accumulator((2, 1), climatology=climatology)
    flat.update(forecast[2:], truth[2:])
    assert np.isnan(flat.result().acc.item())


def test_categorical_scores_from_a_hand_counted_contingency_table():
    mask = np.ones((2, 2, 3), dtype=bool)
    mask[1, 1, 2] = False
    forecast = np.zeros((1, 2, 2, 2, 3))  # [N, T, C=(t2m, tp), H, W]; lead 2 all zero: no events at all
    truth = np.zeros((1, 2, 2, 2, 3))
    forecast[0, 0, 1] = [[0.0, 2.0, 5.0], [1.0, 0.5, np.nan]]
    truth[0, 0, 1] = [[1.0, 2.0, 0.0], [3.0, 0.0, 9.0]]  # 9.0 sits on the invalid point: never counted
    acc = accumulator((2, 3), mask=mask, channels=("t2m", "tp"), leads=2, thresholds={"tp": [1.0, 5.0]})
    acc.update(forecast, truth)
    scores = acc.result()

    assert scores.threshold_channel.values.tolist() == ["tp", "tp"]
    assert scores.threshold_value.values.tolist() == [1.0, 5.0]
    # tp >= 1 at lead 1: forecast yes at (0,1) (0,2) (1,0); observed yes at (0,0) (0,1) (1,0)
    # hits (0,1) (1,0) = 2, misses (0,0) = 1, false alarms (0,2) = 1; unweighted despite lat weights
    first = scores.isel(channel_threshold=0, lead=0)
    assert (first.hits.item(), first.misses.item(), first.false_alarms.item()) == (2, 1, 1)
    assert first.csi.item() == pytest.approx(2 / 4)
    assert first.pod.item() == pytest.approx(2 / 3)
    assert first.far.item() == pytest.approx(1 / 3)
    # tp >= 5 at lead 1: the forecast 5.0 counts (>=), nothing valid observed → one false alarm only
    second = scores.isel(channel_threshold=1, lead=0)
    assert (second.hits.item(), second.misses.item(), second.false_alarms.item()) == (0, 0, 1)
    assert second.csi.item() == 0.0
    assert np.isnan(second.pod.item())
    assert second.far.item() == 1.0
    # lead 2: no events anywhere, every ratio is 0/0
    quiet = scores.sel(lead=2)
    assert np.isnan(quiet.csi).all() and np.isnan(quiet.pod).all() and np.isnan(quiet.far).all()


def test_two_batches_score_the_same_as_one():
    rng = np.random.default_rng(0)
    shape = (5, 3, 2, 2, 4)  # [N, T, C, H, W]
    mask = rng.random(shape[2:]) > 0.2
    forecast = rng.normal(size=shape).astype(np.float32)
    truth = rng.normal(size=shape).astype(np.float32)
    forecast[:, :, ~mask] = np.nan
    truth[:, :, ~mask] = np.nan
    climatology = rng.normal(scale=0.1, size=shape[2:])
    kwargs = {"mask": mask, "climatology": climatology, "channels": ("a", "b"), "leads": 3,
              "thresholds": {"a": [0.0, 1.0], "b": [-0.5]}}

    whole = accumulator((2, 4), **kwargs)
    whole.update(forecast, truth)
    split = accumulator((2, 4), **kwargs)
    split.update(forecast[:2], truth[:2])
    split.update(forecast[2:], truth[2:])

    expected, actual = whole.result(), split.result()
    assert actual.attrs["n_samples"] == expected.attrs["n_samples"] == 5
    for name in expected.data_vars:
        assert np.isfinite(expected[name]).all(), name
        np.testing.assert_allclose(actual[name], expected[name], rtol=1e-12, err_msg=name)


def test_skill_score_is_one_minus_the_ratio():
    leads = {"lead": [1, 2, 3]}
    score = xr.DataArray([1.0, 2.0, 4.0], dims="lead", coords=leads, name="rmse")
    reference = xr.DataArray([2.0, 2.0, 2.0], dims="lead", coords=leads, name="rmse")
    skill = skill_score(score, reference)
    np.testing.assert_allclose(skill, [0.5, 0.0, -1.0])  # better, as good, worse than the reference
    assert skill.name == "rmse_skill"
    with pytest.raises(ValueError, match="lead"):
        skill_score(score, reference.assign_coords(lead=[1, 2, 4]))


def test_update_names_the_mismatched_shapes():
    acc = accumulator((2, 2), leads=2)
    with pytest.raises(ValueError, match=r"differs from truth shape \(1, 2, 1, 2, 3\)"):
        acc.update(np.zeros((1, 2, 1, 2, 2)), np.zeros((1, 2, 1, 2, 3)))
    with pytest.raises(ValueError, match=r"\[T, C, H, W\] = \(2, 1, 2, 2\)"):
        acc.update(np.zeros((1, 3, 1, 2, 2)), np.zeros((1, 3, 1, 2, 2)))


def test_constructor_rejects_a_mask_off_the_grid_and_unknown_threshold_channels():
    with pytest.raises(ValueError, match="mask shape"):
        accumulator((2, 2), mask=np.ones((1, 3, 2), dtype=bool))
    with pytest.raises(ValueError, match="'tp'"):
        accumulator((2, 2), thresholds={"tp": [1.0]})


def test_scores_table_lists_each_forecast_and_the_model_skill():
    def scores(rmse: list[float], acc: list[float]) -> xr.Dataset:
        values = {"rmse": rmse, "acc": acc}
        return xr.Dataset({k: (("lead", "channel"), np.array(v)[:, None]) for k, v in values.items()},
                          coords={"lead": [1, 2, 3], "channel": ["t2m"]})

    table = scores_table({
        "model": scores([0.5, 1.0, 1.5], [0.95, 0.9, 0.8]),
        "persistence": scores([1.0, 2.0, 3.0], [0.9, 0.7, 0.5]),
        "climatology": scores([2.0, 2.0, 2.0], [np.nan] * 3),  # no anomaly, so no ACC
    }, channel="t2m", leads=[1, 3])

    for word in ("RMSE t2m", "ACC t2m", "RMSE skill of model vs", "model", "persistence", "climatology"):
        assert word in table
    lines = table.splitlines()
    lead_3 = [line.split() for line in lines if line.startswith("   3")]
    assert lead_3[0] == ["3", "1.5", "3", "2"]  # RMSE
    assert lead_3[1] == ["3", "0.800", "0.500", "-"]  # ACC; NaN prints as "-"
    assert lead_3[2] == ["3", "0.500", "0.250"]  # skill: 1 − 1.5/3, 1 − 1.5/2
    for block in table.split("\n\n"):
        rows = block.splitlines()[1:]
        assert len({len(row) for row in rows}) == 1, block  # columns line up
