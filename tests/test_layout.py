"""The package's shape: imports point one way (no cycle), expand stays light, modules stay small."""

from __future__ import annotations

import ast
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("harness", "analysis")


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
        graph[name] = {t for t in targets if t in files and t != name}
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
    assert len(graph) > 40 and "harness.sweep.expand" in graph["harness.cli"]
    assert _cycle(graph) is None, " -> ".join(_cycle(graph) or [])


def test_the_cycle_finder_finds_one() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_expand_imports_neither_torch_nor_pandas_nor_optuna() -> None:
    code = ("import sys, harness.sweep.expand, harness.sweep.plan; "
            "print(sorted(m for m in ('torch', 'pandas', 'optuna', 'pyarrow', 'submitit') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"


def test_a_local_submit_under_a_cpu_build_of_torch_finds_no_gpu_without_importing_torch() -> None:
    if not version("torch").endswith("+cpu"):
        pytest.skip(f"torch {version('torch')} is not a CPU build")
    code = ("import sys; from harness.backends.local import plan_slots, visible_gpus; gpus = visible_gpus(); "
            "print(gpus, 'torch' in sys.modules, plan_slots(workers=2, gpus=gpus)[0].gpu)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.split() == ["[]", "False", "None"]


def test_roles_are_split() -> None:
    # run_job reads no sweep file: neither the YAML schema nor expansion
    assert not {m for m in _modules("harness.run") if m.startswith("harness.sweep")}
    # optuna's run-time side is used by run_job and the CLI only
    users = {name for name, targets in import_graph().items() if "harness.tune" in targets}
    assert users == {"harness.run", "harness.cli"}
    # the backends call run_job and the store, nothing of the training below it
    for backend in ("local", "inline", "slurm"):
        deps = import_graph()[f"harness.backends.{backend}"]
        assert not {m for m in deps if m.startswith(("harness.train", "harness.models", "harness.pde"))}


def test_no_module_is_over_400_lines() -> None:
    long = {p.name: n for pkg in (*PACKAGES, "tests", "bench") for p in (ROOT / pkg).rglob("*.py")
            if (n := len(p.read_text().splitlines())) > 400}
    assert not long
