"""The `harness` command: thin wrappers that parse, call the library, and print.

expand -> submit -> status -> report; `data` writes one PDE dataset for inspection.
Every user error is a HarnessError, printed as one line with exit status 2.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from functools import wraps
from pathlib import Path

import click

from harness.errors import HarnessError
from harness.store import DEFAULT_ROOT, load_plan, resolve_sweep

ROOT = click.option("--root", type=click.Path(path_type=Path), default=DEFAULT_ROOT, show_default=True,
                    help="Results root folder.")
SWEEP = click.argument("sweep", required=False)


def _friendly(fn):
    """Turn HarnessError into a one-line message and exit status 2."""

    @wraps(fn)
    def inner(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except HarnessError as exc:
            click.echo(f"error: {exc}", err=True)
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
    """Expand SWEEP_FILE into jobs, write the plan under ROOT/<name>/ and make it the current sweep."""
    from harness.store import write_plan
    from harness.sweep.expand import expand as expand_jobs
    from harness.sweep.expand import flat_row
    from harness.sweep.plan import describe
    from harness.sweep.spec import load_sweep

    sweep = load_sweep(sweep_file)
    jobs = expand_jobs(sweep, force=force)
    folder = write_plan(root, sweep.name, sweep.raw, str(sweep_file), jobs, [flat_row(j) for j in jobs])
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
@click.option("--backend", type=click.Choice(["local", "slurm"]), default="local", show_default=True)
@click.option("--workers", type=int, default=None, help="CPU worker processes (local; default cores/2).")
@click.option("--jobs-per-gpu", type=int, default=None, help="Jobs sharing one GPU (default 1).")
@click.option("--retry-failed", is_flag=True, help="Also rerun diverged jobs.")
@click.option("--only", type=click.Choice(["pretrain", "finetune", "scratch", "zeroshot"]), default=None)
@click.option("--dry-run", is_flag=True, help="List what would run, run nothing.")
@click.option("-v", "--verbose", is_flag=True, help="Stream each job's evaluations (local).")
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
def submit(sweep: str | None, root: Path, backend: str, workers: int | None, jobs_per_gpu: int | None,
           retry_failed: bool, only: str | None, dry_run: bool, verbose: bool, **slurm_flags: object) -> None:
    """Run the jobs of SWEEP (default: the current sweep) that have no ok result yet."""
    from harness.backends import select_jobs

    folder = resolve_sweep(root, sweep)
    jobs = load_plan(folder)
    if backend == "slurm":
        from harness.backends.slurm import SlurmResources, select_to_submit
        from harness.backends.slurm import submit as slurm_submit

        block = json.loads((folder / "plan.json").read_text())["spec"].get("slurm") or {}
        resources = SlurmResources.from_dict({**block, **slurm_flags, "jobs_per_gpu": jobs_per_gpu})
        todo = select_to_submit(jobs, folder, retry_failed=retry_failed, only=only)
    else:
        todo = select_jobs(jobs, folder, retry_failed=retry_failed, only=only)
    counts = Counter(j["stage"] for j in todo)
    click.echo(f"{folder.name}: {len(todo)} of {len(jobs)} jobs to run "
               f"({', '.join(f'{s} {n}' for s, n in counts.items()) or 'nothing to do'})")
    if dry_run or not todo:
        for job in todo if dry_run else []:
            click.echo(f"  {job['id']}  {job['stage']:9s} depends on {job['depends_on'] or '-'}")
        return
    if backend == "slurm":
        click.echo(f"{folder.name}: {slurm_submit(todo, root, resources)}")
        click.echo("queued; follow it with `harness status`, stop it with `harness cancel`")
        return
    from harness.backends.local import plan_slots, run_local, visible_gpus

    slots = plan_slots(workers=workers, jobs_per_gpu=jobs_per_gpu or 1, gpus=visible_gpus())
    final = run_local(todo, jobs, root, slots=slots, verbose=verbose)
    from harness.store import collect

    collect(folder)
    tally = Counter(final.values())
    click.echo(f"{folder.name}: " + ", ".join(f"{n} {s}" for s, n in sorted(tally.items())))
    click.echo(f"results: {folder / 'results.parquet'} (one row per job; next: harness status, harness report)")


@main.command()
@SWEEP
@ROOT
@_friendly
def status(sweep: str | None, root: Path) -> None:
    """Counts per stage and state, and the failed jobs with the last line of their error."""
    from harness.status import status_table

    folder = resolve_sweep(root, sweep)
    queue = None
    if (folder / "slurm" / "submitted.json").is_file():  # one sacct call merged with the run folders
        from harness.backends.slurm_state import query

        queue = query(folder)
    click.echo(status_table(folder, queue))


@main.command()
@SWEEP
@ROOT
@_friendly
def cancel(sweep: str | None, root: Path) -> None:
    """Cancel the queued and running Slurm jobs of SWEEP (default: the current sweep)."""
    from harness.backends.slurm import cancel as slurm_cancel

    folder = resolve_sweep(root, sweep)
    click.echo(f"{folder.name}: cancelled {slurm_cancel(folder)} Slurm job(s)")


@main.command()
@SWEEP
@ROOT
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Report folder (default <sweep>/report).")
@click.option("--n-boot", type=int, default=1000, show_default=True, help="Bootstrap resamples per fit.")
@click.option("--seed", type=int, default=0, show_default=True, help="Bootstrap seed.")
@_friendly
def report(sweep: str | None, root: Path, out: Path | None, n_boot: int, seed: int) -> None:
    """Fit power laws and write the figures, fits table, report.html and report.md of SWEEP."""
    from analysis.report import build_report

    result = build_report(resolve_sweep(root, sweep), out, n_boot=n_boot, seed=seed)
    counts = ", ".join(f"{n} {state}" for state, n in result.counts.items() if n)
    click.echo(f"{result.out_dir.parent.name}: {counts}")
    for name, why in {**result.skipped, **result.tables_skipped}.items():
        click.echo(f"  skipped {name}: {why}")
    click.echo(f"figures: {', '.join(str(p) for p in result.figures.values())}")
    for name, path in result.tables.items():
        click.echo(f"table:   {path} ({name})")
    click.echo(f"fits:    {result.fits_parquet} (+ .csv)")
    click.echo(f"report:  {result.html}\n         {result.markdown}")


@main.command("tune-status")
@SWEEP
@ROOT
@_friendly
def tune_status(sweep: str | None, root: Path) -> None:
    """Per optuna study of a tuned sweep: trials by state, best validation value and parameters."""
    from harness.tune import study_summaries

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
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Output .npz file.")
@_friendly
def data(system: str, n: int, shift: str | None, resolution: int | None, nt: int | None, seed: int,
         out: Path) -> None:
    """Generate one PDE dataset (steady, or trajectories of heat, advection, burgers, mixed_time) and write
    it to an .npz file for inspection."""
    from harness import pde

    grid = {} if resolution is None else {"resolution": resolution}
    if system in (*pde.TIME_SYSTEMS, pde.TIME_MIXED):
        result = pde.generate_time(system, n, shift=shift, seed=seed, **grid, **({} if nt is None else {"nt": nt}))
        what = f"trajectories of {result.u.shape[1]} frames"
    elif nt is not None:
        raise HarnessError(f"--nt applies to the time-dependent systems ({', '.join(pde.TIME_SYSTEMS)}, "
                           f"{pde.TIME_MIXED}), not to {system!r}: drop --nt")
    else:
        result = pde.generate(system, n, shift=shift, seed=seed, **grid)
        what = "samples"
    pde.save(result, out)
    size = result.meta["resolution"]
    click.echo(f"wrote {out}: {n} {system} {what} at {size}x{size}")


if __name__ == "__main__":
    main()
