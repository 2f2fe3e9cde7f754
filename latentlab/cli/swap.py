"""``latentlab swap``: A's face on B, by W+ row mixing or by masked embedding."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
import numpy as np

from ..editing.swap import DEFAULT_IDENTITY_LAYERS
from ..errors import LatentlabError
from ._editing import SPEC_HELP, Session, editing_options, greedy_command
from ._common import FiniteFloat


def _landmarks(lat, G, image: np.ndarray) -> np.ndarray | None:
    """Aligned-frame landmarks [68, 2] at G's resolution: from the transform, else detected."""
    from ..faces import detect_landmarks

    if lat.transform is not None and lat.transform.landmarks is not None:
        return lat.transform.at_resolution(G.img_resolution).aligned_landmarks
    try:
        return detect_landmarks(image).landmarks
    except LatentlabError:
        return None


def _identity(a: np.ndarray, b: np.ndarray) -> dict[str, Any]:
    from ..faces import identity_similarity

    try:
        sim = identity_similarity(a, b)
    except LatentlabError:
        return {"cosine": None, "distance": None, "same_person": None}
    return {"cosine": sim.cosine, "distance": sim.distance, "same_person": sim.same_person}


def swap_one(s: Session, la, lb, *, method: str, identity_rows: list[int], keep_rows: list[int], steps: int,
             lr: float | None, init: str, outdir: Path, force: bool, lpips_model=None) -> dict[str, Any]:
    """Swap la's face onto lb; writes <a>_on_<b>.png/.npz/_pasted.png/_metrics.json. Returns info."""
    from ..editing.render import refuse, render, write_result
    from ..editing.swap import masked_swap, mix_swap, swap_masks
    from ..imageio import image_to_tensor

    name = f"{la.name}_on_{lb.name}"
    metrics_path = outdir / f"{name}_metrics.json"
    refuse([metrics_path], force)
    mixed = mix_swap(la.ws, lb.ws, identity_rows, keep_rows)
    info: dict[str, Any] = {"method": method, "a": str(la.source), "b": str(lb.source)}
    rec_a = render(s.G, la.ws, la.noise)[0]
    if method == "mix":
        ws = mixed
        info.update(identity_rows=identity_rows, keep_rows=keep_rows)
    else:
        rec_b = render(s.G, lb.ws, lb.noise)[0]
        face_img = la.aligned if la.aligned is not None else rec_a
        fm, bm = swap_masks(_landmarks(la, s.G, face_img), _landmarks(lb, s.G, rec_b), s.G.img_resolution)
        start = mixed if init == "mix" else lb.ws
        res = masked_swap(s.G, start, image_to_tensor(face_img), image_to_tensor(rec_b), fm, bm, num_steps=steps, lr=lr, noise=lb.noise, lpips_model=lpips_model)
        ws = res.ws
        info.update(steps=steps, init=init, seconds=res.seconds, final_loss=res.history[-1]["loss"],
                    best_loss=min(h["loss"] for h in res.history))
    out = write_result(outdir, name, s.G, ws, lb, network=s.network, force=force,
                       settings={"edit": {"op": "swap", **{k: v for k, v in info.items() if k != "seconds"}}})
    ref_a = la.aligned if la.aligned is not None else rec_a
    info["identity_vs_a"] = _identity(ref_a, out["image"])
    info["identity_vs_b"] = _identity(lb.aligned if lb.aligned is not None else render(s.G, lb.ws, lb.noise)[0],
                                      out["image"])
    metrics_path.write_text(json.dumps(info, indent=2) + "\n")
    return {**info, "image": out["image"], "pasted": out["pasted"], "name": name}


@greedy_command("swap", ("--chain",))
@click.argument("inputs", nargs=-1, type=click.Path(path_type=Path))
@click.option("--method", type=click.Choice(["mix", "masked"]), default="mix", show_default=True,
              help="mix: A's identity rows + B's other rows (instant). masked: optimise a latent whose face "
                   "region matches A and whose surroundings match B (Image2StyleGAN++-style, --steps).")
@click.option("--identity-layers", default=DEFAULT_IDENTITY_LAYERS, show_default=True,
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
@click.option("--chain", "chain", multiple=True, type=click.Path(path_type=Path),
              help="--chain A B C ...: put each face on the next one (and the last on the first) and write "
                   "OUTDIR/chain.png, the strip 'A - B - C' (top: inputs; below each: the previous face on it).")
@editing_options("out/swap")
def command(inputs: tuple[Path, ...], method: str, identity_layers: str, keep_layers: str, steps: int,
            lr: float | None, init: str, chain: tuple[Path, ...], outdir: Path, force: bool, **kw) -> None:
    """Put A's face on B: `latentlab swap A B`.

    Writes OUTDIR/<a>_on_<b>.png (aligned), <a>_on_<b>_pasted.png (pasted into B's original photo,
    when known), <a>_on_<b>.npz and <a>_on_<b>_metrics.json (dlib identity similarity of the result
    to A and to B). Inputs are photos (projected, cached) or latent .npz files.
    """
    from ..editing.render import grid, refuse, render, resize
    from ..imageio import save_image

    if chain and inputs:
        raise LatentlabError("give either A B or --chain A B C ..., not both")
    sources = list(chain) if chain else list(inputs)
    if chain and len(sources) < 2:
        raise LatentlabError("--chain needs at least two inputs")
    if not chain and len(sources) != 2:
        raise LatentlabError(f"give A and B (2 inputs), got {len(sources)}")
    s = Session.from_kwargs(kw)
    identity_rows = s.rows(identity_layers)
    keep_rows = s.rows(keep_layers) if keep_layers.strip() else []
    if chain:
        refuse([outdir / "chain.png"], force)
    lpips_model = None
    if method == "masked":
        from ..losses import LPIPS

        lpips_model = LPIPS().to(s.G.device)
    lats = [s.latent(p) for p in sources]
    pairs = [(0, 1)] if not chain else [((i - 1) % len(lats), i) for i in range(len(lats))]
    results = {}
    for ia, ib in pairs:
        r = swap_one(s, lats[ia], lats[ib], method=method, identity_rows=identity_rows, keep_rows=keep_rows,
                     steps=steps, lr=lr, init=init, outdir=outdir, force=force, lpips_model=lpips_model)
        results[(ia, ib)] = r
        ida, idb = r["identity_vs_a"]["cosine"], r["identity_vs_b"]["cosine"]
        fmt = (lambda v: "n/a" if v is None else f"{v:.3f}")
        click.echo(f"latentlab: {r['name']} ({method}): identity cosine vs A {fmt(ida)}, vs B {fmt(idb)}")
    if chain:
        top = [resize(x.aligned if x.aligned is not None else render(s.G, x.ws, x.noise)[0], 256) for x in lats]
        bottom = [resize(results[((i - 1) % len(lats), i)]["image"], 256) for i in range(len(lats))]
        save_image(grid([top, bottom]), outdir / "chain.png", force=force)
        click.echo(f"latentlab: wrote {outdir / 'chain.png'}")
    click.echo(f"latentlab: swap rows from A: {s.describe(identity_rows)}" if method == "mix"
               else f"latentlab: masked swap, {steps} steps")
