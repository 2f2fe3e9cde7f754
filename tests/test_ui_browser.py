"""``latentlab ui``: the logic without a server, the HTTP layer, and the page in headless Chromium.

The browser test serves the app on a free 127.0.0.1 port from a thread, with a tiny StyleGAN2
(32 px) saved in latentlab's native format, and drives Debian's ``chromium`` through Playwright
with the page's real Content-Security-Policy: upload -> project -> edit slider -> download, a
non-image upload, cancelling a projection, and a pivotal-tuning projection chosen with the preset
select whose latent and tuning delta download together; the CSRF token travels with every POST, a POST
without it and one from another origin are refused. It also records every request the page
makes: all must go to the app's own origin. The security probes without a browser are in
``test_ui_security.py``.
It is skipped (with the reason) when ``/usr/bin/chromium`` or the ``playwright`` package is missing.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import make_tiny, save_tiny
from latentlab.api import PRESETS, Direction, load_generator

CHROMIUM = os.environ.get("LATENTLAB_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
#: Rows of the tiny model's W+ (resolutions 4, 8, 8, 16, 16, 32, 32, 32) that the default range "0-5"
#: (StyleGAN2-1024 rows 0..4 = 4, 8, 8, 16, 16 px) maps to, worked out by hand.
SMILE_ROWS = [0, 1, 2, 3, 4]


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_cache):
    return tmp_cache


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """(generator path, directions folder, the smile vector) for the tiny 32 px StyleGAN2 with noise."""
    root = tmp_path_factory.mktemp("ui")
    path = save_tiny(make_tiny(0, noise=True), root / "tiny.safetensors")
    v = np.random.RandomState(1).randn(16).astype(np.float32)
    v /= np.linalg.norm(v)
    Direction("smile", v, "0-5", "tiny").save(root / "dirs" / "tiny" / "smile.npz")
    return path, root / "dirs", v


@pytest.fixture(scope="module")
def astronaut_png(tmp_path_factory) -> Path:
    from skimage import data

    p = tmp_path_factory.mktemp("photos") / "astronaut.png"
    Image.fromarray(data.astronaut()).save(p)
    return p


def _studio(tiny, steps: int = 4, preset: str = "paper"):
    from latentlab.ui.core import Studio

    path, dirs, _ = tiny
    G = load_generator(str(path), "cpu", progress=False)
    # drags on the tiny model: a big step, sub-goals 1 px apart, and only rows 0-4 (4..16 px) move so
    # that the rest can be checked
    return Studio(G, str(path), direction_dirs=[dirs], default_steps=steps, preset=preset,
                  drag_settings={"lr": 0.02, "rows": "rows:0-5", "line_step": 16.0})


def _session(tiny, steps: int = 4, preset: str = "paper"):
    """A session of a fresh studio (what one browser sees)."""
    return _studio(tiny, steps, preset).new_session()


def _render(G, ws: np.ndarray, noise: dict[str, np.ndarray]) -> np.ndarray:
    """Independent render: set the noise buffers by hand, synthesise, convert to uint8."""
    bufs = dict(G.named_buffers())
    saved = {k: bufs[k].clone() for k in noise}
    try:
        with torch.no_grad():
            for k, v in noise.items():
                bufs[k].copy_(torch.from_numpy(v).reshape(bufs[k].shape))
            img = G.synthesis(torch.from_numpy(ws), noise_mode="const")[0]
    finally:
        with torch.no_grad():
            for k, v in saved.items():
                bufs[k].copy_(v)
    return np.clip(np.rint((img.permute(1, 2, 0).numpy() + 1) * 127.5), 0, 255).astype(np.uint8)


# ------------------------------------------------------------------------------ logic, no server
def test_studio_rejects_bad_input(tiny, astronaut_png):
    from latentlab.errors import LatentlabError

    st = _session(tiny)
    with pytest.raises(LatentlabError, match="notes.txt: not an image"):
        st.add_photo(b"just some text", "notes.txt")
    with pytest.raises(LatentlabError, match="empty upload"):
        st.add_photo(b"", "empty.png")
    buf = io.BytesIO()
    Image.new("RGB", (300, 300), (128, 128, 128)).save(buf, format="PNG")
    with pytest.raises(LatentlabError, match=r"^wall\.png: no face found$"):
        st.add_photo(buf.getvalue(), "wall.png")
    with pytest.raises(LatentlabError, match="unknown photo"):
        st.start_projection("nope", 3)
    pid = st.add_photo(astronaut_png.read_bytes(), "astronaut.png")["photo"]
    with pytest.raises(LatentlabError, match="steps must be"):
        st.start_projection(pid, 0)
    with pytest.raises(LatentlabError, match="unknown projection preset 'seed'; choose from " + ", ".join(PRESETS)):
        st.start_projection(pid, 3, preset="seed")
    with pytest.raises(LatentlabError, match="space must be 'w' or 'w\\+'"):
        st.start_projection(pid, 3, space="z")
    lid = st.sample_latent(0)
    with pytest.raises(LatentlabError, match="unknown direction 'frown'"):
        st.start_render(lid, {"frown": 1.0})
    with pytest.raises(LatentlabError, match="bad layer range"):
        st.start_render(lid, {"smile": 1.0}, {"smile": "nine-eighteen"})
    with pytest.raises(LatentlabError, match="bad layer range"):
        st.start_render(lid, style={"seed": 1, "layers": "fine-ish"})
    with pytest.raises(LatentlabError, match="unknown swap tuning 'c'"):
        st.start_swap(lid, st.sample_latent(1), tuning="c")
    with pytest.raises(LatentlabError, match="bad layer range"):
        st.start_swap(lid, st.sample_latent(1), "nine")
    with pytest.raises(LatentlabError, match="unknown latent"):
        st.start_swap(lid, "nope")
    assert st.studio._current is None  # nothing was started


def test_studio_project_edit_style_swap_download(tiny, astronaut_png):
    from latentlab.errors import LatentlabError
    from latentlab.ui.core import BusyError

    st = _session(tiny)
    _, _, v = tiny
    p = st.add_photo(astronaut_png.read_bytes(), "astronaut.png")
    assert st.images[p["aligned_image"]].shape == (32, 32, 3)
    job = st.wait(st.start_projection(p["photo"], 4), 60)
    assert job.status == "done", job.error
    assert job.step == 4 and job.preview[:8] == b"\x89PNG\r\n\x1a\n"
    base = st.latents[job.result["latent"]]
    assert job.total == 4 and job.result["preset"] == "paper" and job.result["tuned"] is False
    assert base.tuning is None and base.latent.photo.name == "astronaut" and base.name == "astronaut"
    m = job.result["metrics"]
    assert m["steps"] == 4 and 0 <= m["lpips_vgg_loss_net"] < 1.5 and np.isfinite(m["psnr"])
    assert m == base.metrics and m["space"] == "w+"  # invert's own figures, shown as they are
    # the shown reconstruction is the latent rendered with its own noise maps
    noise = {k: t.numpy() for k, t in base.noise.items()}
    assert np.abs(st.images[job.result["image"]].astype(int)
                  - _render(st.G, base.ws.numpy(), noise).astype(int)).max() <= 1

    # a direction on its layer range: ws + 2 v on rows 0..4 only
    job = st.wait(st.start_render(job.result["latent"], {"smile": 2.0}), 60)
    assert job.status == "done", job.error
    edited = st.latents[job.result["latent"]].ws.numpy()
    expect = base.ws.numpy().copy()
    expect[0, SMILE_ROWS] += 2.0 * v
    np.testing.assert_allclose(edited, expect, atol=1e-6)
    assert np.abs(st.images[job.result["image"]].astype(int) - _render(st.G, expect, noise).astype(int)).max() <= 1

    # style mixing from a sampled face: rows whose resolution is 32 px (reference rows 9-18 -> 128..1024 px,
    # clamped to this model's finest 32 px) come from the sample
    src = st.latents[st.sample_latent(5)].ws.numpy()
    ws = st.edited(base_id := job.result["latent"], style={"seed": 5, "layers": "9-18"}).ws.numpy()
    want = st.latents[base_id].ws.numpy().copy()
    want[0, 5:] = src[0, 5:]
    np.testing.assert_allclose(ws, want, atol=1e-6)

    # swap: identity rows from the face (reference rows 0-2 = 4 and 8 px -> this model's rows 0, 1, 2)
    face_id = st.sample_latent(9)
    job = st.wait(st.start_swap(base_id, face_id, "0-3"), 60)
    assert job.status == "done", job.error
    swapped = st.latents[job.result["latent"]].ws.numpy()
    want = st.latents[base_id].ws.numpy().copy()
    want[0, :3] = st.latents[face_id].ws.numpy()[0, :3]
    np.testing.assert_allclose(swapped, want, atol=1e-6)
    assert job.result["pasted_image"] is not None and st.images[job.result["pasted_image"]].shape == (512, 512, 3)

    # style and a direction together: the style rows first, then the direction on its rows
    both = st.edited(base_id, {"smile": 1.0},
                     style={"seed": 5, "layers": "9-18"}).ws.numpy()
    want = st.latents[base_id].ws.numpy().copy()
    want[0, 5:] = src[0, 5:]
    want[0, SMILE_ROWS] += v
    np.testing.assert_allclose(both, want, atol=1e-6)
    # all sliders at zero and no style: the latent as it is, drawn again as a new result
    same = st.edited(base_id, {"smile": 0.0}, {"smile": "nine"})
    np.testing.assert_array_equal(same.ws.numpy(), st.latents[base_id].ws.numpy())

    # download: the project's latent.npz format, named after the photo
    assert st.latent_name(base_id) == "astronaut_edit"
    with np.load(io.BytesIO(st.latent_npz(base_id)), allow_pickle=False) as z:
        np.testing.assert_allclose(z["ws"], expect, atol=1e-6)
        assert "align_matrix" in z.files and any(k.startswith("noise/") for k in z.files)
        assert "tuning" not in json.loads(str(z["settings"]))
    with pytest.raises(LatentlabError, match="carries no pivotal tuning"):
        st.latent_delta(base_id)

    # one job at a time; cancel keeps the best latent so far
    job = st.start_projection(p["photo"], 3000)
    with pytest.raises(BusyError):
        st.start_render(base_id, {"smile": 1.0})
    t0 = time.perf_counter()
    while job.step < 2 and time.perf_counter() - t0 < 60:
        time.sleep(0.05)
    st.cancel(job.id)
    st.wait(job, 60)
    assert job.status == "cancelled" and job.result["metrics"]["interrupted"] is True
    assert job.result["metrics"]["steps"] < 3000 and job.result["latent"] in st.latents


def test_studio_pivotal_tuning_progress_edit_swap_and_downloads(tiny, astronaut_png, tmp_path):
    """The pti preset through the UI: one progress bar over projection and tuning, a tuned latent
    whose edits and swaps keep (or blend) its tuning, and a download of the .npz with the delta
    it names and pins, which the API reads back to the same image."""
    from latentlab import api

    st = _session(tiny, steps=3, preset="pti")
    tune_steps = PRESETS["pti"].tuning.num_steps
    p = st.add_photo(astronaut_png.read_bytes(), "astronaut.png")
    job = st.start_projection(p["photo"])
    assert job.total == 3 + tune_steps
    steps_seen = set()
    while job.status == "running":
        steps_seen.add(job.step)
        time.sleep(0.02)
    st.wait(job, 120)
    assert job.status == "done", job.error
    assert job.step == job.total and max(steps_seen) > 3  # the bar goes on through the tuning stage
    assert job.preview[:8] == b"\x89PNG\r\n\x1a\n" and job.result["tuned"] is True and job.result["preset"] == "pti"
    m = job.result["metrics"]
    assert m["steps"] == 3 and m["tuning_steps"] <= tune_steps and m["space"] == "w" and "pivot_psnr" in m
    tuned = st.latents[job.result["latent"]]
    assert tuned.tuning is not None and m == tuned.metrics

    # the two downloads belong together: the .npz names the delta and pins its SHA-256
    npz, delta = st.latent_npz(job.result["latent"]), st.latent_delta(job.result["latent"])
    assert st.delta_file_name(job.result["latent"]) == "astronaut.pti.safetensors"
    with np.load(io.BytesIO(npz), allow_pickle=False) as z:
        record = json.loads(str(z["settings"]))["tuning"]
    assert record == {"file": "astronaut.pti.safetensors", "sha256": hashlib.sha256(delta).hexdigest()}
    (tmp_path / "astronaut.npz").write_bytes(npz)
    (tmp_path / "astronaut.pti.safetensors").write_bytes(delta)
    loaded = api.load_latent(tmp_path / "astronaut.npz", st.G)
    assert loaded.tuning is not None
    assert np.abs(loaded.image.array.astype(int) - st.images[job.result["image"]].astype(int)).max() <= 1

    # an edit keeps the tuning; a swap draws with the tuning its setting picks
    job = st.wait(st.start_render(job.result["latent"], {"smile": 1.0}), 60)
    assert job.status == "done" and job.result["tuned"] is True
    edit_id = job.result["latent"]
    assert st.latents[edit_id].tuning is tuned.tuning
    face = st.sample_latent(9)
    for choice, want in (("b", tuned.tuning), ("none", None), ("blend", 0.5), ("0.7", 0.3)):
        job = st.wait(st.start_swap(edit_id, face, "0-3", choice), 60)
        assert job.status == "done", job.error
        out = st.latents[job.result["latent"]]
        assert job.result["tuned"] is (want is not None)
        if want is None or not isinstance(want, float):
            assert out.tuning is want
        else:  # face untuned (delta 0): its share of the blend scales the photo's delta
            for k, d in tuned.tuning.delta.items():
                torch.testing.assert_close(out.tuning.delta[k], (want * d).half().float(), atol=1e-3, rtol=1e-2)
        assert st.images[job.result["pasted_image"]].shape == (512, 512, 3)

    # cancelled while tuning: the latent so far is kept, and says it was interrupted
    job = st.start_projection(p["photo"], 3)
    t0 = time.perf_counter()
    while job.step < 6 and job.status == "running" and time.perf_counter() - t0 < 60:
        time.sleep(0.02)
    st.cancel(job.id)
    st.wait(job, 60)
    assert job.status == "cancelled" and 3 < job.step < job.total
    kept = st.latents[job.result["latent"]]
    assert job.result["metrics"]["interrupted"] is True and kept.latent.interrupted
    assert job.result["tuned"] is (kept.tuning is not None)


def test_http_errors_are_json_messages(tiny, astronaut_png):
    from latentlab.ui.app import create_app

    c = create_app(_studio(tiny)).test_client()
    token = c.get("/api/session").json["csrf_token"]  # the session cookie is kept by the client
    c.environ_base["HTTP_X_CSRF_TOKEN"] = token
    r = c.post("/api/photos", data={"photo": (io.BytesIO(b"%PDF-1.4 not a photo"), "scan.pdf")},
               content_type="multipart/form-data")
    assert r.status_code == 400 and r.json["error"] == "scan.pdf: not an image file (or a format Pillow cannot read)"
    r = c.post("/api/photos?name=x.txt", data=b"plain words", content_type="application/octet-stream")
    assert r.status_code == 400 and r.json["error"].startswith("x.txt: not an image file")
    r = c.post("/api/photos?name=a.png", data=astronaut_png.read_bytes(), content_type="application/octet-stream")
    assert r.status_code == 200 and r.json["size"] == [512, 512]
    assert c.post("/api/project", json={"photo": "missing"}).status_code == 404
    assert c.post("/api/render", data="x", content_type="text/plain").json["error"].startswith("expected a JSON")
    page = c.get("/")
    assert page.status_code == 200 and "default-src 'none'" in page.headers["Content-Security-Policy"]
    assert "unsafe-inline" not in page.headers["Content-Security-Policy"]
    html = page.get_data(as_text=True)
    assert "http://" not in html and "https://" not in html  # nothing on the page points elsewhere


# ------------------------------------------------------------------------------ the browser
_ATTACKERS: dict[str, Any] = {}

ATTACK_PAGE = """<!DOCTYPE html><html><body><script>
(async () => {
  const ui = "@UI@";
  const fd = new FormData(); fd.append("photo", new Blob(["not really a photo"]), "x.png");
  try { await fetch(ui + "/api/photos", {method: "POST", mode: "no-cors", credentials: "include", body: fd}); } catch (e) {}
  try { await fetch(ui + "/api/info", {mode: "no-cors", credentials: "include"}); } catch (e) {}
  document.body.dataset.done = "1";
})();
</script></body></html>"""


def _serve_attacker(root: Path, ui_url: str) -> str:
    """Serve a page that tries cross-site requests against ``ui_url`` from another local port."""
    import functools
    import http.server

    root.mkdir(parents=True, exist_ok=True)
    (root / "attack.html").write_text(ATTACK_PAGE.replace("@UI@", ui_url))
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(root))
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{srv.server_port}"
    _ATTACKERS[url] = srv
    return url


def attack_server_stop(url: str) -> None:
    srv = _ATTACKERS.pop(url)
    srv.shutdown()
    srv.server_close()


def _playwright():
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} not found: apt-get install -y chromium (CI must have it)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("the playwright package is not installed: pip install playwright (CI must have it)")
    return sync_playwright


@pytest.fixture(scope="module")
def server(tiny):
    from latentlab.ui.app import make_server

    studio = _studio(tiny, steps=4)
    srv = make_server(studio, "127.0.0.1", 0)
    app, seen = srv.app, []

    def recorder(environ, start_response):  # (method, path, status, Sec-Fetch-Site) of every request answered
        def start(status, headers, exc_info=None):
            seen.append((environ["REQUEST_METHOD"], environ["PATH_INFO"], int(status.split()[0]),
                         environ.get("HTTP_SEC_FETCH_SITE", "")))
            return start_response(status, headers, exc_info)
        return app(environ, start)

    srv.app = recorder
    th = threading.Thread(target=srv.serve_forever, daemon=True)
    th.start()
    yield f"http://127.0.0.1:{srv.server_port}", studio, seen
    srv.shutdown()
    srv.server_close()


def _wait_js(page, expression: str, timeout: float) -> None:
    """Poll ``expression`` until true. Playwright's wait_for_function evaluates its predicate with
    eval() inside the page, which the page's CSP (no 'unsafe-eval') rightly forbids; page.evaluate
    runs through the DevTools protocol, outside the page's policy."""
    t0 = time.perf_counter()
    while not page.evaluate(expression):
        if time.perf_counter() - t0 > timeout:
            raise AssertionError(f"timed out after {timeout} s waiting for {expression}")
        time.sleep(0.1)


def test_ui_in_headless_chromium(server, tiny, astronaut_png, tmp_path):
    sync_playwright = _playwright()
    url, studio, seen = server
    _, _, v = tiny
    bad = tmp_path / "notes.txt"
    bad.write_text("this is not a photo")
    requests: list[str] = []
    posts: list[tuple[str, str | None]] = []
    console: list[str] = []
    profile = tmp_path / "profile"
    with sync_playwright() as p:
        # The page's real Content-Security-Policy applies (no bypass_csp).
        ctx = p.chromium.launch_persistent_context(str(profile), executable_path=CHROMIUM, headless=True,
                                                   args=CHROMIUM_ARGS, accept_downloads=True)
        try:
            page = ctx.new_page()
            page.on("request", lambda r: requests.append(r.url))
            page.on("request", lambda r: posts.append((r.url, r.headers.get("x-csrf-token")))
                    if r.method == "POST" else None)
            page.on("console", lambda m: console.append(m.text))
            resp = page.goto(url + "/")
            assert "'unsafe-inline'" not in resp.headers["content-security-policy"]
            page.wait_for_selector("body[data-ready='1']", timeout=20000)
            token = page.get_attribute("meta[name='csrf-token']", "content")
            # the session cookie: HttpOnly (invisible to the page's script), SameSite=Strict, Path=/
            (cookie,) = [c for c in ctx.cookies(url) if c["name"].startswith("latentlab_session")]
            assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/"
            assert "latentlab_session" not in page.evaluate("document.cookie")
            session = studio.session(cookie["value"])
            assert session is not None and session.csrf_token == token
            assert "32 px" in page.inner_text("#model")
            assert page.locator("#dir-smile").count() == 1
            assert "rows:0-5" in page.inner_text("#rows-smile")
            # the presets, the studio's chosen; picking one proposes its steps and space
            options = page.evaluate("[...document.querySelectorAll('#preset option')].map((o) => o.value)")
            assert options == list(PRESETS) and page.input_value("#preset") == "paper"
            assert page.input_value("#steps") == "4" and page.input_value("#space") == "w+"
            page.select_option("#preset", "pti")
            assert page.input_value("#steps") == str(PRESETS["pti"].num_steps) and page.input_value("#space") == "w"
            assert "pivotal tuning" in page.inner_text("#preset-note")
            page.select_option("#preset", "paper")

            # a non-image upload shows the message, the page keeps working
            page.set_input_files("#photo-file", str(bad))
            page.click("#upload-btn")
            page.wait_for_selector("#error", state="visible", timeout=20000)
            assert "notes.txt: not an image file" in page.inner_text("#error")
            assert page.is_disabled("#project-btn")

            # upload -> aligned face shown
            page.set_input_files("#photo-file", str(astronaut_png))
            page.click("#upload-btn")
            _wait_js(page, "document.getElementById('photo-aligned').naturalWidth === 32", 30)
            assert page.is_hidden("#error")

            # project a few steps -> progress, LPIPS, metrics, result
            page.fill("#steps", "4")
            page.click("#project-btn")
            page.wait_for_selector("#status[data-state='done']", timeout=60000)
            assert "lpips" in page.inner_text("#metrics")
            (proj,) = [j for j in session.jobs.values() if j.kind == "projection"]
            assert proj.result["preset"] == "paper" and proj.total == 4 and not proj.result["tuned"]
            assert page.locator("#dl-delta").count() == 0  # nothing tuned: no delta to download
            assert page.evaluate("document.getElementById('preview').naturalWidth") == 32
            assert page.evaluate("document.getElementById('result').naturalWidth") == 32
            assert page.evaluate("document.getElementById('progress').value") == 4
            base_src = page.get_attribute("#result", "src")
            with page.expect_download() as dl:
                page.click("#dl-latent")
            base = np.load(dl.value.path(), allow_pickle=False)["ws"]

            # move the slider -> a render job -> the result changes
            page.evaluate("() => { const r = document.getElementById('dir-smile'); r.value = '1.5';"
                          " r.dispatchEvent(new Event('input')); r.dispatchEvent(new Event('change')); }")
            _wait_js(page, f"document.getElementById('result').getAttribute('src') !== {base_src!r}", 60)
            page.wait_for_selector("#status[data-state='done']", timeout=60000)
            assert page.inner_text("#val-smile") == "1.5"
            with page.expect_download() as dl:
                page.click("#dl-latent")
            edited = np.load(dl.value.path(), allow_pickle=False)["ws"]
            expect = base.copy()
            expect[0, SMILE_ROWS] += 1.5 * v
            np.testing.assert_allclose(edited, expect, atol=1e-6)
            with page.expect_download() as dl:
                page.click("#dl-image")
            png = Image.open(dl.value.path())
            assert png.format == "PNG" and png.size == (32, 32)

            # a long projection can be cancelled; the best latent so far is kept
            page.fill("#steps", "3000")
            page.click("#project-btn")
            _wait_js(page, "document.getElementById('progress').value >= 2", 60)
            assert "LPIPS" in page.inner_text("#status")  # live progress: step and LPIPS
            page.click("#cancel-btn")
            page.wait_for_selector("#status[data-state='cancelled']", timeout=60000)
            assert "cancelled" in page.inner_text("#status")
            assert page.is_enabled("#project-btn")

            # pivotal tuning, chosen on the page: the latent and its delta download together
            page.select_option("#preset", "pti")
            page.fill("#steps", "2")
            page.click("#project-btn")
            page.wait_for_selector("#status[data-state='done']", timeout=120000)
            tune_steps = PRESETS["pti"].tuning.num_steps
            assert page.evaluate("document.getElementById('progress').max") == 2 + tune_steps
            assert "tuning_steps" in page.inner_text("#metrics")
            with page.expect_download() as dl:
                page.click("#dl-latent")
            assert dl.value.suggested_filename == "astronaut.npz"
            with np.load(dl.value.path(), allow_pickle=False) as z:
                record = json.loads(str(z["settings"]))["tuning"]
            with page.expect_download() as dl:
                page.click("#dl-delta")
            assert dl.value.suggested_filename == record["file"] == "astronaut.pti.safetensors"
            assert hashlib.sha256(Path(dl.value.path()).read_bytes()).hexdigest() == record["sha256"]

            # every POST the page made carried the session's token; one without it is refused
            assert len(posts) >= 6 and all(t == token for _, t in posts), posts
            status, err = page.evaluate(
                "async () => { const r = await fetch('/api/project', {method: 'POST', headers: "
                "{'Content-Type': 'application/json'}, body: JSON.stringify({photo: 'x'})});"
                " return [r.status, (await r.json()).error]; }")
            assert status == 403 and "X-CSRF-Token" in err
            n_photos, n_jobs = len(session.photos), len(session.jobs)

            # another site (a page on another local port: same-site, so a SameSite=Strict cookie
            # alone would not stop it) posts to the UI: refused before anything is read
            attack = _serve_attacker(tmp_path / "evil", url)
            before = len(seen)
            try:
                evil = ctx.new_page()
                evil.goto(attack + "/attack.html")
                evil.wait_for_selector("body[data-done='1']", state="attached", timeout=20000)
                evil.close()
            finally:
                attack_server_stop(attack)
            # the UI's own page may still fetch its last image meanwhile (same-origin); everything
            # else in that window came from the attacker's page and was refused
            foreign = sorted(r[:3] for r in seen[before:] if r[3] != "same-origin")
            assert foreign == [("GET", "/api/info", 403), ("POST", "/api/photos", 403)], seen[before:]
            assert len(session.photos) == n_photos and len(session.jobs) == n_jobs
        finally:
            ctx.close()
    assert not [m for m in console if "Content Security Policy" in m], console
    own = [u for u in requests if not (u.startswith(url + "/") or u.startswith("data:") or u.startswith("blob:"))]
    assert not own, f"the page requested other origins: {own}"
    assert any("/api/project" in u for u in requests) and any("/api/render" in u for u in requests)


def test_drag_in_headless_chromium(server, astronaut_png, tmp_path):
    """Click a handle and a target on the result image, start the drag: the handle ends nearer its
    target, only the drag's W+ rows change, the sliders then edit the dragged face, Undo goes back."""
    sync_playwright = _playwright()
    url, studio, _ = server
    with sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(str(tmp_path / "profile"), executable_path=CHROMIUM, headless=True,
                                                   args=CHROMIUM_ARGS, accept_downloads=True)
        try:
            page = ctx.new_page()
            page.goto(url + "/")
            page.wait_for_selector("body[data-ready='1']", timeout=20000)
            (cookie,) = [c for c in ctx.cookies(url) if c["name"].startswith("latentlab_session")]
            session = studio.session(cookie["value"])
            page.set_input_files("#photo-file", str(astronaut_png))
            page.click("#upload-btn")
            _wait_js(page, "document.getElementById('photo-aligned').naturalWidth === 32", 30)
            page.fill("#steps", "4")
            page.click("#project-btn")
            page.wait_for_selector("#status[data-state='done']", timeout=60000)
            base_src = page.get_attribute("#result", "src")
            with page.expect_download() as dl:
                page.click("#dl-latent")
            base = np.load(dl.value.path(), allow_pickle=False)["ws"]
            assert page.is_disabled("#drag-btn")  # no points yet

            box = page.locator("#drag-canvas").bounding_box()
            at = lambda x, y: (box["x"] + (x + 0.5) / 32 * box["width"], box["y"] + (y + 0.5) / 32 * box["height"])  # noqa: E731
            page.mouse.click(*at(10, 12))
            assert page.inner_text("#drag-info") == "now click the target"
            page.mouse.click(*at(16, 12))
            assert page.inner_text("#drag-info") == "1 pair(s)"
            points = page.evaluate("S.drag.points")
            np.testing.assert_allclose(points, [[10, 12, 16, 12]], atol=0.15)  # the clicks (to a screen pixel), in aligned pixels
            page.fill("#drag-steps", "60")
            page.click("#drag-btn")
            _wait_js(page, "S.drag.undo.length === 1", 120)  # the drag's result is in
            (job,) = [j for j in session.jobs.values() if j.kind == "drag"]
            assert job.status == "done" and job.result["steps"] <= 60
            hx, hy = job.result["handles"][0]
            assert np.hypot(16 - hx, 12 - hy) < np.hypot(16 - points[0][0], 12 - points[0][1]) - 2  # moved toward it
            np.testing.assert_allclose(page.evaluate("S.drag.points")[0][:2], [hx, hy])  # the handle follows
            assert page.get_attribute("#result", "src") != base_src
            with page.expect_download() as dl:
                page.click("#dl-latent")
            dragged = np.load(dl.value.path(), allow_pickle=False)["ws"]
            changed = np.abs(dragged - base).max(axis=2)[0] > 0
            assert changed[:5].any() and not changed[5:].any()  # the studio's drag rows, 0-4

            # the sliders edit the dragged face; Undo restores the projection as the base
            page.evaluate("() => { const r = document.getElementById('dir-smile'); r.value = '1';"
                          " r.dispatchEvent(new Event('change')); }")
            dragged_src = page.get_attribute("#result", "src")
            _wait_js(page, f"document.getElementById('result').getAttribute('src') !== {dragged_src!r}", 60)
            (render,) = [j for j in session.jobs.values() if j.kind == "render"]
            assert render.status == "done"
            edited = session.latents.need(render.result["latent"]).ws.numpy()
            np.testing.assert_allclose(np.delete(edited, SMILE_ROWS, axis=1), np.delete(dragged, SMILE_ROWS, axis=1))
            page.click("#drag-undo")
            assert page.get_attribute("#result", "src") == base_src and page.is_disabled("#drag-undo")
        finally:
            ctx.close()
