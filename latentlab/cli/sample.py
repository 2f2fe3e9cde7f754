"""``latentlab sample``: images for a list of seeds, a grid, and the latents that made them."""

from __future__ import annotations

import math
from pathlib import Path

import click

from ._common import (check_truncation, device_option, load_model, network_option, refuse_existing,
                      save_png, truncation_options)


@click.command("sample")
@network_option
@click.option("--seeds", default="0-7", show_default=True, help="Seeds, e.g. 0-7 or 1,3,5-9.")
@truncation_options
@click.option("--outdir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Output folder (created if missing).")
@click.option("--batch", type=click.IntRange(min=1), default=4, show_default=True,
              help="Images per forward pass.")
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
    import numpy as np
    import torch
    from PIL import Image
    from tqdm import tqdm

    from ..sampling import class_labels, image_grid, parse_seeds, to_uint8, z_from_seeds

    seed_list = parse_seeds(seeds)
    png_paths = [outdir / f"seed{s:04d}.png" for s in seed_list]
    grid_path, npz_path = outdir / "grid.png", outdir / "samples.npz"
    refuse_existing([*png_paths, grid_path, npz_path], force)

    G = load_model(network, device, w_avg_samples)
    check_truncation(G, truncation_cutoff)
    dev = G.w_avg.device
    class_labels(class_idx, G.c_dim, 1)  # validate before any work
    outdir.mkdir(parents=True, exist_ok=True)

    all_z, all_ws, thumbs = [], [], []
    tile = min(grid_tile, G.img_resolution)
    with torch.inference_mode(), tqdm(total=len(seed_list), unit="img", desc="sample") as bar:
        for start in range(0, len(seed_list), batch):
            chunk = seed_list[start:start + batch]
            z = z_from_seeds(chunk, G.z_dim, dev)
            c = class_labels(class_idx, G.c_dim, len(chunk), dev)
            ws = G.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)
            imgs = to_uint8(G.synthesis(ws, noise_mode=noise_mode))
            for k, img in enumerate(imgs):
                save_png(img, png_paths[start + k])
                if tile < img.shape[0]:
                    pil = Image.fromarray(img if img.shape[2] == 3 else img[:, :, 0])
                    small = np.asarray(pil.resize((tile, tile), Image.LANCZOS))
                    thumbs.append(small.reshape(tile, tile, -1))
                else:
                    thumbs.append(img)
            all_z.append(z.cpu().numpy())
            all_ws.append(ws.float().cpu().numpy())
            bar.update(len(chunk))

    cols = grid_cols or math.ceil(math.sqrt(len(seed_list)))
    save_png(image_grid(np.stack(thumbs), cols=cols), grid_path)
    extra = {}
    if G.c_dim > 0:
        extra["c"] = class_labels(class_idx, G.c_dim, len(seed_list)).numpy()
    np.savez(npz_path, seeds=np.asarray(seed_list, dtype=np.int64), z=np.concatenate(all_z),
             ws=np.concatenate(all_ws), truncation_psi=np.float32(truncation_psi),
             truncation_cutoff=np.int64(-1 if truncation_cutoff is None else truncation_cutoff),
             noise_mode=np.str_(noise_mode), network=np.str_(network), **extra)
    click.echo(f"wrote {len(seed_list)} images, {grid_path.name} and {npz_path.name} to {outdir}")
