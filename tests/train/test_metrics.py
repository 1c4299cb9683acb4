"""The test metrics (``harness.train.metrics``) against hand computations on known fields."""

from __future__ import annotations

import math

import pytest
import torch

from harness.train import METRICS
from harness.train.evaluation import evaluate, evaluate_metrics
from harness.train.metrics import I_HIGH, I_LOW, per_sample, score
from harness.train.strategies import Masked, Supervised

R = 32
GRID = torch.arange(R, dtype=torch.float64) / R
X, Y = torch.meshgrid(GRID, GRID, indexing="ij")


def mode(kx: int, ky: int, amplitude: float = 1.0) -> torch.Tensor:
    """amplitude cos(2 pi (kx x + ky y)) on the R x R grid, as one sample of one channel (1, 1, R, R)."""
    return (amplitude * torch.cos(2 * math.pi * (kx * X + ky * Y)))[None, None]


def truth() -> torch.Tensor:
    return (2.0 + torch.sin(2 * math.pi * X) * torch.cos(4 * math.pi * Y))[None, None]


@pytest.mark.parametrize(("kx", "ky", "band"), [(0, 0, "low"), (3, 2, "low"), (4, 0, "mid"), (3, 3, "mid"),
                                                (5, 5, "mid"), (11, 4, "mid"), (12, 0, "high"), (12, 3, "high")])
def test_a_single_fourier_mode_of_error_falls_in_its_radial_band_with_its_rms(kx, ky, band):
    # the shell is floor(sqrt(kx^2 + ky^2)): 3,2 -> 3 (low); 3,3 -> 4 (mid); 11,4 -> 11 (mid); 12,3 -> 12 (high)
    assert (I_LOW, I_HIGH) == (4, 12)
    amplitude = 0.3
    got = score(truth() + mode(kx, ky, amplitude), truth())
    rms = amplitude if (kx, ky) == (0, 0) else amplitude / math.sqrt(2)  # a constant's RMS is itself
    for name in ("low", "mid", "high"):
        assert got[f"frmse_{name}"] == pytest.approx(rms if name == band else 0.0, abs=1e-12), name


def test_the_bands_split_the_error_energy_so_their_squares_add_up_to_the_mse():
    error = torch.randn(3, 1, R, R, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    values = per_sample(1.0 + error, torch.ones_like(error))
    total = sum(values[f"frmse_{b}"] ** 2 for b in ("low", "mid", "high"))
    torch.testing.assert_close(total, error.square().mean(dim=(1, 2, 3)))
    assert all(values[f"frmse_{b}"].gt(0).all() for b in ("low", "mid", "high"))  # white noise fills every band


def test_a_constant_offset_gives_nrmse_per_channel_and_max_error_by_hand():
    true = torch.stack([torch.full((R, R), 2.0), torch.full((R, R), 10.0)])[None]  # (1, 2, R, R)
    pred = true + 0.5
    pred[0, 1, 7, 9] += 2.5  # one point of channel 2 off by 3
    got = score(pred, true)
    rmse_2 = math.sqrt((0.25 * (R * R - 1) + 9.0) / (R * R))
    assert got["nrmse"] == pytest.approx((0.5 / 2.0 + rmse_2 / 10.0) / 2)  # per channel, then the mean
    assert got["rel_l2"] == pytest.approx(math.sqrt((0.25 * (2 * R * R - 1) + 9.0) / (R * R * (4 + 100))))
    assert got["max_err"] == pytest.approx(3.0)


def test_with_one_channel_nrmse_is_relative_l2_and_samples_are_averaged_but_max_error_is_the_worst():
    true = truth().repeat(2, 1, 1, 1)
    pred = true + torch.tensor([0.1, 0.4], dtype=torch.float64)[:, None, None, None]
    got, each = score(pred, true), per_sample(pred, true)
    torch.testing.assert_close(each["nrmse"], each["rel_l2"])
    rms = math.sqrt(4.0 + 0.25)  # 2 + sin(2 pi x) cos(4 pi y): mean square 4 + 1/4
    assert got["nrmse"] == pytest.approx((0.1 + 0.4) / 2 / rms)
    assert got["max_err"] == pytest.approx(0.4)
    assert set(got) == set(METRICS)


def test_frames_between_batch_and_grid_are_channels_and_mismatched_shapes_are_refused():
    true = truth().repeat(2, 3, 1, 1)[:, :, None]  # (2, 3, 1, R, R): frames x one component
    assert score(true + 1.0, true)["max_err"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="differ in shape"):
        score(true[:, :2], true)


def test_a_job_scores_a_field_target_with_every_metric_and_a_pretext_target_with_its_own_only():
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(6, 7, 16, 16, generator=g), torch.randn(6, 1, 16, 16, generator=g)
    torch.manual_seed(0)
    model = Supervised().build_model({"width": 4, "modes": 4}, 16)
    got = evaluate_metrics(model, x, y, device="cpu", batch_size=4)  # batches of 4 and 2
    with torch.no_grad():
        whole = score(model.eval()(x), y)  # all six at once
    assert set(got) == {f"test_{name}" for name in METRICS}
    assert got == pytest.approx({f"test_{name}": value for name, value in whole.items()}, rel=1e-5)
    assert got["test_rel_l2"] == evaluate(model, x, y, device="cpu", batch_size=4)
    masked = Masked(0.5, 4)
    got = evaluate_metrics(masked.build_model({"width": 4, "modes": 4}, 16), x, y, device="cpu", objective=masked)
    assert set(got) == {"test_rel_l2"}  # its own metric, in the column every job has; no field metric
