"""One training loop for every stage (pretraining, fine-tuning, training from scratch), read top to bottom.

``train`` runs Adam/AdamW for a budget of optimiser steps (``TrainConfig.budget``: ``steps``, or ``epochs``
of N samples, at least ``min_steps``) with a per-step cosine (or constant) learning rate over the budget, on
data resident on the device. It evaluates the validation set before the first step and on a cadence
(``eval_every``), keeps the best weights (the initial ones included), stops on a non-finite loss or
validation error ("diverged") or after ``patience`` evaluations without improvement, and writes
``workdir/last.pt`` every ``checkpoint_every_s`` seconds, at the end and on SIGTERM/SIGUSR2, so that a killed
or requeued job resumes where it stopped, bit for bit. Zero-shot is ``evaluate`` of a pretrained model;
fine-tuning is ``load_weights`` then ``train`` (fresh optimiser and schedule).

What is learnt is an ``Objective`` (``harness.train.objective``): the default is supervised learning of the
solution (``train.loss``: sum of squared errors by default; relative L2 metric); pretext tasks
(``harness.train.strategies``) derive other inputs and targets from the same (input, solution) batches, and the
time-dependent tasks' objectives (``harness.tasks``) view batches of trajectories. Training batches are
augmented first (the objective's ``augmentation`` of the ``augment`` settings: ``harness.train.steady_augment`` for
(input, solution) batches), then viewed through the objective (``train_view``, which may run the model:
pushforward unrolling).
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from harness.errors import HarnessError
from harness.job import TrainConfig
from harness.models.fno import upgrade_state_dict
from harness.train.checkpoint import load, save_atomic
from harness.train.distributed import current
from harness.train.objective import SUPERVISED, Objective
from harness.train.signals import held_signals

# Seeds the random parts of an objective's view (e.g. masks) during evaluation: the same every epoch.
EVAL_SEED = 0
# A run is budget-limited when the second half of its schedule lowered the best validation error by more than this
# fraction of the first half's best. Calibrated on the committed reference runs (1,000 steps, cosine): scratch at
# N = 512, which the pilot shows gaining from 4x the steps (0.038 -> 0.025), gained 12-18 % in its second half;
# scratch at N = 8, which gained nothing from 8x the steps (0.4003 at 500, 0.3996 at 4,000), under 0.2 %.
BUDGET_GAIN = 0.05


@dataclass
class TrainResult:
    """What ``train`` returns; ``rows`` holds one row per evaluation, as passed to ``on_eval``."""

    status: str  # ok | diverged
    best_val_rel_l2: float  # inf when no evaluation gave a finite validation error
    best_step: int  # the step whose weights were best (0: the initial weights); -1 when none was finite
    steps_run: int
    epochs_run: float  # steps_run / steps per epoch
    rows: list[dict[str, float]] = field(default_factory=list)
    error: str = ""

    @property
    def budget_limited(self) -> bool:
        """Whether more steps would likely have helped: the second half of the schedule lowered the best validation
        error by more than ``BUDGET_GAIN`` (relative) below the best of the first half. (The last tenth of a cosine
        schedule runs at under 2.5 % of the peak rate, so asking whether *it* still improved never fires; the
        second half holds the annealing that a longer schedule would stretch.) False for a run that did not end ok
        or ran no step."""
        if self.status != "ok" or self.steps_run <= 0:
            return False
        first_half = [r["val_rel_l2"] for r in self.rows if r["step"] <= 0.5 * self.steps_run]
        return self.best_val_rel_l2 < (1 - BUDGET_GAIN) * min(first_half, default=math.inf)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA); call it before building the model to fix its init."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def evaluate(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    batch_size: int = 256,
    device: torch.device | str,
    objective: Objective = SUPERVISED,
) -> float:
    """Mean per-sample ``objective.metric`` (relative L2 by default) of ``model`` on (x, y), without
    gradients, in eval mode; the objective's view draws from a generator seeded with ``EVAL_SEED``. In a
    data-parallel job each rank scores its share of the samples and the sums are all-reduced."""
    device, ranks = torch.device(device), current()
    part = ranks.part(x.shape[0])
    was_training = model.training
    model.eval()
    total = torch.zeros((), device=device)
    generator = torch.Generator(device=device).manual_seed(EVAL_SEED)
    with torch.no_grad():
        for i in range(part.start, part.stop, batch_size):
            end = min(i + batch_size, part.stop)
            inputs, target = objective.view(x[i:end].to(device), y[i:end].to(device), generator)
            total += objective.metric(model(inputs).float(), target).sum()
    model.train(was_training)
    return ranks.sum(total).item() / x.shape[0]


def lr_at(cfg: TrainConfig, step: int, total_steps: int) -> float:
    """Learning rate of optimiser step ``step`` (0-based): constant, or cosine from lr to min_lr."""
    if cfg.schedule == "constant":
        return cfg.lr
    return cfg.min_lr + (cfg.lr - cfg.min_lr) * 0.5 * (1.0 + math.cos(math.pi * step / total_steps))


def load_weights(model: nn.Module, ckpt_path: Path | str, *, exclude_prefixes: Iterable[str] = (),
                 refit: bool = False) -> list[str]:
    """Load the weights of checkpoint ``ckpt_path`` (``best.pt`` or ``last.pt``) into ``model``.

    Strict on everything outside ``exclude_prefixes`` (e.g. ``("head.",)`` to drop a pretext head): a name
    missing on either side or a shape mismatch raises ``HarnessError``. With ``refit`` (data of other channel
    counts), a top-level module with a weight of another shape (the lifting, the head) keeps its initial
    weights instead. Returns the names loaded.
    """
    excluded = tuple(exclude_prefixes)
    ckpt = load(ckpt_path)
    if "model" not in ckpt:
        raise HarnessError(f"checkpoint {ckpt_path} has no 'model' weights; pass a best.pt or last.pt")
    theirs = {k: v for k, v in upgrade_state_dict(ckpt["model"]).items() if not k.startswith(excluded)}
    ours = {k: v for k, v in model.state_dict().items() if not k.startswith(excluded)}
    if refit:
        refitted = tuple(f"{k.split('.')[0]}." for k, v in ours.items() if k in theirs and theirs[k].shape != v.shape)
        theirs = {k: v for k, v in theirs.items() if not k.startswith(refitted)}
        ours = {k: v for k, v in ours.items() if not k.startswith(refitted)}
    missing, unexpected = sorted(ours.keys() - theirs.keys()), sorted(theirs.keys() - ours.keys())
    mismatched = [
        f"{k} {tuple(theirs[k].shape)} vs {tuple(v.shape)}"
        for k, v in ours.items()
        if k in theirs and theirs[k].shape != v.shape
    ]
    if missing or unexpected or mismatched:
        raise HarnessError(
            f"checkpoint {ckpt_path} does not fit the model (different sizes or heads?): missing {missing}, "
            f"unexpected {unexpected}, shape mismatches (checkpoint vs model) {mismatched}; build the model "
            "with the pretraining sizes, or exclude the head with exclude_prefixes"
        )
    model.load_state_dict(theirs, strict=False)
    return list(theirs)


def _cpu_copy(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in state.items()}


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """The optimiser of ``cfg`` (Adam or AdamW, fused) over ``model``'s parameters."""
    # fused: one pass over parameters and states instead of several with temporaries (the FNO's are all real)
    kind = torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.Adam
    return kind(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True)


def train_step(forward: Callable[[torch.Tensor], torch.Tensor], optimizer: torch.optim.Optimizer,
               inputs: torch.Tensor, target: torch.Tensor, *, objective: Objective = SUPERVISED,
               use_bf16: bool = False) -> torch.Tensor:
    """One optimiser step on a batch (what ``train`` does per batch, and what the sweep estimate times): forward
    (under bf16 autocast when asked), ``objective.loss``, backward, step. Returns the loss, detached."""
    with torch.autocast(inputs.device.type, dtype=torch.bfloat16, enabled=use_bf16):
        pred = forward(inputs)
    loss = objective.loss(pred.float(), target)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.detach()


def _resume_state(path: Path, identity: dict[str, Any]) -> dict[str, Any]:
    """Read ``last.pt`` and check it was written by the same run (config, seed, training-set size)."""
    ckpt = load(path)
    if upgrade_state_dict(ckpt["model"]).keys() != ckpt["model"].keys():
        raise HarnessError(
            f"{path} was written by an earlier harness (spectral weights weight_pos / weight_neg), whose "
            f"optimiser state cannot resume this model; delete {path} to restart this job from its first step"
        )
    written = {k: ckpt.get(k) for k in identity}
    if written != identity:
        raise HarnessError(
            f"{path} was written by a different run ({written}), not this one ({identity}); "
            f"delete {path.parent} or use another workdir to start afresh"
        )
    return ckpt


# The one training loop reads top to bottom in one sitting (its validate/checkpoint steps are closures over its
# state), so it is the one function above the complexity limit (pyproject.toml, C901 at 12).
def train(  # noqa: C901
    model: nn.Module,
    train_xy: tuple[torch.Tensor, torch.Tensor],
    val_xy: tuple[torch.Tensor, torch.Tensor],
    cfg: TrainConfig,
    *,
    seed: int,
    device: torch.device | str,
    workdir: Path | str,
    on_eval: Callable[[dict[str, float]], None] | None = None,
    objective: Objective = SUPERVISED,
) -> TrainResult:
    """Train ``model`` on ``train_xy`` = (x, y) for the step budget of ``cfg``, keep its best weights on
    ``val_xy``, resume from ``workdir``.

    ``objective`` says what is learnt (default: the solution y; see ``Objective``); ``val_rel_l2`` is its
    metric. Each training batch is augmented as ``cfg.augment`` says (``objective.augmentation``), then viewed
    through the objective (``objective.train_view``), both drawing from the batch-order generator, which
    ``seed`` fixes (the caller seeds the init).

    The run lasts ``cfg.budget(N).total_steps`` optimiser steps over shuffled epochs (the last may be partial).
    The validation set is scored before the first step (the initial weights, e.g. a pretrained model's, are a
    candidate for the best), every ``eval_every`` steps and at the end; each evaluation appends a row
    {step, epoch, train_loss (mean since the previous row), val_rel_l2, lr, seconds} and calls
    ``on_eval(row)``. ``workdir/last.pt`` (model, optimiser, generator, position in the epoch, best weights,
    rows) is written at most every ``checkpoint_every_s`` seconds, at the end, and on SIGTERM/SIGUSR2
    (``harness.train.signals``); if it exists the run continues from it and gives the same result as an
    uninterrupted one, bit for bit. At the end ``model`` holds the best weights, also in ``workdir/best.pt``
    (neither when no evaluation was finite). A non-finite training loss or validation error ends the run
    with status "diverged" instead of raising; ``patience`` counts evaluations without improvement.
    """
    # -- set-up: data on the device, budget, optimiser, precision
    device, workdir, ranks = torch.device(device), Path(workdir), current()
    x_train, y_train = (t.to(device) for t in train_xy)
    x_val, y_val = (t.to(device) for t in val_xy)
    n_train = x_train.shape[0]
    budget = cfg.budget(n_train)
    model.to(device)
    optimizer = make_optimizer(model, cfg)
    generator = torch.Generator(device=device).manual_seed(seed)
    use_bf16 = cfg.precision == "bf16" and device.type == "cuda" and torch.cuda.is_bf16_supported()
    forward = torch.compile(ranks.wrap(model)) if cfg.compile and device.type == "cuda" else ranks.wrap(model)
    augment = objective.augmentation(cfg)

    # -- init or resume
    last_path = workdir / "last.pt"
    # what must match for last.pt to be resumed: everything that shapes the result (not the checkpoint cadence)
    settings = {k: v for k, v in cfg.to_dict().items() if k != "checkpoint_every_s"}
    identity = {"config": settings, "seed": seed, "n_train": n_train}
    loop: dict[str, Any] = {
        "step": 0,
        "order": None,  # this epoch's batch order, and how far into it the run is
        "pos": 0,
        "loss_sum": 0.0,  # training loss summed over the samples since the last evaluation
        "loss_count": 0,
        "best_val": math.inf,
        "best_step": -1,
        "best_model": None,
        "stale": 0,  # evaluations since the best one
        "rows": [],
        "status": "ok",
        "error": "",
        "done": False,
    }
    if last_path.exists():
        ckpt = _resume_state(last_path, identity)
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        generator.set_state(ckpt["generator"])
        loop = ckpt["loop"]
        if loop["order"] is not None:
            loop["order"] = loop["order"].to(device)
    loss_sum = torch.tensor(loop["loss_sum"] if ranks.is_main else 0.0, device=device)  # this rank's part, unsynced
    clock = time.perf_counter()

    def validate() -> None:
        """Score the validation set at this step, keep the best weights, append the row (one CPU-GPU sync)."""
        nonlocal clock
        step = loop["step"]
        train_loss = ranks.sum(loss_sum).item() / loop["loss_count"] if loop["loss_count"] else math.nan
        val = math.nan
        if step and not math.isfinite(train_loss):
            loop.update(status="diverged", done=True, error=f"training loss became {train_loss} by step {step} "
                        f"with lr {lr_at(cfg, step - 1, budget.total_steps):g}; lower the learning rate")
        else:
            val = evaluate(forward, x_val, y_val, device=device, objective=objective)
            if not math.isfinite(val):
                loop.update(status="diverged", done=True, error=f"validation error became {val} at step {step}; "
                            "lower the learning rate")
        if val < loop["best_val"]:
            loop.update(best_val=val, best_step=step, best_model=_cpu_copy(model.state_dict()), stale=0)
        else:
            loop["stale"] += 1
        if cfg.patience and loop["stale"] >= cfg.patience:
            loop["done"] = True
        now = time.perf_counter()
        loop["rows"].append({"step": step, "epoch": step / budget.steps_per_epoch, "train_loss": train_loss,
                             "val_rel_l2": val, "lr": lr_at(cfg, step, budget.total_steps), "seconds": now - clock})
        clock = now
        loss_sum.zero_()
        loop["loss_count"] = 0

    def checkpoint() -> None:
        loop["loss_sum"] = ranks.sum(loss_sum).item()
        if not ranks.is_main:
            return
        state = {**loop, "order": None if loop["order"] is None else loop["order"].cpu()}
        save_atomic({**identity, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                     "generator": generator.get_state(), "loop": state}, last_path)

    # -- the loop: shuffled batches, an evaluation every `eval_every` steps, a checkpoint when due
    with held_signals() as stop:
        if not loop["rows"]:
            validate()
            if on_eval is not None:
                on_eval(loop["rows"][-1])
        saved = time.monotonic()
        while loop["step"] < budget.total_steps and not loop["done"]:
            model.train()
            if loop["order"] is None or loop["pos"] >= n_train:
                loop.update(order=torch.randperm(n_train, generator=generator, device=device), pos=0)
            idx = loop["order"][loop["pos"] : loop["pos"] + budget.batch_size]
            loop["pos"] += budget.batch_size
            for group in optimizer.param_groups:
                group["lr"] = lr_at(cfg, loop["step"], budget.total_steps)
            inputs, target = x_train[idx], y_train[idx]
            if augment is not None:
                inputs, target = augment(inputs, target, generator)
            inputs, target = objective.train_view(forward, inputs, target, generator)
            inputs, target, mine = ranks.share(inputs, target, objective)  # this rank's part (all of it alone)
            loss = train_step(forward, optimizer, inputs, target, objective=mine, use_bf16=use_bf16)
            loss_sum += loss * (idx.numel() / ranks.world)
            loop["loss_count"] += idx.numel()
            loop["step"] += 1
            evaluated = loop["step"] % budget.eval_every == 0 or loop["step"] == budget.total_steps
            if evaluated:
                validate()
            due = stop.pending or time.monotonic() - saved >= cfg.checkpoint_every_s
            if (evaluated and loop["done"]) or loop["step"] == budget.total_steps or ranks.any(due, device):
                checkpoint()
                saved = time.monotonic()
                if stop.pending:
                    stop.hand_on()
            if evaluated and on_eval is not None:
                on_eval(loop["rows"][-1])

    # -- finish: best weights into the model and best.pt
    if loop["best_model"] is not None:
        model.load_state_dict(loop["best_model"])
        if ranks.is_main:
            save_atomic({**identity, "model": loop["best_model"], "step": loop["best_step"],
                         "val_rel_l2": loop["best_val"]}, workdir / "best.pt")
    return TrainResult(
        status=loop["status"],
        best_val_rel_l2=loop["best_val"],
        best_step=loop["best_step"],
        steps_run=loop["step"],
        epochs_run=loop["step"] / budget.steps_per_epoch,
        rows=list(loop["rows"]),
        error=loop["error"],
    )
