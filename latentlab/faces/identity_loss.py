"""A differentiable identity loss for projection and pivotal tuning: ``1 - cos`` of face-identity
embeddings of the render and the target photo.

The embedding network is FaceRes (:mod:`latentlab.faces.faceres`, a MobileNet face descriptor of
the HSE family, independent of dlib and of the projector's VGG). The face is located once per
target with dlib's 68 landmarks on the aligned target; the render is cropped with the same points
(it is drawn in the same FFHQ alignment), so the crop is a fixed warp and the loss is differentiable
with respect to the render.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from ..errors import LatentlabError


class IdentityLoss:
    """``loss(render [N,3,H,W], target [N,3,H',W']) -> [N]`` in [0, 2]; images in [-1, 1].

    Renders at another size than the target are resized to the target's size first. The target's
    landmarks and embedding are computed on the first call for that target tensor and kept.
    """

    def __init__(self, device: "torch.device | str") -> None:
        from .faceres import load_faceres

        self.model = load_faceres(device)
        self._key: tuple | None = None
        self._points: torch.Tensor | None = None
        self._target_emb: torch.Tensor | None = None

    def _prepare(self, target: torch.Tensor) -> None:
        from ..imageio import tensor_to_images
        from .faceres import identity_embedding_faceres
        from .landmarks import NoFaceError, detect_landmarks

        key = (target.data_ptr(), tuple(target.shape), target._version)
        if key == self._key:
            return
        points = []
        for i, img in enumerate(tensor_to_images(target.detach().float().clamp(-1, 1).cpu())):
            try:
                face = detect_landmarks(img, source=f"aligned photo {i}")
            except NoFaceError:
                raise LatentlabError("identity loss: no face found in the aligned photo "
                                     "(set the identity weight to 0)") from None
            points.append(np.asarray(face.landmarks, np.float64))
        self._points = torch.from_numpy(np.stack(points))
        with torch.no_grad():
            self._target_emb = identity_embedding_faceres(target.float(), self._points, model=self.model)
        self._key = key

    def __call__(self, render: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        self._prepare(target)
        from .faceres import identity_embedding_faceres

        if render.shape[-1] != target.shape[-1]:
            render = torch.nn.functional.interpolate(render, size=target.shape[-2:], mode="bilinear",
                                                     align_corners=False, antialias=render.shape[-1] > target.shape[-1])
        emb = identity_embedding_faceres(render.float(), self._points, model=self.model)
        return 1.0 - (emb * self._target_emb).sum(dim=1)


def make_identity_loss(device: "torch.device | str") -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """An :class:`IdentityLoss` on ``device``."""
    return IdentityLoss(device)


__all__ = ["IdentityLoss", "make_identity_loss"]
