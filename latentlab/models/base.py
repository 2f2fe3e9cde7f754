"""The generator interface that every model family implements.

Vocabulary follows NVIDIA's stylegan2-ada-pytorch / stylegan3:

* ``G.mapping(z, c, truncation_psi, truncation_cutoff)`` -> ``ws`` [N, num_ws, w_dim]
* ``G.synthesis(ws, noise_mode)`` -> images [N, img_channels, H, W], nominally in [-1, 1]
* ``G.w_avg`` [w_dim]: the average W used for truncation and as the projection start.

A family subclasses :class:`Generator`, implements ``_map`` (z -> w, without truncation or
broadcast) and ``synthesis``, and describes its W+ layout with ``ws_resolutions`` (the
feature resolution each W+ row controls). ``config`` holds the constructor arguments as plain
JSON data, so ``family`` + ``config`` + ``state_dict()`` rebuild the model exactly.
"""

from __future__ import annotations

import contextlib
from typing import Any, ClassVar, Iterator

import torch
from torch import nn

from ..errors import ShapeError

NOISE_MODES = ("const", "random", "none")


class Generator(nn.Module):
    """Base class: a mapping network z -> W and a synthesis network W+ -> image."""

    family: ClassVar[str] = "base"
    #: Peak Adam learning rate for projection in W / W+ (NVIDIA's projector uses 0.1 for StyleGAN2).
    projection_lr: ClassVar[float] = 0.1

    # Set by subclasses in __init__.
    z_dim: int
    c_dim: int
    w_dim: int
    num_ws: int
    img_resolution: int
    img_channels: int
    config: dict[str, Any]

    # ------------------------------------------------------------------ submodules
    # Families register their networks as ``self._modules["mapping"]`` / ``["synthesis"]`` (so
    # state-dict names read ``mapping.fc0.weight``) because ``mapping``/``synthesis`` are also the
    # interface methods; the average W lives in the mapping network as ``mapping.w_avg``.
    @property
    def mapping_network(self) -> nn.Module:
        return self._modules["mapping"]

    @property
    def synthesis_network(self) -> nn.Module:
        return self._modules["synthesis"]

    @property
    def w_avg(self) -> torch.Tensor:
        """The average W [w_dim] (the live ``mapping.w_avg`` buffer). A family without a
        ``mapping`` submodule registers its own ``w_avg`` buffer, which nn.Module then finds."""
        mapping = self._modules.get("mapping")
        if mapping is None:
            raise AttributeError("w_avg")  # falls through to nn.Module.__getattr__ (own buffer)
        return mapping.w_avg

    # ------------------------------------------------------------------ layout
    @property
    def ws_resolutions(self) -> list[int]:
        """Feature resolution (pixels) that each W+ row controls, length ``num_ws``."""
        raise NotImplementedError

    def ws_layer_names(self) -> list[str]:
        """Human-readable name of the layer(s) each W+ row feeds, length ``num_ws``."""
        return [f"row{i}" for i in range(self.num_ws)]

    # ------------------------------------------------------------------ mapping
    def _map(self, z: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
        """Map z [N, z_dim] (and labels c [N, c_dim]) to w [N, w_dim]. No truncation."""
        raise NotImplementedError

    def mapping(
        self,
        z: torch.Tensor,
        c: torch.Tensor | None = None,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
    ) -> torch.Tensor:
        """z [N, z_dim] -> ws [N, num_ws, w_dim], truncated towards ``w_avg``.

        Truncation applies ``w_avg + psi * (w - w_avg)`` to rows ``[0, truncation_cutoff)``
        (all rows when the cutoff is None), as NVIDIA's mapping network does.
        """
        if z.ndim != 2 or z.shape[1] != self.z_dim:
            raise ShapeError(f"z must have shape [N, {self.z_dim}], got {list(z.shape)}")
        if self.c_dim > 0:
            if c is None or c.shape != (z.shape[0], self.c_dim):
                raise ShapeError(f"this generator is conditional: c must have shape [N, {self.c_dim}]")
        w = self._map(z, c)
        ws = w.unsqueeze(1).repeat(1, self.num_ws, 1)
        if truncation_psi != 1:
            ws = self.truncate(ws, truncation_psi, truncation_cutoff)
        return ws

    def truncate(
        self, ws: torch.Tensor, truncation_psi: float, truncation_cutoff: int | None = None
    ) -> torch.Tensor:
        """Apply the truncation trick to ws [N, num_ws, w_dim]; returns a new tensor."""
        w_avg = self.w_avg.to(ws.dtype)
        cutoff = self.num_ws if truncation_cutoff is None else int(truncation_cutoff)
        out = ws.clone()
        out[:, :cutoff] = w_avg.lerp(ws[:, :cutoff], truncation_psi)
        return out

    # ------------------------------------------------------------------ synthesis
    def synthesis(self, ws: torch.Tensor, noise_mode: str = "const") -> torch.Tensor:
        """ws [N, num_ws, w_dim] -> images [N, img_channels, img_resolution, img_resolution]."""
        raise NotImplementedError

    def synthesis_features(self, ws: torch.Tensor, resolution: int, noise_mode: str = "const") -> torch.Tensor:
        """The feature map [N, C, r, r] of the synthesis block at ``resolution`` (one of
        :attr:`feature_resolutions`), computed without the blocks above it."""
        raise NotImplementedError

    @property
    def feature_resolutions(self) -> list[int]:
        """Resolutions at which :meth:`synthesis_features` can stop."""
        return []

    def check_ws(self, ws: torch.Tensor) -> None:
        """Raise a clear ShapeError (a ValueError) when ws is not [N, num_ws, w_dim]."""
        if ws.ndim != 3 or ws.shape[1] != self.num_ws or ws.shape[2] != self.w_dim:
            raise ShapeError(
                f"ws must have shape [N, {self.num_ws}, {self.w_dim}] for this generator, "
                f"got {list(ws.shape)}"
            )

    def forward(
        self,
        z: torch.Tensor,
        c: torch.Tensor | None = None,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
        noise_mode: str = "const",
    ) -> torch.Tensor:
        ws = self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)
        return self.synthesis(ws, noise_mode=noise_mode)

    # ------------------------------------------------------------------ noise
    def noise_buffers(self) -> dict[str, torch.Tensor]:
        """The per-layer constant noise buffers used with ``noise_mode='const'``.

        Returns the live buffer tensors (name -> tensor [H, W]); a projector may overwrite
        them in place or optimise them. Empty for families without noise inputs.
        """
        return {}

    # ------------------------------------------------------------------ misc
    @property
    def device(self) -> torch.device:
        return self.w_avg.device

    def describe(self) -> dict[str, Any]:
        """Layout summary (JSON-able) for ``latentlab models info``."""
        return {
            "family": self.family,
            "z_dim": self.z_dim,
            "c_dim": self.c_dim,
            "w_dim": self.w_dim,
            "num_ws": self.num_ws,
            "img_resolution": self.img_resolution,
            "img_channels": self.img_channels,
            "num_noise_buffers": len(self.noise_buffers()),
            "ws_rows": [
                {"row": i, "resolution": r, "layers": n}
                for i, (r, n) in enumerate(zip(self.ws_resolutions, self.ws_layer_names()))
            ],
        }


@contextlib.contextmanager
def override_noise(G: nn.Module, noise: "dict[str, torch.Tensor]") -> Iterator[None]:
    """Temporarily replace G's constant noise buffers by ``noise`` (name -> [H, W] or [N, 1, H, W]);
    names are those of :meth:`Generator.noise_buffers`."""
    owners = []
    modules = dict(G.named_modules())
    for name, value in noise.items():
        mod_name, _, buf = name.rpartition(".")
        mod = modules[mod_name]
        owners.append((mod, buf, mod._buffers[buf]))
        mod._buffers[buf] = value
    try:
        yield
    finally:
        for mod, buf, old in reversed(owners):
            mod._buffers[buf] = old
