"""``latentlab morph``: a video morphing one face into another (linear interpolation in W+)."""

from __future__ import annotations

from pathlib import Path

import click

from .. import api
from ..errors import LatentlabError
from ._common import FiniteFloat
from ._editing import Session, editing_options


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
    Tuned inputs (--preset pti) draw each frame with the blend (1 - t) A's tuning + t B's.
    Videos are written under a temporary name and renamed when complete: an interrupted run leaves
    no partial video under the final name.
    """
    if out is not None and out.suffix.lower() not in (".mp4", ".gif"):
        raise LatentlabError(f"--out {out}: a video must end in .mp4 or .gif")
    s = Session.from_kwargs(kw)
    pa, pb = s.projection(a, paste_into=True), s.projection(b)
    out = out or outdir / f"{pa.name}_to_{pb.name}.mp4"
    strip_path = out.with_name(out.stem + "_strip.png")
    pasted_path = out.with_name(out.stem + "_pasted" + out.suffix)
    paste = pa.can_paste and not no_paste
    api.refuse_existing([out, strip_path] + ([pasted_path] if paste else []), force)
    if not no_paste:
        s.echo_notes()
    morph = api.morph(pa, pb, frames)
    morph.save(out, fps=fps, force=force, size=size)
    morph.strip(count=5).save(strip_path, force=force)
    if paste:
        morph.paste().save(pasted_path, fps=fps, force=force)
    click.echo(f"latentlab: wrote {out} ({frames} frames)" + (f" and {pasted_path}" if paste else ""))
