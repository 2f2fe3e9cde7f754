"""``latentlab edit``: move a latent along directions (files, named attributes, SeFa, GANSpace)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import click

from .. import api
from ..errors import LatentlabError
from ._common import output_name
from ._editing import Session, editing_options

#: Attributes with their own flag (``--smile 1.5``); any other name works with ``--attr NAME=S``.
NAMED_ATTRIBUTES = ("smile", "age", "yaw", "pitch", "gender", "eyes_open")

_SWEEP = re.compile(r"(.+)=(-?[\d.eE+-]+[sSσ]?):(-?[\d.eE+-]+[sSσ]?):(\d+)(?:@(.+))?")


def split_target(spec: str, flag: str, example: str) -> tuple[str, str]:
    """``TARGET:S[@LAYERS]`` -> ``(TARGET, "S[@LAYERS]")``: the target before the last ``:`` ahead
    of the layer range (which may hold ``rows:``), the strength text for :func:`latentlab.api.parse_edits`."""
    body, at = spec, ""
    if "@" in spec:
        body, layers = spec.rsplit("@", 1)
        at = "@" + layers
    if ":" not in body:
        raise LatentlabError(f"{flag} {spec!r}: expected {example}")
    target, strength = body.rsplit(":", 1)
    if not target:
        raise LatentlabError(f"{flag} {spec!r}: missing the {'component' if flag != '--direction' else 'direction'} "
                             "before ':'")
    return target, strength + at


def edit_pairs(edit_texts: tuple[str, ...], directions: tuple[str, ...], attr_values: dict[str, str | None],
               attrs: tuple[str, ...], sefas: tuple[str, ...], ganspaces: tuple[str, ...]) -> list[tuple[str, str]]:
    """The (target, strength text) pairs of every edit flag, in order: ``--edit`` items, then
    ``--direction``, the named attributes, ``--attr``, ``--sefa`` and ``--ganspace``."""
    pairs: list[tuple[str, str]] = []
    for text in edit_texts:
        pairs += api.parse_edit_text(text)
    for spec in directions:
        pairs.append(split_target(spec, "--direction", "FILE:STRENGTH[@LAYERS], e.g. smile.npz:1.5@0-5"))
    for attr, value in attr_values.items():
        if value is not None:
            pairs.append((attr, value))
    for spec in attrs:
        if "=" not in spec:
            raise LatentlabError(f"--attr {spec!r}: expected NAME=S[@LAYERS]")
        name, value = spec.split("=", 1)
        if not name.strip():
            raise LatentlabError(f"--attr {spec!r}: missing the attribute name before '='")
        pairs.append((name.strip(), value))
    for method, specs in (("sefa", sefas), ("ganspace", ganspaces)):
        for spec in specs:
            k, value = split_target(spec, f"--{method}", "K:STRENGTH[@LAYERS], e.g. 0:3@0-5")
            if not k.isdigit():
                raise LatentlabError(f"--{method} {spec!r}: K must be a component index (0, 1, ...)")
            pairs.append((f"{method}:{int(k)}", value))
    return pairs


def parse_sweep(spec: str) -> tuple[str, list[float], str | None, str]:
    """``TARGET=LO:HI:N[@LAYERS]`` -> (target, N strengths from LO to HI, layers or None, unit); LO
    and HI both in W units or both ending in 's' (sigma), read by :func:`latentlab.api.parse_edits`."""
    import numpy as np

    m = _SWEEP.fullmatch(spec.strip())
    if m is None:
        raise LatentlabError(f"--sweep {spec!r}: expected TARGET=LO:HI:N[@LAYERS], e.g. smile=-3:3:7 or smile=-2s:2s:5")
    target = m.group(1).strip()
    lo, hi = api.parse_edits([(target, m.group(2)), (target, m.group(3))])
    if lo.unit != hi.unit:
        raise LatentlabError(f"--sweep {spec!r}: give LO and HI in one unit (both W units, or both ending in 's')")
    n = int(m.group(4))
    if n < 2:
        raise LatentlabError(f"--sweep {spec!r}: N must be at least 2")
    return target, [float(v) for v in np.linspace(lo.strength, hi.strength, n)], m.group(5), lo.unit


def _attr_options(f):
    for name in reversed(NAMED_ATTRIBUTES):
        f = click.option(f"--{name.replace('_', '-')}", f"attr_{name}", metavar="S[@LAYERS]", default=None,
                         help=f"Move along the shipped '{name}' direction by S W units, or S sigma with a "
                              f"trailing s (1.5s; negative: the other way).")(f)
    return f


def _describe_edit(s: Session, e: dict[str, Any]) -> str:
    """``smile x 0.827 (1 sigma) on rows:0-4 (4-16 px)`` from an edit's record."""
    sigma = e.get("sigma")
    text = f"{e['label']} x {e['strength']:g}" + (f" ({e['strength'] / sigma:.3g} sigma)" if sigma else "")
    return f"{text} on {s.describe_rows(e['rows'])}"


@click.command("edit")
@click.argument("source", type=click.Path(path_type=Path))
@click.option("--edit", "edit_texts", multiple=True, metavar="TARGET=S[@LAYERS], ...",
              help="Edits as one text: comma-separated TARGET=STRENGTH[@LAYERS] items, e.g. "
                   "\"smile=1.5s, age=-1@0-9, sefa:0=3, my_direction.npz=2\" (TARGET: an attribute name, sefa:K, "
                   "ganspace:K or a direction file). Repeatable; adds up with the other edit flags.")
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
def command(source: Path, edit_texts: tuple[str, ...], directions: tuple[str, ...], attrs: tuple[str, ...],
            sefas: tuple[str, ...], ganspaces: tuple[str, ...], sweep: str | None, directions_dirs: tuple[Path, ...],
            list_attributes: bool, name: str | None, outdir: Path, force: bool, **kw) -> None:
    """Edit SOURCE (a photo or latent .npz) along latent directions.

    Writes OUTDIR/<name>.png (aligned), <name>_pasted.png (in the original photo, when known) and
    <name>.npz (the edited latent: ws + sum of strength x direction on each edit's rows); with
    --sweep also <name>_sweep_<target>.png (strip), ..._pasted.png and .mp4.
    Strengths are W distances along the unit direction (--smile 1.5), or with a trailing s multiples
    of the direction's sigma, its spread over the generator's faces (--smile 1s; smile's sigma on
    ffhq-mobile is 0.83 W units; SeFa/GANSpace components take W units only).
    Layer ranges: reference rows of StyleGAN2-1024's 18 rows ('a-b' = rows a..b-1; smile 0-5, age 0-9,
    head pose 0-6), names (coarse/middle/fine/all), resolutions (64-1024) or rows:N-M.
    `--edit "smile=1.5s, age=-1@0-9"` gives the same edits as `--smile 1.5s --age -1@0-9`.
    """
    name = output_name(name) if name is not None else None
    attr_values = {n: kw.pop(f"attr_{n}") for n in NAMED_ATTRIBUTES}
    if list_attributes:
        rows = api.list_directions(kw["network"], directions_dirs)
        if not rows:
            click.echo(f"no named directions for {api.model_key(kw['network'])}")
        for r in rows:
            click.echo(f"{r['attribute']:<12} {r['path']}")
        return
    pairs = edit_pairs(edit_texts, directions, attr_values, attrs, sefas, ganspaces)
    if pairs:
        api.parse_edits(pairs)  # every number and unit checked before anything is loaded
    sweep_parsed = parse_sweep(sweep) if sweep else None
    if not pairs and sweep_parsed is None:
        raise LatentlabError("nothing to do: give --edit, --direction, --sefa, an attribute (--smile ...) or --sweep")

    s = Session.from_kwargs(kw)
    base = s.projection(source, paste_into=True)
    name = name or f"{base.name}_edit"
    common = {"rows_exact": s.rows_exact, "directions_dirs": directions_dirs,
              "warn": lambda m: click.echo(m, err=True)}
    result = base.edit(pairs, name=name, **common) if pairs else base
    frames, stem = None, None
    paths = result.output_paths(outdir, name)
    if sweep_parsed is not None:
        target, values, layers, unit = sweep_parsed
        frames = result.sweep(target, values, layers=layers, unit=unit, **common)
        label = re.sub(r"[^A-Za-z0-9_.-]+", "_", str(frames.settings["target"]))
        stem = outdir / f"{name}_sweep_{label}"
        paths += api.sweep_paths(stem, pasted=frames.can_paste)
    api.refuse_existing(paths, force)  # every output checked before anything is drawn
    if pairs:
        for e in result.history[-1]["edits"]:
            click.echo(f"latentlab: {_describe_edit(s, e)}")
    s.echo_notes()
    result.write(outdir, name, force=force)
    if frames is not None:
        written = api.write_sweep(stem, frames, force=force)
        lo, hi, n = values[0], values[-1], len(values)
        w_lo, w_hi = frames.settings["values"][0], frames.settings["values"][-1]
        span = f"{lo:g}..{hi:g} sigma = {w_lo:.3g}..{w_hi:.3g}" if unit == "sigma" else f"{lo:g}..{hi:g}"
        click.echo(f"latentlab: sweep {frames.settings['target']} {span} ({n} frames) on "
                   f"{s.describe_rows(frames.settings['rows'])}; wrote {written[0]}")
    click.echo(f"latentlab: wrote {outdir}/{name}.png, .npz" + (" and _pasted.png" if result.can_paste else ""))
