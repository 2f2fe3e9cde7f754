"""The demo report: one self-contained HTML page; and ``latentlab demo``'s step handling.

The full ``latentlab demo --quick`` takes minutes on a 2-core CPU (ffhq-mobile at 1024 px), so it
is not run here; the report writer is tested on small inputs and the demo's orchestration with
stand-in steps on a tiny generator.
"""

from __future__ import annotations

import base64
import io
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import make_tiny
from PIL import Image

from latentlab.errors import LatentlabError
from latentlab.imageio import load_image
from latentlab.report import Figure, Report, Step, png_data_uri, render_html, write_report


class _Collect(HTMLParser):
    """Every tag with its attributes, and the text of sections."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def _decode(uri: str) -> Image.Image:
    prefix = "data:image/png;base64,"
    assert uri.startswith(prefix), uri[:40]
    raw = base64.b64decode(uri[len(prefix):], validate=True)
    assert raw[:8] == b"\x89PNG\r\n\x1a\n"
    im = Image.open(io.BytesIO(raw))
    im.load()
    assert im.format == "PNG"
    return im


@pytest.fixture()
def report(tmp_path) -> tuple[Report, dict[str, np.ndarray]]:
    rng = np.random.RandomState(0)
    imgs = {"rgb": rng.randint(0, 256, (20, 30, 3), dtype=np.uint8),
            "gray": rng.randint(0, 256, (16, 16), dtype=np.uint8),
            "big": rng.randint(0, 256, (300, 200, 3), dtype=np.uint8)}
    path = tmp_path / "from_file.png"
    Image.fromarray(imgs["rgb"]).save(path)
    steps = [
        Step("Sampling", description="first paragraph\n\nsecond paragraph",
             settings={"seeds": "0-3", "psi": 0.7, "flag": True, "none": None},
             metrics=[{"photo": "a.png", "LPIPS": 0.1234567, "PSNR dB": 21.5}, {"photo": "b.png", "LPIPS": 1e-5}],
             commands=["latentlab sample --seeds 0-3 --outdir 'out dir' && echo <done>"],
             figures=[Figure("rgb", imgs["rgb"], "caption & more"), Figure("gray", imgs["gray"]),
                      Figure("big", imgs["big"], max_side=100), Figure("file", path)], seconds=1.5),
        Step("Edits <script>alert(1)</script>", status="unavailable", reason="no directions installed"),
        Step("Swap", status="failed", reason="RuntimeError: boom"),
    ]
    return Report("demo & test", steps, "summary text", {"torch": "2.x", "device": "cpu"}), imgs


def test_report_is_self_contained_with_png_data_uris(report, tmp_path):
    rep, imgs = report
    out = write_report(rep, tmp_path / "r" / "report.html")
    text = out.read_text(encoding="utf-8")
    p = _Collect()
    p.feed(text)
    srcs = [a["src"] for t, a in p.tags if "src" in a]
    hrefs = [a["href"] for t, a in p.tags if "href" in a]
    assert len(srcs) == 4 and all(s.startswith("data:image/png;base64,") for s in srcs)
    assert hrefs and all(h.startswith("#") for h in hrefs)  # only in-page links
    assert not re.search(r"""(src|href|url)\s*[=(]\s*["']?\s*(https?:)?//""", text, re.I)
    assert "http://" not in text and "https://" not in text
    assert not any(t in ("script", "link", "iframe", "object", "embed") for t, _ in p.tags)
    assert any(t == "meta" and "default-src 'none'" in (a.get("content") or "") for t, a in p.tags)

    decoded = [_decode(s) for s in srcs]
    np.testing.assert_array_equal(np.asarray(decoded[0].convert("RGB")), imgs["rgb"])  # lossless
    np.testing.assert_array_equal(np.asarray(decoded[1].convert("RGB"))[..., 0], imgs["gray"])
    assert decoded[2].size == (67, 100)  # 200x300 scaled to a longer side of 100
    np.testing.assert_array_equal(np.asarray(decoded[3].convert("RGB")), imgs["rgb"])


def test_report_sections_status_and_escaping(report):
    rep, _ = report
    text = render_html(rep)
    p = _Collect()
    p.feed(text)
    sections = [a for t, a in p.tags if t == "section"]
    assert [s["data-status"] for s in sections] == ["done", "unavailable", "failed"]
    assert [s["id"] for s in sections] == ["step1", "step2", "step3"]
    assert "<script>" not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "Not available:</b> no directions installed" in text and "Failed:</b> RuntimeError: boom" in text
    assert "echo &lt;done&gt;" in text and "caption &amp; more" in text
    assert "<th>LPIPS</th>" in text and ">0.1235<" in text and ">1e-05<" in text
    assert "<p>first paragraph</p>" in text and "<p>second paragraph</p>" in text
    assert "<title>demo &amp; test</title>" in text and "Environment" in text


def test_report_refuses_overwrite_and_bad_input(report, tmp_path):
    rep, _ = report
    out = write_report(rep, tmp_path / "report.html")
    with pytest.raises(LatentlabError, match="already exists"):
        write_report(rep, out)
    write_report(rep, out, force=True)
    with pytest.raises(LatentlabError, match="status"):
        Step("x", status="maybe")
    with pytest.raises(LatentlabError, match="uint8"):
        png_data_uri(np.zeros((4, 4, 3), np.float32))


# --------------------------------------------------------------------------- the demo command
def test_demo_refuses_a_used_outdir_before_loading(tmp_path):
    from latentlab.cli import main

    (tmp_path / "old.txt").write_text("earlier run")
    r = CliRunner().invoke(main, ["demo", "--outdir", str(tmp_path), "--quick"])
    assert r.exit_code == 1 and "is not empty; use --force" in r.output


def _stand_in_steps(pixels: np.ndarray) -> list:
    def ok(ctx):
        return Step("Fine", figures=[Figure("tile", pixels)], metrics=[{"LPIPS": 0.5}])

    def broken(ctx):
        raise LatentlabError("could not do it")

    return [("sampling", ok), ("edits", broken), ("alignment", broken), ("projection", ok)]


def test_demo_records_failures_and_stops_after_essential_ones(tmp_path, monkeypatch, tmp_cache):
    """Stand-in steps on a tiny generator: a failing step is reported as failed with its error,
    later steps still run unless an essential step failed; the page is written either way."""
    import latentlab.api as api
    from latentlab import demo

    tiny = make_tiny(0)
    monkeypatch.setattr(api, "load_generator", lambda *a, **k: tiny)
    pixels = np.full((8, 8, 3), 200, np.uint8)
    path, failed = demo.run_demo(tmp_path / "d", quick=True, echo=lambda m: None, steps=_stand_in_steps(pixels))
    assert failed == ["edits", "alignment"]
    text = path.read_text()
    statuses = re.findall(r'data-status="(\w+)"', text)
    assert statuses == ["done", "failed", "failed", "unavailable"]
    assert "could not do it" in text and "skipped because the alignment step failed" in text
    assert (tmp_path / "d" / "photos" / "astronaut.png").is_file()
    srcs = re.findall(r'src="([^"]+)"', text)
    assert len(srcs) == 1 and np.asarray(_decode(srcs[0]).convert("RGB")).tolist() == pixels.tolist()
    summary = json.loads((tmp_path / "d" / "summary.json").read_text())
    assert [s["status"] for s in summary["sections"]] == statuses and summary["quick"] is True


def test_demo_command_exits_non_zero_after_writing_the_page(tmp_path, monkeypatch, tmp_cache):
    """The CLI turns failed steps into a non-zero exit after writing the page."""
    import latentlab.api as api
    from latentlab.cli import demo as cli_demo
    from latentlab.cli import main

    tiny = make_tiny(0)
    monkeypatch.setattr(api, "load_generator", lambda *a, **k: tiny)
    monkeypatch.setattr(cli_demo, "STEPS", _stand_in_steps(np.full((8, 8, 3), 200, np.uint8)))
    r = CliRunner().invoke(main, ["demo", "--outdir", str(tmp_path / "e"), "--quick"])
    assert r.exit_code == 1 and "demo steps failed: edits, alignment" in r.output
    assert (tmp_path / "e" / "report.html").is_file()


@pytest.fixture()
def tiny_demo(tmp_path, monkeypatch, shared_dir):
    """The real demo steps on the tiny generator (32 px) standing in for ffhq-mobile: a cache with
    only links to the downloaded model files (dlib, LPIPS), random smile/age/yaw directions for it
    under ``$LATENTLAB_DIRECTIONS/ffhq-mobile`` (found before the shipped 512-d ones)."""
    import latentlab.api as api
    from latentlab.assets import cache_dir

    real = cache_dir()
    cache = tmp_path / "cache"
    cache.mkdir()
    for sub in ("wheels", "pypi", "npm"):
        if (real / sub).is_dir():
            (cache / sub).symlink_to(real / sub)
    monkeypatch.setenv("LATENTLAB_CACHE", str(cache))
    tiny = make_tiny(0)
    rng = np.random.RandomState(0)
    for name, layers in (("smile", "0-5"), ("age", "0-9"), ("yaw", "0-6")):
        v = rng.randn(tiny.w_dim).astype(np.float32)
        meta = {"method": "random", "samples": 7, "val_accuracy": 0.5, "projection_std": 0.7, "truncation_psi": 0.7}
        api.Direction(name, v / np.linalg.norm(v), layers, "ffhq-mobile", meta).save(
            tmp_path / "dirs" / "ffhq-mobile" / f"{name}.npz")
    monkeypatch.setenv("LATENTLAB_DIRECTIONS", str(tmp_path / "dirs"))
    monkeypatch.setattr(api, "load_generator", lambda *a, **k: tiny)
    return tiny


def test_demo_steps_run_on_a_tiny_generator(tmp_path, tiny_demo):
    """Every real step runs through the API and writes the files its printed commands write: the
    projection step picks a method per photo and loads its latent; edits, style and swap use it."""
    from latentlab import demo

    events = []
    path, failed = demo.run_demo(tmp_path / "d", quick=True, num_steps=3, echo=lambda m: None,
                                 progress=events.append, device="cpu")
    assert failed == []
    out = tmp_path / "d"
    text = path.read_text()
    assert re.findall(r'data-status="(\w+)"', text) == ["done"] * 6
    assert {e.stage for e in events} >= {"project", "metrics"}  # the projection reported through progress=
    # the commands say what the steps did: the paper preset split into its two methods
    assert "--preset paper" in text and "--compare-methods" in text and "--preset seed" not in text
    assert "<th>preset</th><td>paper</td>" in text
    for sub in ("method1", "method2"):
        assert (out / "projection" / sub / "astronaut" / "latent.npz").is_file()
    assert load_image(out / "projection" / "compare_methods.png").shape[0] == 256
    best = json.loads((out / "summary.json").read_text())["sections"][2]["metrics"]
    assert [m["method"] for m in best] == ["1: pixel MSE", "2: VGG/LPIPS features"]
    assert all(m["steps"] == 3 for m in best)
    for name in ("smile", "age", "yaw"):  # quick: 3 frames of 256 px per sweep, pasted strip beside it
        assert load_image(out / "edits" / f"astronaut_{name}_sweep_{name}.png").shape == (256, 3 * 256 + 2 * 4, 3)
        assert (out / "edits" / f"astronaut_{name}_sweep_{name}_pasted.png").is_file()
        assert (out / "edits" / f"astronaut_{name}.npz").is_file()
    assert "smile=-2:2:3@0-5" in text  # 2 sigma of the direction (sigma 0.7 / 0.7 = 1 W unit)
    assert (out / "style" / "astronaut_x_face_seed5_compare.png").is_file()
    assert (out / "style" / "astronaut_x_face_seed5_pasted.png").is_file()
    swap = json.loads((out / "swap" / "face_seed5_on_astronaut_metrics.json").read_text())
    assert swap["method"] == "mix" and (out / "swap" / "face_seed5_on_astronaut_pasted.png").is_file()
    assert len(re.findall(r'src="data:image/png', text)) >= 10


def test_demo_photos_dir_is_checked(tmp_path):
    from latentlab.cli import main

    empty = tmp_path / "empty"
    empty.mkdir()
    r = CliRunner().invoke(main, ["demo", "--outdir", str(tmp_path / "o"), "--photos", str(empty)])
    assert r.exit_code == 1 and "folder holds no images" in r.output
    named = tmp_path / "named"
    named.mkdir()
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(named / "astronaut.jpg")
    r = CliRunner().invoke(main, ["demo", "--outdir", str(tmp_path / "o"), "--photos", str(named)])
    assert r.exit_code == 1 and "collide" in r.output


def test_demo_uses_the_public_api_only():
    """latentlab/demo.py imports latentlab.api, latentlab.errors and latentlab.progress only (the
    front-end rule the import contracts enforce), and reports progress through them, never a tqdm
    of its own."""
    import ast

    path = Path(__file__).resolve().parents[1] / "latentlab" / "demo.py"
    text = path.read_text()
    assert "tqdm" not in text
    seen = set()
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Import):
            assert not any(a.name.startswith("latentlab") for a in node.names), ast.dump(node)
        elif isinstance(node, ast.ImportFrom) and node.level == 1:
            what = node.module or ",".join(a.name for a in node.names)
            assert what in ("api", "errors", "progress"), what
            seen.add(what)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            assert not node.module.startswith("latentlab"), node.module
    assert seen == {"api", "errors", "progress"}

