"""Drag editing: move image content from handle points to target points by optimising the latent.

Two ways to follow the handles, both built from their papers' descriptions:

* ``follow="line"`` (the default). Each handle advances along the straight line to its target in
  sub-goals ``line_step`` px apart. At every step the loss is the mean L1 distance between the
  features on the disc of radius r1 around each handle's current sub-goal and the *initial*
  features on the same disc around the handle (a fixed template, so the content under the handle
  is copied to the sub-goal); a sub-goal counts as reached when that distance has fallen to
  ``line_accept`` of its value when the sub-goal was set, or after ``line_budget`` steps. A handle
  that has arrived (or starts within ``stop_distance`` of its target) keeps its term at the
  target, so that the other handles' moves do not carry its content away. No point tracking: the
  handle cannot jump to a look-alike feature or slide along an edge, the failure that leaves
  DragGAN's tracked handles at their targets while the content stays short of them (FreeDrag,
  Ling et al. 2023, argues the same and also drops tracking). Measured on DragGAN's face-landmark
  protocol in ``benchmarks/README.md``.
* ``follow="track"``: the method of DragGAN (Pan et al., SIGGRAPH 2023). **Motion supervision**:
  for each handle p with target t, d = (t - p) / |t - p|; the loss is the mean L1 distance between
  the features at q + d and the *stop-gradient* features at q, over the pixels q of the disc of
  radius r1 around p. **Point tracking** after each step: the handle moves to the pixel, within a
  square of radius r2 around it, whose features are nearest (L1) to the *initial* handle's
  features. A handle within ``stop_distance`` of its target adds no motion loss; the drag also
  stops when no handle has moved for ``patience`` steps.

Common to both: the features are those of one synthesis block (``feature_resolution``, 128 px by
default); ``mask_weight`` times the L1 distance between the current and the initial features
outside the editable mask is added to the loss; only the W+ rows that feed the coarse layers move
(up to 32 px by default: 6 of StyleGAN2-1024's 18 rows, 10 of MobileStyleGAN's 23), with Adam; the
latent's tuning delta stays (a drag of a pivotal-tuned photo is drawn by its tuned generator). The
drag stops when every handle has arrived (on the line: at its target; tracked: within
``stop_distance`` of it), or after ``max_steps``.

Points are (x, y) pixel coordinates of the aligned image at the generator's resolution R (pixel
centres on integers); r1, r2, ``line_step`` and the stop distance are given at 512 px, as DragGAN
states them, and scaled by R / 512. Features are read at sub-pixel positions by bilinear lookup on
the block's own grid, so the full-resolution feature map (1 GB at 1024 px) is never built; each
step runs the generator only up to the feature block.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import LatentlabError
from ..latent import Latent, generator_for
from ..models.base import Generator, override_noise
from ..progress import CancelArg, Progress, ProgressArg, as_callback, cancelled

#: Most handle/target pairs one drag takes (DragGAN's face benchmark uses 68).
MAX_POINTS = 128


@dataclass(frozen=True)
class DragConfig:
    """Every setting of a drag. Distances are pixels at 512 px (scaled by R / 512)."""

    #: how handles advance: "line" (sub-goals along the straight line, a fixed template) or "track"
    #: (DragGAN's motion supervision and point tracking); module docstring
    follow: str = "line"
    #: the synthesis block whose features are supervised and tracked; None: 128 px, or half the
    #: image for a generator of 128 px or less
    feature_resolution: int | None = None
    r1: float = 3.0  # radius of the motion-supervision (and template) disc around each handle
    r2: float = 12.0  # half side of the point-tracking search square ("track")
    line_step: float = 2.0  # distance between a handle's successive sub-goals ("line")
    line_budget: int = 10  # most steps spent on one sub-goal ("line")
    line_accept: float = 0.5  # a sub-goal is reached when its template distance falls to this share ("line")
    lr: float = 2e-3  # Adam learning rate on the optimised W+ rows
    #: W+ rows optimised: a layer-range spec (:mod:`latentlab.editing.layers`); None: every row
    #: feeding layers of at most ``max_row_resolution`` px
    rows: str | None = None
    max_row_resolution: int = 32
    mask_weight: float = 20.0  # weight of the feature L1 outside the editable mask
    #: a handle this close to its target counts as arrived; None: 1 px for up to 5 handles, else 2
    stop_distance: float | None = None
    max_steps: int = 200
    patience: int = 20  # stop when no handle has moved for this many steps (0: never; "track")
    preview_every: int = 10  # a full-resolution preview image every this many steps (0: none)

    def __post_init__(self) -> None:
        if self.follow not in ("line", "track"):
            raise LatentlabError(f"drag follow must be line or track, got {self.follow!r}")
        if not (isinstance(self.line_accept, (int, float)) and 0 <= self.line_accept < 1):
            raise LatentlabError(f"drag line_accept must be a number in [0, 1), got {self.line_accept!r}")
        for name in ("r1", "r2", "lr", "mask_weight", "line_step"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0) or (name != "mask_weight" and v == 0):
                raise LatentlabError(f"drag {name} must be a positive finite number, got {v!r}")
        if self.stop_distance is not None and not (math.isfinite(self.stop_distance) and self.stop_distance > 0):
            raise LatentlabError(f"drag stop distance must be a positive number, got {self.stop_distance!r}")
        for name, lo in (("max_steps", 1), ("patience", 0), ("preview_every", 0), ("feature_resolution", 4),
                         ("max_row_resolution", 4), ("line_budget", 1)):
            v = getattr(self, name)
            if v is None and name == "feature_resolution":
                continue
            if isinstance(v, bool) or not isinstance(v, int) or v < lo:
                raise LatentlabError(f"drag {name} must be an integer >= {lo}, got {v!r}")


@dataclass
class DragResult:
    """What a drag did: the handles' positions after each step ([steps + 1, n, 2], aligned pixels),
    the targets [n, 2], steps run, why it stopped, seconds."""

    handles: np.ndarray
    targets: np.ndarray
    steps: int
    stopped: str
    seconds: float
    history: list[dict[str, float]] = field(default_factory=list)

    @property
    def final(self) -> np.ndarray:
        """The handles where the drag left them [n, 2]."""
        return self.handles[-1]

    def distances(self) -> np.ndarray:
        """Each handle's distance to its target at the end [n] (aligned pixels)."""
        return np.linalg.norm(self.final - self.targets, axis=1)


def check_points(points: Any, resolution: int, *, what: str = "points") -> tuple[np.ndarray, np.ndarray]:
    """``[((hx, hy), (tx, ty)), ...]`` (or an array [n, 2, 2]) -> (handles [n, 2], targets [n, 2])
    float64, each inside [0, resolution) and finite; one-line errors for anything else (no pair,
    more than :data:`MAX_POINTS`, NaN, outside the image, a handle on its target is allowed)."""
    try:
        arr = np.asarray(points, dtype=np.float64)
    except (TypeError, ValueError):
        raise LatentlabError(f"{what} must be pairs of (x, y) points: [((hx, hy), (tx, ty)), ...]") from None
    if arr.size == 0:
        raise LatentlabError(f"{what}: give at least one handle and its target")
    if arr.ndim != 3 or arr.shape[1:] != (2, 2):
        raise LatentlabError(f"{what} must be pairs of (x, y) points: [((hx, hy), (tx, ty)), ...], "
                             f"got an array of shape {list(arr.shape)}")
    if arr.shape[0] > MAX_POINTS:
        raise LatentlabError(f"{what}: {arr.shape[0]} pairs; at most {MAX_POINTS} are accepted")
    if not np.isfinite(arr).all():
        raise LatentlabError(f"{what} hold NaN or infinite coordinates")
    lo, hi = -0.5, resolution - 0.5
    bad = (arr < lo) | (arr > hi)
    if bad.any():
        i = int(np.argwhere(bad.any(axis=(1, 2)))[0][0])
        raise LatentlabError(f"{what}: pair {i + 1} ({arr[i, 0].tolist()} > {arr[i, 1].tolist()}) lies outside the "
                             f"{resolution} x {resolution} image")
    return arr[:, 0].copy(), arr[:, 1].copy()


def check_mask(mask: Any, resolution: int) -> np.ndarray | None:
    """The editable region as bool [R, R] (True: may move), or None; one line for a wrong size."""
    if mask is None:
        return None
    m = np.asarray(mask)
    if m.ndim == 3 and m.shape[2] in (1, 3, 4):
        m = m[..., 0]
    if m.shape != (resolution, resolution):
        raise LatentlabError(f"the mask is {m.shape[1] if m.ndim > 1 else '?'}x{m.shape[0]} px; it must be "
                             f"{resolution}x{resolution} like the aligned image")
    m = m.astype(np.float64) > (0.5 if m.dtype.kind == "f" else 127 if m.dtype == np.uint8 else 0)
    if not m.any():
        raise LatentlabError("the mask allows nothing to move (it is empty)")
    return m


def drag_rows(G: Generator, config: DragConfig) -> list[int]:
    """The W+ rows a drag optimises for G (see :attr:`DragConfig.rows`)."""
    if config.rows:
        from .layers import parse_layers

        return parse_layers(config.rows, G)
    rows = [i for i, r in enumerate(G.ws_resolutions) if r <= config.max_row_resolution]
    if not rows:
        raise LatentlabError(f"no W+ row of this model feeds layers of {config.max_row_resolution} px or less")
    return rows


def _grid(points: torch.Tensor, resolution: int) -> torch.Tensor:
    """(x, y) image pixel coordinates [..., 2] -> grid_sample coordinates in [-1, 1]
    (align_corners=False: pixel centre i sits at (i + 0.5) / R)."""
    return (points + 0.5) / resolution * 2 - 1


def sample_features(features: torch.Tensor, points: torch.Tensor, resolution: int) -> torch.Tensor:
    """Bilinear features at image points: features [1, C, h, w], points [n, 2] (x, y in pixels of
    the R x R image) -> [n, C]. Points between feature pixels are interpolated; gradients flow to
    the features."""
    grid = _grid(points.to(features.dtype), resolution).view(1, 1, -1, 2)
    out = F.grid_sample(features, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return out[0, :, 0].t()


def _disc(radius: float, device: torch.device) -> torch.Tensor:
    """Integer pixel offsets within ``radius`` of the origin [k, 2] (x, y), the origin included."""
    r = int(math.floor(radius))
    ys, xs = torch.meshgrid(torch.arange(-r, r + 1), torch.arange(-r, r + 1), indexing="ij")
    off = torch.stack([xs.flatten(), ys.flatten()], dim=1).float()
    return off[off.norm(dim=1) <= radius + 1e-6].to(device)


def _square(radius: float, device: torch.device) -> torch.Tensor:
    r = int(math.floor(radius))
    ys, xs = torch.meshgrid(torch.arange(-r, r + 1), torch.arange(-r, r + 1), indexing="ij")
    return torch.stack([xs.flatten(), ys.flatten()], dim=1).float().to(device)


def track(features: torch.Tensor, handles: torch.Tensor, initial: torch.Tensor, radius: float,
          resolution: int) -> torch.Tensor:
    """Point tracking: each handle [n, 2] moves to the pixel within the square of half side
    ``radius`` around it whose features (bilinear, [1, C, h, w]) are nearest in L1 to its
    ``initial`` features [n, C] (the first such pixel in row order on a tie). Returns the new
    handles [n, 2] (kept inside the image)."""
    square = _square(radius, handles.device)  # [k, 2]
    k, c = square.shape[0], features.shape[1]
    per_chunk = max(1, (1 << 22) // (k * c))  # handles per lookup: at most 4M feature values at once
    out = []
    for s in range(0, handles.shape[0], per_chunk):
        h = handles[s:s + per_chunk]
        cand = (h.round()[:, None] + square[None]).clamp(0, resolution - 1)  # [m, k, 2]
        f = sample_features(features, cand.reshape(-1, 2), resolution).reshape(h.shape[0], k, c)
        d = (f - initial[s:s + per_chunk, None]).abs().sum(dim=2)  # [m, k]
        out.append(cand[torch.arange(h.shape[0]), d.argmin(dim=1)])
    return torch.cat(out)


def motion_loss(features: torch.Tensor, handles: torch.Tensor, targets: torch.Tensor, disc: torch.Tensor,
                resolution: int) -> torch.Tensor:
    """Motion supervision, summed over the handles [m, 2] and their targets [m, 2]: for each, the mean
    L1 between the features at q + d and the stop-gradient features at q over the disc offsets
    ``disc`` [k, 2] around the handle, d the unit step toward the target."""
    d = (targets - handles) / (targets - handles).norm(dim=1, keepdim=True)  # [m, 2]
    q = handles[:, None] + disc[None]  # [m, k, 2]
    m, k = q.shape[:2]
    f_q = sample_features(features.detach(), q.reshape(-1, 2), resolution)
    f_qd = sample_features(features, (q + d[:, None]).reshape(-1, 2), resolution)
    return (f_qd - f_q).abs().reshape(m, k, -1).mean(dim=(1, 2)).sum()


def template_distance(features: torch.Tensor, points: torch.Tensor, template: torch.Tensor, disc: torch.Tensor,
                      resolution: int) -> torch.Tensor:
    """For each point [n, 2], the mean L1 distance between the features on the disc offsets ``disc``
    [k, 2] around it and ``template`` [n, k, C] (the features once read on the same disc) -> [n].
    Gradients flow to ``features``."""
    return (disc_features(features, points, disc, resolution) - template).abs().mean(dim=(1, 2))


def disc_features(features: torch.Tensor, points: torch.Tensor, disc: torch.Tensor, resolution: int) -> torch.Tensor:
    """The bilinear features [n, k, C] on the disc offsets ``disc`` [k, 2] around each point [n, 2]."""
    q = (points[:, None] + disc[None]).reshape(-1, 2)
    return sample_features(features, q, resolution).reshape(points.shape[0], disc.shape[0], -1)


class _Line:
    """``follow="line"``: each handle's position along the straight line to its target, and its
    current sub-goal (module docstring)."""

    def __init__(self, handles: torch.Tensor, targets: torch.Tensor, f0: torch.Tensor, disc: torch.Tensor,
                 resolution: int, step: float, stop_d: float, config: DragConfig):
        self.start, self.disc, self.R, self.step, self.config = handles, disc, resolution, step, config
        self.length = (targets - handles).norm(dim=1)  # [n]
        self.dir = (targets - handles) / self.length.clamp_min(1e-12)[:, None]
        self.pos = torch.where(self.length <= stop_d, self.length, torch.zeros_like(self.length))
        self.template = disc_features(f0, handles, disc, resolution)  # [n, k, C]
        self.goal = torch.minimum(self.pos + step, self.length)
        self.ref = self.distance(f0)
        self.spent = torch.zeros_like(self.length)

    def at(self, arc: torch.Tensor) -> torch.Tensor:
        return self.start + arc[:, None] * self.dir

    @property
    def handles(self) -> torch.Tensor:
        return self.at(self.pos)

    @property
    def active(self) -> torch.Tensor:
        return self.pos < self.length

    def distance(self, features: torch.Tensor) -> torch.Tensor:
        return template_distance(features, self.at(self.goal), self.template, self.disc, self.R)

    def advance(self, features: torch.Tensor) -> None:
        """After a step: handles whose sub-goal is reached move there and get the next one."""
        reached = self.active & ((self.distance(features) <= self.config.line_accept * self.ref)
                                 | (self.spent >= self.config.line_budget))
        if bool(reached.any()):
            self.pos = torch.where(reached, self.goal, self.pos)
            self.goal = torch.minimum(self.pos + self.step, self.length)
            self.ref = torch.where(reached, self.distance(features), self.ref)
            self.spent = torch.where(reached, torch.zeros_like(self.spent), self.spent)

    def loss(self, features: torch.Tensor) -> torch.Tensor:
        """The template distances at every handle's sub-goal, summed: an arrived handle's is at its
        target, which holds its content there while the others move."""
        self.spent = self.spent + self.active.to(self.spent.dtype)
        return self.distance(features).sum()


def drag(G: Generator, latent: Latent, points: Any, *, mask: Any = None, config: DragConfig = DragConfig(),
         progress: ProgressArg = None, cancel: CancelArg = None) -> tuple[Latent, DragResult]:
    """Drag ``latent``'s image content from each handle to its target (module docstring).

    G: the base generator (the latent's tuning, if any, is applied: :func:`latentlab.latent.generator_for`);
    points: ``[((hx, hy), (tx, ty)), ...]`` in aligned pixels at G's resolution; mask: bool [R, R]
    (True where the image may change) or None. ``progress`` gets a ``"drag"`` event per step with the
    handles in ``state["handles"]`` and, every ``config.preview_every`` steps, a full-resolution
    ``image``; ``cancel`` stops after the current step (the result so far is returned).

    Returns (the dragged latent, a :class:`DragResult`). The new latent keeps the photo, noise maps
    and tuning, and records the drag in its history. Seeded by nothing: the drag is deterministic.
    """
    R = G.img_resolution
    block = config.feature_resolution or min(128, R // 2)
    if block not in G.feature_resolutions:
        raise LatentlabError(f"drag feature resolution {block} px: this model's blocks are "
                             f"{', '.join(map(str, G.feature_resolutions))}")
    handles_np, targets_np = check_points(points, R)
    editable = check_mask(mask, R)
    rows = drag_rows(G, config)
    scale = R / 512.0
    r1, r2 = max(1.0, config.r1 * scale), max(2.0, config.r2 * scale)  # at least a pixel around each handle
    n = handles_np.shape[0]
    stop_d = (config.stop_distance if config.stop_distance is not None else (1.0 if n <= 5 else 2.0)) * scale
    gen = generator_for(G, latent)
    device = gen.device
    report = as_callback(progress)
    t0 = time.perf_counter()

    ws0 = latent.ws.to(device)
    row_mask = torch.zeros(1, G.num_ws, 1, device=device)
    row_mask[:, rows] = 1.0
    w_opt = ws0.clone().requires_grad_(True)
    opt = torch.optim.Adam([w_opt], lr=config.lr)
    noise = {k: v.to(device) for k, v in latent.noise.items() if k in gen.noise_buffers()}
    handles = torch.from_numpy(handles_np).float().to(device)
    targets = torch.from_numpy(targets_np).float().to(device)
    disc = _disc(r1, device)

    def features(ws: torch.Tensor) -> torch.Tensor:
        return gen.synthesis_features(ws, block, noise_mode="const").float()

    trail = [handles.cpu().numpy()]
    history: list[dict[str, float]] = []
    stopped, still, steps = "max_steps", 0, 0
    with override_noise(gen, noise):
        with torch.no_grad():
            f0 = features(ws0)  # [1, C, h, w]
            initial = sample_features(f0, handles, R)  # [n, C]
            line = _Line(handles, targets, f0, disc, R, config.line_step * scale, stop_d, config) \
                if config.follow == "line" else None
        outside = None
        if editable is not None and config.mask_weight > 0:
            h = f0.shape[-1]
            m = torch.from_numpy((~editable).astype(np.float32))[None, None]
            outside = F.interpolate(m, size=(h, h), mode="area").to(device)  # share of each feature pixel fixed
        for step in range(config.max_steps):
            if cancelled(cancel):
                stopped = "cancelled"
                break
            ws = ws0 + (w_opt - ws0) * row_mask  # only the chosen rows move
            feat = features(ws)
            if step > 0:
                with torch.no_grad():
                    if line is not None:
                        line.advance(feat.detach())
                        moved = line.handles
                    else:
                        moved = track(feat.detach(), handles, initial, r2, R)
                still = still + 1 if torch.equal(moved, handles) else 0
                handles = moved
                trail.append(handles.cpu().numpy())
            dist = (targets - handles).norm(dim=1)
            if not bool(line.active.any()) if line is not None else bool((dist <= stop_d).all()):
                stopped = "arrived"
                break
            if line is None and config.patience and still >= config.patience:
                stopped = "stalled"
                break
            if line is not None:
                loss = line.loss(feat)
            else:
                active = dist > stop_d  # an arrived handle adds no motion loss
                loss = motion_loss(feat, handles[active], targets[active], disc, R)
            if outside is not None:
                loss = loss + config.mask_weight * ((feat - f0).abs() * outside).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            steps = step + 1
            row = {"step": steps, "loss": float(loss.detach()), "mean_distance": float(dist.mean())}
            history.append(row)
            if report is not None:
                image = None
                if config.preview_every and steps % config.preview_every == 0:
                    with torch.no_grad():
                        image = gen.synthesis(ws0 + (w_opt.detach() - ws0) * row_mask, noise_mode="const")
                report(Progress("drag", steps, config.max_steps, values={"distance": row["mean_distance"]},
                                image=image, state={"handles": handles.cpu().numpy(), "targets": targets_np}))
    ws_final = (ws0 + (w_opt.detach() - ws0) * row_mask).cpu()
    result = DragResult(np.stack(trail), targets_np, steps, stopped, time.perf_counter() - t0, history)
    op = {"op": "drag", "points": np.stack([handles_np, targets_np], axis=1).round(3).tolist(),
          "handles_final": result.final.round(3).tolist(), "steps": steps, "stopped": stopped,
          "rows": rows, "config": {**asdict(config), "feature_resolution": block}}
    return latent.with_op(ws_final, op, name=f"{latent.name}_drag"), result


def photo_to_aligned(latent: Latent, points: Sequence[Sequence[Sequence[float]]], resolution: int) -> np.ndarray:
    """Points [n, 2, 2] in the original photo's pixels -> aligned pixels at ``resolution`` through the
    latent's alignment transform (one-line error for a latent without one)."""
    if latent.transform is None:
        raise LatentlabError(f"{latent.name}: has no alignment transform, so points cannot be given in photo "
                             "pixels; give them in aligned pixels (coords='aligned')")
    arr = np.asarray(points, dtype=np.float64)
    if arr.ndim != 3 or arr.shape[1:] != (2, 2):
        raise LatentlabError("points must be pairs of (x, y) points: [((hx, hy), (tx, ty)), ...]")
    if not np.isfinite(arr).all():
        raise LatentlabError("points hold NaN or infinite coordinates")
    h, w = latent.transform.original_size
    if (arr[..., 0] < -0.5).any() or (arr[..., 0] > w - 0.5).any() or (arr[..., 1] < -0.5).any() \
            or (arr[..., 1] > h - 0.5).any():
        raise LatentlabError(f"a point lies outside the {w} x {h} photo")
    tf = latent.transform.at_resolution(resolution)
    return tf.to_aligned(arr.reshape(-1, 2)).reshape(arr.shape)




def mask_to_aligned(latent: Latent, mask: Any, resolution: int) -> np.ndarray:
    """An editable-region mask drawn on the original photo ([H, W], the photo's size; nonzero: may
    move) -> bool [R, R] in the aligned frame, through the latent's alignment transform."""
    import cv2

    from ..faces.align import warp_affine

    if latent.transform is None:
        raise LatentlabError(f"{latent.name}: has no alignment transform, so a mask cannot be given on the photo; "
                             "give it in aligned pixels (coords='aligned')")
    m = np.asarray(mask)
    if m.ndim == 3:
        m = m[..., 0]
    h, w = latent.transform.original_size
    if m.shape != (h, w):
        raise LatentlabError(f"the mask is {m.shape[1] if m.ndim > 1 else '?'}x{m.shape[0]} px; it must be {w}x{h} "
                             "like the photo")
    tf = latent.transform.at_resolution(resolution)
    f = (m > 0).astype(np.float32)
    out = warp_affine(f, tf.matrix, (resolution, resolution), interpolation=cv2.INTER_LINEAR,
                      border=cv2.BORDER_CONSTANT)
    return np.asarray(out).reshape(resolution, resolution) > 0.5


def parse_points(text: str) -> list[tuple[tuple[float, float], tuple[float, float]]]:
    """``"x,y>x,y; x,y>x,y"`` (handle ``>`` target, pairs separated by ``;``) -> [((hx, hy), (tx, ty)), ...].
    One-line errors for anything else; the coordinates' range is checked where they are used."""
    if not isinstance(text, str) or not text.strip():
        raise LatentlabError("no points: give handle>target pairs, e.g. 412,630>412,600;580,630>580,600")
    out = []
    for item in text.split(";"):
        item = item.strip()
        if not item:
            continue
        if item.count(">") != 1:
            raise LatentlabError(f"points {item!r}: expected x,y>x,y (a handle, '>', its target)")
        pair = []
        for half in item.split(">"):
            xy = [v.strip() for v in half.split(",")]
            if len(xy) != 2:
                raise LatentlabError(f"points {item!r}: {half.strip()!r} is not x,y")
            try:
                x, y = float(xy[0]), float(xy[1])
            except ValueError:
                raise LatentlabError(f"points {item!r}: {half.strip()!r} is not two numbers") from None
            if not (math.isfinite(x) and math.isfinite(y)):
                raise LatentlabError(f"points {item!r}: coordinates must be finite numbers")
            pair.append((x, y))
        out.append((pair[0], pair[1]))
    if not out:
        raise LatentlabError("no points: give handle>target pairs, e.g. 412,630>412,600")
    if len(out) > MAX_POINTS:
        raise LatentlabError(f"{len(out)} point pairs; at most {MAX_POINTS} are accepted")
    return out


__all__ = ["DragConfig", "DragResult", "MAX_POINTS", "check_mask", "check_points", "disc_features", "drag",
           "drag_rows", "mask_to_aligned", "motion_loss", "parse_points", "photo_to_aligned", "sample_features",
           "template_distance", "track"]
