"""Figures made of images: resizing, strips, grids (uint8 [H, W, 3] pixels in, pixels out)."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from .errors import LatentlabError


def resize(image: np.ndarray, size: int) -> np.ndarray:
    """Square uint8 image -> size x size (area when shrinking, Lanczos when growing)."""
    import cv2

    if image.shape[0] == size and image.shape[1] == size:
        return image
    interp = cv2.INTER_AREA if image.shape[0] > size else cv2.INTER_LANCZOS4
    return cv2.resize(image, (size, size), interpolation=interp)


def fit_height(image: np.ndarray, height: int) -> np.ndarray:
    """uint8 [H, W, 3] -> [height, round(W * height / H), 3], aspect ratio kept."""
    import cv2

    h, w = image.shape[:2]
    if h == height:
        return image
    interp = cv2.INTER_AREA if h > height else cv2.INTER_LANCZOS4
    return cv2.resize(image, (max(1, round(w * height / h)), height), interpolation=interp)


def thumbnail(image: np.ndarray, size: int) -> np.ndarray:
    """uint8 [H, W, 3] shrunk (never grown) so that its longer side is at most ``size``."""
    import cv2

    h, w = image.shape[:2]
    if max(h, w) <= size:
        return image
    s = size / max(h, w)
    return cv2.resize(image, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)


def letterbox(image: np.ndarray, size: int, fill: int = 255) -> np.ndarray:
    """``image`` fitted into a size x size tile (shrunk to fit, centred on ``fill``)."""
    if image.shape[0] == image.shape[1]:
        return resize(image, size)
    small = thumbnail(image, size)
    tile = np.full((size, size, 3), fill, np.uint8)
    y, x = (size - small.shape[0]) // 2, (size - small.shape[1]) // 2
    tile[y:y + small.shape[0], x:x + small.shape[1]] = small[..., :3]
    return tile


def grid(rows: Sequence[Sequence[np.ndarray | None]], gap: int = 4, fill: int = 255) -> np.ndarray:
    """Tile equally sized uint8 [S, S, 3] images (None = blank cell), row by row, with ``gap`` px
    of ``fill`` between them."""
    cells = [c for r in rows for c in r if c is not None]
    if not cells:
        raise LatentlabError("nothing to tile")
    s = cells[0].shape[0]
    n_rows, n_cols = len(rows), max(len(r) for r in rows)
    out = np.full((n_rows * s + (n_rows - 1) * gap, n_cols * s + (n_cols - 1) * gap, 3), fill, np.uint8)
    for i, r in enumerate(rows):
        for j, c in enumerate(r):
            if c is not None:
                out[i * (s + gap):i * (s + gap) + s, j * (s + gap):j * (s + gap) + s] = c
    return out


def strip(images: Sequence[np.ndarray], size: int = 256, gap: int = 4) -> np.ndarray:
    """Images side by side at size x size (non-square ones letterboxed) with white gaps."""
    return grid([[letterbox(im, size) for im in images]], gap=gap)


def side_by_side(images: Sequence[np.ndarray], height: int = 512, gap: int = 0) -> np.ndarray:
    """Images scaled to one height and put side by side (``gap`` px of white between)."""
    tiles = [fit_height(im, height) for im in images]
    parts: list[np.ndarray] = []
    for t in tiles:
        if parts and gap:
            parts.append(np.full((height, gap, 3), 255, np.uint8))
        parts.append(t[..., :3])
    return np.concatenate(parts, axis=1)


def stack(images: Sequence[np.ndarray], gap: int = 4) -> np.ndarray:
    """Images one above the other, left-aligned, padded with white to the widest."""
    width = max(im.shape[1] for im in images)
    rows: list[np.ndarray] = []
    for im in images:
        if rows:
            rows.append(np.full((gap, width, 3), 255, np.uint8))
        pad = np.full((im.shape[0], width - im.shape[1], 3), 255, np.uint8)
        rows.append(np.concatenate([im[..., :3], pad], axis=1))
    return np.concatenate(rows, axis=0)


def image_grid(images: np.ndarray, cols: int | None = None, pad_value: int = 0) -> np.ndarray:
    """Tile uint8 images [N, H, W, C] into one [rows*H, cols*W, C] array, row-major, without gaps
    (``latentlab sample``'s grid.png). ``cols`` defaults to ``ceil(sqrt(N))``; empty cells are
    ``pad_value``."""
    if images.ndim != 4:
        raise LatentlabError(f"images must be [N, H, W, C], got {list(images.shape)}")
    n, h, w, c = images.shape
    if n == 0:
        raise LatentlabError("a grid needs at least one image")
    cols = max(1, min(int(cols) if cols else math.ceil(math.sqrt(n)), n))
    rows = math.ceil(n / cols)
    out = np.full((rows * h, cols * w, c), pad_value, dtype=images.dtype)
    for k in range(n):
        r, q = divmod(k, cols)
        out[r * h:(r + 1) * h, q * w:(q + 1) * w] = images[k]
    return out


__all__ = ["fit_height", "grid", "image_grid", "letterbox", "resize", "side_by_side", "stack", "strip", "thumbnail"]
