"""The 2D FNO: shapes, its size functions, the spectral convolution's maths, clear errors."""

import math
import re

import pytest
import torch

from harness.errors import HarnessError
from harness.models import count_params, flops_per_sample, train_memory
from harness.models.fno import FNO, SpectralConv2d

torch.set_num_threads(1)


@pytest.mark.parametrize(
    ("width", "modes", "resolution", "batch", "in_channels", "out_channels"),
    [(8, 4, 16, 2, 7, 1), (4, 2, 8, 1, 7, 1), (8, 8, 16, 3, 1, 1), (6, 3, 12, 2, 3, 5), (8, 4, 15, 2, 7, 1)],
    ids=["w8-m4-r16", "w4-m2-r8", "modes-at-nyquist", "odd-width-3-out", "odd-resolution"],
)
def test_output_shape(width, modes, resolution, batch, in_channels, out_channels):
    model = FNO(width, modes, in_channels=in_channels, out_channels=out_channels)
    out = model(torch.randn(batch, in_channels, resolution, resolution))
    assert out.shape == (batch, out_channels, resolution, resolution)
    assert out.dtype == torch.float32
    assert torch.isfinite(out).all()


@pytest.mark.parametrize(
    ("width", "modes", "in_channels", "n_layers", "out_channels"),
    [(16, 4, 7, 4, 1), (8, 2, 7, 4, 1), (5, 3, 1, 2, 1), (12, 6, 4, 3, 5), (1, 1, 1, 1, 1)],
)
def test_count_params_matches_the_model(width, modes, in_channels, n_layers, out_channels):
    model = FNO(width, modes, in_channels=in_channels, n_layers=n_layers, out_channels=out_channels)
    expected = count_params(width, modes, in_channels=in_channels, n_layers=n_layers, out_channels=out_channels)
    assert model.num_params() == expected
    # the same count as a real-valued view of every parameter
    assert sum(torch.view_as_real(p).numel() if p.is_complex() else p.numel() for p in model.parameters()) == expected


def test_count_params_order_of_the_paper():
    # papers.md: parameters ~ 16 width^2 modes^2, width 16 / modes 4 = 67K
    assert count_params(16, 4) == 67_329
    assert count_params(16, 4) == pytest.approx(16 * 16**2 * 4**2, rel=0.05)
    assert count_params(64, 32) == pytest.approx(67e6, rel=0.01)


def test_flops_per_sample_formula():
    # width 1, modes 1, R 2 (N = 4), 1 input channel, 1 layer: lifting 8, layer 8 + 40 + 16, head 32
    assert flops_per_sample(1, 1, 2, in_channels=1, n_layers=1) == 104.0
    w, m, r = 32, 8, 64
    n = r * r
    pointwise_and_fft = 4 * (2 * n * w * w + 5 * n * math.log2(n) * w)
    assert flops_per_sample(w, m, r) == pytest.approx(
        2 * n * 7 * w + pointwise_and_fft + 4 * 16 * m * m * w * w + 2 * n * (2 * w * w + 2 * w)
    )
    assert flops_per_sample(2 * w, m, r) > 3 * flops_per_sample(w, m, r)


@pytest.mark.parametrize(
    ("height", "width", "modes"),
    [(12, 12, 3), (10, 9, 5), (10, 8, 5), (64, 64, 20), (40, 45, 17), (36, 34, 18)],
    ids=["matmul-dft", "matmul-dft-odd", "matmul-dft-nyquist", "fft", "fft-odd-nonsquare", "fft-nyquist"],
)
def test_spectral_conv_and_its_gradients_match_naive_einsum(height, width, modes):
    # small modes take the truncated DFT as a matrix product, large ones the FFT with its own backward
    torch.manual_seed(0)
    conv = SpectralConv2d(width=3, modes=modes)
    x = torch.randn(2, 3, height, width, requires_grad=True)
    m = conv.modes
    x_ft = torch.fft.rfft2(x)
    out_ft = torch.zeros_like(x_ft)
    weight = torch.view_as_complex(conv.weight)
    out_ft[:, :, :m, :m] = torch.einsum("bixy,xyio->boxy", x_ft[:, :, :m, :m], weight[:m])
    out_ft[:, :, -m:, :m] = torch.einsum("bixy,xyio->boxy", x_ft[:, :, -m:, :m], weight[m:])
    reference = torch.fft.irfft2(out_ft, s=(height, width))
    out = conv(x)
    torch.testing.assert_close(out, reference, atol=1e-5, rtol=1e-4)
    probe = torch.randn_like(out)
    ours = torch.autograd.grad((out * probe).sum(), (x, conv.weight))
    naive = torch.autograd.grad((reference * probe).sum(), (x, conv.weight))
    for a, b in zip(ours, naive, strict=True):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)


def test_spectral_conv_keeps_only_low_modes():
    conv = SpectralConv2d(width=2, modes=2)
    r = 16
    grid = torch.arange(r) / r
    high = torch.cos(2 * math.pi * 5 * grid)[None, None, :, None].expand(1, 2, r, r)  # k1 = 5 >= modes
    assert conv(high).abs().max() < 1e-5


def test_fno_is_translation_equivariant():
    # no grid channels on a periodic grid: shifting the input shifts the output
    torch.manual_seed(0)
    model = FNO(8, 4, in_channels=3)
    x = torch.randn(2, 3, 16, 16)
    shifted = model(torch.roll(x, shifts=(3, 5), dims=(-2, -1)))
    torch.testing.assert_close(shifted, torch.roll(model(x), shifts=(3, 5), dims=(-2, -1)), atol=1e-5, rtol=1e-4)


def test_fft_runs_in_float32_under_bf16_autocast():
    torch.manual_seed(0)
    model = FNO(8, 4)
    x = torch.randn(2, 7, 16, 16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert model.spectral[0](torch.randn(2, 8, 16, 16).bfloat16()).dtype == torch.float32
        out = model(x)
    torch.testing.assert_close(out.float(), model(x), atol=0.05, rtol=0.05)


@pytest.mark.parametrize(("modes", "resolution"), [(9, 16), (5, 8), (3, 4)], ids=["9-on-16", "5-on-8", "3-on-4"])
def test_modes_too_large_for_resolution(modes, resolution):
    model = FNO(4, modes)
    with pytest.raises(HarnessError, match=re.escape(f"modes={modes} is too large for resolution")):
        model(torch.randn(1, 7, resolution, resolution))


def test_wrong_input_channels():
    with pytest.raises(HarnessError, match=re.escape("FNO expects inputs of shape (batch, 7, H, W), but got")):
        FNO(4, 2)(torch.randn(1, 3, 8, 8))


def test_invalid_sizes():
    with pytest.raises(HarnessError, match="FNO sizes must all be >= 1"):
        FNO(0, 4)


@pytest.mark.parametrize(("width", "modes", "resolution"), [(8, 4, 16), (16, 8, 32), (32, 16, 32)])
def test_train_memory_bounds_what_a_train_step_keeps(width, modes, resolution):
    # expand refuses a model by train_memory: it must cover what autograd really saves for the backward
    model, batch = FNO(width, modes), 2
    saved = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        saved[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(torch.randn(batch, 7, resolution, resolution)).square().sum().backward()
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    activations = sum(n for ptr, n in saved.items() if ptr not in params)
    need = train_memory(width, modes, resolution, batch=batch, samples=10)
    assert activations <= need.activations <= 2 * activations
    assert need.params == 16 * model.num_params()  # weights, gradients, Adam's two moments, float32
    assert need.data == 10 * 8 * resolution**2 * 4 and need.total == need.params + need.activations + need.data
