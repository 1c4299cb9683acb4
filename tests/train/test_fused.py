"""Fused training (harness.train.fused): K runs as one program give each run's results alone, on real tiny
trainings (16x16 grids, width 8). Equal means: every evaluation row's validation error and training loss within a
relative 1e-5 of the run alone, and the final models' predictions within 1e-5 (absolute): the batched kernels sum
in another order, so float32 rounding (about 1e-7 relative per step) is all that may differ. (Weights are not
compared: the OFormer's attention key bias has a zero gradient in exact arithmetic, softmax being blind to it, and
Adam scales the rounding noise that stands for it to full-size steps, in other directions fused and alone; the
predictions do not depend on it.)"""

import math

import pytest
import torch

from harness.job import TrainConfig
from harness.models.build import build_model
from harness.train.fused import train_group
from harness.train.loop import seed_everything, start, train

torch.set_num_threads(1)
RTOL = 1e-5


def data(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs and a smooth function of them (a learnable map), 2 channels in, 1 out."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 2, 16, 16, generator=g)
    return x, torch.roll(x[:, :1], 1, dims=-1) * 0.5 + x[:, 1:].mean(dim=(-2, -1), keepdim=True)


VAL = data(8, 99)
# Per run: seed, N (20 and 12: partial last batches, stepped alone), learning rate, schedule, patience.
RUNS = [(0, 16, 3e-3, "cosine", 0), (1, 20, 1e-2, "constant", 0), (2, 12, 1e-3, "cosine", 0),
        (3, 16, 3e-2, "cosine", 0)]


def model(arch: str, seed: int) -> torch.nn.Module:
    seed_everything(seed)
    sizes = {"fno": {"width": 8, "modes": 4}, "unet": {"channels": 4, "levels": 2},
             "deeponet": {"branch_width": 8, "trunk_width": 8, "basis": 8},
             "oformer": {"width": 8, "depth": 1, "heads": 2, "patch": 4}}[arch]
    return build_model(arch, sizes, in_channels=2, out_channels=1, resolution=16)


def arguments(tmp_path, name, runs, arch="fno"):
    for seed, n, lr, schedule, patience in runs:
        cfg = TrainConfig(steps=8, lr=lr, schedule=schedule, batch_size=8, eval_every=2, patience=patience,
                          checkpoint_every_s=0.0)
        yield dict(model=model(arch, seed), train_xy=data(n, seed), val_xy=VAL, cfg=cfg, seed=seed, device="cpu",
                   workdir=tmp_path / f"{name}-{seed}")


def assert_equal_runs(alone, fused):
    (a_model, a), (f_model, f) = alone, fused
    assert (a.status, a.best_step, a.steps_run) == (f.status, f.best_step, f.steps_run)
    assert len(a.rows) == len(f.rows)
    for ra, rf in zip(a.rows, f.rows, strict=True):
        assert ra["step"] == rf["step"] and ra["lr"] == rf["lr"]
        for key in ("val_rel_l2", "train_loss"):
            assert (math.isnan(ra[key]) and math.isnan(rf[key])) or rf[key] == pytest.approx(ra[key], rel=RTOL)
    with torch.no_grad():
        assert torch.allclose(a_model.eval()(VAL[0]), f_model.eval()(VAL[0]), rtol=0, atol=RTOL)


def alone_and_fused(tmp_path, runs, arch="fno"):
    alone = [(args["model"], train(**args)) for args in arguments(tmp_path, "alone", runs, arch)]
    started = [start(**args) for args in arguments(tmp_path, "fused", runs, arch)]
    fused = list(zip([run.setup.model for run in started], train_group(started), strict=True))
    return alone, fused


@pytest.mark.parametrize("arch", ["fno", "unet", "deeponet", "oformer"])
def test_a_fused_group_of_four_equals_the_four_runs_alone(tmp_path, arch):
    alone, fused = alone_and_fused(tmp_path, RUNS, arch)
    assert all(r.status == "ok" and r.steps_run == 8 and r.best_val_rel_l2 < r.rows[0]["val_rel_l2"]
               for _, r in alone)  # they learn
    for a, f in zip(alone, fused, strict=True):
        assert_equal_runs(a, f)


def test_a_run_that_stops_early_leaves_the_others_unchanged(tmp_path):
    # run 4 at a learning rate far too high, with patience 1: it stops after its first evaluation without progress
    runs = [*RUNS[:3], (4, 16, 3.0, "constant", 1)]
    alone, fused = alone_and_fused(tmp_path, runs)
    stopped = fused[3][1]
    assert stopped.steps_run < 8 and stopped.status == "ok", stopped.rows
    for a, f in zip(alone, fused, strict=True):
        assert_equal_runs(a, f)
    _, without = alone_and_fused(tmp_path / "three", RUNS[:3])
    for w, f in zip(without, fused[:3], strict=True):  # the group of three, without the run that stopped
        assert_equal_runs(w, f)
