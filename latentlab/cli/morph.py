"""``latentlab morph``: a video morphing one face into another (linear interpolation in W+)."""

from __future__ import annotations

from pathlib import Path

import click

from ._editing import Session, editing_options
from ._common import FiniteFloat


@click.command("morph")
@click.argument("a", type=click.Path(path_type=Path))
@click.argument("b", type=click.Path(path_type=Path))
@click.option("--frames", type=click.IntRange(min=2), default=60, show_default=True, help="Frames A -> B.")
@click.option("--fps", type=FiniteFloat(min=1), default=24, show_default=True)
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Video file (.mp4 or .gif; default OUTDIR/<a>_to_<b>.mp4).")
@click.option("--size", type=click.IntRange(min=32), default=512, show_default=True, help="Aligned frame size (px).")
@click.option("--no-paste", is_flag=True, help="Do not write the video pasted into A's original photo.")
@editing_options("out/morph")
def command(a: Path, b: Path, frames: int, fps: float, out: Path | None, size: int, no_paste: bool, outdir: Path,
            force: bool, **kw) -> None:
    """Morph A into B: ws(t) = A + t (B - A) in W+, t = 0..1 (noise maps interpolated too).

    Writes the aligned video (--out), <video>_strip.png (5 frames), and, when A's original photo is
    known, <video stem>_pasted.mp4 (each frame pasted into A's photo).
    """
    import numpy as np

    from ..editing.mixing import lerp_noise, lerp_ws
    from ..editing.render import refuse, render, resize, strip, write_video
    from ..faces import paste_back
    from ..imageio import save_image

    s = Session.from_kwargs(kw)
    la, lb = s.latent(a), s.latent(b)
    out = out or outdir / f"{la.name}_to_{lb.name}.mp4"
    strip_path = out.with_name(out.stem + "_strip.png")
    pasted_path = out.with_name(out.stem + "_pasted" + out.suffix)
    paste = la.can_paste and not no_paste
    refuse([out, strip_path] + ([pasted_path] if paste else []), force)
    ts = np.linspace(0.0, 1.0, frames)
    imgs = []
    for t in ts:
        ws = lerp_ws(la.ws, lb.ws, float(t))
        imgs.append(render(s.G, ws, lerp_noise(la.noise, lb.noise, float(t)) or la.noise)[0])
    write_video([resize(im, size) for im in imgs], out, fps=fps, force=force)
    keys = np.unique(np.linspace(0, frames - 1, min(5, frames)).round().astype(int))
    save_image(strip([imgs[k] for k in keys]), strip_path, force=force)
    if paste:
        write_video([paste_back(la.original, im, la.transform) for im in imgs], pasted_path, fps=fps, force=force)
    click.echo(f"latentlab: wrote {out} ({frames} frames)" + (f" and {pasted_path}" if paste else ""))
