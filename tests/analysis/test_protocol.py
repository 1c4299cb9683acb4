"""The protocol stated from summary rows: validation rule (fixed or fraction with floor) and training length."""

import numpy as np
import pandas as pd

from analysis.protocol import budget_limited_runs, length_rule, protocol_lines, validation_rule


def _rows(**columns) -> pd.DataFrame:
    base = {"stage": ["finetune", "scratch", "finetune"], "downstream.n_train": [8, 8, 512]}
    return pd.DataFrame(base | columns)


def test_validation_rule_names_the_fraction_and_floor_or_the_fixed_count() -> None:
    fraction = _rows(**{"downstream.n_val_fraction": [0.5] * 3, "downstream.n_val_min": [32] * 3,
                        "downstream.n_val": [32, 32, 256]})  # fmt: skip
    rule = "n_val = max(n_val_min, ceil(f n_train)) with f = 0.5 and n_val_min = 32"
    assert validation_rule(fraction).startswith(rule)
    fixed = _rows(**{"downstream.n_val_fraction": [0.0] * 3, "downstream.n_val": [128] * 3})
    assert validation_rule(fixed) == "fixed n_val = 128 samples (downstream.n_val)"
    assert validation_rule(_rows(**{"downstream.n_val": [128] * 3})) == validation_rule(fixed)  # no column: fixed
    mixed = _rows(**{"downstream.n_val_fraction": [0.5, 0.0, 0.0], "downstream.n_val_min": [32, np.nan, np.nan],
                     "downstream.n_val": [32, 128, 128]})  # fmt: skip
    assert validation_rule(mixed).count(";") == 2 and "fixed n_val = 128" in validation_rule(mixed)


def test_length_rule_reads_steps_then_epochs_with_their_floor() -> None:
    steps = _rows(**{"train.steps": [2000] * 3, "train.epochs": [40] * 3})
    assert length_rule(steps, "train").startswith("a budget of 2000 optimiser steps (train.steps")
    floor = _rows(**{"train.steps": [0] * 3, "train.epochs": [40] * 3, "train.min_steps": [500] * 3})
    assert length_rule(floor, "train") == "40 epochs (train.epochs), at least 500 optimiser steps (train.min_steps)"
    assert length_rule(_rows(**{"train.epochs": [40] * 3}), "train") == "40 epochs (train.epochs)"


def test_protocol_lines_quote_the_sweep_file_and_budget_limited_needs_the_column() -> None:
    rows = _rows(**{"train.steps": [2000] * 3, "downstream.n_val": [128] * 3})
    spec = {"base": {"train": {"steps": 2000, "lr": 1e-3}, "downstream": {"n_val": 128}},
            "matrix": {"downstream.n_train": [8, 512]}}  # fmt: skip
    lines = protocol_lines(rows, spec)
    assert lines[-1] == "As the sweep file writes them: base train.steps: 2000; base downstream.n_val: 128."
    zipped = protocol_lines(rows, spec | {"zip": [{"train.min_steps": [500, 0], "downstream.n_train": [8, 512]}]})
    assert zipped[-1].endswith("base downstream.n_val: 128; zip train.min_steps: [500, 0].")
    table, note = budget_limited_runs(rows)
    assert table is None and "budget limited them is unknown" in note
    flagged, note = budget_limited_runs(rows.assign(id=["a", "b", "c"], budget_limited=[False, True, None]))
    assert list(flagged["id"]) == ["b"] and note == "; 1 runs do not record it"
