"""``harness export``: a finished job's model as a self-contained folder (the layout: ``harness.portable``).

Every refusal comes before anything is written: an unknown job, a job that did not end ok, a pretext pretraining
(its head predicts no solution), an ``--out`` that exists (without ``force``) or whose parent folder does not. The
folder is written beside ``out`` under a temporary name and renamed into place, so a partial export never
stands at ``out``.
"""

from __future__ import annotations

import json
import math
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from harness import __version__
from harness.data.fingerprint import fingerprint
from harness.errors import HarnessError
from harness.job import Job
from harness.job.run import data_cache, data_seed
from harness.job.trained import Trained, ended_ok, objective_of, trained
from harness.models import arch_of, family, sizes_of
from harness.portable import CARD, CONFIG, DATA, FORMAT_VERSION, METRICS, STATS, WEIGHTS
from harness.store.atomic import write_text_atomic
from harness.store.folders import EVAL_ROWS, Plan, run_dir
from harness.tasks.make import make_task
from harness.tasks.trajectories import Trajectories


def check_out(out: Path, force: bool) -> None:
    """``--out``: a new folder in a folder that exists, or with ``force`` an earlier export (a folder holding its
    weights and config) or an empty folder: never anything else, so that a mistyped ``--out`` (``.``, the results
    folder) cannot delete what it holds."""
    if not out.parent.is_dir():
        raise HarnessError(f"--out {out}: folder {out.parent} does not exist: create it first (--out makes no "
                           "folders but the export's own)")
    if not (out.exists() or out.is_symlink()):
        return
    if not force:
        raise HarnessError(f"--out {out} exists: pass --force to replace it, or name a new folder")
    export = out.is_dir() and not out.is_symlink() and (
        not any(out.iterdir()) or ((out / WEIGHTS).is_file() and (out / CONFIG).is_file()))
    if not export:
        raise HarnessError(f"--out {out} is not an earlier export (no {WEIGHTS} and {CONFIG} in it): --force "
                           "replaces only an export or an empty folder; name a new folder")


def export_job(plan: Plan, job: Job, out: Path, *, force: bool = False, command: str = "") -> Path:
    """Write ``job``'s trained model and what it needs into the folder ``out`` (module docstring); ``command``
    is the command line that asked for it (for the model card). Returns ``out``."""
    root = plan.folder.parent
    check_out(out, force)
    summary = ended_ok(job, root, "harness export")
    objective_of(job, make_task(job.config))  # refuses a pretext pretraining before any data is loaded
    model = trained(job, root)
    files = {CONFIG: config_of(model), STATS: {"normalise": model.normalise, **model.stats},
             DATA: data_of(job, root), METRICS: {"summary": plain(summary), "eval": eval_rows(plan.folder, job)}}
    with tempfile.TemporaryDirectory(prefix=f".{out.name}.", dir=out.parent) as tmp:
        staging = Path(tmp) / "export"
        staging.mkdir()
        from safetensors.torch import save_file

        weights = {k: v.detach().cpu().contiguous() for k, v in model.model.state_dict().items()}
        save_file(weights, str(staging / WEIGHTS), metadata={"job_id": job.id, "sweep": job.sweep})
        for name, content in files.items():
            write_text_atomic(staging / name, json.dumps(content, indent=1, sort_keys=True) + "\n")
        write_text_atomic(staging / CARD, model_card(plan, job, files, command))
        if out.is_dir():
            shutil.rmtree(out)  # an earlier export or an empty folder (check_out)
        staging.rename(out)
    return out


def config_of(model: Trained) -> dict[str, Any]:
    """config.json: what ``harness.load_model`` builds the network from, and the job it came from."""
    job, net, cfg = model.job, model.model, model.job.config
    out = {"export_format": FORMAT_VERSION, "harness_version": __version__, "job_id": job.id, "sweep": job.sweep,
           "stage": str(job.stage), "task": cfg.task, "model": {"arch": arch_of(cfg.model), **sizes_of(cfg.model)},
           "in_channels": net.in_channels, "out_channels": net.out_channels, "resolution": cfg.resolution,
           "n_params": net.num_params(), "coefficient_channels": list(model.channels), "job": job.to_dict()}
    if isinstance(model.objective, Trajectories):
        out["time_window"] = model.objective.window
    return out


def data_of(job: Job, root: Path) -> dict[str, Any]:
    """data.json: the part the job learnt from, its data seed, and the fingerprint of each split's data (a data
    file's from its spec; generated data's, of the cache file each split was read from)."""
    part, cfg = job.part, job.config
    out: dict[str, Any] = {"part": job.part_name, **plain(part.to_dict()), "data_seed": data_seed(job),
                           "resolution": cfg.resolution}
    out.pop("train", None), out.pop("resources", None)
    if part.data is not None:
        return {**out, "source": "file", "fingerprints": {"files": part.data.fingerprint}}
    cache, task = data_cache(root), make_task(cfg)
    sizes = {"train": part.n_train, "val": part.n_val, "test": part.n_test}
    fingerprints = {}
    for split, n in sizes.items():
        if n is None:
            continue
        path = task.cache_file(part, split, n, seed=data_seed(job), cache=cache)
        fingerprints[split] = fingerprint(path, cache_dir=cache) if path.exists() else None
    return {**out, "source": "generated", "fingerprints": fingerprints}



def eval_rows(sweep_folder: Path, job: Job) -> list[dict[str, Any]]:
    """The job's `harness eval` rows (its run folder's eval.parquet), [] when none."""
    path = run_dir(sweep_folder, job.id) / EVAL_ROWS
    return [plain(row) for row in pd.read_parquet(path).to_dict("records")] if path.is_file() else []


def plain(row: dict[str, Any]) -> dict[str, Any]:
    """A row as JSON values: numpy scalars as Python's, NaN and infinities as None."""
    out = {}
    for key, value in row.items():
        value = value.item() if hasattr(value, "item") else value
        out[key] = None if isinstance(value, float) and not math.isfinite(value) else value
    return out


def model_card(plan: Plan, job: Job, files: dict[str, Any], command: str) -> str:
    """README.md: what the model was trained on, how, how well, and the commands that made it."""
    config, data, summary = files[CONFIG], files[DATA], files[METRICS]["summary"]
    train = job.train
    sizes = ", ".join(f"{k} {v}" for k, v in sizes_of(job.config.model).items())
    where = f"file {data['data']['path']}" if data["source"] == "file" else f"generated, data seed {data['data_seed']}"
    inputs = ("the last time_window frames (n, W, R, R) and the coefficients (n, C)" if "time_window" in config
              else "the input fields (n, F, R, R) and the coefficients (n, C)")
    lines = [f"# {job.id}: {family(arch_of(job.config.model)).label} on {data['system']} ({config['task']})", "",
             f"A {config['stage']} job of sweep `{job.sweep}`, exported by harness {__version__}.", "",
             "## Trained on", "",
             f"- {data['system']}, shift {data['shift']}, {config['resolution']}x{config['resolution']} grid ({where})",
             f"- {data.get('n_train') or 0} training, {data['n_val']} validation, {data['n_test']} test samples",
             f"- fingerprints: {json.dumps(data['fingerprints'])}", "",
             "## How", "",
             f"- model: {config['model']['arch']} ({sizes}), {config['n_params']} parameters, "
             f"{config['in_channels']} input and {config['out_channels']} output channels",
             f"- coefficient channels: {', '.join(config['coefficient_channels']) or 'none'}",
             f"- training: {json.dumps(train.to_dict()) if train is not None else 'none (zero-shot)'}",
             f"- seed {job.config.seed}, pretraining {job.depends_on or 'none'}", "",
             "## How well", "",
             f"- test relative L2: {summary.get('test_rel_l2')}; best validation: {summary.get('best_val_rel_l2')}",
             *(f"- on {row['source']} at {row['resolution']}: {row['test_rel_l2']}" for row in files[METRICS]["eval"]),
             "", "## Use", "", "```python", "import harness",
             "model = harness.load_model(\"<this folder>\")",
             f"out = model(fields, coefficients)  # {inputs}, physical units", "```", "",
             "## Made by", "", f"- `harness expand {plan.source}` then `harness submit {job.sweep}` (job {job.id})"]
    if command:
        lines.append(f"- exported by `{command}`")
    return "\n".join(lines) + "\n"
