"""Neural operator families: one interface every family implements, and each family's size, torch-free.

The harness talks to a family through its ``model.arch`` name only: ``family(arch)`` here (torch-free: counts,
FLOPs, memory, the grid rules, the parameter-target rule), and ``harness.models.build.build_model`` for the
module. Families: ``fno`` (``fno.py``; its size here), ``unet``, ``deeponet``, ``oformer`` (each in ``<arch>.py``,
its size in the torch-free ``<arch>_size.py``); their docstrings give the layout and the formulas.

The FNO's size, as small documented functions: ``count_params`` and ``flops_per_sample`` measure it
(``FNO.num_params`` equals ``count_params``); ``check_modes`` is the rule ``FNO.forward`` enforces;
``train_memory`` is what one training job holds on its device, which expand compares with the largest device the
backends offer (``Family.train_memory`` for any family).

The module interface (``harness.models.operator.Operator``)::

    class Operator(nn.Module):
        arch: str                      # the family's model.arch name
        sizes: dict[str, int]          # its size keys (Family.defaults' keys) and their values
        in_channels: int               # C
        out_channels: int              # O
        feature_channels: int          # F
        lifting: nn.Module             # reads the inputs: the only weights whose shapes depend on C
        head: nn.Module                # features (B, F, n, n) -> outputs: the only weights that depend on O

        def features(self, x): ...     # (B, C, n, n) -> (B, F, n, n): everything but the head
        def forward(self, x):          # (B, C, n, n) -> (B, O, n, n)
            return self.head(self.features(x))
        def num_params(self) -> int    # == family(arch).count_params(sizes, ...)

A pretext strategy swaps the head (``model.head = PooledHead(model.feature_channels, k)`` gives (B, k)); a
fine-tuning drops the weights under ``head.`` (and under ``lifting.`` after a pretraining on other inputs, or
re-initialises the top-level modules of other shapes). Inputs are any C channels (7 for the steady task; the time
tasks' window frames and five coefficient channels), outputs any O (a solution, a window, derivatives).
``build_model`` checks the sizes against the grid; the module checks its input's channels and grid again.

Sizes are a few plain integer keys per family with defaults (``Family.defaults``): fno width, modes; unet
channels, levels; deeponet branch_width, trunk_width, basis; oformer width, depth, heads, patch.

The parameter-target rule (``Family.nearest``, for ``model.params``): the family's width keys
(``Family.width_keys``: fno width, unet channels, deeponet all three, oformer width) that are not given scale
together from their defaults -- v for the first, round(default_k v / default_first) for the others -- every
other key stays as given or at its default, and the v whose parameter count is nearest the target in log space
wins (sizes the family refuses are skipped; a tie goes to the smaller model).
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from harness.errors import HarnessError
from harness.models import deeponet_size, oformer_size, unet_size

Shape = tuple[int, int, int]  # (width, modes, resolution): what a step costs depends on
TRAIN_PASSES = 3  # a train step (forward + backward, ~2 forwards) in forward passes
FLOAT_BYTES = 4  # parameters, optimiser state, activations and data are float32
# Bytes of one parameter during training: weight, gradient and Adam's two moments.
PARAM_TRAIN_BYTES = 4 * FLOAT_BYTES


def count_params(width: int, modes: int, in_channels: int = 7, n_layers: int = 4, out_channels: int = 1) -> int:
    """Number of real parameters of ``FNO(width, modes, in_channels, n_layers, out_channels)``.

    With w = width, m = modes, L = n_layers, C = in_channels, O = out_channels:

        P = (C + 1) w                      lifting (weights + bias)
          + L (4 m^2 w^2 + w^2 + w)        spectral: complex (2m, m, w, w), 2 reals each; 1x1 conv
          + (2 w^2 + 2 w) + (2 w O + O)    head

    The spectral term dominates: P ~ 16 w^2 m^2 for L = 4 (width 16 / modes 4: 67,329).
    """
    w, m = width, modes
    lifting = (in_channels + 1) * w
    layers = n_layers * (4 * m * m * w * w + w * w + w)
    head = (2 * w * w + 2 * w) + (2 * w * out_channels + out_channels)
    return lifting + layers + head


def flops_per_sample(
    width: int, modes: int, resolution: int, in_channels: int = 7, n_layers: int = 4, out_channels: int = 1
) -> float:
    """Approximate forward FLOPs for one sample on a ``resolution`` x ``resolution`` grid.

    A multiply-add is 2 FLOPs, a complex multiply-add 8; N = R^2 grid points:

        lifting      2 N C w
        per layer    2 N w^2                  pointwise 1x1 conv
                   + 5 N log2(N) w            rfft2 + irfft2 (~2.5 N log2 N each, per channel)
                   + 8 (2 m^2) w^2            spectral contraction over the 2 m^2 kept modes
        head         2 N (2 w^2 + 2 w O)

    Biases, GELU and the zero-filled spectrum are ignored. Backward is about twice the forward.
    """
    w, m, n = width, modes, resolution * resolution
    lifting = 2 * n * in_channels * w
    layer = 2 * n * w * w + 5 * n * math.log2(n) * w + 8 * 2 * m * m * w * w
    head = 2 * n * (2 * w * w + 2 * w * out_channels)
    return float(lifting + n_layers * layer + head)


def check_modes(modes: int, height: int, width: int) -> None:
    """Raise ``HarnessError`` unless ``modes`` frequencies per dimension fit a ``height`` x ``width`` grid."""
    if 2 * modes > height or modes > width // 2 + 1:
        raise HarnessError(
            f"modes={modes} is too large for resolution {height}x{width}: the FNO keeps frequencies "
            f"-modes..modes-1 along rows and 0..modes-1 along columns, so 2*modes <= {height} and "
            f"modes <= {width // 2 + 1} must hold; use modes <= {min(height // 2, width // 2 + 1)} "
            "or a finer grid"
        )


def activation_floats(width: int, resolution: int, in_channels: int = 7, n_layers: int = 4,
                      out_channels: int = 1) -> int:
    """Floats one sample's forward pass keeps for the backward, plus the backward's own transients (an upper
    bound): N (4 (L + 1) w + C + O), N = R^2.

    Measured with autograd's saved-tensor hooks on this FNO: 12.5-14.8 w N floats for L = 4 (width 8-64,
    modes 4-32, R 16-128), against 20 w N here.
    """
    n = resolution * resolution
    return n * (4 * (n_layers + 1) * width + in_channels + out_channels)


@dataclass(frozen=True)
class Memory:
    """Bytes one training job holds on its device: parameters with their gradients and Adam state, one batch's
    activations, and the training and validation sets (resident on the device for the whole run)."""

    params: int
    activations: int
    data: int

    @property
    def total(self) -> int:
        """All of it."""
        return self.params + self.activations + self.data


def train_memory(width: int, modes: int, resolution: int, *, batch: int, samples: int, in_channels: int = 7,
                 out_channels: int = 1, n_layers: int = 4, sample_floats: int | None = None) -> Memory:
    """What training an FNO of these sizes on ``samples`` resident samples (training + validation) at batch size
    ``batch`` holds on its device (see ``Memory``); a sample holds ``sample_floats`` floats (default: its
    input and output channels on the grid)."""
    params = count_params(width, modes, in_channels, n_layers, out_channels) * PARAM_TRAIN_BYTES
    activations = batch * activation_floats(width, resolution, in_channels, n_layers, out_channels) * FLOAT_BYTES
    per_sample = (in_channels + out_channels) * resolution * resolution if sample_floats is None else sample_floats
    data = samples * per_sample * FLOAT_BYTES
    return Memory(params, activations, data)


Problem = tuple[str, str]  # (size key, what must hold and the fix)
MAX_SCALE = 1 << 14  # the parameter-target rule's largest width


class SizeError(HarnessError):
    """Sizes a family refuses; ``key`` names the config key to change (``model.levels``)."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


@functools.cache
def _parameters(fn: Callable[..., Any]) -> frozenset[str]:
    return frozenset(inspect.signature(fn).parameters)


def _call(fn: Callable[..., Any], values: Mapping[str, Any]) -> Any:
    """``fn`` called with the keyword arguments it takes among ``values`` (a family's functions name the size
    keys, ``resolution``, ``in_channels``, ``out_channels`` and ``batch`` they depend on)."""
    names = _parameters(fn)
    return fn(**{k: v for k, v in values.items() if k in names})


def _fno_activation_floats(width: int, resolution: int, in_channels: int, out_channels: int, batch: int) -> int:
    """``activation_floats`` (per sample) for a batch."""
    return batch * activation_floats(width, resolution, in_channels, out_channels=out_channels)


def _fno_grid(width: int, modes: int, resolution: int) -> Problem | None:
    """``check_modes`` as a problem."""
    try:
        check_modes(modes, resolution, resolution)
    except HarnessError as exc:
        return "modes", str(exc)
    return None


# The FNO's size functions as a family's rules (the others' are their ``<arch>_size`` modules).
FNO_RULES = SimpleNamespace(count_params=count_params, flops_per_sample=flops_per_sample,
                            activation_floats=_fno_activation_floats, check_grid=_fno_grid)


@dataclass(frozen=True)
class Family:
    """A model family's torch-free rules; ``rules`` holds its size functions as attributes (``count_params``,
    ``flops_per_sample``, ``activation_floats``, optional ``check_sizes`` and ``check_grid``): its size module,
    or ``FNO_RULES``."""

    arch: str
    label: str  # the name its paper uses
    defaults: Mapping[str, int]
    width_keys: tuple[str, ...]
    rules: Any
    sensor_grid: bool = False  # evaluates on the grid it was built for only

    def _rule(self, name: str) -> Callable[..., Any] | None:
        return getattr(self.rules, name, None)

    def sizes(self, given: Mapping[str, Any] | None = None) -> dict[str, int]:
        """The size keys with their defaults, updated with ``given``; raises ``SizeError`` for a key of another
        family, a value that is not an integer >= 1, or sizes the family refuses."""
        sizes = dict(self.defaults)
        for key, value in (given or {}).items():
            if key not in sizes:
                raise SizeError(f"model.{key}", f"model.{key} is no size key of {self.arch}; its size keys (with "
                                                f"defaults) are {self.describe()}: use those, or model.params")
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise SizeError(f"model.{key}", f"model.{key} must be an integer >= 1, but got {value!r}")
            sizes[key] = value
        check = self._rule("check_sizes")
        if check is not None and (problem := _call(check, sizes)) is not None:
            raise SizeError(f"model.{problem[0]}", problem[1])
        return sizes

    def describe(self) -> str:
        """``key=default`` of every size key, comma-separated."""
        return ", ".join(f"{k}={v}" for k, v in self.defaults.items())

    def count_params(self, sizes: Mapping[str, int], *, resolution: int, in_channels: int,
                     out_channels: int) -> int:
        """Real parameters of the family's module of these sizes (its ``num_params``)."""
        return _call(self.rules.count_params, {**sizes, "resolution": resolution, "in_channels": in_channels,
                                               "out_channels": out_channels})

    def flops_per_sample(self, sizes: Mapping[str, int], *, resolution: int, in_channels: int, out_channels: int,
                         batch: int = 1) -> float:
        """Forward FLOPs of one sample in a batch of ``batch`` (work a batch shares, divided among it)."""
        return _call(self.rules.flops_per_sample, {**sizes, "resolution": resolution, "in_channels": in_channels,
                                                   "out_channels": out_channels, "batch": batch})

    def train_memory(self, sizes: Mapping[str, int], *, resolution: int, batch: int, samples: int, in_channels: int,
                     out_channels: int, sample_floats: int | None = None) -> Memory:
        """What training the family's module on ``samples`` resident samples at batch size ``batch`` holds on
        its device (``Memory``); a sample holds ``sample_floats`` floats (default: its
        input and output channels on the grid)."""
        values = {**sizes, "resolution": resolution, "in_channels": in_channels, "out_channels": out_channels}
        params = self.count_params(sizes, resolution=resolution, in_channels=in_channels, out_channels=out_channels)
        activations = _call(self._rule("activation_floats"), {**values, "batch": batch})
        per_sample = (in_channels + out_channels) * resolution**2 if sample_floats is None else sample_floats
        return Memory(params * PARAM_TRAIN_BYTES, activations * FLOAT_BYTES, samples * per_sample * FLOAT_BYTES)

    def check_grid(self, sizes: Mapping[str, int], resolution: int) -> None:
        """Raise ``SizeError`` unless the module of these sizes runs on a ``resolution`` x ``resolution`` grid."""
        check = self._rule("check_grid")
        if check is not None and (problem := _call(check, {**sizes, "resolution": resolution})) is not None:
            raise SizeError(f"model.{problem[0]}", problem[1])

    def check_evaluation_grid(self, trained: int, asked: int) -> None:
        """Raise ``SizeError`` if a module built for a ``trained`` grid cannot evaluate on an ``asked`` one."""
        if self.sensor_grid and trained != asked:
            raise SizeError("resolution", f"a {self.label} evaluates on its sensor grid only ({trained}x{trained}), "
                                          f"not on {asked}x{asked}: train it at resolution {asked}, or use a "
                                          "model.arch that is not tied to its grid (fno, unet, oformer)")

    def scaled(self, value: int, fixed: Mapping[str, Any] | None = None) -> dict[str, int]:
        """The sizes the parameter-target rule tries at ``value`` (module docstring): the width keys ``fixed``
        does not give scaled together from their defaults, the first to ``value``; the rest from ``fixed`` or the
        defaults. Not checked: the rule skips sizes the family refuses."""
        fixed = dict(fixed or {})
        scaled = [k for k in self.width_keys if k not in fixed]
        if not scaled:
            keys = " and ".join(f"model.{k}" for k in self.width_keys)
            raise SizeError("model.params", f"model.params sets {keys} of {self.arch}: remove model.params or {keys}")
        first = self.defaults[scaled[0]]
        return {**self.defaults, **fixed, **{k: max(1, round(self.defaults[k] * value / first)) for k in scaled}}

    def nearest(self, target: float, *, resolution: int, in_channels: int, out_channels: int,
                fixed: Mapping[str, Any] | None = None) -> dict[str, int]:
        """The sizes whose parameter count is nearest ``target`` by the parameter-target rule (module docstring),
        ``fixed`` holding the size keys given beside it."""
        self.sizes(fixed)
        if isinstance(target, bool) or not (isinstance(target, int | float) and math.isfinite(target) and target >= 1):
            raise SizeError("model.params", f"model.params must be a number >= 1, but got {target!r}")
        best: tuple[float, dict[str, int]] | None = None
        for value in range(1, MAX_SCALE + 1):
            sizes = self.scaled(value, fixed)
            try:
                self.sizes(sizes)
            except SizeError:
                continue
            count = self.count_params(sizes, resolution=resolution, in_channels=in_channels,
                                      out_channels=out_channels)
            gap = abs(math.log(count / target))
            if best is None or gap < best[0]:
                best = (gap, sizes)
            if count >= target:  # counts grow with the width: the next ones are farther
                break
        assert best is not None, f"{self.arch} has no valid sizes below width {MAX_SCALE}"
        return best[1]


FAMILIES: dict[str, Family] = {
    "fno": Family("fno", "FNO", {"width": 32, "modes": 8}, ("width",), FNO_RULES),
    "unet": Family("unet", "U-Net", unet_size.DEFAULTS, unet_size.WIDTH_KEYS, unet_size),
    "deeponet": Family("deeponet", "DeepONet", deeponet_size.DEFAULTS, deeponet_size.WIDTH_KEYS, deeponet_size,
                       sensor_grid=True),
    "oformer": Family("oformer", "OFormer", oformer_size.DEFAULTS, oformer_size.WIDTH_KEYS, oformer_size),
}
ARCHS = tuple(FAMILIES)


def family(arch: str) -> Family:
    """The family named ``arch`` (a ``model.arch`` value); raises ``SizeError`` naming the families."""
    if arch not in FAMILIES:
        raise SizeError("model.arch", f"model.arch {arch!r} is no model family: use one of {', '.join(ARCHS)}")
    return FAMILIES[arch]
