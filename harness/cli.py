"""The `harness` command: thin wrappers that parse, call the library, and print.

expand -> submit -> status -> report; `data` writes one PDE dataset for inspection.
Every user error is a HarnessError, printed as one line with exit status 2.
"""

from __future__ import annotations

import errno
import json
import sys
from collections import Counter
from functools import wraps
from pathlib import Path

import click

from harness.backends.interface import BACKENDS
from harness.errors import HarnessError
from harness.store import Stage
from harness.store.folders import DEFAULT_ROOT, current_sweep, load_plan, sweep_dir

ROOT = click.option("--root", type=click.Path(path_type=Path), default=DEFAULT_ROOT, show_default=True,
                    help="Results root folder.")
SWEEP = click.argument("sweep", required=False)
UNWRITABLE = (errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM)


def resolve_sweep(root: Path, sweep: str | None) -> Path:
    """The folder of a sweep given by name, by its sweep file, or (None) the current sweep."""
    if sweep is None:
        return current_sweep(root)
    if sweep.endswith((".yaml", ".yml")):
        from harness.sweep.spec import load_sweep  # only for the name: validation errors surface here too

        return sweep_dir(root, load_sweep(sweep).name)
    return sweep_dir(root, sweep)


def _friendly(fn):
    """Turn HarnessError, and a folder that cannot be written (read-only, full, no permission), into a one-line
    message and exit status 2."""

    @wraps(fn)
    def inner(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except HarnessError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)
        except OSError as exc:
            if exc.errno not in UNWRITABLE:
                raise
            click.echo(f"error: {exc.filename or exc.filename2 or '?'}: cannot write ({exc.strerror}); free space "
                       "or make the results folder writable (or pass another --root); files written before are "
                       "intact", err=True)
            sys.exit(2)

    return inner


@click.group()
@click.version_option(package_name="harness")
def main() -> None:
    """Scaling-law studies of neural operators: expand a sweep, submit it, report on it."""


@main.command()
@click.argument("sweep_file", type=click.Path(path_type=Path))
@ROOT
@click.option("--force", is_flag=True, help=f"Allow more than {100_000} jobs.")
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
@click.option("--estimate", is_flag=True, help="Also predict GPU/CPU-hours per stage (times one step per shape).")
@_friendly
def expand(sweep_file: Path, root: Path, force: bool, as_json: bool, estimate: bool) -> None:
    """Expand SWEEP_FILE into jobs, write the plan under ROOT/<name>/ and make it the current sweep.

    Every point is checked first (data, model, pretraining, training, memory): a bad sweep writes nothing.
    """
    from harness.store.folders import write_plan
    from harness.sweep.expand import expand as expand_jobs
    from harness.sweep.lint import sweep_warnings
    from harness.sweep.plan import describe
    from harness.sweep.spec import load_sweep
    from harness.track.settings import save_settings

    sweep = load_sweep(sweep_file)
    jobs = expand_jobs(sweep, force=force)
    for warning in sweep_warnings(sweep):
        click.echo(f"warning: {warning}", err=True)
    folder = write_plan(root, sweep.name, sweep.raw, str(sweep_file), jobs)
    save_settings(folder, sweep.track)
    if as_json:
        click.echo(json.dumps({"sweep": sweep.name, "folder": str(folder), "jobs": jobs}, indent=1))
    else:
        click.echo(describe(sweep, jobs, folder))
    if estimate:
        from harness.sweep.estimate import describe_estimate

        click.echo(describe_estimate(jobs), err=as_json)


@main.command()
@SWEEP
@ROOT
@click.option("--backend", type=click.Choice(list(BACKENDS)), default="local", show_default=True,
              help="local: worker processes here; inline: one job after the other in this process (for a "
                   "debugger); slurm: job arrays through submitit.")
@click.option("--workers", type=int, default=None,
              help="CPU worker processes (local; default cores/2; threads each: cores/workers, or OMP_NUM_THREADS).")
@click.option("--jobs-per-gpu", type=int, default=None, help="Jobs sharing one GPU (default 1).")
@click.option("--retry-failed", is_flag=True, help="Also rerun diverged jobs.")
@click.option("--reexpand", is_flag=True, help="When SWEEP is a sweep file that no longer gives its plan, write "
                                               "the new plan instead of refusing.")
@click.option("--only", type=click.Choice([stage.value for stage in Stage]), default=None)
@click.option("--dry-run", is_flag=True, help="List what would run, run nothing.")
@click.option("--track", "track", multiple=True, type=click.Choice(["tensorboard", "mlflow", "wandb"]),
              help="Also send each job's config and metrics to this tracker (repeatable; kept for the sweep's "
                   "later submits, as a `track:` block would).")
@click.option("-v", "--verbose", is_flag=True, help="Stream each job's evaluations (local, inline).")
@click.option("--partition", default=None, help="Slurm partition (overrides the sweep's slurm: block).")
@click.option("--account", default=None, help="Slurm account.")
@click.option("--qos", default=None, help="Slurm QOS.")
@click.option("--time", "time_min", type=int, default=None, help="Slurm time limit per task, minutes.")
@click.option("--gpus-per-node", type=int, default=None, help="GPUs per Slurm task (0 for CPU jobs).")
@click.option("--cpus", "cpus_per_task", type=int, default=None, help="CPUs per Slurm task.")
@click.option("--mem", "mem_gb", type=float, default=None, help="Memory per Slurm task, GB.")
@click.option("--constraint", default=None, help="Slurm node constraint.")
@click.option("--array-parallelism", type=int, default=None, help="Slurm array tasks running at once.")
@_friendly
def submit(sweep: str | None, root: Path, backend: str, retry_failed: bool, reexpand: bool, only: str | None,
           dry_run: bool, track: tuple[str, ...], **options: object) -> None:
    """Run the jobs of SWEEP (default: the current sweep) that have no ok result yet.

    SWEEP as a sweep file must still expand to its plan (else: --reexpand). One submit per sweep at a time.
    Exit status 0 when every job run ended ok or pruned (or was queued), 1 when any ended failed, diverged or
    blocked (the last line names them), 2 on a user error.
    """
    from harness.store.lock import submit_lock

    if sweep is not None and sweep.endswith((".yaml", ".yml")):
        from harness.sweep.replan import sweep_folder_of_file

        folder, note = sweep_folder_of_file(root, sweep, reexpand=reexpand)
        if note:
            click.echo(note)
    else:
        folder = resolve_sweep(root, sweep)
    if track and not dry_run:
        from harness.track.settings import load_settings, save_settings

        save_settings(folder, {**{name: {} for name in track}, **load_settings(folder)})
    if dry_run:
        _submit(folder, backend, retry_failed, only, True, options)
        return
    with submit_lock(folder):
        bad = _submit(folder, backend, retry_failed, only, False, options)
    if bad:
        click.echo(bad)
        sys.exit(1)


def _submit(folder: Path, backend: str, retry_failed: bool, only: str | None, dry_run: bool,
            options: dict[str, object]) -> str:
    """Pick and run (or list) the jobs to run; returns the line naming those that ended badly ("" if none)."""
    from harness.backends.interface import get_backend
    from harness.backends.select import select
    from harness.store.folders import read_plan, record_blocked
    from harness.store.status import bad_line, incomplete_lines
    from harness.track.worker import clear_warnings

    clear_warnings(folder)
    plan = read_plan(folder)
    jobs = plan["jobs"]
    runner = get_backend(backend, spec=plan["spec"], **options)
    states = runner.status(folder, jobs)
    for line in incomplete_lines(folder, jobs, states):
        click.echo(line)
    chosen = select(jobs, states, retry_failed=retry_failed, only=only)
    counts = Counter(j["stage"] for j in chosen.todo)
    blocked = f"; {len(chosen.blocked)} blocked (their pretraining cannot run)" if chosen.blocked else ""
    click.echo(f"{folder.name}: {len(chosen.todo)} of {len(jobs)} jobs to run "
               f"({', '.join(f'{s} {n}' for s, n in counts.items()) or 'nothing to do'}){blocked}")
    if dry_run:
        for job in chosen.todo:
            click.echo(f"  {job['id']}  {job['stage']:9s} depends on {job['depends_on'] or '-'}")
        return ""
    for job, dep_state in chosen.blocked:
        record_blocked(folder, job, dep_state)
    if chosen.todo:
        click.echo(runner.submit(chosen.todo, jobs, folder))
    return bad_line(runner.status(folder, [*chosen.todo, *(job for job, _ in chosen.blocked)]))


@main.command()
@SWEEP
@ROOT
@click.option("--watch", is_flag=True, help="Refresh in place, with the running jobs' step, epoch and ETA.")
@click.option("--interval", type=float, default=5.0, show_default=True, help="Seconds between refreshes (--watch).")
@click.option("--refreshes", type=int, default=None, help="Stop after this many refreshes (--watch; default never).")
@_friendly
def status(sweep: str | None, root: Path, watch: bool, interval: float, refreshes: int | None) -> None:
    """Counts per stage and state, and the failed jobs with the last line of their error.

    Exit status 0 when no job is failed, diverged or blocked, 1 when one is, 2 on a user error.
    """
    from harness.backends.interface import backend_of
    from harness.backends.slurm_state import read_submitted
    from harness.store.stale import stale_note
    from harness.store.status import bad_line, incomplete_lines, status_table

    folder = resolve_sweep(root, sweep)
    jobs = load_plan(folder)
    if watch:
        from harness.store import watch as live

        backend = backend_of(folder)
        live.watch(lambda: live.view(folder, jobs, backend.status(folder, jobs)), interval, refreshes)
        return
    states = backend_of(folder).status(folder, jobs)
    click.echo(status_table(folder, jobs, states))
    for line in incomplete_lines(folder, jobs, states):
        click.echo(line)
    if read_submitted(folder):  # queued on Slurm: why the pending jobs wait
        from harness.backends.slurm_checks import pending_reasons

        for line in pending_reasons(folder, states):
            click.echo(line)
    if note := stale_note(folder, jobs):
        click.echo(note)
    if bad_line(states):
        sys.exit(1)


@main.command()
@SWEEP
@ROOT
@click.option("--stale", is_flag=True, help="Remove the run folders whose ids are not in the current plan.")
@_friendly
def gc(sweep: str | None, root: Path, stale: bool) -> None:
    """Remove what the sweep no longer needs: with --stale, the runs of jobs no longer in its plan."""
    from harness.store.lock import submit_lock
    from harness.store.stale import remove_stale

    folder = resolve_sweep(root, sweep)
    if not stale:
        raise HarnessError("harness gc: say what to remove (--stale: runs not in the current plan)")
    with submit_lock(folder):  # never under a running submit
        removed = remove_stale(folder, load_plan(folder))
    click.echo(f"{folder.name}: removed {len(removed)} stale run(s)")


@main.command()
@SWEEP
@ROOT
@_friendly
def cancel(sweep: str | None, root: Path) -> None:
    """Cancel the queued and running jobs of SWEEP (default: the current sweep)."""
    from harness.backends.interface import backend_of

    folder = resolve_sweep(root, sweep)
    click.echo(f"{folder.name}: cancelled {backend_of(folder).cancel(folder)} queued or running job(s)")


@main.command()
@SWEEP
@ROOT
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Report folder (default <sweep>/report).")
@click.option("--n-boot", type=int, default=1000, show_default=True, help="Bootstrap resamples per fit.")
@click.option("--seed", type=int, default=0, show_default=True, help="Bootstrap seed.")
@_friendly
def report(sweep: str | None, root: Path, out: Path | None, n_boot: int, seed: int) -> None:
    """Fit power laws and write the figures, fits table, report.html and report.md of SWEEP.

    Exit status 0 when the report was written (failed, diverged and non-finite rows are listed as problems and
    left out of the fits), 2 when it cannot be (no results, a folder that cannot be written).
    """
    from analysis.report import build_report
    from harness.store.folders import read_plan
    from harness.store.stale import stale_note

    folder = resolve_sweep(root, sweep)
    result = build_report(folder, out, n_boot=n_boot, seed=seed)
    counts = ", ".join(f"{n} {state}" for state, n in result.counts.items() if n)
    click.echo(f"{result.out_dir.parent.name}: {counts}")
    if note := stale_note(folder, (read_plan(folder, missing_ok=True) or {"jobs": []})["jobs"]):
        click.echo(note)
    for name, why in {**result.skipped, **result.tables_skipped, **result.gallery_skipped}.items():
        click.echo(f"  skipped {name}: {why}")
    click.echo(f"figures: {', '.join(str(p) for p in result.figures.values())}")
    for name, path in result.tables.items():
        click.echo(f"table:   {path} ({name})")
    click.echo(f"fits:    {result.fits_parquet} (+ .csv)")
    click.echo(f"report:  {result.html}\n         {result.markdown}")


@main.command()
@click.argument("job_id")
@click.option("--sweep", default=None, help="Sweep name or file (default: the current sweep).")
@ROOT
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="PNG file (default <run folder>/fields.png).")
@click.option("--samples", type=int, default=3, show_default=True, help="Test samples drawn (the first ones).")
@_friendly
def show(job_id: str, sweep: str | None, root: Path, out: Path | None, samples: int) -> None:
    """Draw JOB_ID's best model on its first test samples (source, true solution, prediction, error) as a PNG."""
    import io

    from analysis.figures.gallery import job_figure
    from analysis.figures.style import DPI
    from harness.store.atomic import write_bytes_atomic
    from harness.store.folders import run_dir

    folder = resolve_sweep(root, sweep)
    figure = job_figure(load_plan(folder), job_id, folder.parent, samples)
    png = io.BytesIO()
    figure.savefig(png, format="png", dpi=DPI)
    path = write_bytes_atomic(out or run_dir(folder, job_id) / "fields.png", png.getvalue())
    click.echo(f"wrote {path}")


@main.command("tune-status")
@SWEEP
@ROOT
@_friendly
def tune_status(sweep: str | None, root: Path) -> None:
    """Per optuna study of a tuned sweep: trials by state, best validation value and parameters."""
    from harness.job.trial import study_summaries

    folder = resolve_sweep(root, sweep)
    storage = next((j.get("tune_storage") for j in load_plan(folder) if "tune" in j["config"]), None)
    rows = study_summaries(folder, {"storage": storage})
    if not rows:
        click.echo(f"{folder.name}: no studies yet (is the sweep tuned, and submitted?)")
    fixed = ("study", "trials", "best_value", "best_params")
    for row in rows:
        states = ", ".join(f"{k} {v}" for k, v in row.items() if k not in fixed)
        click.echo(f"{row['study']}: {row['trials']} trials ({states}); "
                   f"best {row['best_value']:.4g} {row['best_params']}")
    click.echo(f"storage: {storage or folder / 'tune' / 'journal.log'} (optuna-dashboard opens it)")


@main.command()
@click.argument("system")
@click.option("--n", "n", type=int, required=True, help="Number of samples.")
@click.option("--shift", default=None, help="Shift level (id, moderate, large; time-dependent: id, ood, ...).")
@click.option("--resolution", type=int, default=None, help="Grid size (default 128; time-dependent 32).")
@click.option("--nt", type=int, default=None, help="Frames per trajectory (time-dependent systems; default 32).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", type=click.Path(path_type=Path), required=True,
              help="Output file: .npz (the harness's own), or .h5 for a data file a sweep reads.")
@click.option("--format", "fmt", type=click.Choice(["arrays", "tl-scaling", "pretraining-pdes"]), default=None,
              help="Layout of an .h5 file (README, Data files): arrays or tl-scaling (steady systems, default "
                   "arrays), pretraining-pdes (trajectories, the default for them).")
@_friendly
def data(system: str, n: int, shift: str | None, resolution: int | None, nt: int | None, seed: int,
         out: Path, fmt: str | None) -> None:
    """Generate one PDE dataset (steady, or trajectories of heat, advection, burgers, mixed_time, navier_stokes)
    and write it to an .npz file for inspection, or to an .h5 data file in a documented layout."""
    from harness import pde
    from harness.pde.cache import save
    from harness.pde.steady_dataset import generate
    from harness.pde.time_dataset import generate_time

    grid = {} if resolution is None else {"resolution": resolution}
    if system in (*pde.ALL_TIME_SYSTEMS, pde.TIME_MIXED):
        result = generate_time(system, n, shift=shift, seed=seed, **grid, **({} if nt is None else {"nt": nt}))
        what = f"trajectories of {result.u.shape[1]} frames"
    elif nt is not None:
        raise HarnessError(f"--nt applies to the time-dependent systems ({', '.join(pde.ALL_TIME_SYSTEMS)}, "
                           f"{pde.TIME_MIXED}), not to {system!r}: drop --nt")
    else:
        result = generate(system, n, shift=shift, seed=seed, **grid)
        what = "samples"
    if out.suffix in (".h5", ".hdf5"):
        from harness.data.formats import write_pretraining_pdes, write_samples
        from harness.data.samples import samples_of

        steady = what == "samples"
        fmt = fmt or ("arrays" if steady else "pretraining-pdes")
        if steady == (fmt == "pretraining-pdes"):
            fits = "arrays or tl-scaling" if steady else "pretraining-pdes"
            raise HarnessError(f"--format {fmt} does not hold {system}'s {what}: use --format {fits}")
        if steady:
            write_samples(out, samples_of(result), fmt)
        else:
            write_pretraining_pdes(out, result.u, result.coef_common, result.t,
                                   channels=pde.model_coefs(system))
        what = f"{what} ({fmt})"
    else:
        save(result, out)
    size = result.meta["resolution"]
    click.echo(f"wrote {out}: {n} {system} {what} at {size}x{size}")


if __name__ == "__main__":
    main()
