"""``latentlab style``: style mixing (copy W+ rows of a style latent into a content latent)."""

from __future__ import annotations

from pathlib import Path

import click

from ._editing import SPEC_HELP, Session, editing_options, greedy_command


@greedy_command("style", ("--content", "--style"))
@click.argument("inputs", nargs=-1, type=click.Path(path_type=Path))
@click.option("--layers", default="9-18", show_default=True,
              help="Rows taken from STYLE (default: the seed's style-transfer rows 9-18, i.e. rows 9..17 of "
                   "the 18-row layout = 128-1024 px). " + SPEC_HELP)
@click.option("--grid", is_flag=True, help="Write the style-mixing figure: rows = --content, columns = --style.")
@click.option("--content", "contents", multiple=True, type=click.Path(path_type=Path),
              help="With --grid: content inputs (several may follow one --content).")
@click.option("--style", "styles", multiple=True, type=click.Path(path_type=Path),
              help="With --grid: style inputs (several may follow one --style).")
@click.option("--tile", type=click.IntRange(min=32), default=256, show_default=True, help="Grid tile size (px).")
@editing_options("out/style")
def command(inputs: tuple[Path, ...], layers: str, grid: bool, contents: tuple[Path, ...], styles: tuple[Path, ...],
            tile: int, outdir: Path, force: bool, **kw) -> None:
    """Mix styles: CONTENT with the rows --layers of STYLE.

    `latentlab style CONTENT STYLE` writes OUTDIR/<content>_x_<style>.png (aligned), ..._pasted.png
    (pasted into CONTENT's original photo when known), ....npz (the mixed latent) and
    ..._compare.png (content | style | result).
    `latentlab style --grid --content A B --style X Y` writes OUTDIR/style_grid.png: NVIDIA's
    style-mixing figure, first row the styles, first column the contents, each cell a mix.
    """
    from ..editing.mixing import style_mix
    from ..editing.render import grid as tile_grid
    from ..editing.render import refuse, render, resize, strip, write_result
    from ..errors import LatentlabError
    from ..imageio import save_image

    if grid:
        if inputs:
            raise LatentlabError("with --grid give the inputs with --content and --style, not as arguments")
        if not contents or not styles:
            raise LatentlabError("--grid needs at least one --content and one --style input")
        out = outdir / "style_grid.png"
        refuse([out], force)
        s = Session.from_kwargs(kw)
        rows = s.rows(layers)
        c_lat = [s.latent(p) for p in contents]
        s_lat = [s.latent(p) for p in styles]
        c_img = [resize(render(s.G, c.ws, c.noise)[0], tile) for c in c_lat]
        s_img = [resize(render(s.G, x.ws, x.noise)[0], tile) for x in s_lat]
        table: list[list] = [[None, *s_img]]
        for c, ci in zip(c_lat, c_img):
            cells = [resize(render(s.G, style_mix(c.ws, x.ws, rows), c.noise)[0], tile) for x in s_lat]
            table.append([ci, *cells])
        save_image(tile_grid(table), out, force=force)
        click.echo(f"latentlab: style rows {s.describe(rows)}; wrote {out}")
        return

    if contents or styles:
        raise LatentlabError("--content/--style are for --grid; otherwise give CONTENT STYLE as arguments")
    if len(inputs) != 2:
        raise LatentlabError(f"give CONTENT and STYLE (2 inputs), got {len(inputs)}")
    s = Session.from_kwargs(kw)
    rows = s.rows(layers)
    content, style = s.latent(inputs[0]), s.latent(inputs[1])
    name = f"{content.name}_x_{style.name}"
    compare = outdir / f"{name}_compare.png"
    refuse([compare], force)
    ws = style_mix(content.ws, style.ws, rows)
    res = write_result(outdir, name, s.G, ws, content, network=s.network, force=force,
                       settings={"edit": {"op": "style", "content": str(inputs[0]), "style": str(inputs[1]),
                                          "layers": layers, "rows": rows}})
    src = render(s.G, content.ws, content.noise)[0], render(s.G, style.ws, style.noise)[0]
    save_image(strip([*src, res["image"]]), compare, force=force)
    click.echo(f"latentlab: style rows {s.describe(rows)} from {inputs[1]}; wrote {outdir}/{name}*")

