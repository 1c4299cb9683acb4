"""Scoring a model on a set of samples, without gradients: the validation error the training loop tracks
(``evaluate``) and the test columns a job's summary records (``evaluate_metrics``: every metric of
``harness.train.metrics``). In a data-parallel job each rank scores its share and the sums are all-reduced."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import nn

from harness.train import EVAL_BATCH, metrics
from harness.train.distributed import current
from harness.train.objective import SUPERVISED, Objective

# Seeds the random parts of an objective's view (e.g. masks) during evaluation: the same every epoch.
EVAL_SEED = 0


def _scored_batches(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int, device: torch.device,
                    objective: Objective) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """(prediction, target) of each batch of this rank's share of (x, y), without gradients, in eval mode; the
    objective's view draws from a generator seeded with ``EVAL_SEED``."""
    part = current().part(x.shape[0])
    was_training = model.training
    model.eval()
    generator = torch.Generator(device=device).manual_seed(EVAL_SEED)
    try:
        with torch.no_grad():
            for i in range(part.start, part.stop, batch_size):
                end = min(i + batch_size, part.stop)
                inputs, target = objective.view(x[i:end].to(device), y[i:end].to(device), generator)
                yield model(inputs).float(), target
    finally:
        model.train(was_training)


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
    device = torch.device(device)
    total = torch.zeros((), device=device)
    for pred, target in _scored_batches(model, x, y, batch_size, device, objective):
        total += objective.metric(pred, target).sum()
    return current().sum(total).item() / x.shape[0]


def evaluate_metrics(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, batch_size: int = EVAL_BATCH,
                     device: torch.device | str, objective: Objective = SUPERVISED) -> dict[str, float]:
    """The summary's test columns of ``model`` on (x, y): ``test_rel_l2``, as ``evaluate``, and, where the
    objective's target is a solution field (``Objective.fields``), ``test_<name>`` of the other metrics of
    ``harness.train.metrics`` (max_err: the max over samples, the others the mean). Ranks as ``evaluate``."""
    device, ranks = torch.device(device), current()
    names = metrics.ADDED if objective.fields else ()
    total = torch.zeros((), device=device)
    sums, peaks = torch.zeros(2, len(names), dtype=torch.float64, device=device)
    for pred, target in _scored_batches(model, x, y, batch_size, device, objective):
        total += objective.metric(pred, target).sum()
        if names:
            each = metrics.per_sample(pred, target)
            values = torch.stack([each[name] for name in names])  # (metrics, batch)
            sums, peaks = sums + values.sum(dim=1), torch.maximum(peaks, values.amax(dim=1))
    scores = {"test_rel_l2": ranks.sum(total).item() / x.shape[0]}
    if names:
        sums, peaks = ranks.sum(sums) / x.shape[0], ranks.max(peaks)
        scores.update({f"test_{name}": float(peaks[i] if name in metrics.MAXED else sums[i])
                       for i, name in enumerate(names)})
    return scores
