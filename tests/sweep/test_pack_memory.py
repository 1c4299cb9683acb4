"""`harness expand` of a packed sweep (`pack:`) checks what a fused group holds at once against the largest device:
jobs that fit one at a time but not as a group of ``pack.group`` are refused with one line, exit 2, nothing
written (``harness.sweep.checks.check_packed``)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness.backends import Device, largest_device
from harness.cli import main
from harness.errors import SweepError
from harness.models import FLOAT_BYTES
from harness.sweep.expand import expand
from harness.sweep.spec import parse_sweep

GIB = 1 << 30
# Two jobs of one shape (seeds 0, 1), each with a resident training set at 128x128 (8 float32 channels a sample;
# 2 while it is generated, so it can be) of 0.6 of the largest device here: one fits, two at once do not.
N_BIG = int(0.6 * largest_device().bytes) // (8 * 128 * 128 * FLOAT_BYTES)
SWEEP = (f"name: p\nbase:\n  init: scratch\n  model: {{width: 4, modes: 4}}\n  stream: {{mode: never}}\n"
         f"  downstream: {{n_train: {N_BIG}, n_val: 16, n_test: 16}}\n  train: {{batch_size: 8}}\n"
         "matrix:\n  seed: [0, 1]\n")
PACK = "pack: {mode: fused, group: 4}\n"


def _expand(tmp_path: Path, text: str) -> tuple[int, str, Path]:
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(text)
    root = tmp_path / "results"
    result = CliRunner().invoke(main, ["expand", str(sweep), "--root", str(root)])
    return result.exit_code, result.output, root


def test_a_group_that_fits_no_device_is_refused_at_expand_in_one_line(tmp_path: Path) -> None:
    code, out, root = _expand(tmp_path, SWEEP)
    assert code == 0, out
    assert len(json.loads((root / "p" / "plan.json").read_text())["jobs"]) == 2
    (tmp_path / "packed").mkdir()
    code, out, root = _expand(tmp_path / "packed", SWEEP + PACK)
    assert code == 2
    lines = out.strip().splitlines()
    assert len(lines) == 1, out
    assert re.search(r"sweep\.yaml: pack\.group \(line 10\): pack\.group = 4 trains 2 of the sweep's 2 scratch jobs "
                     r"of one shape \(the largest at point \(seed=0\)\) as one program, holding about [\d,.]+ GiB at "
                     r"once .* but the largest device a backend offers has [\d,.]+ GiB \(.*\); set pack\.group to "
                     r"at most 1 \(1 trains each job alone\) or use a smaller train\.batch_size$", lines[0]), lines[0]
    assert not root.exists()


def _sweep(n_train: list[int], group: int) -> dict:
    base = {"init": "scratch", "resolution": 32, "model": {"width": 4, "modes": 4}, "stream": {"mode": "never"},
            "downstream": {"n_val": 8, "n_test": 8}, "train": {"batch_size": 8}}
    return {"name": "p", "base": base, "matrix": {"downstream.n_train": n_train, "seed": [0, 1]},
            "pack": {"mode": "fused", "group": group}}


def _held(n_train: int) -> int:
    """What one scratch job of ``_sweep`` holds alone at ``n_train`` (the device bound that just fits it)."""
    for bound in range(1 << 20, 64 << 30, 1 << 20):
        try:
            expand(parse_sweep({**_sweep([n_train], 1), "matrix": {"downstream.n_train": [n_train]}}, {}, "s.yaml"),
                   device=Device(bound, "test"))
            return bound
        except SweepError:
            continue
    raise AssertionError("no bound fits")


def test_the_largest_jobs_of_a_shape_are_counted_together_whatever_the_order() -> None:
    # two jobs at N = 4096 and two at N = 64 of one shape, in groups of 2: the two big ones may share a group at run
    # time (after the small ones have run), so the bound must hold both of them; it need not hold all four
    big = _held(4096)
    sweep = parse_sweep(_sweep([64, 4096], 2), {}, "s.yaml")
    with pytest.raises(SweepError, match=r"pack\.group = 2 trains 2 of the sweep's 4 scratch jobs of one shape "
                                         r"\(the largest at point \(downstream\.n_train=4096, seed=0\)\)"):
        expand(sweep, device=Device(int(1.5 * big), "test"))
    assert len(expand(sweep, device=Device(int(2.1 * big), "test"))) == 4
    # unpacked, each job alone fits the bound that just holds the largest
    assert len(expand(parse_sweep({**_sweep([64, 4096], 2), "pack": None}, {}, "s.yaml"),
                      device=Device(big, "test"))) == 4
