"""The plan is the sweep file's: `harness submit SWEEP.yaml` checks that the file still expands to the plan on disk.

An edited sweep file whose jobs differ from its ``plan.json`` is refused with the ids that changed (or, with
``--reexpand``, written as the new plan). Runs of ids no longer in the plan stay on disk as *stale* runs:
excluded from results.parquet, status and the report, and removed by ``harness gc --stale`` (``harness.store.stale``).
"""

from __future__ import annotations

from pathlib import Path

from harness.errors import SweepError
from harness.job import Job
from harness.store.folders import read_plan, sweep_dir, write_plan

SHOWN = 3  # ids quoted per kind of change


def plan_changes(old: list[Job], new: list[Job]) -> tuple[list[str], list[str]]:
    """(ids the new plan adds, ids it drops), in plan order."""
    old_ids, new_ids = {j.id for j in old}, {j.id for j in new}
    return [j.id for j in new if j.id not in old_ids], [j.id for j in old if j.id not in new_ids]


def describe_changes(added: list[str], dropped: list[str]) -> str:
    """'2 new jobs (ft-..., ...), 1 gone (sc-...)' for a message."""
    def some(ids: list[str]) -> str:
        return ", ".join(ids[:SHOWN]) + (", ..." if len(ids) > SHOWN else "")

    parts = [f"{len(added)} new job(s) ({some(added)})" if added else "",
             f"{len(dropped)} job(s) no longer in it ({some(dropped)})" if dropped else ""]
    return "; ".join(p for p in parts if p)


def sweep_folder_of_file(root: Path, sweep_file: str | Path, *, reexpand: bool) -> tuple[Path, str]:
    """The sweep folder for submitting ``sweep_file``, after checking the file still gives its plan; returns
    (folder, a note to print, "" when the plan stood). A missing plan is written (the file is expanded); a plan
    the file no longer gives raises ``SweepError`` naming the changed ids, unless ``reexpand`` rewrites it."""
    from harness.pde.cache import data_cache
    from harness.sweep.expand import expand
    from harness.sweep.spec import load_sweep

    sweep = load_sweep(sweep_file)
    folder = sweep_dir(root, sweep.name)
    plan = read_plan(folder, missing_ok=True)
    jobs = expand(sweep, cache_dir=str(data_cache(root)))
    if plan is not None:
        added, dropped = plan_changes(plan.jobs, jobs)
        if not added and not dropped and plan.spec == sweep.raw:
            return folder, ""
        if (added or dropped) and not reexpand:
            raise SweepError(f"{sweep_file} no longer matches its plan {folder / 'plan.json'}: "
                             f"{describe_changes(added, dropped)}; run `harness expand {sweep_file}` or submit "
                             "with --reexpand (runs not in the new plan are kept on disk as stale)")
        note = f"re-expanded {sweep_file}: {describe_changes(added, dropped) or 'same jobs, settings updated'}"
    else:
        note = f"expanded {sweep_file}: {len(jobs)} jobs"
    write_plan(root, sweep.name, sweep.raw, str(sweep_file), jobs)
    return folder, note
