"""The package's shape: a package per role, no two modules of one name, imports point one way (no cycle), expand
reaches the other packages only through their torch-free rules, modules stay small."""

from __future__ import annotations

import ast
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("harness", "analysis")
# The one module outside the rules that expand imports: it checks a sweep's data files against their headers, which
# the format readers (harness.data.formats) read.
FILE_CHECKS = "harness.data.parts"
# The package exposes the front door lazily (its __getattr__ imports harness.api at first use, never on import), so a
# module that imports `harness` for its version does not import the front door.
LAZY = {"harness": {"harness.api"}}


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Module -> the package modules it imports anywhere in its source (function-level imports included)."""
    files = {_module_name(p): p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative import
                    base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + [base]).strip(".")
                targets |= {base} | {f"{base}.{alias.name}" for alias in node.names}
        graph[name] = {t for t in targets if t in files and t != name} - LAZY.get(name, set())
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of the graph, or None (depth-first search)."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def _modules(package: str) -> set[str]:
    """Every package module a package imports, however it is reached (its own ``__init__`` chain too)."""
    graph = import_graph()
    seen, todo = set(), [package]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        parts = name.split(".")
        todo += [".".join(parts[:i]) for i in range(1, len(parts)) if ".".join(parts[:i]) in graph]
        todo += graph.get(name, set())
    return seen


def test_the_import_graph_has_no_cycle() -> None:
    graph = import_graph()
    assert len(graph) > 40 and "harness.sweep.expand" in graph["harness.api"]
    assert _cycle(graph) is None, " -> ".join(_cycle(graph) or [])


def test_the_cycle_finder_finds_one() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_expand_imports_neither_torch_nor_pandas_nor_optuna() -> None:
    code = ("import sys, harness.sweep.expand, harness.sweep.plan; "
            "print(sorted(m for m in ('torch', 'pandas', 'optuna', 'pyarrow', 'submitit') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"


def rules_modules() -> set[str]:
    """Each harness package's torch-free rules: its ``__init__`` (``harness.models``, ``harness.tasks``, ...) and
    the modules of its own package that it imports (``harness.job.record``, ``harness.models.unet_size``)."""
    graph = import_graph()
    rules = {f"harness.{path.parent.name}" for path in (ROOT / "harness").glob("*/__init__.py")}
    todo = list(rules)
    while todo:
        name = todo.pop()
        package = "harness." + name.split(".")[1]
        for target in graph[name]:
            if target.startswith(package + ".") and target not in rules:
                rules.add(target)
                todo.append(target)
    return rules


def test_rules_modules_import_only_rules_modules() -> None:
    graph, rules = import_graph(), rules_modules()
    assert {"harness.pde", "harness.tasks", "harness.models", "harness.train", "harness.backends", "harness.job",
            "harness.job.record", "harness.job.train_settings", "harness.models.unet_size"} <= rules
    heavy = {name: sorted(graph[name] - rules - {"harness.errors"}) for name in sorted(rules)}
    assert not {name: targets for name, targets in heavy.items() if targets}


def test_expand_reaches_other_packages_only_through_their_rules() -> None:
    graph = import_graph()
    allowed = rules_modules() | {"harness.errors", FILE_CHECKS}
    sweep = {name for name in _modules("harness.sweep.expand") if name.startswith("harness.sweep.")}
    assert {"harness.sweep.schema", "harness.sweep.checks", "harness.sweep.spec"} <= sweep
    outside = {f"{name} -> {target}" for name in sweep for target in graph[name]
               if not target.startswith("harness.sweep.") and target not in allowed}
    assert not outside


def test_at_most_four_modules_at_the_top_of_harness() -> None:
    top = sorted(path.name for path in (ROOT / "harness").glob("*.py"))
    assert "cli.py" in top and len(top) <= 4, top


def test_no_two_modules_or_packages_share_a_name() -> None:
    where: dict[str, list[str]] = {}
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            name = path.parent.name if path.name == "__init__.py" else path.stem
            where.setdefault(name, []).append(str(path.relative_to(ROOT)))
    assert len(where) > 80
    assert not {name: paths for name, paths in where.items() if len(paths) > 1}


def test_a_local_submit_under_a_cpu_build_of_torch_finds_no_gpu_without_importing_torch() -> None:
    if not version("torch").endswith("+cpu"):
        pytest.skip(f"torch {version('torch')} is not a CPU build")
    code = ("import sys; from harness.backends.local import plan_slots, visible_gpus; gpus = visible_gpus(); "
            "print(gpus, 'torch' in sys.modules, plan_slots(workers=2, gpus=gpus)[0].gpu)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.split() == ["[]", "False", "None"]


def test_roles_are_split() -> None:
    # run_job reads no sweep file: neither the YAML schema nor expansion (nested dicts' dotted keys aside)
    assert not {m for m in _modules("harness.job.run") if m.startswith("harness.sweep.")} - {"harness.sweep.dotted"}
    # optuna's run-time side is used by run_job and the CLI only
    users = {name for name, targets in import_graph().items() if "harness.job.trial" in targets}
    assert users == {"harness.job.run", "harness.api"}
    # the backends call run_job and the store, nothing of the training below it
    for backend in ("local", "inline", "slurm"):
        deps = import_graph()[f"harness.backends.{backend}"]
        assert not {m for m in deps if m.startswith(("harness.train", "harness.models", "harness.pde"))}


def test_training_reads_a_job_s_rules_and_never_runs_a_job() -> None:
    # imports point sweep -> job -> train: harness.train takes a job's config (the torch-free rules of harness.job),
    # never its run machinery (run_job, the process settings, the device calibration that runs tiny jobs)
    graph, rules = import_graph(), rules_modules()
    upward = {f"{name} -> {target}" for name, targets in graph.items() if name.split(".")[:2] == ["harness", "train"]
              for target in targets if target.split(".")[:2] == ["harness", "job"] and target not in rules}
    assert not upward


def test_no_module_is_over_400_lines() -> None:
    long = {p.name: n for pkg in (*PACKAGES, "tests", "bench") for p in (ROOT / pkg).rglob("*.py")
            if (n := len(p.read_text().splitlines())) > 400}
    assert not long


def test_the_cli_parses_and_prints_calling_the_front_door() -> None:
    # what a command does is harness.api's (a notebook calls the same); the CLI names the backends and stages it offers
    allowed = rules_modules() | {"harness", "harness.api", "harness.errors", "harness.backends.interface"}
    assert import_graph()["harness.cli"] <= allowed, import_graph()["harness.cli"] - allowed


def test_importing_harness_loads_nothing_heavy() -> None:
    heavy = "('torch', 'pandas', 'numpy', 'yaml', 'click', 'harness.api')"
    code = f"import sys, harness; harness.__version__; print(sorted(m for m in {heavy} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"


def test_jobs_are_read_as_dicts_only_where_plan_json_is_read_or_written() -> None:
    # a job is a harness.job.Job everywhere else: `job.config.train.lr`, never `job["config"]["train"]["lr"]`
    subscripts = {str(p.relative_to(ROOT)) for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")
                  if 'job["' in p.read_text() or "job['" in p.read_text()}
    assert not subscripts
