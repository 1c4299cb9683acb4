"""The time-dependent tasks: what their objectives cut out of trajectories, pushforward training, the rollout
metrics, the pretext tasks on windows, and the smoke strategies-time sweep end to end."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from torch import nn

from harness.job import Downstream, Forecast, JobConfig, Model
from harness.pde import TIME_COEFS
from harness.pde.cache import resolve_cache_dir
from harness.pde.time_dataset import generate_time
from harness.tasks import MASK_FRAMES, SORT_CHUNKS
from harness.tasks.pretext import ORDERS, SortTime, TimeCoefficient, TimeMasked, finite_differences
from harness.tasks.time_task import VALID_REL_L2, FixedFuture, ForecastTask, NextStep, rollout, valid_steps
from harness.tasks.trajectories import COEF_SCALES, systems_of
from harness.train import STRATEGIES
from harness.train.loop import TrainConfig, seed_everything, train
from harness.train.metrics import ADDED, score
from tests.helpers import assert_learns_and_resumes, cli, harness, write_sweep

ROOT = Path(__file__).resolve().parents[2]
W, NT, R = 4, 12, 16
TIMES = np.linspace(0.0, 2.0, NT)
SCALE = torch.tensor([COEF_SCALES[c] for c in TIME_COEFS])  # the five coefficient channels'


def generator(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def counting(b: int = 5, nt: int = NT, r: int = R) -> tuple[torch.Tensor, torch.Tensor]:
    """Trajectories whose frame j is the constant field j (+ 100 b for sample b), and advection coefficients."""
    u = (torch.arange(nt, dtype=torch.float32)[None, :] + 100 * torch.arange(b)[:, None]).reshape(b, nt, 1, 1)
    return u.expand(b, nt, r, r).clone(), torch.tensor([[0.0, 1.0, 0.5, 0.0, 0.0]] * b)


def frame_values(inputs: torch.Tensor, frames: int) -> torch.Tensor:
    return inputs[:, :frames, 0, 0]


def test_fixed_future_inputs_are_the_first_frames_and_the_scaled_coefficients():
    x, y = counting()
    inputs, target = FixedFuture(W, TIMES, target=-1).view(x, y, generator())
    assert inputs.shape == (5, W + 5, R, R) and target.shape == (5, 1, R, R)
    torch.testing.assert_close(frame_values(inputs, W), x[:, :W, 0, 0])
    torch.testing.assert_close(target[:, 0, 0, 0], x[:, NT - 1, 0, 0])
    torch.testing.assert_close(inputs[:, W:, 3, 7], y / SCALE)
    assert FixedFuture(W, TIMES, target=6).view(x, y, generator())[1][0, 0, 0, 0] == 6


def test_next_step_sees_a_window_and_the_frame_after_it_and_pushes_forward_its_own_predictions():
    x, y = counting(b=64)
    inputs, target = NextStep(W, TIMES).view(x, y, generator())
    starts = frame_values(inputs, W)[:, 0] % 100
    torch.testing.assert_close(frame_values(inputs, W) % 100, starts[:, None] + torch.arange(W))
    torch.testing.assert_close(target[:, 0, 0, 0] % 100, starts + W)
    assert set(starts.tolist()) == set(range(NT - W))  # every start drawn

    calls = []

    def plus_half(inp: torch.Tensor) -> torch.Tensor:  # a model: the newest frame + 0.5
        calls.append(torch.is_grad_enabled())
        return inp[:, W - 1:W] + 0.5

    objective, ks = NextStep(W, TIMES, unroll=3), set()
    for seed in range(12):
        calls.clear()
        inputs, target = objective.train_view(plus_half, x, y, generator(seed))
        frames = frame_values(inputs, W)
        k = len(calls)
        ks.add(k)
        assert not any(calls)  # pushforward runs without gradients
        first = frames[:, 0] % 100  # the window started k frames before its first remaining true frame
        torch.testing.assert_close(target[:, 0, 0, 0] % 100, first + W)  # the target: the frame after the steps
        expected = torch.cat([first[:, None] + torch.arange(W - k),
                              first[:, None] + W - k - 1 + 0.5 * torch.arange(1, k + 1)], dim=1)
        torch.testing.assert_close(frames % 100, expected)
    assert ks == {0, 1, 2, 3}


class Persistence(nn.Module):
    """Predicts that the newest input frame stays as it is."""

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return inputs[:, W - 1:W]


def test_rollout_records_per_step_and_accumulated_errors():
    data = generate_time("heat", 6, resolution=R, nt=NT)
    u, coefs = torch.tensor(data.u), torch.tensor(data.coef_common, dtype=torch.float32)
    got = rollout(Persistence(), (u, coefs), NextStep(W, TIMES), torch.device("cpu"))
    frames = data.u.astype(np.float64)
    held = frames[:, W - 1:W]  # persistence feeds the same frame back: every prediction is frame W-1
    err = ((held - frames[:, W:]) ** 2).sum(axis=(2, 3))
    norm = (frames[:, W:] ** 2).sum(axis=(2, 3))
    per_step = np.sqrt(err / norm).mean(axis=0)
    accumulated = np.sqrt(err.cumsum(axis=1) / norm.cumsum(axis=1)).mean(axis=0)
    np.testing.assert_allclose(json.loads(got["rollout_step_rel_l2"]), per_step, rtol=1e-5)
    np.testing.assert_allclose(json.loads(got["rollout_accum_rel_l2"]), accumulated, rtol=1e-5)
    assert got["test_rel_l2"] == got["rollout_rel_l2"] == pytest.approx(accumulated[-1], rel=1e-5)
    assert len(per_step) == NT - W and np.all(np.diff(per_step) > 0)  # heat decays away from the held frame


def test_finite_differences_are_second_order_on_an_exact_heat_solution():
    nu = 2e-3

    def errors(r: int, nt: int) -> np.ndarray:
        t = np.linspace(0.0, 0.5, nt)
        x = np.arange(r) / r
        shape = np.sin(2 * np.pi * x)[:, None] * np.cos(4 * np.pi * x)[None, :]
        decay = np.exp(-nu * 20 * np.pi**2 * t)
        u = torch.tensor(shape[None, None] * decay[None, :, None, None])
        got = finite_differences(u, t[1] - t[0])[0].numpy()
        gx = 2 * np.pi * np.cos(2 * np.pi * x)[:, None] * np.cos(4 * np.pi * x)[None, :]
        gy = -4 * np.pi * np.sin(2 * np.pi * x)[:, None] * np.sin(4 * np.pi * x)[None, :]
        exact = [-nu * 20 * np.pi**2 * shape, gx, gy, -4 * np.pi**2 * shape, -16 * np.pi**2 * shape]
        return np.array([np.abs(g - e).max() / np.abs(e).max() for g, e in zip(got, exact, strict=True)])

    coarse, fine = errors(32, 11), errors(64, 21)
    assert coarse.max() < 0.07, coarse
    np.testing.assert_allclose(coarse / fine, 4.0, rtol=0.1)  # halving h and dt quarters every error


def test_sort_time_shuffles_chunks_of_the_window_by_the_order_it_labels():
    x, y = counting(b=48, nt=NT)
    objective = SortTime(8, TIMES)
    inputs, label = objective.view(x, y, generator(3))
    values = frame_values(inputs, 8) % 100
    start = values.min(dim=1).values
    chunks = ((values - start[:, None]) // (8 // SORT_CHUNKS)).long()[:, ::8 // SORT_CHUNKS]
    assert torch.equal(chunks, ORDERS[label])
    assert len(ORDERS) == math.factorial(SORT_CHUNKS) and len(set(label.tolist())) > 10
    logits = torch.full((48, len(ORDERS)), 0.0)
    assert objective.metric(logits, label).allclose(torch.ones(48))  # chance: 1
    sure = torch.nn.functional.one_hot(label, len(ORDERS)).float() * 50
    assert objective.metric(sure, label).max() < 1e-6


def test_masked_patches_span_two_frames_and_leave_the_coefficients():
    x, y = counting(b=6)
    x = x + torch.randn(x.shape, generator=generator())  # no exact zeros
    objective = TimeMasked(W, TIMES, ratio=0.75, patches=4)
    inputs, target = objective.view(x, y, generator(1))
    frames, mask = target.chunk(2, dim=1)
    assert frames.shape == mask.shape == (6, W, R, R)
    assert (mask.mean(dim=(1, 2, 3)) == 0.75).all()  # 24 of the 32 patches of each sample
    assert torch.equal(mask[:, 0::MASK_FRAMES], mask[:, 1::MASK_FRAMES])  # each patch spans two frames
    torch.testing.assert_close(inputs[:, :W], frames * (1 - mask))
    torch.testing.assert_close(inputs[:, W:, 0, 0], y / SCALE)
    assert objective.loss(frames, target) == 0


def test_coefficient_regression_hides_the_coefficient_channels():
    x, y = counting()
    inputs, target = TimeCoefficient(W, TIMES).view(x, y, generator())
    assert not inputs[:, W:].any() and inputs[:, :W].any()
    torch.testing.assert_close(target, y / SCALE)
    model = TimeCoefficient(W, TIMES).build_model({"width": 8, "modes": 4}, R)
    assert model(inputs).shape == (5, 5)


def test_rollout_metrics_score_the_predicted_frames_only_never_the_input_window():
    data = generate_time("heat", 6, resolution=R, nt=NT)
    u, coefs = torch.tensor(data.u), torch.tensor(data.coef_common, dtype=torch.float32)
    garbage = u.clone()
    garbage[:, :W - 1] = 1e3 * torch.randn(6, W - 1, R, R, generator=generator())  # persistence reads frame W-1 only
    clean = rollout(Persistence(), (u, coefs), NextStep(W, TIMES), torch.device("cpu"))
    got = rollout(Persistence(), (garbage, coefs), NextStep(W, TIMES), torch.device("cpu"))
    assert got == clean
    predicted = u[:, W - 1:W].expand(-1, NT - W, -1, -1)[:, :, None]  # (n, K, 1, R, R): frame W-1 held
    per_frame = [score(predicted[:, k], u[:, W + k:W + k + 1]) for k in range(NT - W)]
    for name in ADDED:
        step = [frame[name] for frame in per_frame]
        np.testing.assert_allclose(json.loads(got[f"rollout_step_{name}"]), step, rtol=1e-5, atol=1e-9)
        whole = max(step) if name == "max_err" else np.mean(step)
        assert got[f"test_{name}"] == pytest.approx(whole, rel=1e-5, abs=1e-9), name
    with_inputs = score(torch.cat([garbage[:, :W], predicted[:, :, 0]], dim=1), garbage)  # inputs as "predicted"
    assert with_inputs["nrmse"] < 0.7 * got["test_nrmse"]  # their zero errors would flatter the model
    steps = np.sqrt(np.square(data.u[:, W:] - data.u[:, W - 1:W]).sum(axis=(2, 3))
                    / np.square(data.u[:, W:]).sum(axis=(2, 3)))
    expected = [next((k for k, e in enumerate(row) if e > VALID_REL_L2), NT - W) for row in steps]
    assert got["rollout_valid_steps"] == pytest.approx(np.mean(expected))


def test_valid_steps_count_the_frames_before_the_error_first_passes_the_threshold():
    errors = torch.tensor([[0.1, 0.2, 0.6, 0.1], [0.1, 0.1, 0.1, 0.1], [0.7, 0.1, 0.1, 0.1], [0.5, float("nan"), 0, 0]])
    assert valid_steps(errors, 0.5).tolist() == [2, 4, 0, 1]
    assert VALID_REL_L2 == 0.5


def test_the_system_of_each_trajectory_follows_from_its_coefficients_and_augmentations_respect_it():
    data = generate_time("mixed_time", 9, resolution=R, nt=NT)
    u, coefs = torch.tensor(data.u), torch.tensor(data.coef_common, dtype=torch.float32)
    assert systems_of(coefs).tolist() == data.params["system"].tolist()
    augment = NextStep(W, TIMES).augmentation(TrainConfig(augment="galilean", augment_prob=1.0))
    new_u, new_coefs = augment(u, coefs, generator())
    assert new_u.dtype == u.dtype and new_coefs.dtype == coefs.dtype
    heat = torch.as_tensor(data.params["system"] == 0)
    torch.testing.assert_close(new_u[heat], u[heat], rtol=0, atol=1e-6)  # a zero shift: round-off of the FFTs
    assert torch.equal(new_coefs[heat], coefs[heat])
    assert ((new_u - u)[~heat].flatten(1).abs().amax(dim=1) > 1e-3).all()
    assert NextStep(W, TIMES).augmentation(TrainConfig()) is None


def test_next_step_training_with_pushforward_learns_and_resumes_bit_identically(tmp_path):
    part = Downstream(system="advection", shift="id")
    task = ForecastTask(JobConfig(R, 0, Model(), forecast=Forecast("next_step", W, NT, 2.0, unroll=2), downstream=part))
    data = {split: task.tensors(task.load(part, split, n, seed=0, cache=Path(resolve_cache_dir())), {})
            for split, n in (("train", 24), ("val", 8))}
    objective = task.objective("sse")
    cfg = TrainConfig(steps=12, lr=3e-3, batch_size=8, augment="shift", checkpoint_every_s=0.0)

    def fit(workdir: Path, on_eval=None):
        seed_everything(0)
        model = objective.build_model({"width": 8, "modes": 4}, R)
        return model, train(model, data["train"], data["val"], cfg, seed=0, device="cpu", workdir=workdir,
                            on_eval=on_eval, objective=objective)

    assert_learns_and_resumes(fit, tmp_path, kill_at=5)


@pytest.mark.slow
def test_the_strategies_time_smoke_sweep_runs_end_to_end_with_its_report(tmp_path):
    spec = yaml.safe_load((ROOT / "sweeps" / "strategies-time-smoke.yaml").read_text())
    spec["base"].update(nt=10, time_window=4)
    spec["matrix"].update({"pretrain.strategy": [*STRATEGIES, "none"], "downstream.system": ["burgers"],
                           "downstream.n_train": [8, 16], "downstream.shift": ["ood"]})  # all nine strategies
    spec["zip"] = [{"pretrain.train.augment": ["galilean"], "train.augment": ["scale"]}]
    sweep = write_sweep(tmp_path, spec, model={"width": 4}, pretrain={
        "n_train": 12, "n_val": 6, "n_test": 6, "train": {"steps": 4, "lr": 3.0e-3, "batch_size": 6}},
        downstream={"n_val_min": 4, "n_test": 6}, train={"steps": 3, "lr": 1.0e-3, "batch_size": 8})
    root = tmp_path / "results"
    cli(root, "expand", str(sweep))
    out = harness(root, "submit", "--workers", "2")
    assert "29 ok" in out.stdout, out.stdout  # 9 pretrainings, 18 fine-tunings, 2 scratch runs
    table = pd.read_parquet(root / "strategies-time-smoke" / "results.parquet")
    downstream = table[table["stage"] != "pretrain"]
    assert set(downstream["pretrain.strategy"].fillna("none")) == {*STRATEGIES, "none"}
    assert (downstream["task"] == "next_step").all() and (downstream["train.augment"] == "scale").all()
    steps = downstream["rollout_step_rel_l2"].map(json.loads)
    assert (steps.map(len) == 6).all()  # nt 10 - time_window 4 rolled-out frames
    assert (downstream["test_rel_l2"] == downstream["rollout_rel_l2"]).all()
    assert downstream["rollout_accum_rel_l2"].map(lambda s: json.loads(s)[-1]).eq(downstream["rollout_rel_l2"]).all()
    cli(root, "report", "--n-boot", "20")
    report = root / "strategies-time-smoke" / "report"
    assert (report / "rollout.png").exists() and (report / "strategies.csv").exists()
    strategies = pd.read_csv(report / "strategies.csv")
    assert set(strategies["strategy"]) == {*STRATEGIES, "none (scratch)"}
    assert list(strategies.columns[-2:]) == ["N=8", "N=16"]
    assert "rollout.png" in (report / "report.md").read_text()
    for name in ADDED:  # every metric per rolled-out frame; none for a pretext pretraining, whose target is no field
        assert (downstream[f"rollout_step_{name}"].map(json.loads).map(len) == 6).all()
    assert downstream["rollout_valid_steps"].between(0, 6).all()
    pretext = (table["stage"] == "pretrain") & (table["pretrain.strategy"] != "supervised")
    assert table.loc[pretext, "test_nrmse"].isna().all() and table.loc[~pretext, "test_nrmse"].notna().all()
    harness(root, "report", "--metric", "max_err", "--n-boot", "20", "--out", str(tmp_path / "max_err"))
    assert (tmp_path / "max_err" / "rollout.png").exists()
    assert "Problems (" not in (tmp_path / "max_err" / "report.md").read_text()  # pretext pretrainings: not skipped
