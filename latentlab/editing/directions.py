"""Latent directions as data: a unit vector in W, the W+ rows it acts on, and where it came from.

File format (``.npz``, no pickles): ``direction`` float32 [w_dim] (unit norm) or [num_ws, w_dim]
(a per-row direction, e.g. from a published W+ edit), ``name`` str, ``layers`` str (a layer-range
spec such as ``"0-5"``, ``"coarse"`` or ``"64-1024"``; see :mod:`latentlab.editing.layers`),
``model`` str (the generator it was fitted on, empty when unknown) and ``meta`` (JSON text: method,
samples, validation accuracy, ...). A bare ``.npy`` vector is accepted too, for published
directions (InterFaceGAN, GANSpace exports).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import LatentlabError
from .mixing import apply_offset


@dataclass
class Direction:
    """vector: [w_dim] or [num_ws, w_dim]; layers: default layer-range spec; meta: JSON-able."""

    name: str
    vector: np.ndarray
    layers: str = "all"
    model: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    def sigma(self) -> float | None:
        """One sigma of this direction in W units: the spread of the generator's untruncated W along
        it, or None when the file records no spread (bare ``.npy`` vectors, components).

        A fit records ``projection_std``, the spread of the samples it was fitted on, and their
        ``truncation_psi``; truncation pulls every sample toward the mean by psi, so the untruncated
        spread is ``projection_std / truncation_psi`` (smile on ffhq-mobile: 0.579 / 0.7 = 0.83).
        Strengths written in sigma (``--smile 1s``, ``edit(..., unit="sigma")``) use this.
        """
        meta = self.meta if isinstance(self.meta, dict) else {}
        try:
            std = float(meta.get("projection_std") or 0)
            psi = float(1.0 if meta.get("truncation_psi") is None else meta["truncation_psi"])
        except (TypeError, ValueError):
            return None
        if not (0 < std <= 100 and 0 < psi <= 1.5):  # also rejects nan / inf from a hostile file
            return None
        return std / psi

    def demo_strength(self, default: float = 3.0) -> float:
        """Largest strength worth showing on a slider, in W units: 2 sigma (:meth:`sigma`, rounded
        to 0.1; 95% of the generator's faces lie within it, and further out a projected photo's
        head-pose edit breaks up) when the file records a spread, else the file's
        ``demo_strength`` when usable in (0, 100], else default."""
        sigma = self.sigma()
        if sigma is not None:
            return min(round(2.0 * sigma, 1), 100.0)
        try:
            value = float((self.meta if isinstance(self.meta, dict) else {}).get("demo_strength") or default)
        except (TypeError, ValueError):
            return default
        return value if 0 < value <= 100 else default

    def save(self, path: "str | Path", *, force: bool = False) -> Path:
        """Write the direction ``.npz`` (format above; atomically, never over an existing file
        unless ``force``). Returns the path."""
        import io

        from ..imageio import refuse_existing, write_bytes_atomic

        path = Path(path)
        refuse_existing([path], force)
        buf = io.BytesIO()
        np.savez(buf, direction=np.asarray(self.vector, np.float32), name=np.array(self.name),
                 layers=np.array(self.layers), model=np.array(self.model),
                 meta=np.array(json.dumps(self.meta, sort_keys=True)))
        return write_bytes_atomic(path, buf.getvalue(), force=force)


def load_direction(path: "str | Path", *, name: str | None = None) -> Direction:
    """Read a direction ``.npz`` (format above) or a bare ``.npy`` vector. One-line errors."""
    path = Path(path)
    if not path.is_file():
        raise LatentlabError(f"{path}: no such direction file")
    try:
        if path.suffix.lower() == ".npy":
            vec = np.load(path, allow_pickle=False)
            d = Direction(name or path.stem, np.asarray(vec, np.float32).squeeze(), meta={"source": str(path)})
        else:
            with np.load(path, allow_pickle=False) as z:
                if "direction" not in z.files:
                    raise LatentlabError(f"{path}: no 'direction' array")
                meta = json.loads(str(z["meta"])) if "meta" in z.files else {}
                d = Direction(name or (str(z["name"]) if "name" in z.files else path.stem),
                              np.asarray(z["direction"], np.float32),
                              str(z["layers"]) if "layers" in z.files else "all",
                              str(z["model"]) if "model" in z.files else "", meta)
    except LatentlabError:
        raise
    except (OSError, ValueError, json.JSONDecodeError) as exc:
        raise LatentlabError(f"{path}: not a readable direction file ({' '.join(str(exc).split())})") from None
    if d.vector.ndim not in (1, 2) or not np.all(np.isfinite(d.vector)):
        raise LatentlabError(f"{path}: direction must be a finite [w_dim] or [num_ws, w_dim] array, "
                             f"got shape {list(d.vector.shape)}")
    return d


#: ``apply_direction(ws, direction, strength, rows=None)``: ``ws + strength * direction`` on the given
#: W+ rows; the same function as :func:`latentlab.editing.mixing.apply_offset` (one implementation).
apply_direction = apply_offset
