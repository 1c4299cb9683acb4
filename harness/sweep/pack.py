"""The sweep's `pack:` block (fused training, ``harness.job.fusable``): read and checked at expand, pure.

    pack: {mode: fused, group: 8}     # train up to 8 jobs of one shape as one program

Off unless given (and then absent from every plan, so existing plans and ids are unchanged); it never changes a
job's id: fused jobs compute what they compute alone, within float rounding. Refused where jobs cannot share a
program: a sweep that tunes (each trial's pruning stops its own process) and a point whose jobs run on several
ranks (``resources``).
"""

from __future__ import annotations

from typing import Any

from harness.job import Pack, Point
from harness.sweep.schema import Where

MODES = ("fused",)


def parse_pack(value: Any, where: Where) -> Pack | None:
    """The `pack:` block as a ``Pack``, or None when absent; a bad key or value is refused at its line."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise where.fail("pack", f"must be a mapping, got {value!r}", "write `pack: {mode: fused, group: 8}`")
    unknown = sorted(set(value) - {"mode", "group"})
    if unknown:
        raise where.fail(f"pack.{unknown[0]}", f"unknown pack setting `{unknown[0]}`", "use mode and group")
    mode, group = value.get("mode", "fused"), value.get("group", Pack().group)
    if mode not in MODES:
        raise where.fail("pack.mode", f"invalid value {mode!r}", "choose one of " + ", ".join(MODES))
    if isinstance(group, bool) or not isinstance(group, int) or group < 1:
        raise where.fail("pack.group", f"must be an integer >= 1, got {group!r}",
                         "give the most jobs trained together, such as 8")
    return Pack(mode, group)


def pack_problem(config: Point) -> tuple[str, str] | None:
    """(key, what must hold and the fix) when the jobs of this resolved point cannot be fused, else None."""
    for key, res in (("resources.gpus", config.resources), ("pretrain.resources.gpus", config.pretrain.resources)):
        if res is not None and res.world_size > 1:
            return key, (f"fused training (`pack:`) runs each job on one rank, not {res.world_size}; "
                         "set resources.gpus and resources.nodes to 1 or drop `pack:`")
    return None
