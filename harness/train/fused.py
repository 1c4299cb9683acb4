"""Fused training: several runs of one model shape trained as one program, each as ``train`` would train it alone.

A scaling study is hundreds of small jobs; on a GPU one of them leaves the device idle. ``train_group`` takes K
runs (``harness.train.loop.start``: each its own model, data, settings, seed and run folder) whose models have the
same structure, and at each step takes one batched forward and backward over those of them whose batches have the
same shape: each run's parameters are stacked (``torch.stack``, differentiable, so every run's gradient lands on
its own parameters) and its model applied under ``torch.func.vmap`` of ``functional_call``; the loss is the sum
of the runs' own losses, whose gradient with respect to one run's parameters is that run's gradient alone. Each
run then steps its own optimiser: its state, learning-rate schedule, batch order (its own generator), augmentation,
evaluations, patience, ``last.pt`` and ``best.pt`` are those of ``train``, by the same functions
(``next_batch``, ``end_step``, ``finish``), so a fused run resumes alone or in another group and a run that stops
leaves the group without changing anyone else's steps. The results equal the runs' alone within float rounding (the
batched kernels sum in another order); evaluation is per run, unbatched.

Stacking rather than ``stack_module_state`` once: each run keeps its own ``nn.Module`` and fused Adam, so every
checkpoint is a plain run's and the optimisers need no batched learning rate. The copy it costs per step is
that of the parameters (17K-264K floats per job in the reference study), small beside a batch's activations.

Every model family is served (the FNO's own autograd functions have vmap rules, ``harness.models.fno``); what
cannot be fused is refused at expand (``harness.sweep.pack``): several ranks, tuning trials. Runs whose batch
shapes differ at a step (the last, partial batch of an epoch at another N) take that step alone. ``compile`` is
not applied to the fused forward.
"""

from __future__ import annotations

from collections import defaultdict

import torch
from torch.func import functional_call, vmap

from harness.train.loop import (
    TrainResult,
    count_step,
    end_step,
    finish,
    first_evaluation,
    next_batch,
    train_step,
)
from harness.train.objective import Objective
from harness.train.signals import held_signals
from harness.train.state import Run


def fused_step(runs: list[Run], batches: list[tuple[torch.Tensor, torch.Tensor, Objective]]) -> list[torch.Tensor]:
    """One optimiser step of each run on its batch (all of one shape), with one batched forward and backward;
    returns each run's detached loss, as ``train_step`` would."""
    template = runs[0].setup.model
    names = [name for name, _ in template.named_parameters()]
    own = [dict(run.setup.model.named_parameters()) for run in runs]
    params = {name: torch.stack([p[name] for p in own]) for name in names}
    buffers = {name: torch.stack([dict(run.setup.model.named_buffers())[name] for run in runs])
               for name, _ in template.named_buffers()}
    inputs = torch.stack([b[0] for b in batches])

    def forward(p: dict[str, torch.Tensor], b: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        return functional_call(template, (p, b), (x,))

    setup = runs[0].setup
    with torch.autocast(inputs.device.type, dtype=torch.bfloat16, enabled=setup.use_bf16):
        preds = vmap(forward)(params, buffers, inputs)
    losses = [objective.loss(pred.float(), target) for pred, (_, target, objective) in zip(preds, batches,
                                                                                           strict=True)]
    for run in runs:
        run.setup.optimizer.zero_grad(set_to_none=True)
    torch.stack(losses).sum().backward()
    for run in runs:
        run.setup.optimizer.step()
    return [loss.detach() for loss in losses]


def step_group(runs: list[Run]) -> None:
    """One step of every run given: fused over the runs whose batches share a shape, alone for the others."""
    batches = {}
    sizes = {}
    by_shape: dict[tuple, list[Run]] = defaultdict(list)
    for run in runs:
        inputs, target, objective, samples = next_batch(run.state, run.setup, *run.train_xy)
        batches[id(run)], sizes[id(run)] = (inputs, target, objective), samples
        by_shape[(inputs.shape, target.shape, inputs.dtype)].append(run)
    for group in by_shape.values():
        if len(group) == 1:
            (run,) = group
            inputs, target, objective = batches[id(run)]
            losses = [train_step(run.setup.forward, run.setup.optimizer, inputs, target, objective=objective,
                                 use_bf16=run.setup.use_bf16)]
        else:
            losses = fused_step(group, [batches[id(run)] for run in group])
        for run, loss in zip(group, losses, strict=True):
            count_step(run.state, run.setup, loss, sizes[id(run)])


def train_group(runs: list[Run]) -> list[TrainResult]:
    """Train ``runs`` (each from ``harness.train.loop.start``, one rank each) together until each has ended, as
    ``train`` trains one: each resumes from its ``last.pt``, is evaluated and checkpointed on its own cadence, and
    leaves the group when it has run its budget or stopped. A held signal (SIGTERM, SIGUSR2) writes every run's
    ``last.pt`` before it is handed on. Returns each run's ``TrainResult``, in order."""
    with held_signals() as stop:
        for run in runs:
            first_evaluation(run)
        while active := [run for run in runs if not run.over]:
            step_group(active)
            written = [end_step(run, stop.pending) for run in active]
            if any(written) and stop.pending:
                stop.hand_on()  # after every run's checkpoint: the earlier handler may end or requeue the job
    return [finish(run) for run in runs]
