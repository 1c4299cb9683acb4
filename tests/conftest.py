"""Shared test set-up: one PDE data cache per test session, few threads (2-core CI machine), the Slurm cluster,
the smoke sweep's local results."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from tests.helpers import SWEEPS, harness
from tests.slurm_util import empty_test_queue, find_cluster


@pytest.fixture(scope="session", autouse=True)
def _data_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    os.environ.setdefault("HARNESS_DATA_CACHE", str(tmp_path_factory.mktemp("data-cache")))
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def slurm_cluster() -> Iterator[str]:
    """SLURM_CONF of the running cluster, exported for the module's tests; skips them when there is none."""
    conf, why = find_cluster()
    if conf is None:
        pytest.skip(why)
    old = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = conf
    empty_test_queue(conf)
    yield conf
    empty_test_queue(conf)
    if old is None:
        os.environ.pop("SLURM_CONF", None)
    else:
        os.environ["SLURM_CONF"] = old


@pytest.fixture(scope="session")
def smoke_results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """sweeps/smoke.yaml run as `make demo` runs it (expand, then submit on two local workers): its results root.
    Run once per session (minutes) for the tests of its report and of its result set on Slurm."""
    root = tmp_path_factory.mktemp("smoke") / "results"
    harness(root, "expand", str(SWEEPS / "smoke.yaml"))
    harness(root, "submit", "--workers", "2")
    return root
