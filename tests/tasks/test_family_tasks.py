"""Every model family serves every task and strategy: the model each objective builds from a job config's model,
its output for the objective's view, a loss that back-propagates to every weight, and next_step's rollout."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from harness.job import Pretrain
from harness.models import ARCHS, sizes_of
from harness.tasks.pretext import PICL_DIM, make_pretext
from harness.tasks.time_task import FixedFuture, NextStep, rollout
from harness.train import STRATEGIES as NAMES
from harness.train.strategies import STRATEGIES, make_strategy

R, NT, WINDOW, B = 16, 12, 4, 3
TIMES = np.linspace(0.0, 2.0, NT)
# a job config's model of each family, small (harness.models.resolve_model's form)
MODELS = {
    "fno": {"width": 6, "modes": 4},
    "unet": {"arch": "unet", "channels": 4, "levels": 2},
    "deeponet": {"arch": "deeponet", "branch_width": 6, "trunk_width": 8, "basis": 8},
    "oformer": {"arch": "oformer", "width": 8, "depth": 1, "heads": 2, "patch": 4},
}
STEADY = tuple(STRATEGIES)  # every strategy on steady inputs
TIME_PRETEXT = tuple(s for s in NAMES if s != "supervised")  # every pretext task on trajectories


def _generator() -> torch.Generator:
    return torch.Generator().manual_seed(0)


def _steady_batch() -> tuple[torch.Tensor, torch.Tensor]:
    g = _generator()
    x = torch.randn(B, 7, R, R, generator=g)
    x[:, 1:] = torch.rand(B, 6, 1, 1, generator=g)  # coefficient channels are constant fields
    return x, torch.randn(B, 1, R, R, generator=g)


def _trajectories() -> tuple[torch.Tensor, torch.Tensor]:
    u = torch.randn(B, NT, R, R, generator=_generator())
    return u, torch.tensor([[0.01, 0.5, 0.5, 0.0, 0.0], [0.0, 1.0, 0.5, 0.0, 0.0], [0.005, 0.5, 0.5, 0.5, 0.5]])


def _step(objective, model, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """One training view, forward and backward; returns the prediction (every weight must get a gradient)."""
    inputs, target = objective.train_view(model, x, y, _generator())
    pred = model(inputs)
    loss = objective.loss(pred, target)
    assert torch.isfinite(loss)
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())
    assert torch.isfinite(objective.metric(pred.detach(), target)).all()
    return pred


@pytest.mark.parametrize("strategy", STEADY)
@pytest.mark.parametrize("arch", ARCHS)
def test_every_steady_strategy_trains_every_family(arch: str, strategy: str) -> None:
    objective = make_strategy(Pretrain(strategy=strategy, mask_ratio=0.5, mask_patches=4))
    torch.manual_seed(0)
    model = objective.build_model(MODELS[arch], R)
    assert model.arch == arch and model.sizes == sizes_of(MODELS[arch])
    pred = _step(objective, model, *_steady_batch())
    assert pred.shape == {"supervised": (B, 1, R, R), "masked": (B, 1, R, R), "derivative": (B, 5, R, R),
                          "coefficient": (B, 6), "sort_space": (B, 24)}[strategy]


@pytest.mark.parametrize("arch", ARCHS)
def test_fixed_future_and_next_step_with_its_rollout_serve_every_family(arch: str) -> None:
    u, coefs = _trajectories()
    for objective in (FixedFuture(WINDOW, TIMES, target=-1), NextStep(WINDOW, TIMES, unroll=2)):
        torch.manual_seed(0)
        model = objective.build_model(MODELS[arch], R)
        assert _step(objective, model, u, coefs).shape == (B, 1, R, R)
    metrics = rollout(model, (u, coefs), objective, torch.device("cpu"))
    steps = json.loads(metrics["rollout_step_rel_l2"])
    assert len(steps) == NT - WINDOW and np.isfinite(steps).all()
    assert metrics["test_rel_l2"] == metrics["rollout_rel_l2"]


@pytest.mark.parametrize("strategy", TIME_PRETEXT)
@pytest.mark.parametrize("arch", ARCHS)
def test_every_pretext_task_on_trajectories_trains_every_family(arch: str, strategy: str) -> None:
    objective = make_pretext(Pretrain(strategy=strategy, mask_ratio=0.5, mask_patches=4), WINDOW, TIMES)
    torch.manual_seed(0)
    model = objective.build_model(MODELS[arch], R)
    pred = _step(objective, model, *_trajectories())
    assert pred.shape == {"masked": (B, WINDOW, R, R), "derivative": (B, 5, R, R), "coefficient": (B, 5),
                          "sort_time": (B, 24), "sort_space": (B, 24), "jigsaw": (B, 64), "binary": (B, 2),
                          "picl": (B, PICL_DIM)}[strategy]
