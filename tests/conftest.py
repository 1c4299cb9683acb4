"""Shared test set-up: one PDE data cache per test session, and few threads (2-core CI machine)."""

from __future__ import annotations

import os

import pytest
import torch


@pytest.fixture(scope="session", autouse=True)
def _data_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    os.environ.setdefault("HARNESS_DATA_CACHE", str(tmp_path_factory.mktemp("data-cache")))
    torch.set_num_threads(1)
