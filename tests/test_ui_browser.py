"""``latentlab ui``: the logic without a server, the HTTP layer, and the page in headless Chromium.

The browser test serves the app on a free 127.0.0.1 port from a thread, with a tiny StyleGAN2
(32 px) saved in latentlab's native format, and drives Debian's ``chromium`` through Playwright
with the page's real Content-Security-Policy: upload -> project -> edit slider -> download, a
non-image upload, and cancelling a projection; the CSRF token travels with every POST, a POST
without it and one from another origin are refused. It also records every request the page
makes: all must go to the app's own origin. The security probes without a browser are in
``test_ui_security.py``.
It is skipped (with the reason) when ``/usr/bin/chromium`` or the ``playwright`` package is missing.
"""

from __future__ import annotations

import io
import os
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from latentlab.checkpoints.native import save_native
from latentlab.editing.directions import Direction
from latentlab.models import build_generator
from latentlab.registry import load_generator

CHROMIUM = os.environ.get("LATENTLAB_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
#: Rows of the tiny model's W+ (resolutions 4, 8, 8, 16, 16, 32, 32, 32) that the seed range "0-5"
#: (StyleGAN2-1024 rows 0..4 = 4, 8, 8, 16, 16 px) maps to, worked out by hand.
SMILE_ROWS = [0, 1, 2, 3, 4]


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_cache):
    return tmp_cache


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """(generator path, directions folder, the smile vector) for a 32 px StyleGAN2 with noise."""
    root = tmp_path_factory.mktemp("ui")
    cfg = dict(z_dim=16, w_dim=16, img_resolution=32, img_channels=3, mapping_kwargs=dict(num_layers=2),
               synthesis_kwargs=dict(channel_base=256, channel_max=16))
    torch.manual_seed(0)
    G = build_generator("stylegan2", cfg)
    with torch.no_grad():
        for name, p in G.named_parameters():
            if name.endswith("noise_strength"):
                p.fill_(0.1)
    path = save_native("stylegan2", G.config, G.state_dict(), root / "tiny.safetensors")
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


def _studio(tiny, steps: int = 4):
    from latentlab.ui.core import Studio

    path, dirs, _ = tiny
    G = load_generator(str(path), "cpu", progress=False)
    return Studio(G, str(path), direction_dirs=[dirs], default_steps=steps)


def _session(tiny, steps: int = 4):
    """A session of a fresh studio (what one browser sees)."""
    return _studio(tiny, steps).new_session()


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
    lid = st.sample_latent(0)
    with pytest.raises(LatentlabError, match="unknown direction 'frown'"):
        st.start_render(lid, {"frown": 1.0})
    with pytest.raises(LatentlabError, match="bad layer range"):
        st.start_render(lid, {"smile": 1.0}, {"smile": "nine-eighteen"})
    assert st.studio._current is None  # nothing was started


def test_studio_project_edit_style_swap_download(tiny, astronaut_png):
    from latentlab.ui.core import BusyError

    st = _session(tiny)
    _, _, v = tiny
    p = st.add_photo(astronaut_png.read_bytes(), "astronaut.png")
    assert st.images[p["aligned_image"]].shape == (32, 32, 3)
    job = st.wait(st.start_projection(p["photo"], 4), 60)
    assert job.status == "done", job.error
    assert job.step == 4 and job.preview[:8] == b"\x89PNG\r\n\x1a\n"
    base = st.latents[job.result["latent"]]
    m = job.result["metrics"]
    assert m["steps"] == 4 and 0 <= m["lpips_vgg_loss_net"] < 1.5 and np.isfinite(m["psnr"])
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

    # style mixing from a sampled face: rows whose resolution is 32 px (seed rows 9-18 -> 128..1024 px,
    # clamped to this model's finest 32 px) come from the sample
    src = st.latents[st.sample_latent(5)].ws.numpy()
    ws = st.edited_ws(base_id := job.result["latent"], style={"seed": 5, "layers": "9-18"}).numpy()
    want = st.latents[base_id].ws.numpy().copy()
    want[0, 5:] = src[0, 5:]
    np.testing.assert_allclose(ws, want, atol=1e-6)

    # swap: identity rows from the face (seed rows 0-2 = 4 and 8 px -> this model's rows 0, 1, 2)
    face_id = st.sample_latent(9)
    job = st.wait(st.start_swap(base_id, face_id, "0-3"), 60)
    assert job.status == "done", job.error
    swapped = st.latents[job.result["latent"]].ws.numpy()
    want = st.latents[base_id].ws.numpy().copy()
    want[0, :3] = st.latents[face_id].ws.numpy()[0, :3]
    np.testing.assert_allclose(swapped, want, atol=1e-6)
    assert job.result["pasted_image"] is not None and st.images[job.result["pasted_image"]].shape == (512, 512, 3)

    # download: the project's latent.npz format
    with np.load(io.BytesIO(st.latent_npz(base_id)), allow_pickle=False) as z:
        np.testing.assert_allclose(z["ws"], expect, atol=1e-6)
        assert "align_matrix" in z.files and any(k.startswith("noise/") for k in z.files)

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

            # every POST the page made carried the session's token; one without it is refused
            assert len(posts) >= 5 and all(t == token for _, t in posts), posts
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
