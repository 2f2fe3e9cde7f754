"""What the web UI does, without the web: sessions, photos, background jobs with progress and
cancel, projection, edits, style mixing, face swap, downloads.

:class:`Studio` holds what every browser shares: one generator, its directions, the LPIPS model,
the one-job-at-a-time slot and a :class:`MemoryBudget`. Each browser gets a :class:`Session` (its
photos, latents, images and jobs; another session's ids are unknown to it); sessions are bounded
in number and the least recently used is dropped first. Every store entry is counted in bytes
(arrays shared between entries once) against the studio's budget, and the least recently used
entries of any session are evicted when it is exceeded. Every slow operation runs as a
:class:`Job` in a background thread, one at a time (the generator is not shared between threads);
its progress (step, total, LPIPS, a small preview) is read by polling and it can be cancelled: a
cancelled projection keeps the best latent found so far. Errors are
:class:`~latentlab.errors.LatentlabError` with one-line messages, which the web layer shows.
"""

from __future__ import annotations

import dataclasses
import io
import os
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

from ..errors import LatentlabError
from ..models.base import Generator

#: Default byte budget of all sessions' photos, latents and images together.
DEFAULT_MEMORY_BUDGET = 2**30
#: Sessions kept (one per browser); the least recently used is dropped beyond this.
MAX_SESSIONS = 32
#: Finished jobs remembered per session (a running job is never forgotten).
MAX_JOBS = 32
#: Uploaded photos are downscaled at upload so that their longer side is at most this (pixels);
#: decoding itself is bounded by :data:`latentlab.imageio.MAX_IMAGE_PIXELS`, checked before decoding.
MAX_WORKING_SIDE = 2048

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
    count as the whole buffer they keep (NumPy base, torch storage)."""
    if depth > 4 or obj is None:
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

    An array shared by several entries (a photo and its "original" image, a latent and its edit's
    noise maps) is counted once, while any entry holding it is kept. ``limit``: bytes (>= 1).
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
    """A session's entries of one kind (photos, latents or images), counted against the budget.

    ``put`` returns a new random id; ``need`` returns an entry (marking it recently used) or
    raises :class:`UnknownIdError`. A closed store (its session was dropped) keeps nothing.
    """

    def __init__(self, budget: MemoryBudget, what: str):
        self.budget, self.what = budget, what
        self._items: dict[str, Any] = {}
        self.closed = False

    def put(self, value: Any) -> str:
        key = _new_id()
        size = self.budget.entry_bytes(value)
        if size > self.budget.limit:
            raise TooLargeError(f"this {self.what} needs {size / 2**20:.0f} MiB, more than the UI's whole memory "
                                f"budget ({self.budget.limit / 2**20:.0f} MiB; see --memory-budget)")
        with self.budget.lock:
            if not self.closed:
                self._items[key] = value
                self.budget.add(self, key, value)
        return key

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


@dataclass
class Photo:
    """An uploaded photo: original uint8 [H, W, 3] and its aligned face (faces.AlignedFace)."""

    name: str
    original: np.ndarray
    face: Any
    aligned: bool


@dataclass
class LatentEntry:
    """ws [1, num_ws, w_dim] (CPU float32), noise maps name -> [1, 1, H, W], and where it came from."""

    name: str
    ws: torch.Tensor
    noise: dict[str, torch.Tensor]
    photo_id: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    #: pivotal tuning of this latent (``--preset pti``): parameter deltas (float32) and the same deltas
    #: as a ``.pti.safetensors`` file's bytes (what the download serves); None when not tuned
    delta: dict[str, torch.Tensor] | None = None
    delta_file: bytes | None = None


@dataclass
class DirectionInfo:
    """A named direction with its default layer-range spec."""

    name: str
    vector: np.ndarray
    layers: str
    path: str
    #: Slider range +-limit (W units): 2 sigma of a fitted direction (``Direction.demo_strength``), else 3.
    limit: float = 3.0
    #: One sigma in W units (``Direction.sigma``), None when the file records no spread.
    sigma: float | None = None


@dataclass
class Job:
    """A background task. status: running | done | failed | cancelled."""

    kind: str
    total: int = 0
    id: str = field(default_factory=_new_id)
    status: str = "running"
    step: int = 0
    lpips: float | None = None
    message: str = ""
    error: str | None = None
    result: dict[str, Any] = field(default_factory=dict)
    preview: bytes | None = None
    started: float = field(default_factory=time.perf_counter)
    seconds: float = 0.0
    cancel_event: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None
    #: The session that started it (never shown: a session's id is its cookie).
    owner: Any = field(default=None, repr=False)

    def cancel(self) -> None:
        self.cancel_event.set()

    def check_cancelled(self) -> None:
        if self.cancel_event.is_set():
            raise Cancelled()

    def to_dict(self) -> dict[str, Any]:
        secs = self.seconds if self.status != "running" else time.perf_counter() - self.started
        return {"id": self.id, "kind": self.kind, "status": self.status, "step": self.step, "total": self.total,
                "lpips": self.lpips, "message": self.message, "error": self.error, "result": self.result,
                "seconds": round(secs, 2), "has_preview": self.preview is not None}


def decode_upload(data: bytes, filename: str = "upload", *, max_side: int | None = MAX_WORKING_SIDE) -> np.ndarray:
    """Uploaded file bytes -> uint8 RGB [H, W, 3] with :func:`latentlab.imageio.load_image`'s rules
    (one-line LatentlabError for a non-image, empty, corrupt or too-small file; the byte limit and
    the pixel limit :data:`~latentlab.imageio.MAX_IMAGE_PIXELS` are checked before decoding), then
    downscaled so that the longer side is at most ``max_side`` (None: kept as decoded). One upload
    is decoded at a time."""
    return _decode(data, filename, max_side)[0]


def _decode(data: bytes, filename: str, max_side: int | None) -> tuple[np.ndarray, list[int]]:
    """(image, [W, H] as decoded) for :func:`decode_upload`."""
    from ..imageio import load_image

    if not data:
        raise LatentlabError(f"{filename}: empty upload, not an image")
    safe = "".join(c for c in Path(filename).name if c.isalnum() or c in "._-")[-80:] or "upload"
    with _DECODE_LOCK, tempfile.TemporaryDirectory(prefix="latentlab-ui-") as tmp:
        path = Path(tmp) / safe
        path.write_bytes(data)
        try:
            img = load_image(path)
        except LatentlabError as exc:
            # Name the file as the user knows it, not the temp path.
            raise LatentlabError(str(exc).replace(str(path), Path(filename).name or "upload")) from None
        decoded = [int(img.shape[1]), int(img.shape[0])]
        return (img if max_side is None else fit_working_size(img, max_side)), decoded


def fit_working_size(image: np.ndarray, max_side: int = MAX_WORKING_SIDE) -> np.ndarray:
    """uint8 [H, W, 3] -> the same image with its longer side at most ``max_side`` (Lanczos,
    aspect ratio kept; returned unchanged when it already fits)."""
    from PIL import Image

    h, w = image.shape[:2]
    if max(h, w) <= max_side:
        return image
    scale = max_side / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    out = Image.fromarray(np.ascontiguousarray(image)).resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)
    return np.asarray(out).copy()


def png_bytes(image: np.ndarray) -> bytes:
    """uint8 [H, W, 3] -> PNG bytes, favouring speed (zlib level 1: a 1024 px face in ~0.1 s)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


class Studio:
    """What all sessions share: one generator, its directions, the job slot and the memory budget.

    G: the generator (eval mode); network: its registry name or checkpoint path (recorded in
    latents, and used to find named directions); direction_dirs: extra folders holding
    ``<model>/<name>.npz`` direction files (see :mod:`latentlab.editing.attributes`);
    default_steps: projection steps the page proposes; memory_budget: bytes that all sessions'
    photos, latents and images may keep together; max_sessions: sessions kept (least recently
    used dropped first). ``new_session()`` / ``session(id)`` give the per-browser state.
    """

    def __init__(self, G: Generator, network: str, *, direction_dirs: Sequence["str | Path"] = (),
                 default_steps: int = 100, preset: str = "seed", memory_budget: int = DEFAULT_MEMORY_BUDGET,
                 max_sessions: int = MAX_SESSIONS):
        from ..inversion import PRESETS

        if preset not in PRESETS:
            raise LatentlabError(f"unknown projection preset {preset!r}; choose from {', '.join(PRESETS)}")
        if int(max_sessions) < 1:
            raise LatentlabError(f"max_sessions must be at least 1, got {max_sessions}")
        self.G, self.network = G, network
        self.default_steps, self.preset = int(default_steps), preset
        self.budget = MemoryBudget(memory_budget)
        self.max_sessions = int(max_sessions)
        self.sessions: OrderedDict[str, Session] = OrderedDict()
        self._sessions_lock = threading.Lock()
        self._lock = threading.Lock()
        self._current: Job | None = None
        self._lpips = None
        self.directions = self._load_directions(direction_dirs)

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
    def _load_directions(self, dirs: Sequence["str | Path"]) -> list[DirectionInfo]:
        from ..editing.attributes import available_attributes
        from ..editing.directions import load_direction
        from ..editing.pipeline import direction_edit

        out = []
        for name, path in sorted(available_attributes(self.network, list(dirs)).items()):
            d = load_direction(path, name=name)
            # the CLI's and the API's rule for the default rows (file's range, else the attribute's
            # seed range, else all); shape and layer errors are one line, checked now
            e = direction_edit(self.G, self.network, d, 1.0, label=name, attribute=name, warn=lambda _m: None)
            out.append(DirectionInfo(name, d.vector, e.layers, str(path), d.demo_strength(), d.sigma()))
        return out

    def info(self) -> dict[str, Any]:
        """Model summary and the edit controls' defaults (JSON-able; nothing about any session)."""
        from ..editing.layers import SEED_RANGES, describe_rows, parse_layers
        from ..editing.swap import DEFAULT_IDENTITY_LAYERS
        from ..inversion import PRESETS

        return {
            "network": self.network, "resolution": self.G.img_resolution, "num_ws": self.G.num_ws,
            "w_dim": self.G.w_dim, "default_steps": self.default_steps, "preset": self.preset,
            "space": PRESETS[self.preset].space,
            "directions": [{"name": d.name, "layers": d.layers, "limit": d.limit, "sigma": d.sigma,
                            "rows": describe_rows(parse_layers(d.layers, self.G), self.G)} for d in self.directions],
            "style_layers": SEED_RANGES["style"], "identity_layers": DEFAULT_IDENTITY_LAYERS,
            "max_working_side": MAX_WORKING_SIDE,
        }

    def describe_layers(self, spec: str) -> str:
        from ..editing.layers import describe_rows, parse_layers

        return describe_rows(parse_layers(spec, self.G), self.G)

    def _lpips_model(self):
        if self._lpips is None:
            from ..losses import LPIPS

            self._lpips = LPIPS().to(self.G.device).eval()
        return self._lpips

    # ------------------------------------------------------------------ jobs
    def _start(self, session: "Session", kind: str, total: int, work: Callable[[Job], dict[str, Any]]) -> Job:
        """Run ``work`` in a background thread as ``session``'s job; one job at a time overall."""
        with self._lock:
            cur = self._current
            if cur is not None and cur.status == "running":
                if cur.owner is session:
                    raise BusyError(f"busy with a {cur.kind} job; wait for it or cancel it")
                raise BusyError("the generator is busy with another session's job; try again when it ends")
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

        job.thread = threading.Thread(target=run, name=f"latentlab-{kind}-{job.id}", daemon=True)
        job.thread.start()
        return job

    def busy_elsewhere(self, session: "Session") -> bool:
        """Whether another session's job holds the generator now."""
        cur = self._current
        return cur is not None and cur.status == "running" and cur.owner is not session


class Session:
    """One browser's state: its photos, latents, images and jobs; the web layer calls these methods.

    id: the session cookie's value (secret); csrf_token: sent back in the X-CSRF-Token header of
    every state-changing request. Ids of one session are unknown (404) to every other.
    """

    def __init__(self, studio: Studio, session_id: str):
        self.studio, self.id = studio, session_id
        self.csrf_token = secrets.token_urlsafe(32)
        self.photos = _Store(studio.budget, "photo")
        self.latents = _Store(studio.budget, "latent")
        self.images = _Store(studio.budget, "image")
        self.jobs: OrderedDict[str, Job] = OrderedDict()
        self._samples: dict[tuple[int, float], str] = {}
        self._tuned: tuple[dict[str, torch.Tensor], Generator] | None = None  # generator_for's last build
        self.closed = False

    @property
    def G(self) -> Generator:
        return self.studio.G

    @property
    def network(self) -> str:
        return self.studio.network

    @property
    def directions(self) -> list[DirectionInfo]:
        return self.studio.directions

    def close(self) -> None:
        """Cancel this session's jobs and free its entries (it was dropped)."""
        self.closed = True
        for job in list(self.jobs.values()):
            job.cancel()
        for store in (self.photos, self.latents, self.images):
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
        just resize, ``align=False``) an uploaded photo. Returns its id, its working size [W, H], the
        decoded size, and image ids of the (downscaled) original and the aligned face."""
        from ..faces import align_face, as_aligned

        img, decoded = _decode(data, filename, MAX_WORKING_SIDE)
        name = Path(filename).stem or "photo"
        face = (align_face(img, self.G.img_resolution, source=Path(filename).name or name) if align
                else as_aligned(img, self.G.img_resolution))
        face = dataclasses.replace(face, source=name)
        pid = self.photos.put(Photo(name, img, face, align))
        return {"photo": pid, "name": name, "size": [int(img.shape[1]), int(img.shape[0])], "decoded_size": decoded,
                "original_image": self.images.put(img), "aligned_image": self.images.put(face.image)}

    # ------------------------------------------------------------------ projection
    def start_projection(self, photo_id: str, num_steps: int | None = None, space: str | None = None) -> Job:
        """Project a photo in the background; progress per step; cancel keeps the best latent.
        space: ``"w"`` or ``"w+"``; None: the preset's (``pti``: W, the others W+)."""
        from ..inversion import PRESETS

        photo: Photo = self.photos.need(photo_id)
        steps = self.studio.default_steps if num_steps is None else int(num_steps)
        if not 1 <= steps <= 5000:
            raise LatentlabError(f"steps must be between 1 and 5000, got {steps}")
        cfg = PRESETS[self.studio.preset].replace(num_steps=steps, space=space or PRESETS[self.studio.preset].space)
        return self._start("projection", steps, lambda job: self._project(job, photo_id, photo, cfg))

    def _project(self, job: Job, photo_id: str, photo: Photo, cfg: Any) -> dict[str, Any]:
        from ..imageio import image_to_tensor, tensor_to_images
        from ..inversion import project
        from ..inversion.project import _resize_to
        from ..inversion.runner import identity_metrics, image_metrics

        G = self.G
        job.message = "preparing (mean latent, VGG features)"
        lp = self.studio._lpips_model() if cfg.lpips_weight > 0 else None
        target = image_to_tensor(photo.face.image).to(G.device)
        every = max(1, cfg.num_steps // 25)

        def on_step(step: int, info: dict[str, Any]) -> None:
            job.step, job.lpips = step + 1, float(info["lpips"][0]) if cfg.lpips_weight > 0 else None
            job.message = f"step {step + 1}/{cfg.num_steps}"
            if step % every == 0 or step + 1 == cfg.num_steps:
                small = _resize_to(info["image"][:1], min(256, G.img_resolution)).clamp(-1, 1)
                job.preview = png_bytes(tensor_to_images(small)[0])
            if job.cancel_event.is_set():
                raise KeyboardInterrupt  # project() stops and returns the best latent so far

        result = project(G, target, cfg, lpips_model=lp, progress=False, callback=on_step)
        delta, delta_file, tuning_steps = None, None, None
        if cfg.tuning is not None and not result.interrupted:
            from ..inversion.pti import pivotal_tuning, tuning_identity_loss

            job.total, job.step = cfg.num_steps + cfg.tuning.num_steps, cfg.num_steps

            def on_tune(step: int, info: dict[str, Any]) -> None:
                job.step, job.lpips = cfg.num_steps + step + 1, float(info["lpips"])
                job.message = f"pivotal tuning {step + 1}/{cfg.tuning.num_steps}"
                if step % every == 0:
                    small = _resize_to(info["image"][:1], min(256, G.img_resolution)).clamp(-1, 1)
                    job.preview = png_bytes(tensor_to_images(small)[0])
                if job.cancel_event.is_set():
                    raise KeyboardInterrupt  # keeps the tuning so far

            tr = pivotal_tuning(G, target, result.ws, result.noise, cfg.tuning, lpips_model=self.studio._lpips_model(),
                                identity_loss=tuning_identity_loss(cfg.tuning, G.device), progress=False,
                                callback=on_tune)
            delta, delta_file, tuning_steps = tr.delta, _delta_bytes(tr.delta, self.network, cfg.tuning), tr.steps_run
            G = tr.G
        job.message = "rendering the result"
        from ..inversion import override_noise

        with torch.no_grad(), override_noise(G, {k: v.to(G.device) for k, v in result.noise.items()}):
            recon = G.synthesis(result.ws.to(G.device), noise_mode="const")
        recon_u8 = tensor_to_images(recon.clamp(-1, 1))[0]
        metrics: dict[str, Any] = {"steps": result.steps_run, "best_step": result.best_step[0],
                                   "seconds": round(result.seconds, 2), "interrupted": result.interrupted,
                                   "tuning_steps": tuning_steps}
        metrics.update(image_metrics(recon, target, lp if lp is not None else self.studio._lpips_model(),
                                     min(cfg.loss_resolution, G.img_resolution)))
        metrics.update(identity_metrics(photo.face.image, recon_u8))
        entry = LatentEntry(photo.name, result.ws[:1].detach().cpu().float().clone(),
                            {k: v[:1].detach().cpu().float().clone() for k, v in result.noise.items()}, photo_id,
                            {"config": dataclasses.asdict(result.config), "preset": self.studio.preset,
                             "network": self.network, "photo": photo.name, "aligned": photo.aligned},
                            delta, delta_file)
        lid = self.latents.put(entry)
        out = self._images_for(recon_u8, photo)
        job.message = "cancelled: kept the best latent so far" if result.interrupted else "done"
        return {"latent": lid, "metrics": metrics, "tuned": delta is not None, **out}

    def generator_for(self, entry: LatentEntry) -> Generator:
        """The generator that draws ``entry``: base plus its tuning delta when it has one (the last
        one built is kept, so a slider drag on one tuned photo builds it once)."""
        if entry.delta is None:
            return self.G
        if self._tuned is None or self._tuned[0] is not entry.delta:
            from ..inversion.pti import apply_delta

            self._tuned = (entry.delta, apply_delta(self.G, entry.delta))
        return self._tuned[1]

    def _images_for(self, image: np.ndarray, photo: Photo | None) -> dict[str, Any]:
        """Store a result image and, when its photo is known, the paste-back into that photo."""
        from ..faces import paste_back

        out: dict[str, Any] = {"image": self.images.put(image), "pasted_image": None}
        if photo is not None and photo.aligned:
            out["pasted_image"] = self.images.put(paste_back(photo.original, image, photo.face))
        return out

    # ------------------------------------------------------------------ edits
    def sample_latent(self, seed: int, truncation_psi: float = 0.7) -> str:
        """A generated face's latent (for a style source): ws [1, num_ws, w_dim] as
        :func:`latentlab.api.sample` makes it, G's own noise."""

        key = (int(seed), float(truncation_psi))
        if self._samples.get(key) in self.latents:
            return self._samples[key]
        if not 0 <= int(seed) < 2**32:
            raise LatentlabError(f"seed must be in [0, 2^32), got {seed}")
        from ..api import sample

        ws = sample(self.G, [int(seed)], float(truncation_psi), network=self.network)[0].resolved.ws
        self._samples[key] = self.latents.put(LatentEntry(f"seed{int(seed)}", ws.cpu().float(), {}, None,
                                                          {"seed": int(seed), "truncation_psi": truncation_psi}))
        return self._samples[key]

    def _resolved(self, entry: LatentEntry):
        """``entry`` as the library's :class:`~latentlab.editing.inputs.ResolvedLatent` (its photo's
        alignment when it has one; its tuned generator when it carries a tuning)."""
        from ..editing.inputs import ResolvedLatent

        photo = self.photos.get(entry.photo_id) if entry.photo_id else None
        aligned = photo is not None and photo.aligned
        return ResolvedLatent(entry.ws.to(self.G.device), {k: v.to(self.G.device) for k, v in entry.noise.items()},
                              photo.face.transform if aligned else None, photo.original if aligned else None, None,
                              entry.name, Path(entry.name), photo.face.image if photo is not None else None,
                              dict(entry.settings), self.generator_for(entry) if entry.delta is not None else None,
                              entry.delta)

    def edited_ws(self, latent_id: str, strengths: dict[str, float] | None = None,
                  layers: dict[str, str] | None = None, style: dict[str, Any] | None = None) -> torch.Tensor:
        """The latent's ws with style mixing (rows from another latent) and then each direction
        applied on its layer range (:func:`latentlab.editing.pipeline.apply_edits`, as the CLI and
        the API apply them). strengths: name -> strength; layers: name -> spec override;
        style: {"latent": id or None, "seed": int or None, "layers": spec}."""
        from ..editing.directions import Direction
        from ..editing.layers import parse_layers
        from ..editing.mixing import style_mix
        from ..editing.pipeline import apply_edits, check_strength, direction_edit

        entry: LatentEntry = self.latents.need(latent_id)
        ws = entry.ws.clone()
        if style and (style.get("latent") or style.get("seed") is not None):
            src_id = style.get("latent") or self.sample_latent(int(style["seed"]))
            src: LatentEntry = self.latents.need(src_id)
            ws = style_mix(ws, src.ws, parse_layers(str(style.get("layers") or "9-18"), self.G))
        by_name = {d.name: d for d in self.directions}
        edits = []
        for name, strength in (strengths or {}).items():
            if name not in by_name:
                raise LatentlabError(f"unknown direction {name!r}; available: {', '.join(by_name) or 'none'}")
            s = check_strength(strength, f"strength for {name}")
            if s == 0:
                continue
            d = by_name[name]
            edits.append(direction_edit(self.G, self.network, Direction(name, d.vector, d.layers), s,
                                        (layers or {}).get(name) or d.layers, label=name, warn=lambda _m: None))
        return apply_edits(ws, edits)

    def _start_result(self, kind: str, base: LatentEntry, ws: torch.Tensor, name: str, settings: dict[str, Any],
                      tuning: tuple[dict[str, torch.Tensor] | None, bytes | None] | None = None) -> Job:
        """Render ``ws`` [1, num_ws, w_dim] in the background with ``base``'s noise maps and generator
        (its tuned one when it carries a tuning: the photo the result is pasted into), and keep it as
        a new latent ``name`` (with base's photo and tuning) and its images. ``tuning``: (delta, its
        file bytes) to draw and keep instead of base's (None: base's)."""
        delta, delta_file = tuning if tuning is not None else (base.delta, base.delta_file)
        entry = LatentEntry(name, ws.cpu(), base.noise, base.photo_id, settings, delta, delta_file)

        def work(job: Job) -> dict[str, Any]:
            from ..editing.render import render

            job.message = "rendering" if kind == "render" else f"rendering the {kind}"
            job.check_cancelled()
            img = render(self.generator_for(entry), ws.to(self.G.device),
                         {k: v.to(self.G.device) for k, v in base.noise.items()})[0]
            job.check_cancelled()
            lid = self.latents.put(entry)
            photo = self.photos.get(base.photo_id) if base.photo_id else None
            job.step, job.message = 1, "done"
            return {"latent": lid, "tuned": delta is not None, **self._images_for(img, photo)}

        return self._start(kind, 1, work)

    def start_render(self, latent_id: str, strengths: dict[str, float] | None = None,
                     layers: dict[str, str] | None = None, style: dict[str, Any] | None = None) -> Job:
        """Render an edit in the background; the result is a new latent (downloadable) and images."""
        entry: LatentEntry = self.latents.need(latent_id)
        ws = self.edited_ws(latent_id, strengths, layers, style)  # validate before starting
        settings = {**entry.settings, "edit": {"from": entry.name, "strengths": strengths or {},
                                              "layers": layers or {}, "style": style or {}}}
        return self._start_result("render", entry, ws, entry.name + "_edit", settings)

    def start_swap(self, target_latent: str, face_latent: str, identity_layers: str | None = None,
                   tuning: "str | float | None" = None) -> Job:
        """Face swap by row mixing, with the functions the CLI and the API swap use
        (:func:`~latentlab.editing.swap.mix_swap`, :func:`~latentlab.editing.pipeline.swap_tuning`):
        ``face_latent``'s identity rows on ``target_latent`` (the photo whose background, hair and
        lighting stay), pasted back into the target's photo. ``tuning``: which
        pivotal tuning draws it when the latents carry them (``blend`` (default), A's share as a
        number in [0, 1], ``b``, ``a``, ``none``: :func:`latentlab.editing.pipeline.swap_tuning`)."""
        from ..editing.layers import parse_layers
        from ..editing.pipeline import check_swap_tuning, swap_tuning
        from ..editing.swap import DEFAULT_IDENTITY_LAYERS, mix_swap

        b: LatentEntry = self.latents.need(target_latent)
        a: LatentEntry = self.latents.need(face_latent)
        tuning = check_swap_tuning("blend" if tuning is None or tuning == "" else tuning)  # (0 means B's)
        rows = parse_layers(identity_layers or DEFAULT_IDENTITY_LAYERS, self.G)
        ws = mix_swap(a.ws, b.ws, rows)
        delta = swap_tuning(a.delta, b.delta, tuning)  # no generator built here: the job builds the one it draws with
        if delta is None:
            delta_file = None
        elif delta is a.delta or delta is b.delta:
            delta_file = a.delta_file if delta is a.delta else b.delta_file
        else:  # a blend: a new tuning, served as its own .pti.safetensors
            delta_file = _delta_bytes(delta, self.network, None)
        settings = {**b.settings, "swap": {"face": a.name, "target": b.name, "tuning": tuning,
                                           "identity_layers": identity_layers or DEFAULT_IDENTITY_LAYERS}}
        return self._start_result("swap", b, ws, f"{a.name}_on_{b.name}", settings, tuning=(delta, delta_file))

    # ------------------------------------------------------------------ downloads
    def image_png(self, image_id: str) -> bytes:
        return png_bytes(self.images.need(image_id))

    def latent_npz(self, latent_id: str) -> bytes:
        """The latent as ``latent.npz`` bytes (the ``latentlab project`` format: ws, noise, transform,
        settings, model), so every command accepts the download."""
        from ..latentfile import save_latent

        entry: LatentEntry = self.latents.need(latent_id)
        photo = self.photos.get(entry.photo_id) if entry.photo_id else None
        transform = photo.face.transform if photo is not None and photo.aligned else None
        settings = {k: v for k, v in entry.settings.items() if k != "tuning"}
        if entry.delta_file is not None:
            import hashlib

            settings["tuning"] = {"file": self.delta_file_name(latent_id),
                                  "sha256": hashlib.sha256(entry.delta_file).hexdigest()}
        fd, tmp = tempfile.mkstemp(suffix=".npz", prefix="latentlab-ui-")
        os.close(fd)
        try:
            save_latent(Path(tmp), entry.ws, entry.noise, model=self.network, transform=transform,
                        settings=settings, force=True)
            return Path(tmp).read_bytes()
        finally:
            os.unlink(tmp)

    def latent_name(self, latent_id: str) -> str:
        return self.latents.need(latent_id).name

    def delta_file_name(self, latent_id: str) -> str:
        """The file name a tuned latent's ``.npz`` download names for its delta (save both side by side)."""
        name = "".join(c for c in self.latent_name(latent_id) if c.isalnum() or c in "._-") or "latent"
        return f"{name[:100]}.pti.safetensors"

    def latent_delta(self, latent_id: str) -> bytes:
        """A tuned latent's pivotal-tuning delta (``.pti.safetensors`` bytes)."""
        entry: LatentEntry = self.latents.need(latent_id)
        if entry.delta_file is None:
            raise LatentlabError(f"latent {latent_id!r} carries no pivotal tuning")
        return entry.delta_file


def _delta_bytes(delta: dict[str, torch.Tensor], network: str, config: Any) -> bytes:
    """``delta`` serialised exactly as :func:`latentlab.inversion.pti.save_delta` writes it."""
    from ..inversion.pti import delta_bytes

    return delta_bytes(delta, model=network, config=config)


__all__ = ["BusyError", "DEFAULT_MEMORY_BUDGET", "DirectionInfo", "Job", "LatentEntry", "MAX_SESSIONS",
           "MAX_WORKING_SIDE", "MemoryBudget", "Photo", "Session", "Studio", "TooLargeError", "UnknownIdError",
           "decode_upload", "fit_working_size"]
