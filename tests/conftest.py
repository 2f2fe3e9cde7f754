"""Shared test fixtures: the ../shared folder, devices, and a temp cache dir."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("LATENTLAB_SHARED", REPO.parent / "shared"))


def _devices() -> list[str]:
    devs = ["cpu"]
    if torch.cuda.is_available():
        devs.append("cuda")
    return devs


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """../shared beside the checkout; tests that need it skip when it is absent."""
    if not SHARED.is_dir():
        pytest.skip(f"../shared not found at {SHARED} (fixtures and photos live there)")
    return SHARED


@pytest.fixture(params=_devices())
def device(request) -> torch.device:
    return torch.device(request.param)


@pytest.fixture()
def tmp_cache(tmp_path, monkeypatch) -> Path:
    """An empty LATENTLAB_CACHE for tests that must not touch the user's cache."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("LATENTLAB_CACHE", str(cache))
    return cache
