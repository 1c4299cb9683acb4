"""The sweep cost estimate: what a job's work is (time tasks' channels and rollouts, pushforward, pretext heads, each
family's own FLOPs), how it is priced (fixed times and FLOPs, fused groups), and a quick real calibration."""

import dataclasses
import math

import pytest

from harness.job import Downstream, Forecast, Job, JobConfig, Model, Pack, Pretrain, TrainConfig
from harness.models import Kernel, Shape, family
from harness.models.unet_size import flops_per_sample as unet_flops
from harness.sweep.estimate import describe_estimate, estimate, group_seconds, job_work, seconds
from harness.train import Rate, timing

# flops_per_sample(8, 4, 16), by hand: N = 256, log2 N = 8
#   lifting 2*256*7*8 = 28,672; per layer 2*256*64 + 5*256*8*8 + 8*2*16*64 = 131,072 (x4 = 524,288);
#   head 2*256*(2*64 + 2*8) = 73,728; total 626,688
F_8_4_16 = 626_688
# the same FNO with a time task's 4 frames + 5 coefficient channels in: lifting 2*256*9*8 = 36,864
F_8_4_16_TIME = F_8_4_16 - 28_672 + 36_864


def fno(width: int, modes: int, resolution: int) -> Shape:
    return Shape("fno", (("width", width), ("modes", modes)), resolution)


def make_job(stage, *, width=8, modes=4, resolution=16, epochs=5, n_train=10, n_val=2, n_test=3, forecast=None,
             strategy="supervised", arch=None):
    sizes = family(arch).sizes() if arch else {"width": width, "modes": modes}
    model, train = Model(arch=arch, **sizes), TrainConfig(epochs=epochs)
    system = "heat" if forecast else "poisson"
    if stage == "pretrain":
        config = JobConfig(resolution, 0, model, forecast=forecast, pretrain=Pretrain(
            system=system, strategy=strategy, n_train=n_train, n_val=n_val, n_test=n_test, train=train))
    elif stage == "zeroshot":
        config = JobConfig(resolution, 0, model, forecast=forecast,
                           downstream=Downstream(system=system, n_train=None, n_val=n_val, n_test=n_test))
    else:
        config = JobConfig(resolution, 0, model, forecast=forecast, train=train,
                           downstream=Downstream(system=system, n_train=n_train, n_val=n_val, n_test=n_test))
    return Job(f"{stage}-{width}-{modes}-{epochs}-{n_train}", stage, "s", config)


def next_step(unroll=0, window=4, nt=16):
    return Forecast("next_step", window, nt, 2.0, unroll=unroll)


def test_hand_computed_table():
    jobs = [make_job("pretrain"), make_job("finetune", epochs=4, n_train=6), make_job("zeroshot")]
    table = estimate(jobs, 1e-9)
    assert list(table) == ["pretrain", "finetune", "zeroshot", "total"]
    # pretrain: 5 steps of 10 samples: 3*10*5 train passes + 2*6 validation (before, then after each step) + 3 test
    assert table["pretrain"].flops == F_8_4_16 * 165
    assert table["pretrain"].train_samples == 50
    # finetune: 3*6*4 + 2*5 + 3 = 85
    assert table["finetune"].flops == F_8_4_16 * 85
    # zero-shot only evaluates: validation and test sets, once each
    assert table["zeroshot"].flops == F_8_4_16 * 5
    assert table["zeroshot"].train_samples == 0
    total = table["total"]
    assert (total.jobs, total.train_samples) == (3, 74)
    assert total.flops == F_8_4_16 * (165 + 85 + 5)
    assert total.hours == pytest.approx(total.flops * 1e-9 / 3600)


def test_seconds_add_the_fixed_times_to_the_flops():
    work = job_work(make_job("scratch"))  # 5 steps, 6 evaluations of 2 samples, a test pass of 3
    assert (work.steps, work.train_samples, work.evaluations, work.forward_passes, work.forward_samples) == \
        (5, 50, 6, 7, 15)
    rate = Rate(step_s=0.01, train_s_per_flop=1e-9, pass_s=0.002, forward_s_per_flop=2e-9, job_s=0.5, eval_s=0.03)
    expected = 0.5 + 6 * 0.03 + 5 * 0.01 + 3 * F_8_4_16 * 50 * 1e-9 + 7 * 0.002 + F_8_4_16 * 15 * 2e-9
    assert seconds(work, rate) == pytest.approx(expected)
    assert estimate([make_job("scratch")], rate)["total"].hours == pytest.approx(expected / 3600)


def test_a_next_step_job_rolls_out_its_test_with_the_window_and_coefficient_channels():
    steady, time = make_job("scratch"), make_job("scratch", forecast=next_step())
    assert job_work(time).kernel == Kernel(fno(8, 4, 16), 4 + 5, 1)
    assert job_work(time).kernel.flops_per_sample() == F_8_4_16_TIME
    # the same steps and validation (one step each) as the steady job; the test rolls out 16 - 4 = 12 steps
    steady_work, time_work = job_work(steady), job_work(time)
    assert (time_work.steps, time_work.train_samples) == (steady_work.steps, steady_work.train_samples)
    evaluations = 6 * 2
    assert steady_work.forward_samples - evaluations == 3
    assert time_work.forward_samples - evaluations == 12 * 3
    assert time_work.forward_passes - 6 == 12  # 12 rollout passes of one batch of 3
    assert estimate([time], 1.0)["total"].flops == F_8_4_16_TIME * (3 * 50 + evaluations + 12 * 3)


def test_pushforward_adds_half_the_unroll_in_forward_passes_per_step():
    plain, unrolled = job_work(make_job("scratch", forecast=next_step(0))), job_work(make_job(
        "scratch", forecast=next_step(4)))
    assert unrolled.steps == plain.steps == 5
    assert unrolled.forward_passes - plain.forward_passes == 2 * 5  # k ~ U{0..4}: 2 passes a step on average
    assert unrolled.forward_samples - plain.forward_samples == 2 * 50


def test_fixed_future_tests_one_pass_and_pretext_heads_change_the_channels():
    fixed = job_work(make_job("scratch", forecast=Forecast("fixed_future", 4, 16, 2.0, target=-1)))
    assert fixed.forward_samples == 6 * 2 + 3
    masked = job_work(make_job("pretrain", forecast=Forecast("next_step", 4, 16, 2.0), strategy="masked"))
    assert masked.kernel == Kernel(fno(8, 4, 16), 9, 4)  # rebuilds the window
    assert masked.forward_samples == 6 * 2 + 3  # a pretext pretraining is tested in one pass, not rolled out
    supervised = job_work(make_job("pretrain", forecast=next_step()))
    assert supervised.forward_samples == 6 * 2 + 12 * 3
    assert job_work(make_job("pretrain", strategy="derivative")).kernel == Kernel(fno(8, 4, 16), 7, 5)
    assert job_work(make_job("pretrain", strategy="coefficient")).kernel.in_channels == 2


def test_each_family_is_priced_by_its_own_size_function():
    unet = make_job("zeroshot", arch="unet")
    kernel = job_work(unet).kernel
    assert kernel.shape.arch == "unet"
    # channels 24, levels 3 (the defaults) on 16x16, 7 -> 1
    assert kernel.flops_per_sample() == unet_flops(24, 3, 16, 7, 1) != F_8_4_16
    for arch in ("deeponet", "oformer"):
        job = make_job("zeroshot", arch=arch)
        rules = family(arch)
        assert estimate([job], 1.0)["total"].flops == rules.flops_per_sample(
            rules.sizes(), resolution=16, in_channels=7, out_channels=1) * (2 + 3)


def test_a_fused_group_pays_the_fixed_times_once():
    work = job_work(make_job("scratch"))
    rate = Rate(step_s=0.01, train_s_per_flop=1e-9, pass_s=0.002, forward_s_per_flop=2e-9, job_s=0.5, eval_s=0.03)
    alone = seconds(work, rate)
    fixed = work.steps * rate.step_s  # a train step's fixed time is paid once; passes outside it by each member
    assert group_seconds([work, work, work], {work.kernel: rate}) == pytest.approx(3 * alone - 2 * fixed)
    assert group_seconds([work], {work.kernel: rate}) == pytest.approx(alone)


def test_a_packed_sweep_is_priced_per_fused_group():
    rate = Rate(step_s=0.01, train_s_per_flop=1e-9, pass_s=0.002, forward_s_per_flop=2e-9, job_s=0.5, eval_s=0.03)
    jobs = [dataclasses.replace(make_job("scratch", n_train=n), id=f"j{n}") for n in (10, 12, 14, 16, 18)]
    alone = estimate(jobs, rate)["total"]
    packed = estimate([dataclasses.replace(j, pack=Pack(group=4)) for j in jobs], rate)["total"]
    works = [job_work(j) for j in jobs]
    # groups in plan order: the first four share one program, the fifth runs alone
    assert packed.hours * 3600 == pytest.approx(group_seconds(works[:4], {works[0].kernel: rate})
                                                + seconds(works[4], rate))
    saved = sum(w.steps for w in works[:4]) - max(w.steps for w in works[:4])  # fixed step times paid once
    assert (alone.hours - packed.hours) * 3600 == pytest.approx(saved * rate.step_s)
    assert (packed.jobs, packed.flops) == (alone.jobs, alone.flops)


def test_zero_shot_costs_only_an_evaluation_pass():
    zs = estimate([make_job("zeroshot", epochs=500, n_train=10_000)], 1e-9)["zeroshot"]
    assert zs.flops == F_8_4_16 * (2 + 3)
    assert zs.flops < estimate([make_job("scratch", epochs=1)], 1e-9)["total"].flops


@pytest.mark.parametrize("knob", ["width", "modes", "epochs", "n_train", "resolution"])
def test_monotone(knob):
    base = {"width": 8, "modes": 4, "resolution": 16, "epochs": 5, "n_train": 10}
    costs = []
    for factor in (1, 2, 4):
        sizes = {**base, knob: base[knob] * factor}
        costs.append(estimate([make_job("scratch", **sizes)], 1e-9)["total"].hours)
    assert costs[0] < costs[1] < costs[2]


def test_calibration_on_cpu_times_real_passes_and_prices_big_kernels_with_the_timed_ones(monkeypatch):
    monkeypatch.setattr(timing, "TIMED_SECONDS", 0.05)  # the fewest rounds: a test of the mechanism, not a timing
    small, big = Kernel(fno(4, 2, 8)), Kernel(fno(128, 32, 256))  # big: far above the CPU budget, not timed
    rates = timing.calibrate("cpu", {small: 4, big: 4})
    assert list(rates) == [small, big]
    timed = rates[small]
    assert math.isfinite(timed.step_s) and timed.step_s + 4 * 3 * small.flops_per_sample() * timed.train_s_per_flop > 0
    assert rates[big] == timed  # the only timed kernel's figures


def test_describe_estimate_prints_every_stage_and_the_total():
    text = describe_estimate([make_job("pretrain", width=4, modes=2, resolution=8), make_job("zeroshot", width=4,
                                                                                         modes=2, resolution=8)],
                             device="cpu")
    lines = text.splitlines()
    assert lines[0].split() == ["stage", "jobs", "train-samples", "FLOPs", "CPU-hours"]
    assert [line.split()[0] for line in lines[1:4]] == ["pretrain", "zeroshot", "total"]
    assert "1 thread a job" in lines[-1]
