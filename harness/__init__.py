"""harness: a scaling-law study harness for neural operators on PDEs.

    import harness
    plan = harness.expand("sweeps/smoke.yaml", root="results")   # YAML sweep -> jobs with stable ids, plan.json
    run = harness.submit(plan, backend="local", workers=2)       # run them; run.states: how each ended
    harness.status(plan).states                                   # job id -> state
    harness.report(plan)                                          # fits, figures, report.html
    frame = harness.results(plan)                                 # one row per job (pandas)
    harness.export(job_id, "exported/fno")                        # a trained job as a self-contained folder
    model = harness.load_model("exported/fno")                    # ... a module on physical units
    harness.evaluate(job_id, "poisson:moderate")                  # its test error on another source or grid

The functions are ``harness.api``'s (the `harness` command calls the same); a job is ``harness.job.Job``. Nothing
heavy loads until a function is called.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["evaluate", "expand", "export", "load_model", "results", "report", "status", "submit"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from harness import api

        return getattr(api, name)
    raise AttributeError(f"module 'harness' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
