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
@editing_options("out/morph", photo_for="A")
def command(a: Path, b: Path, frames: int, fps: float, out: Path | None, size: int, no_paste: bool, outdir: Path,
            force: bool, **kw) -> None:
    """Morph A into B: ws(t) = A + t (B - A) in W+, t = 0..1 (noise maps interpolated too).

    Writes the aligned video (--out), <video>_strip.png (5 frames), and, when A's original photo is
    known (A is a photo, or --photo), <video stem>_pasted.mp4 (each frame pasted into A's photo).
    Videos are written under a temporary name and renamed when complete: an interrupted run leaves
    no partial video under the final name.
    """
    import numpy as np

    from .. import api
    from ..editing.render import refuse, resize, save_video, strip
    from ..imageio import save_image

    s = Session.from_kwargs(kw)
    pa, pb = s.projection(a, paste_into=True), s.projection(b)
    out = out or outdir / f"{pa.name}_to_{pb.name}.mp4"
    strip_path = out.with_name(out.stem + "_strip.png")
    pasted_path = out.with_name(out.stem + "_pasted" + out.suffix)
    paste = pa.can_paste and not no_paste
    refuse([out, strip_path] + ([pasted_path] if paste else []), force)
    # Tuned inputs: each frame is drawn by base + (1 - t) delta_A + t delta_B (see latentlab.api.morph).
    morph = api.morph(pa, pb, frames)
    imgs = [im.array for im in morph]
    save_video([resize(im, size) for im in imgs], out, fps=fps, force=force)
    keys = np.unique(np.linspace(0, frames - 1, min(5, frames)).round().astype(int))
    save_image(strip([imgs[k] for k in keys]), strip_path, force=force)
    if paste:
        save_video([im.array for im in morph.paste()], pasted_path, fps=fps, force=force)
    click.echo(f"latentlab: wrote {out} ({frames} frames)" + (f" and {pasted_path}" if paste else ""))
