"""A point's model family at expand: its ``model`` group resolved into the job config's model.

The group names a family (``model.arch``, the FNO by default), any of its size keys and a parameter target
(``model.params``); ``harness.models.resolve_model`` resolves it -- the target by the parameter-target rule, for
the model of the point's task (``model_io``: its input and output channels) -- and refuses a family it does not
know, a size key of another family, sizes the family refuses, and sizes that do not fit the grid (a U-Net's
levels, an OFormer's patch, an FNO's modes). Every stage of the point then holds the same model: a fine-tuning or
zero-shot job always loads a pretraining of its own family and sizes on its own grid (a DeepONet is never asked
to evaluate off its sensor grid; data files must hold the point's ``resolution``, ``harness.data.parts``).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from harness.data.parts import model_channels
from harness.job import Model, Point
from harness.models import SizeError, resolve_model
from harness.pde import model_coefs
from harness.sweep.schema import Where
from harness.tasks import is_time, window_channels


def model_io(config: Point) -> tuple[int, int]:
    """(input, output) channels of the model a point's task trains downstream: a time task's window frames and
    its downstream system's coefficient channels (``harness.pde.model_coefs``) -> one frame; the steady task's,
    from its data files or generated."""
    if is_time(config):
        return window_channels(config.time_window, len(model_coefs(config.downstream.system))), 1
    return model_channels("downstream", config.downstream)


def resolve_family(point: dict[str, Any], config: Point, where: Where) -> Point:
    """``config`` of ``point`` with its ``model`` group resolved (``harness.models.resolve_model``); raises
    SweepError at the key to change."""
    ins, outs = model_io(config)
    try:
        model = resolve_model(config.model, resolution=config.resolution, in_channels=ins, out_channels=outs)
    except SizeError as exc:
        raise where.at_point(exc.key, point, str(exc)) from None
    return dataclasses.replace(config, model=Model.from_dict(model))
