"""Lazy pictures and sequences of them: :class:`Image`, :class:`Frames`, :class:`Batch`."""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from ..errors import LatentlabError


def png_bytes(array: np.ndarray, *, compress_level: int = 6) -> bytes:
    """uint8 [H, W, C] -> PNG file bytes."""
    from PIL import Image as PILImage

    buf = io.BytesIO()
    PILImage.fromarray(np.ascontiguousarray(array)).save(buf, format="PNG", compress_level=compress_level)
    return buf.getvalue()


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
            if self._make is None:
                raise LatentlabError("internal: an image with neither pixels nor a way to make them")
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

    def fill(self, array: np.ndarray) -> None:
        """Give a not yet rendered image its pixels (drawn elsewhere, e.g. several per batch)."""
        if self._array is None:
            self._array, self._make = np.ascontiguousarray(array), None

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return self.array if dtype is None else self.array.astype(dtype)

    def save(self, path: "str | Path", force: bool = False, *, quality: int = 95) -> Path:
        """Write the image (format from the extension; ``quality`` for JPEG/WebP). Refuses to
        overwrite an existing file unless ``force``. Returns the path written."""
        from ..imageio import save_image

        return save_image(self.array, path, force=force, quality=quality)

    def png(self) -> bytes:
        """The image as PNG file bytes."""
        return png_bytes(self.array)

    def _repr_png_(self) -> bytes:
        return self.png()

    def __repr__(self) -> str:
        what = "x".join(map(str, self._array.shape)) if self._array is not None else "not rendered yet"
        return f"<latentlab Image {what}>"


class Frames(Sequence[Image]):
    """A sequence of lazy frames (:class:`Image`, uint8 [R, R, 3]) from :func:`~latentlab.api.morph`,
    :meth:`Projection.sweep` or :func:`~latentlab.api.interpolate`; ``frames.projections`` holds
    each frame's latent (empty for interpolations of samples drawn on the fly).

    ``frames.save("m.mp4", fps=24)`` writes a video (``.mp4`` / ``.gif``) or, for an image
    extension, a strip of up to ``count`` frames; ``frames.paste()`` is the same sequence pasted
    into the first input's photo (uint8 [H, W, 3] each).
    """

    def __init__(self, projections: "Sequence[Any]", settings: dict[str, Any] | None = None, *,
                 pasted: bool = False, color_transfer: bool = True, images: Sequence[Image] | None = None) -> None:
        self.projections: list[Any] = list(projections)  # latentlab.api.Projection
        self.settings: dict[str, Any] = dict(settings or {})
        self._pasted = pasted
        self._color_transfer = color_transfer
        self._images: list[Image] | None = list(images) if images is not None else None

    def _all(self) -> list[Image]:
        if self._images is None:
            self._images = [p.paste(color_transfer=self._color_transfer) if self._pasted else p.image
                            for p in self.projections]
        return self._images

    def __len__(self) -> int:
        return len(self._images) if self._images is not None and not self.projections else len(self.projections)

    def __getitem__(self, index):  # type: ignore[override]
        return self._all()[index]

    def __iter__(self) -> Iterator[Image]:
        return iter(self._all())

    @property
    def can_paste(self) -> bool:
        """True when every frame can be pasted into its photo."""
        return bool(self.projections) and all(p.can_paste for p in self.projections)

    def paste(self, *, color_transfer: bool = True) -> "Frames":
        """The frames pasted into the photo (each uint8 [H, W, 3]); LatentlabError without a photo."""
        if not self.can_paste:
            raise LatentlabError("these frames have no original photo to paste into")
        return Frames(self.projections, {**self.settings, "view": "pasted"}, pasted=True,
                      color_transfer=color_transfer)

    def strip(self, size: int = 256, count: int | None = None) -> Image:
        """Up to ``count`` evenly spaced frames (default all) side by side, each ``size`` px high."""
        from ..figures import strip

        n = len(self)
        keys = list(range(n)) if not count or count >= n else \
            sorted(set(np.linspace(0, n - 1, max(1, int(count))).round().astype(int).tolist()))
        frames = self
        return Image(lambda: strip([frames[k].array for k in keys], size=size), {**self.settings, "view": "strip"})

    def save(self, path: "str | Path", fps: float = 24, force: bool = False, *, size: int | None = None,
             count: int = 5) -> Path:
        """Write a video (``.mp4`` H.264 or ``.gif``) at ``fps`` frames per second, frames resized to
        ``size`` px when given (aligned frames) or to ``size`` px high (pasted frames); or, for
        ``.png``/``.jpg``, a strip of ``count`` frames. Never overwrites unless ``force``; the
        video is encoded under a temporary name and renamed when complete."""
        from ..figures import fit_height, resize
        from ..imageio import save_video

        p = Path(path)
        if p.suffix.lower() in (".mp4", ".gif"):
            from ..imageio import refuse_existing

            refuse_existing([p], force)

            def fit(a: np.ndarray) -> np.ndarray:
                if size is None:
                    return a
                return resize(a, int(size)) if a.shape[0] == a.shape[1] else fit_height(a, int(size))

            return save_video([fit(f.array) for f in self], p, fps=fps, force=force)
        return self.strip(count=count).save(p, force=force)

    def _repr_png_(self) -> bytes:
        return self.strip(count=5)._repr_png_()

    def __repr__(self) -> str:
        return f"<latentlab Frames: {len(self)} frames, {self.settings.get('op', '')}>"


class Batch(list):
    """A list of :class:`Projection` (from :func:`~latentlab.api.sample`) that shows itself as a
    grid in Jupyter."""

    def grid(self, cols: int | None = None, tile: int = 256) -> Image:
        """All images tiled row-major, ``cols`` per row (default ceil(sqrt(N))), each at most
        ``tile`` px: uint8 [rows*t, cols*t, 3]."""
        from ..figures import image_grid, resize

        items = list(self)
        if not items:
            raise LatentlabError("an empty batch has no grid")

        def make() -> np.ndarray:
            t = min(int(tile), items[0].G.img_resolution)
            return image_grid(np.stack([resize(p.array, t) for p in items]), cols=cols, pad_value=255)

        return Image(make, {"view": "grid", "names": [p.name for p in items]})

    def render(self, batch: int = 4, *, keep: bool = True) -> list[np.ndarray]:
        """Every image, uint8 [R, R, 3] each, drawing ``batch`` faces per forward pass (equal to
        one-at-a-time drawing within one level). keep: store them in each projection (``p.image``
        does not render again); False for long runs that write each image and let it go."""
        from ..latent import render

        if isinstance(batch, bool) or not isinstance(batch, (int, np.integer)) or batch < 1:
            raise LatentlabError(f"batch must be a positive integer, got {batch!r}")
        items, out = list(self), []
        for start in range(0, len(items), int(batch)):
            group = items[start:start + int(batch)]
            todo = [p for p in group if not p.image.rendered]
            drawn = iter(render(group[0].G, [p.latent for p in todo], batch=int(batch)) if todo else [])
            imgs = [p.array if p.image.rendered else next(drawn) for p in group]
            if keep:
                for p, img in zip(group, imgs):
                    p.image.fill(img)
            out += imgs
        return out

    def save(self, outdir: "str | Path", *, force: bool = False, batch: int = 4, grid_cols: int | None = None,
             grid_tile: int = 256, progress: Any = None) -> list[Path]:
        """Write sampled faces as ``latentlab sample`` does: ``seedNNNN.png`` per face, ``grid.png``
        (``grid_cols`` columns, default ceil(sqrt(N)); tiles of at most ``grid_tile`` px) and
        ``samples.npz`` (``seeds`` [N], ``z`` [N, z_dim], ``ws`` [N, num_ws, w_dim], truncation psi
        and cutoff, noise mode, network, and ``c`` for conditional models). ``batch`` faces are drawn
        per forward pass. Every path is checked first; nothing is overwritten unless ``force``.
        Returns the paths written."""
        from PIL import Image as PILImage

        from ..figures import image_grid
        from ..imageio import refuse_existing, save_image, write_bytes_atomic
        from ..progress import Progress, as_callback
        from ..sampling import class_labels, z_from_seeds

        items = list(self)
        infos = [p.latent.settings.get("sample") for p in items]
        if not items or any(not isinstance(i, dict) for i in infos):
            raise LatentlabError("Batch.save writes sampled faces (from ll.sample); this batch has other latents")
        if isinstance(batch, bool) or not isinstance(batch, (int, np.integer)) or batch < 1:
            raise LatentlabError(f"batch must be a positive integer, got {batch!r}")
        first, G, outdir = infos[0], items[0].G, Path(outdir)
        seeds = [int(i["seed"]) for i in infos]
        pngs = [outdir / f"seed{k:04d}.png" for k in seeds]
        grid_path, npz_path = outdir / "grid.png", outdir / "samples.npz"
        refuse_existing([*pngs, grid_path, npz_path], force)
        tile = min(int(grid_tile), G.img_resolution)
        thumbs = []
        report = as_callback(progress)
        for start in range(0, len(items), int(batch)):
            images = Batch(items[start:start + int(batch)]).render(int(batch), keep=False)
            for img, path in zip(images, pngs[start:start + int(batch)]):
                save_image(img, path, force=True)
                if tile < img.shape[0]:
                    pil = PILImage.fromarray(img if img.shape[2] == 3 else img[:, :, 0])
                    thumbs.append(np.asarray(pil.resize((tile, tile), PILImage.LANCZOS)).reshape(tile, tile, -1))
                else:
                    thumbs.append(img)
            if report is not None:
                report(Progress("sample", min(start + int(batch), len(items)), len(items)))
        save_image(image_grid(np.stack(thumbs), cols=grid_cols or math.ceil(math.sqrt(len(items)))), grid_path,
                   force=True)
        extra = {}
        if G.c_dim > 0:
            extra["c"] = class_labels(first.get("class_idx"), G.c_dim, len(items)).numpy()
        cutoff = first.get("truncation_cutoff")
        buf = io.BytesIO()
        np.savez(buf, seeds=np.asarray(seeds, dtype=np.int64), z=z_from_seeds(seeds, G.z_dim).numpy(),
                 ws=np.concatenate([p.latent.ws.numpy() for p in items]),
                 truncation_psi=np.float32(first["truncation_psi"]),
                 truncation_cutoff=np.int64(-1 if cutoff is None else cutoff),
                 noise_mode=np.str_(first["noise_mode"]), network=np.str_(items[0].network), **extra)
        write_bytes_atomic(npz_path, buf.getvalue(), force=True)
        return [*pngs, grid_path, npz_path]

    def _repr_png_(self) -> bytes:
        return self.grid()._repr_png_()


__all__ = ["Batch", "Frames", "Image", "png_bytes"]
