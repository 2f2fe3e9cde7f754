"""``latentlab sample``: images for a list of seeds, a grid, and the latents that made them."""

from __future__ import annotations

from pathlib import Path

import click

from .. import api
from ._common import (
    check_truncation,
    device_option,
    load_model,
    network_option,
    truncation_options,
)


@click.command("sample")
@network_option
@click.option("--seeds", default="0-7", show_default=True, help="Seeds, e.g. 0-7 or 1,3,5-9.")
@truncation_options
@click.option("--outdir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Output folder (created if missing).")
@click.option("--batch", type=click.IntRange(min=1), default=4, show_default=True,
              help="Images drawn per forward pass (each seed is mapped on its own: its face does not depend "
                   "on the other seeds).")
@click.option("--grid-cols", type=click.IntRange(min=1), default=None,
              help="Grid columns (default: ceil(sqrt(N))).")
@click.option("--grid-tile", type=click.IntRange(min=8), default=256, show_default=True,
              help="Largest tile size in grid.png; bigger images are downscaled in the grid only.")
@click.option("--force", is_flag=True, help="Overwrite existing output files.")
@device_option
def command(network: str, seeds: str, truncation_psi: float, truncation_cutoff: int | None,
            noise_mode: str, class_idx: int | None, w_avg_samples: int | None, outdir: Path,
            batch: int, grid_cols: int | None, grid_tile: int, force: bool, device: str) -> None:
    """Generate one PNG per seed (seedNNNN.png), grid.png and samples.npz.

    samples.npz holds `seeds` [N], `z` [N, z_dim] and `ws` [N, num_ws, w_dim] (after truncation):
    `G.synthesis(ws)` reproduces the PNGs (exactly with --noise-mode const or none).
    Existing files in --outdir are never overwritten without --force: the command stops with an
    error before computing anything.
    """
    seed_list = api.parse_seeds(seeds)
    outputs = [outdir / f"seed{s:04d}.png" for s in seed_list] + [outdir / "grid.png", outdir / "samples.npz"]
    api.refuse_existing(outputs, force)  # before loading anything

    G = load_model(network, device, w_avg_samples)
    check_truncation(G, truncation_cutoff)
    faces = api.sample(G, seed_list, truncation_psi, trunc_cutoff=truncation_cutoff, noise_mode=noise_mode,
                       class_idx=class_idx, network=network)
    faces.save(outdir, force=force, batch=batch, grid_cols=grid_cols, grid_tile=grid_tile, progress=True)
    click.echo(f"wrote {len(seed_list)} images, grid.png and samples.npz to {outdir}")
