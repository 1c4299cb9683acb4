"""The docs say what the tree does: the README is a front page that opens with the two commands, every YAML block of
README.md and docs/ expands through the real `harness expand`, every repository path and module the pages name
exists, and docs/sweep-file.md lists every key of the schema with its default.

A YAML block is a whole sweep (it has `name:`) or sections of one (`slurm:`, `tune:`, `track:`), which are expanded
on top of a small sweep; a block that is neither (a job's resolved config) is preceded by `<!-- fragment ... -->`.
"""

from __future__ import annotations

import importlib
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from harness.cli import main
from harness.sweep.schema import DATA_KEYS, LEAVES
from harness.sweep.spec import TOP_KEYS
from tests.helpers import ROOT

README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
PAGES = [README, *DOCS, ROOT / "results" / "reference" / "README.md"]  # whose paths and links are checked
MAX_README_LINES = 150
FRAGMENT = "<!-- fragment"
BLOCK = re.compile(r"^```yaml\n(.*?)^```", re.S | re.M)
# A block of sections only is expanded on top of this sweep (two points, every stage but zero-shot).
SECTIONS_BASE = """\
name: docs-sections
base:
  resolution: 16
  model: {width: 6, modes: 4}
  pretrain: {n_train: 64, n_val: 16, n_test: 16}
  downstream: {n_train: 16, n_val: 16, n_test: 16}
matrix:
  init: [pretrained, scratch]
"""
# Data files a block names are generated (Poisson, `harness data`): 10 % of the rows are held out for each of val
# and test, so 640 rows serve n_val and n_test up to 64 and n_train up to 512.
DATA_ROWS = 640
# Repository paths in the pages' text: the committed folders (results/ only for the committed reference runs).
REPO_PATH = re.compile(r"(?<![\w./-])(?:harness|analysis|sweeps|docs|tests|bench|\.ci|results/reference)/[\w./*-]*")
LINK = re.compile(r"\]\(([^)\s]+)\)")
MODULE_REF = re.compile(r"`((?:harness|analysis)(?:\.\w+)+)")


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def yaml_blocks() -> list[Any]:
    """Every ```yaml block of README.md and docs/*.md that is not marked a fragment, as pytest params."""
    blocks = []
    for page in (README, *DOCS):
        text = page.read_text()
        for match in BLOCK.finditer(text):
            before = text[: match.start()].rstrip().rsplit("\n", 1)[-1]
            if not before.startswith(FRAGMENT):
                line = text.count("\n", 0, match.start()) + 1
                blocks.append(pytest.param(match.group(1), id=f"{_rel(page)}:{line}"))
    return blocks


def _data_paths(tree: Any) -> list[tuple[str, str]]:
    """(relative path, format) of every data file a sweep's `data` values name (`base` values or matrix axes)."""
    found = []
    for key, value in tree.items() if isinstance(tree, dict) else enumerate(tree if isinstance(tree, list) else []):
        if str(key).split(".")[-1] == "data":
            for spec in value if isinstance(value, list) else [value]:
                if isinstance(spec, dict):
                    paths = spec["path"].values() if isinstance(spec["path"], dict) else [spec["path"]]
                    found += [(p, spec.get("format", "arrays")) for p in paths if not Path(p).is_absolute()]
        else:
            found += _data_paths(value)
    return found


def _write_data_files(folder: Path, sweep: dict[str, Any]) -> None:
    resolution = str(sweep.get("base", {}).get("resolution", LEAVES["resolution"]))
    made: dict[str, Path] = {}
    for rel, fmt in _data_paths(sweep):
        assert fmt in ("tl-scaling", "arrays"), f"the docs test writes tl-scaling and arrays files, not {fmt}"
        target = folder / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if fmt in made:
            shutil.copyfile(made[fmt], target)
            continue
        out = CliRunner().invoke(main, ["data", "poisson", "--n", str(DATA_ROWS), "--resolution", resolution,
                                        "--format", fmt, "--out", str(target)])
        assert out.exit_code == 0, out.output
        made[fmt] = target


@pytest.mark.parametrize("block", yaml_blocks())
def test_every_yaml_block_of_the_docs_expands(block: str, tmp_path: Path) -> None:
    sweep = yaml.safe_load(block)
    assert isinstance(sweep, dict) and set(sweep) <= set(TOP_KEYS), (
        f"not a sweep nor sections of one (top-level keys {sorted(sweep) if isinstance(sweep, dict) else sweep}): "
        f"mark it `{FRAGMENT} -->` if it is not meant to expand")
    if "name" not in sweep:
        assert not {"base", "matrix"} & set(sweep), "a block with base: or matrix: is a whole sweep: give it a name:"
        block = SECTIONS_BASE + block
        sweep = yaml.safe_load(block)
    _write_data_files(tmp_path, sweep)
    path = tmp_path / "sweep.yaml"
    path.write_text(block)
    result = CliRunner().invoke(main, ["expand", str(path), "--root", str(tmp_path / "results")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "results" / sweep["name"] / "plan.json").exists()


def test_the_docs_have_yaml_blocks_to_check() -> None:
    """The block finder finds the sweeps of the README and the docs (a broken pattern would pass every page)."""
    assert len(yaml_blocks()) >= 8


@pytest.mark.parametrize("page", PAGES, ids=_rel)
def test_every_repository_path_and_link_a_page_names_exists(page: Path) -> None:
    text = page.read_text()
    missing = []
    for token in (m.group(0).rstrip(".") for m in REPO_PATH.finditer(text)):
        if not (any(ROOT.glob(token)) if "*" in token else (ROOT / token).exists()):
            missing.append(token)
    for target in LINK.findall(text):
        if re.match(r"[a-z]+:", target):
            continue
        file, _, anchor = target.partition("#")
        linked = page.parent / file if file else page
        if not linked.exists() or (anchor and linked.suffix == ".md" and anchor not in _anchors(linked)):
            missing.append(target)
    assert not missing, f"{_rel(page)} names paths or sections that do not exist: {sorted(set(missing))}"


def _anchors(page: Path) -> set[str]:
    """The anchors of a page's headings, as GitHub makes them: lower case, punctuation dropped, spaces to -."""
    headings = re.findall(r"^#+ (.+)$", page.read_text(), re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


@pytest.mark.parametrize("page", PAGES, ids=_rel)
def test_every_module_a_page_names_exists(page: Path) -> None:
    """`harness.x.y` / `analysis.x.y` in backticks: a module, or an attribute of one."""
    missing = []
    for ref in sorted(set(MODULE_REF.findall(page.read_text()))):
        parts = ref.split(".")
        for cut in range(len(parts), 0, -1):
            try:
                obj: Any = importlib.import_module(".".join(parts[:cut]))
            except ModuleNotFoundError:
                continue
            for attr in parts[cut:]:
                obj = getattr(obj, attr, None)
            if obj is None:
                missing.append(ref)
            break
    assert not missing, f"{_rel(page)} names what the code does not have: {missing}"


def test_the_readme_is_a_front_page_that_opens_with_the_two_commands() -> None:
    lines = README.read_text().splitlines()
    assert len(lines) <= MAX_README_LINES, f"README.md has {len(lines)} lines; move reference material to docs/"
    assert lines[:3] == ["# harness", "", "```bash"], lines[:3]
    assert lines[3].startswith("make demo   # ") and lines[4].startswith("make test   # ") and lines[5] == "```"
    for page in DOCS:
        assert f"(docs/{page.name})" in README.read_text(), f"the README links no docs/{page.name}"


def _table(text: str) -> dict[str, str]:
    """`key` -> default cell of the markdown table rows that start with a backticked key."""
    return dict(re.findall(r"^\| `([\w.]+)` \| ([^|]*) \|", text, re.M))


def test_the_sweep_file_page_lists_every_key_with_its_schema_default() -> None:
    rows = _table((ROOT / "docs" / "sweep-file.md").read_text())
    for key in TOP_KEYS:
        assert key in rows, f"docs/sweep-file.md: top-level key `{key}` is missing"
    for key in DATA_KEYS:
        assert rows.get(key, "").strip() == "absent", f"docs/sweep-file.md: `{key}` should be listed as absent"
    for key, default in LEAVES.items():
        row = key.removeprefix("pretrain.") if key.startswith("pretrain.train.") else key
        assert row in rows, f"docs/sweep-file.md: key `{row}` is missing"
        assert yaml.safe_load(rows[row].strip().strip("`")) == default, (
            f"docs/sweep-file.md: `{row}` default {rows[row].strip()}, schema {default!r}")
