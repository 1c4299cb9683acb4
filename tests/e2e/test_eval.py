"""`harness eval` and a sweep's `eval:` block: a trained job scored on another grid (zero-shot super-resolution)
or source, recorded in its run folder and shown in the report; what cannot be scored is refused in one line."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from analysis.figures.evaluations import eval_figure, eval_rows
from analysis.load import load_runs
from harness import api
from harness.cli import main
from harness.job.run import run_job
from tests.helpers import assert_refused_at_expand

SUPER = {"name": "super", "base": {
    "resolution": 32, "init": "scratch", "model": {"width": 8, "modes": 4},
    "downstream": {"n_val": 8, "n_test": 8}, "train": {"steps": 8, "lr": 3.0e-3, "batch_size": 8}},
    "matrix": {"downstream.n_train": [8, 16]},
    "eval": [{"resolution": 64}, {"system": "helmholtz", "shift": "moderate"}]}


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """SUPER expanded and run (each job scored on its `eval:` sources after training), plus one job not run."""
    tmp = tmp_path_factory.mktemp("eval")
    (tmp / "super.yaml").write_text(yaml.safe_dump({**SUPER, "matrix": {"downstream.n_train": [8, 16, 24]}}))
    plan = api.expand(tmp / "super.yaml", tmp / "results")
    for job in plan.jobs[:2]:
        assert run_job(job, tmp / "results")["status"] == "ok"
    return tmp / "results", [job.id for job in plan.jobs]


def _cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def test_an_fno_trained_at_32_is_scored_at_64_after_training_and_the_report_shows_it(
        evaluated: tuple[Path, list[str]]) -> None:
    root, ids = evaluated
    rows = pd.read_parquet(root / "super" / "runs" / ids[0] / "eval.parquet")
    assert list(rows["source"]) == ["poisson:id", "helmholtz:moderate"]
    assert list(rows["resolution"]) == [64, 32] and set(rows["trained_resolution"]) == {32}
    summary = pd.read_parquet(root / "super" / "runs" / ids[0] / "summary.parquet").iloc[0]
    finite = rows["test_rel_l2"].between(1e-6, 1e3)
    assert finite.all() and (rows["test_rel_l2"] != summary["test_rel_l2"]).all(), rows
    report = api.report("super", root=root, n_boot=10)
    table = pd.read_csv(report.out_dir / "evaluations.csv")
    where = set(zip(table["source"], table["resolution"], strict=True))
    assert where == {("poisson:id", 64), ("helmholtz:moderate", 32)}
    assert sorted(table.loc[table["resolution"] == 64, "downstream.n_train"]) == [8, 16]
    assert "evaluations" in report.figures and report.figures["evaluations"].is_file()
    assert "## Scored on other sources and grids" in report.markdown.read_text()


def test_the_evaluations_follow_the_report_s_metric(evaluated: tuple[Path, list[str]], tmp_path: Path) -> None:
    root, ids = evaluated
    report = api.report("super", root=root, n_boot=10, metric="max_err", out=tmp_path / "max_err")
    table = pd.read_csv(report.out_dir / "evaluations.csv").set_index(["source", "resolution", "downstream.n_train"])
    assert "test_rel_l2" not in table
    recorded = pd.concat([pd.read_parquet(root / "super" / "runs" / i / "eval.parquet").assign(n=n)
                          for i, n in zip(ids[:2], (8, 16), strict=True)]).set_index(["source", "resolution", "n"])
    assert len(table) == len(recorded) == 4  # one run per source, grid and N: the mean is its value
    assert (table["test_max_err"] == recorded.loc[table.index, "test_max_err"].to_numpy()).all()
    assert (table["test_max_err"] != recorded.loc[table.index, "test_rel_l2"].to_numpy()).all()
    loaded = load_runs(root / "super", "max_err")
    figure = eval_figure(loaded.ok, rows=eval_rows(root / "super", loaded.ok)[0]).figure
    assert {ax.get_ylabel() for ax in figure.axes if ax.lines} == {"test max abs error"}


def test_harness_eval_scores_the_same_rows_and_its_own_source_gives_the_jobs_test_error(
        evaluated: tuple[Path, list[str]]) -> None:
    root, ids = evaluated
    folder = root / "super" / "runs" / ids[0]
    before = pd.read_parquet(folder / "eval.parquet")
    code, output = _cli("eval", ids[0], "--resolution", "64", "--root", str(root))
    assert code == 0 and output.startswith(f"{ids[0]} on poisson:id at 64x64: test_rel_l2 "), output
    after = pd.read_parquet(folder / "eval.parquet")
    assert len(after) == 2  # scored again: the row is replaced, not added
    assert after.set_index("source").loc["poisson:id", "test_rel_l2"] == \
        before.set_index("source").loc["poisson:id", "test_rel_l2"]
    assert _cli("eval", ids[0], "--root", str(root))[0] == 0  # its own system, shift and grid: its own test split
    own = pd.read_parquet(folder / "eval.parquet").set_index(["source", "resolution"]).loc[("poisson:id", 32)]
    summary = pd.read_parquet(folder / "summary.parquet").iloc[0]
    assert own["test_rel_l2"] == pytest.approx(summary["test_rel_l2"], rel=1e-12)


def test_eval_refusals_are_one_line_exit_2_and_write_nothing(evaluated: tuple[Path, list[str]],
                                                             tmp_path: Path) -> None:
    root, ids = evaluated
    api.dataset("heat", 4, tmp_path / "heat.h5", resolution=32, nt=4)
    cases = [
        (["nope-1"], r"no job 'nope-1' in sweep super"),
        ([ids[2]], rf"{ids[2]} ended missing, not ok: harness eval needs a trained job"),
        ([ids[1], "--data", "heat"], r"--data: 'heat' is no system .* \(steady\) can be evaluated on"),
        ([ids[1], "--data", "poisson:huge"], r"--data: unknown shift level 'huge' for poisson"),
        ([ids[1], "--resolution", "9"], r"--resolution: resolution must be an even integer >= 8, got 9"),
        ([ids[1], "--data", str(tmp_path / "heat.h5"), "--format", "pretraining-pdes"],
         r"--data: eval.data.format: pretraining-pdes holds trajectory data, this job needs steady data"),
    ]
    folder = root / "super" / "runs" / ids[1]
    before = (folder / "eval.parquet").read_bytes()
    for args, message in cases:
        code, output = _cli("eval", *args, "--root", str(root))
        lines = output.strip().splitlines()
        assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), output
        assert re.search(message, lines[0]), lines[0]
    assert (folder / "eval.parquet").read_bytes() == before
    assert not (root / "super" / "runs" / ids[2] / "eval.parquet").exists()


@pytest.mark.parametrize("model, resolution, message", [
    ({"arch": "deeponet"}, 64, r"eval\.0\.resolution \(line \d+\): sc-\w+ cannot be evaluated at 64x64: a DeepONet "
                              r"evaluates on its sensor grid only \(32x32\)"),
    ({"arch": "unet", "levels": 3}, 20, r"cannot be evaluated at 20x20: model\.levels=3 halves the grid 3 times"),
], ids=["deeponet-sensors", "unet-pooling"])
def test_a_family_that_cannot_run_at_the_eval_grid_is_refused_at_expand(tmp_path: Path, model: dict,
                                                                        resolution: int, message: str) -> None:
    spec = {**SUPER, "base": {**SUPER["base"], "model": model}, "eval": [{"resolution": resolution}]}
    (tmp_path / "super.yaml").write_text(yaml.safe_dump(spec))
    assert_refused_at_expand(tmp_path / "super.yaml", message)


def test_an_eval_block_leaves_the_job_ids_as_they_were(tmp_path: Path) -> None:
    (tmp_path / "with.yaml").write_text(yaml.safe_dump(SUPER))
    (tmp_path / "without.yaml").write_text(yaml.safe_dump({k: v for k, v in SUPER.items() if k != "eval"}))
    with_eval = api.expand(tmp_path / "with.yaml", tmp_path / "a").jobs
    without = api.expand(tmp_path / "without.yaml", tmp_path / "b").jobs
    assert [j.id for j in with_eval] == [j.id for j in without]
    assert all(j.evals is not None and len(j.evals) == 2 for j in with_eval) and all(j.evals is None for j in without)


def test_an_eval_source_failing_at_run_time_leaves_the_job_ok_with_an_error_row_the_report_counts(
        tmp_path: Path) -> None:
    # an `eval:` data file checked at expand and gone when the job runs: that source's row records the error, the
    # job keeps its test metrics, and the report leaves the row out of its table and figure and says why
    api.dataset("poisson", 80, tmp_path / "ood.h5", resolution=32)
    spec = {**SUPER, "matrix": {"downstream.n_train": [8]},
            "eval": [{"resolution": 64}, {"data": {"path": str(tmp_path / "ood.h5")}}]}
    (tmp_path / "super.yaml").write_text(yaml.safe_dump(spec))
    (job,) = api.expand(tmp_path / "super.yaml", tmp_path / "results").jobs
    (tmp_path / "ood.h5").unlink()
    summary = run_job(job, tmp_path / "results")
    assert summary["status"] == "ok" and 1e-6 < summary["test_rel_l2"] < 1e3, summary
    rows = pd.read_parquet(tmp_path / "results" / "super" / "runs" / job.id / "eval.parquet")
    assert list(rows["source"]) == ["poisson:id", "ood"] and list(rows["status"]) == ["ok", "failed"]
    assert rows["error"][0] == "" and 1e-6 < rows["test_rel_l2"][0] < 1e3
    assert "ood.h5" in rows["error"][1] and pd.isna(rows["test_rel_l2"][1]), rows["error"][1]
    report = api.report("super", root=tmp_path / "results", n_boot=10)
    table = pd.read_csv(report.out_dir / "evaluations.csv")
    assert list(zip(table["source"], table["resolution"], strict=True)) == [("poisson:id", 64)]
    assert "evaluations" in report.figures
    (line,) = [li for li in report.markdown.read_text().splitlines() if "scoring(s) on other sources failed" in li]
    assert line.startswith("1 scoring(s)") and "ood @ 32: " in line and "ood.h5" in line, line
