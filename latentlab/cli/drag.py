"""``latentlab drag``: point-based editing (DragGAN's task) of a photo's or a sample's latent."""

from __future__ import annotations

from pathlib import Path

import click

from .. import api
from ..errors import LatentlabError
from ..progress import reporter
from ._common import FiniteFloat, output_name
from ._editing import Session, editing_options

POINTS_HELP = ("Handle>target pairs, ';' between pairs: \"x,y>x,y;x,y>x,y\" (e.g. the mouth corners up by 20 px: "
               "\"412,630>412,610;580,630>580,610\").")


def _points(_ctx, _param, value: str):
    try:
        return api.parse_points(value)
    except LatentlabError as exc:
        raise click.BadParameter(str(exc)) from None


@click.command("drag")
@click.argument("source", type=click.Path(path_type=Path))
@click.option("--points", required=True, callback=_points, help=POINTS_HELP)
@click.option("--coords", type=click.Choice(["photo", "aligned"]), default=None,
              help="Pixels of the original photo [default when the input has one] or of the aligned "
                   "image at the model's resolution [default for samples].")
@click.option("--mask", "mask_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Image of the region allowed to change (white: may move, black: stays), the size of the "
                   "photo (or of the aligned image with --coords aligned).")
@click.option("--steps", type=click.IntRange(1, 2000), default=200, show_default=True,
              help="Most optimisation steps (it stops earlier once every handle is on its target).")
@click.option("--follow", type=click.Choice(["line", "track"]), default="line", show_default=True,
              help="How handles advance: sub-goals along the straight line to the target (line), or "
                   "DragGAN's point tracking (track).")
@click.option("--line-step", type=FiniteFloat(min=0, min_open=True), default=2.0, show_default=True,
              help="Distance between a handle's sub-goals with --follow line (px at 512 px, scaled to the model).")
@click.option("--lr", type=FiniteFloat(min=0, min_open=True), default=2e-3, show_default=True,
              help="Adam learning rate on the W+ rows that move.")
@click.option("--r1", type=FiniteFloat(min=0, min_open=True), default=3.0, show_default=True,
              help="Radius of the supervised disc around each handle (px at 512 px, scaled to the model).")
@click.option("--r2", type=FiniteFloat(min=0, min_open=True), default=12.0, show_default=True,
              help="Point-tracking search radius with --follow track (px at 512 px, scaled to the model).")
@click.option("--mask-weight", type=FiniteFloat(min=0), default=20.0, show_default=True,
              help="Weight of keeping the features outside --mask.")
@click.option("--feature-resolution", type=click.IntRange(min=4), default=None,
              help="Synthesis block whose features are supervised and tracked [default: 128 px, or half the "
                   "image for a model of 128 px or less].")
@click.option("--drag-rows", "rows", default=None, metavar="LAYERS",
              help="W+ rows that move (a layer range; default: the rows feeding layers of 32 px or less).")
@click.option("--video", is_flag=True, help="Also write NAME.mp4: the drag, a frame every few steps.")
@click.option("--name", default=None, help="Output name (default: <input>_drag).")
@editing_options("out/drag", photo_for="SOURCE")
def command(source: Path, points, coords: str | None, mask_path: Path | None, steps: int, follow: str,
            line_step: float, lr: float, r1: float, r2: float, mask_weight: float, feature_resolution: int | None,
            rows: str | None, video: bool, name: str | None, outdir: Path, force: bool, **kw) -> None:
    """Drag SOURCE's content from handle points to target points (DragGAN's task, on a CPU).

    SOURCE is a photo (projected first, by default with pivotal tuning) or a latent .npz (keep its
    .pti.safetensors beside it). Writes OUTDIR/<name>.png (the edited aligned image),
    <name>_pasted.png (the photo with the result pasted back, when the photo is known),
    <name>.npz (the latent with its tuning: every command takes it, so drags chain with edits)
    and, with --video, <name>.mp4.
    """
    name = output_name(name) if name is not None else None
    mask = api.load_image(mask_path, min_size=1) if mask_path is not None else None
    s = Session.from_kwargs(kw)
    base = s.projection(source, paste_into=True)
    if coords is None:
        coords = "photo" if base.transform is not None else "aligned"
    if coords == "photo" and base.transform is None:
        raise LatentlabError(f"{source}: has no alignment; give --coords aligned")
    name = name or f"{base.name}_drag"
    paths = base.output_paths(outdir, name) + ([outdir / f"{name}.mp4"] if video else [])
    api.refuse_existing(paths, force)  # before the (long) drag
    s.echo_notes()
    frames: list = []
    show = reporter()

    def progress(ev: api.Progress) -> None:
        if video and ev.image is not None:
            frames.append(api.tensor_image(ev.image))
        show(ev)

    config = dict(follow=follow, line_step=line_step, lr=lr, r1=r1, r2=r2, mask_weight=mask_weight,
                  feature_resolution=feature_resolution, rows=rows, preview_every=10 if video else 0)
    result = base.drag(points, mask=mask, coords=coords, steps=steps, progress=progress, **config)
    result.write(outdir, name, force=force)
    op = result.history[-1]
    if video:
        api.save_video([*frames, result.array], outdir / f"{name}.mp4", fps=8, force=force)
    dist = [((h[0] - t[0]) ** 2 + (h[1] - t[1]) ** 2) ** 0.5 for h, t in
            zip(op["handles_final"], [p[1] for p in op["points"]])]
    click.echo(f"latentlab: drag {len(dist)} point(s): {op['steps']} steps, stopped: {op['stopped']}; every handle "
               f"within {max(dist):.1f} px of its target (aligned {base.G.img_resolution} px); "
               f"wrote {outdir}/{name}*")
