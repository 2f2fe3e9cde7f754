"""``latentlab interpolate``: a morph video or GIF through a list of seeds."""

from __future__ import annotations

import os
from pathlib import Path

import click

from ..errors import LatentlabError
from ._common import (FiniteFloat, check_truncation, device_option, load_model, network_option, refuse_existing,
                      truncation_options)

VIDEO_SUFFIXES = (".mp4", ".mkv", ".mov", ".avi", ".webm")
#: ffmpeg codec per container (H.264 everywhere except WebM, which only takes VP8/VP9/AV1).
VIDEO_CODECS = {".webm": "libvpx-vp9"}


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
    import numpy as np
    import torch
    from PIL import Image
    from tqdm import tqdm

    from ..sampling import class_labels, keyframe_path, lerp, parse_seeds, slerp, to_uint8, z_from_seeds

    suffix = out.suffix.lower()
    if suffix != ".gif" and suffix not in VIDEO_SUFFIXES:
        raise LatentlabError(f"{out}: unsupported output type {out.suffix or '(none)'} "
                             f"(use .gif or one of {', '.join(VIDEO_SUFFIXES)})")
    seed_list = parse_seeds(seeds)
    if len(seed_list) < 2:
        raise LatentlabError("--seeds needs at least two different seeds")
    schedule = keyframe_path(len(seed_list), frames, loop)
    refuse_existing([out], force)

    G = load_model(network, device, w_avg_samples)
    check_truncation(G, truncation_cutoff)
    dev = G.w_avg.device
    class_labels(class_idx, G.c_dim, 1)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.stem}.{os.getpid()}.part{out.suffix}")

    def to_frames(imgs: np.ndarray) -> list[np.ndarray]:
        result = []
        for img in imgs:
            if img.shape[2] == 1:
                img = np.repeat(img, 3, axis=2)
            if size is not None and size != img.shape[0]:
                img = np.asarray(Image.fromarray(img).resize((size, size), Image.LANCZOS))
            result.append(img)
        return result

    writer, gif_frames = None, []
    try:
        if suffix != ".gif":
            import imageio.v2 as imageio

            writer = imageio.get_writer(tmp, fps=fps, quality=8, codec=VIDEO_CODECS.get(suffix, "libx264"))
        with torch.inference_mode():
            keys_z = z_from_seeds(seed_list, G.z_dim, dev)
            c_keys = class_labels(class_idx, G.c_dim, len(seed_list), dev)
            keys_ws = G.mapping(keys_z, c_keys, truncation_psi=truncation_psi,
                                truncation_cutoff=truncation_cutoff)
            for start in tqdm(range(0, len(schedule), batch), unit="batch", desc="interpolate"):
                part = schedule[start:start + batch]
                i = torch.tensor([p[0] for p in part], device=dev)
                j = torch.tensor([p[1] for p in part], device=dev)
                t = torch.tensor([p[2] for p in part], device=dev, dtype=keys_z.dtype)
                if space == "w":
                    ws = lerp(keys_ws[i], keys_ws[j], t[:, None, None].to(keys_ws.dtype))
                else:
                    z = slerp(keys_z[i], keys_z[j], t)
                    c = class_labels(class_idx, G.c_dim, len(part), dev)
                    ws = G.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)
                imgs = to_frames(to_uint8(G.synthesis(ws, noise_mode=noise_mode)))
                if writer is not None:
                    for frame in imgs:
                        writer.append_data(frame)
                else:
                    gif_frames.extend(Image.fromarray(f) for f in imgs)
        if writer is not None:
            writer.close()
            writer = None
        else:
            gif_frames[0].save(tmp, format="GIF", save_all=True, append_images=gif_frames[1:],
                               duration=max(1, round(1000 / fps)), loop=0, optimize=False)
        if not tmp.is_file() or tmp.stat().st_size == 0:
            raise LatentlabError(f"{out}: the video encoder wrote nothing (see the ffmpeg messages above)")
        os.replace(tmp, out)
    finally:
        if writer is not None:
            writer.close()
        if tmp.exists():
            tmp.unlink()
    click.echo(f"wrote {out} ({len(schedule)} frames, {space} space)")
