"""Every script in examples/ runs on a tiny generator (latent .npz inputs with a photo, and real
photos from ../shared for the projection example) and writes what its docstring promises."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import make_tiny, save_tiny

from latentlab.editing.directions import Direction
from latentlab.faces import FaceTransform
from latentlab.imageio import load_image, save_image
from latentlab.latent import Latent, save_latent

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
PHOTO_HW = (120, 100)


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    root = tmp_path_factory.mktemp("examples")
    G = make_tiny(3)
    net = save_tiny(G, root / "tiny.safetensors")
    save_image(np.random.RandomState(0).randint(0, 255, (*PHOTO_HW, 3)).astype(np.uint8), root / "photo.png")
    s = 40.0 / 32.0
    tf = FaceTransform(np.array([[s, 0, 30.0], [0, s, 20.0], [0, 0, 1]]), 32, PHOTO_HW,
                       np.array([[30.0, 20], [30, 60], [70, 60], [70, 20]]), None)
    gen = torch.Generator().manual_seed(1)
    for name in ("a", "b", "c"):
        save_latent(Latent(torch.randn(1, G.num_ws, G.w_dim, generator=gen), transform=tf, network=str(net),
                           name=name, settings={"photo": str(root / "photo.png")}), root / f"{name}.npz")
    rng = np.random.RandomState(2)
    spread = {"projection_std": 0.6, "truncation_psi": 0.7}  # one sigma: 0.6 / 0.7 W units
    for attr in ("smile", "age"):
        Direction(attr, rng.randn(16).astype(np.float32), model="tiny", meta=spread).save(
            root / "dirs" / "tiny" / f"{attr}.npz")
    return {"root": root, "net": str(net)}


@pytest.fixture()
def run(env, tmp_path, monkeypatch):
    monkeypatch.setenv("LATENTLAB_DIRECTIONS", str(env["root"] / "dirs"))

    def go(script: str, *args) -> Path:
        out = tmp_path / "out"
        argv = [str(EXAMPLES / script), *map(str, args), "--network", env["net"], "--outdir", str(out)]
        monkeypatch.setattr(sys, "argv", argv)
        runpy.run_path(argv[0], run_name="__main__")
        return out

    return go


def test_every_example_is_tested():
    tested = {"project.py", "edit.py", "style.py", "swap.py", "directions.py", "batch.py", "drag.py"}
    assert {p.name for p in EXAMPLES.glob("*.py")} == tested


@pytest.mark.parametrize("script", sorted(p.name for p in EXAMPLES.glob("*.py")))
def test_examples_use_only_the_public_api(script):
    """Each example imports latentlab only as ``import latentlab as ll`` (the public API)."""
    import ast

    imports = []
    for node in ast.walk(ast.parse((EXAMPLES / script).read_text())):
        if isinstance(node, ast.Import):
            imports += [(a.name, a.asname) for a in node.names if a.name.split(".")[0] == "latentlab"]
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0 and not (node.module or "").startswith("latentlab"), ast.dump(node)
    assert imports == [("latentlab", "ll")]


def test_edit(env, run):
    out = run("edit.py", env["root"] / "a.npz", "--smile", "2", "--age", "-1")
    assert load_image(out / "a_edit.png", min_size=1).shape == (32, 32, 3)
    assert not (out / "a_edit_pasted.jpg").exists()  # a latent input without its photo: aligned only
    assert load_image(out / "a_smile_sweep.png").shape == (256, 5 * 256 + 4 * 4, 3)


def test_style(env, run):
    out = run("style.py", env["root"] / "a.npz", env["root"] / "b.npz", "--layers", "rows:4-8")
    assert load_image(out / "a_x_b.png", min_size=1).shape == (32, 32, 3)


def test_swap(env, run):
    import imageio.v2 as iio

    out = run("swap.py", env["root"] / "a.npz", env["root"] / "b.npz", "--frames", "3")
    assert load_image(out / "a_on_b.png", min_size=1).shape == (32, 32, 3)
    with iio.get_reader(str(out / "a_to_b.mp4")) as rd:
        assert rd.count_frames() == 3


def test_directions(env, run):
    out = run("directions.py", env["root"] / "c.npz", "--sefa", "2")
    names = sorted(p.name for p in out.glob("*.png"))
    assert names == ["c_age.png", "c_sefa0.png", "c_sefa1.png", "c_smile.png"]
    assert load_image(out / "c_smile.png").shape == (256, 5 * 256 + 4 * 4, 3)


def test_drag(env, run):
    out = run("drag.py", env["root"] / "a.npz", "--points", "10,12>16,12", "--coords", "aligned", "--steps", "3")
    assert load_image(out / "a_drag.png", min_size=1).shape == (32, 32, 3)
    with np.load(out / "a_drag.npz") as z, np.load(env["root"] / "a.npz") as a:
        assert z["ws"].shape == a["ws"].shape and not np.array_equal(z["ws"], a["ws"])
    with pytest.raises(SystemExit, match="no facial landmarks"):
        run("drag.py", env["root"] / "a.npz", "--steps", "1")


def test_batch(env, run, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for n in ("a", "b"):
        (folder / f"{n}.npz").write_bytes((env["root"] / f"{n}.npz").read_bytes())
    out = run("batch.py", folder, env["root"] / "c.npz")
    assert sorted(p.name for p in out.glob("*_edit.png")) == ["a_edit.png", "b_edit.png", "c_edit.png"]
    assert load_image(out / "grid.png").shape == (2 * 32, 3 * 32, 3)


def test_project_on_a_real_photo(shared_dir, run, tmp_path, monkeypatch):
    from latentlab.assets import cache_dir

    photo = shared_dir / "photos" / "portraits" / "003f.jpg"
    if not photo.is_file():
        pytest.skip(f"{photo} not found")
    real = cache_dir()
    cache = tmp_path / "cache"
    cache.mkdir()
    for sub in ("wheels", "pypi", "npm"):  # the downloaded model files (dlib, LPIPS), not the projections
        if (real / sub).is_dir():
            (cache / sub).symlink_to(real / sub)
    monkeypatch.setenv("LATENTLAB_CACHE", str(cache))
    out = run("project.py", photo, "--num-steps", "2")
    original = load_image(photo)
    assert load_image(out / "003f_pasted.png").shape == original.shape
    assert load_image(out / "003f_aligned.png", min_size=1).shape == (32, 32, 3)
    with np.load(out / "003f.npz") as z:
        assert z["ws"].shape == (1, 8, 16)
