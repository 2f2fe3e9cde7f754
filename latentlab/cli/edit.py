"""``latentlab edit``: move a latent along directions (files, named attributes, SeFa, GANSpace)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import click
import numpy as np
import torch

from ..errors import LatentlabError
from ._common import MAX_STRENGTH, finite_number, output_name
from ._editing import Session, editing_options, parse_strength, split_strength

#: Attributes with their own flag (``--smile 1.5``); any other name works with ``--attr NAME=S``.
NAMED_ATTRIBUTES = ("smile", "age", "yaw", "pitch", "gender", "eyes_open")


@dataclass
class Edit:
    label: str
    vector: np.ndarray  # [w_dim] or [num_ws, w_dim]
    strength: float
    rows: list[int]
    layers: str


def _direction_edit(s: Session, path: Path, strength: float, layers: str | None, label: str) -> Edit:
    from ..editing.attributes import model_key
    from ..editing.directions import load_direction

    d = load_direction(path)
    if d.vector.shape[-1] != s.G.w_dim or (d.vector.ndim == 2 and d.vector.shape[0] != s.G.num_ws):
        raise LatentlabError(f"{path}: direction of shape {list(d.vector.shape)} does not fit this model's "
                             f"W+ [{s.G.num_ws}, {s.G.w_dim}]" + (f" (it was fitted on {d.model})" if d.model else ""))
    if d.model and d.model != model_key(s.network) and d.model != s.network:
        click.echo(f"latentlab: warning: {path} was fitted on {d.model}, not {model_key(s.network)}", err=True)
    if layers:
        return Edit(label, d.vector, strength, s.rows(layers), layers)
    from ..editing.layers import parse_layers

    spec = d.layers or "all"  # a file's own range is always in the seed notation, whatever --rows-exact says
    return Edit(label, d.vector, strength, parse_layers(spec, s.G), spec)


def _component_edit(s: Session, method: str, k: int, strength: float, layers: str | None, cache: dict) -> Edit:
    from ..editing.unsupervised import ganspace, sefa

    spec = layers or "all"
    key = (method, spec)
    if key not in cache:
        cache[key] = (sefa(s.G, spec, rows_exact=s.rows_exact) if method == "sefa"
                      else ganspace(s.G, spec, rows_exact=s.rows_exact, num_components=None))
    comps = cache[key]
    if not 0 <= k < len(comps):
        raise LatentlabError(f"--{method} component {k} does not exist (0..{len(comps) - 1})")
    c = comps[k]
    return Edit(f"{method}{k}", c.direction, strength, c.rows, spec)


def _target_edit(s: Session, target: str, strength: float, layers: str | None, dirs: tuple[Path, ...],
                 cache: dict) -> Edit:
    """A direction named by an attribute, a file, ``sefa:K`` or ``ganspace:K``."""
    from ..editing.attributes import find_attribute

    m = re.fullmatch(r"(sefa|ganspace):?(\d+)", target)
    if m:
        return _component_edit(s, m.group(1), int(m.group(2)), strength, layers, cache)
    p = Path(target)
    if p.suffix.lower() in (".npz", ".npy") or p.is_file():
        return _direction_edit(s, p, strength, layers, p.stem)
    return _direction_edit(s, find_attribute(target, s.network, dirs), strength, layers, target)


def apply_edits(ws: torch.Tensor, edits: list[Edit]) -> torch.Tensor:
    """``ws + sum_i strength_i * d_i`` with each term restricted to its rows."""
    from ..editing.mixing import apply_offset

    out = ws
    for e in edits:
        out = apply_offset(out, torch.from_numpy(np.asarray(e.vector, np.float32)), e.strength, e.rows)
    return out


def _parse_sweep(spec: str) -> tuple[str, float, float, int, str | None]:
    m = re.fullmatch(r"(.+)=(-?[\d.eE+-]+):(-?[\d.eE+-]+):(\d+)(?:@(.+))?", spec.strip())
    if m is None:
        raise LatentlabError(f"--sweep {spec!r}: expected TARGET=LO:HI:N[@LAYERS], e.g. smile=-3:3:7")
    try:
        float(m.group(2)), float(m.group(3))
    except ValueError:
        raise LatentlabError(f"--sweep {spec!r}: LO and HI must be numbers") from None
    lo, hi = (finite_number(g, f"--sweep {spec!r}", MAX_STRENGTH) for g in (m.group(2), m.group(3)))
    n = int(m.group(4))
    if n < 2:
        raise LatentlabError(f"--sweep {spec!r}: N must be at least 2")
    return m.group(1), lo, hi, n, m.group(5)


def _attr_options(f):
    for name in reversed(NAMED_ATTRIBUTES):
        f = click.option(f"--{name.replace('_', '-')}", f"attr_{name}", metavar="S[@LAYERS]", default=None,
                         help=f"Move along the shipped '{name}' direction by S (negative: the other way).")(f)
    return f


@click.command("edit")
@click.argument("source", type=click.Path(path_type=Path))
@click.option("--direction", "directions", multiple=True, metavar="FILE:S[@LAYERS]",
              help="A direction file (.npz from latentlab, or a bare .npy vector) with strength S, on LAYERS "
                   "(default: the file's own range, else all). Repeatable; edits add up.")
@_attr_options
@click.option("--attr", "attrs", multiple=True, metavar="NAME=S[@LAYERS]",
              help="Any named attribute of this model (see --list-attributes).")
@click.option("--sefa", "sefas", multiple=True, metavar="K:S[@LAYERS]",
              help="SeFa component K (closed form from the style affines of LAYERS, default all) with strength S.")
@click.option("--ganspace", "ganspaces", multiple=True, metavar="K:S[@LAYERS]",
              help="GANSpace component K (PCA of 20000 W samples) with strength S, applied on LAYERS (default all).")
@click.option("--sweep", default=None, metavar="TARGET=LO:HI:N[@LAYERS]",
              help="Also render N frames with TARGET's strength from LO to HI on top of the other edits: a strip "
                   "PNG and an MP4. TARGET: an attribute name, a direction file, sefa:K or ganspace:K.")
@click.option("--directions-dir", "directions_dirs", multiple=True, type=click.Path(file_okay=False, path_type=Path),
              help="Extra folder with <model>/<attribute>.npz files (also $LATENTLAB_DIRECTIONS).")
@click.option("--list-attributes", is_flag=True, help="List this model's named attributes and exit.")
@click.option("--name", default=None, help="Output name (default: <input>_edit).")
@editing_options("out/edit")
def command(source: Path, directions: tuple[str, ...], attrs: tuple[str, ...], sefas: tuple[str, ...],
            ganspaces: tuple[str, ...], sweep: str | None, directions_dirs: tuple[Path, ...], list_attributes: bool,
            name: str | None, outdir: Path, force: bool, **kw) -> None:
    """Edit SOURCE (a photo or latent .npz) along latent directions.

    Writes OUTDIR/<name>.png (aligned), <name>_pasted.png (in the original photo, when known) and
    <name>.npz (the edited latent: ws + sum of strength x direction on each edit's rows); with
    --sweep also <name>_sweep_<target>.png (strip), ..._pasted.png and .mp4.
    Layer ranges: seed rows of StyleGAN2-1024's 18 rows ('a-b' = rows a..b-1; smile 0-5, age 0-9,
    head pose 0-6), names (coarse/middle/fine/all), resolutions (64-1024) or rows:N-M.
    """
    name = output_name(name) if name is not None else None
    from ..editing.attributes import available_attributes, model_key
    from ..editing.render import refuse, render, strip, write_result, write_video
    from ..faces import paste_back
    from ..imageio import save_image

    attr_values = {n: kw.pop(f"attr_{n}") for n in NAMED_ATTRIBUTES}
    if list_attributes:
        found = available_attributes(kw["network"], directions_dirs)
        if not found:
            click.echo(f"no named directions for {model_key(kw['network'])}")
        for n, p in sorted(found.items()):
            click.echo(f"{n:<12} {p}")
        return
    s = Session.from_kwargs(kw)
    cache: dict = {}
    edits: list[Edit] = []
    for spec in directions:
        target, strength, layers = split_strength(spec, "--direction")
        edits.append(_direction_edit(s, Path(target), strength, layers, Path(target).stem))
    for attr, value in attr_values.items():
        if value is not None:
            strength, layers = parse_strength(value, f"--{attr}")
            edits.append(_target_edit(s, attr, strength, layers, directions_dirs, cache))
    for spec in attrs:
        if "=" not in spec:
            raise LatentlabError(f"--attr {spec!r}: expected NAME=S[@LAYERS]")
        attr, value = spec.split("=", 1)
        strength, layers = parse_strength(value, f"--attr {attr}")
        edits.append(_target_edit(s, attr, strength, layers, directions_dirs, cache))
    for method, specs in (("sefa", sefas), ("ganspace", ganspaces)):
        for spec in specs:
            k, strength, layers = split_strength(spec, f"--{method}")
            if not k.isdigit():
                raise LatentlabError(f"--{method} {spec!r}: K must be a component index (0, 1, ...)")
            edits.append(_component_edit(s, method, int(k), strength, layers, cache))
    sweep_parsed = _parse_sweep(sweep) if sweep else None
    if not edits and sweep_parsed is None:
        raise LatentlabError("nothing to do: give --direction, --sefa, an attribute (--smile ...) or --sweep")
    sweep_edit = None
    if sweep_parsed is not None:
        target, lo, hi, n, layers = sweep_parsed
        sweep_edit = _target_edit(s, target, 1.0, layers, directions_dirs, cache)

    base = s.latent(source)
    name = name or f"{base.name}_edit"
    sweep_paths = []
    if sweep_edit is not None:
        label = re.sub(r"[^A-Za-z0-9_.-]+", "_", sweep_edit.label)
        stem = outdir / f"{name}_sweep_{label}"
        sweep_paths = [stem.with_suffix(".png"), stem.with_suffix(".mp4")]
        if base.can_paste:
            sweep_paths.append(stem.parent / f"{stem.name}_pasted.png")
        refuse(sweep_paths, force)
    ws = apply_edits(base.ws, edits)
    for e in edits:
        click.echo(f"latentlab: {e.label} x {e.strength:g} on {s.describe(e.rows)}")
    summary = [{"label": e.label, "strength": e.strength, "layers": e.layers, "rows": e.rows} for e in edits]
    write_result(outdir, name, s.G, ws, base, network=s.network, force=force,
                 settings={"edit": {"op": "edit", "source": str(source), "edits": summary}})
    if sweep_edit is not None:
        strengths = np.linspace(lo, hi, n)
        frames_ws = torch.cat([apply_edits(ws, [Edit(sweep_edit.label, sweep_edit.vector, float(a), sweep_edit.rows,
                                                     sweep_edit.layers)]) for a in strengths])
        frames = render(s.G, frames_ws, base.noise)
        save_image(strip(frames), sweep_paths[0], force=force)
        video = [f for f in frames] + [f for f in frames[-2:0:-1]]
        write_video([strip([f], size=512) for f in video], sweep_paths[1], fps=4, force=force)
        if base.can_paste:
            pasted = [paste_back(base.original, f, base.transform) for f in frames]
            h = 384
            import cv2

            small = [cv2.resize(p, (max(1, round(p.shape[1] * h / p.shape[0])), h), interpolation=cv2.INTER_AREA)
                     for p in pasted]
            save_image(np.concatenate(small, axis=1), sweep_paths[2], force=force)
        click.echo(f"latentlab: sweep {sweep_edit.label} {lo:g}..{hi:g} ({n} frames) on "
                   f"{s.describe(sweep_edit.rows)}; wrote {sweep_paths[0]}")
    click.echo(f"latentlab: wrote {outdir}/{name}.png, .npz" + (" and _pasted.png" if base.can_paste else ""))
