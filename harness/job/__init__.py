"""The torch-free rules of a job: what a job is and holds, shared by the sweep, the backends, the store and the run.

- the job record (``harness.job.record``): ``Job`` (id, stage, sweep, dependency, matrix point, ranks, stream
  settings, config) and its ``JobConfig`` with its parts (``Model``, ``Pretrain``, ``Downstream``, ``Forecast``,
  ``Trial``), typed and frozen; a sweep point's resolved config (``Point``, whose defaults are the sweep's);
- the train settings (``TrainConfig``, for `train` and `pretrain.train`) and stream settings (``StreamConfig``),
  every value and every constraint between them checked on construction (``harness.job.train_settings``);
- which jobs may train as one fused program (``shape_key``, ``harness.job.fusable``).

    job.config.train.lr          a downstream job's learning rate
    job.part.n_train             the training-set size of the part the job trains on (pretrain or downstream)
    Job.from_dict(d), job.to_dict()   plan.json's dicts, byte for byte

The rest of the package runs a job: ``harness.job.run.run_job`` (the one entry point a backend calls), the
process settings of a job (``process``), its provenance (``provenance``), an optuna trial at run time
(``trial``), a trained model's predictions (``predict``), the test hooks (``hooks``) and what a job costs on
a device (``calibration``).
"""

from harness.job.fusable import shape_key
from harness.job.record import (
    ConfigError,
    Downstream,
    Forecast,
    Job,
    JobConfig,
    Model,
    Pack,
    Point,
    Pretrain,
    Resources,
    Shift,
    Trial,
)
from harness.job.train_settings import (
    AUGMENTS,
    CHOICES,
    EVALS,
    LOSSES,
    STEADY_AUGMENTS,
    STREAM_MODES,
    Budget,
    StreamConfig,
    TrainConfig,
)

__all__ = ["AUGMENTS", "CHOICES", "EVALS", "LOSSES", "STEADY_AUGMENTS", "STREAM_MODES", "Budget", "ConfigError",
           "Downstream", "Forecast", "Job", "JobConfig", "Model", "Pack", "Point", "Pretrain", "Resources", "Shift",
           "StreamConfig", "TrainConfig", "Trial", "shape_key"]
