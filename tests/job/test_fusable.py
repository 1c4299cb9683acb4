"""Which jobs train together (harness.job.fusable): one shape per group, at most `pack.group`, in plan order."""

from harness.job.fusable import fused_groups
from harness.sweep.expand import expand
from harness.sweep.spec import load_sweep
from tests.helpers import TINY, write_sweep


def test_groups_hold_jobs_of_one_shape_up_to_the_group_size(tmp_path):
    spec = {**TINY, "matrix": {"model.width": [4, 8], "seed": [0, 1, 2], "init": ["scratch", "zeroshot"],
                               "train.lr": [1.0e-3]}, "pack": {"group": 2}}
    jobs = expand(load_sweep(write_sweep(tmp_path, spec)))
    groups = fused_groups(jobs)
    scratch = [g for g in groups if str(g[0].stage) == "scratch"]
    assert sorted(len(g) for g in scratch) == [1, 1, 2, 2]
    for group in scratch:  # one width per group, seeds differ
        assert len({j.config.model.width for j in group}) == 1 and len({j.config.seed for j in group}) == len(group)
    assert all(len(g) == 1 for g in groups if str(g[0].stage) != "scratch")  # zero-shot and pretraining alone here
    assert sorted(j.id for g in groups for j in g) == sorted(j.id for j in jobs)  # each job once


def test_without_pack_every_job_is_alone(tmp_path):
    jobs = expand(load_sweep(write_sweep(tmp_path, {**TINY, "matrix": {"seed": [0, 1, 2], "init": ["scratch"]}})))
    assert fused_groups(jobs) == [[job] for job in jobs]
