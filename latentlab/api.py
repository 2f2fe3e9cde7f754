"""latentlab's Python API: photos in, edited photos out, in a few lines.

```python
import latentlab as ll
G = ll.load_generator("ffhq-mobile")
me = ll.project("me.jpg", G, preset="fast")       # aligns, projects; a Projection
me.edit(smile=1.5, age=-1).paste().save("me_smiling.jpg")
ll.swap(ll.project("you.jpg", G), me).paste().save("you_on_me.jpg")
me.save("me.npz"); me = ll.load_latent("me.npz", G)
```

* :func:`project` turns a photo (or a latent ``.npz``) into a :class:`Projection`: the W+ latent
  ``ws`` [1, num_ws, w_dim], its noise maps, the alignment transform and the original photo.
* :meth:`Projection.edit`, :func:`style`, :func:`transfer` and :func:`swap` return new
  :class:`Projection` objects (inputs are never modified); :func:`morph` returns :class:`Frames`;
  :func:`sample` returns a :class:`Batch` of projections of random faces.
* Nothing is rendered until an image is needed: :attr:`Projection.image` (the aligned result,
  uint8 [R, R, 3] at the generator's resolution R) and :meth:`Projection.paste` (the whole original
  photo, uint8 [H, W, 3], with the result pasted over the face) return lazy :class:`Image` objects
  that render once, on first use, and show themselves in Jupyter.
* Every result carries its settings (:attr:`Projection.settings`, a JSON-able dict): the projector
  settings, the photo, and each operation applied, in order, under ``"history"``.

All of it runs on the library functions the command line uses (:mod:`latentlab.editing`,
:mod:`latentlab.inversion`, :mod:`latentlab.faces`); bad input raises a one-line
:class:`~latentlab.errors.LatentlabError`.
"""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

import numpy as np
import torch

from .editing.inputs import ResolvedLatent
from .errors import LatentlabError
from .models.base import Generator
from .registry import list_models, load_generator


# ------------------------------------------------------------------------------------------ helpers
def _quiet(_msg: str) -> None:
    return None


def _stderr(msg: str) -> None:
    import sys

    print(msg, file=sys.stderr)


def network_of(G: Generator) -> str:
    """The name latents and directions use for G: the registry name when G was loaded from one
    (``"ffhq-mobile"``), else its checkpoint file path, else ``"state:<hash>"`` of its weights (a
    generator built in memory)."""
    given = getattr(G, "latentlab_network", None)
    if given:
        return str(given)
    ckpt = getattr(G, "checkpoint_path", None)
    if ckpt:
        from .registry import MODELS, model_path

        p = Path(ckpt).expanduser()
        for name in MODELS:
            try:
                if p.exists() and model_path(name).expanduser().resolve() == p.resolve():
                    return name
            except (OSError, LatentlabError):
                continue
        return str(ckpt)
    from .registry import state_hash

    return f"state:{state_hash(G)[:16]}"


def _check_generator(G: Any) -> None:
    if not isinstance(G, Generator):
        raise LatentlabError(f"expected a generator from latentlab.load_generator, got {type(G).__name__}")


def _png_bytes(array: np.ndarray) -> bytes:
    from PIL import Image as PILImage

    buf = io.BytesIO()
    PILImage.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def _image_thumbnail(array: np.ndarray, size: int) -> np.ndarray:
    import cv2

    h, w = array.shape[:2]
    if max(h, w) <= size:
        return array
    s = size / max(h, w)
    return cv2.resize(array, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)


# ------------------------------------------------------------------------------------------ Image
class Image:
    """A picture that is made when first needed: ``array`` uint8 [H, W, 3] (values 0..255).

    Shows itself in Jupyter (``_repr_png_``), converts with ``np.asarray(img)``, and saves with
    :meth:`save` (``.png``, ``.jpg``, ...; never overwrites without ``force=True``). ``settings``
    (dict) says how it was made.
    """

    def __init__(self, make: "Callable[[], np.ndarray] | np.ndarray", settings: dict[str, Any] | None = None) -> None:
        self._make = make if callable(make) else None
        self._array: np.ndarray | None = None if callable(make) else np.ascontiguousarray(make)
        self.settings: dict[str, Any] = dict(settings or {})

    @property
    def rendered(self) -> bool:
        """True once the pixels exist (nothing is computed before first use)."""
        return self._array is not None

    @property
    def array(self) -> np.ndarray:
        """uint8 [H, W, 3] pixels (rendered on first access, then kept)."""
        if self._array is None:
            assert self._make is not None
            arr = np.asarray(self._make())
            if arr.dtype != np.uint8 or arr.ndim != 3:
                raise LatentlabError(f"internal: an image must be uint8 [H, W, C], got {arr.dtype} {arr.shape}")
            self._array = np.ascontiguousarray(arr)
            self._make = None
        return self._array

    @property
    def shape(self) -> tuple[int, int, int]:
        """(H, W, 3)."""
        return tuple(self.array.shape)  # type: ignore[return-value]

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return self.array if dtype is None else self.array.astype(dtype)

    def save(self, path: "str | Path", force: bool = False, *, quality: int = 95) -> Path:
        """Write the image (format from the extension; ``quality`` for JPEG/WebP). Refuses to
        overwrite an existing file unless ``force``. Returns the path written."""
        from .imageio import save_image

        return save_image(self.array, path, force=force, quality=quality)

    def _repr_png_(self) -> bytes:
        return _png_bytes(self.array)

    def __repr__(self) -> str:
        what = "x".join(map(str, self._array.shape)) if self._array is not None else "not rendered yet"
        return f"<latentlab Image {what}>"


# ------------------------------------------------------------------------------------------ Projection
class Projection:
    """A face as a latent of generator G, with what is needed to show it and put it back.

    ws [1, num_ws, w_dim] float32 on G's device; noise: name -> [1, 1, h, w] maps (may be empty);
    transform: the alignment (:class:`~latentlab.faces.FaceTransform`) or None; original: the
    photo, uint8 [H, W, 3], or None. Made by :func:`project`, :func:`load_latent`, :func:`sample`
    and the editing functions; immutable in use: every operation returns a new Projection.
    """

    def __init__(self, G: Generator, resolved: ResolvedLatent, *, network: str | None = None) -> None:
        _check_generator(G)
        G.check_ws(resolved.ws)
        self.G = G
        self.network = network or network_of(G)
        self._resolved = resolved
        self._image: Image | None = None

    # -------------------------------------------------------------- data
    @property
    def resolved(self) -> ResolvedLatent:
        """The underlying :class:`~latentlab.editing.inputs.ResolvedLatent` (library form)."""
        return self._resolved

    @property
    def ws(self) -> torch.Tensor:
        """A copy of the latent, float32 [1, num_ws, w_dim]."""
        return self._resolved.ws.detach().clone()

    @property
    def noise(self) -> dict[str, torch.Tensor]:
        """Noise maps used when rendering: name -> [1, 1, h, w] (empty: G's constant buffers)."""
        return dict(self._resolved.noise)

    @property
    def generator(self) -> Generator:
        """The generator that renders this latent: the projection's own (pivotal-tuned) one when it
        carries one, else G. A morph frame between tuned latents, or a swap drawn with a blend of two
        tunings, carries only its blended tuning:
        its generator is built on each access (a copy of G's synthesis weights), not kept."""
        r = self._resolved
        if r.generator is None and r.delta is not None:
            from .inversion.pti import apply_delta

            return apply_delta(self.G, r.delta)
        return r.generator or self.G

    @property
    def transform(self) -> Any:
        """Alignment transform (aligned pixel -> photo pixel), or None for a latent without a photo."""
        return self._resolved.transform

    @property
    def original(self) -> np.ndarray | None:
        """The original photo, uint8 [H, W, 3], or None when unknown."""
        return self._resolved.original

    @property
    def photo(self) -> Path | None:
        """Path of the original photo, or None."""
        return self._resolved.photo

    @property
    def name(self) -> str:
        """Short name, used in file names (the photo's stem, ``seed12``, ``me_on_you``...)."""
        return self._resolved.name

    @property
    def settings(self) -> dict[str, Any]:
        """JSON-able settings: projector config, photo, network, and ``history`` (each operation)."""
        return {**dict(self._resolved.settings or {}), "network": self.network}

    @property
    def history(self) -> list[dict[str, Any]]:
        """The operations that made this latent from its projection, oldest first."""
        return list((self._resolved.settings or {}).get("history", []))

    @property
    def can_paste(self) -> bool:
        """True when the original photo and the alignment are known (:meth:`paste` works)."""
        return self._resolved.can_paste

    # -------------------------------------------------------------- images
    def _render(self) -> np.ndarray:
        gen = self.generator
        sample = (self._resolved.settings or {}).get("sample")
        if isinstance(sample, dict) and sample.get("noise_mode"):
            from .sampling import to_uint8

            with torch.no_grad():
                img = gen.synthesis(self._resolved.ws.to(gen.device, torch.float32), noise_mode=sample["noise_mode"])
            return to_uint8(img)[0]
        from .editing.render import render

        return render(gen, self._resolved.ws, self._resolved.noise)[0]

    @property
    def image(self) -> Image:
        """The aligned result, uint8 [R, R, 3] at the generator's resolution R (lazy, rendered once)."""
        if self._image is None:
            self._image = Image(self._render, {**self.settings, "view": "aligned"})
        return self._image

    @property
    def array(self) -> np.ndarray:
        """Shortcut for ``self.image.array``: uint8 [R, R, 3]."""
        return self.image.array

    @property
    def target(self) -> Image | None:
        """The aligned photo the projection was fitted to, uint8 [R, R, 3], or None when unknown."""
        aligned = self._resolved.aligned
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
            from .faces import paste_back

            return paste_back(base.original, base.image.array, base.transform, color_transfer=color_transfer)

        return Image(make, {**self.settings, "view": "pasted", "color_transfer": color_transfer})

    def _repr_png_(self) -> bytes:
        return self.image._repr_png_()

    def __repr__(self) -> str:
        ops = ", ".join(h.get("op", "?") for h in self.history) or "none"
        photo = self.photo.name if self.photo is not None else "none"
        return (f"<latentlab Projection {self.name!r}: ws {list(self._resolved.ws.shape)}, network "
                f"{self.network!r}, photo {photo}, operations: {ops}>")

    # -------------------------------------------------------------- new latents
    def with_ws(self, ws: torch.Tensor, *, name: str | None = None, op: dict[str, Any] | None = None,
                noise: dict[str, torch.Tensor] | None = None) -> "Projection":
        """A new Projection on the same photo with another latent ws [1, num_ws, w_dim] (e.g. your
        own W+ arithmetic). ``op`` (JSON-able) is appended to :attr:`history`; ``noise`` replaces
        the noise maps (default: keep this one's)."""
        if not isinstance(ws, torch.Tensor) or ws.ndim != 3 or ws.shape[0] != 1 \
                or tuple(ws.shape[1:]) != (self.G.num_ws, self.G.w_dim):
            shape = list(ws.shape) if isinstance(ws, torch.Tensor) else type(ws).__name__
            raise LatentlabError(f"ws must be [1, {self.G.num_ws}, {self.G.w_dim}] for this generator, got {shape}")
        if not torch.isfinite(ws).all():
            raise LatentlabError("ws holds NaN or infinite values")
        settings = dict(self._resolved.settings or {})
        if op is not None:
            settings["history"] = [*settings.get("history", []), op]
            settings["edit"] = op  # the last operation, as the command line records it
        resolved = dataclasses.replace(self._resolved, ws=ws.detach().to(self.G.device, torch.float32),
                                       noise=dict(self._resolved.noise if noise is None else noise),
                                       name=name or self._resolved.name, settings=settings)
        return Projection(self.G, resolved, network=self.network)

    def edit(self, directions: "Mapping[Any, float] | Iterable[tuple[Any, float]] | None" = None, *,
             layers: Mapping[str, str] | None = None, sefa: Mapping[int, float] | None = None,
             ganspace: Mapping[int, float] | None = None, rows_exact: bool = False,
             directions_dirs: Sequence["str | Path"] = (), unit: str = "w", **attributes: float) -> "Projection":
        """Move along latent directions: ``ws + sum_i strength_i * d_i``, each on its rows.

        attributes: named attributes of this model and their strengths (``smile=1.5, age=-1``). unit
        ``"w"`` (default): W distance along the unit direction; ``"sigma"``: multiples of the
        direction's sigma, the untruncated generator's spread along it
        (:meth:`~latentlab.editing.directions.Direction.sigma`; smile 0.83 W units, age 1.13 on
        ffhq-mobile), as ``--smile 1s`` on the command line. Useful range about -2..2 sigma; at most
        100 W units in magnitude. sefa / ganspace strengths are always W units;
        see :func:`attributes`. directions: direction files (``.npz``/``.npy``) or
        :class:`~latentlab.editing.directions.Direction` objects with strengths, as a dict or a list of
        pairs. sefa / ganspace: component index -> strength (component k: the k-th strongest).
        layers: label -> layer-range spec overriding an edit's default rows (labels: the attribute
        name, the file's stem, ``sefa0``, ``ganspace3``); default ranges as in
        :mod:`latentlab.editing.pipeline` (smile rows 0-5, age 0-9, head pose 0-6 of the 18-row
        layout, mapped to this model by resolution). rows_exact: read bare numbers in ranges as this
        model's own rows. directions_dirs: extra folders with ``<model>/<attribute>.npz``.
        Returns a new Projection (same photo and noise).
        """
        from .editing.directions import Direction
        from .editing.pipeline import attribute_edit, component_edit, direction_edit

        layers = dict(layers or {})
        cache: dict = {}
        edits = []
        pairs = list(directions.items()) if isinstance(directions, Mapping) else list(directions or [])
        for target, strength in pairs:
            label = target.name if isinstance(target, Direction) else Path(str(target)).stem
            edits.append(direction_edit(self.G, self.network, target, strength, layers.get(label), label=label,
                                        rows_exact=rows_exact, unit=unit))
        for name, strength in attributes.items():
            edits.append(attribute_edit(self.G, self.network, name, strength, layers.get(name),
                                        directions_dirs=directions_dirs, rows_exact=rows_exact, unit=unit))
        for method, comps in (("sefa", sefa), ("ganspace", ganspace)):
            for k, strength in (comps or {}).items():
                if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or int(k) < 0:
                    raise LatentlabError(f"{method} component must be an index 0, 1, ..., got {k!r}")
                edits.append(component_edit(self.G, method, int(k), strength, layers.get(f"{method}{int(k)}"),
                                            rows_exact=rows_exact, cache=cache))
        if not edits:
            raise LatentlabError("nothing to edit: give attribute strengths (smile=1.5), directions, sefa or ganspace")
        unused = set(layers) - {e.label for e in edits}
        if unused:
            raise LatentlabError(f"layers given for {', '.join(sorted(unused))}, which is not among the edits "
                                 f"({', '.join(e.label for e in edits)})")
        from .editing.pipeline import apply_edits

        ws = apply_edits(self._resolved.ws, edits)
        return self.with_ws(ws, name=f"{self._resolved.name}_edit",
                            op={"op": "edit", "edits": [e.summary() for e in edits]})

    def sweep(self, target: Any, values: Sequence[float], *, layers: str | None = None, rows_exact: bool = False,
              directions_dirs: Sequence["str | Path"] = (), unit: str = "w") -> "Frames":
        """Frames along one direction at each strength in ``values`` (e.g. ``np.linspace(-3, 3, 7)``).

        target: an attribute name, a direction file, ``sefa:K`` or ``ganspace:K`` (or an
        :class:`~latentlab.editing.pipeline.Edit`, whose strength is replaced); layers: its layer
        range (default as in :meth:`edit`); unit: ``"w"`` or ``"sigma"`` as in :meth:`edit`.
        Returns :class:`Frames` (lazy; its ``values`` are W units)."""
        from .editing.pipeline import Edit, apply_edits, check_strength, check_unit, target_edit

        label = target.label if isinstance(target, Edit) else target
        check_unit(unit)
        vals = [check_strength(v, f"sweep strength of {label}") for v in values]
        if not vals:
            raise LatentlabError("sweep needs at least one strength")
        one = target if isinstance(target, Edit) else target_edit(
            self.G, self.network, str(target), 1.0, layers, directions_dirs=directions_dirs, rows_exact=rows_exact)
        if unit == "sigma":
            sigma = one.meta.get("sigma")
            if not sigma:
                raise LatentlabError(f"{one.label}: no recorded sigma; give the sweep's strengths in W units")
            vals = [check_strength(v * float(sigma), f"sweep strength of {label} in W units") for v in vals]
        frames = []
        for v in vals:
            e = dataclasses.replace(one, strength=v)
            frames.append(self.with_ws(apply_edits(self._resolved.ws, [e]), name=f"{self.name}_{one.label}",
                                       op={"op": "edit", "edits": [e.summary()]}))
        return Frames(frames, {"op": "sweep", "target": one.label, "values": vals, "layers": one.layers})

    # -------------------------------------------------------------- files
    def save(self, path: "str | Path", force: bool = False) -> Path:
        """Write the latent as ``.npz`` (ws, noise maps, alignment, settings with the photo's path),
        the format of ``latentlab project``; :func:`load_latent` and every CLI command read it. A
        pivotal tuning is written beside it (``NAME.pti.safetensors``). Refuses to overwrite unless
        ``force``. Returns the path."""
        from .latentfile import save_latent

        p = Path(path)
        if p.suffix.lower() != ".npz":
            raise LatentlabError(f"{p}: a latent file must end in .npz")
        meta = self.settings
        meta.pop("tuning", None)
        if self.photo is not None:
            meta["photo"] = str(Path(self.photo).resolve())
        delta = getattr(self._resolved, "delta", None)
        if delta is not None:  # a pivotal tuning travels beside the latent: NAME.pti.safetensors
            from .editing.render import refuse
            from .inversion.pti import delta_path_for, save_delta

            refuse([p, delta_path_for(p)], force)
            meta["tuning"] = {"file": delta_path_for(p).name,
                              "sha256": save_delta(delta_path_for(p), delta, model=self.network, force=force)}
        save_latent(p, self._resolved.ws[:1], self._resolved.noise, model=self.network, transform=self.transform,
                    settings=meta, force=force)
        return p


# ------------------------------------------------------------------------------------------ collections
class Frames(Sequence[Image]):
    """A sequence of lazy frames (:class:`Image`, uint8 [R, R, 3]) from :func:`morph` or
    :meth:`Projection.sweep`; ``frames.projections`` holds each frame's latent.

    ``frames.save("m.mp4", fps=24)`` writes a video (``.mp4`` / ``.gif``) or, for an image extension,
    a strip of up to ``count`` frames; ``frames.paste()`` is the same sequence pasted into the first
    input's photo (uint8 [H, W, 3] each).
    """

    def __init__(self, projections: Sequence[Projection], settings: dict[str, Any] | None = None, *,
                 pasted: bool = False, color_transfer: bool = True) -> None:
        self.projections: list[Projection] = list(projections)
        self.settings: dict[str, Any] = dict(settings or {})
        self._pasted = pasted
        self._color_transfer = color_transfer
        self._images: list[Image] | None = None

    def _all(self) -> list[Image]:
        if self._images is None:
            self._images = [p.paste(color_transfer=self._color_transfer) if self._pasted else p.image
                            for p in self.projections]
        return self._images

    def __len__(self) -> int:
        return len(self.projections)

    def __getitem__(self, index):  # type: ignore[override]
        images = self._all()
        return images[index]

    def __iter__(self) -> Iterator[Image]:
        return iter(self._all())

    def paste(self, *, color_transfer: bool = True) -> "Frames":
        """The frames pasted into the photo (each uint8 [H, W, 3]); LatentlabError without a photo."""
        if not all(p.can_paste for p in self.projections):
            raise LatentlabError("these frames have no original photo to paste into")
        return Frames(self.projections, {**self.settings, "view": "pasted"}, pasted=True,
                      color_transfer=color_transfer)

    def strip(self, size: int = 256, count: int | None = None) -> Image:
        """Up to ``count`` evenly spaced frames (default all) side by side, each ``size`` px high."""
        from .editing.render import grid, resize

        n = len(self)
        keys = list(range(n)) if not count or count >= n else \
            sorted(set(np.linspace(0, n - 1, max(1, int(count))).round().astype(int).tolist()))
        frames = self

        def make() -> np.ndarray:
            tiles = []
            for k in keys:
                a = frames[k].array
                if a.shape[0] == a.shape[1]:
                    tiles.append(resize(a, size))
                else:  # pasted frames are photos: fit into a size x size tile, centred on white
                    small = _image_thumbnail(a, size)
                    tile = np.full((size, size, 3), 255, np.uint8)
                    y, x = (size - small.shape[0]) // 2, (size - small.shape[1]) // 2
                    tile[y:y + small.shape[0], x:x + small.shape[1]] = small
                    tiles.append(tile)
            return grid([tiles])

        return Image(make, {**self.settings, "view": "strip"})

    def save(self, path: "str | Path", fps: float = 24, force: bool = False, *, size: int | None = None,
             count: int = 5) -> Path:
        """Write a video (``.mp4`` H.264 or ``.gif``) at ``fps`` frames per second, frames resized to
        ``size`` px when given; or, for ``.png``/``.jpg``, a strip of ``count`` frames. Never
        overwrites unless ``force``."""
        from .editing.render import resize, save_video

        p = Path(path)
        if p.suffix.lower() in (".mp4", ".gif"):
            if not (isinstance(fps, (int, float)) and np.isfinite(fps) and fps > 0):
                raise LatentlabError(f"fps must be a positive number, got {fps!r}")
            frames = [f.array if size is None else resize(f.array, int(size)) for f in self]
            return save_video(frames, p, fps=float(fps), force=force)
        return self.strip(count=count).save(p, force=force)

    def _repr_png_(self) -> bytes:
        return self.strip(count=5)._repr_png_()

    def __repr__(self) -> str:
        return f"<latentlab Frames: {len(self)} frames, {self.settings.get('op', '')}>"


class Batch(list):
    """A list of :class:`Projection` (from :func:`sample`) that shows itself as a grid in Jupyter."""

    def grid(self, cols: int | None = None, tile: int = 256) -> Image:
        """All images tiled row-major, ``cols`` per row (default ceil(sqrt(N))), each at most
        ``tile`` px: uint8 [rows*t, cols*t, 3]."""
        from .editing.render import resize
        from .sampling import image_grid

        items = list(self)
        if not items:
            raise LatentlabError("an empty batch has no grid")

        def make() -> np.ndarray:
            t = min(int(tile), items[0].G.img_resolution)
            return image_grid(np.stack([resize(p.array, t) for p in items]), cols=cols, pad_value=255)

        return Image(make, {"view": "grid", "names": [p.name for p in items]})

    def render(self, batch: int = 4, *, keep: bool = True) -> list[np.ndarray]:
        """Every image, uint8 [R, R, 3] each, drawing ``batch`` sampled faces per forward pass
        (results equal one-at-a-time rendering to float rounding: within one level). keep: store
        them in each projection (``p.image`` does not render again); False for long runs that
        write each image and let it go."""
        if isinstance(batch, bool) or not isinstance(batch, (int, np.integer)) or batch < 1:
            raise LatentlabError(f"batch must be a positive integer, got {batch!r}")
        from .sampling import to_uint8

        items, out = list(self), []
        for start in range(0, len(items), int(batch)):
            group = items[start:start + int(batch)]
            modes = {((p._resolved.settings or {}).get("sample") or {}).get("noise_mode") for p in group}
            gen = group[0].generator
            if (len(group) > 1 and len(modes) == 1 and None not in modes and not any(p.image.rendered for p in group)
                    and all(p.generator is gen for p in group)):
                with torch.no_grad():
                    ws = torch.cat([p._resolved.ws for p in group]).to(gen.device, torch.float32)
                    imgs = [np.ascontiguousarray(x) for x in to_uint8(gen.synthesis(ws, noise_mode=modes.pop()))]
            else:
                imgs = [p.array if keep or p.image.rendered else p._render() for p in group]
            if keep:
                for p, img in zip(group, imgs):
                    if not p.image.rendered:
                        p.image._array, p.image._make = img, None
            out += imgs
        return out

    def save(self, outdir: "str | Path", *, force: bool = False, batch: int = 4, grid_cols: int | None = None,
             grid_tile: int = 256, progress: bool = False) -> list[Path]:
        """Write sampled faces as ``latentlab sample`` does: ``seedNNNN.png`` per face, ``grid.png``
        (``grid_cols`` columns, default ceil(sqrt(N)); tiles of at most ``grid_tile`` px) and
        ``samples.npz`` (``seeds`` [N], ``z`` [N, z_dim], ``ws`` [N, num_ws, w_dim], truncation psi
        and cutoff, noise mode, network, and ``c`` for conditional models). ``batch`` faces are drawn
        per forward pass. Every path is checked first; nothing is overwritten unless ``force``.
        Returns the paths written."""
        import math

        from PIL import Image as PILImage
        from tqdm.auto import tqdm

        from .editing.render import refuse
        from .imageio import save_image, write_bytes_atomic
        from .sampling import class_labels, image_grid, z_from_seeds

        items = list(self)
        infos = [(p._resolved.settings or {}).get("sample") for p in items]
        if not items or any(not isinstance(i, dict) for i in infos):
            raise LatentlabError("Batch.save writes sampled faces (from ll.sample); this batch has other latents")
        if isinstance(batch, bool) or not isinstance(batch, (int, np.integer)) or batch < 1:
            raise LatentlabError(f"batch must be a positive integer, got {batch!r}")
        first, G, outdir = infos[0], items[0].G, Path(outdir)
        seeds = [int(i["seed"]) for i in infos]
        pngs = [outdir / f"seed{k:04d}.png" for k in seeds]
        grid_path, npz_path = outdir / "grid.png", outdir / "samples.npz"
        refuse([*pngs, grid_path, npz_path], force)
        tile = min(int(grid_tile), G.img_resolution)
        thumbs = []
        with tqdm(total=len(items), unit="img", desc="sample", disable=not progress) as bar:
            for start in range(0, len(items), int(batch)):
                images = Batch(items[start:start + int(batch)]).render(int(batch), keep=False)
                for img, path in zip(images, pngs[start:start + int(batch)]):
                    save_image(img, path, force=True)
                    if tile < img.shape[0]:
                        pil = PILImage.fromarray(img if img.shape[2] == 3 else img[:, :, 0])
                        thumbs.append(np.asarray(pil.resize((tile, tile), PILImage.LANCZOS)).reshape(tile, tile, -1))
                    else:
                        thumbs.append(img)
                bar.update(len(images))
        save_image(image_grid(np.stack(thumbs), cols=grid_cols or math.ceil(math.sqrt(len(items)))), grid_path,
                   force=True)
        extra = {}
        if G.c_dim > 0:
            extra["c"] = class_labels(first.get("class_idx"), G.c_dim, len(items)).numpy()
        cutoff = first.get("truncation_cutoff")
        buf = io.BytesIO()
        np.savez(buf, seeds=np.asarray(seeds, dtype=np.int64), z=z_from_seeds(seeds, G.z_dim).numpy(),
                 ws=np.concatenate([p._resolved.ws.float().cpu().numpy() for p in items]),
                 truncation_psi=np.float32(first["truncation_psi"]),
                 truncation_cutoff=np.int64(-1 if cutoff is None else cutoff),
                 noise_mode=np.str_(first["noise_mode"]), network=np.str_(items[0].network), **extra)
        write_bytes_atomic(npz_path, buf.getvalue(), force=True)
        return [*pngs, grid_path, npz_path]

    def _repr_png_(self) -> bytes:
        return self.grid()._repr_png_()


# ------------------------------------------------------------------------------------------ functions
def project(photo: "str | Path", G: Generator, preset: str = "fast", *, network: str | None = None,
            cache: bool = True, face_index: int = 0, original: "str | Path | None" = None, verbose: bool = True,
            **config: Any) -> Projection:
    """Align a face photo and project it into G's W+ (or read a latent ``.npz``): a :class:`Projection`.

    photo: an image file (the ``face_index``-th largest face, 0 = largest, is aligned to G's
    resolution) or a ``.npz`` from :meth:`Projection.save` / ``latentlab project``.
    preset: ``"fast"`` (200 steps at most, early stop), ``"seed"`` (1000 steps), ``"nvidia"`` (W
    space, LPIPS only), ``"pti"`` (a W projection, then pivotal tuning of the generator for this
    person: the Projection renders with its tuned generator), or any preset
    :data:`latentlab.inversion.PRESETS` holds. config: any
    :class:`~latentlab.inversion.ProjectorConfig` field overriding the preset (``num_steps=50``,
    ``space="w"``, ``lpips_weight=0``, ``tuning_num_steps=...`` ...). network: the model's name for
    latents, caches and direction look-up (default: :func:`network_of`). cache: reuse (and keep) the
    projection of the same photo bytes, model and settings. original: for a ``.npz`` input, its
    original photo (to paste into; see :func:`load_latent`). verbose: progress bar and messages on
    stderr.
    """
    from .editing.inputs import LATENT_SUFFIXES, resolve_latent
    from .inversion.project import preset_config

    _check_generator(G)
    net = network or network_of(G)
    cfg = preset_config(preset, **config) if config else None
    if original is not None and Path(photo).suffix.lower() not in LATENT_SUFFIXES:
        raise LatentlabError(f"original= is for a latent .npz input; {photo} is a photo, its own original")
    resolved = resolve_latent(photo, G, network=net, config=cfg, preset=preset, cache=cache, face_index=face_index,
                              progress=verbose, log=_stderr if verbose else _quiet, photo=original)
    return Projection(G, resolved, network=net)


def load_latent(path: "str | Path", G: Generator, *, photo: "str | Path | None" = None,
                network: str | None = None) -> Projection:
    """Read a latent ``.npz`` (from :meth:`Projection.save`, ``latentlab project`` or an editing
    command) as a :class:`Projection` of G, with its pivotal tuning when it carries one.

    photo: the original photo it was aligned from, for :meth:`Projection.paste` (a photo path stored
    inside a latent file is never opened: files are shared, and must not make code read local
    files); it must have the size the latent was aligned from. Without it, ``.image`` works and
    ``.paste()`` raises. One-line errors for a file of another model or shape, or with several latents.
    """
    from .editing.inputs import load_latent_for

    _check_generator(G)
    net = network or network_of(G)
    p = Path(path)
    if not p.is_file():
        raise LatentlabError(f"{p}: no such latent file")
    return Projection(G, load_latent_for(p, G, net, log=_quiet, photo=photo), network=net)


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
    from .editing.layers import parse_layers
    from .editing.mixing import style_mix

    _check_pair(("content", content), ("style", style))
    rows = parse_layers(layers, content.G, rows_exact=rows_exact)
    ws = style_mix(content._resolved.ws, style._resolved.ws, rows)
    return content.with_ws(ws, name=f"{content.name}_x_{style.name}",
                           op={"op": "style", "content": content.name, "style": style.name, "layers": layers,
                               "rows": rows})


def transfer(target: Projection, neutral: Projection, smiling: Projection, strength: float = 1.0,
             layers: str = "0-5", *, rows_exact: bool = False) -> Projection:
    """Expression transfer (Image2StyleGAN): ``target + strength * (smiling - neutral)`` on ``layers``.

    neutral / smiling: the same person before and after an expression change (any person);
    strength: multiplier, |strength| <= 100 (1 = the full change); layers: default 0-5 (the seed's
    smile rows, 4-16 px). Returns a new Projection in target's photo."""
    from .editing.layers import parse_layers
    from .editing.mixing import expression_transfer
    from .editing.pipeline import check_strength

    _check_pair(("target", target), ("neutral", neutral), ("smiling", smiling))
    strength = check_strength(strength, "transfer strength")
    rows = parse_layers(layers, target.G, rows_exact=rows_exact)
    ws = expression_transfer(target._resolved.ws, neutral._resolved.ws, smiling._resolved.ws, strength, rows)
    return target.with_ws(ws, name=f"{target.name}_transfer",
                          op={"op": "transfer", "target": target.name, "from": neutral.name, "to": smiling.name,
                              "strength": strength, "layers": layers, "rows": rows})


def swap(face: Projection, onto: Projection, *, method: str = "mix", identity_layers: str = "0-7",
         keep_layers: str | None = None, steps: int = 100, lr: float | None = None, init: str = "b",
         tuning: "str | float" = "blend", rows_exact: bool = False, verbose: bool = True,
         lpips_model: torch.nn.Module | None = None) -> Projection:
    """Put ``face``'s face on ``onto`` (A on B); the result lives in onto's photo.

    method ``"mix"`` (instant): onto's latent with the rows ``identity_layers`` (default 0-7: 4-32 px,
    face shape and features) from face, except ``keep_layers`` (e.g. ``"0-3"`` keeps onto's head
    pose). ``"masked"``: ``steps`` optimisation steps (Image2StyleGAN++-style) so the face region
    matches face's photo and the rest matches onto's, from onto's latent (``init="b"``) or from the
    mix (``init="mix"``); ``lr`` its peak learning rate (default: the model's); ``lpips_model``: a
    loaded :class:`~latentlab.losses.LPIPS` to reuse across masked swaps (default: loaded per call).
    ``tuning``: the generator that draws the result when the inputs carry pivotal tunings:
    ``"blend"`` (default; the average of face's and onto's tuning deltas, an untuned input counting
    as zero), a number t in [0, 1] (``t`` x face's + ``1 - t`` x onto's; 0.7 gives more of face's
    identity), ``"b"`` (onto's: pulls the face back towards onto), ``"a"`` (face's: face's hair and
    background leak in) or ``"none"`` (the base generator); the result carries that tuning
    (:meth:`Projection.save` writes it beside the latent).
    """
    from .editing.layers import parse_layers
    from .editing.pipeline import swap_latents

    _check_pair(("onto", onto), ("face", face))
    G = onto.G
    identity_rows = parse_layers(identity_layers, G, rows_exact=rows_exact)
    keep_rows = parse_layers(keep_layers, G, rows_exact=rows_exact) if keep_layers and keep_layers.strip() else []
    if lr is not None and not (np.isfinite(lr) and lr > 0):
        raise LatentlabError(f"swap lr must be a positive number, got {lr!r}")
    res = swap_latents(G, face._resolved, onto._resolved, method=method, identity_rows=identity_rows,
                       keep_rows=keep_rows, steps=steps, lr=lr, init=init, tuning=tuning, lpips_model=lpips_model,
                       progress=verbose)
    op = {"op": "swap", "face": face.name, "onto": onto.name,
          **{k: v for k, v in res.info.items() if k not in ("seconds", "a", "b")}}
    out = onto.with_ws(res.ws, name=f"{face.name}_on_{onto.name}", op=op)
    if res.delta is not onto._resolved.delta:  # another tuning than onto's: its generator is built when drawn
        reuse = face._resolved.generator if res.delta is not None and res.delta is face._resolved.delta else None
        out._resolved = dataclasses.replace(out._resolved, generator=reuse, delta=res.delta)
    return out


def morph(a: Projection, b: Projection, frames: int = 60) -> Frames:
    """Morph A into B: ``frames`` (>= 2) latents ws(t) = A + t (B - A), t = 0..1 evenly, noise maps
    interpolated too. Returns lazy :class:`Frames` in A's photo: ``.save("m.mp4", fps=24)``,
    ``.paste()``, or index them."""
    from .editing.pipeline import morph_latents

    _check_pair(("a", a), ("b", b))
    steps = morph_latents(a._resolved, b._resolved, frames)
    n = len(steps)
    projections = []
    for k, f in enumerate(steps):
        p = a.with_ws(f.ws, noise=f.noise, name=f"{a.name}_to_{b.name}",
                      op={"op": "morph", "a": a.name, "b": b.name, "t": k / (n - 1)})
        if f.delta is not None:  # tuned inputs: the frame renders with the blended tuning (built when drawn)
            p._resolved = dataclasses.replace(p._resolved, generator=None, delta=f.delta)
        projections.append(p)
    return Frames(projections, {"op": "morph", "a": a.name, "b": b.name, "frames": n})


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
    from .editing.pipeline import check_strength
    from .sampling import MAX_SEED, class_labels, parse_seeds, z_from_seeds

    _check_generator(G)
    net = network or network_of(G)
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
        for start in range(len(seed_list)):
            chunk = seed_list[start:start + 1]
            z = z_from_seeds(chunk, G.z_dim, G.device)
            c = class_labels(class_idx, G.c_dim, len(chunk), G.device)
            ws = G.mapping(z, c, truncation_psi=psi, truncation_cutoff=trunc_cutoff).float()
            for k, seed in enumerate(chunk):
                info = {"seed": seed, "truncation_psi": psi, "truncation_cutoff": trunc_cutoff,
                        "noise_mode": noise_mode, "class_idx": class_idx}
                resolved = ResolvedLatent(ws[k:k + 1], {}, None, None, None, f"seed{seed:04d}",
                                          Path(f"seed{seed:04d}"), None, {"sample": info, "network": net})
                out.append(Projection(G, resolved, network=net))
    return out


def attributes(G: Generator, *, network: str | None = None,
               directions_dirs: Sequence["str | Path"] = ()) -> dict[str, Path]:
    """The named attributes :meth:`Projection.edit` accepts for G: name -> direction file (shipped
    ones, ``$LATENTLAB_DIRECTIONS``, the cache, and ``directions_dirs``)."""
    from .editing.attributes import available_attributes

    _check_generator(G)
    return available_attributes(network or network_of(G), directions_dirs)


__all__ = ["Batch", "Frames", "Image", "Projection", "attributes", "list_models", "load_generator", "load_latent",
           "morph", "network_of", "project", "sample", "style", "swap", "transfer"]
