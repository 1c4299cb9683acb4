"""Streaming training sets (harness.train.stream): the same batches, the same training, the same job result."""

from __future__ import annotations

from pathlib import Path

import torch

from harness.job import StreamConfig, TrainConfig
from harness.models.fno import FNO
from harness.pde.cache import load_split, split_path
from harness.pde.steady_dataset import PDEData
from harness.train.loop import seed_everything, train
from harness.train.normalise import make_inputs, make_targets
from harness.train.stream import StreamedSplit, over_budget

REQUEST = {"resolution": 16, "seed": 4}


def _split(cache: Path, n: int = 12) -> tuple[PDEData, Path]:
    data = load_split("helmholtz", "train", n, cache_dir=cache, **REQUEST)
    return data, split_path("helmholtz", "train", n, cache_dir=cache, **REQUEST)


def test_streamed_batches_equal_the_resident_ones_bit_for_bit(tmp_path: Path) -> None:
    data, path = _split(tmp_path)
    split = StreamedSplit.open(path)
    assert split.stats == data.stats
    x, y = split.tensors(data.stats)
    resident_x, resident_y = make_inputs(data.source, data.coef_common, data.stats), make_targets(data.solution)
    assert x.shape == tuple(resident_x.shape) and y.shape == tuple(resident_y.shape)
    idx = torch.randperm(12, generator=torch.Generator().manual_seed(0))[:5]
    assert torch.equal(x[idx], resident_x[idx]) and torch.equal(y[idx], resident_y[idx])
    assert split.resident_bytes == resident_x.nbytes + resident_y.nbytes


def test_training_on_a_streamed_set_gives_the_resident_result(tmp_path: Path) -> None:
    data, path = _split(tmp_path)
    cfg = TrainConfig(steps=8, batch_size=5, lr=1e-2, eval_every=4, augment="shift")
    val = (make_inputs(data.source[:4], data.coef_common[:4], data.stats), make_targets(data.solution[:4]))
    rows = []
    for name, xy in (("resident", (make_inputs(data.source, data.coef_common, data.stats),
                                   make_targets(data.solution))),
                     ("streamed", StreamedSplit.open(path).tensors(data.stats))):
        seed_everything(1)
        rows.append(train(FNO(4, 4), xy, val, cfg, seed=2, device="cpu", workdir=tmp_path / name).rows)
    curves = [[(r["train_loss"], r["val_rel_l2"]) for r in run] for run in rows]
    assert curves[0] == curves[1] and len(curves[0]) == 3


def test_a_set_over_the_budget_streams_and_one_under_it_stays_resident(tmp_path: Path) -> None:
    _, path = _split(tmp_path)
    size = StreamedSplit.open(path).resident_bytes
    cpu = torch.device("cpu")
    assert over_budget(path, StreamConfig("auto", size / 4 / (1 << 30)), cpu) is not None  # 4x the budget: streams
    assert over_budget(path, StreamConfig("auto", 2 * size / (1 << 30)), cpu) is None
    assert over_budget(path, StreamConfig("always", 2 * size / (1 << 30)), cpu) is not None
    assert over_budget(path, StreamConfig("never", size / 4 / (1 << 30)), cpu) is None
