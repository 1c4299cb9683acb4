"""Nested config dicts and their dotted keys (``model.width``), shared by the sweep schema and the store."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any


def flatten(tree: dict[str, Any], prefix: str = "", *, leaves: Collection[str] = (),
            sort: bool = False) -> dict[str, Any]:
    """Nested dict -> {dotted.key: leaf value} (lists are leaves, and the dicts at the dotted keys ``leaves``), in the
    tree's order or, with ``sort``, each level's keys sorted (as in a JSON file written with sorted keys)."""
    out: dict[str, Any] = {}
    for key, value in sorted(tree.items()) if sort else tree.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and path not in leaves:
            out.update(flatten(value, path + ".", leaves=leaves, sort=sort))
        else:
            out[path] = value
    return out


def copy_tree(tree: dict[str, Any]) -> dict[str, Any]:
    """A copy of a nested dict whose dicts are all new (leaves are shared; the config's leaves are immutable
    values or [lo, hi] lists nothing changes in place): what ``copy.deepcopy`` gives, several times faster."""
    return {key: copy_tree(value) if isinstance(value, dict) else value for key, value in tree.items()}


def set_dotted(tree: dict[str, Any], key: str, value: Any) -> None:
    """Assign ``value`` at dotted ``key`` inside a nested dict (in place)."""
    *parents, leaf = key.split(".")
    for part in parents:
        tree = tree.setdefault(part, {})
    tree[leaf] = value


def nest(flat: dict[str, Any]) -> dict[str, Any]:
    """{dotted.key: value} -> nested dict, the inverse of ``flatten``."""
    out: dict[str, Any] = {}
    for key, value in flat.items():
        set_dotted(out, key, value)
    return out
