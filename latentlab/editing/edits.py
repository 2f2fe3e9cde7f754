"""Direction edits: the one parser of an edit request, and edits applied to latents.

An **edit request** names targets and strengths. Every front end hands its own form to
:func:`parse_edits`, so the command line, the web UI and the API accept the same requests and
refuse the same mistakes:

* text: ``"smile=1.5s, age=-1@0-9, sefa:0=3, my_direction.npz=2"`` (the CLI's ``--edit``);
* pairs or a mapping: ``{"smile": 1.5, "age": "-1s@0-9"}`` (the API's keywords, the UI's sliders,
  the CLI's ``--smile 1s`` / ``--direction F:S@L`` / ``--sefa K:S`` flags).

A **target** is a named attribute of the model (``smile``, ``age``, ``yaw`` ...), ``sefa:K`` /
``ganspace:K`` (unsupervised component K, 0 = strongest), or a direction file (``.npz`` / ``.npy``).
A **strength** is a distance in W along the unit direction (``1.5``), or with a trailing ``s`` (or
``unit="sigma"``) a multiple of the direction's sigma (:meth:`~latentlab.editing.directions.Direction.sigma`,
the untruncated generator's spread along it); components take W units only. ``@LAYERS`` overrides
the rows the edit acts on (:mod:`latentlab.editing.layers`).

Layer range of a direction, when the request gives none:

* a direction **file**: the range stored in the file, else all rows;
* a **named attribute**: the range stored in its file; when the file stores none (or ``all``), the
  default range for that attribute (:data:`ATTRIBUTE_RANGES`: smile rows 0-5, age 0-9, head pose
  0-6 of the 18-row layout, mapped to the model by resolution), else all;
* a **SeFa / GANSpace** component: all rows.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np
import torch

from ..errors import LatentlabError
from ..latent import Latent
from ..models.base import Generator

#: Largest magnitude accepted for an edit or transfer strength: far beyond any useful value (edit
#: directions are in units of the attribute's std), small enough that the latent stays finite.
MAX_STRENGTH = 100.0

#: Which of :data:`latentlab.editing.layers.DEFAULT_RANGES` a named attribute uses when its file stores
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
    default range for a named ``attribute`` (:data:`ATTRIBUTE_RANGES`); else ``"all"``."""
    from .layers import DEFAULT_RANGES

    if stored and stored.strip() and stored != "all":
        return stored
    seed = DEFAULT_RANGES.get(ATTRIBUTE_RANGES.get(attribute or "", ""), None)
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
    file's own range (always in the reference notation) and ``attribute`` (the named attribute this file
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
    (a name ending in ``.npz`` / ``.npy``), or a named attribute; ``unit`` as in the module doc."""
    m = _COMPONENT.fullmatch(str(target))
    if m:
        return component_edit(G, m.group(1), int(m.group(2)), strength, layers, rows_exact=rows_exact, cache=cache,
                              unit=unit)
    p = Path(target)
    if p.suffix.lower() in (".npz", ".npy"):  # a direction file (other names are attributes, never files)
        return direction_edit(G, network, p, strength, layers, label=p.stem, rows_exact=rows_exact, unit=unit,
                              warn=warn)
    return attribute_edit(G, network, str(target), strength, layers, directions_dirs=directions_dirs,
                          rows_exact=rows_exact, unit=unit, warn=warn)


def apply_edits(ws: torch.Tensor, edits: Sequence[Edit]) -> torch.Tensor:
    """``ws + sum_i strength_i * vector_i`` with each term on its own rows; ws [N, num_ws, w_dim]
    (not modified; a new tensor is returned). The terms are summed in float64 and added once, so
    the same edits given in any order give the same latent."""
    from .mixing import apply_offset

    total = torch.zeros(ws.shape, dtype=torch.float64, device=ws.device)
    for e in edits:
        total = apply_offset(total, e.vector, e.strength, e.rows)
    return (ws.double() + total).to(ws.dtype)


# ------------------------------------------------------------------------------------------ requests
@dataclass(frozen=True)
class EditSpec:
    """One parsed request item: ``target`` (attribute name, ``sefa:K`` / ``ganspace:K``, a
    direction file path, or a loaded :class:`~latentlab.editing.directions.Direction`),
    ``strength`` in ``unit`` (``"w"`` or ``"sigma"``), and ``layers`` (a layer-range spec, or None
    for the direction's default)."""

    target: Any
    strength: float
    unit: str = "w"
    layers: str | None = None


def _strength(value: Any, what: str, unit: str) -> tuple[float, str, str | None]:
    """``1.5`` / ``"1.5"`` -> W (or ``unit``); ``"1.5s"`` / ``"1.5σ"`` -> sigma; ``"...@LAYERS"``."""
    layers = None
    if isinstance(value, str):
        text = value.strip()
        if "@" in text:
            text, layers = (x.strip() for x in text.split("@", 1))
            if not layers:
                raise LatentlabError(f"{what}: empty layer range after '@'")
        if text[-1:] in ("s", "S", "σ"):
            text, unit = text[:-1], "sigma"
        try:
            float(text)
        except ValueError:
            raise LatentlabError(f"{what}: {value!r} is not a number (W units, or ending in 's' for sigma: "
                                 "1.5 or 1s)") from None
        value = text
    elif isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise LatentlabError(f"{what}: {value!r} is not a number")
    return check_strength(value, what), unit, layers


def _target(key: Any, what: str) -> Any:
    from .directions import Direction

    if isinstance(key, Direction):
        return key
    m = _COMPONENT.fullmatch(str(key).strip()) if isinstance(key, str) else None
    if m:
        return f"{m.group(1)}:{int(m.group(2))}"
    if isinstance(key, Path):
        return str(key)
    if not isinstance(key, str) or not key.strip():
        raise LatentlabError(f"{what}: a target must be an attribute name, sefa:K, ganspace:K or a direction file, "
                             f"got {key!r}")
    return key.strip()


def parse_edit_text(text: str) -> list[tuple[str, str]]:
    """``"smile=1.5s, age=-1@0-9"`` -> ``[("smile", "1.5s"), ("age", "-1@0-9")]`` (items separated
    by commas or semicolons, each ``TARGET=STRENGTH[@LAYERS]``; a comma inside a layer range, as in
    ``smile=1@0-3,5``, stays in it). One-line errors."""
    if not isinstance(text, str):
        raise LatentlabError(f"an edit request must be text, got {type(text).__name__}")
    items: list[str] = []
    parts = re.split(r"([;,])", text)  # [item, separator, item, ...]
    for i in range(0, len(parts), 2):
        part, sep = parts[i], parts[i - 1] if i else ";"
        if items and sep == "," and "=" not in part and "@" in items[-1]:
            items[-1] += "," + part.strip()  # a comma inside a layer range: 0-3,5
        else:
            items.append(part.strip())
    out = []
    for item in items:
        if not item:
            continue
        if "=" not in item:
            raise LatentlabError(f"edit {item!r}: expected TARGET=STRENGTH[@LAYERS], e.g. smile=1.5s or age=-1@0-9")
        target, value = item.split("=", 1)
        if not target.strip():
            raise LatentlabError(f"edit {item!r}: missing the target before '='")
        out.append((target.strip(), value.strip()))
    if not out:
        raise LatentlabError("an empty edit request; give TARGET=STRENGTH items, e.g. smile=1.5s")
    return out


def parse_edits(request: "str | Mapping[Any, Any] | Iterable[tuple[Any, Any]]", *, unit: str = "w",
                layers: Mapping[str, str] | None = None) -> list[EditSpec]:
    """The one parser of edit requests (see the module doc): text, a mapping or pairs ->
    :class:`EditSpec` list, in order. ``unit``: the unit of bare numbers (``"w"`` or ``"sigma"``);
    ``layers``: label -> layer-range spec overriding an item's default rows (labels: the attribute
    name, a file's stem, ``sefa0``, ``ganspace3``). Zero strengths are kept (they edit nothing).
    One-line LatentlabError for anything malformed, including a ``layers`` label no item has."""
    check_unit(unit)
    if isinstance(request, str):
        pairs: list[tuple[Any, Any]] = list(parse_edit_text(request))
    elif isinstance(request, Mapping):
        pairs = list(request.items())
    else:
        pairs = list(request or [])
    specs = []
    for key, value in pairs:
        target = _target(key, f"edit {key!r}")
        strength, u, at = _strength(value, f"strength of {target}", unit)
        specs.append(EditSpec(target, strength, u, at))
    overrides = dict(layers or {})
    if overrides:
        labels = {spec_label(s): i for i, s in enumerate(specs)}
        unused = sorted(set(overrides) - set(labels))
        if unused:
            raise LatentlabError(f"layers given for {', '.join(unused)}, which is not among the edits "
                                 f"({', '.join(labels) or 'none'})")
        for label, spec in overrides.items():
            i = labels[label]
            specs[i] = EditSpec(specs[i].target, specs[i].strength, specs[i].unit, spec)
    return specs


def spec_label(spec: EditSpec) -> str:
    """The label an item goes by (attribute name, a file's stem, ``sefa0``, a Direction's name)."""
    if not isinstance(spec.target, str):
        return str(spec.target.name)
    m = _COMPONENT.fullmatch(spec.target)
    if m:
        return f"{m.group(1)}{int(m.group(2))}"
    p = Path(spec.target)
    return p.stem if p.suffix.lower() in (".npz", ".npy") else spec.target


def resolve_edits(G: Generator, network: str, specs: Sequence[EditSpec], *, directions_dirs: Sequence["str | Path"] = (),
                  rows_exact: bool = False, cache: dict | None = None,
                  warn: Callable[[str], None] = _warn_stderr) -> list[Edit]:
    """:class:`Edit` objects (vectors and rows for G) for parsed request items."""
    cache = {} if cache is None else cache
    out = []
    for s in specs:
        if isinstance(s.target, str):
            out.append(target_edit(G, network, s.target, s.strength, s.layers, directions_dirs=directions_dirs,
                                   rows_exact=rows_exact, cache=cache, unit=s.unit, warn=warn))
        else:
            out.append(direction_edit(G, network, s.target, s.strength, s.layers, label=spec_label(s),
                                      rows_exact=rows_exact, unit=s.unit, warn=warn))
    return out


def edit(latent: Latent, edits: Sequence[Edit], *, name: str | None = None) -> Latent:
    """``latent`` moved along ``edits`` (``ws + sum_i strength_i * d_i``, each on its rows): a new
    latent on the same photo with the same noise and tuning, the edits recorded in its history."""
    if not edits:
        raise LatentlabError("nothing to edit: give attribute strengths (smile=1.5), directions, sefa or ganspace")
    return latent.with_op(apply_edits(latent.ws, edits), {"op": "edit", "edits": [e.summary() for e in edits]},
                          name=name or f"{latent.name}_edit")


__all__ = ["ATTRIBUTE_RANGES", "MAX_STRENGTH", "UNITS", "Edit", "EditSpec", "apply_edits", "attribute_edit",
           "check_strength", "check_unit", "component_edit", "direction_edit", "direction_layers", "edit",
           "finite_number", "parse_edit_text", "parse_edits", "resolve_edits", "spec_label", "target_edit"]
