"""Shared test set-up: one PDE data cache per test run, few threads (2-core CI machine), the Slurm cluster,
the smoke sweep's local results.

`make test` runs the suite in parallel processes (pytest-xdist, ``--dist loadgroup``): the tests that use the
Slurm cluster run in one process, one after another, since each module empties the queue; the data cache and the
smoke sweep's results are made once per run and shared by every process.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from tests.helpers import SWEEPS, harness
from tests.slurm_util import empty_test_queue, find_cluster

# The smoke sweep's submit (38 jobs on two workers): about 3 minutes on 2 idle cores, 24 minutes once on a loaded
# one (issue 26). An hour lets a machine 20x slower than idle pass, and a hung job still fails the run.
SMOKE_TIMEOUT_S = 3600


def _uses(item: pytest.Item, fixture: str) -> bool:
    return fixture in getattr(item, "fixturenames", ())


def _group(item: pytest.Item) -> str:
    """The item's xdist work unit: every test on the Slurm cluster in one (one process, in order), every other
    module one of its own (its module fixtures made once), named by its path."""
    return "slurm" if _uses(item, "slurm_cluster") else item.nodeid.split("::")[0]


def pytest_itemcollected(item: pytest.Item) -> None:
    """Mark the item's work unit as it is collected, before xdist reads the marks."""
    item.add_marker(pytest.mark.xdist_group(_group(item)))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Long units first, so that none is left alone at the end of a parallel run (``--no-loadscope-reorder``
    keeps this order): the Slurm group, the modules of the smoke sweep's users, modules with slow tests, the rest."""
    def rank(item: pytest.Item) -> int:
        return (0 if _group(item) == "slurm" else 1 if _uses(item, "smoke_results")
                else 2 if item.get_closest_marker("slow") else 3)

    first: dict[str, int] = {}
    for item in items:
        first[_group(item)] = min(first.get(_group(item), 3), rank(item))
    items.sort(key=lambda item: first[_group(item)])


def shared_dir(tmp_path_factory: pytest.TempPathFactory, name: str) -> Path:
    """A folder shared by every xdist process of this run (this session's own without xdist)."""
    base = tmp_path_factory.getbasetemp()
    path = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / name
    path.mkdir(exist_ok=True)
    return path


@contextlib.contextmanager
def held(folder: Path) -> Iterator[Path]:
    """Hold ``folder``/lock for the block, alone among the xdist processes (released when the holder ends)."""
    with (folder / "lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield folder


@pytest.fixture(scope="session", autouse=True)
def _data_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    os.environ.setdefault("HARNESS_DATA_CACHE", str(shared_dir(tmp_path_factory, "data-cache")))
    # one thread per job process too (the local backend would give a lone worker both cores, which the other
    # xdist process is using): the user's OMP_NUM_THREADS wins in every backend
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def slurm_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """SLURM_CONF of the running cluster, exported for the module's tests; skips them when there is none.
    The module holds the cluster alone (a lock shared by the xdist processes, in case they are not grouped)."""
    conf, why = find_cluster()
    if conf is None:
        pytest.skip(why)
    old = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = conf
    with held(shared_dir(tmp_path_factory, "slurm")):
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
    Run once per test run (minutes; the first xdist process to ask runs it, the others wait for it) for the tests
    of its report and of its result set on Slurm. Not counted in a test's pytest-timeout (``timeout_func_only``):
    its submit has its own bound, SMOKE_TIMEOUT_S."""
    folder = shared_dir(tmp_path_factory, "smoke")
    root, done = folder / "results", folder / "done"
    with held(folder):
        if not done.exists():
            harness(root, "expand", str(SWEEPS / "smoke.yaml"))
            harness(root, "submit", "--workers", "2", timeout=SMOKE_TIMEOUT_S)
            done.touch()
    return root
