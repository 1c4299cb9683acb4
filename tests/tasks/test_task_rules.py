"""Task keys at `harness expand`: what each stage's job config holds, and one clear line with exit 2 (nothing
written) for every task, system, strategy and augmentation that do not fit together."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from harness.backends import Device
from harness.cli import main
from harness.errors import SweepError
from harness.sweep.expand import expand
from harness.sweep.spec import parse_sweep

TIME = {"task": "next_step", "resolution": 16, "nt": 12, "time_window": 4,
        "pretrain": {"system": "mixed_time"}, "downstream": {"system": "heat"}}


def _expand(tmp_path: Path, base: dict, matrix: dict | None = None) -> tuple[int, str, Path]:
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(yaml.safe_dump({"name": "t", "base": base, **({"matrix": matrix} if matrix else {})}))
    root = tmp_path / "results"
    result = CliRunner().invoke(main, ["expand", str(sweep), "--root", str(root)])
    return result.exit_code, result.output, root


def _with(**changes: object) -> dict:
    base = yaml.safe_load(yaml.safe_dump(TIME))
    for key, value in changes.items():
        *parents, leaf = key.split("__")
        node = base
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return base


BAD = [
    ("unknown-task", _with(task="forecast"), None,
     r"base\.task \(line \d+\): invalid value 'forecast'; choose one of steady, fixed_future, next_step"),
    ("window-longer-than-trajectory", _with(time_window=12), None,
     r"time_window at point \(base\): 12 frames do not fit trajectories of nt 12 frames, where a frame must follow "
     r"the input window: choose 1\.\.11"),
    ("too-few-frames", _with(nt=1, time_window=1), None,
     r"nt at point \(base\): nt \(frames per trajectory\) must be an integer >= 2, got 1"),
    ("infinite-horizon", _with(horizon=float("inf")), None,
     r"base\.horizon \(line \d+\): must be a finite number, got inf"),
    ("target-outside", _with(task="fixed_future", target=12), None,
     r"target at point \(base\): frame 12 is not a frame after the input window of 4 in trajectories of 12: "
     r"choose 4\.\.11 \(or -8\.\.-1, counted from the end\)"),
    ("target-inside-the-window", _with(task="fixed_future"), {"target": [2]},
     r"target at point \(target=2\): frame 2 is not a frame after the input window"),
    ("unroll-on-fixed-future", _with(task="fixed_future", unroll=2), None,
     r"unroll at point \(base\): 2 pushforward steps apply to task next_step, not fixed_future: remove unroll"),
    ("target-on-next-step", _with(target=8), None,
     r"target at point \(base\): 8 applies to task fixed_future; next_step predicts every next frame"),
    ("unroll-past-the-end", _with(unroll=8), None, r"unroll at point \(base\): 8 pushforward steps do not fit"),
    ("time-strategy-on-steady", {"pretrain": {"strategy": "sort_time"}}, None,
     r"pretrain\.strategy at point \(base\): sort_time needs a time axis, which task steady has not: choose one of "
     r"supervised, masked, derivative, coefficient, sort_space, none"),
    ("picl-on-steady", {}, {"pretrain.strategy": ["picl"]},
     r"pretrain\.strategy at point \(pretrain\.strategy=picl\): picl needs a time axis, which task steady has not"),
    ("strategy-needs-another-window", _with(time_window=6), {"pretrain.strategy": ["sort_time"]},
     r"time_window at point \(pretrain\.strategy=sort_time\): 6 frames do not fit pretrain\.strategy sort_time, "
     r"which needs a time_window divisible by 4"),
    ("jigsaw-needs-an-even-window", _with(time_window=5), {"pretrain.strategy": ["jigsaw"]},
     r"time_window at point \(pretrain\.strategy=jigsaw\): 5 frames do not fit pretrain\.strategy jigsaw, which "
     r"needs a time_window divisible by 2 \(its pieces are 2 blocks of frames by tiles\)$"),
    ("binary-needs-two-frames", _with(time_window=1), {"pretrain.strategy": ["binary"]},
     r"time_window at point \(pretrain\.strategy=binary\): 1 frames do not fit pretrain\.strategy binary, which "
     r"needs time_window >= 2"),
    ("masked-needs-an-even-window", _with(time_window=5), {"pretrain.strategy": ["masked"]},
     r"time_window at point \(pretrain\.strategy=masked\): 5 frames do not fit pretrain\.strategy masked, which "
     r"needs an even time_window \(patches of 2 frames\)$"),
    ("derivative-needs-three-frames", _with(time_window=2), {"pretrain.strategy": ["derivative"]},
     r"time_window at point \(pretrain\.strategy=derivative\): 2 frames do not fit pretrain\.strategy derivative, "
     r"which needs time_window >= 3"),
    ("picl-needs-pairs", _with(pretrain__train={"batch_size": 1}), {"pretrain.strategy": ["picl"]},
     r"pretrain\.train\.batch_size at point \(pretrain\.strategy=picl\): 1 window per batch gives "
     r"pretrain\.strategy picl no pair of windows to contrast: choose a batch_size >= 2$"),
    ("unknown-strategy", _with(), {"pretrain.strategy": ["simclr"]},
     r"pretrain\.strategy.*invalid value 'simclr'; choose one of supervised, masked, derivative, coefficient, "
     r"sort_time, sort_space, jigsaw, binary, picl, none"),
    ("galilean-on-heat", _with(train={"augment": "galilean"}), None,
     r"train\.augment at point \(base\): augment 'galilean' does not apply to heat: a boost .* choose one of none, "
     r"shift, scale, noise$"),
    ("galilean-on-steady", {"train": {"augment": "galilean"}}, None,
     r"train\.augment at point \(base\): galilean is a symmetry of the time-dependent advection and Burgers "
     r"equations, not of poisson: choose one of none, shift, noise, scale"),
    ("steady-task-on-a-time-system", {"downstream": {"system": "heat"}, "init": "scratch"}, None,
     r"downstream\.system at point \(base\): heat is time-dependent but task is steady: set task: fixed_future or "
     r"next_step, or choose one of poisson, advection_diffusion, helmholtz"),
    ("time-task-on-a-steady-system", _with(init="scratch", downstream__system="poisson"), None,
     r"downstream\.system at point \(base\): poisson is not time-dependent but task is next_step: choose one of "
     r"heat, advection, burgers, navier_stokes, or set task: steady"),
    ("time-task-pretrained-on-a-steady-system", _with(pretrain__system="mixed"), None,
     r"pretrain\.system at point \(base\): mixed is not time-dependent but task is next_step"),
    ("time-key-on-steady", {"time_window": 4}, None,
     r"time_window at point \(base\): 4 applies to the time-dependent tasks \(fixed_future, next_step\), not task "
     r"steady: set task, or remove time_window"),
    ("level-of-another-system", _with(downstream__shift="ood_nu"), None,
     r"downstream\.shift at point \(base\): unknown shift level 'ood_nu' for heat: choose one of id, ood"),
    ("time-range", _with(downstream__shift=[0.1, 0.2]), None,
     r"downstream\.shift at point \(base\): \[0\.1, 0\.2\] is a range, but the time-dependent systems take a named "
     r"level: id, ood for heat"),
    ("time-level-on-steady", {"downstream": {"shift": "ood"}, "init": "scratch"}, None,
     r"downstream\.shift at point \(base\): unknown shift level 'ood' for poisson"),
]


@pytest.mark.parametrize(("base", "matrix", "message"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_a_task_that_does_not_fit_is_one_line_exit_2_and_nothing_written(tmp_path: Path, base: dict,
                                                                        matrix: dict | None, message: str) -> None:
    code, out, root = _expand(tmp_path, base, matrix)
    assert code == 2, out
    lines = out.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), out
    located = message.replace(r" at point", r"(?: \(line \d+\))? at point", 1)  # the key's YAML line, if written
    assert re.search(located, lines[0]), lines[0]
    assert not root.exists()


def _jobs(base: dict, matrix: dict) -> list[dict]:
    return expand(parse_sweep({"name": "t", "base": base, "matrix": matrix}, {}, "t.yaml"))


def test_steady_jobs_hold_no_task_keys_so_their_ids_did_not_change() -> None:
    plain = _jobs({}, {"init": ["pretrained", "scratch", "zeroshot"]})
    explicit = _jobs({"task": "steady", "nt": 32, "time_window": 8}, {"init": ["pretrained", "scratch", "zeroshot"]})
    assert [j.id for j in plain] == [j.id for j in explicit]
    task_keys = {"task", "time_window", "nt", "horizon", "target", "unroll"}
    assert not any(task_keys & set(j.to_dict()["config"]) for j in plain)


def test_time_jobs_hold_their_task_keys_and_pretext_pretrainings_are_shared_across_unrolls() -> None:
    jobs = _jobs(TIME, {"pretrain.strategy": ["supervised", "masked"], "unroll": [0, 2]})
    pretrain = [j for j in jobs if j.stage == "pretrain"]
    masked = [j for j in pretrain if j.config.pretrain.strategy == "masked"]
    assert len(pretrain) == 3 and len(masked) == 1  # supervised pretraining learns the task: one per unroll
    keys = masked[0].to_dict()["config"].keys()
    assert keys >= {"task", "time_window", "nt", "horizon"} and "unroll" not in keys
    finetune = [j for j in jobs if j.stage == "finetune"]
    assert sorted(j.config.forecast.unroll for j in finetune) == [0, 0, 2, 2]
    assert all(j.config.task == "next_step" and j.config.forecast.nt == 12 for j in finetune)
    fixed = _jobs(_with(task="fixed_future"), {"target": [-1, 6]})
    assert sorted(j.config.forecast.target for j in fixed if j.stage == "finetune") == [-1, 6]
    assert all(j.config.forecast.unroll is None for j in fixed)


def test_a_galilean_boost_is_accepted_for_advection_burgers_and_the_mixture() -> None:
    boost = {"augment": "galilean"}
    jobs = _jobs(_with(train=boost, pretrain={"system": "mixed_time", "train": boost}),
                 {"downstream.system": ["advection", "burgers"]})
    assert {j.config.train.augment for j in jobs if j.stage == "finetune"} == {"galilean"}


def test_expand_sizes_a_time_job_by_its_trajectories_not_the_steady_inputs() -> None:
    # 4,112 resident trajectories of 64 frames at 64^2: 4.0 GiB (a steady sample of 8 channels would be 0.5 GiB)
    base = _with(init="scratch", resolution=64, nt=64, model={"width": 8, "modes": 4},
                 downstream={"system": "heat", "n_train": 4096, "n_val": 16})
    sweep = parse_sweep({"name": "t", "base": base}, {}, "t.yaml")
    assert expand(sweep, device=Device(8 << 30, "test"))
    with pytest.raises(SweepError, match=r"training and validation data 4\.0 GiB\) but the largest device a backend "
                                         r"offers has 2\.0 GiB \(test\)"):
        expand(sweep, device=Device(2 << 30, "test"))
