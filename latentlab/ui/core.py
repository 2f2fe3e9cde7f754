"""What the web UI does, without the web: sessions, photos, background jobs with progress and
cancel, projection, edits, style mixing, face swap, downloads.

:class:`Studio` holds what every browser shares: one generator, its directions, the
one-job-at-a-time slot and a :class:`MemoryBudget`. Each browser gets a :class:`Session` (its
photos, latents, images, job previews and download files; another session's ids are unknown to
it); sessions are bounded in number and the least recently used is dropped first.

Everything a session keeps is a value of the public API (:mod:`latentlab.api`): an upload is an
:class:`~latentlab.api.Photo` (the downscaled pixels and the aligned crop), a latent is an
:class:`~latentlab.api.Projection` (a :class:`~latentlab.api.Latent` bound to the studio's
generator: ws, noise maps, photo, pivotal tuning, record), an image is uint8 pixels. Every store
entry is counted in bytes against the studio's budget (arrays and tensors shared between entries
once: an edit shares its photo, noise maps and tuning with the projection it came from), and the
least recently used entries of any session are evicted when it is exceeded.

Every slow operation runs as a :class:`Job` in a background thread, one at a time (the generator
is not shared between threads); its progress (step, total, LPIPS, a small preview) is read by
polling and it can be cancelled: a cancelled projection keeps the best latent found so far.
Projection is :func:`latentlab.api.project`, edits :meth:`latentlab.api.Projection.edit`, style
mixing :func:`latentlab.api.style`, swaps :func:`latentlab.api.swap`: the UI computes nothing the
command line and the API would compute differently. Errors are
:class:`~latentlab.errors.LatentlabError` with one-line messages, which the web layer shows.
"""

from __future__ import annotations

import dataclasses
import math
import secrets
import tempfile
import threading
import time
import traceback
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch

from .. import api
from ..errors import LatentlabError
from ..progress import Progress

#: Default byte budget of all sessions' photos, latents, images, previews and downloads together.
DEFAULT_MEMORY_BUDGET = 2**30
#: Sessions kept (one per browser); the least recently used is dropped beyond this.
MAX_SESSIONS = 32
#: Finished jobs remembered per session (a running job is never forgotten).
MAX_JOBS = 32
#: Uploaded photos are downscaled at upload so that their longer side is at most this (pixels);
#: decoding itself is bounded by :data:`latentlab.imageio.MAX_IMAGE_PIXELS`, checked before decoding.
MAX_WORKING_SIDE = 2048
#: Side (px) of the live projection preview at most.
PREVIEW_SIDE = 256
#: Previews per optimisation stage (one every ``total // PREVIEWS`` steps, and the last).
PREVIEWS = 25
#: Truncation psi of the generated faces that serve as style sources.
STYLE_PSI = 0.7

#: One upload is decoded at a time, so the transient memory of decoding is bounded by one image.
_DECODE_LOCK = threading.Lock()


class BusyError(LatentlabError):
    """Another job is running; the generator does one thing at a time."""


class UnknownIdError(LatentlabError):
    """An id (photo, latent, image, job) this session does not have (never had, or evicted)."""


class TooLargeError(LatentlabError):
    """An upload or result that does not fit the memory budget on its own."""


class Cancelled(Exception):
    """Raised inside a job's work function when the user cancels it."""


def _new_id() -> str:
    return secrets.token_hex(8)


def _arrays(obj: Any, depth: int = 0) -> Iterator[tuple[Any, int]]:
    """(identity key, bytes) of every array, tensor and bytes object an entry keeps alive; views
    count as the whole buffer they keep (NumPy base, torch storage). Walks
    :class:`~latentlab.api.Projection` (its latent and, once drawn, its image), dataclasses
    (:class:`~latentlab.api.Latent`: ws, noise maps, transform, photo, tuning;
    :class:`~latentlab.api.Photo`: pixels and aligned crop; :class:`~latentlab.api.Tuning`: the
    delta tensors), dicts, lists and tuples. Never the generator a Projection is bound to (shared
    by every session, not kept by an entry)."""
    if depth > 8 or obj is None or isinstance(obj, (str, int, float, bool, Path)):
        return
    if isinstance(obj, np.ndarray):
        base = obj
        while isinstance(base.base, np.ndarray):
            base = base.base
        yield ("np", id(base)), int(base.nbytes)
    elif isinstance(obj, torch.Tensor):
        st = obj.untyped_storage()
        yield ("t", obj.device.type, st.data_ptr()), int(st.nbytes())
    elif isinstance(obj, (bytes, bytearray)):
        yield ("b", id(obj)), len(obj)
    elif isinstance(obj, api.Projection):
        yield from _arrays(obj.latent, depth + 1)
        image = obj.image  # lazy: nothing is drawn here
        if image.rendered:
            yield from _arrays(image.array, depth + 1)
    elif dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        for f in dataclasses.fields(obj):
            yield from _arrays(getattr(obj, f.name), depth + 1)
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from _arrays(v, depth + 1)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            yield from _arrays(v, depth + 1)


class MemoryBudget:
    """Bytes kept by every store of every session, with one least-recently-used order across them.

    An array shared by several entries (a photo and its "original" image, a projection and its
    edit's noise maps and tuning) is counted once, while any entry holding it is kept.
    ``limit``: bytes (>= 1).
    """

    def __init__(self, limit: int = DEFAULT_MEMORY_BUDGET):
        if int(limit) < 1:
            raise LatentlabError(f"memory budget must be positive, got {limit}")
        self.limit = int(limit)
        self.used = 0
        self.lock = threading.RLock()
        self._lru: OrderedDict[tuple[int, str], tuple["_Store", list[Any]]] = OrderedDict()
        self._refs: dict[Any, list[int]] = {}  # array key -> [bytes, number of entries holding it]

    def entry_bytes(self, value: Any) -> int:
        """Bytes ``value`` would add on its own (its arrays, each counted once)."""
        return sum(dict(_arrays(value)).values())

    def add(self, store: "_Store", key: str, value: Any) -> None:
        """Count a new entry and evict least recently used entries until the total fits."""
        own = dict(_arrays(value))
        with self.lock:
            for k, n in own.items():
                ref = self._refs.get(k)
                if ref is None:
                    self._refs[k] = [n, 1]
                    self.used += n
                else:
                    ref[1] += 1
            self._lru[(id(store), key)] = (store, list(own))
            while self.used > self.limit and len(self._lru) > 1:
                (_, old_key), (old_store, _) = next(iter(self._lru.items()))
                old_store._drop(old_key)  # calls remove()

    def touch(self, store: "_Store", key: str) -> None:
        with self.lock:
            if (id(store), key) in self._lru:
                self._lru.move_to_end((id(store), key))

    def remove(self, store: "_Store", key: str) -> None:
        with self.lock:
            item = self._lru.pop((id(store), key), None)
            if item is None:
                return
            for k in item[1]:
                ref = self._refs[k]
                ref[1] -= 1
                if ref[1] == 0:
                    self.used -= ref[0]
                    del self._refs[k]


class _Store:
    """A session's entries of one kind (photos, latents, images, previews, downloads), counted
    against the budget.

    ``put`` returns a new random id; ``set`` keeps a value under a given key (replacing the one
    there); ``need`` returns an entry (marking it recently used) or raises
    :class:`UnknownIdError`. A closed store (its session was dropped) keeps nothing.
    """

    def __init__(self, budget: MemoryBudget, what: str):
        self.budget, self.what = budget, what
        self._items: dict[str, Any] = {}
        self.closed = False

    def put(self, value: Any) -> str:
        key = _new_id()
        self.set(key, value)
        return key

    def set(self, key: str, value: Any) -> None:
        """Keep ``value`` under ``key`` (the entry there before is dropped first).
        :class:`TooLargeError` when it alone exceeds the whole budget."""
        size = self.budget.entry_bytes(value)
        if size > self.budget.limit:
            raise TooLargeError(f"this {self.what} needs {size / 2**20:.0f} MiB, more than the UI's whole memory "
                                f"budget ({self.budget.limit / 2**20:.0f} MiB; see --memory-budget)")
        with self.budget.lock:
            self._drop(key)
            if not self.closed:
                self._items[key] = value
                self.budget.add(self, key, value)

    def need(self, key: str) -> Any:
        with self.budget.lock:
            if not isinstance(key, str) or key not in self._items:
                raise UnknownIdError(f"unknown {self.what} {key!r} (it may have expired; upload or render again)")
            self.budget.touch(self, key)
            return self._items[key]

    def get(self, key: str | None, default: Any = None) -> Any:
        with self.budget.lock:
            return self._items.get(key, default) if isinstance(key, str) else default

    def _drop(self, key: str) -> None:
        with self.budget.lock:
            self._items.pop(key, None)
            self.budget.remove(self, key)

    def discard(self, key: str) -> None:
        """Forget ``key`` if it is here."""
        self._drop(key)

    def clear(self) -> None:
        with self.budget.lock:
            for key in list(self._items):
                self._drop(key)

    def close(self) -> None:
        with self.budget.lock:
            self.closed = True
            self.clear()

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def __getitem__(self, key: str) -> Any:
        return self._items[key]

    def __len__(self) -> int:
        return len(self._items)

    def keys(self):
        return list(self._items)


@dataclass(frozen=True)
class Upload:
    """An uploaded photo: the :class:`~latentlab.api.Photo` (downscaled pixels uint8 [H, W, 3] and
    the face crop uint8 [R, R, 3] with its transform) and whether the face was aligned (False: the
    whole photo was resized, and results are not pasted back)."""

    photo: Any  # latentlab.api.Photo
    aligned: bool


@dataclass
class DirectionInfo:
    """A named direction as the sliders show it (:func:`latentlab.api.describe_attributes`)."""

    name: str
    #: Default layer-range spec and those rows described (``rows:0-4 (4-16 px)``).
    layers: str
    rows: str
    path: str
    #: Slider range +-limit (W units): 2 sigma of a fitted direction, else the file's or 3.
    limit: float = 3.0
    #: One sigma in W units, None when the file records no spread.
    sigma: float | None = None


@dataclass
class Job:
    """A background task. status: running | done | failed | cancelled. Its latest preview (PNG
    bytes, :attr:`preview`) is kept in its session's budget-counted preview store."""

    kind: str
    total: int = 0
    id: str = field(default_factory=_new_id)
    status: str = "running"
    step: int = 0
    lpips: float | None = None
    message: str = ""
    error: str | None = None
    result: dict[str, Any] = field(default_factory=dict)
    started: float = field(default_factory=time.perf_counter)
    seconds: float = 0.0
    cancel_event: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None
    #: The session that started it (never shown: a session's id is its cookie).
    owner: Any = field(default=None, repr=False)
    #: Live figures a job kind adds to its state (a drag: its handles' positions).
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def preview(self) -> bytes | None:
        """The latest preview PNG (<= :data:`PREVIEW_SIDE` px), or None (none yet, or evicted)."""
        return None if self.owner is None else self.owner.previews.get(self.id)

    def set_preview(self, png: bytes) -> None:
        """Keep ``png`` as this job's preview (counted in its session's budget)."""
        if self.owner is not None:
            self.owner.previews.set(self.id, png)

    def cancel(self) -> None:
        self.cancel_event.set()

    def check_cancelled(self) -> None:
        if self.cancel_event.is_set():
            raise Cancelled()

    def to_dict(self) -> dict[str, Any]:
        secs = self.seconds if self.status != "running" else time.perf_counter() - self.started
        return {"id": self.id, "kind": self.kind, "status": self.status, "step": self.step, "total": self.total,
                "lpips": self.lpips, "message": self.message, "error": self.error, "result": self.result,
                "seconds": round(secs, 2), "has_preview": self.preview is not None, **self.extra}


def decode_upload(data: bytes, filename: str = "upload", *, max_side: int | None = MAX_WORKING_SIDE) -> np.ndarray:
    """Uploaded file bytes -> uint8 RGB [H, W, 3] with :func:`latentlab.api.load_image`'s rules
    (one-line LatentlabError for a non-image, empty, corrupt or too-small file; the byte limit and
    the pixel limit :data:`~latentlab.imageio.MAX_IMAGE_PIXELS` are checked before decoding), then
    downscaled so that the longer side is at most ``max_side`` (None: kept as decoded). One upload
    is decoded at a time."""
    return _decode(data, filename, max_side)[0]


def _decode(data: bytes, filename: str, max_side: int | None) -> tuple[np.ndarray, list[int]]:
    """(image, [W, H] as decoded) for :func:`decode_upload`."""
    if not data:
        raise LatentlabError(f"{filename}: empty upload, not an image")
    safe = "".join(c for c in Path(filename).name if c.isalnum() or c in "._-")[-80:] or "upload"
    with _DECODE_LOCK, tempfile.TemporaryDirectory(prefix="latentlab-ui-") as tmp:
        path = Path(tmp) / safe
        path.write_bytes(data)
        try:
            img = api.load_image(path, max_side=max_side)  # shrunk while decoding: no full-size array
            decoded = _image_size(data)
        except LatentlabError as exc:
            # Name the file as the user knows it, not the temp path.
            raise LatentlabError(str(exc).replace(str(path), Path(filename).name or "upload")) from None
        finally:
            api.release_free_memory()  # the decoder's transient buffers go back to the system
        return img, decoded


def _image_size(data: bytes) -> list[int]:
    """[W, H] of an image file as it shows (EXIF orientation applied), from its header."""
    import io

    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        w, h = im.size
        if im.getexif().get(0x0112, 1) in (5, 6, 7, 8):  # shown turned by 90 degrees
            w, h = h, w
    return [int(w), int(h)]


def png_bytes(image: np.ndarray) -> bytes:
    """uint8 [H, W, 3] -> PNG bytes, favouring speed (zlib level 1: a 1024 px face in ~0.1 s)."""
    return api.png_bytes(image, compress_level=1)


def preview_png(image: torch.Tensor, side: int = PREVIEW_SIDE) -> bytes:
    """The first of a batch of renders [N, 3, h, w] in [-1, 1] as a PNG at most ``side`` px
    (area-downsampled)."""
    x = image[:1].detach().float().cpu().clamp(-1, 1)
    if max(x.shape[2:]) > side:
        h, w = x.shape[2:]
        scale = side / max(h, w)
        x = torch.nn.functional.interpolate(x, size=(max(1, round(h * scale)), max(1, round(w * scale))),
                                            mode="area")
    arr = ((x[0].permute(1, 2, 0) + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).numpy()
    return png_bytes(np.ascontiguousarray(arr))


def _drag_points(points: Any) -> list[tuple[tuple[float, float], tuple[float, float]]]:
    """``[[hx, hy, tx, ty], ...]`` (JSON) -> ``[((hx, hy), (tx, ty)), ...]``; one-line errors."""
    if not isinstance(points, (list, tuple)) or not points:
        raise LatentlabError("points must be a non-empty list of [hx, hy, tx, ty]")
    out = []
    for p in points:
        if (not isinstance(p, (list, tuple)) or len(p) != 4
                or any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in p)):
            raise LatentlabError("each point must be [hx, hy, tx, ty] (four numbers)")
        if not all(math.isfinite(float(v)) for v in p):
            raise LatentlabError("points hold NaN or infinite coordinates")
        out.append(((float(p[0]), float(p[1])), (float(p[2]), float(p[3]))))
    return out


#: Most brush strokes a drag mask may hold.
MAX_BRUSH_STROKES = 4096


def _brush_mask(strokes: Any, resolution: int) -> np.ndarray:
    """Brush strokes ``[[x, y, radius], ...]`` (aligned pixels) -> bool [R, R], True inside any
    stroke; one-line errors for malformed, non-finite or too many strokes."""
    import cv2

    if not isinstance(strokes, (list, tuple)) or len(strokes) > MAX_BRUSH_STROKES:
        raise LatentlabError(f"mask must be a list of at most {MAX_BRUSH_STROKES} [x, y, radius] strokes")
    m = np.zeros((resolution, resolution), np.uint8)
    for st in strokes:
        if (not isinstance(st, (list, tuple)) or len(st) != 3
                or any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in st)
                or not all(math.isfinite(float(v)) for v in st)):
            raise LatentlabError("each mask stroke must be [x, y, radius] (three finite numbers)")
        x, y, r = (float(v) for v in st)
        if not (0 < r <= resolution and -resolution <= x <= 2 * resolution and -resolution <= y <= 2 * resolution):
            raise LatentlabError(f"mask stroke {[x, y, r]} lies outside the {resolution} px image")
        cv2.circle(m, (int(round(x)), int(round(y))), int(round(r)), 1, -1)
    return m.astype(bool)


def download_name(name: str) -> str:
    """A latent's name as a download's file name: ASCII letters, digits, ``._-`` only, at most
    100 characters, not hidden (``latent`` when nothing is left)."""
    safe = "".join(c for c in name if c.isascii() and (c.isalnum() or c in "._-"))[:100].lstrip(".")
    return safe or "latent"


class Studio:
    """What all sessions share: one generator, its directions, the job slot and the memory budget.

    G: the generator (eval mode); network: its registry name or checkpoint path (recorded in
    latents, and used to find named directions); direction_dirs: extra folders holding
    ``<model>/<name>.npz`` direction files (see :func:`latentlab.api.describe_attributes`);
    default_steps: projection steps the page proposes (None: the preset's own); preset: the
    projection preset the page proposes (:data:`latentlab.api.PRESETS`); drag_settings:
    :class:`latentlab.api.DragConfig` fields every drag uses (None: its defaults); memory_budget: bytes that
    all sessions' entries may keep together; max_sessions: sessions kept (least recently used
    dropped first). ``new_session()`` / ``session(id)`` give the per-browser state.
    """

    def __init__(self, G: Any, network: str, *, direction_dirs: Sequence["str | Path"] = (),
                 default_steps: int | None = None, preset: str = "pti", memory_budget: int = DEFAULT_MEMORY_BUDGET,
                 max_sessions: int = MAX_SESSIONS, drag_settings: dict[str, Any] | None = None):
        cfg = api.preset_config(preset)  # one-line error for an unknown preset
        self.drag_settings = {"preview_every": 5, **(drag_settings or {})}
        try:
            api.DragConfig(**self.drag_settings)
        except TypeError as exc:
            raise LatentlabError(f"bad drag setting: {exc}") from None
        if int(max_sessions) < 1:
            raise LatentlabError(f"max_sessions must be at least 1, got {max_sessions}")
        self.G, self.network = G, network
        self.preset = preset
        self.default_steps = cfg.num_steps if default_steps is None else int(default_steps)
        self.direction_dirs = [Path(d) for d in direction_dirs]
        self.budget = MemoryBudget(memory_budget)
        self.max_sessions = int(max_sessions)
        self.sessions: OrderedDict[str, Session] = OrderedDict()
        self._sessions_lock = threading.Lock()
        self._lock = threading.Lock()
        self._current: Job | None = None
        self.directions = [DirectionInfo(d["name"], d["layers"], d["rows"], d["path"], float(d["limit"]),
                                         None if d["sigma"] is None else float(d["sigma"]))
                           for d in api.describe_attributes(G, network=network, directions_dirs=self.direction_dirs)]

    # ------------------------------------------------------------------ sessions
    def new_session(self) -> "Session":
        """A fresh session (random 256-bit id and CSRF token); drops the least recently used
        session beyond ``max_sessions`` (cancelling its job, freeing its entries)."""
        s = Session(self, secrets.token_urlsafe(32))
        with self._sessions_lock:
            self.sessions[s.id] = s
            dropped = []
            while len(self.sessions) > self.max_sessions:
                dropped.append(self.sessions.popitem(last=False)[1])
        for old in dropped:
            old.close()
        return s

    def session(self, session_id: str | None) -> "Session | None":
        """The live session with this id (marked recently used), or None."""
        if not session_id:
            return None
        with self._sessions_lock:
            s = self.sessions.get(session_id)
            if s is not None:
                self.sessions.move_to_end(session_id)
            return s

    # ------------------------------------------------------------------ info
    def info(self) -> dict[str, Any]:
        """Model summary and the controls' defaults (JSON-able; nothing about any session):
        the presets with their space and steps, the directions with their slider ranges."""
        presets = []
        for name, cfg in api.PRESETS.items():
            presets.append({"name": name, "space": cfg.space, "steps": cfg.num_steps,
                            "tuning_steps": cfg.tuning.num_steps if cfg.tuning is not None else 0})
        return {
            "network": self.network, "resolution": self.G.img_resolution, "num_ws": self.G.num_ws,
            "w_dim": self.G.w_dim, "default_steps": self.default_steps, "preset": self.preset,
            "space": api.PRESETS[self.preset].space, "presets": presets,
            "directions": [{"name": d.name, "layers": d.layers, "limit": d.limit, "sigma": d.sigma, "rows": d.rows}
                           for d in self.directions],
            "style_layers": api.DEFAULT_RANGES["style"], "identity_layers": api.DEFAULT_IDENTITY_LAYERS,
            "max_working_side": MAX_WORKING_SIDE,
        }

    def describe_layers(self, spec: str) -> str:
        return api.describe_layers(self.G, spec)

    # ------------------------------------------------------------------ jobs
    def check_free(self, session: "Session") -> None:
        """:class:`BusyError` while a job holds the generator (checked again when one starts)."""
        cur = self._current
        if cur is not None and cur.status == "running":
            if cur.owner is session:
                raise BusyError(f"busy with a {cur.kind} job; wait for it or cancel it")
            raise BusyError("the generator is busy with another session's job; try again when it ends")

    def _start(self, session: "Session", kind: str, total: int, work: Callable[[Job], dict[str, Any]]) -> Job:
        """Run ``work`` in a background thread as ``session``'s job; one job at a time overall."""
        with self._lock:
            self.check_free(session)
            job = Job(kind, total, owner=session)
            session._add_job(job)
            self._current = job

        def run() -> None:
            try:
                job.result = work(job)
                job.status = "cancelled" if job.cancel_event.is_set() else "done"
            except Cancelled:
                job.status = "cancelled"
            except LatentlabError as exc:
                job.error, job.status = " ".join(str(exc).split()), "failed"
            except Exception as exc:  # noqa: BLE001 - a bug must reach the user, not kill the thread silently
                traceback.print_exc()
                job.error, job.status = f"internal error: {type(exc).__name__}: {exc}", "failed"
            finally:
                job.seconds = time.perf_counter() - job.started
                api.release_free_memory()  # a job's activations go back to the system, not to the heap

        job.thread = threading.Thread(target=run, name=f"latentlab-{kind}-{job.id}", daemon=True)
        job.thread.start()
        return job

    def busy_elsewhere(self, session: "Session") -> bool:
        """Whether another session's job holds the generator now."""
        cur = self._current
        return cur is not None and cur.status == "running" and cur.owner is not session


class Session:
    """One browser's state: its photos, latents, images, previews, downloads and jobs; the web
    layer calls these methods.

    id: the session cookie's value (secret); csrf_token: sent back in the X-CSRF-Token header of
    every state-changing request. Ids of one session are unknown (404) to every other.
    ``photos`` holds :class:`Upload` entries, ``latents`` :class:`~latentlab.api.Projection`
    objects, ``images`` uint8 arrays, ``previews`` each job's PNG, ``downloads`` a latent's files.
    """

    def __init__(self, studio: Studio, session_id: str):
        self.studio, self.id = studio, session_id
        self.csrf_token = secrets.token_urlsafe(32)
        self.photos = _Store(studio.budget, "photo")
        self.latents = _Store(studio.budget, "latent")
        self.images = _Store(studio.budget, "image")
        self.previews = _Store(studio.budget, "preview")
        self.downloads = _Store(studio.budget, "download")
        self.jobs: OrderedDict[str, Job] = OrderedDict()
        self._samples: dict[tuple[int, float], str] = {}
        self.closed = False

    @property
    def G(self) -> Any:
        return self.studio.G

    @property
    def network(self) -> str:
        return self.studio.network

    @property
    def directions(self) -> list[DirectionInfo]:
        return self.studio.directions

    def _stores(self) -> tuple[_Store, ...]:
        return (self.photos, self.latents, self.images, self.previews, self.downloads)

    def close(self) -> None:
        """Cancel this session's jobs and free its entries (it was dropped)."""
        self.closed = True
        for job in list(self.jobs.values()):
            job.cancel()
        for store in self._stores():
            store.close()

    def info(self) -> dict[str, Any]:
        """The studio's info plus this session's running job (``busy``) and its recent jobs only."""
        mine = list(self.jobs.values())
        running = next((j for j in mine if j.status == "running"), None)
        return {**self.studio.info(), "busy": running.to_dict() if running is not None else None,
                "busy_elsewhere": self.studio.busy_elsewhere(self),
                "jobs": [{"id": j.id, "kind": j.kind, "status": j.status} for j in mine]}

    def describe_layers(self, spec: str) -> str:
        return self.studio.describe_layers(spec)

    # ------------------------------------------------------------------ jobs
    def _add_job(self, job: Job) -> None:
        self.jobs[job.id] = job
        old = [k for k, j in self.jobs.items() if j.status != "running" and j is not job]
        for k in old[:max(0, len(self.jobs) - MAX_JOBS)]:
            del self.jobs[k]
            self.previews.discard(k)

    def _start(self, kind: str, total: int, work: Callable[[Job], dict[str, Any]]) -> Job:
        return self.studio._start(self, kind, total, work)

    def job(self, job_id: str) -> Job:
        if not isinstance(job_id, str) or job_id not in self.jobs:
            raise UnknownIdError(f"unknown job {job_id!r}")
        return self.jobs[job_id]

    def cancel(self, job_id: str) -> Job:
        job = self.job(job_id)
        job.cancel()
        return job

    def wait(self, job: Job, timeout: float | None = None) -> Job:
        """Block until ``job`` ends (for scripts and tests)."""
        if job.thread is not None:
            job.thread.join(timeout)
        return job

    # ------------------------------------------------------------------ photos
    def add_photo(self, data: bytes, filename: str = "upload", *, align: bool = True) -> dict[str, Any]:
        """Decode (pixel limit before decoding), downscale to :data:`MAX_WORKING_SIDE`, and align (or
        just resize, ``align=False``) an uploaded photo (:func:`latentlab.api.load_photo`). Returns
        its id, its name, its working size [W, H], the decoded size, and image ids of the
        (downscaled) original and the aligned face."""
        try:
            img, decoded = _decode(data, filename, MAX_WORKING_SIDE)
            shown = Path(filename).name or "upload"
            # messages name the file as uploaded; results are named by its stem
            photo = api.load_photo(img, self.G, align=align, name=shown)
            photo = dataclasses.replace(photo, name=Path(shown).stem or "photo")
            pid = self.photos.put(Upload(photo, bool(align)))
            return {"photo": pid, "name": photo.name, "size": [int(img.shape[1]), int(img.shape[0])],
                    "decoded_size": decoded, "original_image": self.images.put(photo.original),
                    "aligned_image": self.images.put(photo.aligned)}
        finally:
            del data
            api.release_free_memory()  # decoding's and alignment's transient buffers (and evicted entries)

    # ------------------------------------------------------------------ projection
    def start_projection(self, photo_id: str, num_steps: int | None = None, space: str | None = None,
                         preset: str | None = None) -> Job:
        """Project a photo in the background with :func:`latentlab.api.project` (``preset``: a name
        of :data:`latentlab.api.PRESETS`, None: the studio's; ``num_steps``: projection steps, None:
        the studio's default; ``space``: ``"w"`` or ``"w+"``, None: the preset's). Progress per step
        of the projection and of pivotal tuning; cancel keeps the best latent so far."""
        upload: Upload = self.photos.need(photo_id)
        steps = self.studio.default_steps if num_steps is None else int(num_steps)
        if not 1 <= steps <= 5000:
            raise LatentlabError(f"steps must be between 1 and 5000, got {steps}")
        preset = self.studio.preset if preset is None else preset
        cfg = api.preset_config(preset, num_steps=steps, space=space)  # one-line errors before starting
        total = cfg.num_steps + (cfg.tuning.num_steps if cfg.tuning is not None else 0)
        return self._start("projection", total, lambda job: self._project(job, upload, preset, cfg))

    def _project(self, job: Job, upload: Upload, preset: str, cfg: Any) -> dict[str, Any]:
        tuning = cfg.tuning
        job.message = "preparing (mean latent, loss network)"

        def on_progress(ev: Progress) -> None:
            if ev.stage in ("project", "tune"):
                tune = ev.stage == "tune"
                job.step = (cfg.num_steps if tune else 0) + ev.step
                shows_lpips = (tuning.lpips_weight if tune else cfg.lpips_weight) > 0
                lp = ev.values.get("lpips")
                job.lpips = float(lp) if shows_lpips and lp is not None and math.isfinite(lp) else None
                job.message = (f"pivotal tuning {ev.step}/{ev.total}" if tune else f"step {ev.step}/{ev.total}")
                every = max(1, ev.total // PREVIEWS)
                if ev.image is not None and ((ev.step - 1) % every == 0 or ev.step >= ev.total):
                    try:
                        job.set_preview(preview_png(ev.image))
                    except TooLargeError:
                        pass  # a budget smaller than one preview: the projection goes on without it
            elif ev.stage == "metrics":
                job.message = "measuring the result"

        p = api.project(upload.photo, self.G, preset=preset, network=self.network, cache=False,
                        align=upload.aligned, num_steps=cfg.num_steps, space=cfg.space, progress=on_progress,
                        cancel=job.cancel_event)
        job.message = "rendering the result"
        out = self._keep(p)
        job.message = "cancelled: kept the best latent so far" if p.latent.interrupted else "done"
        return {**out, "metrics": api.json_safe(p.metrics), "preset": preset}

    def _keep(self, p: Any) -> dict[str, Any]:
        """Draw a Projection, keep it as a latent and its image (and, when it has an aligned photo,
        the result pasted into it) as images; their ids and whether it is tuned."""
        image = p.image.array
        lid = self.latents.put(p)
        out: dict[str, Any] = {"latent": lid, "tuned": p.tuning is not None, "image": self.images.put(image),
                               "pasted_image": None}
        if p.can_paste and p.latent.settings.get("aligned", True):
            out["pasted_image"] = self.images.put(p.paste().array)
        return out

    # ------------------------------------------------------------------ edits
    def sample_latent(self, seed: int, truncation_psi: float = STYLE_PSI) -> str:
        """A generated face (for a style source) as :func:`latentlab.api.sample` makes it: a
        Projection without a photo; the same seed and psi give the same id while it is kept."""
        if isinstance(seed, bool) or not 0 <= int(seed) < 2**32:
            raise LatentlabError(f"seed must be in [0, 2^32), got {seed}")
        key = (int(seed), float(truncation_psi))
        if self._samples.get(key) in self.latents:
            return self._samples[key]
        p = api.sample(self.G, [int(seed)], float(truncation_psi), network=self.network)[0]
        self._samples[key] = self.latents.put(p)
        return self._samples[key]

    def edited(self, latent_id: str, strengths: dict[str, float] | None = None,
               layers: dict[str, str] | None = None, style: dict[str, Any] | None = None) -> Any:
        """The latent with style mixing (:func:`latentlab.api.style`: rows from another latent or a
        generated face) and then each named direction applied on its layer range
        (:meth:`latentlab.api.Projection.edit`, W units, as the CLI and the API apply them); a new
        Projection named ``<name>_edit``, not drawn yet. strengths: name -> strength (zero
        strengths are left out); layers: name -> layer-range spec overriding a direction's
        default; style: {"latent": id or None, "seed": int or None, "layers": spec}."""
        base = self.latents.need(latent_id)
        known = [d.name for d in self.directions]
        for name in strengths or {}:
            if name not in known:
                raise LatentlabError(f"unknown direction {name!r}; available: {', '.join(known) or 'none'}")
        result = base
        if style and (style.get("latent") or style.get("seed") is not None):
            src_id = style.get("latent") or self.sample_latent(int(style["seed"]))
            result = api.style(result, self.latents.need(src_id), str(style.get("layers") or api.DEFAULT_RANGES["style"]))
        moves = {k: v for k, v in (strengths or {}).items() if v != 0}
        name = f"{base.name}_edit"
        if moves:
            spans = {k: v for k, v in (layers or {}).items() if k in moves and v and v.strip()}
            return result.edit(moves, layers=spans or None, unit="w", directions_dirs=self.studio.direction_dirs,
                               name=name)
        return result.with_latent(result.latent.replace(name=name))

    def _start_result(self, kind: str, make: Callable[[], Any]) -> Job:
        """Make (``make()``: a Projection) and draw a result in the background, and keep it."""

        def work(job: Job) -> dict[str, Any]:
            job.message = f"rendering the {kind}" if kind != "render" else "rendering"
            job.check_cancelled()
            p = make()
            p.image.array  # draw it (cancel cannot stop one forward pass)
            job.check_cancelled()
            out = self._keep(p)
            job.step, job.message = 1, "done"
            return out

        return self._start(kind, 1, work)

    def start_render(self, latent_id: str, strengths: dict[str, float] | None = None,
                     layers: dict[str, str] | None = None, style: dict[str, Any] | None = None) -> Job:
        """Render an edit (:meth:`edited`, checked before the job starts) in the background; the
        result is a new latent (downloadable) and its images."""
        self.studio.check_free(self)
        result = self.edited(latent_id, strengths, layers, style)
        return self._start_result("render", lambda: result)

    def start_swap(self, target_latent: str, face_latent: str, identity_layers: str | None = None,
                   tuning: "str | float | None" = None) -> Job:
        """Face swap by row mixing (:func:`latentlab.api.swap`): ``face_latent``'s identity rows on
        ``target_latent`` (the photo whose background, hair and lighting stay), pasted back into
        the target's photo. ``tuning``: which pivotal tuning draws it when the latents carry them
        (``blend`` (default), the face's share as a number in [0, 1], ``b``, ``a``, ``none``:
        :func:`latentlab.api.check_swap_tuning`)."""
        onto = self.latents.need(target_latent)
        face = self.latents.need(face_latent)
        choice = api.check_swap_tuning("blend" if tuning is None or tuning == "" else tuning)  # (0 means B's)
        layers = identity_layers or api.DEFAULT_IDENTITY_LAYERS
        self.describe_layers(layers)  # a bad range is a one-line error now, not a failed job
        self.studio.check_free(self)
        return self._start_result("swap", lambda: api.swap(face, onto, identity_layers=layers, tuning=choice,
                                                           progress=None))

    def start_drag(self, latent_id: str, points: Sequence[Sequence[float]], mask: Sequence[Sequence[float]] | None = None,
                   steps: int = 200, **settings: Any) -> Job:
        """Drag editing (:meth:`latentlab.api.Projection.drag`) of a latent in the background.

        points: ``[[hx, hy, tx, ty], ...]`` in pixels of the aligned image at the model's
        resolution; mask: None, or the region that may move as painted brush strokes ``[[x, y,
        radius], ...]`` in the same pixels (rasterised here); steps: most optimisation steps;
        settings: other :class:`latentlab.api.DragConfig` fields (over the studio's). The
        handles' positions and a preview every few steps show while it runs; cancel keeps the drag
        so far. The result is a new latent (with the base's photo and tuning) and its images."""
        base = self.latents.need(latent_id)
        R = self.G.img_resolution
        pairs = _drag_points(points)
        region = _brush_mask(mask, R) if mask else None
        if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= 2000:
            raise LatentlabError(f"drag steps must be an integer between 1 and 2000, got {steps!r}")
        settings = {**self.studio.drag_settings, **settings}
        try:
            api.DragConfig(**{**settings, "max_steps": steps})  # checked now, not in the job
        except TypeError as exc:
            raise LatentlabError(f"bad drag setting: {exc}") from None
        api.check_drag_points(pairs, R)  # one-line errors before the job starts
        self.studio.check_free(self)

        def work(job: Job) -> dict[str, Any]:
            job.message = "dragging"

            def on_progress(ev: Progress) -> None:
                job.step = ev.step
                handles = ev.state.get("handles")
                if handles is not None:
                    job.extra["handles"] = [[round(float(x), 2), round(float(y), 2)] for x, y in handles]
                    job.message = f"step {ev.step}/{ev.total}"
                if ev.image is not None:
                    try:
                        job.set_preview(preview_png(ev.image))
                    except TooLargeError:
                        pass

            p = base.drag(pairs, mask=region, coords="aligned", steps=steps, progress=on_progress,
                          cancel=job.cancel_event, **settings)
            job.message = "rendering the result"
            out = self._keep(p)
            op = p.history[-1]
            job.extra["handles"] = op["handles_final"]
            job.message = "cancelled: kept the drag so far" if op["stopped"] == "cancelled" else f"done ({op['stopped']})"
            return {**out, "handles": op["handles_final"], "steps": op["steps"], "stopped": op["stopped"]}

        return self._start("drag", steps, work)

    # ------------------------------------------------------------------ downloads
    def image_png(self, image_id: str) -> bytes:
        return png_bytes(self.images.need(image_id))

    def latent_name(self, latent_id: str) -> str:
        """The latent's download name (:func:`download_name` of its name)."""
        return download_name(self.latents.need(latent_id).name)

    def latent_files(self, latent_id: str) -> dict[str, bytes]:
        """The latent's files (:meth:`latentlab.api.Projection.file_bytes`): ``NAME.npz`` and, for
        a tuned latent, ``NAME.pti.safetensors``, which the ``.npz`` names and pins by SHA-256.
        Made once and kept (counted in the budget) so that the two downloads belong together."""
        p = self.latents.need(latent_id)
        files = self.downloads.get(latent_id)
        if files is None:
            files = p.file_bytes(download_name(p.name))
            try:
                self.downloads.set(latent_id, files)
            except TooLargeError:
                pass  # served without being kept
        return files

    def latent_npz(self, latent_id: str) -> bytes:
        """The latent as ``NAME.npz`` bytes (the ``latentlab project`` format: ws, noise, alignment,
        settings, metrics, model; a tuned one names its delta), so every command accepts it."""
        return self.latent_files(latent_id)[f"{self.latent_name(latent_id)}.npz"]

    def delta_file_name(self, latent_id: str) -> str:
        """The file name a tuned latent's ``.npz`` download names for its delta (save both side by side)."""
        return f"{self.latent_name(latent_id)}.pti.safetensors"

    def latent_delta(self, latent_id: str) -> bytes:
        """A tuned latent's pivotal-tuning delta (``.pti.safetensors`` bytes)."""
        files = self.latent_files(latent_id)
        name = self.delta_file_name(latent_id)
        if name not in files:
            raise LatentlabError(f"latent {latent_id!r} carries no pivotal tuning")
        return files[name]


__all__ = ["BusyError", "DEFAULT_MEMORY_BUDGET", "DirectionInfo", "Job", "MAX_SESSIONS", "MAX_WORKING_SIDE",
           "MemoryBudget", "Session", "Studio", "TooLargeError", "UnknownIdError", "Upload", "decode_upload",
           "download_name", "png_bytes", "preview_png"]
