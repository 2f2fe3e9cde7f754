"""What the web UI does, without the web: photos, background jobs with progress and cancel,
projection, edits, style mixing, face swap, downloads.

:class:`Studio` holds one generator and the session's photos, latents and images (bounded, in
memory). Every slow operation runs as a :class:`Job` in a background thread, one at a time (the
generator is not shared between threads); its progress (step, total, LPIPS, a small preview) is
read by polling and it can be cancelled: a cancelled projection keeps the best latent found so far.
Errors are :class:`~latentlab.errors.LatentlabError` with one-line messages, which the web layer
shows to the user.
"""

from __future__ import annotations

import dataclasses
import io
import os
import tempfile
import threading
import time
import traceback
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from ..errors import LatentlabError
from ..models.base import Generator

#: Direction names that use the seed's head-pose layer range.
POSE_NAMES = {"yaw": "pose", "pitch": "pose", "roll": "pose", "pose": "pose"}
#: Bounded store sizes (oldest entries are dropped first).
MAX_PHOTOS, MAX_LATENTS, MAX_IMAGES = 16, 64, 128


class BusyError(LatentlabError):
    """Another job is running; the generator does one thing at a time."""


class Cancelled(Exception):
    """Raised inside a job's work function when the user cancels it."""


def _new_id() -> str:
    return uuid.uuid4().hex[:12]


_STORE_LOCK = threading.Lock()


class _Store(OrderedDict):
    """An insertion-ordered dict that forgets its oldest entries beyond ``limit``."""

    def __init__(self, limit: int, what: str):
        super().__init__()
        self.limit, self.what = limit, what

    def put(self, value: Any) -> str:
        key = _new_id()
        with _STORE_LOCK:
            self[key] = value
            while len(self) > self.limit:
                self.popitem(last=False)
        return key

    def need(self, key: str) -> Any:
        if key not in self:
            raise LatentlabError(f"unknown {self.what} {key!r} (it may have expired; upload or render again)")
        return self[key]


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


@dataclass
class DirectionInfo:
    """A named direction with its default layer-range spec."""

    name: str
    vector: np.ndarray
    layers: str
    path: str
    #: Slider range +-limit: a fitted direction's ``demo_strength`` (3 sigma of its samples), else 3.
    limit: float = 3.0


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


def decode_upload(data: bytes, filename: str = "upload") -> np.ndarray:
    """Uploaded file bytes -> uint8 RGB [H, W, 3] with :func:`latentlab.imageio.load_image`'s rules
    (one-line LatentlabError for a non-image, empty, corrupt or too-small file)."""
    from ..imageio import load_image

    if not data:
        raise LatentlabError(f"{filename}: empty upload, not an image")
    safe = "".join(c for c in Path(filename).name if c.isalnum() or c in "._-")[-80:] or "upload"
    with tempfile.TemporaryDirectory(prefix="latentlab-ui-") as tmp:
        path = Path(tmp) / safe
        path.write_bytes(data)
        try:
            return load_image(path)
        except LatentlabError as exc:
            # Name the file as the user knows it, not the temp path.
            raise LatentlabError(str(exc).replace(str(path), Path(filename).name or "upload")) from None


def png_bytes(image: np.ndarray) -> bytes:
    """uint8 [H, W, 3] -> PNG bytes, favouring speed (zlib level 1: a 1024 px face in ~0.1 s)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


class Studio:
    """One generator and a session's state; the web layer calls these methods.

    G: the generator (eval mode); network: its registry name or checkpoint path (recorded in
    latents, and used to find named directions); direction_dirs: extra folders holding
    ``<model>/<name>.npz`` direction files (see :mod:`latentlab.editing.attributes`);
    default_steps: projection steps the page proposes.
    """

    def __init__(self, G: Generator, network: str, *, direction_dirs: Sequence["str | Path"] = (),
                 default_steps: int = 100, preset: str = "seed"):
        from ..inversion import PRESETS

        if preset not in PRESETS:
            raise LatentlabError(f"unknown projection preset {preset!r}; choose from {', '.join(PRESETS)}")
        self.G, self.network = G, network
        self.default_steps, self.preset = int(default_steps), preset
        self.photos: _Store = _Store(MAX_PHOTOS, "photo")
        self.latents: _Store = _Store(MAX_LATENTS, "latent")
        self.images: _Store = _Store(MAX_IMAGES, "image")
        self.jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._current: Job | None = None
        self._lpips = None
        self._samples: dict[tuple[int, float], str] = {}
        self.directions = self._load_directions(direction_dirs)

    # ------------------------------------------------------------------ info
    def _load_directions(self, dirs: Sequence["str | Path"]) -> list[DirectionInfo]:
        from ..editing.attributes import available_attributes
        from ..editing.directions import load_direction
        from ..editing.layers import SEED_RANGES, parse_layers

        out = []
        for name, path in sorted(available_attributes(self.network, list(dirs)).items()):
            d = load_direction(path, name=name)
            if d.vector.shape[-1] != self.G.w_dim or (d.vector.ndim == 2 and d.vector.shape[0] != self.G.num_ws):
                raise LatentlabError(f"{path}: direction shape {list(d.vector.shape)} does not fit this model "
                                     f"([{self.G.w_dim}] or [{self.G.num_ws}, {self.G.w_dim}])")
            spec = d.layers
            if spec in ("", "all"):  # no range stored: the seed's range for the attribute, if it has one
                spec = SEED_RANGES.get(POSE_NAMES.get(name, name), "all")
            parse_layers(spec, self.G)  # fail early on a bad stored spec
            out.append(DirectionInfo(name, d.vector, spec, str(path), d.demo_strength()))
        return out

    def info(self) -> dict[str, Any]:
        """Model summary and the edit controls' defaults (JSON-able)."""
        from ..editing.layers import SEED_RANGES, describe_rows, parse_layers
        from ..editing.swap import DEFAULT_IDENTITY_LAYERS

        return {
            "network": self.network, "resolution": self.G.img_resolution, "num_ws": self.G.num_ws,
            "w_dim": self.G.w_dim, "default_steps": self.default_steps, "preset": self.preset,
            "directions": [{"name": d.name, "layers": d.layers, "limit": d.limit,
                            "rows": describe_rows(parse_layers(d.layers, self.G), self.G)} for d in self.directions],
            "style_layers": SEED_RANGES["style"], "identity_layers": DEFAULT_IDENTITY_LAYERS,
            "busy": self._current.to_dict() if self._current is not None and self._current.status == "running" else None,
        }

    def describe_layers(self, spec: str) -> str:
        from ..editing.layers import describe_rows, parse_layers

        return describe_rows(parse_layers(spec, self.G), self.G)

    # ------------------------------------------------------------------ jobs
    def _start(self, kind: str, total: int, work: Callable[[Job], dict[str, Any]]) -> Job:
        with self._lock:
            if self._current is not None and self._current.status == "running":
                raise BusyError(f"busy with a {self._current.kind} job; wait for it or cancel it")
            job = Job(kind, total)
            self.jobs[job.id] = job
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

    def job(self, job_id: str) -> Job:
        if job_id not in self.jobs:
            raise LatentlabError(f"unknown job {job_id!r}")
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
        """Decode and align (or just resize, ``align=False``) an uploaded photo. Returns its id and
        image ids of the original and the aligned face."""
        from ..faces import align_face, as_aligned

        img = decode_upload(data, filename)
        name = Path(filename).stem or "photo"
        face = (align_face(img, self.G.img_resolution, source=Path(filename).name or name) if align
                else as_aligned(img, self.G.img_resolution))
        face = dataclasses.replace(face, source=name)
        pid = self.photos.put(Photo(name, img, face, align))
        return {"photo": pid, "name": name, "size": [int(img.shape[1]), int(img.shape[0])],
                "original_image": self.images.put(img), "aligned_image": self.images.put(face.image)}

    # ------------------------------------------------------------------ projection
    def _lpips_model(self):
        if self._lpips is None:
            from ..losses import LPIPS

            self._lpips = LPIPS().to(self.G.device).eval()
        return self._lpips

    def start_projection(self, photo_id: str, num_steps: int | None = None, space: str = "w+") -> Job:
        """Project a photo in the background; progress per step; cancel keeps the best latent."""
        from ..inversion import PRESETS

        photo: Photo = self.photos.need(photo_id)
        steps = self.default_steps if num_steps is None else int(num_steps)
        if not 1 <= steps <= 5000:
            raise LatentlabError(f"steps must be between 1 and 5000, got {steps}")
        cfg = PRESETS[self.preset].replace(num_steps=steps, space=space)
        return self._start("projection", steps, lambda job: self._project(job, photo_id, photo, cfg))

    def _project(self, job: Job, photo_id: str, photo: Photo, cfg: Any) -> dict[str, Any]:
        from ..imageio import image_to_tensor, tensor_to_images
        from ..inversion import project, synthesize_projection
        from ..inversion.project import _resize_to
        from ..inversion.runner import identity_metrics, image_metrics

        G = self.G
        job.message = "preparing (mean latent, VGG features)"
        lp = self._lpips_model() if cfg.lpips_weight > 0 else None
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
        job.message = "rendering the result"
        recon = synthesize_projection(G, result)
        recon_u8 = tensor_to_images(recon.clamp(-1, 1))[0]
        metrics: dict[str, Any] = {"steps": result.steps_run, "best_step": result.best_step[0],
                                   "seconds": round(result.seconds, 2), "interrupted": result.interrupted}
        metrics.update(image_metrics(recon, target, lp if lp is not None else self._lpips_model(),
                                     min(cfg.loss_resolution, G.img_resolution)))
        metrics.update(identity_metrics(photo.face.image, recon_u8))
        entry = LatentEntry(photo.name, result.ws[:1].detach().cpu().float(),
                            {k: v[:1].detach().cpu().float() for k, v in result.noise.items()}, photo_id,
                            {"config": dataclasses.asdict(result.config), "preset": self.preset,
                             "network": self.network, "photo": photo.name, "aligned": photo.aligned})
        lid = self.latents.put(entry)
        out = self._images_for(recon_u8, photo)
        job.message = "cancelled: kept the best latent so far" if result.interrupted else "done"
        return {"latent": lid, "metrics": metrics, **out}

    def _images_for(self, image: np.ndarray, photo: Photo | None) -> dict[str, Any]:
        """Store a result image and, when its photo is known, the paste-back into that photo."""
        from ..faces import paste_back

        out: dict[str, Any] = {"image": self.images.put(image), "pasted_image": None}
        if photo is not None and photo.aligned:
            out["pasted_image"] = self.images.put(paste_back(photo.original, image, photo.face))
        return out

    # ------------------------------------------------------------------ edits
    def sample_latent(self, seed: int, truncation_psi: float = 0.7) -> str:
        """A generated face's latent (for a style source): ws [1, num_ws, w_dim], G's own noise."""
        from ..sampling import z_from_seeds

        key = (int(seed), float(truncation_psi))
        if self._samples.get(key) in self.latents:
            return self._samples[key]
        if not 0 <= int(seed) < 2**32:
            raise LatentlabError(f"seed must be in [0, 2^32), got {seed}")
        with torch.no_grad():
            ws = self.G.mapping(z_from_seeds([int(seed)], self.G.z_dim, self.G.device),
                                truncation_psi=float(truncation_psi))
        self._samples[key] = self.latents.put(LatentEntry(f"seed{int(seed)}", ws.cpu().float(), {}, None,
                                                          {"seed": int(seed), "truncation_psi": truncation_psi}))
        return self._samples[key]

    def edited_ws(self, latent_id: str, strengths: dict[str, float] | None = None,
                  layers: dict[str, str] | None = None, style: dict[str, Any] | None = None) -> torch.Tensor:
        """The latent's ws with style mixing (rows from another latent) and then each direction
        applied on its layer range. strengths: name -> strength; layers: name -> spec override;
        style: {"latent": id or None, "seed": int or None, "layers": spec}."""
        from ..editing.directions import apply_direction
        from ..editing.layers import parse_layers
        from ..editing.mixing import style_mix

        entry: LatentEntry = self.latents.need(latent_id)
        ws = entry.ws.clone()
        if style and (style.get("latent") or style.get("seed") is not None):
            src_id = style.get("latent") or self.sample_latent(int(style["seed"]))
            src: LatentEntry = self.latents.need(src_id)
            ws = style_mix(ws, src.ws, parse_layers(str(style.get("layers") or "9-18"), self.G))
        by_name = {d.name: d for d in self.directions}
        for name, strength in (strengths or {}).items():
            if name not in by_name:
                raise LatentlabError(f"unknown direction {name!r}; available: {', '.join(by_name) or 'none'}")
            s = float(strength)
            if not np.isfinite(s) or abs(s) > 100:
                raise LatentlabError(f"strength for {name} must be a finite number within ±100, got {strength}")
            if s == 0:
                continue
            spec = (layers or {}).get(name) or by_name[name].layers
            ws = apply_direction(ws, by_name[name].vector, s, parse_layers(spec, self.G))
        return ws

    def start_render(self, latent_id: str, strengths: dict[str, float] | None = None,
                     layers: dict[str, str] | None = None, style: dict[str, Any] | None = None) -> Job:
        """Render an edit in the background; the result is a new latent (downloadable) and images."""
        entry: LatentEntry = self.latents.need(latent_id)
        ws = self.edited_ws(latent_id, strengths, layers, style)  # validate before starting

        def work(job: Job) -> dict[str, Any]:
            from ..editing.render import render

            job.message = "rendering"
            job.check_cancelled()
            img = render(self.G, ws.to(self.G.device), {k: v.to(self.G.device) for k, v in entry.noise.items()})[0]
            job.check_cancelled()
            settings = {**entry.settings, "edit": {"from": entry.name, "strengths": strengths or {},
                                                  "layers": layers or {}, "style": style or {}}}
            lid = self.latents.put(LatentEntry(entry.name + "_edit", ws.cpu(), entry.noise, entry.photo_id, settings))
            photo = self.photos.get(entry.photo_id) if entry.photo_id else None
            job.step, job.message = 1, "done"
            return {"latent": lid, **self._images_for(img, photo)}

        return self._start("render", 1, work)

    def start_swap(self, target_latent: str, face_latent: str, identity_layers: str | None = None) -> Job:
        """Face swap by row mixing: ``face_latent``'s identity rows on ``target_latent`` (the photo
        whose background, hair and lighting stay), pasted back into the target's photo."""
        from ..editing.layers import parse_layers
        from ..editing.swap import DEFAULT_IDENTITY_LAYERS, mix_swap

        b: LatentEntry = self.latents.need(target_latent)
        a: LatentEntry = self.latents.need(face_latent)
        rows = parse_layers(identity_layers or DEFAULT_IDENTITY_LAYERS, self.G)
        ws = mix_swap(a.ws, b.ws, rows)

        def work(job: Job) -> dict[str, Any]:
            from ..editing.render import render

            job.message = "rendering the swap"
            job.check_cancelled()
            img = render(self.G, ws.to(self.G.device), {k: v.to(self.G.device) for k, v in b.noise.items()})[0]
            settings = {**b.settings, "swap": {"face": a.name, "target": b.name,
                                               "identity_layers": identity_layers or DEFAULT_IDENTITY_LAYERS}}
            lid = self.latents.put(LatentEntry(f"{a.name}_on_{b.name}", ws.cpu(), b.noise, b.photo_id, settings))
            photo = self.photos.get(b.photo_id) if b.photo_id else None
            job.step, job.message = 1, "done"
            return {"latent": lid, **self._images_for(img, photo)}

        return self._start("swap", 1, work)

    # ------------------------------------------------------------------ downloads
    def image_png(self, image_id: str) -> bytes:
        return png_bytes(self.images.need(image_id))

    def latent_npz(self, latent_id: str) -> bytes:
        """The latent as ``latent.npz`` bytes (the ``latentlab project`` format: ws, noise, transform,
        settings, model), so every command accepts the download."""
        from ..inversion.runner import save_latent

        entry: LatentEntry = self.latents.need(latent_id)
        photo = self.photos.get(entry.photo_id) if entry.photo_id else None
        transform = photo.face.transform if photo is not None and photo.aligned else None
        fd, tmp = tempfile.mkstemp(suffix=".npz", prefix="latentlab-ui-")
        os.close(fd)
        try:
            save_latent(Path(tmp), entry.ws, entry.noise, model=self.network, transform=transform,
                        settings=entry.settings, force=True)
            return Path(tmp).read_bytes()
        finally:
            os.unlink(tmp)

    def latent_name(self, latent_id: str) -> str:
        return self.latents.need(latent_id).name


__all__ = ["BusyError", "DirectionInfo", "Job", "LatentEntry", "Photo", "Studio", "decode_upload"]
