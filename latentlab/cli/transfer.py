"""``latentlab transfer``: expression transfer, ``target + strength * (to - from)`` on some rows."""

from __future__ import annotations

from pathlib import Path

import click

from .. import api
from ._common import MAX_STRENGTH, FiniteFloat, output_name
from ._editing import SPEC_HELP, Session, editing_options, is_latent_input


@click.command("transfer")
@click.argument("target", type=click.Path(path_type=Path))
@click.option("--from", "from_", required=True, type=click.Path(path_type=Path),
              help="The expression's start (e.g. a neutral photo or latent of anyone).")
@click.option("--to", "to", required=True, type=click.Path(path_type=Path),
              help="The expression's end (the same person smiling, ...).")
@click.option("--strength", type=FiniteFloat(-MAX_STRENGTH, MAX_STRENGTH), default=1.0, show_default=True,
              help="Multiplier of (to - from).")
@click.option("--layers", default="0-5", show_default=True,
              help="Rows the change is applied on (default: the smile rows 0-5, i.e. rows 0..4 of the "
                   "18-row layout = 4-16 px). " + SPEC_HELP)
@click.option("--follow/--no-follow", default=True, show_default=True,
              help="A photo given as TO is projected starting from FROM's latent, with FROM's tuned generator "
                   "(the difference is then the change between the photos, not two projections' noise); "
                   "--no-follow projects it on its own with the preset.")
@click.option("--follow-steps", type=click.IntRange(1, 5000), default=None,
              help="Steps of the TO projection with --follow (default 60).")
@click.option("--name", default=None, help="Output name (default: <target>_transfer).")
@editing_options("out/transfer", photo_for="TARGET")
def command(target: Path, from_: Path, to: Path, strength: float, layers: str, follow: bool, follow_steps: int | None,
            name: str | None, outdir: Path, force: bool, **kw) -> None:
    """Transfer the change FROM -> TO (an expression) onto TARGET.

    ws = TARGET + strength * (TO - FROM) on --layers. Writes OUTDIR/<name>.png (aligned),
    <name>_pasted.png (in TARGET's original photo, when known), <name>.npz and <name>_compare.png
    (from | to | target | result). Inputs are photos (projected, cached) or latent .npz files; a TO
    photo is projected as a change of FROM (see --follow).
    """
    name = output_name(name) if name is not None else None
    s = Session.from_kwargs(kw)
    rows = s.describe(layers)
    t, a = s.projection(target, paste_into=True), s.projection(from_)
    if follow and not is_latent_input(to):
        b = api.follow(a, to, steps=follow_steps, face_index=s.face_index, progress=True)
    else:
        b = s.projection(to)
    name = name or f"{t.name}_transfer"
    result = api.transfer(t, a, b, strength, layers, rows_exact=s.rows_exact)
    api.refuse_existing(result.output_paths(outdir, name, compare=True), force)
    s.echo_notes()
    result.write(outdir, name, force=force, compare=[a.array, b.array, t.array])
    click.echo(f"latentlab: transferred {from_} -> {to} x {strength:g} on {rows}; wrote {outdir}/{name}*")
