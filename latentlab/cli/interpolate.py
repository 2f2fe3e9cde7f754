"""``latentlab interpolate``: a morph video or GIF through a list of seeds."""

from __future__ import annotations

from pathlib import Path

import click

from .. import api
from ._common import (
    FiniteFloat,
    check_truncation,
    device_option,
    load_model,
    network_option,
    truncation_options,
)


@click.command("interpolate")
@network_option
@click.option("--seeds", required=True, help="Keyframe seeds in order, at least two, e.g. 0,5,9.")
@click.option("--frames", type=click.IntRange(min=1), default=30, show_default=True,
              help="Frames from one keyframe to the next.")
@click.option("--space", type=click.Choice(["w", "z"]), default="w", show_default=True,
              help="Interpolate linearly in W (after mapping and truncation) or spherically in Z.")
@click.option("--loop/--no-loop", default=False, show_default=True,
              help="Return from the last seed to the first, for a seamless loop.")
@truncation_options
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Output file: .gif, or a video (.mp4, .webm, .mkv, .mov, .avi; needs imageio-ffmpeg).")
@click.option("--fps", type=FiniteFloat(min=0.1), default=30.0, show_default=True)
@click.option("--size", type=click.IntRange(min=8), default=None,
              help="Resize frames to SIZE x SIZE pixels (default: the model's resolution).")
@click.option("--batch", type=click.IntRange(min=1), default=4, show_default=True,
              help="Frames per forward pass.")
@click.option("--force", is_flag=True, help="Overwrite --out if it exists.")
@device_option
def command(network: str, seeds: str, frames: int, space: str, loop: bool, truncation_psi: float,
            truncation_cutoff: int | None, noise_mode: str, class_idx: int | None,
            w_avg_samples: int | None, out: Path, fps: float, size: int | None, batch: int, force: bool,
            device: str) -> None:
    """Render an interpolation through SEEDS: lerp in W, or slerp in Z.

    Without --loop the video has frames*(K-1)+1 frames and ends on the last seed; with --loop it
    has frames*K and returns to the first seed. Videos are streamed to ffmpeg frame by frame;
    a GIF is held in memory until written (use --size for long GIFs of 1024 px models).
    """
    seed_list = api.parse_seeds(seeds)
    api.refuse_existing([out], force)  # before loading anything
    G = load_model(network, device, w_avg_samples)
    check_truncation(G, truncation_cutoff)
    n = api.interpolate(G, seed_list, out, frames=frames, space=space, loop=loop, trunc=truncation_psi,
                        trunc_cutoff=truncation_cutoff, noise_mode=noise_mode, class_idx=class_idx, fps=fps,
                        size=size, batch=batch, force=force, progress=True)
    click.echo(f"wrote {out} ({n} frames, {space} space)")
