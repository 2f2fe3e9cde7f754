"""Faces as latents of a generator: :class:`Projection` and the functions that make and combine them."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np
import torch

from ..errors import LatentlabError
from ..faces.photo import Photo
from ..latent import Latent, Tuning
from ..models.base import Generator
from ..progress import CancelArg, Progress, ProgressArg, as_callback
from ..registry import network_name
from .images import Batch, Frames, Image

LATENT_SUFFIXES = (".npz",)


def check_generator(G: Any) -> None:
    """One-line LatentlabError unless ``G`` is a generator from :func:`latentlab.load_generator`."""
    if not isinstance(G, Generator):
        raise LatentlabError(f"expected a generator from latentlab.load_generator, got {type(G).__name__}")


# ------------------------------------------------------------------------------------------ Projection
class Projection:
    """A face as a :class:`~latentlab.latent.Latent` bound to the generator G that draws it.

    Made by :func:`project`, :func:`load_latent`, :func:`sample` and the editing functions; every
    operation returns a new Projection (the latent is a value). ``latent`` holds everything (W+
    codes, noise maps, alignment, photo, tuning, record); the properties below are views of it.
    Nothing is drawn until an image is needed (:attr:`image`, :meth:`paste`).
    """

    def __init__(self, G: Generator, latent: Latent) -> None:
        check_generator(G)
        if not isinstance(latent, Latent):
            raise LatentlabError(f"expected a latentlab Latent, got {type(latent).__name__}")
        G.check_ws(latent.ws)
        if latent.network is None:
            latent = latent.replace(network=network_name(G))
        self.G = G
        self.latent = latent
        self._image: Image | None = None

    # -------------------------------------------------------------- views of the latent
    @property
    def ws(self) -> torch.Tensor:
        """A copy of the latent, float32 [1, num_ws, w_dim] (CPU)."""
        return self.latent.ws.clone()

    @property
    def noise(self) -> dict[str, torch.Tensor]:
        """Noise maps used when drawing: name -> [1, 1, h, w] (empty: G's constant buffers)."""
        return dict(self.latent.noise)

    @property
    def network(self) -> str:
        """The generator's name (registry name or checkpoint path)."""
        return str(self.latent.network)

    @property
    def tuning(self) -> Tuning | None:
        """The pivotal tuning this face is drawn with, or None (the base generator)."""
        return self.latent.tuning

    @property
    def generator(self) -> Generator:
        """The generator that draws this face (:func:`latentlab.latent.generator_for`: G plus the
        latent's tuning when it carries one)."""
        from ..latent import generator_for

        return generator_for(self.G, self.latent)

    @property
    def transform(self) -> Any:
        """Alignment transform (aligned pixel -> photo pixel), or None for a latent without a photo."""
        return self.latent.transform

    @property
    def original(self) -> np.ndarray | None:
        """The original photo, uint8 [H, W, 3], or None when unknown."""
        return None if self.latent.photo is None else self.latent.photo.original

    @property
    def photo(self) -> Path | None:
        """Path of the original photo, or None."""
        return None if self.latent.photo is None else self.latent.photo.path

    @property
    def name(self) -> str:
        """Short name, used in file names (the photo's stem, ``seed12``, ``me_on_you``...)."""
        return self.latent.name

    @property
    def settings(self) -> dict[str, Any]:
        """JSON-able settings: projector config, photo, network, and ``history`` (each operation)."""
        return {**self.latent.settings, "network": self.network}

    @property
    def metrics(self) -> dict[str, Any]:
        """How close the inversion came to the photo (PSNR, LPIPS-Alex, dlib distance ...), or empty."""
        return dict(self.latent.metrics)

    @property
    def history(self) -> list[dict[str, Any]]:
        """The operations that made this latent from its projection, oldest first."""
        return self.latent.history

    @property
    def can_paste(self) -> bool:
        """True when the original photo and the alignment are known (:meth:`paste` works)."""
        return self.latent.can_paste

    # -------------------------------------------------------------- images
    @property
    def image(self) -> Image:
        """The aligned result, uint8 [R, R, 3] at the generator's resolution R (lazy, drawn once)."""
        if self._image is None:
            from ..latent import render

            lat, G = self.latent, self.G
            self._image = Image(lambda: render(G, lat), {**self.settings, "view": "aligned"})
        return self._image

    @property
    def array(self) -> np.ndarray:
        """Shortcut for ``self.image.array``: uint8 [R, R, 3]."""
        return self.image.array

    @property
    def target(self) -> Image | None:
        """The aligned photo the projection was fitted to, uint8 [R, R, 3], or None when unknown."""
        aligned = self.latent.aligned
        return None if aligned is None else Image(aligned, {**self.settings, "view": "target"})

    def paste(self, *, color_transfer: bool = True) -> Image:
        """The whole original photo with this result pasted over the face: uint8 [H, W, 3], H x W the
        photo's size (lazy). Pixels outside the face's crop square are the photo's own.

        color_transfer: match the face's colours to the photo's inside the face (see
        :func:`latentlab.faces.paste_back`). Raises LatentlabError when the photo is unknown.
        """
        if not self.can_paste:
            raise LatentlabError(f"{self.name}: no original photo to paste into (a sample, or a latent loaded "
                                 "without photo=...); use .image for the aligned result")
        base = self

        def make() -> np.ndarray:
            from ..faces import paste_back

            return paste_back(base.original, base.image.array, base.transform, color_transfer=color_transfer)

        return Image(make, {**self.settings, "view": "pasted", "color_transfer": color_transfer})

    def _repr_png_(self) -> bytes:
        return self.image.png()

    def __repr__(self) -> str:
        ops = ", ".join(h.get("op", "?") for h in self.history) or "none"
        photo = self.photo.name if self.photo is not None else "none"
        return (f"<latentlab Projection {self.name!r}: ws {list(self.latent.ws.shape)}, network "
                f"{self.network!r}, photo {photo}, tuned {self.tuning is not None}, operations: {ops}>")

    # -------------------------------------------------------------- new latents
    def with_latent(self, latent: Latent) -> "Projection":
        """The same generator with another latent."""
        return Projection(self.G, latent)

    def with_ws(self, ws: torch.Tensor, *, name: str | None = None, op: dict[str, Any] | None = None,
                noise: dict[str, torch.Tensor] | None = None) -> "Projection":
        """A new Projection on the same photo with another latent ws [1, num_ws, w_dim] (e.g. your
        own W+ arithmetic). ``op`` (JSON-able) is appended to :attr:`history`; ``noise`` replaces
        the noise maps (default: keep this one's)."""
        if not isinstance(ws, torch.Tensor) or ws.ndim != 3 or ws.shape[0] != 1 \
                or tuple(ws.shape[1:]) != (self.G.num_ws, self.G.w_dim):
            shape = list(ws.shape) if isinstance(ws, torch.Tensor) else type(ws).__name__
            raise LatentlabError(f"ws must be [1, {self.G.num_ws}, {self.G.w_dim}] for this generator, got {shape}")
        return self.with_latent(self.latent.with_op(ws, op or {"op": "ws"}, name=name, noise=noise))

    def edit(self, request: "str | Mapping[Any, Any] | Iterable[tuple[Any, Any]] | None" = None, *,
             directions: "Mapping[Any, Any] | Iterable[tuple[Any, Any]] | None" = None,
             sefa: Mapping[int, Any] | None = None, ganspace: Mapping[int, Any] | None = None,
             layers: Mapping[str, str] | None = None, unit: str = "w", rows_exact: bool = False,
             directions_dirs: Sequence["str | Path"] = (), name: str | None = None,
             warn: "Callable[[str], None] | None" = None, **attributes: Any) -> "Projection":
        """Move along latent directions: ``ws + sum_i strength_i * d_i``, each on its rows.

        request: an edit request as :func:`latentlab.editing.edits.parse_edits` reads it, the
        same text the command line's ``--edit`` takes (``"smile=1.5s, age=-1@0-9"``) or a mapping.
        attributes: named attributes of this model and their strengths (``smile=1.5, age=-1``;
        ``"1s"`` for one sigma). directions: direction files (``.npz``/``.npy``) or
        :class:`~latentlab.editing.directions.Direction` objects with strengths. sefa / ganspace:
        component index -> strength (component k: the k-th strongest; W units only).
        unit: ``"w"`` (default; W distance along the unit direction) or ``"sigma"`` (multiples of
        the direction's sigma, the untruncated generator's spread along it: smile 0.83 W units,
        age 1.13 on ffhq-mobile) for bare numbers. Useful range about -2..2 sigma; at most 100 W
        units in magnitude. layers: label -> layer-range spec overriding an edit's default rows
        (labels: the attribute name, the file's stem, ``sefa0``, ``ganspace3``); defaults: smile
        rows 0-5, age 0-9, head pose 0-6 of the 18-row layout, mapped to this model by resolution.
        rows_exact: read bare numbers in ranges as this model's own rows. directions_dirs: extra
        folders with ``<model>/<attribute>.npz``. warn: told (one line) when a direction was fitted
        on another model. Returns a new Projection (same photo and noise).
        """
        from ..editing.edits import edit, resolve_edits

        specs = self._request(request, directions, sefa, ganspace, attributes, unit=unit, layers=layers)
        edits = resolve_edits(self.G, self.network, specs, directions_dirs=directions_dirs, rows_exact=rows_exact,
                              warn=warn or (lambda _m: None))
        return self.with_latent(edit(self.latent, edits, name=name))

    @staticmethod
    def _request(request: Any, directions: Any, sefa: Any, ganspace: Any, attributes: Mapping[str, Any], *,
                 unit: str, layers: Mapping[str, str] | None) -> list:
        """Every form of an edit request -> one :func:`~latentlab.editing.edits.parse_edits` call."""
        from ..editing.edits import parse_edit_text, parse_edits

        pairs: list[tuple[Any, Any]] = []
        if isinstance(request, str):
            pairs += parse_edit_text(request)
        elif isinstance(request, Mapping):
            pairs += list(request.items())
        elif request is not None:
            pairs += list(request)
        pairs += list(directions.items()) if isinstance(directions, Mapping) else list(directions or [])
        for method, comps in (("sefa", sefa), ("ganspace", ganspace)):
            for k, strength in (comps or {}).items():
                if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or int(k) < 0:
                    raise LatentlabError(f"{method} component must be an index 0, 1, ..., got {k!r}")
                pairs.append((f"{method}:{int(k)}", strength))
        pairs += list(attributes.items())
        if not pairs:
            raise LatentlabError("nothing to edit: give attribute strengths (smile=1.5), directions, sefa or ganspace")
        return parse_edits(pairs, unit=unit, layers=layers)

    def sweep(self, target: Any, values: Sequence[float], *, layers: str | None = None, rows_exact: bool = False,
              directions_dirs: Sequence["str | Path"] = (), unit: str = "w",
              warn: "Callable[[str], None] | None" = None) -> Frames:
        """Frames along one direction at each strength in ``values`` (e.g. ``np.linspace(-2, 2, 5)``).

        target: an attribute name, a direction file, ``sefa:K`` or ``ganspace:K`` (or a Direction);
        layers: its layer range (default as in :meth:`edit`); unit: ``"w"`` or ``"sigma"`` as in
        :meth:`edit`. Returns :class:`Frames` (lazy; its ``values`` are W units)."""
        from ..editing.edits import check_strength, check_unit, edit, parse_edits, resolve_edits

        check_unit(unit)
        vals = [check_strength(v, f"sweep strength of {target}") for v in values]
        if not vals:
            raise LatentlabError("sweep needs at least one strength")
        (one,) = resolve_edits(self.G, self.network, parse_edits([(target, 1.0)], layers=None),
                               directions_dirs=directions_dirs, rows_exact=rows_exact,
                               warn=warn or (lambda _m: None))
        if layers:
            from ..editing.layers import parse_layers

            one = dataclasses.replace(one, rows=parse_layers(layers, self.G, rows_exact=rows_exact), layers=layers)
        if unit == "sigma":
            sigma = one.meta.get("sigma")
            if not sigma:
                raise LatentlabError(f"{one.label}: no recorded sigma; give the sweep's strengths in W units")
            vals = [check_strength(v * float(sigma), f"sweep strength of {one.label} in W units") for v in vals]
        frames = [self.with_latent(edit(self.latent, [dataclasses.replace(one, strength=v)],
                                        name=f"{self.name}_{one.label}")) for v in vals]
        return Frames(frames, {"op": "sweep", "target": one.label, "values": vals, "layers": one.layers,
                               "rows": list(one.rows), "sigma": one.meta.get("sigma")})

    def drag(self, points: Any, *, mask: Any = None, coords: str = "auto", steps: int | None = None,
             progress: ProgressArg = None, cancel: CancelArg = None, **config: Any) -> "Projection":
        """Drag editing (DragGAN's task, :mod:`latentlab.editing.drag`): move the content under
        each handle point to its target by optimising the coarse W+ rows, drawn by this face's own
        (tuned) generator. Returns a new Projection; its last :attr:`history` entry records the
        points, where the handles ended (``handles_final``, aligned pixels), the steps and why it
        stopped.

        points: ``[((hx, hy), (tx, ty)), ...]`` or the text ``"x,y>x,y;x,y>x,y"``. coords:
        ``"photo"`` (pixels of the original photo, mapped through the alignment), ``"aligned"``
        (pixels of the aligned image at G's resolution), ``"auto"`` (photo when the latent has an
        alignment, else aligned). mask: where the image may change, bool or 0/255 pixels of the
        same frame as the points (None: anywhere). steps: most optimisation steps (default 200).
        config: :class:`~latentlab.editing.drag.DragConfig` fields (``follow``: ``"line"``, the
        default, or DragGAN's ``"track"``; ``line_step``, ``line_budget``, ``line_accept``, ``r1``,
        ``r2``, ``lr``, ``feature_resolution``, ``rows``, ``mask_weight``, ``stop_distance``,
        ``patience``, ``preview_every``). progress / cancel: :mod:`latentlab.progress` (``"drag"``
        events with the handles and, every few steps, a preview image).
        """
        from ..editing.drag import DragConfig, drag, mask_to_aligned, parse_points, photo_to_aligned

        if coords not in ("auto", "photo", "aligned"):
            raise LatentlabError(f"coords must be photo, aligned or auto, got {coords!r}")
        if coords == "auto":
            coords = "photo" if self.transform is not None else "aligned"
        pts = parse_points(points) if isinstance(points, str) else points
        R = self.G.img_resolution
        if coords == "photo":
            pts = photo_to_aligned(self.latent, pts, R)
            if mask is not None:
                mask = mask_to_aligned(self.latent, mask, R)
        if steps is not None:
            config["max_steps"] = steps
        try:
            cfg = DragConfig(**config)
        except TypeError as exc:
            raise LatentlabError(f"bad drag setting: {exc}") from None
        out, _ = drag(self.G, self.latent, pts, mask=mask, config=cfg, progress=progress, cancel=cancel)
        return self.with_latent(out)

    # -------------------------------------------------------------- files
    def save(self, path: "str | Path", force: bool = False) -> Path:
        """Write the latent as ``.npz`` (ws, noise maps, alignment, settings with the photo's path),
        the format of ``latentlab project``; :func:`load_latent` and every command read it. A
        pivotal tuning is written beside it (``NAME.pti.safetensors``). Refuses to overwrite unless
        ``force``. Returns the path."""
        from ..latent import save_latent

        return save_latent(self.latent, path, force=force)

    def file_bytes(self, name: str | None = None) -> dict[str, bytes]:
        """The latent's files as bytes, for a download: ``{"NAME.npz": ...}`` plus, when tuned,
        ``{"NAME.pti.safetensors": ...}`` (which the ``.npz`` names and pins by SHA-256); the same
        bytes :meth:`save` writes."""
        from ..imageio import plain_file_name
        from ..latent import DELTA_SUFFIX, latent_npz_bytes

        name = plain_file_name(name or self.name, "latent name")
        out: dict[str, bytes] = {}
        delta_name, digest = None, None
        if self.tuning is not None:
            data = self.tuning.file_bytes(self.network)
            delta_name, digest = name + DELTA_SUFFIX, hashlib.sha256(data).hexdigest()
            out[delta_name] = data
        out = {f"{name}.npz": latent_npz_bytes(self.latent, delta_file=delta_name, sha256=digest), **out}
        return out

    def output_paths(self, outdir: "str | Path", name: str | None = None, *, compare: bool = False) -> list[Path]:
        """The files :meth:`write` writes: ``NAME.png``, ``NAME.npz``, the delta beside it when
        tuned, ``NAME_pasted.png`` when it can be pasted, ``NAME_compare.png`` with ``compare``."""
        from ..latent import delta_path_for

        outdir, name = Path(outdir), name or self.name
        paths = [outdir / f"{name}.png", outdir / f"{name}.npz"]
        if self.tuning is not None:
            paths.append(delta_path_for(paths[1]))
        if self.can_paste:
            paths.append(outdir / f"{name}_pasted.png")
        if compare:
            paths.append(outdir / f"{name}_compare.png")
        return paths

    def write(self, outdir: "str | Path", name: str | None = None, *, force: bool = False,
              compare: Sequence[np.ndarray] | None = None) -> dict[str, Any]:
        """Write this result as every editing command does: ``NAME.png`` (:attr:`image`),
        ``NAME.npz`` (:meth:`save`, with its tuning beside it), ``NAME_pasted.png`` (:meth:`paste`,
        when it can be pasted) and, with ``compare`` (uint8 images), ``NAME_compare.png``: those
        images and the result side by side. Every path is checked before anything is written;
        nothing is overwritten without ``force``. Returns {"image", "pasted" (or None), "paths"}."""
        from ..figures import strip
        from ..imageio import plain_file_name, refuse_existing, save_image

        outdir, name = Path(outdir), plain_file_name(name or self.name)
        paths = self.output_paths(outdir, name, compare=compare is not None)
        refuse_existing(paths, force)
        img = self.image.array
        save_image(img, outdir / f"{name}.png", force=force)
        self.save(outdir / f"{name}.npz", force=force)
        pasted = None
        if self.can_paste:
            pasted = self.paste().array
            save_image(pasted, outdir / f"{name}_pasted.png", force=force)
        if compare is not None:
            save_image(strip([*compare, img]), outdir / f"{name}_compare.png", force=force)
        return {"image": img, "pasted": pasted, "paths": paths}


# ------------------------------------------------------------------------------------------ making faces
def load_photo(photo: "str | Path | np.ndarray | Photo", G: Generator, *, align: bool = True,
               face_index: int = 0, name: str | None = None) -> Photo:
    """A photo file or uint8 pixels [H, W, 3] with its ``face_index``-th largest face FFHQ-aligned
    to G's resolution (``align=False``: already aligned, only resized): a
    :class:`~latentlab.faces.Photo`, ready for :func:`project`. One-line errors for unreadable
    files and photos without a face."""
    from ..faces.photo import load_photo as load

    check_generator(G)
    return load(photo, G.img_resolution, align=align, face_index=face_index, name=name)


def _cache_key(photo_bytes: bytes, network: str, config: Any, face_index: int) -> str:
    """SHA-256 hex of the photo bytes + model + projector settings (a cached projection's name)."""
    model = str(Path(network).expanduser().resolve()) if Path(network).expanduser().exists() else str(network)
    h = hashlib.sha256()
    h.update(photo_bytes)
    h.update(b"\0model\0" + model.encode())
    h.update(b"\0config\0" + json.dumps({"config": dataclasses.asdict(config), "align": True,
                                         "face_index": face_index}, sort_keys=True).encode())
    return h.hexdigest()


def project(photo: "str | Path | np.ndarray | Photo", G: Generator, preset: str = "pti", *,
            network: str | None = None, cache: bool = True, face_index: int = 0, align: bool = True,
            original: "str | Path | None" = None, progress: ProgressArg = True, cancel: CancelArg = None,
            **config: Any) -> Projection:
    """Align a face photo and invert it into G's W+ (:func:`latentlab.inversion.invert`), or read
    a latent ``.npz``: a :class:`Projection`.

    photo: an image file, uint8 pixels [H, W, 3] or a :class:`~latentlab.faces.Photo` (the
    ``face_index``-th largest face is aligned to G's resolution), or a ``.npz`` from
    :meth:`Projection.save` / ``latentlab project``. preset: ``"pti"`` (default: a short W
    projection, then pivotal tuning of the generator for this person; the Projection draws with
    its tuned generator), ``"fast"`` (200 steps at most, early stop, no tuning: a lookalike),
    ``"paper"`` (the paper recipe, 1000 steps), ``"nvidia"`` (NVIDIA's projector: W, LPIPS only). config: any :class:`~latentlab.inversion.ProjectorConfig` field
    overriding the preset (``num_steps=50``, ``space="w"``, ``tuning_num_steps=...``). network: the
    model's name for latents, caches and direction look-up (default: the registry's name for G).
    cache: reuse (and keep) the projection of the same photo file bytes, model and settings.
    original: for a ``.npz`` input, its original photo (to paste into; see :func:`load_latent`).
    progress / cancel: :mod:`latentlab.progress` (default: a bar or log lines on stderr); a
    cancelled inversion returns what it has (the best latent so far; when stopped while tuning, the
    tuning so far) and is not cached.
    """
    from ..assets import cache_dir
    from ..inversion import invert, preset_config
    from ..latent import load_latent as read

    check_generator(G)
    net = network or network_name(G)
    config = {k: v for k, v in config.items() if v is not None}
    if isinstance(photo, (str, Path)) and Path(photo).suffix.lower() in LATENT_SUFFIXES:
        if config:
            raise LatentlabError(f"{photo} is a latent; projector settings ({', '.join(config)}) are for photos")
        return load_latent(photo, G, photo=original, network=net)
    if original is not None:
        raise LatentlabError(f"original= is for a latent .npz input; {photo} is a photo, its own original")
    cfg = preset_config(preset, **config)
    report = as_callback(progress)
    path = Path(photo) if isinstance(photo, (str, Path)) else None
    if path is not None and not path.is_file():
        raise LatentlabError(f"{path}: no such file (give a photo or a latent .npz)")
    prepared = load_photo(photo, G, align=align, face_index=face_index)
    cached = None
    if cache and path is not None:
        cached = cache_dir() / "projections" / f"{_cache_key(path.read_bytes(), net, cfg, face_index)}.npz"
        if cached.is_file():
            try:
                lat = read(cached, G, network=net)
            except LatentlabError:
                lat = None
            if lat is not None:
                if report is not None:
                    report(Progress("project", message=f"reusing the cached projection of {path} ({cached})"))
                settings = {**lat.settings, "photo": str(path.resolve())}
                return Projection(G, lat.replace(photo=prepared, transform=prepared.transform, name=prepared.name,
                                                 settings=settings))
    latent = invert(prepared, G, cfg, network=net, align=align, face_index=face_index, progress=report,
                    cancel=cancel)
    if cached is not None and not latent.interrupted:
        from ..latent import save_latent

        save_latent(latent, cached, force=True)
    return Projection(G, latent)


def follow(start: Projection, photo: "str | Path | np.ndarray | Photo", *, layers: str | None = None,
           steps: int | None = None, rows_exact: bool = False, face_index: int = 0, align: bool = True,
           progress: ProgressArg = True, cancel: CancelArg = None, **config: Any) -> Projection:
    """Project ``photo`` as a change of ``start``: W+ from start's latent, drawn by start's generator
    (its pivotal tuning included) with start's noise maps (:data:`latentlab.inversion.FOLLOW`;
    ``steps`` and ``config`` override it). layers: the rows that may move (a layer-range spec such
    as ``"0-5"``; default: every row).

    For the same person in another photo (the neutral and the smiling one): the difference of the
    two latents is then the change between the photos, not two separate projections' noise, so
    ``transfer(a, b_neutral, follow(b_neutral, "b_smiling.jpg"))`` carries b's expression (on 10
    people photographed neutral and smiling, a's mouth gained on average more of b's smile this way
    than from two separate projections or with only the transfer's rows moving: benchmarks/README.md).
    The result lives in ``photo`` (its own alignment) and carries start's tuning.
    """
    from ..editing.layers import parse_layers
    from ..inversion import FOLLOW, invert, resolve_config

    if not isinstance(start, Projection):
        raise LatentlabError(f"start must be a Projection, got {type(start).__name__}")
    if isinstance(photo, (str, Path)) and Path(photo).suffix.lower() in LATENT_SUFFIXES:
        raise LatentlabError(f"{photo} is a latent; follow() projects a photo")
    cfg, _ = resolve_config(FOLLOW, num_steps=steps, **config)
    rows = parse_layers(layers, start.G, rows_exact=rows_exact) if layers is not None else None
    prepared = load_photo(photo, start.G, align=align, face_index=face_index)
    latent = invert(prepared, start.G, cfg, network=start.network, align=align, face_index=face_index,
                    progress=as_callback(progress), cancel=cancel, start=start.latent, rows=rows)
    return Projection(start.G, latent)


def load_latent(path: "str | Path", G: Generator, *, photo: "str | Path | None" = None,
                network: str | None = None) -> Projection:
    """Read a latent ``.npz`` (from :meth:`Projection.save`, ``latentlab project`` or an editing
    command) as a :class:`Projection` of G, with its pivotal tuning when it carries one.

    photo: the original photo it was aligned from, for :meth:`Projection.paste` (a photo path stored
    inside a latent file is never opened: files are shared, and must not make code read local
    files); it must have the size the latent was aligned from. Without it, ``.image`` works and
    ``.paste()`` raises. One-line errors for a file of another model or shape, or with several latents.
    """
    from ..latent import load_latent as read

    check_generator(G)
    p = Path(path)
    if not p.exists() and not p.is_symlink():  # anything else (a folder, a device) is refused by the reader
        raise LatentlabError(f"{p}: no such latent file")
    return Projection(G, read(p, G, network=network or network_name(G), photo=photo))


def sample(G: Generator, seeds: "str | int | Sequence[int]" = "0-7", trunc: float = 1.0, *,
           trunc_cutoff: int | None = None, noise_mode: str = "const", class_idx: int | None = None,
           network: str | None = None) -> Batch:
    """Random faces by seed, as ``latentlab sample`` makes them: z = RandomState(seed).randn(z_dim),
    ws = G.mapping(z, truncation_psi=trunc) [1, num_ws, w_dim] each.

    seeds: ``"0-7"``, ``"1,3,5-9"``, an int or a list of ints (0 <= seed < 2**32); trunc: truncation
    psi (1 = none, 0 = the average face; |trunc| <= 100); trunc_cutoff: truncate only the first N
    rows; noise_mode: ``const``, ``random`` or ``none``; class_idx: for conditional models. Each seed
    is mapped on its own, so a seed's latent does not depend on the other seeds asked for (the web UI
    and every command give the same ws); :meth:`Batch.render` draws several per forward pass.
    Returns a :class:`Batch` of Projections (no photo: use ``.image``), editable like any other.
    """
    from ..editing.edits import check_strength
    from ..sampling import MAX_SEED, class_labels, parse_seeds, z_from_seeds

    check_generator(G)
    net = network or network_name(G)
    if isinstance(seeds, (str, int)) and not isinstance(seeds, bool):
        seed_list = parse_seeds(seeds)
    else:
        seed_list = [int(s) for s in seeds]
        if not seed_list or any(isinstance(s, bool) or not 0 <= int(s) <= MAX_SEED for s in seeds):
            raise LatentlabError("seeds must be a non-empty list of integers in [0, 2**32)")
    psi = check_strength(trunc, "truncation psi")
    if noise_mode not in ("const", "random", "none"):
        raise LatentlabError(f"noise_mode must be const, random or none, got {noise_mode!r}")
    if trunc_cutoff is not None and not 0 <= int(trunc_cutoff) <= G.num_ws:
        raise LatentlabError(f"trunc_cutoff {trunc_cutoff} is outside this model's 0..{G.num_ws} W+ rows")
    class_labels(class_idx, G.c_dim, 1)  # validate before any work
    out = Batch()
    with torch.no_grad():
        for seed in seed_list:
            z = z_from_seeds([seed], G.z_dim, G.device)
            c = class_labels(class_idx, G.c_dim, 1, G.device)
            ws = G.mapping(z, c, truncation_psi=psi, truncation_cutoff=trunc_cutoff).float()
            info = {"seed": seed, "truncation_psi": psi, "truncation_cutoff": trunc_cutoff,
                    "noise_mode": noise_mode, "class_idx": class_idx}
            out.append(Projection(G, Latent(ws, network=net, name=f"seed{seed:04d}",
                                            settings={"sample": info, "network": net})))
    return out


# ------------------------------------------------------------------------------------------ combining faces
def _check_pair(*items: tuple[str, Any]) -> Projection:
    for what, x in items:
        if not isinstance(x, Projection):
            raise LatentlabError(f"{what} must be a Projection (from ll.project or ll.load_latent), "
                                 f"got {type(x).__name__}")
    first = items[0][1]
    for what, x in items[1:]:
        if x.G is not first.G and x.network != first.network:
            raise LatentlabError(f"{what} comes from model {x.network!r}, {items[0][0]} from {first.network!r}")
    return first


def style(content: Projection, style: Projection, layers: str = "9-18", *, rows_exact: bool = False) -> Projection:
    """Style mixing: content's latent with the rows ``layers`` taken from style's.

    layers: a layer-range spec (default 9-18: rows 9..17 of the 18-row layout, 128-1024 px: colour,
    lighting, texture; mapped to G by resolution); see :mod:`latentlab.editing.layers`.
    Returns a new Projection in content's photo."""
    from ..editing.layers import parse_layers
    from ..editing.mixing import style as mix

    _check_pair(("content", content), ("style", style))
    rows = parse_layers(layers, content.G, rows_exact=rows_exact)
    return content.with_latent(mix(content.latent, style.latent, rows, layers=layers))


def transfer(target: Projection, neutral: Projection, smiling: Projection, strength: float = 1.0,
             layers: str = "0-5", *, rows_exact: bool = False) -> Projection:
    """Expression transfer (Image2StyleGAN): ``target + strength * (smiling - neutral)`` on ``layers``.

    neutral / smiling: the same person before and after an expression change (any person);
    strength: multiplier, |strength| <= 100 (1 = the full change); layers: default 0-5 (the smile
    rows, 4-16 px). Returns a new Projection in target's photo."""
    from ..editing.edits import check_strength
    from ..editing.layers import parse_layers
    from ..editing.mixing import transfer as move

    _check_pair(("target", target), ("neutral", neutral), ("smiling", smiling))
    strength = check_strength(strength, "transfer strength")
    rows = parse_layers(layers, target.G, rows_exact=rows_exact)
    return target.with_latent(move(target.latent, neutral.latent, smiling.latent, strength, rows, layers=layers))


def swap(face: Projection, onto: Projection, *, method: str = "mix", identity_layers: str = "0-7",
         keep_layers: str | None = None, steps: int = 100, lr: float | None = None, init: str = "b",
         tuning: "str | float" = "blend", rows_exact: bool = False, progress: ProgressArg = True,
         cancel: CancelArg = None) -> Projection:
    """Put ``face``'s face on ``onto`` (A on B); the result lives in onto's photo.

    method ``"mix"`` (instant): onto's latent with the rows ``identity_layers`` (default 0-7: 4-32 px,
    face shape and features) from face, except ``keep_layers`` (e.g. ``"0-3"`` keeps onto's head
    pose). ``"masked"``: ``steps`` optimisation steps (Image2StyleGAN++-style) so the face region
    matches face's photo and the rest matches onto's, from onto's latent (``init="b"``) or from the
    mix (``init="mix"``); ``lr`` its peak learning rate (default: the model's).
    ``tuning``: the generator that draws the result when the inputs carry pivotal tunings:
    ``"blend"`` (default; the average of face's and onto's tuning deltas, an untuned input counting
    as zero), a number t in [0, 1] (``t`` x face's + ``1 - t`` x onto's; 0.7 gives more of face's
    identity), ``"b"`` (onto's: pulls the face back towards onto), ``"a"`` (face's: face's hair and
    background leak in) or ``"none"`` (the base generator); the result carries that tuning.
    """
    from ..editing.layers import parse_layers
    from ..editing.swap import swap as swap_latents

    _check_pair(("onto", onto), ("face", face))
    G = onto.G
    identity_rows = parse_layers(identity_layers, G, rows_exact=rows_exact)
    keep_rows = parse_layers(keep_layers, G, rows_exact=rows_exact) if keep_layers and keep_layers.strip() else []
    if lr is not None and not (isinstance(lr, (int, float)) and np.isfinite(lr) and lr > 0):
        raise LatentlabError(f"swap lr must be a positive number, got {lr!r}")
    out = swap_latents(G, face.latent, onto.latent, method=method, identity_rows=identity_rows, keep_rows=keep_rows,
                       steps=steps, lr=lr, init=init, tuning=tuning,
                       layers={"identity_layers": identity_layers, "keep_layers": keep_layers or ""},
                       progress=progress, cancel=cancel)
    return onto.with_latent(out)


def morph(a: Projection, b: Projection, frames: int = 60) -> Frames:
    """Morph A into B: ``frames`` (>= 2) latents ws(t) = A + t (B - A), t = 0..1 evenly, noise maps
    interpolated too; tuned inputs blend their tunings the same way. Returns lazy :class:`Frames`
    in A's photo: ``.save("m.mp4", fps=24)``, ``.paste()``, or index them."""
    from ..editing.mixing import morph as frames_between

    _check_pair(("a", a), ("b", b))
    steps = frames_between(a.latent, b.latent, frames)
    return Frames([a.with_latent(f) for f in steps], {"op": "morph", "a": a.name, "b": b.name, "frames": len(steps)})


def attributes(G: Generator, *, network: str | None = None,
               directions_dirs: Sequence["str | Path"] = ()) -> dict[str, Path]:
    """The named attributes :meth:`Projection.edit` accepts for G: name -> direction file (shipped
    ones, ``$LATENTLAB_DIRECTIONS``, the cache, and ``directions_dirs``)."""
    from ..editing.attributes import available_attributes

    check_generator(G)
    return available_attributes(network or network_name(G), directions_dirs)


# ------------------------------------------------------------------------------------------ writers
def sweep_paths(stem: "str | Path", *, pasted: bool) -> list[Path]:
    """[strip .png, video .mp4, (pasted strip _pasted.png)] of a sweep written by :func:`write_sweep`."""
    stem = Path(stem)
    return [stem.with_suffix(".png"), stem.with_suffix(".mp4")] + ([stem.parent / f"{stem.name}_pasted.png"]
                                                                  if pasted else [])


def write_sweep(stem: "str | Path", frames: Frames, *, force: bool = False) -> list[Path]:
    """Write a sweep (:meth:`Projection.sweep`): ``STEM.png`` (the aligned frames side by side, 256 px
    tiles), ``STEM.mp4`` (there and back, 512 px, 4 frames per second) and, when the frames can be
    pasted, ``STEM_pasted.png`` (each frame pasted into the photo, 384 px high, side by side).
    Every path is checked first. Returns the paths written."""
    from ..figures import side_by_side, strip
    from ..imageio import refuse_existing, save_image, save_video

    paths = sweep_paths(stem, pasted=frames.can_paste)
    refuse_existing(paths, force)
    images = [f.array for f in frames]
    save_image(strip(images), paths[0], force=force)
    save_video([strip([f], size=512) for f in images + images[-2:0:-1]], paths[1], fps=4, force=force)
    if frames.can_paste:
        save_image(side_by_side([f.array for f in frames.paste()], height=384), paths[2], force=force)
    return paths


def identity(a: np.ndarray, b: np.ndarray) -> dict[str, Any]:
    """dlib face-identity comparison of two uint8 face images: cosine, distance and the verdict
    (distance < 0.6); all None when either holds no detectable face."""
    from ..faces import identity_similarity

    try:
        sim = identity_similarity(a, b)
    except LatentlabError:
        return {"cosine": None, "distance": None, "same_person": None}
    return {"cosine": sim.cosine, "distance": sim.distance, "same_person": sim.same_person}


def swap_paths(outdir: "str | Path", face: Projection, onto: Projection, *, tuning: "str | float" = "blend"
               ) -> list[Path]:
    """The files :func:`write_swap` writes for ``face`` on ``onto`` drawn with ``tuning`` (to check
    them before a long swap runs)."""
    from ..editing.swap import swap_is_tuned
    from ..latent import delta_path_for

    name = f"{face.name}_on_{onto.name}"
    npz = Path(outdir) / f"{name}.npz"
    paths = [Path(outdir) / f"{name}.png", npz, Path(outdir) / f"{name}_metrics.json"]
    if onto.can_paste:
        paths.append(Path(outdir) / f"{name}_pasted.png")
    if swap_is_tuned(face.tuning is not None, onto.tuning is not None, tuning):
        paths.append(delta_path_for(npz))
    return paths


def write_swap(outdir: "str | Path", face: Projection, onto: Projection, result: Projection, *,
               force: bool = False) -> dict[str, Any]:
    """Write a face swap (:func:`swap` of ``face`` onto ``onto``) as ``<face>_on_<onto>.png/.npz/
    _pasted.png`` (:meth:`Projection.write`) and ``..._metrics.json``: the swap's settings and the
    identity of the result compared with each input's aligned photo (or its drawing). Returns the
    metrics plus "image", "pasted" and "name"."""
    from ..imageio import refuse_existing, write_bytes_atomic

    name = f"{face.name}_on_{onto.name}"
    metrics_path = Path(outdir) / f"{name}_metrics.json"
    refuse_existing([metrics_path, *result.output_paths(outdir, name)], force)
    out = result.write(outdir, name, force=force)
    info: dict[str, Any] = {"a": str(face.photo or face.name), "b": str(onto.photo or onto.name),
                            **{k: v for k, v in result.history[-1].items() if k not in ("op", "face", "onto")}}
    info["identity_vs_a"] = identity(face.target.array if face.target is not None else face.array, out["image"])
    info["identity_vs_b"] = identity(onto.target.array if onto.target is not None else onto.array, out["image"])
    write_bytes_atomic(metrics_path, json.dumps(info, indent=2, default=str) + "\n", force=force)
    return {**info, "image": out["image"], "pasted": out["pasted"], "name": name}


__all__ = ["Projection", "attributes", "check_generator", "identity", "load_latent", "load_photo", "morph",
           "project", "sample", "style", "swap", "swap_paths", "sweep_paths", "transfer", "write_swap", "write_sweep"]
