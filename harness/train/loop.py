"""One training loop for every stage (pretraining, fine-tuning, training from scratch), read top to bottom.

``train`` runs Adam/AdamW with a per-step cosine (or constant) learning rate on data resident on the device,
evaluates the validation set every epoch, keeps the best weights, stops on a non-finite loss ("diverged") or
after ``patience`` epochs without improvement, and writes ``workdir/last.pt`` after every epoch so that a
killed or requeued job resumes where it stopped, bit for bit. Zero-shot is ``evaluate`` of a pretrained
model; fine-tuning is ``load_weights`` then ``train`` (fresh optimiser and schedule).

What is learnt is an ``Objective``: the default is supervised learning of the solution (sum of squared
errors, relative L2 metric); pretext tasks (``harness.train.strategies``) derive other inputs and targets
from the same (input, solution) batches. Training batches are augmented first (``harness.train.augment``,
the ``augment`` settings), then viewed through the objective.
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

from harness.config import TrainConfig
from harness.errors import HarnessError
from harness.models.fno import upgrade_state_dict
from harness.train.augment import make_augment
from harness.train.checkpoint import load, save_atomic

# Seeds the random parts of an objective's view (e.g. masks) during evaluation: the same every epoch.
EVAL_SEED = 0


@dataclass
class TrainResult:
    """What ``train`` returns; ``epochs`` holds one row per epoch, as passed to ``on_epoch``."""

    status: str  # ok | diverged
    best_val_rel_l2: float  # inf when no epoch gave a finite validation error
    best_epoch: int  # 1-based; 0 when no epoch gave a finite validation error
    epochs_run: int
    epochs: list[dict[str, float]] = field(default_factory=list)
    error: str = ""


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA); call it before building the model to fix its init."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def sum_squared_error(pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Training loss: squared error summed over each sample's grid, averaged over the batch."""
    return (pred - y).square().flatten(1).sum(dim=1).mean()


def relative_l2(pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-sample relative L2 error ``||pred - y|| / ||y||``, shape (batch,)."""
    return (pred - y).flatten(1).norm(dim=1) / y.flatten(1).norm(dim=1)


class Objective:
    """What ``train`` minimises and ``evaluate`` scores; this base class is supervised learning of u.

    A batch (x, y) of inputs and solutions becomes the model's (input, target) through ``view`` (the
    identity here), then ``loss(pred, target)`` (a scalar, mean over the batch) is minimised and
    ``metric(pred, target)`` (one value per sample, lower is better) is the validation error.
    """

    name = "supervised"

    def view(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """The (model input, target) of a batch; random parts draw from ``generator``."""
        return x, y

    def loss(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Training loss of a batch: sum of squared errors per sample, averaged."""
        return sum_squared_error(pred, target)

    def metric(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Per-sample validation error, shape (batch,): relative L2."""
        return relative_l2(pred, target)


SUPERVISED = Objective()


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
    gradients, in eval mode; the objective's view draws from a generator seeded with ``EVAL_SEED``."""
    device = torch.device(device)
    was_training = model.training
    model.eval()
    total = torch.zeros((), device=device)
    generator = torch.Generator(device=device).manual_seed(EVAL_SEED)
    with torch.no_grad():
        for i in range(0, x.shape[0], batch_size):
            inputs, target = objective.view(x[i : i + batch_size].to(device), y[i : i + batch_size].to(device),
                                            generator)
            total += objective.metric(model(inputs).float(), target).sum()
    model.train(was_training)
    return total.item() / x.shape[0]


def lr_at(cfg: TrainConfig, step: int, total_steps: int) -> float:
    """Learning rate of optimiser step ``step`` (0-based): constant, or cosine from lr to min_lr."""
    if cfg.schedule == "constant":
        return cfg.lr
    return cfg.min_lr + (cfg.lr - cfg.min_lr) * 0.5 * (1.0 + math.cos(math.pi * step / total_steps))


def load_weights(model: nn.Module, ckpt_path: Path | str, *, exclude_prefixes: Iterable[str] = ()) -> list[str]:
    """Load the weights of checkpoint ``ckpt_path`` (``best.pt`` or ``last.pt``) into ``model``.

    Strict on everything outside ``exclude_prefixes`` (e.g. ``("head.",)`` to drop a pretext head): a name
    missing on either side or a shape mismatch raises ``HarnessError``. Returns the names loaded.
    """
    excluded = tuple(exclude_prefixes)
    ckpt = load(ckpt_path)
    if "model" not in ckpt:
        raise HarnessError(f"checkpoint {ckpt_path} has no 'model' weights; pass a best.pt or last.pt")
    theirs = {k: v for k, v in upgrade_state_dict(ckpt["model"]).items() if not k.startswith(excluded)}
    ours = {k: v for k, v in model.state_dict().items() if not k.startswith(excluded)}
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
            f"optimiser state cannot resume this model; delete {path} to restart this job from its first epoch"
        )
    written = {k: ckpt.get(k) for k in identity}
    if written != identity:
        raise HarnessError(
            f"{path} was written by a different run ({written}), not this one ({identity}); "
            f"delete {path.parent} or use another workdir to start afresh"
        )
    return ckpt


def train(
    model: nn.Module,
    train_xy: tuple[torch.Tensor, torch.Tensor],
    val_xy: tuple[torch.Tensor, torch.Tensor],
    cfg: TrainConfig,
    *,
    seed: int,
    device: torch.device | str,
    workdir: Path | str,
    on_epoch: Callable[[dict[str, float]], None] | None = None,
    objective: Objective = SUPERVISED,
) -> TrainResult:
    """Train ``model`` on ``train_xy`` = (x, y), keep its best weights on ``val_xy``, resume from ``workdir``.

    ``objective`` says what is learnt (default: the solution y; see ``Objective``); ``val_rel_l2`` is its
    metric. Each training batch is augmented as ``cfg.augment`` says, then viewed through the objective, both
    drawing from the batch-order generator.

    ``seed`` fixes the batch order (the caller seeds the init with ``seed_everything``). Every epoch writes
    ``workdir/last.pt`` (model, optimiser, step, batch-order generator, best weights, rows) and then calls
    ``on_epoch(row)`` with row = {epoch, train_loss (mean over samples), val_rel_l2, lr (at the epoch's first
    step), seconds}; if ``last.pt`` exists the run continues from it and gives the same result as an
    uninterrupted one. At the end ``model`` holds the best weights, also written to ``workdir/best.pt``
    (neither happens if no epoch had a finite validation error). A non-finite training loss ends the run
    with status "diverged" instead of raising.
    """
    # -- set-up: data on the device, batches, optimiser, precision
    device, workdir = torch.device(device), Path(workdir)
    x_train, y_train = (t.to(device) for t in train_xy)
    x_val, y_val = (t.to(device) for t in val_xy)
    n_train = x_train.shape[0]
    batch_size = min(cfg.batch_size, n_train)
    total_steps = cfg.epochs * math.ceil(n_train / batch_size)
    model.to(device)
    optimizer = make_optimizer(model, cfg)
    generator = torch.Generator(device=device).manual_seed(seed)
    use_bf16 = cfg.precision == "bf16" and device.type == "cuda" and torch.cuda.is_bf16_supported()
    forward = torch.compile(model) if cfg.compile and device.type == "cuda" else model
    augment = make_augment(cfg.augment, prob=cfg.augment_prob, noise_level=cfg.noise_level, scale_max=cfg.scale_max)

    # -- init or resume
    last_path = workdir / "last.pt"
    identity = {"config": cfg.to_dict(), "seed": seed, "n_train": n_train}
    loop: dict[str, Any] = {
        "epoch": 0,
        "step": 0,
        "best_val": math.inf,
        "best_epoch": 0,
        "best_model": None,
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

    # -- the loop: one epoch = shuffled batches, then validation, bookkeeping and a checkpoint
    while loop["epoch"] < cfg.epochs and not loop["done"]:
        start = time.perf_counter()
        model.train()
        epoch_lr = lr_at(cfg, loop["step"], total_steps)
        loss_sum = torch.zeros((), device=device)  # summed on the device: no sync inside the epoch
        order = torch.randperm(n_train, generator=generator, device=device)
        for i in range(0, n_train, batch_size):
            idx = order[i : i + batch_size]
            for group in optimizer.param_groups:
                group["lr"] = lr_at(cfg, loop["step"], total_steps)
            inputs, target = x_train[idx], y_train[idx]
            if augment is not None:
                inputs, target = augment(inputs, target, generator)
            inputs, target = objective.view(inputs, target, generator)
            loss = train_step(forward, optimizer, inputs, target, objective=objective, use_bf16=use_bf16)
            loss_sum += loss * idx.numel()
            loop["step"] += 1
        train_loss = loss_sum.item() / n_train  # the epoch's one CPU-GPU sync point
        loop["epoch"] += 1
        epoch = loop["epoch"]

        if math.isfinite(train_loss):
            val = evaluate(forward, x_val, y_val, device=device, objective=objective)
        else:
            val = math.nan
            loop.update(
                status="diverged",
                done=True,
                error=f"training loss became {train_loss} at epoch {epoch} with lr {epoch_lr:g}; "
                "lower the learning rate",
            )
        if val < loop["best_val"]:
            loop.update(best_val=val, best_epoch=epoch, best_model=_cpu_copy(model.state_dict()))
        if cfg.patience and epoch - loop["best_epoch"] >= cfg.patience:
            loop["done"] = True
        row = {
            "epoch": epoch,
            "train_loss": train_loss,
            "val_rel_l2": val,
            "lr": epoch_lr,
            "seconds": time.perf_counter() - start,
        }
        loop["rows"].append(row)
        save_atomic(
            {
                **identity,
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "generator": generator.get_state(),
                "loop": loop,
            },
            last_path,
        )
        if on_epoch is not None:
            on_epoch(row)

    # -- finish: best weights into the model and best.pt
    if loop["best_model"] is not None:
        model.load_state_dict(loop["best_model"])
        save_atomic(
            {**identity, "model": loop["best_model"], "epoch": loop["best_epoch"], "val_rel_l2": loop["best_val"]},
            workdir / "best.pt",
        )
    return TrainResult(
        status=loop["status"],
        best_val_rel_l2=loop["best_val"],
        best_epoch=loop["best_epoch"],
        epochs_run=loop["epoch"],
        epochs=list(loop["rows"]),
        error=loop["error"],
    )
