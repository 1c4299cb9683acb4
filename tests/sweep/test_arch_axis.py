"""`model.arch` as a sweep axis: FNO sweeps keep their jobs, each family gets its own pretraining, `model.params`
resolves per family into the job config, and every rule a family brings is one line at expand (exit 2, nothing
written)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness.cli import main
from harness.job import Job
from harness.models import ARCHS, Shape, family
from harness.sweep.estimate import estimate
from harness.sweep.expand import expand
from harness.sweep.spec import load_sweep

BASE = "name: t\nbase:\n  resolution: 16\n"


def _jobs(tmp_path: Path, text: str) -> list[Job]:
    path = tmp_path / "sweep.yaml"
    path.write_text(text)
    return expand(load_sweep(path))


def _model(job: Job) -> dict:
    """The job config's model as plan.json holds it."""
    return job.config.model.to_dict()


def test_fno_is_the_default_family_and_naming_it_changes_no_job(tmp_path: Path) -> None:
    plain = _jobs(tmp_path, BASE + "matrix:\n  model.width: [8, 16]\n  init: [pretrained, scratch, zeroshot]\n")
    named = _jobs(tmp_path, BASE + "  model: {arch: fno}\nmatrix:\n  model.width: [8, 16]\n"
                                   "  init: [pretrained, scratch, zeroshot]\n")
    assert [(j.id, j.config) for j in named] == [(j.id, j.config) for j in plain]
    assert {tuple(sorted(_model(j).items())) for j in plain} == {
        (("modes", 8), ("width", 8)), (("modes", 8), ("width", 16))}  # the FNO's keys only, as before families


def test_each_family_pretrains_its_own_model_and_its_stages_share_it(tmp_path: Path) -> None:
    jobs = _jobs(tmp_path, BASE + "matrix:\n  model.arch: [fno, unet, deeponet, oformer]\n"
                                  "  init: [pretrained, zeroshot]\n")
    pretrain = {j.id: j for j in jobs if j.stage == "pretrain"}
    assert len(pretrain) == 4 and len(jobs) == 12
    for job in jobs:
        if job.stage != "pretrain":  # a fine-tuning loads a pretraining of its own family and sizes
            assert pretrain[job.depends_on].config.model == job.config.model
    models = {_model(j).get("arch", "fno"): _model(j) for j in pretrain.values()}
    assert models == {"fno": {"width": 32, "modes": 8}, "unet": {"arch": "unet", "channels": 24, "levels": 3},
                      "deeponet": {"arch": "deeponet", "branch_width": 64, "trunk_width": 128, "basis": 128},
                      "oformer": {"arch": "oformer", "width": 128, "depth": 4, "heads": 4, "patch": 4}}


def test_a_parameter_target_resolves_per_family_with_the_true_count_in_the_config(tmp_path: Path) -> None:
    # a zip gives each family its own fixed keys: null is "not set" (the family's default, or the target's rule)
    jobs = _jobs(tmp_path, BASE + "  init: scratch\nmatrix:\n  model.params: [2.0e+4, 2.0e+5]\nzip:\n"
                                  "  - {model.arch: [fno, unet, oformer], model.modes: [4, null, null],"
                                  " model.patch: [null, null, 2]}\n")
    assert len(jobs) == 6
    for job in jobs:
        model = _model(job)
        arch = model.get("arch", "fno")
        rules, io = family(arch), {"resolution": 16, "in_channels": 7, "out_channels": 1}
        sizes = {k: model[k] for k in rules.defaults}
        assert model["n_params"] == rules.count_params(sizes, **io)
        assert sizes == rules.nearest(model["params"], fixed={"modes": 4} if arch == "fno" else
                                      {"patch": 2} if arch == "oformer" else {}, **io)
        assert 1 / 1.5 < model["n_params"] / model["params"] < 1.5
    models = {(_model(j).get("arch"), _model(j)["params"]): _model(j) for j in jobs}
    # lifting 8 x 9, four layers of 4 x 4^2 x 9^2 + 9^2 + 9, head 2 x 9^2 + 2 x 9 + 2 x 9 + 1: 21,367 (width 8: 17,137)
    assert models[(None, 2.0e4)] == {"params": 2.0e4, "width": 9, "modes": 4, "n_params": 21_367}


def test_the_estimate_costs_each_family_by_its_own_rule(tmp_path: Path) -> None:
    jobs = _jobs(tmp_path, BASE + "  init: zeroshot\n  downstream: {n_val: 2, n_test: 3}\n"
                                  "matrix:\n  model.arch: [fno, unet, deeponet, oformer]\n")
    zeroshot = [j for j in jobs if j.stage == "zeroshot"]
    for job in zeroshot:
        shape = Shape.of(job.config.model, 16)
        rules = family(shape.arch)
        flops = rules.flops_per_sample(dict(shape.sizes), resolution=16, in_channels=7, out_channels=1)
        assert estimate([job], 1.0)["zeroshot"].flops == flops * (2 + 3)  # one pass over validation and test
    assert len({Shape.of(j.config.model, 16) for j in zeroshot}) == len(ARCHS)
    by_family, by_stage = estimate(jobs, 1e-9, "family"), estimate(jobs, 1e-9)
    assert list(by_family) == [*ARCHS, "total"] and by_family["total"] == by_stage["total"]
    for arch in ARCHS:  # a family's row: its pretraining and its zero-shot job
        own = [j for j in jobs if Shape.of(j.config.model, 16).arch == arch]
        assert by_family[arch].flops == estimate(own, 1e-9)["total"].flops and by_family[arch].jobs == 2


BAD = [
    ("unknown-family", "matrix:\n  model.arch: [fno, resnet]\n",
     r"matrix\.model\.arch\.1 \(line 5\): invalid value 'resnet'; choose one of fno, unet, deeponet, oformer"),
    ("key-of-another-family", "  model: {modes: 4}\nmatrix:\n  model.arch: [fno, unet]\n",
     r"base\.model\.modes \(line 4\) at point \(model\.arch=unet\): model\.modes is no size key of unet; its size "
     r"keys \(with defaults\) are channels=24, levels=3: use those, or model\.params"),
    ("unet-deeper-than-the-grid-halves", "  resolution: 20\n  model: {arch: unet}\nmatrix:\n  model.levels: [2, 3]\n",
     r"matrix\.model\.levels \(line 6\) at point \(model\.levels=3\): model\.levels=3 halves the grid 3 times, so "
     r"the resolution must be a multiple of 8, but it is 20: use model\.levels <= 2 or a resolution"),
    ("oformer-patch-not-tiling", "  model: {arch: oformer, patch: 3}\n",
     r"base\.model\.patch \(line 4\) at point \(base\): model\.patch=3 must divide the resolution 16 \(patches "
     r"tile the grid\): use model\.patch 2 or a resolution that is a multiple of 3"),
    ("oformer-heads-not-dividing", "  model: {arch: oformer, width: 30}\n",
     r"model\.heads at point \(base\): model\.heads=4 must divide model\.width=30"),
    ("fno-modes-beyond-the-grid", "  model: {arch: fno, modes: 9}\n",
     r"base\.model\.modes \(line 4\) at point \(base\): modes=9 is too large for resolution 16x16"),
    ("target-with-every-width-key", "  model: {arch: deeponet, params: 1.0e+5, branch_width: 8, trunk_width: 8, "
                                    "basis: 8}\n",
     r"base\.model\.params \(line 4\) at point \(base\): model\.params sets model\.branch_width and "
     r"model\.trunk_width and model\.basis of deeponet: remove model\.params or"),
    ("target-below-one", "matrix:\n  model.params: [0.5]\n",
     r"matrix\.model\.params\.0 \(line 5\): must be >= 1, got 0\.5; use a number >= 1"),
    ("size-not-an-integer", "  model: {arch: unet, channels: 8.5}\n",
     r"base\.model\.channels \(line 4\): expected an integer, got 8\.5"),
    # attention's quadratic term: an OFormer of 128 x 128 one-point tokens holds (16,384 tokens)^2 probabilities per
    # head and sample, where an FNO of the same parameters fits
    ("oformer-attention-fits-no-device", "  resolution: 128\n  init: scratch\n  train: {batch_size: 64}\n"
                                         "  model: {params: 1.0e+5, patch: null}\nzip:\n"
                                         "  - {model.arch: [fno, oformer], model.patch: [null, 1]}\n",
     r"base\.model\.params \(line 6\) at point \(model\.arch=oformer, model\.patch=1\): training needs about "
     r"[\d,.]+ GiB .* one batch's activations [\d,.]+ GiB.*; use a smaller model\.width, model\.depth \(or "
     r"model\.params\), a larger model\.patch \(fewer tokens\), a smaller resolution"),
]


@pytest.mark.parametrize(("text", "message"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_a_family_rule_broken_is_one_line_exit_2_and_nothing_written(tmp_path: Path, text: str,
                                                                     message: str) -> None:
    sweep, root = tmp_path / "sweep.yaml", tmp_path / "results"
    sweep.write_text("name: t\nbase:\n" + text if text.startswith("  resolution:") else BASE + text)
    result = CliRunner().invoke(main, ["expand", str(sweep), "--root", str(root)])
    lines = result.output.strip().splitlines()
    assert result.exit_code == 2 and len(lines) == 1 and lines[0].startswith(f"error: {sweep}: "), result.output
    assert re.search(message, lines[0]), lines[0]
    assert not root.exists()


@pytest.mark.parametrize(("system", "coefs"), [("heat", 5), ("navier_stokes", 2)])
def test_a_parameter_target_of_a_time_task_counts_its_downstream_coefficient_channels(
        tmp_path: Path, system: str, coefs: int) -> None:
    # the model fine-tuned on Navier-Stokes takes visc and amp, heat's the five nu, ax, ay, cx, cy
    jobs = _jobs(tmp_path, BASE + "  task: next_step\n  time_window: 4\n  nt: 8\n  init: scratch\n"
                                  f"  downstream: {{system: {system}}}\n  model: {{params: 2.0e+4, modes: 4}}\n")
    model = _model(jobs[0])
    io = {"resolution": 16, "in_channels": 4 + coefs, "out_channels": 1}
    assert model["n_params"] == family("fno").count_params({"width": model["width"], "modes": 4}, **io)
