"""YAML that cannot hurt: a sweep file is read as UTF-8, composed once, checked, then constructed.

- a mapping that gives a key twice is an error naming both lines (YAML would silently keep the last);
- aliases are bounded: the tree as it would be expanded (every alias copied out) may hold at most
  ``MAX_NODES`` nodes, counted over the shared nodes without expanding them, so an alias bomb ("billion
  laughs") is refused in milliseconds instead of exhausting memory in whatever walks the data later;
- nesting is bounded: a file nested deeper than ``MAX_DEPTH`` levels is refused before it is composed (the
  composer, and whatever walks the data later, recurse once per level);
- a file that is not UTF-8 is one line naming it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from harness.errors import SweepError

MAX_NODES = 200_000  # a large real sweep file has a few thousand
MAX_DEPTH = 64  # levels of mappings and lists; a real sweep file has a handful


def _check_tree(root: yaml.Node, path: Path) -> None:
    """Refuse duplicate mapping keys and a tree that expands past ``MAX_NODES`` (each shared node once)."""
    sizes: dict[int, int] = {}
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:  # iterative post-order: a deep file must not hit the recursion limit
        node, children_done = stack.pop()
        if id(node) in sizes:
            continue
        children = _children(node)
        if not children_done:
            if isinstance(node, yaml.MappingNode):
                _check_duplicates(node, path)
            stack.append((node, True))
            stack.extend((child, False) for child in children if id(child) not in sizes)
            continue
        sizes[id(node)] = 1 + sum(sizes[id(child)] for child in children)
        if sizes[id(node)] > MAX_NODES:
            line = node.start_mark.line + 1
            raise SweepError(f"{path} (line {line}): YAML aliases expand to more than {MAX_NODES} values; write "
                             "the values out or use fewer nested aliases (&anchor / *alias)")


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _check_duplicates(node: yaml.MappingNode, path: Path) -> None:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        if not isinstance(key_node, yaml.ScalarNode):
            continue
        line = key_node.start_mark.line + 1
        if key_node.value in seen:
            raise SweepError(f"{path}: key `{key_node.value}` is given twice (lines {seen[key_node.value]} and "
                             f"{line}); keep one (YAML would silently use the last)")
        seen[key_node.value] = line


def _check_depth(text: str, path: Path) -> None:
    """Refuse nesting deeper than ``MAX_DEPTH``, reading the parser's events (no recursion, nothing built)."""
    depth = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                raise SweepError(f"{path} (line {event.start_mark.line + 1}): nested deeper than {MAX_DEPTH} "
                                 "levels; a sweep file needs a few: check its brackets and indentation")
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


def compose_sweep_file(path: str | Path) -> tuple[str, yaml.Node | None]:
    """The text of a sweep file and its composed YAML tree, checked (duplicates, alias expansion, UTF-8).

    Raises ``SweepError`` (one line naming the file and the fix); YAML syntax errors propagate as
    ``yaml.YAMLError`` for the caller to place.
    """
    p = Path(path)
    try:
        text = p.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SweepError(f"{p}: not UTF-8 text (byte {exc.start}: {exc.reason}); save the sweep file as "
                         "UTF-8") from None
    except OSError as exc:
        raise SweepError(f"{p}: cannot read the sweep file ({exc.strerror})") from None
    _check_depth(text, p)
    node = yaml.compose(text, Loader=yaml.SafeLoader)
    if node is not None:
        _check_tree(node, p)
    return text, node
