"""``latentlab demo``: the main job on the embedded default model, on a real unaligned photo."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click

from ..errors import LatentlabError
from ._common import device_option


def demo_photo(dest: Path) -> Path:
    """Write scikit-image's public-domain ``astronaut`` photo (512x512, not aligned) to ``dest``."""
    from skimage import data

    from ..imageio import save_image

    if not dest.exists():
        save_image(data.astronaut(), dest)
    return dest


@click.command("demo")
@click.option("--outdir", type=click.Path(file_okay=False, path_type=Path), default=Path("out/demo"),
              show_default=True)
@click.option("--photos", "photos_dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
              default=None, help="Also project the photos in this folder.")
@click.option("--num-steps", type=click.IntRange(min=1), default=None,
              help="Projection steps (default 100, --quick 20).")
@click.option("--quick", is_flag=True, help="A minute-long run: fewer samples and steps.")
@click.option("--force", is_flag=True, help="Overwrite an earlier demo's files.")
@device_option
def command(outdir: Path, photos_dir: Path | None, num_steps: int | None, quick: bool, force: bool,
            device: str) -> None:
    """Sample faces from ffhq-mobile and project a real photo (astronaut) into W+, with alignment
    and paste-back. Prints progress and where the results are."""
    import numpy as np
    import torch
    from PIL import Image

    from ..imageio import save_image, tensor_to_images
    from ..inversion import PRESETS
    from ..inversion.runner import collect_photos, project_photos
    from ..registry import load_generator, resolve_device
    from ..sampling import image_grid, z_from_seeds

    t0 = time.perf_counter()
    if outdir.is_dir() and any(outdir.iterdir()) and not force:
        raise LatentlabError(f"{outdir} is not empty; use --force to overwrite the earlier demo or pick --outdir")
    outdir.mkdir(parents=True, exist_ok=True)
    click.echo("[1/3] loading ffhq-mobile")
    G = load_generator("ffhq-mobile", resolve_device(device), progress=True)

    seeds = [0, 1, 2, 3] if not quick else [0, 1]
    click.echo(f"[2/3] sampling seeds {seeds} (truncation 0.7)")
    with torch.inference_mode():
        z = z_from_seeds(seeds, G.z_dim, G.device)
        imgs = tensor_to_images(G(z, truncation_psi=0.7).clamp(-1, 1))
    thumbs = [np.asarray(Image.fromarray(im).resize((256, 256), Image.LANCZOS)) for im in imgs]
    save_image(image_grid(np.stack(thumbs), cols=len(thumbs)), outdir / "samples.png", force=True)

    steps = num_steps or (20 if quick else 100)
    photos = [demo_photo(outdir / "astronaut.png")]
    if photos_dir is not None:
        photos += collect_photos([photos_dir])
    click.echo(f"[3/3] projecting {len(photos)} photo(s), {steps} steps (preset seed, W+)")
    cfg = PRESETS["seed"].replace(num_steps=steps)
    metrics = project_photos(photos, network="ffhq-mobile", config=cfg, outdir=outdir / "projection",
                             G=G, force=True, preset="seed")
    summary = {"seconds": time.perf_counter() - t0, "steps": steps, "projections": metrics}
    (outdir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    for m in metrics:
        click.echo(f"  {Path(m['photo']).name}: LPIPS {m['lpips']:.3f}  PSNR {m['psnr']:.1f} dB  "
                   f"identity cos {m['identity_cosine'] if m['identity_cosine'] is None else round(m['identity_cosine'], 3)}")
    click.echo(f"latentlab demo: done in {summary['seconds']:.0f} s; results in {outdir}/ "
               f"(samples.png, projection/*/compare.png, pasted.png)")
