"""The Python front door (``harness.api``, its main functions at the top of the package): docs/python.md runs as
written, and the functions say what the commands say."""

from __future__ import annotations

import contextlib
import importlib
import inspect
import io
import pkgutil
import re
from pathlib import Path

import pytest
import torch

import harness
from harness.errors import HarnessError
from harness.store import State
from tests.helpers import TINY, cli, write_sweep

DOCS = Path(__file__).resolve().parents[1] / "docs" / "python.md"


def test_the_front_door_functions_stay_functions_once_every_subpackage_is_imported() -> None:
    # a subpackage named like a function (harness.export once was) replaces it on import: harness.export(...) then
    # raised "'module' object is not callable" after anything had loaded the subpackage
    for package in pkgutil.walk_packages(harness.__path__, "harness."):
        importlib.import_module(package.name)
    assert all(inspect.isfunction(getattr(harness, name)) for name in harness.__all__), harness.__all__


def test_the_python_page_runs_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # its results/ go here
    blocks = re.findall(r"```python\n(.*?)```", DOCS.read_text(), re.S)
    assert len(blocks) == 5
    scope: dict = {}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        for block in blocks:
            exec(block, scope)  # noqa: S102 (the page's own code)
    plan, run = scope["plan"], scope["run"]
    assert len(plan.jobs) == 5 and plan.folder == Path("results/notebook")
    assert set(run.states.values()) == {State.OK} and len(run.states) == 5
    assert scope["frame"]["test_rel_l2"].notna().all() and Path(scope["report"].html).is_file()
    assert "notebook: 5 of 5 jobs to run (pretrain 1, finetune 2, scratch 2)" in out.getvalue()
    assert (Path(scope["folder"]) / "model.safetensors").is_file() and isinstance(scope["model"], torch.nn.Module)
    assert scope["row"]["resolution"] == 32 and 0 < scope["row"]["test_rel_l2"] < 1e3


def test_the_functions_name_a_sweep_as_the_commands_do(tmp_path: Path) -> None:
    root = tmp_path / "results"
    sweep = write_sweep(tmp_path, {**TINY, "matrix": {"downstream.n_train": [8], "init": ["scratch"]}})
    plan = harness.expand(sweep, root)
    assert plan.folder == root / "tiny" and [job.stage for job in plan.jobs] == ["scratch"]
    # the current sweep, its name, its file, its folder: one sweep
    folders = {harness.api.folder_of(ref, root) for ref in (None, "tiny", str(sweep), plan.folder, plan)}
    assert folders == {root / "tiny"}
    assert harness.status(root=root).states == {plan.jobs[0].id: State.MISSING}
    dry = harness.submit(root=root, dry_run=True, echo=lambda line: None)
    assert dry.todo == plan.jobs and not dry.states
    assert cli(root, "status").splitlines()[0] == "sweep tiny: 1 jobs"  # the command prints the function's lines
    with pytest.raises(HarnessError, match="no current sweep under"):
        harness.status(root=tmp_path / "empty")
