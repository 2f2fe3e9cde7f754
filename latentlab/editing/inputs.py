"""Inputs of the editing commands: a photo (projected, with a cache) or a latent ``.npz``.

:func:`resolve_latent` turns either into a :class:`ResolvedLatent`: ``ws`` [1, num_ws, w_dim],
the projection's noise maps, the alignment transform and the original photo (for paste-back).

Photos are aligned and projected with :func:`latentlab.inversion.project`; the result is cached as
``cache_dir()/projections/<key>.npz`` (the :func:`~latentlab.inversion.runner.save_latent`
format), ``key`` = SHA-256 of the photo's bytes, the model and the projector settings, so a
second command on the same photo (same settings) reuses it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch

from ..errors import LatentlabError
from ..models.base import Generator

LATENT_SUFFIXES = {".npz"}


@dataclass
class ResolvedLatent:
    """A latent ready to edit. Unpacks as ``ws, noise, transform, original``.

    ws: [1, num_ws, w_dim] on G's device; noise: name -> [1, 1, H, W] (may be empty);
    transform: FaceTransform or None; original: uint8 [H, W, 3] photo or None;
    photo: path of the original photo (None if unknown); name: short name for output files;
    aligned: uint8 [R, R, 3] aligned photo when known (the projection target);
    generator: the pivotally tuned generator when the latent carries a tuning (render with
    :meth:`generator_for`), with ``delta`` its parameter deltas (name -> float32 tensor).
    """

    ws: torch.Tensor
    noise: dict[str, torch.Tensor]
    transform: Any
    original: np.ndarray | None
    photo: Path | None
    name: str
    source: Path
    aligned: np.ndarray | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    generator: Generator | None = None
    delta: dict[str, torch.Tensor] | None = None

    def __iter__(self) -> Iterator[Any]:
        return iter((self.ws, self.noise, self.transform, self.original))

    def generator_for(self, G: Generator) -> Generator:
        """The generator that renders this latent: its tuned copy when it carries one, else ``G``."""
        return self.generator if self.generator is not None else G

    @property
    def can_paste(self) -> bool:
        return self.transform is not None and self.original is not None


def _same_model(a: str, b: str) -> bool:
    if a == b:
        return True
    pa, pb = Path(a).expanduser(), Path(b).expanduser()
    if pa.exists() and pb.exists():
        return pa.resolve() == pb.resolve()
    return False


def projection_key(photo_bytes: bytes, network: str, config: Any, *, align: bool = True,
                   face_index: int = 0) -> str:
    """SHA-256 hex of the photo bytes + model + projector settings (the cache file name)."""
    model = str(Path(network).expanduser().resolve()) if Path(network).expanduser().exists() else str(network)
    cfg = dataclasses.asdict(config) if dataclasses.is_dataclass(config) else dict(config)
    h = hashlib.sha256()
    h.update(photo_bytes)
    h.update(b"\0model\0" + model.encode())
    h.update(b"\0config\0" + json.dumps({"config": cfg, "align": align, "face_index": face_index},
                                       sort_keys=True).encode())
    return h.hexdigest()


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr)


def _original_from_settings(settings: dict[str, Any], transform: Any, log: Callable[[str], None],
                            source: Path, photo: "str | Path | None" = None) -> tuple[np.ndarray | None, Path | None]:
    """The original photo to paste results into: only ``photo`` (the user's ``--photo``), never a
    path stored in the latent's ``settings`` (a shared latent must not make a command read local
    files). Without ``photo``: (None, None) and one line saying aligned results only are written.
    A given ``photo`` that cannot be used (no transform, unreadable, another size than the one the
    latent was aligned from) is a one-line LatentlabError."""
    from ..imageio import load_image

    if photo is None:
        if transform is not None:
            named = " (it names one; pass --photo PATH to use it)" if settings.get("photo") else ""
            log(f"latentlab: {source}: no original photo given{named}; writing aligned results only")
        return None, None
    p = Path(photo)
    if transform is None:
        raise LatentlabError(f"{source}: has no alignment data, so results cannot be pasted into --photo {p}")
    img = load_image(p)
    if tuple(img.shape[:2]) != tuple(transform.original_size):
        h, w = transform.original_size
        raise LatentlabError(f"--photo {p}: is {img.shape[1]}x{img.shape[0]} px but {source} was aligned from a "
                             f"{w}x{h} photo (not its original)")
    return img, p


def _aligned_from(original: np.ndarray, transform: Any, resolution: int) -> np.ndarray:
    from ..faces.align import warp_affine

    tf = transform.at_resolution(resolution)
    out = warp_affine(original, tf.matrix, (resolution, resolution))
    return np.ascontiguousarray(out.reshape(resolution, resolution, -1)[:, :, :3])


def load_latent_for(path: Path, G: Generator, network: str, log: Callable[[str], None] = _stderr,
                    photo: "str | Path | None" = None) -> ResolvedLatent:
    """Read a latent ``.npz`` for generator G (``network`` names it); one-line errors for shapes
    that do not fit or latents written for another model."""
    from ..inversion.runner import load_latent

    lat = load_latent(path, G)
    if lat.ws.shape[0] != 1:
        raise LatentlabError(f"{path}: holds {lat.ws.shape[0]} latents; editing takes one per file")
    if lat.model and not _same_model(lat.model, network):
        raise LatentlabError(f"{path}: latent was made with model {lat.model!r}, not {network!r}; "
                             f"pass --network {lat.model}")
    buffers = G.noise_buffers()
    noise: dict[str, torch.Tensor] = {}
    for k, v in lat.noise.items():
        if k in buffers and tuple(v.shape[-2:]) == tuple(buffers[k].shape[-2:]):
            noise[k] = v.reshape(1, 1, *v.shape[-2:]).to(G.device, torch.float32)
    generator, delta = None, None
    if lat.tuning:
        from ..inversion.pti import apply_delta, load_delta

        delta = load_delta(path.parent / lat.tuning["file"], G, sha256=lat.tuning["sha256"])
        generator = apply_delta(G, delta)
    original, photo = _original_from_settings(lat.settings, lat.transform, log, path, photo)
    aligned = _aligned_from(original, lat.transform, G.img_resolution) if original is not None else None
    name = path.stem if path.stem not in ("latent", "samples") else (path.parent.name or path.stem)
    return ResolvedLatent(lat.ws.to(G.device, torch.float32), noise, lat.transform, original, photo, name,
                          path, aligned, lat.settings, generator, delta)


def resolve_latent(arg: "str | Path", G: Generator, *, network: str, config: Any = None, preset: str = "fast",
                   cache: bool = True, face_index: int = 0, progress: bool = True,
                   log: Callable[[str], None] = _stderr, photo: "str | Path | None" = None) -> ResolvedLatent:
    """A photo or latent ``.npz`` -> :class:`ResolvedLatent` for generator G (``photo``: the
    original photo of a latent input, for paste-back; stored photo paths are never followed).

    arg: a ``.npz`` written by ``latentlab project`` (or any editing command), or an image file,
    which is aligned and projected with ``config`` (a ProjectorConfig; default ``PRESETS[preset]``)
    unless a cached projection of the same bytes, model and settings exists.
    """
    from ..inversion import PRESETS, project
    from ..inversion.runner import prepare_photo, save_latent

    path = Path(arg)
    if not path.is_file():
        raise LatentlabError(f"{path}: no such file (give a photo or a latent .npz)")
    if path.suffix.lower() in LATENT_SUFFIXES:
        return load_latent_for(path, G, network, log, photo=photo)

    if config is None:
        if preset not in PRESETS:
            raise LatentlabError(f"unknown projection preset {preset!r}; choose from {', '.join(PRESETS)}")
        config = PRESETS[preset]
    prepared = prepare_photo(path, G.img_resolution, align=True, face_index=face_index)
    key = projection_key(path.read_bytes(), network, config, face_index=face_index)
    from ..assets import cache_dir

    cached = cache_dir() / "projections" / f"{key}.npz"
    settings = {"config": dataclasses.asdict(config), "preset": preset, "network": network,
                "photo": str(path.resolve()), "aligned": True, "face_index": face_index}
    if cache and cached.is_file():
        try:
            lat = load_latent_for(cached, G, network, log=lambda m: None)
        except LatentlabError:
            lat = None
        if lat is not None:
            log(f"latentlab: reusing the cached projection of {path} ({cached})")
            return dataclasses.replace(lat, original=prepared.original, photo=path, name=path.stem,
                                       source=path, aligned=prepared.aligned.image,
                                       transform=prepared.aligned.transform, settings=settings)
    log(f"latentlab: projecting {path} ({config.num_steps} steps max; cached for reuse)")
    from ..imageio import image_to_tensor

    target = image_to_tensor(prepared.aligned.image).to(G.device)
    result = project(G, target, config, progress=progress)
    ws = result.ws[:1].to(G.device, torch.float32)
    noise = {k: v[:1].to(G.device) for k, v in result.noise.items()}
    generator, delta = None, None
    if config.tuning is not None and not result.interrupted:
        from ..inversion.pti import delta_path_for, pivotal_tuning, save_delta, tuning_identity_loss

        log(f"latentlab: pivotal tuning for {path} ({config.tuning.num_steps} steps max)")
        tr = pivotal_tuning(G, target, ws, noise, config.tuning, progress=progress,
                            identity_loss=tuning_identity_loss(config.tuning, G.device))
        generator, delta = tr.G, tr.delta
        if cache:
            digest = save_delta(delta_path_for(cached), delta, model=network, config=config.tuning, force=True)
            settings = {**settings, "tuning": {"file": delta_path_for(cached).name, "sha256": digest}}
    if cache:
        save_latent(cached, ws, noise, model=network, transform=prepared.aligned.transform, settings=settings,
                    force=True)
    return ResolvedLatent(ws, noise, prepared.aligned.transform, prepared.original, path, path.stem, path,
                          prepared.aligned.image, settings, generator, delta)


__all__ = ["LATENT_SUFFIXES", "ResolvedLatent", "load_latent_for", "projection_key", "resolve_latent"]
