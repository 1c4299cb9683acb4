"""Test metrics of predicted fields against the true ones: relative L2, nRMSE, max error and fRMSE per band.

``score(prediction, truth)`` is the one public entry point; ``per_sample`` gives the values it reduces. Both take
fields shaped (batch, ..., H, W): the last two axes are the periodic grid of the unit square, every axis between the
batch and the grid is a channel (a solution component, or a frame of a trajectory). Only what a model predicted is
scored: a caller passes predicted frames, never the input window a time-dependent model was given.

Definitions, for one sample with error e = prediction - truth and truth u, both (C, H, W):

- ``rel_l2``: ||e|| / ||u|| over all channels and grid points together (``harness.train.objective.relative_l2``,
  the training loop's metric).
- ``nrmse``: PDEBench's normalised RMSE, per channel c: sqrt(mean_x e_c^2) / sqrt(mean_x u_c^2), averaged over the
  channels. For one channel it equals ``rel_l2``; they differ where channels (or frames) differ in scale.
- ``max_err``: max_x |e|, the worst grid point; ``score`` reduces it by the max over samples (the worst point of
  all the data, as PDEBench), every other metric by the mean over samples.
- ``frmse_low`` / ``frmse_mid`` / ``frmse_high``: the error's RMS in a band of radial wavenumbers, PDEBench's bands:
  the shell of an integer wavenumber (kx, ky) (every sign, as ``torch.fft.fft2`` orders them) is
  floor(sqrt(kx^2 + ky^2)); low is shells [0, ``I_LOW``), middle [``I_LOW``, ``I_HIGH``), high ``I_HIGH`` and up.
  Normalisation (ours, not PDEBench's): the band's value is sqrt(sum_{k in band} |E_k|^2) / (H W), E = fft2(e),
  which by Parseval is the RMS over the grid of e filtered to the band; so the three bands cover every wavenumber
  and low^2 + mid^2 + high^2 = RMSE^2 for each field. PDEBench instead sums only kx, ky >= 0 within the
  Nyquist circle, takes the RMS over the batch of each shell and then the mean over a band's shells. Per channel,
  then averaged over the channels, as ``nrmse``. On a 16-point grid the high band holds only the corners beyond
  |k| = 8 * sqrt(2) < 12: nothing, so ``frmse_high`` is 0 there.
"""

from __future__ import annotations

import torch

from harness.train import DEFAULT_METRIC, METRICS
from harness.train.objective import relative_l2

I_LOW, I_HIGH = 4, 12  # PDEBench's band edges in radial wavenumber shells (its iLow, iHigh defaults)
MAXED = ("max_err",)  # reduced over samples by the max; every other metric by the mean
# What a job records beside test_rel_l2, which is its objective's own metric (relative L2 for a field target)
ADDED = tuple(name for name in METRICS if name != DEFAULT_METRIC)


def _channels(fields: torch.Tensor) -> torch.Tensor:
    """``fields`` (B, ..., H, W) as (B, C, H, W) in float64."""
    if fields.ndim < 3:
        raise ValueError(f"fields must be shaped (batch, ..., H, W), got shape {tuple(fields.shape)}")
    return fields.reshape(fields.shape[0], -1, *fields.shape[-2:]).double()


def _shells(height: int, width: int, device: torch.device) -> torch.Tensor:
    """The radial shell floor(|k|) of every integer wavenumber of an fft2 on a (height, width) grid."""
    kx = torch.fft.fftfreq(height, 1.0 / height, device=device, dtype=torch.float64)
    ky = torch.fft.fftfreq(width, 1.0 / width, device=device, dtype=torch.float64)
    return torch.sqrt(kx[:, None] ** 2 + ky[None, :] ** 2).floor()


def band_rms(error: torch.Tensor) -> dict[str, torch.Tensor]:
    """The fRMSE of each field of ``error`` (B, C, H, W) in the low, middle and high bands, each (B, C)."""
    height, width = error.shape[-2:]
    power = torch.fft.fft2(error).abs().square()
    shells = _shells(height, width, error.device)
    bands = {"low": shells < I_LOW, "mid": (shells >= I_LOW) & (shells < I_HIGH), "high": shells >= I_HIGH}
    return {f"frmse_{band}": (power * mask).sum(dim=(-2, -1)).sqrt() / (height * width)
            for band, mask in bands.items()}


def per_sample(prediction: torch.Tensor, truth: torch.Tensor) -> dict[str, torch.Tensor]:
    """Every metric of ``METRICS`` for each sample of ``prediction`` against ``truth`` (both (B, ..., H, W)):
    name -> (B,) float64, as the module docstring defines them."""
    pred, true = _channels(prediction), _channels(truth)
    error = pred - true
    rmse = error.square().mean(dim=(-2, -1)).sqrt()
    values = {"rel_l2": relative_l2(pred, true),
              "nrmse": (rmse / true.square().mean(dim=(-2, -1)).sqrt()).mean(dim=1),
              "max_err": error.abs().flatten(1).amax(dim=1)}
    values.update({name: band.mean(dim=1) for name, band in band_rms(error).items()})
    return {name: values[name] for name in METRICS}


def reduce(values: dict[str, torch.Tensor]) -> dict[str, float]:
    """Per-sample metrics (name -> (B,)) -> one number each: the max for ``MAXED``, else the mean."""
    return {name: float(v.max() if name in MAXED else v.mean()) for name, v in values.items()}


def score(prediction: torch.Tensor, truth: torch.Tensor) -> dict[str, float]:
    """The test metrics of predicted fields against the truth, both (batch, ..., H, W) on a periodic unit-square
    grid: {"rel_l2", "nrmse", "max_err", "frmse_low", "frmse_mid", "frmse_high"} -> float (module docstring):
    the mean over samples, ``max_err`` the max. Pass predicted frames only (never a model's input window)."""
    if prediction.shape != truth.shape:
        raise ValueError(f"prediction {tuple(prediction.shape)} and truth {tuple(truth.shape)} differ in shape")
    return reduce(per_sample(prediction, truth))
