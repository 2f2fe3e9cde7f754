"""The web UI under hostile requests, with Flask's test client and a tiny generator.

One test per probe: a foreign Host header (DNS rebinding), requests from another origin or site and
without the CSRF token, one browser reading another's photos, results, latents and jobs, a
small-file huge-pixel upload and the memory kept per upload, and malformed requests that must get
one-line JSON errors. The same flow in a real browser (CSP, token, a cross-site page) is in
``test_ui_browser.py``.
"""

from __future__ import annotations

import io
import json
import re
import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import make_tiny
from latentlab.api import Direction


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_cache):
    return tmp_cache


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """(the tiny 32 px StyleGAN2 with noise inputs, a folder with a 'smile' direction for it)."""
    G = make_tiny(0, noise=True)
    root = tmp_path_factory.mktemp("uisec")
    v = np.random.RandomState(1).randn(16).astype(np.float32)
    Direction("smile", v / np.linalg.norm(v), "0-5", "tiny").save(root / "dirs" / "tiny" / "smile.npz")
    return G, root / "dirs"


def _studio(tiny, **kw):
    from latentlab.ui.core import Studio

    G, dirs = tiny
    return Studio(G, "tiny", direction_dirs=[dirs], default_steps=4, **kw)


def _app(tiny, *, port: int | None = None, hosts=(), **kw):
    from latentlab.ui.app import create_app

    studio = _studio(tiny, **kw)
    return create_app(studio, allowed_hosts=hosts, port=port), studio


def _browser(app, host: str = "localhost"):
    """A test client with a session (as the page gets it): (client, csrf token)."""
    c = app.test_client()
    r = c.get("/", headers={"Host": host})
    assert r.status_code == 200
    token = re.search(r'<meta name="csrf-token" content="([^"]+)">', r.get_data(as_text=True)).group(1)
    return c, token


def _png(w: int, h: int, color=(200, 120, 90)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), color).save(buf, format="PNG", optimize=False, compress_level=9)
    return buf.getvalue()


def _png_header_only(w: int, h: int) -> bytes:
    """A valid PNG signature and IHDR claiming w x h RGB pixels, and a few bytes of image data."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def _upload(c, token: str, data: bytes, name: str = "p.png", **headers):
    return c.post(f"/api/photos?name={name}&align=0", data=data, content_type="application/octet-stream",
                  headers={"X-CSRF-Token": token, **headers})


def _is_json_error(r, status: int) -> str:
    """The response is ``status`` with a one-line JSON error (no HTML, no traceback); its message."""
    assert r.status_code == status, (r.status_code, r.get_data(as_text=True)[:300])
    assert r.mimetype == "application/json", r.get_data(as_text=True)[:300]
    msg = r.json["error"]
    assert isinstance(msg, str) and msg and "\n" not in msg and "Traceback" not in msg and "<html" not in msg.lower()
    return msg


# ---------------------------------------------------------------------------- Host allow-list
def test_foreign_host_header_is_refused(tiny):
    """DNS rebinding: a page on attacker.example, resolved to 127.0.0.1, reads nothing."""
    app, studio = _app(tiny, port=7860, hosts=["studio.lan"])
    c, token = _browser(app, "127.0.0.1:7860")
    r = _upload(c, token, _png(100, 80), Host="127.0.0.1:7860")
    assert r.status_code == 200
    img = r.json["original_image"]
    for host in ("attacker.example:7860", "attacker.example", "127.0.0.1.nip.io:7860", "127.0.0.1:8000",
                 "localhost:7861", "[::2]:7860", "127.0.0.1:x"):
        for path in ("/", "/api/info", f"/api/images/{img}.png"):
            msg = _is_json_error(c.get(path, headers={"Host": host}), 403)
            assert "not allowed" in msg and "--allow-host" in msg
        _is_json_error(_upload(c, token, _png(100, 80), Host=host), 403)
    assert c.get(f"/api/images/{img}.png", headers={"Host": "127.0.0.1:7860"}).status_code == 200
    # the names the server answers to (each its own cookie domain, so a session of its own)
    for host in ("127.0.0.1:7860", "localhost:7860", "LOCALHOST:7860", "[::1]:7860", "studio.lan:7860", "localhost"):
        assert app.test_client().get("/api/session", headers={"Host": host}).status_code == 200, host


def test_make_server_allows_bound_host_and_port(tiny):
    from latentlab.ui.app import make_server

    srv = make_server(_studio(tiny), "127.0.0.1", 0, allow_hosts=["box.example"])
    try:
        app, port = srv.app, srv.server_port
        assert app.config["LATENTLAB_PORT"] == port
        c = app.test_client()
        assert c.get("/api/session", headers={"Host": f"box.example:{port}"}).status_code == 200
        other = port + 1 if port < 65535 else 1
        assert c.get("/api/session", headers={"Host": f"127.0.0.1:{other}"}).status_code == 403
        assert c.get("/api/session", headers={"Host": f"other.example:{port}"}).status_code == 403
    finally:
        srv.server_close()


# ---------------------------------------------------------------------------- Origin, fetch metadata, CSRF
def test_cross_origin_and_missing_csrf_token_are_refused(tiny):
    app, studio = _app(tiny)
    c, token = _browser(app)
    (session,) = studio.sessions.values()
    png = _png(100, 80)
    cases = [
        ({"X-CSRF-Token": token, "Origin": "http://evil.example"}, "origin"),
        ({"X-CSRF-Token": token, "Origin": "null"}, "origin"),
        ({"X-CSRF-Token": token, "Origin": "http://localhost:9999"}, "origin"),
        ({"X-CSRF-Token": token, "Origin": "https://localhost"}, "origin"),
        ({"X-CSRF-Token": token, "Sec-Fetch-Site": "cross-site"}, "cross-site"),
        ({"X-CSRF-Token": token, "Sec-Fetch-Site": "same-site"}, "same-site"),
        ({}, "X-CSRF-Token"),
        ({"X-CSRF-Token": ""}, "X-CSRF-Token"),
        ({"X-CSRF-Token": token[:-1] + ("A" if token[-1] != "A" else "B")}, "X-CSRF-Token"),
    ]
    for headers, word in cases:
        r = c.post("/api/photos?name=p.png&align=0", data=png, content_type="application/octet-stream",
                   headers=headers)
        assert word in _is_json_error(r, 403), headers
        # a classic cross-site form post (multipart) gets the same answer
        r = c.post("/api/photos", data={"photo": (io.BytesIO(png), "p.png"), "align": "0"},
                   content_type="multipart/form-data", headers=headers)
        _is_json_error(r, 403)
    assert len(session.photos) == 0  # nothing was uploaded
    lid = session.sample_latent(3)
    for headers in ({}, {"X-CSRF-Token": token, "Origin": "http://evil.example"}):
        _is_json_error(c.post("/api/render", json={"latent": lid}, headers=headers), 403)
        _is_json_error(c.post("/api/swap", json={"target": lid, "face": lid}, headers=headers), 403)
        _is_json_error(c.post("/api/project", json={"photo": "x"}, headers=headers), 403)
    assert not session.jobs
    # reads from another site are refused too; the page's own requests pass
    _is_json_error(c.get("/api/info", headers={"Sec-Fetch-Site": "cross-site"}), 403)
    assert c.get("/api/info", headers={"Sec-Fetch-Site": "same-origin"}).status_code == 200
    ok = c.post("/api/photos?name=p.png&align=0", data=png, content_type="application/octet-stream",
                headers={"X-CSRF-Token": token, "Origin": "http://localhost", "Sec-Fetch-Site": "same-origin"})
    assert ok.status_code == 200 and len(session.photos) == 1
    # the token belongs to its session: another browser's token does not work here
    c2, token2 = _browser(app)
    _is_json_error(_upload(c, token2, png), 403)
    assert _upload(c2, token2, png).status_code == 200


def test_page_csp_is_strict_with_a_fresh_nonce(tiny):
    app, _ = _app(tiny)
    c = app.test_client()
    pages = [c.get("/") for _ in range(2)]
    nonces = []
    for r in pages:
        csp = r.headers["Content-Security-Policy"]
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp and "default-src 'none'" in csp
        assert "frame-ancestors 'none'" in csp and r.headers["X-Frame-Options"] == "DENY"
        (nonce,) = set(re.findall(r"'nonce-([^']+)'", csp))
        html = r.get_data(as_text=True)
        # every inline script and style carries the nonce; no inline handler or style attribute
        assert len(re.findall(r"<(script|style)\b", html)) == html.count(f'nonce="{nonce}"') == 2
        assert not re.search(r"\son[a-z]+=|\sstyle=", html)
        nonces.append(nonce)
    assert nonces[0] != nonces[1]
    assert "nonce" not in c.get("/api/info").headers["Content-Security-Policy"]


# ---------------------------------------------------------------------------- sessions
def test_sessions_are_isolated(tiny):
    app, studio = _app(tiny)
    a, ta = _browser(app)
    b, tb = _browser(app)
    assert len(studio.sessions) == 2
    cookie = a.get_cookie("latentlab_session")
    assert cookie is not None and cookie.http_only and cookie.same_site == "Strict" and cookie.path == "/"
    assert len(cookie.value) >= 40  # 256 random bits

    up = _upload(a, ta, _png(120, 100))
    assert up.status_code == 200
    sa = studio.session(cookie.value)
    lid = sa.sample_latent(7)
    job = a.post("/api/render", json={"latent": lid, "strengths": {"smile": 1.0}},
                 headers={"X-CSRF-Token": ta}).json
    sa.wait(sa.job(job["id"]), 60)
    res = a.get(f"/api/jobs/{job['id']}").json
    assert res["status"] == "done", res
    own = [f"/api/images/{up.json['original_image']}.png", f"/api/images/{up.json['aligned_image']}.png",
           f"/api/images/{res['result']['image']}.png", f"/api/latents/{res['result']['latent']}.npz",
           f"/api/latents/{lid}.npz", f"/api/jobs/{job['id']}"]
    for path in own:
        assert a.get(path).status_code == 200, path
        assert "unknown" in _is_json_error(b.get(path), 404), path
    _is_json_error(b.post(f"/api/jobs/{job['id']}/cancel", headers={"X-CSRF-Token": tb}), 404)
    _is_json_error(b.post("/api/project", json={"photo": up.json["photo"]}, headers={"X-CSRF-Token": tb}), 404)
    _is_json_error(b.post("/api/render", json={"latent": lid}, headers={"X-CSRF-Token": tb}), 404)
    _is_json_error(b.post("/api/swap", json={"target": lid, "face": lid}, headers={"X-CSRF-Token": tb}), 404)
    # /api/info shows only your own jobs: B's mentions none of A's ids
    info_a, info_b = a.get("/api/info").json, b.get("/api/info").json
    assert [j["id"] for j in info_a["jobs"]] == [job["id"]]
    assert info_b["jobs"] == [] and info_b["busy"] is None
    assert job["id"] not in json.dumps(info_b) and lid not in json.dumps(info_b)
    # no cookie (or a made-up one): no access at all
    anon = app.test_client()
    assert "no session" in _is_json_error(anon.get("/api/info"), 403)
    anon.set_cookie("latentlab_session", "x" * 43)
    _is_json_error(anon.get(own[0]), 403)


def test_running_job_of_another_session_is_not_revealed(tiny):
    import threading

    from latentlab.ui.core import Job

    app, studio = _app(tiny)
    a, ta = _browser(app)
    b, tb = _browser(app)
    sa = studio.session(a.get_cookie("latentlab_session").value)
    release = threading.Event()
    job: Job = sa._start("render", 1, lambda j: (release.wait(30), {})[1])
    try:
        info_b = b.get("/api/info").json
        assert info_b["busy"] is None and info_b["busy_elsewhere"] is True and job.id not in json.dumps(info_b)
        assert a.get("/api/info").json["busy"]["id"] == job.id
        lid = studio.session(b.get_cookie("latentlab_session").value).sample_latent(1)
        msg = _is_json_error(b.post("/api/render", json={"latent": lid}, headers={"X-CSRF-Token": tb}), 409)
        assert "another session" in msg and job.id not in msg
    finally:
        release.set()
        sa.wait(job, 30)


def test_sessions_are_bounded_least_recently_used_first(tiny):
    app, studio = _app(tiny, max_sessions=2)
    a, ta = _browser(app)
    assert _upload(a, ta, _png(100, 80)).status_code == 200
    b, _ = _browser(app)
    assert a.get("/api/info").status_code == 200  # A is now more recent than B
    c, _ = _browser(app)  # a third session drops the least recently used: B
    assert len(studio.sessions) == 2
    assert "expired" in _is_json_error(b.get("/api/info"), 403)
    assert c.get("/api/info").status_code == 200 and a.get("/api/info").status_code == 200
    d, _ = _browser(app)  # now C is older than A (A was just used): C goes; A's photo stays counted
    _is_json_error(c.get("/api/info"), 403)
    assert studio.budget.used >= 100 * 80 * 3
    a.get("/api/info")
    _browser(app)
    _browser(app)  # A dropped at last: its entries are freed
    _is_json_error(a.get("/api/info"), 403)
    assert studio.budget.used == 0


# ---------------------------------------------------------------------------- uploads and memory
@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_huge_pixel_upload_is_downscaled_and_memory_is_bounded(tiny):
    from latentlab.imageio import MAX_IMAGE_PIXELS
    from latentlab.ui.core import MAX_WORKING_SIDE

    app, studio = _app(tiny, memory_budget=48 * 2**20)
    c, token = _browser(app)
    big = _png(6000, 4000)  # 24 megapixels in a file of a few hundred kB
    assert len(big) < 1_000_000
    r = _upload(c, token, big, "big.png")
    assert r.status_code == 200, r.json
    assert r.json["decoded_size"] == [6000, 4000] and r.json["size"] == [MAX_WORKING_SIDE, 1365]
    (s,) = studio.sessions.values()
    kept = s.images[r.json["original_image"]]
    assert kept.shape == (1365, 2048, 3) and (kept == (200, 120, 90)).all()
    # what the upload keeps: the working-size photo once (shared with its "original" image entry),
    # the 32 px aligned face, the face transform's few numbers; ~8.4 MB, not 72 MB
    per_photo = 2048 * 1365 * 3 + 32 * 32 * 3
    assert per_photo <= studio.budget.used <= per_photo + 4096

    # more uploads: the budget holds, the least recently used photos go first
    ids = [r.json]
    for i in range(7):
        ids.append(_upload(c, token, _png(3000, 2000, (i * 30, 50, 60)), f"p{i}.png").json)
        c.get(f"/api/images/{ids[0]['original_image']}.png")  # keep using the first photo
        assert studio.budget.used <= studio.budget.limit
    assert studio.budget.used >= 4 * per_photo  # it does keep what fits
    assert c.get(f"/api/images/{ids[0]['original_image']}.png").status_code == 200  # recently used: kept
    assert c.get(f"/api/images/{ids[-1]['aligned_image']}.png").status_code == 200  # newest: kept
    assert "expired" in _is_json_error(c.get(f"/api/images/{ids[1]['original_image']}.png"), 404)
    assert ids[1]["photo"] not in s.photos and ids[-1]["photo"] in s.photos

    # a header claiming more pixels than the limit is refused before decoding (the file is tiny)
    w = int(MAX_IMAGE_PIXELS ** 0.5) + 100
    msg = _is_json_error(_upload(c, token, _png_header_only(w, w), "bomb.png"), 400)
    assert "bomb.png" in msg and "before decoding" in msg
    # a photo that alone exceeds the whole budget: 413, nothing kept
    app2, studio2 = _app(tiny, memory_budget=4 * 2**20)
    c2, t2 = _browser(app2)
    assert "memory budget" in _is_json_error(_upload(c2, t2, _png(2000, 1000)), 413)
    assert studio2.budget.used == 0


def test_memory_budget_counts_shared_arrays_once():
    from latentlab.ui.core import MemoryBudget, _Store

    budget = MemoryBudget(10_000)
    a, b = _Store(budget, "image"), _Store(budget, "latent")
    x = np.zeros(4000, np.uint8)
    k1 = a.put(x)
    k2 = b.put({"view": x[:10], "t": torch.zeros(250)})  # a view of x (counted already) + 1000 bytes
    assert budget.used == 5000
    k3 = a.put(np.ones(4000, np.uint8))
    assert budget.used == 9000
    a.need(k1)  # k1 is now more recent than k2 and k3
    a.put(np.ones(3000, np.uint8))  # 12000 > 10000: k2 (LRU) goes, then 11000 -> k3 goes
    assert k2 not in b and k3 not in a and k1 in a and budget.used == 7000
    a.clear()
    assert budget.used == 0


def test_memory_budget_counts_what_projections_photos_previews_and_downloads_hold(tiny):
    """A session's entries are counted by what they hold: an upload's pixels and crop; a
    Projection's ws, noise maps and tuning delta (its photo shared with the upload); an edit only
    its own ws (photo, noise and tuning shared); a drawn image once (the latent and the image
    store share it); a job's preview PNG and a latent's download files. Closing frees it all."""
    from latentlab import api
    from latentlab.errors import LatentlabError
    from latentlab.ui.core import Job, Upload

    G, dirs = tiny
    studio = _studio(tiny)
    s = studio.new_session()
    budget = studio.budget
    pixels = np.random.RandomState(0).randint(0, 256, (40, 50, 3), np.uint8)
    photo = api.load_photo(pixels, G, align=False)
    s.photos.put(Upload(photo, False))
    tf = photo.transform
    photo_bytes = pixels.nbytes + 32 * 32 * 3 + tf.matrix.nbytes + tf.quad.nbytes
    assert budget.used == photo_bytes

    torch.manual_seed(1)
    noise = {k: torch.randn(1, 1, *v.shape[-2:]) for k, v in G.noise_buffers().items()}
    params = dict(G.synthesis_network.named_parameters())
    delta = {k: 0.01 * torch.randn_like(params[k]) for k in list(params)[:3]}
    tuning = api.Tuning.from_delta(delta, dtype="float16")  # held as float32 values
    latent = api.Latent(G.mapping(torch.randn(1, G.z_dim), None), noise, photo=photo, tuning=tuning,
                        network="tiny", name="me")
    p = api.Projection(G, latent)
    lid = s.latents.put(p)
    own = 1 * 8 * 16 * 4 + sum(v.numel() * 4 for v in noise.values()) + sum(v.numel() * 4 for v in delta.values())
    assert budget.used == photo_bytes + own

    edit = p.edit({"smile": 1.0}, directions_dirs=[dirs])
    assert edit.latent.photo is photo and edit.tuning is tuning and noise
    assert all(edit.latent.noise[k].data_ptr() == latent.noise[k].data_ptr() for k in noise)
    eid = s.latents.put(edit)
    assert budget.used == photo_bytes + own + 8 * 16 * 4  # only the edit's own ws

    drawn = api.Projection(G, latent)
    image = drawn.image.array  # drawn with the tuned generator: [32, 32, 3]
    before = budget.used
    s.latents.put(drawn)
    assert budget.used == before + image.nbytes  # the latent's tensors are shared with p
    s.images.put(image)
    assert budget.used == before + image.nbytes  # the same array: counted once

    job = Job("projection", 1, owner=s)
    png = b"\x89PNG" + b"\0" * 996
    job.set_preview(png)
    assert job.preview is png and budget.used == before + image.nbytes + 1000
    job.set_preview(png[:500])  # a new preview replaces the old one
    assert budget.used == before + image.nbytes + 500

    files = s.latent_files(lid)
    assert sorted(files) == ["me.npz", "me.pti.safetensors"]
    assert budget.used == before + image.nbytes + 500 + sum(len(b) for b in files.values())
    assert s.latent_files(lid) is files  # made once: the .npz and its delta belong together
    assert s.latent_npz(lid) is files["me.npz"] and s.latent_delta(lid) is files["me.pti.safetensors"]
    with pytest.raises(LatentlabError, match="no pivotal tuning"):
        s.latent_delta(s.sample_latent(1))
    assert eid in s.latents
    s.close()
    assert budget.used == 0


# ---------------------------------------------------------------------------- JSON errors
def test_bad_requests_get_one_line_json_errors(tiny, monkeypatch):
    from latentlab.ui.app import MAX_JSON, MAX_UPLOAD

    app, studio = _app(tiny)
    c, token = _browser(app)
    h = {"X-CSRF-Token": token}
    (s,) = studio.sessions.values()
    pid = _upload(c, token, _png(100, 80)).json["photo"]
    lid = s.sample_latent(2)

    def raw(path: str, text: str):
        return c.post(path, data=text, content_type="application/json", headers=h)

    bad_project = ['{"photo": "%s", "steps": NaN}', '{"photo": "%s", "steps": Infinity}',
                   '{"photo": "%s", "steps": 1e999}', '{"photo": "%s", "steps": "abc"}',
                   '{"photo": "%s", "steps": 2.5}', '{"photo": "%s", "steps": 0}', '{"photo": "%s", "steps": 5001}',
                   '{"photo": "%s", "steps": [4]}', '{"photo": "%s", "steps": true}', '{"photo": "%s", "space": "z"}',
                   '{"photo": "%s", "space": ["w"]}', '{"photo": ["%s"]}', '{"photo": "%s", "preset": "seed"}',
                   '{"photo": "%s", "preset": "PTI"}', '{"photo": "%s", "preset": 3}',
                   '{"photo": "%s", "preset": ["pti"]}']
    for body in bad_project:
        _is_json_error(raw("/api/project", body % pid), 400)
    assert "unknown projection preset 'seed'" in _is_json_error(raw("/api/project", bad_project[12] % pid), 400)
    bad_render = ['{"latent": "%s", "strengths": {"smile": NaN}}', '{"latent": "%s", "strengths": {"smile": "inf"}}',
                  '{"latent": "%s", "strengths": {"smile": 1e9}}', '{"latent": "%s", "strengths": {"smile": "x"}}',
                  '{"latent": "%s", "strengths": {"smile": null}}', '{"latent": "%s", "strengths": [1]}',
                  '{"latent": "%s", "layers": {"smile": 5}}', '{"latent": "%s", "style": {"seed": "x"}}',
                  '{"latent": "%s", "style": {"seed": -1}}', '{"latent": "%s", "style": {"seed": 4294967296}}',
                  '{"latent": "%s", "style": {"seed": NaN}}', '{"latent": "%s", "style": {"seed": 1, "layers": 3}}',
                  '{"latent": "%s", "style": 5}', '{"latent": "%s", "strengths": {"frown": 1}}']
    for body in bad_render:
        _is_json_error(raw("/api/render", body % lid), 400)
    _is_json_error(raw("/api/swap", '{"target": "%s", "face": "%s", "layers": {"a": 1}}' % (lid, lid)), 400)
    assert "unknown swap tuning" in _is_json_error(
        raw("/api/swap", '{"target": "%s", "face": "%s", "tuning": "c"}' % (lid, lid)), 400)
    _is_json_error(raw("/api/swap", '{"target": "%s", "face": "%s", "tuning": 1.5}' % (lid, lid)), 400)
    assert "bad layer range" in _is_json_error(
        raw("/api/swap", '{"target": "%s", "face": "%s", "layers": "nine"}' % (lid, lid)), 400)
    for text in ("", "not json", "[1, 2]", '{"photo": ', "[" * 100_000 + "]" * 100_000):
        assert "JSON object" in _is_json_error(raw("/api/project", text), 400)
    assert not s.jobs  # none of these started anything

    # 404, 405, 413 and 500 are JSON too
    assert "not found" in _is_json_error(c.get("/api/nothing"), 404)
    _is_json_error(c.get(f"/api/images/{'0' * 16}.png"), 404)
    assert "not allowed" in _is_json_error(c.get("/api/project"), 405)
    _is_json_error(c.delete(f"/api/jobs/{'0' * 16}", headers=h), 405)
    assert "too large" in _is_json_error(raw("/api/render", '{"x": "' + "a" * MAX_JSON + '"}'), 413)
    assert "too large" in _is_json_error(_upload(c, token, b"\0" * (MAX_UPLOAD + 1)), 413)

    def broken(*a, **k):
        raise RuntimeError("line one\nline two")

    monkeypatch.setattr(type(s), "image_png", broken)
    msg = _is_json_error(c.get(f"/api/images/{'0' * 16}.png"), 500)
    assert "RuntimeError" in msg and "line" not in msg
