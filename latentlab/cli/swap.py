"""``latentlab swap``: A's face on B, by W+ row mixing or by masked embedding."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from .. import api
from ..errors import LatentlabError
from ._common import FiniteFloat
from ._editing import SPEC_HELP, Session, editing_options, greedy_command


def _tuning(value: str) -> str | float:
    try:
        return api.check_swap_tuning(value)
    except LatentlabError as exc:
        raise click.BadParameter(str(exc)) from None


def _drawn_with(tuning: str | float) -> str:
    """How a tuned swap result is drawn, for the summary line."""
    if isinstance(tuning, float):
        return f"{tuning:g} x A's tuning + {1 - tuning:g} x B's"
    return {"blend": "the average of both tunings", "a": "A's tuning", "b": "B's tuning"}.get(tuning, "")


def _cosine(v: Any) -> str:
    return "n/a" if v is None else f"{v:.3f}"


@greedy_command("swap", ("--chain",))
@click.argument("inputs", nargs=-1, type=click.Path(path_type=Path))
@click.option("--method", type=click.Choice(["mix", "masked"]), default="mix", show_default=True,
              help="mix: A's identity rows + B's other rows (instant). masked: optimise a latent whose face "
                   "region matches A and whose surroundings match B (Image2StyleGAN++-style, --steps).")
@click.option("--identity-layers", default=api.DEFAULT_IDENTITY_LAYERS, show_default=True,
              help="mix: rows taken from A (default 0-7 = rows 0..6 of the 18-row layout, 4-32 px: face shape "
                   "and features; B keeps 64 px and finer: colours, lighting, skin, hair texture). " + SPEC_HELP)
@click.option("--keep-layers", default="", help="mix: rows kept from B even inside --identity-layers "
                                               "(e.g. 0-3 keeps B's head pose).")
@click.option("--steps", type=click.IntRange(min=1), default=100, show_default=True,
              help="masked: optimisation steps (about 5 s each for ffhq-mobile on a 2-core CPU).")
@click.option("--lr", type=FiniteFloat(min=0, min_open=True), default=None,
              help="masked: peak learning rate (default: the model's projection rate).")
@click.option("--init", type=click.Choice(["b", "mix"]), default="b", show_default=True,
              help="masked: start from B's latent or from the mix result.")
@click.option("--tuning", default="blend", show_default=True, callback=lambda _c, _p, v: _tuning(v),
              help="When the inputs carry pivotal tunings (--preset pti): the generator that draws the result. "
                   "blend: the average of A's and B's tunings (an untuned input counts as none); a number T in "
                   "[0, 1]: T x A's + (1 - T) x B's (0.7: more of A's identity, faint leaks of A's background); "
                   "b: B's (B's surroundings exactly, but the face drifts back towards B); a: A's (A's hair and "
                   "background leak into B's photo); none: the base generator. The result's .npz carries it.")
@click.option("--chain", "chain", multiple=True, type=click.Path(path_type=Path),
              help="--chain A B C ...: put each face on the next one (and the last on the first) and write "
                   "OUTDIR/chain.png, the strip 'A - B - C' (top: inputs; below each: the previous face on it).")
@editing_options("out/swap", photo_for="B")
def command(inputs: tuple[Path, ...], method: str, identity_layers: str, keep_layers: str, steps: int,
            lr: float | None, init: str, tuning: str | float, chain: tuple[Path, ...], outdir: Path, force: bool,
            **kw) -> None:
    """Put A's face on B: `latentlab swap A B`.

    Writes OUTDIR/<a>_on_<b>.png (aligned), <a>_on_<b>_pasted.png (pasted into B's original photo,
    when known), <a>_on_<b>.npz and <a>_on_<b>_metrics.json (dlib identity similarity of the result
    to A and to B). Inputs are photos (projected, cached) or latent .npz files.
    """
    if chain and inputs:
        raise LatentlabError("give either A B or --chain A B C ..., not both")
    sources = list(chain) if chain else list(inputs)
    if chain and len(sources) < 2:
        raise LatentlabError("--chain needs at least two inputs")
    if not chain and len(sources) != 2:
        raise LatentlabError(f"give A and B (2 inputs), got {len(sources)}")
    s = Session.from_kwargs(kw)
    if chain:
        s.refuse_photo("with --chain (pass photos as inputs to paste into them)")
    identity_rows = s.describe(identity_layers)
    if keep_layers.strip():
        s.describe(keep_layers)
    lats = [s.projection(p, paste_into=bool(chain) or i == 1) for i, p in enumerate(sources)]
    pairs = [(0, 1)] if not chain else [((i - 1) % len(lats), i) for i in range(len(lats))]
    # Every output is checked before the first (masked: long) swap runs.
    paths = [outdir / "chain.png"] if chain else []
    for ia, ib in pairs:
        paths += api.swap_paths(outdir, lats[ia], lats[ib], tuning=tuning)
    api.refuse_existing(paths, force)
    s.echo_notes()
    results = {}
    for ia, ib in pairs:
        pa, pb = lats[ia], lats[ib]
        result = api.swap(pa, pb, method=method, identity_layers=identity_layers, keep_layers=keep_layers,
                          steps=steps, lr=lr, init=init, tuning=tuning, rows_exact=s.rows_exact, progress=True)
        r = api.write_swap(outdir, pa, pb, result, force=force)
        results[(ia, ib)] = r
        click.echo(f"latentlab: {r['name']} ({method}): identity cosine vs A {_cosine(r['identity_vs_a']['cosine'])}, "
                   f"vs B {_cosine(r['identity_vs_b']['cosine'])}"
                   + (f"; drawn with {_drawn_with(tuning)}" if r.get("tuned") else ""))
    if chain:
        top = [api.resize(x.target.array if x.target is not None else x.array, 256) for x in lats]
        bottom = [api.resize(results[((i - 1) % len(lats), i)]["image"], 256) for i in range(len(lats))]
        api.save_image(api.grid([top, bottom]), outdir / "chain.png", force=force)
        click.echo(f"latentlab: wrote {outdir / 'chain.png'}")
    click.echo(f"latentlab: swap rows from A: {identity_rows}" if method == "mix"
               else f"latentlab: masked swap, {steps} steps")
