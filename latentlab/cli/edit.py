"""``latentlab edit``: move a latent along directions (files, named attributes, SeFa, GANSpace)."""

from __future__ import annotations

import re
from pathlib import Path

import click
import numpy as np

from ..errors import LatentlabError
from ._common import output_name
from ._editing import Session, editing_options, parse_strength, split_strength, strength_value

#: Attributes with their own flag (``--smile 1.5``); any other name works with ``--attr NAME=S``.
NAMED_ATTRIBUTES = ("smile", "age", "yaw", "pitch", "gender", "eyes_open")


def _parse_sweep(spec: str) -> tuple[str, float, float, int, str | None, str]:
    """``TARGET=LO:HI:N[@LAYERS]`` -> (target, lo, hi, n, layers, unit); LO and HI both in W units
    or both ending in 's' (sigma)."""
    m = re.fullmatch(r"(.+)=(-?[\d.eE+-]+[sSσ]?):(-?[\d.eE+-]+[sSσ]?):(\d+)(?:@(.+))?", spec.strip())
    if m is None:
        raise LatentlabError(f"--sweep {spec!r}: expected TARGET=LO:HI:N[@LAYERS], e.g. smile=-3:3:7 or smile=-2s:2s:5")
    (lo, lo_unit), (hi, hi_unit) = (strength_value(g, f"--sweep {spec!r}: LO and HI")
                                    for g in (m.group(2), m.group(3)))
    if lo_unit != hi_unit:
        raise LatentlabError(f"--sweep {spec!r}: give LO and HI in one unit (both W units, or both ending in 's')")
    n = int(m.group(4))
    if n < 2:
        raise LatentlabError(f"--sweep {spec!r}: N must be at least 2")
    return m.group(1), lo, hi, n, m.group(5), lo_unit


def _attr_options(f):
    for name in reversed(NAMED_ATTRIBUTES):
        f = click.option(f"--{name.replace('_', '-')}", f"attr_{name}", metavar="S[@LAYERS]", default=None,
                         help=f"Move along the shipped '{name}' direction by S W units, or S sigma with a "
                              f"trailing s (1.5s; negative: the other way).")(f)
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
@editing_options("out/edit", photo_for="SOURCE")
def command(source: Path, directions: tuple[str, ...], attrs: tuple[str, ...], sefas: tuple[str, ...],
            ganspaces: tuple[str, ...], sweep: str | None, directions_dirs: tuple[Path, ...], list_attributes: bool,
            name: str | None, outdir: Path, force: bool, **kw) -> None:
    """Edit SOURCE (a photo or latent .npz) along latent directions.

    Writes OUTDIR/<name>.png (aligned), <name>_pasted.png (in the original photo, when known) and
    <name>.npz (the edited latent: ws + sum of strength x direction on each edit's rows); with
    --sweep also <name>_sweep_<target>.png (strip), ..._pasted.png and .mp4.
    Strengths are W distances along the unit direction (--smile 1.5), or with a trailing s multiples
    of the direction's sigma, its spread over the generator's faces (--smile 1s; smile's sigma on
    ffhq-mobile is 0.83 W units; SeFa/GANSpace components take W units only).
    Layer ranges: seed rows of StyleGAN2-1024's 18 rows ('a-b' = rows a..b-1; smile 0-5, age 0-9,
    head pose 0-6), names (coarse/middle/fine/all), resolutions (64-1024) or rows:N-M.
    """
    name = output_name(name) if name is not None else None
    from ..editing.attributes import available_attributes, model_key
    from ..editing.pipeline import apply_edits, attribute_edit, component_edit, direction_edit, target_edit
    from ..editing.render import refuse, sweep_paths, write_result, write_sweep

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
    common = {"rows_exact": s.rows_exact, "warn": lambda m: click.echo(m, err=True)}
    target = lambda t, strength, layers, unit: target_edit(s.G, s.network, t, strength, layers,  # noqa: E731
                                                           directions_dirs=directions_dirs, cache=cache, unit=unit,
                                                           **common)
    edits = []
    for spec in directions:
        path, strength, layers, unit = split_strength(spec, "--direction")
        edits.append(direction_edit(s.G, s.network, Path(path), strength, layers, label=Path(path).stem, unit=unit,
                                    **common))
    for attr, value in attr_values.items():
        if value is not None:
            strength, layers, unit = parse_strength(value, f"--{attr}")
            edits.append(attribute_edit(s.G, s.network, attr, strength, layers, directions_dirs=directions_dirs,
                                        unit=unit, **common))
    for spec in attrs:
        if "=" not in spec:
            raise LatentlabError(f"--attr {spec!r}: expected NAME=S[@LAYERS]")
        attr, value = spec.split("=", 1)
        strength, layers, unit = parse_strength(value, f"--attr {attr}")
        edits.append(target(attr, strength, layers, unit))
    for method, specs in (("sefa", sefas), ("ganspace", ganspaces)):
        for spec in specs:
            k, strength, layers, unit = split_strength(spec, f"--{method}")
            if not k.isdigit():
                raise LatentlabError(f"--{method} {spec!r}: K must be a component index (0, 1, ...)")
            edits.append(component_edit(s.G, method, int(k), strength, layers, rows_exact=s.rows_exact, cache=cache,
                                        unit=unit))
    sweep_parsed = _parse_sweep(sweep) if sweep else None
    if not edits and sweep_parsed is None:
        raise LatentlabError("nothing to do: give --direction, --sefa, an attribute (--smile ...) or --sweep")
    sweep_edit = None
    if sweep_parsed is not None:
        sweep_target, lo, hi, n, layers, sweep_unit = sweep_parsed
        sweep_edit = target(sweep_target, 1.0, layers, "w")

    base = s.projection(source, paste_into=True)
    name = name or f"{base.name}_edit"
    stem = None
    if sweep_edit is not None:
        stem = outdir / f"{name}_sweep_{re.sub(r'[^A-Za-z0-9_.-]+', '_', sweep_edit.label)}"
        refuse(sweep_paths(stem, pasted=base.can_paste), force)
    result = base.with_ws(apply_edits(base.resolved.ws, edits), name=name,
                          op={"op": "edit", "edits": [e.summary() for e in edits]}) if edits else base
    for e in edits:
        click.echo(f"latentlab: {e.describe()} on {s.describe(e.rows)}")
    write_result(outdir, name, result, force=force)
    if sweep_edit is not None:
        frames = result.sweep(sweep_edit, np.linspace(lo, hi, n), unit=sweep_unit)
        written = write_sweep(stem, frames, force=force)
        w_lo, w_hi = frames.settings["values"][0], frames.settings["values"][-1]
        span = f"{lo:g}..{hi:g} sigma = {w_lo:.3g}..{w_hi:.3g}" if sweep_unit == "sigma" else f"{lo:g}..{hi:g}"
        click.echo(f"latentlab: sweep {sweep_edit.label} {span} ({n} frames) on "
                   f"{s.describe(sweep_edit.rows)}; wrote {written[0]}")
    click.echo(f"latentlab: wrote {outdir}/{name}.png, .npz" + (" and _pasted.png" if base.can_paste else ""))
