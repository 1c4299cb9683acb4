"""A fused group whose training raises (harness.job.run._train_fused): its jobs train on alone, each from its own
state, and end with the results they get alone; the fallback is said on stderr.

What a group cannot do that its jobs alone can: hold K batches' activations at once. A real process whose data
segment is capped (RLIMIT_DATA, which counts the anonymous memory the CPU allocator maps) runs out of memory in the
group's first fused step at 8 jobs of 64 samples a batch at 32x32, width 16, where one job's step fits (measured
here: each job alone runs under a cap of 550 MiB beyond what the process holds after importing torch, the group
of eight fails under 1,000 and runs under 1,400; the cap of 750 leaves room on both sides)."""

import os
import subprocess
import sys
import textwrap

import pytest

from harness.job.run import run_job
from harness.store.folders import read_summary, run_dir
from harness.sweep.expand import expand
from harness.sweep.spec import load_sweep
from tests.helpers import write_sweep

CAP_MIB = 750  # the data segment the capped process may add to what it holds after importing torch
SPEC = {"name": "oom", "base": {"resolution": 32, "init": "scratch", "model": {"width": 16, "modes": 4},
                                "downstream": {"n_train": 64, "n_val": 8, "n_test": 8},
                                "train": {"steps": 2, "batch_size": 64, "lr": 3.0e-3, "eval_every": 2,
                                          "checkpoint_every_s": 0}},
        "matrix": {"seed": list(range(8))}, "pack": {"group": 8}}
CAPPED = textwrap.dedent("""
    import re, resource, sys
    from pathlib import Path
    import torch
    from harness.job.run import run_group
    from harness.sweep.expand import expand
    from harness.sweep.spec import load_sweep
    jobs = expand(load_sweep(Path(sys.argv[1])))
    torch.zeros(1)
    held = int(re.search(r"VmData:\\s+(\\d+)", Path("/proc/self/status").read_text()).group(1)) << 10
    cap = held + (int(sys.argv[3]) << 20)
    resource.setrlimit(resource.RLIMIT_DATA, (cap, cap))
    print([s["status"] for s in run_group(jobs, Path(sys.argv[2]))])
""")
METRICS = ("best_val_rel_l2", "test_rel_l2", "best_step", "steps_run")


@pytest.mark.slow
def test_a_group_out_of_memory_trains_each_job_alone_to_its_results_alone(tmp_path):
    sweep = write_sweep(tmp_path, SPEC)
    proc = subprocess.run([sys.executable, "-c", CAPPED, str(sweep), str(tmp_path / "fused"), str(CAP_MIB)],
                          capture_output=True, text=True, timeout=600,
                          env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})  # the CPU's memory is the one capped
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(["ok"] * 8), proc.stdout + proc.stderr
    warning = [line for line in proc.stderr.splitlines() if "fused training of 8 jobs" in line]
    assert len(warning) == 1 and "can't allocate memory" in warning[0], proc.stderr  # the group did fail
    assert "training each alone from its checkpoint" in warning[0]
    jobs = expand(load_sweep(sweep))
    alone = [run_job(job, tmp_path / "alone") for job in jobs]
    fused = [read_summary(run_dir(tmp_path / "fused" / "oom", job.id)) for job in jobs]
    assert all(s["group_size"] == 8 and s["status"] == "ok" for s in fused)
    for column in METRICS:
        assert [s[column] for s in fused] == pytest.approx([s[column] for s in alone], rel=1e-5)
