"""The `harness` command: thin wrappers that parse, call the library, and print.

expand -> submit -> status -> report; `data` writes one PDE dataset for inspection.
Every mistake is one line and exit status 2, checked before a command acts: a usage error (an unknown option or
command, a value of the wrong type or range) is one line naming the command and where its help is, not click's
usage block (``Harness``); a HarnessError, or a folder that cannot be written, is one line (``friendly``). The
options' own checks: ``Finite`` (a number that is finite and in range: an interval, a memory size) and
``results_root`` (``--root`` is a folder or can be made one); ``--out`` files and folders are the front door's
(``harness.store.outputs``).
"""

from __future__ import annotations

import errno
import json
import math
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any

import click

from harness import api
from harness.backends.interface import BACKENDS
from harness.data import FORMATS
from harness.errors import HarnessError, one_line
from harness.store import DEFAULT_ROOT, Stage
from harness.train import DEFAULT_METRIC, METRICS

UNWRITABLE = (errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM)
POSITIVE = click.IntRange(min=1)  # counts of workers, CPUs, samples, refreshes...
NATURAL = click.IntRange(min=0)  # seeds, bootstrap resamples, GPUs
SLURM_FLAGS = ("partition", "account", "qos", "time_min", "gpus_per_node", "cpus_per_task", "mem_gb", "constraint",
               "array_parallelism")


def fail(message: str) -> None:
    """Print ``message`` as the one line of a user error and exit with status 2."""
    click.echo(f"error: {one_line(message)}", err=True)
    sys.exit(2)


class Harness(click.Group):
    """The `harness` group: click's usage errors as one line (``error: harness CMD: problem; see ...``)."""

    def main(self, args: Any = None, prog_name: str | None = None, complete_var: str | None = None,
             standalone_mode: bool = True, **extra: Any) -> Any:
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.exceptions.NoArgsIsHelpError as exc:  # `harness` alone: the help
            exc.show()
            sys.exit(exc.exit_code)
        except click.UsageError as exc:
            command = _command(exc.ctx)
            fail(f"{command}: {exc.format_message().rstrip('.')}; see `{command} --help`")
        except click.ClickException as exc:
            fail(exc.format_message())
        except click.Abort:
            click.echo("Aborted!", err=True)
            sys.exit(1)
        if standalone_mode:
            sys.exit(code if isinstance(code, int) else 0)
        return code


def _command(ctx: click.Context | None) -> str:
    """``harness`` and the subcommand of ``ctx``, whatever the program was called (``python -m harness.cli``)."""
    names = []
    while ctx is not None and ctx.parent is not None:
        names.append(ctx.info_name)
        ctx = ctx.parent
    return " ".join(["harness", *reversed(names)])


def friendly(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn HarnessError, and a folder that cannot be written (read-only, full, no permission), into a one-line
    message and exit status 2."""

    @wraps(fn)
    def inner(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except HarnessError as exc:
            fail(str(exc))
        except OSError as exc:
            if exc.errno not in UNWRITABLE:
                raise
            fail(f"{exc.filename or exc.filename2 or '?'}: cannot write ({exc.strerror}); free space or make the "
                 "results folder writable (or pass another --root); files written before are intact")

    return inner


class Finite(click.ParamType):
    """A finite number at least ``low`` (above it when ``strict``): NaN and the infinities are refused."""

    name = "number"

    def __init__(self, low: float, *, strict: bool = False) -> None:
        self.low, self.strict = low, strict

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        number = click.FLOAT.convert(value, param, ctx)
        if not math.isfinite(number) or number < self.low or (self.strict and number == self.low):
            self.fail(f"{value} is not a finite number {'>' if self.strict else '>='} {self.low:g}", param, ctx)
        return number


def results_root(ctx: click.Context, param: click.Parameter, root: Path) -> Path:
    """``--root``: a folder, or a path where one can be made (not a file, nor under one, nor a dangling link)."""
    for path in (root, *root.parents):
        if path.is_symlink() and not path.exists():
            raise click.BadParameter(f"{path} is a symbolic link to nothing (or a loop): name the results folder")
        if path.exists() and not path.is_dir():
            where = "" if path == root else f"{root} lies under "
            raise click.BadParameter(f"{where}{path} is a file, not a folder: name the results folder")
    return root


ROOT = click.option("--root", type=click.Path(path_type=Path), default=DEFAULT_ROOT, show_default=True,
                    callback=results_root, help="Results root folder.")
SWEEP = click.argument("sweep", required=False)
FORCE = click.option("--force", is_flag=True, help="Overwrite an --out file that exists.")


@click.group(cls=Harness)
@click.version_option(package_name="harness")
def main() -> None:
    """Scaling-law studies of neural operators: expand a sweep, submit it, report on it."""


@main.command()
@click.argument("sweep_file", type=click.Path(path_type=Path))
@ROOT
@click.option("--force", is_flag=True, help=f"Allow more than {100_000} jobs.")
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
@click.option("--estimate", is_flag=True,
              help="Also predict GPU/CPU-hours per stage (times the jobs' passes and two tiny jobs).")
@friendly
def expand(sweep_file: Path, root: Path, force: bool, as_json: bool, estimate: bool) -> None:
    """Expand SWEEP_FILE into jobs, write the plan under ROOT/<name>/ and make it the current sweep.

    Every point is checked first (data, model, pretraining, training, memory): a bad sweep writes nothing.
    """
    plan = api.expand(sweep_file, root, force=force, warn=lambda line: click.echo(f"warning: {line}", err=True))
    if as_json:
        click.echo(json.dumps({"sweep": plan.sweep, "folder": str(plan.folder),
                               "jobs": [job.to_dict() for job in plan.jobs]}, indent=1))
    else:
        click.echo(api.describe(plan))
    if estimate:
        click.echo(api.estimate(plan), err=as_json)


@main.command()
@SWEEP
@ROOT
@click.option("--backend", type=click.Choice(list(BACKENDS)), default="local", show_default=True,
              help="local: worker processes here; inline: one job after the other in this process (for a "
                   "debugger); slurm: job arrays through submitit.")
@click.option("--workers", type=POSITIVE, default=None,
              help="CPU worker processes (local; default cores/2; threads each: cores/workers, or OMP_NUM_THREADS).")
@click.option("--jobs-per-gpu", type=POSITIVE, default=None, help="Jobs sharing one GPU (default 1).")
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
@click.option("--time", "time_min", type=POSITIVE, default=None, help="Slurm time limit per task, minutes.")
@click.option("--gpus-per-node", type=NATURAL, default=None, help="GPUs per Slurm task (0 for CPU jobs).")
@click.option("--cpus", "cpus_per_task", type=POSITIVE, default=None, help="CPUs per Slurm task.")
@click.option("--mem", "mem_gb", type=Finite(0, strict=True), default=None, help="Memory per Slurm task, GB.")
@click.option("--constraint", default=None, help="Slurm node constraint.")
@click.option("--array-parallelism", type=POSITIVE, default=None, help="Slurm array tasks running at once.")
@friendly
def submit(sweep: str | None, root: Path, backend: str, retry_failed: bool, reexpand: bool, only: str | None,
           dry_run: bool, track: tuple[str, ...], workers: int | None, jobs_per_gpu: int | None, verbose: bool,
           **slurm: object) -> None:
    """Run the jobs of SWEEP (default: the current sweep) that have no ok result yet.

    SWEEP as a sweep file must still expand to its plan (else: --reexpand). One submit per sweep at a time.
    Exit status 0 when every job run ended ok or pruned (or was queued), 1 when any ended failed, diverged or
    blocked (the last line names them), 2 on a user error.
    """
    run = api.submit(sweep, root=root, backend=backend, workers=workers, jobs_per_gpu=jobs_per_gpu,
                     retry_failed=retry_failed, only=only, reexpand=reexpand, track=track, dry_run=dry_run,
                     verbose=verbose, slurm={k: v for k, v in slurm.items() if k in SLURM_FLAGS}, echo=click.echo)
    if run.bad:
        click.echo(run.bad)
        sys.exit(1)


@main.command()
@SWEEP
@ROOT
@click.option("--watch", is_flag=True, help="Refresh in place, with the running jobs' step, epoch and ETA.")
@click.option("--interval", type=Finite(0), default=5.0, show_default=True, help="Seconds between refreshes (--watch).")
@click.option("--refreshes", type=POSITIVE, default=None,
              help="Stop after this many refreshes (--watch; default never).")
@friendly
def status(sweep: str | None, root: Path, watch: bool, interval: float, refreshes: int | None) -> None:
    """Counts per stage and state, and the failed jobs with the last line of their error.

    Exit status 0 when no job is failed, diverged or blocked, 1 when one is, 2 on a user error.
    """
    if watch:
        api.watch(sweep, root=root, interval=interval, refreshes=refreshes)
        return
    now = api.status(sweep, root=root)
    for line in now.lines():
        click.echo(line)
    if now.bad:
        sys.exit(1)


@main.command()
@SWEEP
@ROOT
@click.option("--stale", is_flag=True, help="Remove the run folders whose ids are not in the current plan.")
@friendly
def gc(sweep: str | None, root: Path, stale: bool) -> None:
    """Remove what the sweep no longer needs: with --stale, the runs of jobs no longer in its plan."""
    folder = api.folder_of(sweep, root)
    if not stale:
        raise HarnessError("harness gc: say what to remove (--stale: runs not in the current plan)")
    click.echo(f"{folder.name}: removed {len(api.remove_stale(folder))} stale run(s)")


@main.command()
@SWEEP
@ROOT
@friendly
def cancel(sweep: str | None, root: Path) -> None:
    """Cancel the queued and running jobs of SWEEP (default: the current sweep)."""
    stopped = api.cancel(sweep, root=root)
    click.echo(f"{api.folder_of(sweep, root).name}: cancelled {stopped} queued or running job(s)")


@main.command()
@SWEEP
@ROOT
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Report folder (default <sweep>/report).")
@click.option("--n-boot", type=NATURAL, default=1000, show_default=True, help="Bootstrap resamples per fit.")
@click.option("--seed", type=NATURAL, default=0, show_default=True, help="Bootstrap seed.")
@click.option("--force", is_flag=True, help="Write into an --out folder that holds other files.")
@click.option("--metric", type=click.Choice(list(METRICS)), default=DEFAULT_METRIC, show_default=True,
              help="The test error the fits, claims and figures read (each run's test_<metric>).")
@friendly
def report(sweep: str | None, root: Path, out: Path | None, n_boot: int, seed: int, force: bool,
           metric: str) -> None:
    """Fit power laws and write the figures, fits table, report.html and report.md of SWEEP.

    Exit status 0 when the report was written (failed, diverged and non-finite rows are listed as problems and
    left out of the fits), 2 when it cannot be (no results, a folder that cannot be written).
    """
    result = api.report(sweep, root=root, out=out, n_boot=n_boot, seed=seed, force=force, metric=metric)
    counts = ", ".join(f"{n} {state}" for state, n in result.counts.items() if n)
    click.echo(f"{result.out_dir.parent.name}: {counts}")
    if result.stale_note:
        click.echo(result.stale_note)
    for name, why in {**result.skipped, **result.tables_skipped, **result.gallery_skipped}.items():
        click.echo(f"  skipped {name}: {why}")
    click.echo(f"figures: {', '.join(str(p) for p in result.figures.values())}")
    for name, path in result.tables.items():
        click.echo(f"table:   {path} ({name})")
    click.echo(f"fits:    {result.fits_parquet} (+ .csv)")
    click.echo(f"report:  {result.html}\n         {result.markdown}")


@main.command()
@SWEEP
@ROOT
@click.option("--target", required=True,
              help="The claim to sharpen, by its claims.csv id: b.<stage>.<curve> (an exponent), "
                   "multfit.<curve>.n<N> (a data-efficiency multiplier) or popt.<stage>.<group>.c1e<k> (the "
                   "compute-optimal model size at 10^k FLOPs).")
@click.option("--budget", type=Finite(0, strict=True), required=True, help="Device-hours the extra runs may cost.")
@click.option("--k", type=POSITIVE, default=None, help="At most this many runs (default: what the budget buys).")
@friendly
def suggest(sweep: str | None, root: Path, target: str, budget: float, k: int | None) -> None:
    """Suggest the runs that would narrow TARGET's interval most per device-hour, as an include: block for the
    sweep file (written under <sweep>/suggest/); prints each run's cost and expected shrinkage."""
    for line in api.suggest(sweep, root=root, target=target, budget=budget, k=k).lines():
        click.echo(line)


@main.command()
@click.argument("job_id")
@click.option("--sweep", default=None, help="Sweep name or file (default: the current sweep).")
@ROOT
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="PNG file (default <run folder>/fields.png).")
@click.option("--samples", type=POSITIVE, default=3, show_default=True,
              help="Test samples drawn (the first ones).")
@FORCE
@friendly
def show(job_id: str, sweep: str | None, root: Path, out: Path | None, samples: int, force: bool) -> None:
    """Draw JOB_ID's best model on its first test samples (source, true solution, prediction, error) as a PNG."""
    click.echo(f"wrote {api.show(job_id, sweep, root=root, out=out, samples=samples, force=force)}")


@main.command("export")
@click.argument("job_id")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="The folder to write (a new one).")
@click.option("--sweep", default=None, help="Sweep name or file (default: the current sweep).")
@ROOT
@click.option("--force", is_flag=True, help="Replace an --out folder that exists.")
@friendly
def export_command(job_id: str, out: Path, sweep: str | None, root: Path, force: bool) -> None:
    """Write JOB_ID's trained model as a self-contained folder: weights (safetensors), config, normalisation
    statistics, data source and fingerprint, metrics and a model card; `harness.load_model(OUT)` loads it."""
    command = " ".join(["harness export", job_id, "--out", str(out), *(["--sweep", sweep] if sweep else []),
                        "--root", str(root), *(["--force"] if force else [])])
    click.echo(f"wrote {api.export(job_id, out, sweep, root=root, force=force, command=command)}")


@main.command("eval")
@click.argument("job_id")
@click.option("--data", default=None, help="SYSTEM, SYSTEM:SHIFT (e.g. helmholtz:moderate) or a data file (.h5); "
                                           "default the job's own.")
@click.option("--resolution", type=POSITIVE, default=None,
              help="Grid to evaluate on (default the job's, or the file's).")
@click.option("--format", "fmt", type=click.Choice(FORMATS),
              default=None, help="Layout of a --data file (default arrays; pretraining-pdes for trajectories).")
@click.option("--sweep", default=None, help="Sweep name or file (default: the current sweep).")
@ROOT
@friendly
def eval_command(job_id: str, data: str | None, resolution: int | None, fmt: str | None, sweep: str | None,
                 root: Path) -> None:
    """Score JOB_ID's trained model on another system, shift, data file or grid (zero-shot super-resolution);
    the row goes to its run folder's eval.parquet and into the report."""
    row = api.evaluate(job_id, data, sweep, resolution=resolution, fmt=fmt, root=root)
    click.echo(f"{job_id} on {row['source']} at {row['resolution']}x{row['resolution']}: test_rel_l2 "
               f"{row['test_rel_l2']:.4g}")


@main.command("tune-status")
@SWEEP
@ROOT
@friendly
def tune_status(sweep: str | None, root: Path) -> None:
    """Per optuna study of a tuned sweep: trials by state, best validation value and parameters."""
    rows, storage = api.studies(sweep, root=root)
    if not rows:
        click.echo(f"{api.folder_of(sweep, root).name}: no studies yet (is the sweep tuned, and submitted?)")
    fixed = ("study", "trials", "best_value", "best_params")
    for row in rows:
        states = ", ".join(f"{k} {v}" for k, v in row.items() if k not in fixed)
        click.echo(f"{row['study']}: {row['trials']} trials ({states}); "
                   f"best {row['best_value']:.4g} {row['best_params']}")
    click.echo(f"storage: {storage} (optuna-dashboard opens it)")


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
              help="Layout of an .h5 file (docs/data-files.md): arrays or tl-scaling (steady systems, default "
                   "arrays), pretraining-pdes (trajectories, the default for them).")
@FORCE
@friendly
def data(system: str, n: int, shift: str | None, resolution: int | None, nt: int | None, seed: int,
         out: Path, fmt: str | None, force: bool) -> None:
    """Generate one PDE dataset (steady, or trajectories of heat, advection, burgers, mixed_time,
    navier_stokes) and write it to an .npz file for inspection, or to an .h5 data file in a documented layout."""
    click.echo("wrote " + api.dataset(system, n, out, shift=shift, resolution=resolution, nt=nt, seed=seed, fmt=fmt,
                                      force=force))


if __name__ == "__main__":
    main()
