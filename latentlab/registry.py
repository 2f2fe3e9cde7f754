"""Named models, downloads, and the one loader: :func:`load_generator`.

``load_generator`` takes a registry name (``latentlab models list``), a local checkpoint in any
supported format (native ``.safetensors``, NVIDIA PyTorch / TensorFlow ``.pkl``, rosinality ``.pt``,
an OpenVINO IR folder), or an http(s) URL of one.

Downloads go to ``cache_dir()/downloads/`` through :func:`download`: streamed into ``NAME.part``,
resumed with an HTTP Range request when a ``.part`` is left from an interrupted run, checked against
a SHA-256, then renamed into place. NVIDIA publishes no checksums for its pickles, so the registry's
``sha256`` is None for them (none is guessed): on the first download the file's SHA-256 is computed
and written to a sidecar ``NAME.sha256`` (``sha256sum`` format), and every later load verifies the
cached file against it ("trust on first use": the first download is trusted as served over https;
to pin it, compare the sidecar with a digest you trust). Downloads are https only (a redirect to
http too) unless ``allow_http`` / ``latentlab --allow-http`` / ``LATENTLAB_ALLOW_HTTP=1``, and capped
in size (:data:`MAX_DOWNLOAD_BYTES`, per model :attr:`ModelInfo.max_bytes`): the Content-Length is
checked before the transfer and the bytes are counted during it. The embedded default ``ffhq-mobile`` needs no
download from outside PyPI: it is converted from the OpenVINO IR in the ``random-face`` wheel and
cached as ``cache_dir()/models/ffhq-mobile.safetensors``.

``w_avg`` can be re-estimated (``w_avg_samples=N``): :func:`estimate_w_avg` runs
:func:`latentlab.models.w_avg.mapping_mean`, the one w_avg estimator (also used by the checkpoint
readers for files without one), over N latents from a fixed seed and caches the result in
``cache_dir()/w_avg/`` under a hash of the model's weights, N and the seed.
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
import sys
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .assets import cache_dir, http_allowed
from .errors import CheckpointError, DownloadError, LatentlabError
from .models.w_avg import W_AVG_SAMPLES, W_AVG_SEED, mapping_mean

NVIDIA_NC = "NVIDIA Source Code License-NC (non-commercial research use)"
#: Most samples :func:`estimate_w_avg` draws (10 M: minutes even for a 1024 px mapping network).
MAX_W_AVG_SAMPLES = 10_000_000

#: Largest download accepted unless a caller or registry entry says otherwise (bytes).
MAX_DOWNLOAD_BYTES = 2 * 2**30

_NGC_SG2 = "https://api.ngc.nvidia.com/v2/models/nvidia/research/stylegan2/versions/1/files/"
_ADA_PT = "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/"


@dataclass(frozen=True)
class ModelInfo:
    """One named model. ``url`` is None for models built locally (``ffhq-mobile``).

    ``sha256`` is the published SHA-256 of the file at ``url``, or None when none is published (the
    first download then records one in a ``.sha256`` sidecar). ``format`` is the checkpoint format
    as :func:`latentlab.checkpoints.sniff_format` names it. ``max_bytes``: the download size cap.
    """

    name: str
    description: str
    url: str | None
    sha256: str | None
    filename: str
    format: str
    licence: str
    resolution: int
    max_bytes: int = MAX_DOWNLOAD_BYTES

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


MODELS: dict[str, ModelInfo] = {m.name: m for m in [
    ModelInfo(
        name="ffhq-mobile",
        description="MobileStyleGAN FFHQ 1024 (default; converted once from the OpenVINO IR in the "
                    "PyPI wheel random-face==2021.7.21.1, no other download)",
        url=None, sha256=None, filename="ffhq-mobile.safetensors", format="native",
        licence="Apache-2.0 (MobileStyleGAN.pytorch / random-face); distilled from NVIDIA's FFHQ "
                "StyleGAN2, FFHQ images CC BY-NC-SA 4.0",
        resolution=1024,
    ),
    ModelInfo(
        name="stylegan2-ffhq-1024",
        description="StyleGAN2 config-f FFHQ 1024, NVIDIA PyTorch pickle (stylegan3 repo, NGC)",
        url=_NGC_SG2 + "stylegan2-ffhq-1024x1024.pkl", sha256=None,
        filename="stylegan2-ffhq-1024x1024.pkl", format="nvidia-pkl", licence=NVIDIA_NC, resolution=1024,
    ),
    ModelInfo(
        name="stylegan2-ffhq-512",
        description="StyleGAN2 FFHQ 512, NVIDIA PyTorch pickle (stylegan3 repo, NGC)",
        url=_NGC_SG2 + "stylegan2-ffhq-512x512.pkl", sha256=None,
        filename="stylegan2-ffhq-512x512.pkl", format="nvidia-pkl", licence=NVIDIA_NC, resolution=512,
    ),
    ModelInfo(
        name="stylegan2-ffhq-256",
        description="StyleGAN2 FFHQ 256, NVIDIA PyTorch pickle (stylegan3 repo, NGC)",
        url=_NGC_SG2 + "stylegan2-ffhq-256x256.pkl", sha256=None,
        filename="stylegan2-ffhq-256x256.pkl", format="nvidia-pkl", licence=NVIDIA_NC, resolution=256,
    ),
    ModelInfo(
        name="stylegan2-ada-ffhq-1024",
        description="StyleGAN2-ADA FFHQ 1024 (stylegan2-ada-pytorch pretrained/ffhq.pkl)",
        url=_ADA_PT + "ffhq.pkl", sha256=None,
        filename="stylegan2-ada-ffhq.pkl", format="nvidia-pkl", licence=NVIDIA_NC, resolution=1024,
    ),
    ModelInfo(
        name="stylegan2-ada-ffhq-256",
        description="StyleGAN2-ADA FFHQ 256, 70k images, ADA (paper fig. 7c training-set sweep)",
        url=_ADA_PT + "paper-fig7c-training-set-sweeps/ffhq70k-paper256-ada.pkl", sha256=None,
        filename="stylegan2-ada-ffhq70k-paper256-ada.pkl", format="nvidia-pkl", licence=NVIDIA_NC,
        resolution=256,
    ),
    ModelInfo(
        name="stylegan2-ada-ffhq-512",
        description="StyleGAN2-ADA FFHQ 512 transfer-learning source net (no augmentation)",
        url=_ADA_PT + "transfer-learning-source-nets/ffhq-res512-mirror-stylegan2-noaug.pkl", sha256=None,
        filename="stylegan2-ada-ffhq-res512-mirror-stylegan2-noaug.pkl", format="nvidia-pkl",
        licence=NVIDIA_NC, resolution=512,
    ),
    ModelInfo(
        name="stylegan2-ffhq-config-f",
        description="The original StyleGAN2 config-f FFHQ 1024, NVIDIA TensorFlow pickle",
        url="https://nvlabs-fi-cdn.nvidia.com/stylegan2/networks/stylegan2-ffhq-config-f.pkl", sha256=None,
        filename="stylegan2-ffhq-config-f.pkl", format="nvidia-tf-pkl", licence=NVIDIA_NC, resolution=1024,
    ),
]}

DEFAULT_MODEL = "ffhq-mobile"


# ============================================================================== registry queries
def list_models() -> list[ModelInfo]:
    """All named models, in registry order."""
    return list(MODELS.values())


def model_info(name: str) -> ModelInfo:
    """The registry entry for ``name``; LatentlabError listing the known names otherwise."""
    try:
        return MODELS[name]
    except KeyError:
        raise LatentlabError(f"unknown model {name!r}; known models: {', '.join(MODELS)} "
                             "(or give a checkpoint path or an http(s) URL)") from None


def model_path(name: str) -> Path:
    """Where the named model's file lives (or will live) in the cache."""
    info = model_info(name)
    if info.url is None:
        return cache_dir() / "models" / info.filename
    return cache_dir() / "downloads" / info.filename


def is_cached(name: str) -> bool:
    """True when the named model's file is already in the cache."""
    return model_path(name).is_file()


def fetch_model(name: str, progress: bool = True) -> Path:
    """Local path of the named model, downloading or converting it first when needed."""
    info = model_info(name)
    path = model_path(name)
    if info.url is None:
        if not path.is_file():
            from .checkpoints.openvino_ir import convert_ffhq_mobile

            if progress:
                print(f"latentlab: building {name} (once) -> {path}", file=sys.stderr)
            convert_ffhq_mobile(path, progress=progress)
            if not path.is_file():
                raise LatentlabError(f"converting {name} did not produce {path}")
        return path
    return download(info.url, path, sha256=info.sha256, progress=progress, max_bytes=info.max_bytes)


def _url_cache_path(url: str) -> Path:
    parsed = urllib.parse.urlparse(url)
    base = os.path.basename(parsed.path) or "download"
    base = re.sub(r"[^A-Za-z0-9._-]", "_", base)[-100:]
    tag = hashlib.sha256(url.encode()).hexdigest()[:10]
    return cache_dir() / "downloads" / f"{tag}-{base}"


def resolve_checkpoint(spec: str | os.PathLike, progress: bool = True) -> Path:
    """Turn a registry name, a URL, or a path into a local checkpoint path.

    Raises LatentlabError (unknown name, listing the known ones), DownloadError, or CheckpointError
    for a path that does not exist.
    """
    if isinstance(spec, os.PathLike):
        spec = os.fspath(spec)
    if not isinstance(spec, str) or not spec:
        raise LatentlabError("no model given")
    if spec in MODELS:
        return fetch_model(spec, progress=progress)
    if re.match(r"^https?://", spec, flags=re.I):
        return download(spec, _url_cache_path(spec), progress=progress)
    if "://" in spec:
        raise LatentlabError(f"unsupported URL scheme in {spec!r} (only http and https)")
    path = Path(spec).expanduser()
    if path.exists():
        return path
    looks_like_name = os.sep not in spec and "/" not in spec and not Path(spec).suffix
    if looks_like_name:
        model_info(spec)  # raises "unknown model ... known models: ..."
    raise CheckpointError(f"{spec}: no such file")


# ============================================================================== loading
def load_generator(
    name_or_path_or_url: str | os.PathLike = DEFAULT_MODEL,
    device: str | torch.device = "cpu",
    *,
    w_avg_samples: int | None = None,
    progress: bool = True,
):
    """Load a generator ready for inference: eval mode, no grads, on ``device``.

    ``name_or_path_or_url``: a registry name (see :func:`list_models`), a checkpoint path in any
    supported format, or an http(s) URL of one (downloaded once into the cache). With
    ``w_avg_samples`` the model's ``w_avg`` is replaced by :func:`estimate_w_avg` over that many
    samples (seed 0, cached). Returns a :class:`latentlab.models.base.Generator`; its attribute
    ``checkpoint_path`` records the file it came from.
    """
    from .checkpoints import read_checkpoint

    path = resolve_checkpoint(name_or_path_or_url, progress=progress)
    G = generator_from_checkpoint(read_checkpoint(path), path)
    G = G.to(resolve_device(device))
    if w_avg_samples is not None:
        w_avg = estimate_w_avg(G, num_samples=w_avg_samples, seed=0)
        with torch.no_grad():
            G.w_avg.copy_(w_avg.to(G.w_avg.device, G.w_avg.dtype))
    return G


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """``"auto"`` (or None) -> CUDA when available, else CPU; other strings as torch names them
    (``cpu``, ``cuda``, ``cuda:1``, ``mps``). LatentlabError for an unknown or unavailable device."""
    if isinstance(device, torch.device):
        return device
    spec = (device or "auto").strip().lower()
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(spec)
    except RuntimeError:
        raise LatentlabError(f"unknown device {device!r} (use cpu, cuda, cuda:N or auto)") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise LatentlabError(f"device {device!r} requested but CUDA is not available (use --device cpu)")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise LatentlabError(f"device {device!r} does not exist ({torch.cuda.device_count()} CUDA devices)")
    elif dev.type == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise LatentlabError(f"device {device!r} requested but MPS is not available")
    return dev


def _check_against_template(data, path) -> None:
    """Check ``data``'s weights against the architecture its config describes, before building it.

    The config's bounds are checked per family, then the model is built on the meta device
    (nothing allocated): its total size must stay within ``LIMITS["num_elements"]`` and every
    tensor's name and shape must match, so the real model built next is exactly as large as the
    weights already read from the file. Raises a one-line CheckpointError naming the key.
    """
    from .checkpoints.native import check_config
    from .models import build_generator
    from .models.stylegan2 import LIMITS

    check_config(data.family, data.config, Path(str(path)))
    state = data.state_dict
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: the weights are a {type(state).__name__}, not a dict of tensors")
    try:
        with torch.device("meta"):
            template = build_generator(data.family, data.config).state_dict()
    except (ValueError, TypeError, LatentlabError):
        return  # reported with the usual wording by the real build below (nothing was allocated)
    except (RuntimeError, NotImplementedError):
        return  # a family that cannot be built on the meta device: its own config checks apply
    total = sum(t.numel() for t in template.values())
    if total > LIMITS["num_elements"]:
        raise CheckpointError(f"{path}: this {data.family} configuration has {total:,} parameter values, more "
                              f"than the {LIMITS['num_elements']:,} latentlab allows")
    fit = f"{path}: weights do not fit the {data.family} architecture"
    missing = [k for k in template if k not in state]
    if missing:
        more = f" (+{len(missing) - 3} more)" if len(missing) > 3 else ""
        raise CheckpointError(f"{fit} (missing {', '.join(missing[:3])}{more})")
    unexpected = sorted(str(k)[:80] for k in state if k not in template)
    if unexpected:
        more = f" (+{len(unexpected) - 3} more)" if len(unexpected) > 3 else ""
        raise CheckpointError(f"{fit} (unexpected {', '.join(unexpected[:3])}{more})")
    for name, ref in template.items():
        t = state[name]
        if not isinstance(t, torch.Tensor):
            raise CheckpointError(f"{fit} ({name} is a {type(t).__name__}, not a tensor)")
        if tuple(t.shape) != tuple(ref.shape):
            raise CheckpointError(f"{fit} ({name} has shape {list(t.shape)[:8]}, the architecture needs "
                                  f"{list(ref.shape)})")


def generator_from_checkpoint(data, path: str | os.PathLike = "<checkpoint>"):
    """Build the generator that ``data`` (a :class:`~latentlab.checkpoints.CheckpointData`) describes
    and load its weights strictly; eval mode, no grads, on the CPU. ``path`` is only for messages.

    Raises CheckpointError (one line) when the family is unknown, the config does not fit or is
    out of bounds, or the weights do not match the architecture. All of that is checked before the
    real model is allocated.
    """
    from .models import build_generator

    _check_against_template(data, path)
    try:
        G = build_generator(data.family, data.config)
    except ValueError as exc:  # unknown family, or a config value the family rejects
        raise CheckpointError(f"{path}: {_one_line(exc)}") from None
    except TypeError as exc:  # config keys do not fit the family's constructor
        raise CheckpointError(f"{path}: bad {data.family} config ({_one_line(exc)})") from None
    except CheckpointError as exc:  # config data that is not plain (raised while normalizing it)
        raise CheckpointError(f"{path}: bad {data.family} config ({_one_line(exc)})") from None
    try:
        G.load_state_dict(data.state_dict, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: weights do not fit the {data.family} architecture "
                              f"({_one_line(exc)[:300]})") from None
    G.eval().requires_grad_(False)
    G.checkpoint_path = str(path)
    G.source_format = data.source_format
    return G


def network_name(G: torch.nn.Module) -> str:
    """The name latents and directions use for G: the registry name when G was loaded from one
    (``"ffhq-mobile"``), else its checkpoint file path, else ``"state:<hash>"`` of its weights (a
    generator built in memory). ``G.latentlab_network``, when set, overrides all of these."""
    given = getattr(G, "latentlab_network", None)
    if given:
        return str(given)
    ckpt = getattr(G, "checkpoint_path", None)
    if ckpt:
        p = Path(ckpt).expanduser()
        for name in MODELS:
            try:
                if p.exists() and model_path(name).expanduser().resolve() == p.resolve():
                    return name
            except (OSError, LatentlabError):
                continue
        return str(ckpt)
    return f"state:{state_hash(G)[:16]}"


def state_hash(G: torch.nn.Module, exclude_w_avg: bool = True) -> str:
    """SHA-256 (hex) over the model's state dict: names, dtypes, shapes and bytes.

    With ``exclude_w_avg`` the tensor that is ``G.w_avg`` is skipped, so re-estimating it does not
    change the hash.
    """
    h = hashlib.sha256()
    w_avg = getattr(G, "w_avg", None)
    for key, t in sorted(G.state_dict().items()):
        if exclude_w_avg and isinstance(w_avg, torch.Tensor) and t.data_ptr() == w_avg.data_ptr() \
                and t.shape == w_avg.shape:
            continue
        t = t.detach().to("cpu").contiguous()
        h.update(f"{key}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def _read_cached_w_avg(path: Path, w_dim: int) -> np.ndarray | None:
    """A cached w_avg [w_dim] float32, or None when absent, unreadable, of another shape or not finite.

    Memory-mapped first, so a planted huge file is judged by its header, not read.
    """
    if not path.is_file():
        return None
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
        ok = arr.shape == (w_dim,) and arr.dtype.kind == "f" and bool(np.isfinite(arr).all())
        out = np.array(arr, dtype=np.float32) if ok else None
        del arr  # closes the memory map
        return out
    except (OSError, ValueError):
        return None  # unreadable cache entry: recompute and overwrite


def estimate_w_avg(G, num_samples: int = W_AVG_SAMPLES, seed: int = W_AVG_SEED, batch: int = 1000,
                   cache: bool = True) -> torch.Tensor:
    """:func:`mapping_mean` of a loaded generator's mapping network (``G._map``): float32
    [w_dim] on G's device.

    With ``cache`` the result is stored in ``cache_dir()/w_avg/`` keyed by :func:`state_hash`,
    ``num_samples`` and ``seed`` (so it is computed once per model and setting).
    """
    try:
        num_samples, batch = int(num_samples), int(batch)
    except (TypeError, ValueError, OverflowError):
        raise LatentlabError("the number of w_avg samples and the batch size must be integers") from None
    if not 1 <= num_samples <= MAX_W_AVG_SAMPLES:
        raise LatentlabError(f"the number of w_avg samples must be between 1 and {MAX_W_AVG_SAMPLES:,}")
    batch = max(1, min(batch, num_samples))
    for attr in ("w_avg", "z_dim", "c_dim", "w_dim"):
        if not hasattr(G, attr):
            raise LatentlabError(f"this generator has no {attr}: its w_avg cannot be estimated")
    dev = G.w_avg.device
    cache_file = None
    if cache:
        key = f"tg-{state_hash(G)[:24]}-n{num_samples}-s{seed}"  # "tg": torch.Generator z (files without it: older convention)
        cache_file = cache_dir() / "w_avg" / f"{key}.npy"
        cached = _read_cached_w_avg(cache_file, G.w_dim)
        if cached is not None:
            return torch.from_numpy(cached).to(dev)
    w_avg = mapping_mean(G._map, G.z_dim, G.c_dim, G.w_dim, num_samples, seed, batch=batch, device=dev)
    if cache_file is not None:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache_file.with_name(cache_file.name + f".{os.getpid()}.part")
        with open(tmp, "wb") as f:
            np.save(f, w_avg.cpu().numpy())
        tmp.replace(cache_file)
    return w_avg


# ============================================================================== downloads
_CHUNK = 1 << 20


def sha256_file(path: str | os.PathLike) -> str:
    """SHA-256 hex digest of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _sidecar(dest: Path) -> Path:
    return dest.with_name(dest.name + ".sha256")


def _read_sidecar(dest: Path) -> str | None:
    side = _sidecar(dest)
    if not side.is_file():
        return None
    text = side.read_text().strip().split()
    if not text or not re.fullmatch(r"[0-9a-fA-F]{64}", text[0]):
        raise DownloadError(f"{side}: not a sha256 sidecar (delete it and {dest.name} to download again)")
    return text[0].lower()


def _write_sidecar(dest: Path, digest: str) -> None:
    _sidecar(dest).write_text(f"{digest}  {dest.name}\n")


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def download(url: str, dest: str | os.PathLike, sha256: str | None = None, progress: bool = True,
             timeout: float = 30.0, *, allow_http: bool | None = None,
             max_bytes: int = MAX_DOWNLOAD_BYTES) -> Path:
    """Download ``url`` to ``dest`` (resumable, verified, atomic) and return ``dest``.

    * https only: a plain ``http://`` URL (or a redirect to one) raises DownloadError unless
      ``allow_http`` (default: ``$LATENTLAB_ALLOW_HTTP``, set by ``latentlab --allow-http``).
    * At most ``max_bytes``: a larger Content-Length is refused before any byte is read, and the
      transfer stops (``.part`` deleted) as soon as more bytes arrive.

    * An existing ``dest`` is verified, not downloaded again: against ``sha256`` when given, else
      against its ``.sha256`` sidecar when there is one. A mismatch raises DownloadError.
    * Data streams into ``dest.part``. When a ``.part`` exists the request asks for the rest
      (``Range: bytes=N-``); a server that answers 200 instead of 206 is handled by starting over.
    * After the transfer the SHA-256 is compared with ``sha256`` (mismatch: ``.part`` deleted,
      DownloadError); the file is renamed into place and its digest written to ``dest.sha256``.
    * Network failures raise a one-line DownloadError and keep the ``.part`` for a later resume.
    """
    dest = Path(dest)
    expected = sha256.lower() if sha256 else None
    if dest.is_file():
        recorded = expected or _read_sidecar(dest)
        if recorded is not None:
            actual = sha256_file(dest)
            if actual != recorded:
                raise DownloadError(f"{dest}: sha256 {actual[:16]}... does not match the expected "
                                    f"{recorded[:16]}... (delete the file to download it again)")
        return dest
    _check_scheme(url, http_allowed(allow_http))
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    digest = _fetch(url, part, progress=progress, timeout=timeout, allow_http=http_allowed(allow_http),
                    max_bytes=int(max_bytes))
    if expected is not None and digest != expected:
        part.unlink(missing_ok=True)
        raise DownloadError(f"{url}: sha256 mismatch (got {digest[:16]}..., expected {expected[:16]}...); "
                            "the download was deleted")
    os.replace(part, dest)
    _write_sidecar(dest, digest)
    return dest


def _check_scheme(url: str, allow_http: bool, what: str = "") -> None:
    scheme = urllib.parse.urlsplit(url).scheme.lower()
    if scheme == "https" or (scheme == "http" and allow_http):
        return
    if scheme == "http":
        raise DownloadError(f"{what}refusing to download over plain http: {url} (https only; pass "
                            "latentlab --allow-http or set LATENTLAB_ALLOW_HTTP=1 to allow it)")
    raise DownloadError(f"{url}: only https URLs can be downloaded")


def _open(url: str, start: int, timeout: float):
    headers = {"User-Agent": "latentlab/0.1 (+python urllib)"}
    if start > 0:
        headers["Range"] = f"bytes={start}-"
    req = urllib.request.Request(url, headers=headers)
    return urllib.request.urlopen(req, timeout=timeout)  # noqa: S310 - http(s) only, checked by caller


def _fetch(url: str, part: Path, progress: bool, timeout: float, *, allow_http: bool = False,
           max_bytes: int = MAX_DOWNLOAD_BYTES) -> str:
    """Fill ``part`` with the whole body of ``url`` (at most ``max_bytes``); return its SHA-256 hex."""
    from .progress import Counter

    _check_scheme(url, allow_http)
    start = part.stat().st_size if part.is_file() else 0
    if start > max_bytes:
        part.unlink()
        start = 0
    try:
        try:
            resp = _open(url, start, timeout)
        except urllib.error.HTTPError as exc:
            if exc.code == 416 and start > 0:
                # Range not satisfiable: the .part is complete or stale. Start over.
                exc.close()
                part.unlink()
                start = 0
                resp = _open(url, 0, timeout)
            else:
                raise
        with resp:
            _check_scheme(resp.geturl(), allow_http, what=f"{url} redirected: ")
            status = getattr(resp, "status", 200)
            h = hashlib.sha256()
            if start > 0 and status == 206:
                m = re.match(r"bytes\s+(\d+)-", resp.headers.get("Content-Range", ""))
                if m is None or int(m.group(1)) != start:
                    raise DownloadError(f"{url}: server answered a resume with a wrong Content-Range "
                                        f"({resp.headers.get('Content-Range')!r})")
                with open(part, "rb") as f:  # hash what we already have
                    while chunk := f.read(_CHUNK):
                        h.update(chunk)
                mode = "ab"
            else:
                start = 0  # fresh download, or a server that ignored Range: rewrite from byte 0
                mode = "wb"
            length = resp.headers.get("Content-Length")
            total = start + int(length) if length and length.isdigit() else None
            if total is not None and total > max_bytes:
                part.unlink(missing_ok=True)
                raise DownloadError(f"{url} is {total:,} bytes, over the {max_bytes:,}-byte download limit")
            name = part.name[:-5] if part.name.endswith(".part") else part.name
            bar = Counter(total, f"latentlab: {name[:40]}", unit="B", enabled=progress, initial=start)
            got = start
            with bar, open(part, mode) as out:
                while chunk := resp.read(_CHUNK):
                    got += len(chunk)
                    if got > max_bytes:
                        out.close()
                        part.unlink(missing_ok=True)
                        raise DownloadError(f"{url} sent more than the {max_bytes:,}-byte download limit; "
                                            "deleted")
                    out.write(chunk)
                    h.update(chunk)
                    bar.update(len(chunk))
            if total is not None and got != total:
                raise DownloadError(f"{url}: connection closed after {got} of {total} bytes "
                                    "(run again to resume)")
            return h.hexdigest()
    except DownloadError:
        raise
    except urllib.error.HTTPError as exc:
        raise DownloadError(f"{url}: HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        raise DownloadError(f"{url}: {_one_line(exc.reason) if exc.reason else _one_line(exc)}") from None
    except (TimeoutError, socket.timeout):
        raise DownloadError(f"{url}: timed out after {timeout:g} s (run again to resume)") from None
    except OSError as exc:
        raise DownloadError(f"{url}: {_one_line(exc)} (run again to resume)") from None


__all__ = [
    "DEFAULT_MODEL", "MAX_DOWNLOAD_BYTES", "MODELS", "ModelInfo", "download",
    "estimate_w_avg", "fetch_model", "network_name",
    "generator_from_checkpoint", "is_cached", "list_models", "load_generator", "model_info", "model_path",
    "resolve_checkpoint", "resolve_device", "sha256_file", "state_hash",
]
