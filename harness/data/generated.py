"""Generated samples of a steady system, or trajectories of a time-dependent one, written to a file a user can
inspect (.npz) or a sweep can read (.h5 in one of the data-file layouts): `harness data`'s work."""

from __future__ import annotations

from pathlib import Path

from harness.errors import HarnessError


def write_dataset(system: str, n: int, out: Path, *, shift: str | None, resolution: int | None, nt: int | None,
                  seed: int, fmt: str | None, force: bool) -> str:
    """Generate ``n`` samples (trajectories) of ``system`` and write them to ``out`` (a new file, or with ``force``
    one to overwrite) in the layout ``fmt``; returns the line that says what was written."""
    from harness import pde
    from harness.pde.cache import save
    from harness.pde.steady_dataset import generate
    from harness.pde.time_dataset import generate_time
    from harness.store.outputs import new_file

    time = system in (*pde.ALL_TIME_SYSTEMS, pde.TIME_MIXED)
    if nt is not None and not time:
        raise HarnessError(f"--nt applies to the time-dependent systems ({', '.join(pde.ALL_TIME_SYSTEMS)}, "
                           f"{pde.TIME_MIXED}), not to {system!r}: drop --nt")
    out = new_file(out, (".npz", ".h5", ".hdf5"), force, "harness data")
    grid = {} if resolution is None else {"resolution": resolution}
    if time:
        result = generate_time(system, n, shift=shift, seed=seed, **grid, **({} if nt is None else {"nt": nt}))
        what = f"trajectories of {result.u.shape[1]} frames"
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
            write_pretraining_pdes(out, result.u, result.coef_common, result.t, channels=pde.model_coefs(system))
        what = f"{what} ({fmt})"
    else:
        save(result, out)
    size = result.meta["resolution"]
    return f"{out}: {n} {system} {what} at {size}x{size}"
