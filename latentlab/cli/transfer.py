"""``latentlab transfer``: expression transfer, ``target + strength * (to - from)`` on some rows."""

from __future__ import annotations

from pathlib import Path

import click

from ._editing import SPEC_HELP, Session, editing_options
from ._common import MAX_STRENGTH, FiniteFloat, output_name


@click.command("transfer")
@click.argument("target", type=click.Path(path_type=Path))
@click.option("--from", "from_", required=True, type=click.Path(path_type=Path),
              help="The expression's start (e.g. a neutral photo or latent of anyone).")
@click.option("--to", "to", required=True, type=click.Path(path_type=Path),
              help="The expression's end (the same person smiling, ...).")
@click.option("--strength", type=FiniteFloat(-MAX_STRENGTH, MAX_STRENGTH), default=1.0, show_default=True, help="Multiplier of (to - from).")
@click.option("--layers", default="0-5", show_default=True,
              help="Rows the change is applied on (default: the seed's smile rows 0-5, i.e. rows 0..4 of the "
                   "18-row layout = 4-16 px). " + SPEC_HELP)
@click.option("--name", default=None, help="Output name (default: <target>_transfer).")
@editing_options("out/transfer")
def command(target: Path, from_: Path, to: Path, strength: float, layers: str, name: str | None, outdir: Path,
            force: bool, **kw) -> None:
    """Transfer the change FROM -> TO (an expression) onto TARGET.

    ws = TARGET + strength * (TO - FROM) on --layers. Writes OUTDIR/<name>.png (aligned),
    <name>_pasted.png (in TARGET's original photo, when known), <name>.npz and <name>_compare.png
    (from | to | target | result). Inputs are photos (projected, cached) or latent .npz files.
    """
    name = output_name(name) if name is not None else None
    from ..editing.mixing import expression_transfer
    from ..editing.render import refuse, render, strip, write_result
    from ..imageio import save_image

    s = Session.from_kwargs(kw)
    rows = s.rows(layers)
    t, a, b = s.latent(target), s.latent(from_), s.latent(to)
    name = name or f"{t.name}_transfer"
    compare = outdir / f"{name}_compare.png"
    refuse([compare], force)
    ws = expression_transfer(t.ws, a.ws, b.ws, strength, rows)
    res = write_result(outdir, name, s.G, ws, t, network=s.network, force=force,
                       settings={"edit": {"op": "transfer", "target": str(target), "from": str(from_), "to": str(to),
                                          "strength": strength, "layers": layers, "rows": rows}})
    srcs = [render(s.G, x.ws, x.noise)[0] for x in (a, b, t)]
    save_image(strip([*srcs, res["image"]]), compare, force=force)
    click.echo(f"latentlab: transferred {from_} -> {to} x {strength:g} on {s.describe(rows)}; "
               f"wrote {outdir}/{name}*")
