"""`harness expand`: the plan it writes, and one clear line with exit 2 (and nothing written) for bad input."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness.cli import main

GOOD = "name: t\nmatrix:\n  model.width: [8, 16]\n  init: [pretrained, scratch]\n"


def _expand(tmp_path: Path, text: str | None, *extra: str) -> tuple[int, str, Path]:
    sweep = tmp_path / "sweep.yaml"
    if text is not None:
        sweep.write_text(text)
    root = tmp_path / "results"
    result = CliRunner().invoke(main, ["expand", str(sweep), "--root", str(root), *extra])
    return result.exit_code, result.output, root


def test_expand_writes_the_plan_and_makes_it_current(tmp_path: Path) -> None:
    code, out, root = _expand(tmp_path, GOOD)
    assert code == 0, out
    assert "6 jobs" in out and "pretrain 2" in out and "model.width" in out
    plan = json.loads((root / "t" / "plan.json").read_text())
    assert len(plan["jobs"]) == 6 and plan["spec"]["name"] == "t"
    assert (root / ".current").read_text().strip() == "t"
    code, out, _ = _expand(tmp_path, GOOD, "--json")
    assert code == 0 and len(json.loads(out)["jobs"]) == 6


BAD = [
    ("missing-file", None, r"sweep\.yaml: no such sweep file; check the path"),
    ("yaml-syntax", "name: t\nmatrix:\n  model.width: [8, 16\n", r"\(line 4, column 1\): YAML syntax error"),
    ("unknown-axis", "name: t\nmatrix:\n  model.widht: [8]\n",
     r"matrix\.model\.widht \(line 3\): unknown key `model\.widht`; did you mean `model\.width`\?"),
    ("unknown-top-key", "name: t\nmatrx: {}\n",
     r"matrx \(line 2\): unknown top-level key `matrx`; did you mean `matrix`\?"),
    ("wrong-type", "name: t\nmatrix:\n  model.width: [8, sixteen]\n",
     r"matrix\.model\.width\.1 \(line 3\): expected an integer, got 'sixteen'"),
    ("bad-choice", "name: t\nmatrix:\n  init: [pretrained, finetuned]\n",
     r"invalid value 'finetuned'; choose one of pretrained, scratch, zeroshot"),
    ("empty-axis", "name: t\nmatrix:\n  model.width: []\n", r"matrix\.model\.width \(line 3\): empty axis"),
    ("zip-unequal", "name: t\nzip:\n  - {model.width: [8, 16], model.modes: [4]}\n",
     r"zip\.0 \(line 3\): axes of unequal length"),
    ("exclude-unknown", "name: t\nmatrix:\n  model.width: [8]\nexclude:\n  - {model.modes: 4}\n",
     r"exclude\.0\.model\.modes \(line 5\): `model\.modes` is not an axis of this sweep"),
    ("too-many", "name: t\nmatrix:\n  seed: {range: [0, 400]}\n  downstream.n_train: {range: [1, 400]}\n",
     r"implies 160400 points \(> 100000\); narrow the axes, or pass --force"),
    ("no-name", "matrix:\n  model.width: [8]\n", r"missing or invalid sweep name None; add `name: my-sweep`"),
    ("shift-lo-gt-hi", "name: t\nmatrix:\n  downstream.shift: [[10, 5]]\n", r"range \[10\.0, 5\.0\] has lo > hi"),
    ("train-constraint", "name: t\nmatrix:\n  train.min_lr: [1.0e-2]\n",
     r"train at point \(train\.min_lr=0\.01\): train settings must satisfy 0 <= min_lr <= lr"),
    ("zeroshot-of-pretext", "name: t\nmatrix:\n  init: [zeroshot]\n  pretrain.strategy: [supervised, masked]\n",
     r"matrix\.init \(line 3\) at point \(init=zeroshot, pretrain\.strategy=masked\): init zeroshot needs "
     r"pretrain\.strategy supervised, not masked; add `exclude: \[\{init: zeroshot, pretrain\.strategy: masked\}\]`"),
    ("odd-resolution", "name: t\nbase: {resolution: 33}\n", r"base\.resolution \(line 2\): must be even and >= 8"),
    # rules the jobs enforce at run time, checked for every point at expand with the same functions
    ("shift-level-of-another-system", "name: t\nmatrix:\n  downstream.shift: [id, advection]\n",
     r"matrix\.downstream\.shift \(line 3\) at point \(downstream\.shift=advection\): unknown shift level "
     r"'advection' for poisson: choose one of id, moderate, large or give \[lo, hi\]"),
    ("helmholtz-range-not-integer", "name: t\nbase:\n  downstream: {system: helmholtz, shift: [1.5, 3]}\n",
     r"base\.downstream\.shift \(line 3\) at point \(base\): helmholtz omega range must be integers >= 1, got "
     r"\[1\.5, 3\.0\]; use a range where that holds, or a helmholtz level: id, moderate, large"),
    ("poisson-range-below-1", "name: t\nmatrix:\n  pretrain.shift: [[0.5, 2]]\n",
     r"matrix\.pretrain\.shift \(line 3\) at point \(pretrain\.shift=\[0\.5, 2\.0\]\): poisson anisotropy e must "
     r"be >= 1, got \[0\.5, 2\.0\]; use a range where that holds"),
    ("mixed-with-a-range", "name: t\nbase:\n  pretrain: {system: mixed, shift: [1, 5]}\n",
     r"base\.pretrain\.shift \(line 3\) at point \(base\): mixed takes a shift level name, one of id, moderate, "
     r"large; got shift=\[1\.0, 5\.0\]"),
    ("nan-range-bound", "name: t\nmatrix:\n  downstream.shift: [[.nan, 2]]\n",
     r"matrix\.downstream\.shift \(line 3\) at point .*: poisson range for e must be two finite numbers"),
    ("infinite-range-bound", "name: t\nmatrix:\n  downstream.shift: [[1, .inf]]\n",
     r"matrix\.downstream\.shift \(line 3\) at point .*: poisson range for e must be two finite numbers"),
    ("modes-too-many-for-the-grid", "name: t\nbase: {resolution: 32}\nmatrix:\n  model.modes: [8, 20]\n",
     r"matrix\.model\.modes \(line 4\) at point \(model\.modes=20\): modes=20 is too large for resolution 32x32.*"
     r"use modes <= 16 or a finer grid"),
    ("mask-patches-not-dividing", "name: t\nbase:\n  resolution: 36\n  pretrain: {strategy: masked}\n",
     r"pretrain\.mask_patches at point \(base\): mask_patches=8 must divide the grid 36x36; choose a divisor such "
     r"as 4"),
    ("mask-ratio-above-1", "name: t\nbase:\n  pretrain: {strategy: masked, mask_ratio: 1.5}\n",
     r"base\.pretrain\.mask_ratio \(line 3\) at point \(base\): masked pretraining needs .* but got "
     r"mask_ratio=1\.5, mask_patches=8; use a mask_ratio in \(0, 1\]"),
    ("unknown-slurm-key", "name: t\nslurm:\n  partiton: gpu\n",
     r"slurm\.partiton \(line 3\): unknown slurm setting\(s\) partiton; valid settings: partition \(default None\)"),
    ("nan-learning-rate", "name: t\nbase:\n  train: {lr: .nan}\n",
     r"base\.train\.lr \(line 3\): must be a finite number, got nan; write a number such as 1\.0e-3$"),
    ("infinite-learning-rate", "name: t\nmatrix:\n  pretrain.train.lr: [1.0e-3, .inf]\n",
     r"matrix\.pretrain\.train\.lr\.1 \(line 3\): must be a finite number, got inf"),
    ("pretext-loss", "name: t\nbase:\n  pretrain: {strategy: masked, train: {loss: mse}}\n",
     r"base\.pretrain\.train\.loss \(line 3\) at point \(base\): pretrain\.train\.loss applies to supervised "
     r"pretraining; the masked strategy has its own loss: remove pretrain\.train\.loss for it"),
    ("negative-data-seed", "name: t\nbase: {data_seed: -1}\n",
     r"base\.data_seed \(line 2\): must be >= 0, got -1; use a seed >= 0"),
    ("model-fits-no-device", "name: t\nmatrix:\n  model.width: [16, 100000]\n",
     r"matrix\.model\.width \(line 3\) at point \(model\.width=100000\): training needs about [\d,.]+ GiB "
     r"\(parameters with gradients and Adam state [\d,.]+ GiB, .*\) but the largest device a backend offers has "
     r"[\d,.]+ GiB \(.*\); use a smaller model\.width"),
]


@pytest.mark.parametrize(("text", "message"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_input_is_one_clear_line_exit_2_and_nothing_written(tmp_path: Path, text: str | None,
                                                               message: str) -> None:
    code, out, root = _expand(tmp_path, text)
    assert code == 2
    lines = out.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), out
    assert re.search(message, lines[0]), lines[0]
    assert not root.exists()


def test_force_allows_a_big_matrix(tmp_path: Path) -> None:
    text = ("name: big\nbase: {init: scratch}\nmatrix:\n  seed: {range: [0, 400]}\n"
            "  downstream.n_train: {range: [1, 250]}\n")
    code, out, root = _expand(tmp_path, text, "--force")
    assert code == 0, out
    assert "100250 jobs" in out


def test_estimate_prints_predicted_hours_per_stage(tmp_path: Path) -> None:
    text = "name: t\nbase: {resolution: 16, model: {width: 4, modes: 4}}\nmatrix:\n  init: [pretrained, scratch]\n"
    code, out, _ = _expand(tmp_path, text, "--estimate")
    assert code == 0, out
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.split()}
    assert {"pretrain", "finetune", "scratch", "total"} <= set(rows)
    assert float(rows["total"][-1]) > 0
