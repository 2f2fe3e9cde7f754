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


def stlpips_reference(tmp_path_factory, net: str, weights) -> torch.nn.Module:
    """The stlpips-pytorch package's own ``LPIPS(net=net, variant='shift_tolerant')``, its code taken
    from the PyPI wheel (skips when the wheel cannot be obtained).

    Its modules import torchvision, IPython and torchsummary at top level without using them for
    these networks; empty stand-ins are put in sys.modules only while the package is imported.
    """
    import sys
    import types
    import zipfile

    from latentlab.assets import pypi_wheel
    from latentlab.errors import DownloadError
    from latentlab.losses.lpips import STLPIPS_DIST, STLPIPS_VERSION

    try:
        wheel = pypi_wheel(STLPIPS_DIST, STLPIPS_VERSION, quiet=True)
    except DownloadError as e:
        pytest.skip(f"cannot obtain the stlpips-pytorch=={STLPIPS_VERSION} wheel to compare with: {e}")
    root = tmp_path_factory.mktemp(f"stlpips_{net}_pkg")
    with zipfile.ZipFile(wheel) as zf:
        members = [m for m in zf.namelist() if m.startswith("stlpips_pytorch/") and m.endswith(".py")]
        zf.extractall(root, members=members)

    tv = types.ModuleType("torchvision")
    tv.models = types.ModuleType("torchvision.models")
    ipy = types.ModuleType("IPython")
    ipy.embed = lambda *a, **k: None
    tsum = types.ModuleType("torchsummary")
    tsum.summary = lambda *a, **k: None
    before = set(sys.modules)
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(sys.modules, "torchvision", tv)
        mp.setitem(sys.modules, "torchvision.models", tv.models)
        mp.setitem(sys.modules, "IPython", ipy)
        mp.setitem(sys.modules, "torchsummary", tsum)
        mp.syspath_prepend(str(root))
        from stlpips_pytorch import stlpips  # noqa: PLC0415

        model = stlpips.LPIPS(net=net, variant="shift_tolerant", verbose=False, model_path=str(weights))
    for name in set(sys.modules) - before:
        if name.startswith("stlpips_pytorch"):
            del sys.modules[name]
    return model.eval()
