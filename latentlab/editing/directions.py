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

    def demo_strength(self, default: float = 3.0) -> float:
        """Largest strength worth showing on a slider: the fit's ``demo_strength`` (3 sigma of its
        samples' spread along the direction) when it records a usable one in (0, 100], else default."""
        try:
            value = float((self.meta if isinstance(self.meta, dict) else {}).get("demo_strength") or default)
        except (TypeError, ValueError):
            return default
        return value if 0 < value <= 100 else default

    def save(self, path: "str | Path", *, force: bool = False) -> Path:
        """Write the direction ``.npz`` (format above; atomically, never over an existing file
        unless ``force``). Returns the path."""
        import io

        from ..imageio import write_bytes_atomic
        from .render import refuse

        path = Path(path)
        refuse([path], force)
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
