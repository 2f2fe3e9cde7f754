"""The one latent value: everything needed to render a face and put it back into its photo."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np
import torch

from ..errors import LatentlabError
from ..faces.align import FaceTransform
from ..faces.photo import Photo
from .tuning import Tuning

#: ``Latent.replace(tuning=KEEP)``-style sentinel meaning "leave this field as it is".
KEEP: Any = object()


def _cpu32(t: torch.Tensor) -> torch.Tensor:
    t = t.detach()
    if t.device.type != "cpu" or t.dtype != torch.float32:
        t = t.to("cpu", torch.float32)
    return t.contiguous()


@dataclass(frozen=True, eq=False)
class Latent:
    """A face as a W+ latent, with what renders it and what puts it back into its photo.

    * ``ws``: float32 [1, num_ws, w_dim] (CPU);
    * ``noise``: the generator's noise maps it was found with, name -> float32 [1, 1, h, w] (CPU;
      empty: the generator's constant buffers);
    * ``transform``: the alignment (aligned pixel -> photo pixel) or None (a sample);
    * ``photo``: the photo itself (pixels and aligned crop, kept in memory, never written into a
      latent file) or None;
    * ``tuning``: its pivotal tuning (:class:`~latentlab.latent.Tuning`) or None: the generator
      that draws it is then the base one plus that delta (:func:`latentlab.latent.generator_for`);
    * ``network``: the name of the generator it belongs to; ``name``: a short name for output files;
    * ``settings``: JSON-able record of how it was made (projector settings, preset, photo path,
      seed, ...) with every later operation in order under ``"history"``;
    * ``metrics``: JSON-able figures of how close it is to its photo (from inversion), or empty.

    A Latent is a value: every operation returns a new one (:meth:`replace`, :meth:`with_op`);
    :func:`latentlab.latent.save_latent` writes it, :func:`latentlab.latent.load_latent` reads it.
    """

    ws: torch.Tensor
    noise: Mapping[str, torch.Tensor] = field(default_factory=dict)
    transform: FaceTransform | None = None
    photo: Photo | None = None
    tuning: Tuning | None = None
    network: str | None = None
    name: str = "latent"
    settings: Mapping[str, Any] = field(default_factory=dict)
    metrics: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        ws = self.ws
        if not isinstance(ws, torch.Tensor) or ws.ndim != 3 or ws.shape[0] != 1:
            shape = list(ws.shape) if isinstance(ws, torch.Tensor) else type(ws).__name__
            raise LatentlabError(f"a latent's ws must be [1, num_ws, w_dim], got {shape}")
        if not bool(torch.isfinite(ws).all()):
            raise LatentlabError("a latent's ws holds NaN or infinite values")
        object.__setattr__(self, "ws", _cpu32(ws))
        object.__setattr__(self, "noise", {k: _cpu32(v).reshape(1, 1, *v.shape[-2:]) for k, v in self.noise.items()})
        object.__setattr__(self, "settings", dict(self.settings))
        object.__setattr__(self, "metrics", dict(self.metrics))
        if self.photo is not None and self.transform is None:
            object.__setattr__(self, "transform", self.photo.transform)

    # -------------------------------------------------------------- shape
    @property
    def num_ws(self) -> int:
        return int(self.ws.shape[1])

    @property
    def w_dim(self) -> int:
        return int(self.ws.shape[2])

    # -------------------------------------------------------------- record
    @property
    def history(self) -> list[dict[str, Any]]:
        """The operations that made this latent from its projection or sample, oldest first."""
        return list(self.settings.get("history", []))

    @property
    def interrupted(self) -> bool:
        """True when the inversion that made it was stopped early (it holds the best so far)."""
        return bool(self.settings.get("interrupted", False))

    @property
    def can_paste(self) -> bool:
        """True when the photo and the alignment are known (results can be pasted back)."""
        return self.photo is not None and self.transform is not None

    @property
    def aligned(self) -> np.ndarray | None:
        """The aligned photo it was fitted to, uint8 [R, R, 3], or None."""
        return None if self.photo is None else self.photo.aligned

    # -------------------------------------------------------------- new values
    def replace(self, **changes: Any) -> "Latent":
        """A copy with fields changed (``KEEP`` leaves one as it is)."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not KEEP})

    def with_op(self, ws: torch.Tensor, op: Mapping[str, Any], *, name: str | None = None,
                noise: Mapping[str, torch.Tensor] | None = None, tuning: Any = KEEP) -> "Latent":
        """A new latent on the same photo with ``ws`` [1, num_ws, w_dim] (same shape as this one's),
        ``op`` (JSON-able) appended to :attr:`history` and recorded as the last ``edit``; ``noise``
        and ``tuning`` replace this one's when given. Its metrics are dropped (they described
        this latent, not the new one)."""
        if not isinstance(ws, torch.Tensor) or tuple(ws.shape) != tuple(self.ws.shape):
            shape = list(ws.shape) if isinstance(ws, torch.Tensor) else type(ws).__name__
            raise LatentlabError(f"ws must be {list(self.ws.shape)} like the latent it edits, got {shape}")
        settings = dict(self.settings)
        settings["history"] = [*settings.get("history", []), dict(op)]
        settings["edit"] = dict(op)
        settings.pop("interrupted", None)
        return self.replace(ws=ws, name=name or self.name, settings=settings, metrics={},
                            noise=self.noise if noise is None else noise, tuning=tuning)

    def __repr__(self) -> str:
        ops = ", ".join(h.get("op", "?") for h in self.history) or "none"
        photo = "yes" if self.photo is not None else "no"
        return (f"<Latent {self.name!r}: ws {list(self.ws.shape)}, network {self.network!r}, photo {photo}, "
                f"tuned {self.tuning is not None}, operations: {ops}>")


__all__ = ["KEEP", "Latent"]
