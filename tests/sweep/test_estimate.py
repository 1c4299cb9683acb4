"""The sweep cost estimate: exact FLOPs arithmetic, monotone in the sizes, and a quick real calibration."""

import math

import pytest

from harness.job import Downstream, Job, JobConfig, Model, Pretrain, TrainConfig
from harness.models import Shape
from harness.sweep.estimate import describe_estimate, estimate
from harness.train.timing import calibrate

# flops_per_sample(8, 4, 16), by hand: N = 256, log2 N = 8
#   lifting 2*256*7*8 = 28,672; per layer 2*256*64 + 5*256*8*8 + 8*2*16*64 = 131,072 (x4 = 524,288);
#   head 2*256*(2*64 + 2*8) = 73,728; total 626,688
F_8_4_16 = 626_688


def fno(width: int, modes: int, resolution: int) -> Shape:
    return Shape("fno", (("width", width), ("modes", modes)), resolution)


def make_job(stage, *, width=8, modes=4, resolution=16, epochs=5, n_train=10, n_val=2, n_test=3):
    model, train = Model(width=width, modes=modes), TrainConfig(epochs=epochs)
    config = JobConfig(resolution, 0, model)
    if stage == "pretrain":
        config = JobConfig(resolution, 0, model,
                           pretrain=Pretrain(n_train=n_train, n_val=n_val, n_test=n_test, train=train))
    elif stage == "zeroshot":
        config = JobConfig(resolution, 0, model, downstream=Downstream(n_train=None, n_val=n_val,
                                                                                     n_test=n_test))
    else:
        config = JobConfig(resolution, 0, model, train=train,
                           downstream=Downstream(n_train=n_train, n_val=n_val, n_test=n_test))
    return Job(f"{stage}-{width}-{modes}-{epochs}-{n_train}", stage, "s", config)


def test_hand_computed_table():
    jobs = [make_job("pretrain"), make_job("finetune", epochs=4, n_train=6), make_job("zeroshot")]
    table = estimate(jobs, 1e-9)
    assert list(table) == ["pretrain", "finetune", "zeroshot", "total"]
    # pretrain: 5 steps of 10 samples: 3*10*5 train passes + 2*6 validation (before, then after each step) + 3 test
    assert table["pretrain"].flops == F_8_4_16 * 165
    assert table["pretrain"].train_samples == 50
    # finetune: 3*6*4 + 2*5 + 3 = 85
    assert table["finetune"].flops == F_8_4_16 * 85
    assert table["finetune"].train_samples == 24
    # zero-shot only evaluates: validation and test sets, once each
    assert table["zeroshot"].flops == F_8_4_16 * 5
    assert table["zeroshot"].train_samples == 0
    total = table["total"]
    assert (total.jobs, total.train_samples) == (3, 74)
    assert total.flops == F_8_4_16 * (165 + 85 + 5)
    assert total.hours == pytest.approx(total.flops * 1e-9 / 3600)


def test_per_shape_rates_and_fallback():
    small, big = make_job("scratch"), make_job("scratch", width=16)
    rates = {fno(8, 4, 16): 1e-9, fno(16, 4, 16): 3e-9}
    table = estimate([small, big], rates)
    flops_small = estimate([small], 1.0)["total"].flops
    flops_big = estimate([big], 1.0)["total"].flops
    assert table["total"].hours == pytest.approx((flops_small * 1e-9 + flops_big * 3e-9) / 3600)
    # a shape the mapping lacks gets the median of its ratios
    odd = make_job("scratch", modes=2)
    assert estimate([odd], rates)["total"].hours == pytest.approx(estimate([odd], 2e-9)["total"].hours)


@pytest.mark.parametrize("knob", ["width", "modes", "epochs", "n_train", "resolution"])
def test_monotone(knob):
    base = {"width": 8, "modes": 4, "resolution": 16, "epochs": 5, "n_train": 10}
    costs = []
    for factor in (1, 2, 4):
        sizes = {**base, knob: base[knob] * factor}
        costs.append(estimate([make_job("scratch", **sizes)], 1e-9)["total"].hours)
    assert costs[0] < costs[1] < costs[2]


def test_zero_shot_costs_only_an_evaluation_pass():
    zs = estimate([make_job("zeroshot", epochs=500, n_train=10_000)], 1e-9)["zeroshot"]
    assert zs.flops == F_8_4_16 * (2 + 3)
    assert zs.flops < estimate([make_job("scratch", epochs=1)], 1e-9)["total"].flops


def test_calibration_on_cpu_is_positive_and_finite():
    rates = calibrate("cpu", [fno(4, 2, 8), fno(4, 2, 8)], steps=1)
    assert list(rates) == [fno(4, 2, 8)]
    assert math.isfinite(rates[fno(4, 2, 8)]) and rates[fno(4, 2, 8)] > 0


def test_shapes_too_big_to_time_get_the_global_ratio():
    # (128, 32, 256) is far above the CPU budget: it is not timed and takes the ratio of the timed one
    rates = calibrate("cpu", [fno(4, 2, 8), fno(128, 32, 256)], steps=1)
    assert rates[fno(128, 32, 256)] == rates[fno(4, 2, 8)]


def test_describe_estimate_prints_every_stage_and_the_total():
    text = describe_estimate([make_job("pretrain", width=4, modes=2, resolution=8), make_job("zeroshot", width=4,
                                                                                         modes=2, resolution=8)],
                             device="cpu")
    lines = text.splitlines()
    assert lines[0].split() == ["stage", "jobs", "train-samples", "FLOPs", "CPU-hours"]
    assert [line.split()[0] for line in lines[1:4]] == ["pretrain", "zeroshot", "total"]
