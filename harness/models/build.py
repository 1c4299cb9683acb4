"""``build_model``: a family's module by its ``model.arch`` name, its sizes checked by the family's rules;
``model_of``: the module of a job config's ``model``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from harness.models import ARCHS, ModelKeys, arch_of, family, sizes_of
from harness.models.deeponet import DeepONet
from harness.models.fno import FNO
from harness.models.oformer import OFormer
from harness.models.operator import Operator
from harness.models.unet import UNet

MODULES: dict[str, type[Operator]] = {cls.arch: cls for cls in (FNO, UNet, DeepONet, OFormer)}
assert tuple(MODULES) == ARCHS, "every family in harness.models.FAMILIES has its module here, in the same order"


def build_model(arch: str, sizes: Mapping[str, Any] | None = None, *, in_channels: int, out_channels: int,
                resolution: int) -> Operator:
    """The ``arch`` module of ``sizes`` (missing keys at the family's defaults) for ``in_channels`` inputs and
    ``out_channels`` outputs on a ``resolution`` grid; raises ``harness.models.SizeError`` (naming the key and
    the fix) for sizes of another family or sizes that do not fit the grid."""
    rules = family(arch)
    resolved = rules.sizes(sizes)
    rules.check_grid(resolved, resolution)
    return MODULES[arch].from_sizes(resolved, in_channels=in_channels, out_channels=out_channels,
                                    resolution=resolution)


def model_of(model: ModelKeys, *, in_channels: int, out_channels: int, resolution: int) -> Operator:
    """The module of a job config's ``model`` (``harness.models.resolve_model``: its family and sizes) for
    ``in_channels`` inputs and ``out_channels`` outputs on a ``resolution`` grid."""
    return build_model(arch_of(model), sizes_of(model), in_channels=in_channels, out_channels=out_channels,
                       resolution=resolution)
