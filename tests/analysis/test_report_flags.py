"""The flags the report puts beside its numbers: which variance the intervals include, hyperparameters chosen at
the edge of their search space, small validation sets, fine-tunings that never left the loaded weights, fits with
too few distinct N, and multipliers that rest on a fitted floor near their target."""

import json

import numpy as np
import pandas as pd

from analysis.curves import fit_curves
from analysis.multipliers import floor_note, small_n_multipliers
from analysis.powerlaw import fit
from analysis.protocol import edge_points, per_n_table, protocol_lines, validation_sizes, variance_line
from analysis.synthetic import synthetic_runs

SPEC = {"params": {"train.lr": {"kind": "grid", "values": [1e-3, 3e-3, 1e-2]},
                   "train.weight_decay": {"kind": "log_uniform", "low": 1e-6, "high": 1e-2}}}  # fmt: skip


def _down(**columns) -> pd.DataFrame:
    base = {"stage": ["finetune", "finetune", "scratch", "scratch"], "downstream.system": "poisson",
            "downstream.shift": "id", "model.width": 16, "model.modes": 8, "downstream.n_train": [8, 8, 8, 8],
            "seed": [0, 1, 0, 1]}  # fmt: skip
    return pd.DataFrame(base | columns)


def test_the_variance_the_intervals_include_is_read_from_data_seed() -> None:
    follows = variance_line(_down(data_seed=[0, 1, 0, 1]))
    assert follows.startswith("Variance over seeds: of 2 curve points with several seeds, 2 vary the data draw")
    fixed = variance_line(_down(data_seed=[0, 0, 0, 0]))
    assert "2 vary the initialisation alone (data_seed fixed: their intervals hold the data draw fixed)" in fixed
    mixed = variance_line(_down(data_seed=[0, 1, 0, 0]))
    assert "1 vary the data draw" in mixed and "1 vary the initialisation alone" in mixed
    assert variance_line(_down()) == "Variance over seeds: unknown (the runs do not record data_seed)."
    assert "single seed" in variance_line(_down(seed=[0, 0, 0, 0], data_seed=[0, 0, 0, 0]).iloc[[0, 2]])


def test_tuned_values_at_the_edge_of_their_space_are_found_and_counted() -> None:
    chosen = [{"train.lr": 1e-2, "train.weight_decay": 1e-4}, {"train.lr": 3e-3, "train.weight_decay": 1.2e-6},
              {"train.lr": 1e-3, "train.weight_decay": 9e-3}, {"train.lr": 1e-2, "train.weight_decay": 1e-4}]
    runs = _down(id=list("abcd"), **{"tune.spec": json.dumps(SPEC), "tune.params": [json.dumps(c) for c in chosen]})
    points = edge_points(runs)
    lr = points[points["param"] == "train.lr"].set_index("id")["edge"]
    assert lr.to_dict() == {"a": "upper", "b": "", "c": "lower", "d": "upper"}
    decay = points[points["param"] == "train.weight_decay"].set_index("id")["edge"]
    assert decay.to_dict() == {"a": "", "b": "lower", "c": "upper", "d": ""}  # within 5 % of the log range
    lines = protocol_lines(runs, None)
    assert ("Tuned train.lr (scratch): chosen at the lower end of its search space (0.001) at 1 and at the upper "
            "end (0.01) at 1 of 2 tuned points") in " ".join(lines)  # fmt: skip
    assert edge_points(_down()).empty


def test_small_validation_sets_and_fine_tunings_stuck_at_step_0_are_counted() -> None:
    runs = _down(**{"downstream.n_val": [16, 16, 128, 128], "best_step": [0, 40, 0, 900]})
    assert validation_sizes(runs).startswith("Validation set sizes: 16 to 128 samples; 2 of 4 runs validated on "
                                             "fewer than 64")  # fmt: skip
    assert per_n_table(runs)["fine-tuned best at step 0"].tolist() == ["1 of 2"]  # scratch's step 0 is not counted


def test_fits_with_few_distinct_n_are_flagged_beside_their_numbers() -> None:
    runs = synthetic_runs(shifts=("id",), sizes=((16, 4),), n_trains=(8, 32, 128, 512), seeds=(0, 1), zeroshot=False)
    table = fit_curves(runs, n_boot=50).table
    assert table["few_n"].all() and table["offset"].all()  # 3 parameters from 4 distinct N
    assert table["ci"].str.contains("3 parameters from 4 distinct N").all() and (table["ci_df"] == 5).all()
    more = synthetic_runs(shifts=("id",), sizes=((16, 4),), n_trains=(8, 32, 128, 512, 2048), seeds=(0, 1),
                          zeroshot=False)  # fmt: skip
    table = fit_curves(more, n_boot=50).table
    assert not table["few_n"].any() and table["ci"].str.startswith("95 % (residual bootstrap").all()


def test_a_multiplier_resting_on_a_floor_near_its_target_is_flagged() -> None:
    n = np.repeat([8.0, 32, 128, 512, 2048], 3)
    scratch = fit(n, (2 * n**-0.5 + 0.03) * np.exp(np.random.default_rng(0).normal(0, 0.05, n.size)), n_boot=300,
                  groups=np.tile([0, 1, 2], 5))  # fmt: skip
    assert scratch.c_ci[0] < 0.03 < scratch.c_ci[1]
    target = 0.99 * scratch.c_ci[1]  # the floor's interval reaches the target
    near = floor_note(scratch, target, "scratch")
    assert near == (f"rests on the scratch fit's floor c = {scratch.c:.3g} (interval up to {scratch.c_ci[1]:.3g}) "
                    f"near the target {target:.3g}")  # fmt: skip
    assert floor_note(scratch, 0.2, "scratch") == ""  # far above the floor's interval
    runs = synthetic_runs(shifts=("id",), sizes=((16, 4),), n_trains=(8, 32, 128, 512, 2048), seeds=(0, 1, 2))
    table = small_n_multipliers(runs, fit_curves(runs, n_boot=100), n_boot=100)
    assert {"floor_near_target", "note", "interp_ci", "fit_ci"} <= set(table.columns)
    assert not table["floor_near_target"].any()  # fine-tuned errors at small N lie far above the floor 0.01
