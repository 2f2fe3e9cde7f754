"""The editing pipelines as library functions: direction edits, face swap, morph frames.

These used to live in the CLI (``cli/edit.py``, ``cli/swap.py``, ``cli/morph.py``); they are here
so that the command line, the demo, the web UI and the Python API (:mod:`latentlab.api`) run the
same code. Nothing here writes files or prints: callers decide what to show and where to save.

Latents are ``ws`` tensors [1, num_ws, w_dim]; rows are W+ row indices of the generator (from
:func:`latentlab.editing.layers.parse_layers`).

Layer range of a direction, when the caller gives none:

* a direction **file** (``.npz`` / ``.npy``): the range stored in the file, else all rows;
* a **named attribute** (``smile``, ``age``, ``yaw`` ...): the range stored in its file; when the file
  stores none (or ``all``), the seed's range for that attribute (:data:`ATTRIBUTE_RANGES`), else all;
* a **SeFa / GANSpace** component: all rows (SeFa: the rows it was computed from).

Strengths are W distances along the direction (``unit="w"``) or multiples of the direction's sigma
(``unit="sigma"``: :meth:`~latentlab.editing.directions.Direction.sigma`, the untruncated
generator's spread along it; the command line writes ``--smile 1s``). Components have no sigma.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from ..errors import LatentlabError
from ..models.base import Generator
from .inputs import ResolvedLatent

#: Largest magnitude accepted for an edit or transfer strength: far beyond any useful value (edit
#: directions are in units of the attribute's std), small enough that the latent stays finite.
MAX_STRENGTH = 100.0

#: Which of :data:`latentlab.editing.layers.SEED_RANGES` a named attribute uses when its file stores
#: no range of its own (head-pose names share the ``pose`` range).
ATTRIBUTE_RANGES: dict[str, str] = {"smile": "smile", "age": "age", "yaw": "pose", "pitch": "pose",
                                    "roll": "pose", "pose": "pose"}

_COMPONENT = re.compile(r"(sefa|ganspace):?(\d+)")

#: Units of an edit strength: W distance along the unit direction, or the direction's sigma.
UNITS = ("w", "sigma")


def _warn_stderr(msg: str) -> None:
    import sys

    print(msg, file=sys.stderr)


def finite_number(value: Any, what: str, limit: float | None = None) -> float:
    """``value`` as a finite float (and ``|value| <= limit`` when given); one-line LatentlabError
    otherwise. The one number check of strengths, truncation psi and CLI numbers."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise LatentlabError(f"{what}: {value!r} is not a number") from None
    if not math.isfinite(x):
        raise LatentlabError(f"{what}: {value!r} is not a finite number")
    if limit is not None and abs(x) > limit:
        raise LatentlabError(f"{what}: {x:g} is out of range (|value| <= {limit:g})")
    return x


def check_strength(value: Any, what: str, limit: float = MAX_STRENGTH) -> float:
    """``value`` as a finite float with ``|value| <= limit``; one-line LatentlabError otherwise."""
    return finite_number(value, what, limit)


def direction_layers(stored: str | None, attribute: str | None = None) -> str:
    """The layer-range spec a direction acts on when the caller gives none (CLI, UI and API all ask
    this function): the range stored in its file; when the file stores none (or ``all``), the
    seed's range for a named ``attribute`` (:data:`ATTRIBUTE_RANGES`); else ``"all"``."""
    from .layers import SEED_RANGES

    if stored and stored.strip() and stored != "all":
        return stored
    seed = SEED_RANGES.get(ATTRIBUTE_RANGES.get(attribute or "", ""), None)
    return seed or "all"


@dataclass
class Edit:
    """One direction edit: ``ws[:, rows] += strength * vector``.

    vector: float32 [w_dim] (the same on every row) or [num_ws, w_dim] (row-wise);
    rows: W+ rows it acts on; layers: the layer-range spec those rows came from.
    """

    label: str
    vector: np.ndarray
    strength: float
    rows: list[int]
    layers: str
    meta: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """JSON-able record (label, strength in W units, layers, rows; sigma and the strength in
        sigma when the direction records one), as written into a latent's settings."""
        out = {"label": self.label, "strength": self.strength, "layers": self.layers, "rows": list(self.rows)}
        sigma = self.meta.get("sigma")
        if sigma:
            out.update(sigma=float(sigma), strength_sigma=round(self.strength / float(sigma), 4))
        return out

    def describe(self) -> str:
        """``smile x 0.827 (1 sigma)``: the strength for a log line."""
        sigma = self.meta.get("sigma")
        return f"{self.label} x {self.strength:g}" + (f" ({self.strength / float(sigma):.3g} sigma)" if sigma else "")


def direction_edit(G: Generator, network: str, direction: "str | Path | Any", strength: float,
                   layers: str | None = None, *, label: str | None = None, rows_exact: bool = False,
                   attribute: str | None = None, unit: str = "w",
                   warn: Callable[[str], None] = _warn_stderr) -> Edit:
    """An :class:`Edit` along a direction file (``.npz`` / ``.npy``) or a loaded
    :class:`~latentlab.editing.directions.Direction`.

    layers: a layer-range spec (read with ``rows_exact``); None: :func:`direction_layers` of the
    file's own range (always in the seed notation) and ``attribute`` (the named attribute this file
    is, if any). unit: ``"w"`` or ``"sigma"`` (see the module doc; the Edit's strength is always
    in W units, its meta records the sigma). Shape errors are one line; a direction fitted on
    another model only warns.
    """
    from .attributes import model_key
    from .directions import Direction, load_direction
    from .layers import parse_layers

    strength = check_strength(strength, f"strength of {label or direction}")
    check_unit(unit)
    if isinstance(direction, Direction):
        d, where = direction, direction.name
    else:
        d, where = load_direction(Path(direction)), str(direction)
    vec = np.asarray(d.vector, np.float32)
    if vec.shape[-1] != G.w_dim or vec.ndim not in (1, 2) or (vec.ndim == 2 and vec.shape[0] != G.num_ws):
        raise LatentlabError(f"{where}: direction of shape {list(vec.shape)} does not fit this model's "
                             f"W+ [{G.num_ws}, {G.w_dim}]" + (f" (it was fitted on {d.model})" if d.model else ""))
    if d.model and d.model != model_key(network) and d.model != network:
        warn(f"latentlab: warning: {where} was fitted on {d.model}, not {model_key(network)}")
    name = label or (d.name if isinstance(direction, Direction) else Path(direction).stem)
    sigma = d.sigma()
    meta = {} if sigma is None else {"sigma": sigma}
    if unit == "sigma":
        if sigma is None:
            raise LatentlabError(f"{where}: the direction records no spread (projection_std), so a strength "
                                 "in sigma has no meaning; give it in W units (no 's')")
        strength = check_strength(strength * sigma, f"strength of {name} in W units ({strength:g} sigma)")
    if layers:
        return Edit(name, vec, strength, parse_layers(layers, G, rows_exact=rows_exact), layers, meta)
    spec = direction_layers(d.layers, attribute)
    return Edit(name, vec, strength, parse_layers(spec, G), spec, meta)


def check_unit(unit: str) -> None:
    """One-line LatentlabError unless ``unit`` is one of :data:`UNITS`."""
    if unit not in UNITS:
        raise LatentlabError(f"unknown strength unit {unit!r}; choose from {', '.join(UNITS)}")


def attribute_edit(G: Generator, network: str, name: str, strength: float, layers: str | None = None, *,
                   directions_dirs: Sequence["str | Path"] = (), rows_exact: bool = False, unit: str = "w",
                   warn: Callable[[str], None] = _warn_stderr) -> Edit:
    """An :class:`Edit` along the named attribute ``name`` of ``network`` (``smile``, ``age``, ...,
    looked up by :func:`~latentlab.editing.attributes.find_attribute`); default range and unit: see
    the module doc."""
    from .attributes import find_attribute

    path = find_attribute(name, network, directions_dirs)
    return direction_edit(G, network, path, strength, layers, label=name, rows_exact=rows_exact,
                          attribute=name, unit=unit, warn=warn)


def component_edit(G: Generator, method: str, k: int, strength: float, layers: str | None = None, *,
                   rows_exact: bool = False, cache: dict | None = None, unit: str = "w") -> Edit:
    """An :class:`Edit` along SeFa or GANSpace component ``k`` (0 = strongest) computed for
    ``layers`` (default all rows). ``cache`` (a dict) reuses components between calls. Strengths
    are W units only (``unit="sigma"`` is a one-line error)."""
    from .unsupervised import ganspace, sefa

    check_unit(unit)
    if unit == "sigma":
        raise LatentlabError(f"{method}:{k}: components have no recorded sigma; give the strength in W units (no 's')")
    if method not in ("sefa", "ganspace"):
        raise LatentlabError(f"unknown component method {method!r} (sefa or ganspace)")
    strength = check_strength(strength, f"strength of {method}{k}")
    spec = layers or "all"
    cache = {} if cache is None else cache
    key = (method, spec, rows_exact)
    if key not in cache:
        cache[key] = (sefa(G, spec, rows_exact=rows_exact) if method == "sefa"
                      else ganspace(G, spec, rows_exact=rows_exact, num_components=None))
    comps = cache[key]
    if not 0 <= int(k) < len(comps):
        raise LatentlabError(f"--{method} component {k} does not exist (0..{len(comps) - 1})")
    c = comps[int(k)]
    return Edit(f"{method}{int(k)}", c.direction, strength, c.rows, spec, {"value": c.value})


def target_edit(G: Generator, network: str, target: str, strength: float, layers: str | None = None, *,
                directions_dirs: Sequence["str | Path"] = (), rows_exact: bool = False, cache: dict | None = None,
                unit: str = "w", warn: Callable[[str], None] = _warn_stderr) -> Edit:
    """An :class:`Edit` for a target written as text: ``sefa:K`` / ``ganspace:K``, a direction file
    (``.npz`` / ``.npy`` or any existing file), or a named attribute; ``unit`` as in the module doc."""
    m = _COMPONENT.fullmatch(str(target))
    if m:
        return component_edit(G, m.group(1), int(m.group(2)), strength, layers, rows_exact=rows_exact, cache=cache,
                              unit=unit)
    p = Path(target)
    if p.suffix.lower() in (".npz", ".npy") or p.is_file():
        return direction_edit(G, network, p, strength, layers, label=p.stem, rows_exact=rows_exact, unit=unit,
                              warn=warn)
    return attribute_edit(G, network, str(target), strength, layers, directions_dirs=directions_dirs,
                          rows_exact=rows_exact, unit=unit, warn=warn)


def apply_edits(ws: torch.Tensor, edits: Sequence[Edit]) -> torch.Tensor:
    """``ws + sum_i strength_i * vector_i`` with each term on its own rows; ws [N, num_ws, w_dim]
    (not modified; a new tensor is returned)."""
    from .mixing import apply_offset

    out = ws
    for e in edits:
        out = apply_offset(out, e.vector, e.strength, e.rows)
    return out


# ------------------------------------------------------------------------------------------ swap
def aligned_landmarks(lat: ResolvedLatent, resolution: int, image: np.ndarray) -> np.ndarray | None:
    """Aligned-frame landmarks [68, 2] at ``resolution``: from the latent's alignment transform,
    else detected on ``image`` (uint8 [R, R, 3]); None when no face is found."""
    from ..faces import detect_landmarks

    if lat.transform is not None and getattr(lat.transform, "landmarks", None) is not None:
        return lat.transform.at_resolution(resolution).aligned_landmarks
    try:
        return detect_landmarks(image).landmarks
    except LatentlabError:
        return None


@dataclass
class SwapResult:
    """ws [1, num_ws, w_dim] of A's face on B; info: JSON-able settings and (masked) loss figures;
    delta: the pivotal tuning the result renders with (name -> float32 tensor; None: the base generator)."""

    ws: torch.Tensor
    info: dict[str, Any]
    delta: dict[str, torch.Tensor] | None = None


#: Which generator draws a swap when the inputs carry pivotal tunings (:func:`swap_tuning`); a
#: number in [0, 1] is also accepted: A's share of a weighted blend.
SWAP_TUNINGS = ("blend", "b", "a", "none")
_TUNING_SHARE = {"blend": 0.5, "b": 0.0, "a": 1.0}


def check_swap_tuning(tuning: "str | float") -> "str | float":
    """``tuning`` as :func:`swap_tuning` takes it: one of :data:`SWAP_TUNINGS`, or A's share of the
    blend as a number in [0, 1] (also as text, ``"0.7"``). One-line error otherwise."""
    if isinstance(tuning, str) and tuning.strip().lower() in SWAP_TUNINGS:
        return tuning.strip().lower()
    try:
        share = float(tuning)
    except (TypeError, ValueError):
        share = float("nan")
    if isinstance(tuning, bool) or not 0.0 <= share <= 1.0:
        raise LatentlabError(f"unknown swap tuning {tuning!r}: {', '.join(SWAP_TUNINGS)} or A's share of the blend, "
                             f"a number in [0, 1]")
    return share


def swap_tuning(delta_a: dict[str, torch.Tensor] | None, delta_b: dict[str, torch.Tensor] | None,
                tuning: "str | float" = "blend") -> dict[str, torch.Tensor] | None:
    """The tuning delta a swap of A's face onto B renders with, from A's and B's deltas (None: not
    tuned); returns None for the base generator.

    ``blend`` (default): ``0.5 delta_A + 0.5 delta_B`` (an input without a tuning counts as the base
    generator, delta 0); a number t in [0, 1]: ``t delta_A + (1 - t) delta_B``; ``b`` (= 0): B's
    tuning (B's surroundings exactly, but it pulls the face back towards B); ``a`` (= 1): A's (A's
    identity most, but A's hair, background and clothes leak into B's photo); ``none``: the base
    generator. On 12 pairs of tuned photos (benchmarks/README.md) the even blend kept B's
    surroundings clean and made the result A by dlib in 9 of 12; t = 0.7 in 12 of 12, with faint
    leaks of A's background.
    """
    tuning = check_swap_tuning(tuning)
    if tuning == "none":
        return None
    share = _TUNING_SHARE[tuning] if isinstance(tuning, str) else tuning
    if share == 1.0 or share == 0.0:
        return delta_a if share == 1.0 else delta_b
    if delta_a is None and delta_b is None:
        return None
    from ..inversion.pti import blend_deltas

    return blend_deltas([delta_a or {}, delta_b or {}], [share, 1.0 - share])


def generator_for_delta(G: Generator, delta: dict[str, torch.Tensor] | None, *inputs: ResolvedLatent) -> Generator:
    """G with ``delta`` applied (G itself for None): an input's own tuned generator when it carries
    exactly this delta, else a new copy (:func:`latentlab.inversion.pti.apply_delta`)."""
    if delta is None:
        return G
    for lat in inputs:
        if lat.delta is delta and lat.generator is not None:
            return lat.generator
    from ..inversion.pti import apply_delta

    return apply_delta(G, delta)


def swap_latents(G: Generator, a: ResolvedLatent, b: ResolvedLatent, *, method: str = "mix",
                 identity_rows: Sequence[int], keep_rows: Sequence[int] = (), steps: int = 100,
                 lr: float | None = None, init: str = "b", tuning: "str | float" = "blend",
                 lpips_model: torch.nn.Module | None = None, progress: bool = True) -> SwapResult:
    """Put A's face on B (see :mod:`latentlab.editing.swap`). G: the base generator; each input
    renders with its own (tuned) generator when it carries one; the result with the tuning that
    ``tuning`` picks (:func:`swap_tuning`: by default the average of A's and B's), returned as
    ``SwapResult.delta``.

    ``mix``: B's ws with ``identity_rows`` (minus ``keep_rows``) from A. ``masked``: optimise W+
    from B's ws (``init="b"``) or from the mix (``init="mix"``) for ``steps`` steps so that A's face
    region matches A's aligned photo (or its reconstruction) and the rest matches B's reconstruction.
    """
    from ..imageio import image_to_tensor
    from .render import render
    from .swap import masked_swap, mix_swap, swap_masks

    if method not in ("mix", "masked"):
        raise LatentlabError(f"unknown swap method {method!r} (mix or masked)")
    if init not in ("b", "mix"):
        raise LatentlabError(f"unknown swap init {init!r} (b or mix)")
    identity_rows, keep_rows = [int(r) for r in identity_rows], [int(r) for r in keep_rows]
    mixed = mix_swap(a.ws, b.ws, identity_rows, keep_rows)
    tuning = check_swap_tuning(tuning)
    delta = swap_tuning(a.delta, b.delta, tuning)
    info: dict[str, Any] = {"method": method, "a": str(a.source), "b": str(b.source), "tuning": tuning,
                            "tuned": delta is not None}
    if method == "mix":
        info.update(identity_rows=identity_rows, keep_rows=keep_rows)
        return SwapResult(mixed, info, delta)
    if int(steps) < 1:
        raise LatentlabError("swap steps must be >= 1")
    Ga, Gb = a.generator_for(G), b.generator_for(G)
    rec_b = render(Gb, b.ws, b.noise)[0]
    face_img = a.aligned if a.aligned is not None else render(Ga, a.ws, a.noise)[0]
    fm, bm = swap_masks(aligned_landmarks(a, G.img_resolution, face_img),
                        aligned_landmarks(b, G.img_resolution, rec_b), G.img_resolution)
    start = mixed if init == "mix" else b.ws
    # the latent is optimised in the generator that will draw it
    res = masked_swap(generator_for_delta(G, delta, a, b), start, image_to_tensor(face_img), image_to_tensor(rec_b), fm,
                      bm, num_steps=int(steps), lr=lr, noise=b.noise, lpips_model=lpips_model, progress=progress)
    info.update(steps=int(steps), init=init, seconds=res.seconds, final_loss=res.history[-1]["loss"],
                best_loss=min(h["loss"] for h in res.history))
    return SwapResult(res.ws, info, delta)


# ------------------------------------------------------------------------------------------ morph
@dataclass
class MorphFrame:
    """One morph frame: ws [1, num_ws, w_dim], noise maps (name -> [1, 1, h, w]) and, when either
    input carries a pivotal tuning, the blended delta ``(1 - t) delta_A + t delta_B`` (else None)."""

    t: float
    ws: torch.Tensor
    noise: dict[str, torch.Tensor]
    delta: dict[str, torch.Tensor] | None = None

    def generator(self, G: Generator) -> Generator:
        """The generator that draws this frame: G, or G with the blended tuning applied (a copy)."""
        if self.delta is None:
            return G
        from ..inversion.pti import apply_delta

        return apply_delta(G, self.delta)


def morph_latents(a: ResolvedLatent, b: ResolvedLatent, frames: int) -> list[MorphFrame]:
    """``frames`` (>= 2) :class:`MorphFrame` from A to B: ws(t) = A + t (B - A),
    t = linspace(0, 1, frames); noise maps interpolated where both have them, else A's; tuned
    inputs blend their tunings the same way (the generator morphs too)."""
    from .mixing import lerp_noise, lerp_ws

    if isinstance(frames, bool) or int(frames) < 2:
        raise LatentlabError(f"a morph needs at least 2 frames, got {frames}")
    tuned = a.delta is not None or b.delta is not None
    out = []
    for t in np.linspace(0.0, 1.0, int(frames)):
        t = float(t)
        delta = None
        if tuned:
            from ..inversion.pti import blend_deltas

            delta = blend_deltas([a.delta or {}, b.delta or {}], [1.0 - t, t])
        out.append(MorphFrame(t, lerp_ws(a.ws, b.ws, t), lerp_noise(a.noise, b.noise, t) or a.noise, delta))
    return out


__all__ = ["ATTRIBUTE_RANGES", "MAX_STRENGTH", "Edit", "SwapResult", "aligned_landmarks", "apply_edits",
           "attribute_edit", "check_strength", "component_edit", "direction_edit", "direction_layers",
           "finite_number", "MorphFrame", "morph_latents",
           "SWAP_TUNINGS", "check_swap_tuning", "generator_for_delta", "swap_latents", "swap_tuning", "target_edit"]
