"""Sweep expansion: counts, stable ids, dependency-aware hashing, shared pretraining."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import yaml

from harness.sweep.expand import expand
from harness.sweep.spec import load_sweep

SWEEPS = Path(__file__).resolve().parents[2] / "sweeps"


def _write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_scaling_job_count_matches_the_product_the_file_implies() -> None:
    raw = yaml.safe_load((SWEEPS / "scaling.yaml").read_text())
    m = raw["matrix"]
    lo, hi = m["downstream.n_train"]["pow2"]
    n_sizes = hi - lo + 1
    models = len(m["model.width"]) * len(m["model.modes"]) - len(raw["exclude"])
    systems = len(raw["zip"][0]["pretrain.system"])
    shifts, seeds = len(m["downstream.shift"]), len(m["seed"])
    jobs = expand(load_sweep(SWEEPS / "scaling.yaml"))
    stages = Counter(j.stage for j in jobs)
    trained = models * systems * n_sizes * shifts * seeds
    # zero-shot evaluates the pretrained model: it varies not with N, but with the seed (its validation and test draw)
    assert stages == {"pretrain": models * systems, "finetune": trained, "scratch": trained,
                      "zeroshot": models * systems * shifts * seeds}
    assert len(jobs) == len({j.id for j in jobs})


def test_expanding_twice_gives_identical_ids() -> None:
    a = expand(load_sweep(SWEEPS / "smoke.yaml"))
    b = expand(load_sweep(SWEEPS / "smoke.yaml"))
    assert [j.id for j in a] == [j.id for j in b]


def _ids_by_stage(path: Path) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for job in expand(load_sweep(path)):
        out.setdefault(job.stage, set()).add(job.id)
    return out


def test_changing_one_value_changes_only_the_ids_that_depend_on_it(tmp_path: Path) -> None:
    raw = yaml.safe_load((SWEEPS / "smoke.yaml").read_text())
    before = _ids_by_stage(_write(tmp_path, raw))
    raw["base"]["train"]["lr"] = 5.0e-4  # downstream training only
    after_lr = _ids_by_stage(_write(tmp_path, raw))
    assert after_lr["pretrain"] == before["pretrain"] and after_lr["zeroshot"] == before["zeroshot"]
    assert not after_lr["finetune"] & before["finetune"] and not after_lr["scratch"] & before["scratch"]
    raw["base"]["pretrain"]["train"]["epochs"] = 3  # pretraining, hence fine-tuning and zero-shot
    after_pt = _ids_by_stage(_write(tmp_path, raw))
    assert after_pt["scratch"] == after_lr["scratch"]
    for stage in ("pretrain", "finetune", "zeroshot"):
        assert not after_pt[stage] & after_lr[stage]


def test_seeds_vary_the_data_draw_unless_data_seed_is_set(tmp_path: Path) -> None:
    raw = {"name": "d", "base": {"resolution": 16, "pretrain": {"n_train": 8, "n_val": 8, "n_test": 8}},
           "matrix": {"init": ["pretrained", "scratch", "zeroshot"], "seed": [0, 1, 2]}}
    jobs = expand(load_sweep(_write(tmp_path, raw)))
    by = {(j.stage, j.point["seed"]): j.config for j in jobs if j.stage != "pretrain"}
    # downstream data follow the seed (which N samples, and the validation and test draw)...
    assert all(cfg.data_seed == seed for (_, seed), cfg in by.items())
    # ...the pretraining follows pretrain.seed, so one pretrained model still serves every seed
    assert [j.config.data_seed for j in jobs if j.stage == "pretrain"] == [0]
    # seed 0 draws what a fixed data_seed of 0 draws: its ids are those of a sweep that sets data_seed: 0
    fixed = expand(load_sweep(_write(tmp_path, {**raw, "base": {**raw["base"], "data_seed": 0}})))
    ids = {j.id for j in jobs}
    assert {j.id for j in fixed if j.point["seed"] == 0} <= ids
    assert all(j.config.data_seed == 0 for j in fixed)
    assert {j.id for j in fixed if j.point["seed"] > 0 and j.stage != "pretrain"}.isdisjoint(ids)


def test_pretraining_jobs_are_shared_and_named_by_their_dependants() -> None:
    jobs = expand(load_sweep(SWEEPS / "smoke.yaml"))
    pretrain = {j.id for j in jobs if j.stage == "pretrain"}
    widths = load_sweep(SWEEPS / "smoke.yaml").matrix["model.width"]
    assert len(pretrain) == len(widths)
    users = Counter(j.depends_on for j in jobs if j.depends_on)
    assert set(users) == pretrain and all(n > 1 for n in users.values())
    order = [j.stage for j in jobs]
    assert order.index("finetune") > max(i for i, s in enumerate(order) if s == "pretrain")


def test_zip_varies_axes_together_and_exclude_include_apply(tmp_path: Path) -> None:
    path = _write(tmp_path, {
        "name": "z", "base": {"init": "scratch"},
        "matrix": {"downstream.n_train": {"pow2": [3, 5]}, "seed": {"range": [0, 1]}},
        "zip": [{"model.width": [8, 16], "model.modes": [4, 6]}],
        "exclude": [{"downstream.n_train": 32, "model.width": 16}],
        "include": [{"model.width": 64, "model.modes": 12, "downstream.n_train": 1024}],
    })
    jobs = expand(load_sweep(path))
    combos = {(j.config.model.width, j.config.model.modes, j.config.downstream.n_train)
              for j in jobs}
    assert len(jobs) == 3 * 2 * 2 - 2 + 1
    assert {(w, m) for w, m, _ in combos} == {(8, 4), (16, 6), (64, 12)}
    assert (16, 6, 32) not in combos and (64, 12, 1024) in combos


def test_shift_accepts_levels_and_explicit_ranges_and_lr_in_exponent_form(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("name: r\nbase: {train: {lr: 1e-3}}\nmatrix:\n  downstream.shift: [id, [5, 10]]\n")
    jobs = expand(load_sweep(path))
    shifts = [j.config.downstream.shift for j in jobs if j.stage == "finetune"]
    assert shifts == ["id", [5.0, 10.0]]
    assert all(j.config.train.lr == 1e-3 for j in jobs if j.config.train is not None)
    assert math.isclose(jobs[-1].config.train.lr, 0.001)
