"""A trained job outside its sweep: as a self-contained folder (``harness export``), back as a module
(``harness.load_model``), and scored on other sources or grids (``harness eval``: ``harness.portable.scoring``).

    <out>/model.safetensors   the network's weights
    <out>/config.json         its family, sizes, channels and grid, the task, and the job's resolved config
    <out>/stats.json          the normalisation statistics of its inputs (and the rule: instance or channel)
    <out>/data.json           what it was trained on: the data part, data seed, and the data's fingerprints
    <out>/metrics.json        the job's summary metrics (test error ...)
    <out>/README.md           the model card: trained on what, how, how well, and the command that made it

Writing: ``harness.portable.folder``; loading: ``harness.portable.physical`` (torch). This module is torch-free.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.errors import HarnessError

WEIGHTS, CONFIG, STATS, DATA, METRICS, CARD = ("model.safetensors", "config.json", "stats.json", "data.json",
                                               "metrics.json", "README.md")
FORMAT_VERSION = 1  # of the folder's layout (config.json's ``export_format``)


def read_json(path: Path) -> dict[str, Any]:
    """A JSON file of an exported folder; HarnessError naming it when it cannot be read."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise HarnessError(f"{path}: cannot read ({exc}); is it a folder `harness export` wrote?") from None
