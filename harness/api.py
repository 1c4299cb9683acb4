"""The Python front door: what the `harness` commands do, as functions a notebook or a script calls.

    import harness
    plan = harness.expand("sweeps/smoke.yaml", root="results")   # the jobs, written as the sweep's plan.json
    run = harness.submit(plan, backend="local", workers=2)       # runs them; what ran and how it ended
    harness.status(plan).states                                   # job id -> State
    harness.report(plan).html                                     # fits, figures, report.html
    frame = harness.results(plan)                                 # one row per job (pandas)
    harness.export("fno-4c1f...", "exported/fno")                 # a trained job as a self-contained folder
    model = harness.load_model("exported/fno")                    # ... back as a module on physical units

A sweep is named as the commands name it, or by its folder: a ``Plan``, a sweep file (``.yaml``), a sweep name
under ``root`` (a ``str``), a sweep folder (a ``Path``), or None for the current sweep (the last one expanded under
``root``). Errors a user can cause raise ``harness.errors.HarnessError`` with the one line the CLI prints. Heavy
packages load only when a function needs them, so ``import harness`` stays light.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.store import DEFAULT_ROOT, State
from harness.train import DEFAULT_METRIC

if TYPE_CHECKING:
    import pandas as pd

    from analysis.report import ReportResult
    from analysis.suggest_plan import Suggestion
    from harness.job import Job
    from harness.portable.physical import PhysicalModel
    from harness.store.folders import Plan

Echo = Callable[[str], object]


def folder_of(sweep: Plan | str | Path | None, root: str | Path = DEFAULT_ROOT) -> Path:
    """The folder of a sweep given as a ``Plan``, a sweep file, a name under ``root``, a folder (a ``Path``), or
    None (the current one)."""
    from harness.store.folders import Plan, current_sweep, sweep_dir

    if isinstance(sweep, Plan):
        return sweep.folder
    if sweep is None:
        return current_sweep(Path(root))
    if str(sweep).endswith((".yaml", ".yml")):
        from harness.sweep.spec import load_sweep  # for the name: a bad file is refused here too

        return sweep_dir(Path(root), load_sweep(sweep).name)
    return sweep if isinstance(sweep, Path) else sweep_dir(Path(root), sweep)


def expand(sweep: str | Path | Mapping[str, Any], root: str | Path = DEFAULT_ROOT, *, force: bool = False,
           warn: Echo | None = None) -> Plan:
    """Expand a sweep file (or the mapping a sweep file holds) into jobs, every point checked first; write the
    plan under ``root``/<name>/ and make it the current sweep. ``warn`` gets each line of a sweep that is valid but
    probably not what its author meant (``harness.sweep.lint``). Nothing is written when the sweep is refused."""
    from harness.pde.cache import data_cache
    from harness.store.folders import Plan, write_plan
    from harness.sweep.expand import expand as expand_jobs
    from harness.sweep.lint import sweep_warnings
    from harness.sweep.spec import load_sweep, parse_sweep
    from harness.track.settings import save_settings

    if isinstance(sweep, Mapping):
        loaded, source = parse_sweep(dict(sweep), {}, "<mapping>"), "<mapping>"
    else:
        loaded, source = load_sweep(sweep), str(sweep)
    jobs = expand_jobs(loaded, force=force, cache_dir=str(data_cache(root)))
    for line in sweep_warnings(loaded) if warn else ():
        warn(line)
    folder = write_plan(Path(root), loaded.name, loaded.raw, source, jobs)
    save_settings(folder, loaded.track)
    return Plan(loaded.name, source, loaded.raw, jobs, folder)


def describe(plan: Plan) -> str:
    """Counts per stage and per axis, a few sample jobs, and where the plan is (``harness expand``'s summary)."""
    from harness.sweep.plan import describe as describe_plan
    from harness.sweep.spec import parse_sweep

    return describe_plan(parse_sweep(plan.spec, {}, plan.source), plan.jobs, plan.folder)


def estimate(plan: Plan, *, device: str | None = None) -> str:
    """The sweep's cost per stage (jobs, samples trained on, FLOPs, hours), calibrated on ``device``."""
    from harness.sweep.estimate import describe_estimate

    return describe_estimate(plan.jobs, device=device)


@dataclass(frozen=True)
class Submission:
    """What one submit did: the jobs it ran or queued (``todo``, plan order) and those it recorded blocked, the
    state of each when it returned (a queued job: pending) and the backend's account of it."""

    folder: Path
    todo: list[Job]
    blocked: list[Job]
    states: dict[str, State] = field(default_factory=dict)
    message: str = ""

    @property
    def bad(self) -> str:
        """The line naming the jobs that ended failed, diverged or blocked ("" when none did)."""
        from harness.store.status import bad_line

        return bad_line(self.states)


def submit(sweep: Plan | str | Path | None = None, *, root: str | Path = DEFAULT_ROOT, backend: str = "local",
           workers: int | None = None, jobs_per_gpu: int | None = None, retry_failed: bool = False,
           only: str | None = None, reexpand: bool = False, track: Iterable[str] = (), dry_run: bool = False,
           verbose: bool = False, slurm: Mapping[str, Any] | None = None, echo: Echo = print) -> Submission:
    """Run (local, inline) or queue (slurm) the jobs of ``sweep`` that have no ok result yet; returns when they have
    ended (queued, on Slurm). A sweep file must still expand to its plan, else ``reexpand`` writes the new plan.

    ``workers``, ``jobs_per_gpu`` and ``verbose`` are the local backends', ``slurm`` overrides the sweep's `slurm:`
    settings; ``retry_failed`` reruns diverged jobs too, ``only`` runs one stage; ``track`` adds trackers for this
    and later submits. ``echo`` gets each line of progress (what runs, what the backend says). One submit per sweep
    at a time (``harness.store.lock``); ``dry_run`` only lists what would run."""
    from harness.store.lock import submit_lock

    if isinstance(sweep, str | Path) and str(sweep).endswith((".yaml", ".yml")):
        from harness.sweep.replan import sweep_folder_of_file

        folder, note = sweep_folder_of_file(Path(root), sweep, reexpand=reexpand)
        if note:
            echo(note)
    else:
        folder = folder_of(sweep, root)
    options = {"workers": workers, "jobs_per_gpu": jobs_per_gpu, "verbose": verbose, **(slurm or {})}
    if track and not dry_run:
        from harness.track.settings import load_settings, save_settings

        save_settings(folder, {**{name: {} for name in track}, **load_settings(folder)})
    if dry_run:
        return _submit(folder, backend, options, retry_failed, only, echo, dry_run=True)
    with submit_lock(folder):
        return _submit(folder, backend, options, retry_failed, only, echo, dry_run=False)


def _submit(folder: Path, backend: str, options: dict[str, Any], retry_failed: bool, only: str | None, echo: Echo,
            *, dry_run: bool) -> Submission:
    """Pick the jobs to run with the backend's view of the states (``harness.backends.select``), then run them."""
    from harness.backends.interface import get_backend
    from harness.backends.select import select
    from harness.store.folders import read_plan, record_blocked
    from harness.store.status import incomplete_lines
    from harness.track.worker import clear_warnings

    clear_warnings(folder)
    plan = read_plan(folder)
    assert plan is not None  # read_plan raises when there is none
    runner = get_backend(backend, spec=plan.spec, **options)
    states = runner.status(folder, plan.jobs)
    for line in incomplete_lines(folder, plan.jobs, states):
        echo(line)
    chosen = select(plan.jobs, states, retry_failed=retry_failed, only=only)
    counts = Counter(str(j.stage) for j in chosen.todo)
    blocked = [job for job, _ in chosen.blocked]
    echo(f"{folder.name}: {len(chosen.todo)} of {len(plan.jobs)} jobs to run "
         f"({', '.join(f'{s} {n}' for s, n in counts.items()) or 'nothing to do'})"
         + (f"; {len(blocked)} blocked (their pretraining cannot run)" if blocked else ""))
    if dry_run:
        for job in chosen.todo:
            echo(f"  {job.id}  {job.stage:9s} depends on {job.depends_on or '-'}")
        return Submission(folder, chosen.todo, blocked)
    for job, dep_state in chosen.blocked:
        record_blocked(folder, job, dep_state)
    message = runner.submit(chosen.todo, plan.jobs, folder) if chosen.todo else ""
    if message:
        echo(message)
    return Submission(folder, chosen.todo, blocked, runner.status(folder, [*chosen.todo, *blocked]), message)


@dataclass(frozen=True)
class SweepStatus:
    """A sweep's jobs and the state of each, as the backend that knows most about it says (Slurm's queue merged with
    the run folders once it queued any; the run folders otherwise)."""

    folder: Path
    jobs: list[Job]
    states: dict[str, State]

    @property
    def counts(self) -> Counter[tuple[str, State]]:
        """(stage, state) -> jobs."""
        return Counter((str(job.stage), self.states.get(job.id, State.MISSING)) for job in self.jobs)

    @property
    def bad(self) -> str:
        """The line naming the jobs that ended failed, diverged or blocked ("" when none did)."""
        from harness.store.status import bad_line

        return bad_line(self.states)

    def lines(self) -> list[str]:
        """What `harness status` prints: counts per stage and state with the failures, incomplete runs, why queued
        jobs wait (Slurm), stale runs."""
        from harness.backends.slurm_state import read_submitted
        from harness.store.stale import stale_note
        from harness.store.status import incomplete_lines, status_table

        out = [status_table(self.folder, self.jobs, self.states),
               *incomplete_lines(self.folder, self.jobs, self.states)]
        if read_submitted(self.folder):  # queued on Slurm: why the pending jobs wait
            from harness.backends.slurm_checks import pending_reasons

            out += pending_reasons(self.folder, self.states)
        return out + [note] if (note := stale_note(self.folder, self.jobs)) else out


def status(sweep: Plan | str | Path | None = None, *, root: str | Path = DEFAULT_ROOT) -> SweepStatus:
    """The state of every job of ``sweep`` now."""
    from harness.backends.interface import backend_of
    from harness.store.folders import load_plan

    folder = folder_of(sweep, root)
    jobs = load_plan(folder)
    return SweepStatus(folder, jobs, backend_of(folder).status(folder, jobs))


def watch(sweep: Plan | str | Path | None = None, *, root: str | Path = DEFAULT_ROOT, interval: float = 5.0,
          refreshes: int | None = None) -> None:
    """Redraw the status with the running jobs' step, epoch and ETA every ``interval`` seconds (``refreshes``
    times; None: until Ctrl-C)."""
    from harness.backends.interface import backend_of
    from harness.store import watch as live
    from harness.store.folders import load_plan

    folder = folder_of(sweep, root)
    jobs, backend = load_plan(folder), backend_of(folder)
    live.watch(lambda: live.view(folder, jobs, backend.status(folder, jobs)), interval, refreshes)


def report(sweep: Plan | str | Path | None = None, *, root: str | Path = DEFAULT_ROOT, out: str | Path | None = None,
           n_boot: int = 1000, seed: int = 0, force: bool = False, metric: str = DEFAULT_METRIC) -> ReportResult:
    """Fit the power laws and write the figures, tables, report.html and report.md (into ``out``, default
    <sweep>/report: a new folder, one a report was written to, or with ``force`` any folder); failed, diverged and
    non-finite rows are listed as problems and left out of the fits. ``metric``: the test error the fits, claims
    and figures read (a name of ``harness.train.METRICS``: its column ``test_<metric>``)."""
    from analysis.report import build_report
    from harness.store.outputs import report_folder

    folder = folder_of(sweep, root)
    return build_report(folder, report_folder(Path(out) if out is not None else None, force), n_boot=n_boot,
                        seed=seed, metric=metric)


def suggest(sweep: Plan | str | Path | None = None, *, target: str, budget: float, root: str | Path = DEFAULT_ROOT,
            k: int | None = None) -> Suggestion:
    """The extra runs that would narrow ``target``'s interval (a claim id of claims.csv: ``b.<stage>.<curve>``,
    ``multfit.<curve>.n<N>``, or the compute-optimal size ``popt.<stage>.<group>.c1e<k>``, also ``popt_amortised.``
    and ``popt_full.``) most per device-hour within ``budget`` device-hours (at most ``k`` runs), written as
    an ``include:`` block to <sweep>/suggest/<target>.yaml (``analysis.suggest``: how the shrinkage is estimated)."""
    from analysis.suggest_plan import suggest_runs

    return suggest_runs(folder_of(sweep, root), target, budget, k)


def results(sweep: Plan | str | Path | None = None, *, root: str | Path = DEFAULT_ROOT) -> pd.DataFrame:
    """Every job's summary row as one table (also written to <sweep>/results.parquet): the config as dotted
    columns, the metrics, status and provenance; a tuned sweep's rows marked ``tune.best``."""
    from harness.store.collect import collect

    return collect(folder_of(sweep, root))


def cancel(sweep: Plan | str | Path | None = None, *, root: str | Path = DEFAULT_ROOT) -> int:
    """Stop the sweep's queued and running jobs; returns how many were stopped."""
    from harness.backends.interface import backend_of

    folder = folder_of(sweep, root)
    return backend_of(folder).cancel(folder)


def remove_stale(sweep: Plan | str | Path | None = None, *, root: str | Path = DEFAULT_ROOT) -> list[str]:
    """Delete the run folders of jobs no longer in the plan (never under a running submit); returns their names."""
    from harness.store.folders import load_plan
    from harness.store.lock import submit_lock
    from harness.store.stale import remove_stale as remove

    folder = folder_of(sweep, root)
    with submit_lock(folder):
        return remove(folder, load_plan(folder))


def show(job_id: str, sweep: Plan | str | Path | None = None, *, root: str | Path = DEFAULT_ROOT,
         out: str | Path | None = None, samples: int = 3, force: bool = False) -> Path:
    """Draw a job's best model on its first ``samples`` test samples (source, truth, prediction, error) as a PNG
    (default <run folder>/fields.png; ``out``: a new .png file, or with ``force`` one to overwrite); returns its
    path."""
    import io

    from analysis.figures.gallery import job_figure
    from analysis.figures.style import DPI
    from harness.store.atomic import write_bytes_atomic
    from harness.store.folders import load_plan, run_dir
    from harness.store.outputs import new_file

    folder = folder_of(sweep, root)
    if out is not None:
        out = new_file(Path(out), (".png",), force, "harness show")
    png = io.BytesIO()
    job_figure(load_plan(folder), job_id, folder.parent, samples).savefig(png, format="png", dpi=DPI)
    return write_bytes_atomic(Path(out) if out is not None else run_dir(folder, job_id) / "fields.png", png.getvalue())


def studies(sweep: Plan | str | Path | None = None, *,
            root: str | Path = DEFAULT_ROOT) -> tuple[list[dict[str, Any]], str]:
    """Per optuna study of a tuned sweep: trials by state, best validation value and parameters; and where the
    studies are stored."""
    from harness.job.trial import study_summaries
    from harness.store.folders import load_plan

    folder = folder_of(sweep, root)
    storage = next((j.tune_storage for j in load_plan(folder) if j.config.tune is not None), None)
    return study_summaries(folder, {"storage": storage}), storage or str(folder / "tune" / "journal.log")


def dataset(system: str, n: int, out: str | Path, *, shift: str | None = None, resolution: int | None = None,
            nt: int | None = None, seed: int = 0, fmt: str | None = None, force: bool = False) -> str:
    """Generate ``n`` samples of a steady system, or trajectories of a time-dependent one, and write them to
    ``out``: an .npz file for inspection, or an .h5 data file a sweep reads in the layout ``fmt`` (arrays or
    tl-scaling for steady systems, default arrays; pretraining-pdes for trajectories). ``out`` is a new file
    (with ``force``, one to overwrite). Returns what was written."""
    from harness.data.generated import write_dataset

    return write_dataset(system, n, Path(out), shift=shift, resolution=resolution, nt=nt, seed=seed, fmt=fmt,
                         force=force)


def export(job_id: str, out: str | Path, sweep: Plan | str | Path | None = None, *, root: str | Path = DEFAULT_ROOT,
           force: bool = False, command: str = "") -> Path:
    """Write the trained job ``job_id`` as a self-contained folder ``out`` (``harness.portable``: weights as
    safetensors, config, statistics, data source and fingerprint, metrics, model card); ``force`` replaces an
    ``out`` that exists. Refused before anything is written: an unknown job, one that did not end ok, a pretext
    pretraining. Returns ``out``."""
    from harness.portable.folder import export_job

    return export_job(*_planned(job_id, sweep, root), Path(out), force=force, command=command)


def load_model(folder: str | Path) -> PhysicalModel:
    """The model ``harness export`` wrote to ``folder``, as a torch module from physical inputs to physical outputs
    (the normalisation inside it; ``harness.portable.physical``), needing nothing but the folder."""
    from harness.portable.physical import load_model as load

    return load(folder)


def evaluate(job_id: str, data: str | None = None, sweep: Plan | str | Path | None = None, *,
             resolution: int | None = None, fmt: str | None = None, root: str | Path = DEFAULT_ROOT) -> dict[str, Any]:
    """Score the trained job ``job_id`` on another source (``harness.sweep.evals``): ``data`` a system
    (``helmholtz``, ``helmholtz:moderate``) or a data file (.h5, of format ``fmt``), and/or another grid
    ``resolution``; the row (its test metrics there) is added to the run folder's eval.parquet and returned. A
    source the job cannot be scored on is refused before anything is written."""
    from harness.portable.scoring import evaluate_job

    return evaluate_job(*_planned(job_id, sweep, root), data, resolution=resolution, fmt=fmt)


def _planned(job_id: str, sweep: Plan | str | Path | None, root: str | Path) -> tuple[Plan, Job]:
    """The plan of ``sweep`` and its job ``job_id`` (an unknown id raises, naming the sweep)."""
    from harness.job.trained import find_job
    from harness.store.folders import read_plan

    plan = read_plan(folder_of(sweep, root))
    assert plan is not None  # read_plan raises when there is none
    return plan, find_job(plan.jobs, job_id, plan.sweep)
