"""One training loop for every stage (pretraining, fine-tuning, training from scratch), read top to bottom.

``train`` runs Adam/AdamW for a budget of optimiser steps (``TrainConfig.budget``: ``steps``, or ``epochs``
of N samples, at least ``min_steps``) with a per-step cosine (or constant) learning rate over the budget, on
data resident on the device. It evaluates the validation set before the first step and on a cadence
(``eval_every``), keeps the best weights (the initial ones included), stops on a non-finite loss or
validation error ("diverged") or after ``patience`` evaluations without improvement, and writes
``workdir/last.pt`` every ``checkpoint_every_s`` seconds, at the end and on SIGTERM/SIGUSR2, so that a killed
or requeued job resumes where it stopped, bit for bit. Zero-shot is ``evaluate`` of a pretrained model;
fine-tuning is ``load_weights`` then ``train`` (fresh optimiser and schedule).

``train`` is the loop itself; its steps are functions of one model's ``Setup`` and ``LoopState``
(``harness.train.state``), so that another loop can reuse them: ``set_up``, ``resume`` (from ``last.pt``),
``advance`` (one optimiser step on the next batch), ``validate``, ``save_last`` and ``keep_best``.

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

import numpy as np
import torch
from torch import nn

from harness.errors import HarnessError
from harness.job import TrainConfig
from harness.models.fno import upgrade_state_dict
from harness.train import EVAL_BATCH
from harness.train.checkpoint import load, save_atomic
from harness.train.distributed import current
from harness.train.objective import SUPERVISED, Objective
from harness.train.signals import held_signals
from harness.train.state import LoopState, Setup

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
    batch_size: int = EVAL_BATCH,
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


def set_up(model: nn.Module, cfg: TrainConfig, n_train: int, *, seed: int, device: torch.device,
           objective: Objective) -> Setup:
    """``model`` on ``device`` with its optimiser, batch-order generator, precision and compiled forward."""
    ranks = current()
    model.to(device)
    optimizer = make_optimizer(model, cfg)
    generator = torch.Generator(device=device).manual_seed(seed)
    use_bf16 = cfg.precision == "bf16" and device.type == "cuda" and torch.cuda.is_bf16_supported()
    forward = torch.compile(ranks.wrap(model)) if cfg.compile and device.type == "cuda" else ranks.wrap(model)
    settings = {k: v for k, v in cfg.to_dict().items() if k != "checkpoint_every_s"}  # all that shapes the result
    return Setup(model=model, forward=forward, optimizer=optimizer, generator=generator, cfg=cfg,
                 budget=cfg.budget(n_train), objective=objective, augment=objective.augmentation(cfg),
                 use_bf16=use_bf16, device=device, ranks=ranks,
                 identity={"config": settings, "seed": seed, "n_train": n_train})


def resume(path: Path, setup: Setup) -> LoopState:
    """Load ``last.pt`` into the model, optimiser and generator and return its loop state, after checking that it
    was written by this run (``setup.identity``) and for the spectral weights' current layout."""
    ckpt = load(path)
    if upgrade_state_dict(ckpt["model"]).keys() != ckpt["model"].keys():
        raise HarnessError(
            f"{path} was written by an earlier harness (spectral weights weight_pos / weight_neg), whose "
            f"optimiser state cannot resume this model; delete {path} to restart this job from its first step"
        )
    written = {k: ckpt.get(k) for k in setup.identity}
    if written != setup.identity:
        raise HarnessError(
            f"{path} was written by a different run ({written}), not this one ({setup.identity}); "
            f"delete {path.parent} or use another workdir to start afresh"
        )
    setup.model.load_state_dict(ckpt["model"])
    setup.optimizer.load_state_dict(ckpt["optimizer"])
    setup.generator.set_state(ckpt["generator"])
    return LoopState.from_dict(ckpt["loop"], setup.device, setup.ranks)


def advance(state: LoopState, setup: Setup, x_train: torch.Tensor, y_train: torch.Tensor) -> None:
    """One step of the run: the next batch of the epoch's shuffled order (a new order when the epoch is through),
    augmented and viewed through the objective, this rank's share of it trained on (``train_step``)."""
    s, n_train = setup, x_train.shape[0]
    s.model.train()
    if state.order is None or state.pos >= n_train:
        state.order, state.pos = torch.randperm(n_train, generator=s.generator, device=s.device), 0
    idx = state.order[state.pos : state.pos + s.budget.batch_size]
    state.pos += s.budget.batch_size
    for group in s.optimizer.param_groups:
        group["lr"] = lr_at(s.cfg, state.step, s.budget.total_steps)
    inputs, target = x_train[idx], y_train[idx]
    if s.augment is not None:
        inputs, target = s.augment(inputs, target, s.generator)
    inputs, target = s.objective.train_view(s.forward, inputs, target, s.generator)
    inputs, target, mine = s.ranks.share(inputs, target, s.objective)  # this rank's part (all of it alone)
    loss = train_step(s.forward, s.optimizer, inputs, target, objective=mine, use_bf16=s.use_bf16)
    state.loss_sum += loss * (idx.numel() / s.ranks.world)
    state.loss_count += idx.numel()
    state.step += 1


def validate(state: LoopState, setup: Setup, x_val: torch.Tensor, y_val: torch.Tensor) -> None:
    """Score the validation set at this step, keep the best weights, append the row (one CPU-GPU sync). A
    non-finite training loss or validation error ends the run as diverged; ``patience`` stale evaluations end it."""
    s, step = setup, state.step
    train_loss = s.ranks.sum(state.loss_sum).item() / state.loss_count if state.loss_count else math.nan
    val = math.nan
    if step and not math.isfinite(train_loss):
        state.status, state.done = "diverged", True
        state.error = (f"training loss became {train_loss} by step {step} with lr "
                       f"{lr_at(s.cfg, step - 1, s.budget.total_steps):g}; lower the learning rate")
    else:
        val = evaluate(s.forward, x_val, y_val, device=s.device, objective=s.objective)
        if not math.isfinite(val):
            state.status, state.done = "diverged", True
            state.error = f"validation error became {val} at step {step}; lower the learning rate"
    if val < state.best_val:
        state.best_val, state.best_step, state.best_model = val, step, _cpu_copy(s.model.state_dict())
        state.stale = 0
    else:
        state.stale += 1
    if s.cfg.patience and state.stale >= s.cfg.patience:
        state.done = True
    now = time.perf_counter()
    state.rows.append({"step": step, "epoch": step / s.budget.steps_per_epoch, "train_loss": train_loss,
                       "val_rel_l2": val, "lr": lr_at(s.cfg, step, s.budget.total_steps), "seconds": now - state.clock})
    state.clock = now
    state.loss_sum.zero_()
    state.loss_count = 0


def save_last(state: LoopState, setup: Setup, path: Path) -> None:
    """Write ``last.pt`` (identity, model, optimiser, generator, loop state); every rank calls it, rank 0 writes."""
    loop = state.to_dict(setup.ranks)
    if setup.ranks.is_main:
        save_atomic({**setup.identity, "model": setup.model.state_dict(), "optimizer": setup.optimizer.state_dict(),
                     "generator": setup.generator.get_state(), "loop": loop}, path)


def keep_best(state: LoopState, setup: Setup, path: Path) -> None:
    """Load the best weights into the model and write them to ``best.pt`` (rank 0); nothing when none was finite."""
    if state.best_model is None:
        return
    setup.model.load_state_dict(state.best_model)
    if setup.ranks.is_main:
        save_atomic({**setup.identity, "model": state.best_model, "step": state.best_step,
                     "val_rel_l2": state.best_val}, path)


def train(
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
    device, workdir = torch.device(device), Path(workdir)
    x_train, y_train = (t.to(device) for t in train_xy)
    x_val, y_val = (t.to(device) for t in val_xy)
    setup = set_up(model, cfg, x_train.shape[0], seed=seed, device=device, objective=objective)
    budget, ranks, last_path = setup.budget, setup.ranks, workdir / "last.pt"

    # -- init or resume
    state = resume(last_path, setup) if last_path.exists() else LoopState(loss_sum=torch.zeros((), device=device))

    # -- the loop: shuffled batches, an evaluation every `eval_every` steps, a checkpoint when due
    with held_signals() as stop:
        if not state.rows:
            validate(state, setup, x_val, y_val)
            if on_eval is not None:
                on_eval(state.rows[-1])
        saved = time.monotonic()
        while state.step < budget.total_steps and not state.done:
            advance(state, setup, x_train, y_train)
            evaluated = state.step % budget.eval_every == 0 or state.step == budget.total_steps
            if evaluated:
                validate(state, setup, x_val, y_val)
            # every rank checkpoints together (collectives inside); only a signal or the clock can differ by rank
            due = stop.pending or time.monotonic() - saved >= cfg.checkpoint_every_s
            if (evaluated and state.done) or state.step == budget.total_steps or ranks.any(due, device):
                save_last(state, setup, last_path)
                saved = time.monotonic()
                if stop.pending:
                    stop.hand_on()  # after the checkpoint: the earlier handler may end or requeue the job
            if evaluated and on_eval is not None:
                on_eval(state.rows[-1])

    # -- finish: best weights into the model and best.pt
    keep_best(state, setup, workdir / "best.pt")
    return TrainResult(status=state.status, best_val_rel_l2=state.best_val, best_step=state.best_step,
                       steps_run=state.step, epochs_run=state.step / budget.steps_per_epoch, rows=list(state.rows),
                       error=state.error)
