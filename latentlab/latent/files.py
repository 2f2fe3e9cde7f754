"""Latent files: one writer and one hardened reader for ``.npz`` latents and their tuning deltas.

A latent file is an uncompressed ``.npz`` (a zip of ``.npy`` members), written by
:func:`save_latent` (``latentlab project``, every editing command, the UI's download) or by
``latentlab sample`` (``samples.npz``, several latents):

* ``ws``: float [N, num_ws, w_dim] (or [num_ws, w_dim]), the only required member;
* ``noise/<name>``: float noise maps [..., H, W] (a projection's optimised noise);
* ``align_matrix`` [3, 3], ``align_resolution`` (), ``align_original_size`` [2], ``align_quad``
  [4, 2], optional ``align_landmarks`` [68, 2]: the face alignment
  (:meth:`latentlab.faces.FaceTransform.to_arrays`);
* ``settings``: JSON text of an object (how the latent was made; ``settings["tuning"]`` names its
  pivotal-tuning delta, a plain file name beside it, and that file's SHA-256);
* ``metrics``: JSON text of an object (how close it is to its photo); ``model``: the model's name;
* ``z``: float [N, z_dim] (``samples.npz`` only).

Latent files are shared between people, so the reader treats them as hostile data: the file must
be a regular file of at most :data:`MAX_FILE_BYTES`; only the members above are read (anything else
is ignored without being decompressed); each member's dtype and shape are taken from its ``.npy``
header and checked against the limits below *before* its data is read, and exactly the declared
number of bytes is read (a zip member whose declared size cannot come from its compressed size, or
that holds more or fewer bytes than its header says, is refused); only float16/32/64 numbers are
accepted for arrays (no strings, no pickled objects) and they must be finite; ``settings`` and
``metrics`` must be JSON objects; the alignment matrix must be an invertible affine map. A photo
path stored in a latent is never opened; its tuning delta is read only from the latent's own folder,
by the plain file name it records, and only if its SHA-256 matches. Every failure is a one-line
:class:`~latentlab.errors.LatentlabError` ``PATH: ...``.
"""

from __future__ import annotations

import json
import math
import os
import re
import stat
import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import torch

from ..errors import LatentlabError
from ..models.base import Generator
from .value import Latent

#: Largest latent file read (bytes), checked with stat before it is opened.
MAX_FILE_BYTES = 512 * 2**20
#: Most zip entries and largest zip central directory (bytes) accepted.
MAX_ENTRIES = 4096
MAX_CENTRAL_DIR_BYTES = 2**20
#: ``ws``: at most this many rows, this wide, and this many values in all (64 x 64 x 4096).
MAX_NUM_WS = 64
MAX_W_DIM = 4096
MAX_WS_VALUES = 64 * 64 * 4096
#: Noise maps: side at most 1024 px, at most 64 maps per name (batch), at most 256 names.
MAX_NOISE_SIDE = 1024
MAX_NOISE_BATCH = 64
MAX_NOISE_MAPS = 256
#: ``settings`` text: at most 1 Mi characters; ``model``: at most 4096 characters.
MAX_SETTINGS_CHARS = 2**20
MAX_MODEL_CHARS = 4096
#: Deflate cannot expand data by more than about 1032:1; a member declaring more is a lie.
MAX_DEFLATE_RATIO = 1032
#: Most bytes decompressed from one file, all members read together.
MAX_TOTAL_BYTES = 768 * 2**20
#: Largest magnitude of a latent, noise or z value (a projection's stay below ~10, an edit with the
#: largest strength below ~1000); beyond it float32 rendering overflows to black frames.
MAX_ABS_VALUE = 1e5

_FLOAT_KINDS = {np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64)}
_NOISE_NAME = re.compile(r"[A-Za-z0-9_.\-]{1,128}")
_TUNING_FILE = re.compile(r"[^/\\\x00-\x1f]{1,255}")
_ALIGN_MEMBERS = ("align_matrix", "align_resolution", "align_original_size", "align_quad", "align_landmarks")


# ============================================================================== writer
def latent_npz_bytes(latent: Latent, *, delta_file: str | None = None, sha256: str | None = None) -> bytes:
    """``latent`` as the bytes of a ``.npz`` latent file. ``delta_file`` / ``sha256``: the name and
    digest of its tuning delta written beside it (recorded in ``settings["tuning"]``); the photo's
    path, when known, is recorded in ``settings["photo"]`` (never opened by the reader)."""
    import io

    from ..imageio import json_safe

    settings = {k: v for k, v in latent.settings.items() if k != "tuning"}
    if latent.photo is not None and latent.photo.path is not None:
        settings["photo"] = str(Path(latent.photo.path).resolve())
    if delta_file is not None:
        settings["tuning"] = {"file": delta_file, "sha256": sha256}
    arrays: dict[str, Any] = {"ws": latent.ws.numpy()}
    for k, v in latent.noise.items():
        arrays[f"noise/{k}"] = v.numpy()
    if latent.transform is not None:
        arrays.update(latent.transform.to_arrays())
    arrays["settings"] = np.array(json.dumps(settings, sort_keys=True, default=str))
    if latent.metrics:
        arrays["metrics"] = np.array(json.dumps(json_safe(latent.metrics), sort_keys=True, default=str))
    arrays["model"] = np.array(latent.network or "")
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def save_latent(latent: Latent, path: "str | Path", *, force: bool = False) -> Path:
    """Write ``latent`` as ``path`` (``.npz``) and, when it carries a tuning, the delta beside it
    (``NAME.pti.safetensors``). Both paths are checked before either is written; nothing is
    overwritten without ``force``. Each file is written to a temporary name and renamed
    (:func:`latentlab.imageio.write_bytes_atomic`): a symbolic link planted at either name is
    replaced, not followed, and an interrupted write leaves no truncated file. Returns ``path``."""
    import hashlib

    from ..imageio import refuse_existing, write_bytes_atomic
    from .tuning import delta_path_for

    p = Path(path)
    if p.suffix.lower() != ".npz":
        raise LatentlabError(f"{p}: a latent file must end in .npz")
    delta_path = delta_path_for(p) if latent.tuning is not None else None
    refuse_existing([p] + ([delta_path] if delta_path is not None else []), force)
    digest = None
    if delta_path is not None:
        data = latent.tuning.file_bytes(latent.network or "")
        digest = hashlib.sha256(data).hexdigest()
        write_bytes_atomic(delta_path, data, force=force)
    write_bytes_atomic(p, latent_npz_bytes(latent, delta_file=delta_path.name if delta_path else None,
                                           sha256=digest), force=force)
    return p


# ============================================================================== reader
@dataclass
class _FileContents:
    """What a latent file holds, validated: ws float32 [N, num_ws, w_dim]; noise name -> float32
    maps; the model name; the transform; settings and metrics objects; z [N, z_dim] or None; the
    checked tuning record (``file``, ``sha256``) or None."""

    ws: torch.Tensor
    noise: dict[str, torch.Tensor]
    model: str | None
    transform: Any
    settings: dict[str, Any]
    metrics: dict[str, Any]
    z: torch.Tensor | None = None
    tuning: dict[str, Any] | None = None


class _Counting:
    """A read-only stream wrapper counting the bytes read (the ``.npy`` header length)."""

    def __init__(self, f: BinaryIO) -> None:
        self.f, self.n = f, 0

    def read(self, size: int = -1) -> bytes:
        data = self.f.read(size)
        self.n += len(data)
        return data


class _Reader:
    """Reads validated members of one open latent zip."""

    def __init__(self, path: Path, zf: zipfile.ZipFile) -> None:
        self.path, self.zf = path, zf
        self.budget = MAX_TOTAL_BYTES
        self.members: dict[str, zipfile.ZipInfo] = {}
        for info in zf.infolist():
            if info.filename.endswith(".npy"):
                self.members[info.filename[:-4]] = info

    def fail(self, msg: str) -> LatentlabError:
        return LatentlabError(f"{self.path}: {msg}")

    def header(self, name: str, f: _Counting) -> tuple[tuple[int, ...], bool, np.dtype]:
        fmt = np.lib.format
        try:
            version = fmt.read_magic(f)
            if version == (1, 0):
                shape, fortran, dtype = fmt.read_array_header_1_0(f)
            elif version == (2, 0):
                shape, fortran, dtype = fmt.read_array_header_2_0(f)
            else:
                raise ValueError(f"unsupported .npy version {version}")
        except (ValueError, SyntaxError, TypeError, EOFError, struct.error) as exc:
            raise self.fail(f"member {name!r} is not a valid .npy array ({_one_line(exc)})") from None
        if dtype.hasobject or dtype.fields is not None or dtype.subdtype is not None:
            raise self.fail(f"member {name!r} holds Python objects or records ({dtype}); only numbers "
                            "are accepted (pickled data is never loaded)")
        if any((not isinstance(d, int)) or d < 0 for d in shape) or len(shape) > 8:
            raise self.fail(f"member {name!r} has an invalid shape {shape}")
        return tuple(int(d) for d in shape), bool(fortran), dtype

    def read(self, name: str, check) -> np.ndarray:
        """Member ``name``: header read, ``check(shape, dtype)`` (raises), then exactly its data."""
        info = self.members[name]
        self.check_sizes(name, info)
        try:
            with self.zf.open(info) as raw:
                f = _Counting(raw)
                shape, fortran, dtype = self.header(name, f)
                check(shape, dtype)
                count = math.prod(shape)
                nbytes = count * dtype.itemsize
                if f.n + nbytes != info.file_size:
                    raise self.fail(f"member {name!r} declares {info.file_size} bytes but its header says "
                                    f"{f.n + nbytes} (corrupt or crafted file)")
                data = raw.read(nbytes)
                if len(data) != nbytes:
                    raise self.fail(f"member {name!r} is truncated ({len(data)} of {nbytes} bytes)")
                raw.read(1)  # at the end: lets zipfile check the CRC
        except LatentlabError:
            raise
        except (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError, RuntimeError,
                NotImplementedError) as exc:
            raise self.fail(f"member {name!r} cannot be read ({_one_line(exc)})") from None
        arr = np.frombuffer(data, dtype=dtype, count=count)
        return arr.reshape(shape, order="F" if fortran else "C")

    def check_sizes(self, name: str, info: zipfile.ZipInfo) -> None:
        if info.flag_bits & 0x1:
            raise self.fail(f"member {name!r} is encrypted")
        if info.compress_type == zipfile.ZIP_STORED:
            if info.compress_size != info.file_size:
                raise self.fail(f"member {name!r} is stored uncompressed but declares {info.file_size} bytes "
                                f"in {info.compress_size}")
        elif info.file_size > MAX_DEFLATE_RATIO * info.compress_size + 1024:
            raise self.fail(f"member {name!r} declares {info.file_size} bytes from {info.compress_size} "
                            "compressed bytes: more than compression can produce (zip bomb?)")
        if info.file_size > self.budget:
            raise self.fail(f"member {name!r} declares {info.file_size} bytes; a latent file may hold at most "
                            f"{MAX_TOTAL_BYTES // 2**20} MiB of data in all")
        self.budget -= info.file_size

    # ------------------------------------------------------------------ typed readers
    def floats(self, name: str, shape_ok, what: str, max_values: int,
               max_abs: float = MAX_ABS_VALUE) -> np.ndarray:
        def check(shape: tuple[int, ...], dtype: np.dtype) -> None:
            if dtype not in _FLOAT_KINDS:
                raise self.fail(f"{name} has dtype {dtype}; a latent holds float16/32/64 numbers")
            if math.prod(shape) > max_values:
                raise self.fail(f"{name} has shape {list(shape)}: over the {max_values:,}-value limit")
            if not shape_ok(shape):
                raise self.fail(f"{name} must be {what}, got {list(shape)}")

        arr = self.read(name, check)
        if not np.isfinite(arr).all():
            raise self.fail(f"{name} holds NaN or infinite values")
        if arr.size and float(np.abs(arr).max()) > max_abs:
            raise self.fail(f"{name} holds values up to {float(np.abs(arr).max()):.3g}; "
                            f"|value| <= {max_abs:g} is accepted")
        return arr

    def ints(self, name: str, shape: tuple[int, ...], lo: int, hi: int) -> np.ndarray:
        def check(s: tuple[int, ...], dtype: np.dtype) -> None:
            if dtype.kind not in "iuf" or dtype.itemsize > 8:
                raise self.fail(f"{name} has dtype {dtype}; expected integers")
            if s != shape:
                raise self.fail(f"{name} must have shape {list(shape)}, got {list(s)}")

        arr = self.read(name, check)
        if arr.dtype.kind == "f" and not (np.isfinite(arr).all() and (arr == np.round(arr)).all()):
            raise self.fail(f"{name} must hold whole numbers")
        if arr.size and (arr.min() < lo or arr.max() > hi):
            raise self.fail(f"{name} is out of range ({lo}..{hi})")
        return arr.astype(np.int64)

    def text(self, name: str, max_chars: int) -> str:
        def check(shape: tuple[int, ...], dtype: np.dtype) -> None:
            if dtype.kind not in "US" or shape != ():
                raise self.fail(f"{name} must be a text scalar, got {dtype} {list(shape)}")
            chars = dtype.itemsize // (4 if dtype.kind == "U" else 1)
            if chars > max_chars:
                raise self.fail(f"{name} is {chars:,} characters long; at most {max_chars:,} are accepted")

        arr = self.read(name, check)
        value = arr[()]
        if isinstance(value, bytes):
            try:
                return value.decode("utf-8")
            except UnicodeDecodeError:
                raise self.fail(f"{name} is not UTF-8 text") from None
        return str(value)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200] or type(exc).__name__


def _check_central_directory(path: Path, f: BinaryIO, size: int) -> None:
    """Refuse zips whose central directory is too large to index cheaply (read from the end record
    before :class:`zipfile.ZipFile` builds one object per entry)."""
    tail_len = min(size, 22 + 65535)
    f.seek(size - tail_len)
    tail = f.read(tail_len)
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or at + 22 > len(tail):
        raise LatentlabError(f"{path}: not a latent .npz (not a zip archive)")
    entries, cd_size = struct.unpack("<HI", tail[at + 10:at + 16])
    if entries == 0xFFFF or cd_size == 0xFFFFFFFF:
        raise LatentlabError(f"{path}: zip64 archives are not latent files (too many or too large members)")
    if entries > MAX_ENTRIES or cd_size > MAX_CENTRAL_DIR_BYTES:
        raise LatentlabError(f"{path}: {entries} zip members ({cd_size} bytes of index); a latent file has "
                             f"at most {MAX_ENTRIES}")
    f.seek(0)


def _json_object(r: _Reader, name: str) -> dict[str, Any]:
    if name not in r.members:
        return {}
    text = r.text(name, MAX_SETTINGS_CHARS)
    try:
        value = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise r.fail(f"{name} is not valid JSON ({_one_line(exc)[:80]})") from None
    if not isinstance(value, dict):
        raise r.fail(f"{name} must be a JSON object, got {type(value).__name__}")
    return value


def _tuning(r: _Reader, settings: dict[str, Any]) -> dict[str, Any] | None:
    """``settings["tuning"]`` checked: an object with a plain ``file`` name and a ``sha256``."""
    if "tuning" not in settings or settings["tuning"] is None:
        return None
    t = settings["tuning"]
    if not isinstance(t, dict):
        raise r.fail("settings 'tuning' must be an object with 'file' and 'sha256'")
    name, digest = t.get("file"), t.get("sha256")
    if (not isinstance(name, str) or not _TUNING_FILE.fullmatch(name) or name.startswith(".")
            or ".." in name or ":" in name):
        raise r.fail(f"settings 'tuning' file must be a plain file name (no folders, not hidden), got {name!r}"[:300])
    if not isinstance(digest, str) or not re.fullmatch(r"[0-9a-fA-F]{64}", digest):
        raise r.fail("settings 'tuning' sha256 must be 64 hex digits")
    return {**t, "file": name, "sha256": digest.lower()}


def _transform(r: _Reader) -> Any:
    """The alignment transform, validated (finite, right shapes, invertible affine) or None."""
    from ..faces import FaceTransform
    from ..imageio import MAX_IMAGE_PIXELS

    present = [m for m in _ALIGN_MEMBERS if m in r.members]
    if not present:
        return None
    missing = [m for m in _ALIGN_MEMBERS[:4] if m not in r.members]
    if missing:
        raise r.fail(f"alignment data is incomplete (no {missing[0]!r})")
    matrix = r.floats("align_matrix", lambda s: s == (3, 3), "[3, 3]", 9, 1e7).astype(np.float64)
    resolution = int(r.ints("align_resolution", (), 1, 65536))
    size = r.ints("align_original_size", (2,), 1, MAX_IMAGE_PIXELS)
    quad = r.floats("align_quad", lambda s: s == (4, 2), "[4, 2]", 8, 1e7).astype(np.float64)
    landmarks = None
    if "align_landmarks" in r.members:
        landmarks = r.floats("align_landmarks", lambda s: s == (68, 2), "[68, 2]", 136, 1e7).astype(np.float64)
    if int(size[0]) * int(size[1]) > MAX_IMAGE_PIXELS:
        raise r.fail(f"align_original_size {size.tolist()} is larger than any photo latentlab reads")
    if not np.allclose(matrix[2], [0.0, 0.0, 1.0]):
        raise r.fail("align_matrix is not an affine map (last row must be 0 0 1)")
    a = matrix[:2, :2]
    det = float(np.linalg.det(a))
    norm = float(np.abs(a).max())
    if not (abs(det) > 1e-12 and norm > 0 and abs(det) / norm**2 > 1e-6):
        raise r.fail("align_matrix is singular (cannot map results back into the photo)")
    scale = math.sqrt(abs(det))
    if not 1e-4 <= scale <= 1e4:
        raise r.fail(f"align_matrix scales by {scale:.3g}, outside 1e-4..1e4")
    return FaceTransform(matrix, resolution, (int(size[0]), int(size[1])), quad, landmarks)


def _ws(r: _Reader) -> np.ndarray:
    def ok(s: tuple[int, ...]) -> bool:
        if len(s) == 2:
            s = (1, *s)
        return len(s) == 3 and s[0] >= 1 and 1 <= s[1] <= MAX_NUM_WS and 1 <= s[2] <= MAX_W_DIM

    ws = r.floats("ws", ok, f"[N, num_ws, w_dim] or [num_ws, w_dim] (num_ws <= {MAX_NUM_WS}, "
                             f"w_dim <= {MAX_W_DIM}, N >= 1)", MAX_WS_VALUES)
    return ws[None] if ws.ndim == 2 else ws


def _noise(r: _Reader, n: int) -> dict[str, torch.Tensor]:
    names = [k for k in r.members if k.startswith("noise/")]
    if len(names) > MAX_NOISE_MAPS:
        raise r.fail(f"{len(names)} noise maps; at most {MAX_NOISE_MAPS} are accepted")
    out: dict[str, torch.Tensor] = {}
    for member in names:
        key = member[len("noise/"):]
        if not _NOISE_NAME.fullmatch(key):
            continue  # not a name latentlab writes: ignored unread

        def ok(s: tuple[int, ...]) -> bool:
            lead = math.prod(s[:-2]) if len(s) > 2 else 1
            return (2 <= len(s) <= 4 and 1 <= s[-1] <= MAX_NOISE_SIDE and 1 <= s[-2] <= MAX_NOISE_SIDE
                    and lead in (1, n))

        arr = r.floats(member, ok, f"[..., H, W] with H, W <= {MAX_NOISE_SIDE} and one map or one per latent",
                       MAX_NOISE_BATCH * MAX_NOISE_SIDE**2)
        out[key] = torch.from_numpy(arr.astype(np.float32))
    return out


def read_latent_file(path: "str | Path", G: Generator | None = None) -> _FileContents:
    """Read a latent file safely (see the module docstring), any number of latents; with ``G``,
    also check that ws fits that generator ([N, G.num_ws, G.w_dim]). Nothing it names is opened."""
    path = Path(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise LatentlabError(f"{path}: no such file") from None
    except OSError as exc:
        raise LatentlabError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if stat.S_ISDIR(st.st_mode):
        raise LatentlabError(f"{path}: is a directory, not a latent .npz")
    if not stat.S_ISREG(st.st_mode):  # before open(): opening a FIFO blocks, a device never ends
        raise LatentlabError(f"{path}: not a regular file (a device, pipe or socket), not a latent .npz")
    if st.st_size > MAX_FILE_BYTES:
        raise LatentlabError(f"{path}: file is {st.st_size / 2**20:.0f} MiB; latent files over "
                             f"{MAX_FILE_BYTES // 2**20} MiB are refused")
    if st.st_size == 0:
        raise LatentlabError(f"{path}: empty file, not a latent .npz")
    try:
        with open(path, "rb") as f:
            fst = os.fstat(f.fileno())
            if not stat.S_ISREG(fst.st_mode) or fst.st_size > MAX_FILE_BYTES:
                raise LatentlabError(f"{path}: changed while being opened; not read")
            _check_central_directory(path, f, fst.st_size)
            with zipfile.ZipFile(f) as zf:
                return _read(_Reader(path, zf), G)
    except LatentlabError:
        raise
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError, struct.error,
            NotImplementedError, RuntimeError) as exc:
        raise LatentlabError(f"{path}: not a readable latent .npz ({_one_line(exc)})") from None


def _read(r: _Reader, G: Generator | None) -> _FileContents:
    if "ws" not in r.members:
        raise r.fail("no 'ws' array (write it with latentlab project or sample)")
    model = r.text("model", MAX_MODEL_CHARS) if "model" in r.members else None
    ws_np = _ws(r)
    if G is not None and (ws_np.shape[1] != G.num_ws or ws_np.shape[2] != G.w_dim):
        hint = f" (it was made with {model})" if model else ""
        raise r.fail(f"ws is {list(ws_np.shape[1:])} but this generator takes [{G.num_ws}, {G.w_dim}]{hint}")
    n = ws_np.shape[0]
    settings = _json_object(r, "settings")
    metrics = _json_object(r, "metrics")
    tuning = _tuning(r, settings)
    transform = _transform(r)
    noise = _noise(r, n)
    z = None
    if "z" in r.members:
        zs = r.floats("z", lambda s: len(s) == 2 and s[0] == n and 1 <= s[1] <= MAX_W_DIM,
                      f"[N, z_dim] with N = {n} (as ws)", MAX_WS_VALUES)
        z = torch.from_numpy(zs.astype(np.float32))
    ws = torch.from_numpy(ws_np.astype(np.float32))
    return _FileContents(ws, noise, model or None, transform, settings, metrics, z, tuning)


def same_model(a: str, b: str) -> bool:
    """Whether two model names (registry names or checkpoint paths) name the same model."""
    if a == b:
        return True
    pa, pb = Path(a).expanduser(), Path(b).expanduser()
    try:
        return pa.exists() and pb.exists() and pa.resolve() == pb.resolve()
    except OSError:
        return False


def load_latent(path: "str | Path", G: Generator | None = None, *, network: str | None = None,
                photo: "str | Path | None" = None) -> Latent:
    """Read one latent from a ``.npz`` file as a :class:`~latentlab.latent.Latent`, with its tuning
    delta when it records one (read from beside it and checked against its SHA-256).

    G: check that it fits this generator (and read the delta's parameters against it; a tuned
    latent needs G). network: the generator's name; a latent recorded for another model is refused
    in one line. photo: the original photo it was aligned from, for paste-back (a photo path stored
    in the file is never opened); it must have the size the latent was aligned from. A file holding
    several latents (``samples.npz``) is refused: editing takes one per file.
    """
    from ..faces.photo import photo_for_transform
    from .tuning import read_delta

    path = Path(path)
    c = read_latent_file(path, G)
    if c.ws.shape[0] != 1:
        raise LatentlabError(f"{path}: holds {c.ws.shape[0]} latents; editing takes one per file")
    if network is not None and c.model and not same_model(c.model, network):
        raise LatentlabError(f"{path}: latent was made with model {c.model!r}, not {network!r}; "
                             f"pass --network {c.model}")
    noise = {k: v.reshape(1, 1, *v.shape[-2:]) for k, v in c.noise.items()}
    if G is not None:
        buffers = G.noise_buffers()
        noise = {k: v for k, v in noise.items() if k in buffers and tuple(v.shape[-2:]) == tuple(buffers[k].shape[-2:])}
    tuning = None
    if c.tuning is not None:
        if G is None:
            raise LatentlabError(f"{path}: carries a pivotal tuning; read it with its generator")
        tuning = read_delta(path.parent / c.tuning["file"], G, sha256=c.tuning["sha256"])
    ph = None
    if photo is not None:
        if c.transform is None:
            raise LatentlabError(f"{path}: has no alignment data, so results cannot be pasted into --photo {photo}")
        ph = photo_for_transform(photo, c.transform, G.img_resolution if G is not None else c.transform.resolution,
                                 what=str(path))
    name = path.stem if path.stem not in ("latent", "samples") else (path.parent.name or path.stem)
    return Latent(c.ws, noise, c.transform, ph, tuning, network or c.model, name, c.settings, c.metrics)


__all__ = ["MAX_FILE_BYTES", "latent_npz_bytes", "load_latent", "read_latent_file", "same_model", "save_latent"]
