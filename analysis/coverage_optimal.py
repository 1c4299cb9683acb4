"""How often the intervals of the compute-optimal allocation P*(C), N*(C) cover the truth, on synthetic sweeps with a
known joint law and compute model.

    python -m analysis.coverage_optimal                  # the full study: 2 seed counts x 3 computes, 200 draws
    python -m analysis.coverage_optimal --draws 50 --n-boot 400

Each draw is one sweep: err = E + A P^-a + B N^-b (``analysis.synthetic.JOINT_SCRATCH``) at the 4 model sizes of
``analysis.synthetic.JOINT_SIZES`` (17k to 1.1M parameters) and 5 N (8 to 2048) for every seed, times log-normal
noise per run; each run's compute is C = KAPPA P^GAMMA N (the FNO's FLOPs at a budget in epochs grow about as
P^0.5 N). The joint law is fitted by ``analysis.transfer.fit_joint`` with the seeds as groups, the compute model by
``analysis.compute.fit_compute_model`` to the runs' compute, and the allocation read by ``analysis.optimal`` at three
computes whose true P* lies inside the sampled sizes. A cell reports the share of draws whose interval held the
true P*, N* and err* and the exponent of P* ~ C^p, the median interval width (hi / lo of P*), the median relative
error of the point estimate of P*, and what the analysis called the interval.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence

import numpy as np
import pandas as pd

from analysis.compute import fit_compute_model
from analysis.coverage import parse_args, print_coverage
from analysis.intervals import interval
from analysis.optimal import exponents, optimum
from analysis.synthetic import JOINT_SCRATCH, JOINT_SIZES
from analysis.transfer import fit_joint
from harness.models import count_params

KAPPA, GAMMA = 1.4e6, 0.5  # C = KAPPA P^GAMMA N: near the FNO's FLOPs at 20 epochs (analysis.synthetic.joint_runs)
N_DESIGN = (8, 32, 128, 512, 2048)
NOISE = 0.05
SEEDS = (1, 3)
P_TARGETS = (0.1, 0.5, 0.9)  # the true P* of the three computes: these fractions of the way across log P


def design() -> tuple[np.ndarray, np.ndarray]:
    """The (P, N) of every run of one seed: the real parameter counts of JOINT_SIZES times N_DESIGN."""
    sizes = np.array([count_params(w, m) for w, m in JOINT_SIZES], dtype=float)
    p, n = np.meshgrid(sizes, np.asarray(N_DESIGN, dtype=float), indexing="ij")
    return p.ravel(), n.ravel()


def truth() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float]:
    """The computes of the study and, at each, the true P*, N*, err* (closed form), and the true exponent of P*."""
    e, a_coef, a, b_coef, b = JOINT_SCRATCH
    p, _ = design()
    d = a + GAMMA * b  # sigma = 1
    k = (a * a_coef / (GAMMA * b * b_coef)) ** (1 / d)
    p_star = np.exp(np.log(p.min()) + np.asarray(P_TARGETS) * np.log(p.max() / p.min()))
    c = KAPPA * (p_star / k) ** (d / b)
    n_star = c / (KAPPA * p_star**GAMMA)
    return c, p_star, n_star, JOINT_SCRATCH.err(p_star, n_star), b / d


def coverage_cell(seeds: int, *, draws: int = 200, n_boot: int = 1000, noise: float = NOISE,
                  rng_seed: int = 0) -> pd.DataFrame:  # fmt: skip
    """One row per compute of the study: coverage of P*, N*, err* and of the exponent of P* over ``draws`` sweeps
    of ``seeds`` seeds, the median width hi / lo of P*'s interval, the median relative error of P*, the label."""
    p1, n1 = design()
    p, n = np.tile(p1, seeds), np.tile(n1, seeds)
    groups = np.repeat(np.arange(seeds), len(p1))
    c, p_star, n_star, e_star, p_exp = truth()
    hits, widths, errors, labels = np.zeros((4, len(c))), [], [], set()
    for draw in range(draws):
        rng = np.random.default_rng([rng_seed, seeds, draw])
        err = JOINT_SCRATCH.err(p, n) * np.exp(rng.normal(0.0, noise, p.size))
        law = fit_joint(p, n, err, n_boot=n_boot, seed=draw, groups=groups)
        own = fit_compute_model(p, KAPPA * p**GAMMA * n, n)
        point = optimum(law.values[None, :], own, None, c, (p.min(), p.max()))
        boot = optimum(law.boot, own, None, c, (p.min(), p.max()))
        for i, true in enumerate((p_star, n_star, e_star)):
            ci = np.array([interval(boot[i][:, j], law.basis) for j in range(len(c))])
            hits[i] += (ci[:, 0] <= true) & (true <= ci[:, 1])
            if i == 0:
                widths.append(ci[:, 1] / ci[:, 0])
                errors.append(np.abs(point[0][0] / true - 1))
        lo, hi = interval(exponents(law.boot, own)[:, 0], law.basis)
        hits[3] += lo <= p_exp <= hi
        labels.add((law.basis.label, law.basis.valid))
    (label, valid), *others = labels
    assert not others, labels  # the basis is a function of the design
    return pd.DataFrame({"seeds": seeds, "draws": draws, "compute": c, "true P*": p_star, "P* covered": hits[0] / draws,
                         "N* covered": hits[1] / draws, "err* covered": hits[2] / draws,
                         "exponent covered": hits[3] / draws, "P* width (hi/lo)": np.median(widths, axis=0),
                         "P* error": np.median(errors, axis=0), "95 %": valid, "interval": label})  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    """Print the coverage table; exit status 1 when a cell labelled 95 % covers P* less than TARGET."""
    args = parse_args(argv, __doc__.splitlines()[0], SEEDS)
    if args.draws < 1 or args.n_boot < 2 or min(args.seeds) < 1:
        seeds = " ".join(map(str, args.seeds))
        print(f"coverage_optimal: --draws {args.draws}, --n-boot {args.n_boot}, --seeds {seeds}: use --draws >= 1, "
              "--n-boot >= 2 and --seeds >= 1", file=sys.stderr)  # fmt: skip
        return 2
    start = time.perf_counter()
    table = pd.concat([coverage_cell(s, draws=args.draws, n_boot=args.n_boot) for s in args.seeds], ignore_index=True)
    percent = ["P* covered", "N* covered", "err* covered", "exponent covered", "P* error"]
    shown = table.assign(**{c: table[c].map("{:.1%}".format) for c in percent},
                         **{c: table[c].map("{:.3g}".format) for c in ("compute", "true P*", "P* width (hi/lo)")})
    return print_coverage(table, shown, "P* covered", "P* ", args, start)


if __name__ == "__main__":
    raise SystemExit(main())
