"""``latentlab style``: style mixing (copy W+ rows of a style latent into a content latent)."""

from __future__ import annotations

from pathlib import Path

import click

from .. import api
from ..errors import LatentlabError
from ._editing import SPEC_HELP, Session, editing_options, greedy_command


@greedy_command("style", ("--content", "--style"))
@click.argument("inputs", nargs=-1, type=click.Path(path_type=Path))
@click.option("--layers", default="9-18", show_default=True,
              help="Rows taken from STYLE (default: the style-transfer rows 9-18, i.e. rows 9..17 of "
                   "the 18-row layout = 128-1024 px). " + SPEC_HELP)
@click.option("--grid", is_flag=True, help="Write the style-mixing figure: rows = --content, columns = --style.")
@click.option("--content", "contents", multiple=True, type=click.Path(path_type=Path),
              help="With --grid: content inputs (several may follow one --content).")
@click.option("--style", "styles", multiple=True, type=click.Path(path_type=Path),
              help="With --grid: style inputs (several may follow one --style).")
@click.option("--tile", type=click.IntRange(min=32), default=256, show_default=True, help="Grid tile size (px).")
@editing_options("out/style", photo_for="CONTENT")
def command(inputs: tuple[Path, ...], layers: str, grid: bool, contents: tuple[Path, ...], styles: tuple[Path, ...],
            tile: int, outdir: Path, force: bool, **kw) -> None:
    """Mix styles: CONTENT with the rows --layers of STYLE.

    `latentlab style CONTENT STYLE` writes OUTDIR/<content>_x_<style>.png (aligned), ..._pasted.png
    (pasted into CONTENT's original photo when known), ....npz (the mixed latent) and
    ..._compare.png (content | style | result).
    `latentlab style --grid --content A B --style X Y` writes OUTDIR/style_grid.png: NVIDIA's
    style-mixing figure, first row the styles, first column the contents, each cell a mix.
    """
    if grid:
        if inputs:
            raise LatentlabError("with --grid give the inputs with --content and --style, not as arguments")
        if not contents or not styles:
            raise LatentlabError("--grid needs at least one --content and one --style input")
        out = outdir / "style_grid.png"
        api.refuse_existing([out], force)
        s = Session.from_kwargs(kw)
        s.refuse_photo("with --grid (the grid pastes nothing)")
        rows = s.describe(layers)
        c_lat = [s.projection(p) for p in contents]
        s_lat = [s.projection(p) for p in styles]
        table: list[list] = [[None, *[api.resize(x.array, tile) for x in s_lat]]]
        for c in c_lat:
            cells = [api.resize(api.style(c, x, layers, rows_exact=s.rows_exact).array, tile) for x in s_lat]
            table.append([api.resize(c.array, tile), *cells])
        api.save_image(api.grid(table), out, force=force)
        click.echo(f"latentlab: style rows {rows}; wrote {out}")
        return

    if contents or styles:
        raise LatentlabError("--content/--style are for --grid; otherwise give CONTENT STYLE as arguments")
    if len(inputs) != 2:
        raise LatentlabError(f"give CONTENT and STYLE (2 inputs), got {len(inputs)}")
    s = Session.from_kwargs(kw)
    rows = s.describe(layers)
    content, style = s.projection(inputs[0], paste_into=True), s.projection(inputs[1])
    name = f"{content.name}_x_{style.name}"
    result = api.style(content, style, layers, rows_exact=s.rows_exact)
    api.refuse_existing(result.output_paths(outdir, name, compare=True), force)
    s.echo_notes()
    result.write(outdir, name, force=force, compare=[content.array, style.array])
    click.echo(f"latentlab: style rows {rows} from {inputs[1]}; wrote {outdir}/{name}*")
