"""Generated inputs (issue 28): every sweep file and every argument list either succeeds (exit status 0) or is
one line, ``error: ...``, with exit status 2 -- never a traceback, never exit status 1 for a user's mistake.

Sweep files are drawn from the schema (every key of ``harness.sweep.schema.LEAVES`` and the data keys, with
values of the right kind or of any other: types, ranges, nesting, unicode, huge and non-finite numbers) in
every block (base, matrix with its range helpers, zip, include, exclude, tune, track, slurm, stream), or as
raw text (deep nesting, cut-off files). Argument lists are drawn for every command `harness --help` lists,
from each parameter's own type (read from the click command, so a new option is fuzzed too) and values that
name files of a prepared results folder. Commands that run jobs run in states where nothing needs to run:
the folder holds one sweep whose one job ended ok, restored before each example.

Derandomised, so every run tries the same inputs. Profiles (``HYPOTHESIS_PROFILE``): ``ci`` (the default,
under two minutes on the 2-core CI machine) and ``long`` (twenty times the examples, by hand).
"""

from __future__ import annotations

import math
import os
import shutil
import traceback
from pathlib import Path
from typing import Any

import click
import numpy as np
import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.cli import main
from harness.data.formats import write_arrays, write_pretraining_pdes
from harness.job import STREAM_MODES
from harness.sweep.schema import CHOICES, DATA_KEYS, LEAVES, SHIFT_KEYS, SHIFT_NAMES
from harness.sweep.spec import TOP_KEYS
from harness.sweep.tune import KINDS, PRUNERS, SAMPLERS
from harness.track import TRACKERS
from tests.helpers import harness

COMMON = {"derandomize": True, "deadline": None, "database": None, "print_blob": True,
          "suppress_health_check": list(HealthCheck)}
settings.register_profile("ci", max_examples=100, **COMMON)
settings.register_profile("long", max_examples=2000, **COMMON)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
# Examples per test, in hundredths of the profile's: sweep files 1.5x; per command, the cheap ones about a
# third, those that fit a report or draw a figure (seconds each) a few.
SHARES = {"sweeps": 150, "report": 3, "show": 6, "expand": 25}
DEFAULT_SHARE = 35


def examples(name: str) -> int:
    return max(1, settings.default.max_examples * SHARES.get(name, DEFAULT_SHARE) // 100)

R = 16

# A valid tiny sweep: the start of most generated sweep files (so that values deep in the checks are reached).
SMALL = {"resolution": R, "init": "scratch", "model": {"width": 4, "modes": 2},
         "pretrain": {"n_train": 8, "n_val": 4, "n_test": 4, "train": {"epochs": 1, "batch_size": 4}},
         "downstream": {"n_train": 8, "n_val": 4, "n_test": 4}, "train": {"epochs": 1, "batch_size": 4}}
ONE = {"name": "one", "base": {**SMALL, "model": {"width": 6, "modes": 4}, "train": {"epochs": 2, "batch_size": 8}}}


# -- the prepared folder ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(a prepared folder, the folder the examples run in): results/ with sweep `one` whose one job ended ok, its
    sweep file, data files, a bad sweep file, a plain file, a symbolic link loop."""
    base = tmp_path_factory.mktemp("scene")
    (base / "one.yaml").write_text(yaml.safe_dump(ONE))
    harness(base / "results", "expand", str(base / "one.yaml"))
    harness(base / "results", "submit", "--backend", "inline")
    rng = np.random.default_rng(0)
    write_arrays(base / "good.h5", rng.standard_normal((40, 1, R, R)), rng.standard_normal((40, 1, R, R)))
    write_arrays(base / "good.npz", rng.standard_normal((40, 1, R, R)), rng.standard_normal((40, 2, R, R)))
    write_pretraining_pdes(base / "traj.h5", rng.standard_normal((40, 4, R, R)).astype("f4"),
                           rng.uniform(0.1, 1, (40, 5)), np.linspace(0, 1, 4))
    (base / "bad.yaml").write_text("name: [unclosed\n")
    (base / "notes.txt").write_text("not data")
    (base / "loop").symlink_to(base / "loop")
    (base / "folder").mkdir()
    return base, tmp_path_factory.mktemp("work") / "scene"


def restore(scene: tuple[Path, Path]) -> Path:
    """The prepared folder copied afresh to the work folder (the previous example may have changed it)."""
    base, work = scene
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(base, work, symlinks=True)
    return work


def job_id(work: Path) -> str:
    return next((work / "results" / "one" / "runs").iterdir()).name


def answered(args: list[str]) -> None:
    """`harness ARGS` in this process exits 0, or 2 with one line ``error: ...``; an exception is a failure
    with its traceback."""
    result = CliRunner().invoke(main, args)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        trace = "".join(traceback.format_exception(result.exception))
        pytest.fail(f"harness {args} raised:\n{trace}\noutput:\n{result.output}")
    lines = result.output.strip().splitlines()
    if result.exit_code != 0:
        assert result.exit_code == 2, (args, result.exit_code, result.output)
        assert len(lines) == 1 and lines[0].startswith("error: "), (args, result.output)


# -- values ---------------------------------------------------------------------------------------------------------

TEXT = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=12)
NUMBERS = (st.integers(-2**70, 2**70) | st.sampled_from([0, -1, 1, 2**31, 2**63, 10**30]) | st.floats()
           | st.sampled_from([1e308, -1e308, 5e-324, -0.0, math.inf, -math.inf, math.nan]))
SCALARS = st.none() | st.booleans() | NUMBERS | TEXT
JUNK = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
                    max_leaves=6)
KEYS = sorted({*LEAVES, *DATA_KEYS})


def mostly(usual: st.SearchStrategy, other: st.SearchStrategy, odds: int = 6) -> st.SearchStrategy:
    """``usual`` ``odds`` times as often as ``other``: most of a drawn file is valid, so that the checks deep in
    expand are reached, and the rest is anything."""
    return st.sampled_from([True] * odds + [False]).flatmap(lambda take: usual if take else other)
DATA_FILES = ["good.h5", "good.npz", "traj.h5", "notes.txt", "loop", "folder", "missing.h5", "../escape.h5", ""]


def data_specs() -> st.SearchStrategy:
    files = st.sampled_from(DATA_FILES)
    spec = st.fixed_dictionaries(
        {"path": files | st.dictionaries(st.sampled_from(["train", "val", "test", "x"]), files, max_size=3),
         "format": st.sampled_from(["arrays", "tl-scaling", "pretraining-pdes", "pdebench-darcy", "x"])},
        optional={"fractions": st.dictionaries(st.sampled_from(["val", "test", "x"]), NUMBERS, max_size=2),
                  "normalise": mostly(st.sampled_from(["instance", "channel"]), JUNK),
                  "groups": st.dictionaries(st.sampled_from(["train", "val", "test"]), TEXT, max_size=2),
                  "fingerprint": TEXT | JUNK, "system": st.sampled_from(["poisson", "x"])})
    return st.none() | spec


def valid(key: str) -> st.SearchStrategy:
    """Values of the kind key ``key`` takes (sizes kept small: a valid sweep expands in milliseconds)."""
    default = LEAVES.get(key)
    if key in DATA_KEYS:
        return data_specs()
    if key in CHOICES:
        return st.sampled_from(CHOICES[key])
    if key in SHIFT_KEYS:
        return st.sampled_from(SHIFT_NAMES) | st.lists(st.floats(-3, 3), min_size=2, max_size=2)
    if key == "resolution":
        return st.sampled_from([8, 16, 32])
    if isinstance(default, bool):
        return st.booleans()
    if isinstance(default, int) or key == "data_seed":
        return st.integers(-1, 8) | st.sampled_from([16, 64, 10**9])
    if isinstance(default, float):
        return st.floats(0, 2) | st.sampled_from([1e-3, 0.5, 1e6])
    return TEXT


def value_for(key: Any) -> st.SearchStrategy:
    """Mostly a value of the key's kind, sometimes anything."""
    return mostly(valid(key), JUNK) if isinstance(key, str) and key in KEYS else JUNK


def keys() -> st.SearchStrategy:
    groups = sorted({k.split(".")[0] for k in KEYS})
    return mostly(st.sampled_from(KEYS), st.sampled_from(groups) | TEXT | st.integers(-2, 2))


@st.composite
def axis(draw: st.DrawFn, key: Any) -> Any:
    """An axis of ``matrix`` or ``zip``: a list of values, a range helper, a single value or anything."""
    return draw(st.lists(value_for(key), min_size=0, max_size=3)
                | st.dictionaries(st.sampled_from(["pow2", "range", "x"]),
                                  st.lists(st.integers(-3, 6) | JUNK, min_size=1, max_size=4), min_size=1, max_size=2)
                | value_for(key))


@st.composite
def assignments(draw: st.DrawFn, axes: list[Any]) -> list[dict[Any, Any]]:
    """Entries of include / exclude: partial points over the axes (or any key)."""
    pool = st.sampled_from(axes) if axes else keys()
    return draw(st.lists(st.dictionaries(pool | keys(), st.just(None), max_size=3).flatmap(
        lambda d: st.fixed_dictionaries({k: value_for(k) for k in d})), max_size=3))


def tune_blocks() -> st.SearchStrategy:
    tuned = mostly(st.sampled_from(["train.lr", "train.weight_decay", "train.batch_size"]),
                   st.sampled_from(["lr", "model.width"]))
    bounds = mostly(st.lists(st.sampled_from([1e-4, 1e-2, 4, 8]), min_size=2, max_size=3), st.lists(NUMBERS) | JUNK)
    space = st.dictionaries(tuned, st.dictionaries(mostly(st.sampled_from(KINDS), TEXT), bounds, min_size=1,
                                                   max_size=1), min_size=1, max_size=2)
    per_stage = st.dictionaries(st.sampled_from(["finetune", "scratch"]), space, min_size=1, max_size=2)
    return st.fixed_dictionaries({"params": mostly(space | per_stage, JUNK)}, optional={
        "n_trials": mostly(st.integers(1, 4), st.sampled_from([0, -1, 10**9]) | JUNK),
        "sampler": mostly(st.sampled_from(SAMPLERS), JUNK), "pruner": mostly(st.sampled_from(PRUNERS), JUNK),
        "metric": mostly(st.just("val_rel_l2"), st.just("test_rel_l2") | JUNK),
        "stages": mostly(st.lists(st.sampled_from(["finetune", "scratch"]), min_size=1), JUNK),
        "seed": NUMBERS, "storage": mostly(st.none(), TEXT | JUNK)}) | JUNK


def track_blocks() -> st.SearchStrategy:
    names = mostly(st.sampled_from(sorted(TRACKERS)), TEXT)
    options = st.dictionaries(st.sampled_from(["mode", "project", "x"]),
                              mostly(st.sampled_from(["offline", "online"]), JUNK), max_size=2)
    return names | st.lists(names, max_size=3) | st.dictionaries(names, options | st.none(), max_size=3) | JUNK


def slurm_blocks() -> st.SearchStrategy:
    counts = mostly(st.integers(1, 4), st.integers(-1, 0) | JUNK)
    return mostly(st.fixed_dictionaries({}, optional={
        "partition": mostly(TEXT, JUNK), "time_min": counts, "gpus_per_node": counts, "cpus_per_task": counts,
        "mem_gb": mostly(st.floats(0.5, 64), NUMBERS | JUNK), "setup": mostly(st.lists(TEXT), JUNK),
        "array_parallelism": counts, "jobs_per_gpu": counts, "constraint": TEXT}), JUNK)


@st.composite
def sweep_dicts(draw: st.DrawFn) -> dict[Any, Any]:
    """A sweep file's mapping: a valid tiny base, then assignments, axes and blocks of every kind."""
    base: dict[Any, Any] = yaml.safe_load(yaml.safe_dump(SMALL)) if draw(st.booleans() | st.just(True)) else {}
    for key in draw(st.lists(keys(), max_size=4)):
        node, parts = base, str(key).split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {}) if isinstance(node.get(part, {}), dict) else {}
        node[parts[-1]] = draw(value_for(key))
    if draw(st.booleans()):
        base["stream"] = draw(st.fixed_dictionaries({}, optional={
            "mode": mostly(st.sampled_from(STREAM_MODES), JUNK),
            "budget_gb": mostly(st.floats(0, 64), NUMBERS | JUNK)}))
    sweep: dict[Any, Any] = {"name": draw(mostly(st.sampled_from(["fz", "fz-1.b"]), TEXT | JUNK)), "base": base}
    matrix_keys = draw(st.lists(keys(), max_size=3, unique_by=str))
    sweep["matrix"] = {k: draw(axis(k)) for k in matrix_keys}
    blocks = {
        "zip": mostly(st.lists(st.dictionaries(keys(), st.integers(1, 3), max_size=2).flatmap(
            lambda d: st.fixed_dictionaries({k: st.lists(value_for(k), min_size=n, max_size=n) for k, n in d.items()})),
            max_size=2), JUNK),
        "exclude": mostly(assignments(matrix_keys), JUNK), "include": mostly(assignments(matrix_keys), JUNK),
        "tune": tune_blocks(), "track": track_blocks(), "slurm": slurm_blocks(), "description": TEXT | JUNK,
    }
    for block in draw(st.lists(st.sampled_from(sorted(blocks)), max_size=3, unique=True)):
        sweep[block] = draw(blocks[block])
    if draw(st.integers(0, 9)) == 0:
        sweep[draw(TEXT | st.sampled_from(TOP_KEYS))] = draw(JUNK)
    return sweep


@st.composite
def sweep_texts(draw: st.DrawFn) -> str:
    """A sweep file: a drawn mapping as YAML (sometimes cut short), or raw text."""
    kind = draw(st.integers(0, 9))
    if kind <= 6:
        text = yaml.safe_dump(draw(sweep_dicts()), allow_unicode=True, sort_keys=False)
        return text[:draw(st.integers(0, len(text)))] if kind == 6 else text
    if kind == 7:
        depth = draw(st.integers(1, 4000))
        open_, close = draw(st.sampled_from([("[", "]"), ("{a: ", "}"), ("- ", "")]))
        return f"name: deep\nbase:\n  x: {open_ * depth}1{close * depth}\n"
    return draw(st.text(max_size=200))


def test_every_sweep_file_is_expanded_or_one_line(scene: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    work = restore(scene)
    monkeypatch.chdir(work)
    count = 0

    @settings(max_examples=examples("sweeps"))
    @given(text=sweep_texts())
    def check(text: str) -> None:
        nonlocal count
        count += 1
        shutil.rmtree(work / "fz-results", ignore_errors=True)
        (work / "sweep.yaml").write_text(text, encoding="utf-8")
        answered(["expand", "sweep.yaml", "--root", "fz-results"])
        if (work / "fz-results" / ".current").exists():  # expanded: its plan reads back
            answered(["status", "--root", "fz-results"])
            answered(["submit", "--dry-run", "--root", "fz-results"])

    check()
    print(f"sweep files: {count} examples")


# -- argument lists -------------------------------------------------------------------------------------------------


def paths(work: Path, usual: list[str]) -> st.SearchStrategy:
    """A path: mostly one of ``usual`` (names under the work folder), else any of the prepared folder's files and
    folders, names that leave it, or any text."""
    names = ["results", "results/one", "results/one/plan.json", "results/.current", "one.yaml", "bad.yaml",
             "notes.txt", "loop", "loop/x.npz", "folder", "good.h5", "missing", "missing/x.npz", "x.txt", "ü.npz"]
    other = st.sampled_from([str(work / n) for n in names] + ["..", "/", ""]) | TEXT
    return mostly(st.sampled_from([str(work / n) for n in usual]), other, odds=3)


def numbers(valid: list[Any], invalid: list[Any]) -> st.SearchStrategy:
    """Mostly one of ``valid``, else one of ``invalid`` or any text, as a command line holds it."""
    return mostly(st.sampled_from(valid), st.sampled_from(invalid) | TEXT).map(str)


# Values per parameter name where its type's values could start real work (a big dataset, a long bootstrap, a
# long wait) or where a few values are the valid ones: small valid values, invalid ones and any text.
BOUNDED = {
    "n": numbers([1, 2], [0, -1, 10**12, 2**62]), "resolution": numbers([8, 16], [0, 7, -2, 10**9, 2**62]),
    "nt": numbers([2, 3], [0, 1, -1, 10**9]), "n_boot": numbers([0, 2], [-1, -10**9]),
    "samples": numbers([1, 2, 10**9], [0, -1]), "refreshes": numbers([1, 2], [0, -1]),
    "interval": numbers([0, 0.01], [-1, "nan", "inf", "-inf", "1e309"]),
    "seed": numbers([0, 1, 2**40], [-1, 2**64, -2**63]),
}
OUT = {"data": ["x.npz", "folder/x.h5", "x.hdf5", "good.h5"], "show": ["x.png", "folder/x.png"],
       "report": ["report-out", "folder", "results/one/report"]}


def param_values(param: click.Parameter, command: str, work: Path) -> st.SearchStrategy:
    """Text values for one parameter of ``command``, from its name and its click type."""
    kind = param.type
    if param.name in BOUNDED:
        return BOUNDED[param.name]
    if param.name in ("sweep", "sweep_file"):
        usual = ["one.yaml", "one.yaml", "bad.yaml"] if param.name == "sweep_file" else ["one.yaml"]
        names = ["one", "one", "../one", "..", ".", "", "nosuch", "a/b", "results"]
        return mostly(st.sampled_from(names), paths(work, usual), odds=2)
    if param.name == "job_id":
        return mostly(st.just(job_id(work)), st.sampled_from(["../x", "nosuch", "", "sc-0000000000"]) | TEXT)
    if param.name == "system":
        return mostly(st.sampled_from(["poisson", "mixed", "heat", "advection"]), st.sampled_from(["x", ""]) | TEXT)
    if param.name == "root":
        return paths(work, ["results", "results", "new-results"])
    if param.name == "out":
        return paths(work, OUT.get(command, ["x"]))
    if isinstance(kind, click.Choice):
        return mostly(st.sampled_from(list(kind.choices)), TEXT)
    if isinstance(kind, click.types.IntParamType):
        return numbers([1, 2, 4], [0, -1, 10**12, 2**63, -2**63])
    if kind.name in ("float", "number"):  # click's FLOAT, harness.cli.Finite
        return numbers([0.5, 1, 4], [0, -1, "nan", "inf", "1e309"])
    return mostly(st.sampled_from(["gpu", "a"]), TEXT)


@st.composite
def argument_lists(draw: st.DrawFn, name: str, work: Path) -> list[str]:
    """`harness NAME ...`: its required parameters and some of the others, in any order, each with a drawn
    value; now and then an unknown option or stray text."""
    command = main.commands[name]
    args = [name]
    for param in draw(st.permutations(command.params)):
        if not param.required and draw(st.sampled_from([True, True, True, False])):
            continue
        if isinstance(param, click.Argument):
            args.append(draw(param_values(param, name, work)))
        elif getattr(param, "is_flag", False):
            args.append(param.opts[0])
        else:
            for _ in range(draw(st.sampled_from([1, 2])) if param.multiple else 1):
                args += [param.opts[0], draw(param_values(param, name, work))]
    if "--watch" in args and "--refreshes" not in args:
        args += ["--refreshes", "1"]  # a watch that stops: the fuzz waits for nothing
    if draw(st.sampled_from([False] * 19 + [True])):
        args.insert(draw(st.integers(1, len(args))), draw(st.sampled_from(["--nosuch", "--help", "-x"]) | TEXT))
    return args


@pytest.mark.parametrize("name", sorted(main.commands))
def test_every_argument_list_is_answered_or_one_line(scene: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch,
                                                     name: str) -> None:
    work = restore(scene)
    monkeypatch.chdir(work)
    count = 0

    @settings(max_examples=examples(name))
    @given(data=st.data())
    def check(data: st.DataObject) -> None:
        nonlocal count
        count += 1
        os.chdir(restore(scene))
        answered(data.draw(argument_lists(name, work)))

    check()
    print(f"harness {name}: {count} examples")
