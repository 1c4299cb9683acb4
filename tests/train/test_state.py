"""The run's records (harness.train.state): last.pt's `loop` entry, in the format that running sweeps' files hold."""

import signal

import pytest
import torch

from harness.job import TrainConfig
from harness.train.checkpoint import load, save_atomic
from harness.train.loop import train
from tests.train.test_train import FAST, TRAIN, VAL, Killed, assert_same_weights, fresh_model, run, without_seconds

torch.set_num_threads(1)

# last.pt's `loop` entry as the loop wrote it before its state was a LoopState (up to commit 5543f7f): a plain dict
# of these keys and types. Job folders of running sweeps hold such files.
PLAIN_LOOP = {"step": int, "order": torch.Tensor, "pos": int, "loss_sum": float, "loss_count": int, "best_val": float,
              "best_step": int, "best_model": dict, "stale": int, "rows": list, "status": str, "error": str,
              "done": bool}


def test_a_last_pt_with_a_plain_dict_loop_resumes_bit_identically(tmp_path):
    model_full, result_full = run(tmp_path, "full")

    def killed(signum, frame):  # stands for the job's end, as the default SIGTERM action would be
        raise Killed

    def stop_after_step_9(row):  # held until the next step boundary, 10: mid-interval, a partial loss sum
        if row["step"] == 9:
            signal.raise_signal(signal.SIGTERM)

    previous = signal.signal(signal.SIGTERM, killed)
    try:
        with pytest.raises(Killed):
            train(fresh_model(), TRAIN, VAL, TrainConfig.from_dict({**FAST, "checkpoint_every_s": 1e9}), seed=0,
                  device="cpu", workdir=tmp_path / "plain", on_eval=stop_after_step_9)
    finally:
        signal.signal(signal.SIGTERM, previous)
    written = load(tmp_path / "plain" / "last.pt")
    assert (written["loop"]["step"], written["loop"]["loss_count"]) == (10, 16)
    # the file as the earlier loop wrote it: identity, model, optimiser, generator, and the loop as a plain dict
    loop = {key: written["loop"][key].cpu() if kind is torch.Tensor else kind(written["loop"][key])
            for key, kind in PLAIN_LOOP.items()}
    assert loop["loss_sum"] > 0 and loop["best_model"] is not None
    earlier = {key: written[key] for key in ("config", "seed", "n_train", "model", "optimizer", "generator")}
    save_atomic({**earlier, "loop": loop}, tmp_path / "plain" / "last.pt")
    resumed_rows = []
    model_resumed = fresh_model(seed=99)  # init is overwritten by the checkpoint
    result_resumed = train(model_resumed, TRAIN, VAL, TrainConfig.from_dict(FAST), seed=0, device="cpu",
                           workdir=tmp_path / "plain", on_eval=resumed_rows.append)
    assert [r["step"] for r in resumed_rows] == [12, 15, 18, 21, 24]
    assert_same_weights(model_full, model_resumed)
    assert without_seconds(result_full.rows) == without_seconds(result_resumed.rows)
    assert (result_full.best_val_rel_l2, result_full.best_step) == (result_resumed.best_val_rel_l2,
                                                                      result_resumed.best_step)
