"""``latentlab project``: find the W / W+ latent of real face photos (GAN inversion)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ._common import FiniteFloat, device_option, network_option

#: ProjectorConfig field -> (flag, type, help). Every weight and schedule value is a flag; an unset
#: flag keeps the preset's value.
CONFIG_FLAGS: list[tuple[str, str, Any, str]] = [
    ("space", "--space", click.Choice(["w", "w+"]), "Optimise one w for all rows (w) or one per row (w+)."),
    ("num_steps", "--num-steps", click.IntRange(min=1), "Optimisation steps."),
    ("w_avg_samples", "--w-avg-samples", click.IntRange(min=1), "Mapping samples for the start latent w_avg."),
    ("initial_learning_rate", "--lr", FiniteFloat(min=0, min_open=True),
     "Peak Adam learning rate (default: the model family's, 0.1 for StyleGAN2)."),
    ("lr_rampup_length", "--lr-rampup", FiniteFloat(0, 1), "Fraction of steps for the lr ramp-up."),
    ("lr_rampdown_length", "--lr-rampdown", FiniteFloat(0, 1), "Fraction of steps for the cosine ramp-down."),
    ("initial_noise_factor", "--noise-factor", FiniteFloat(min=0), "Initial latent noise, in units of w_std."),
    ("noise_ramp_length", "--noise-ramp", FiniteFloat(0, 1), "Fraction of steps over which latent noise decays."),
    ("regularize_noise_weight", "--noise-reg", FiniteFloat(min=0), "Noise-map autocorrelation penalty weight."),
    ("rec_weight", "--rec-weight", FiniteFloat(min=0), "Pixel MSE weight (method 1)."),
    ("lpips_weight", "--lpips-weight", FiniteFloat(min=0), "LPIPS / VGG16 feature loss weight (method 2)."),
    ("loss_resolution", "--loss-res", click.IntRange(min=32), "Resolution at which losses are computed."),
    ("early_stop_patience", "--early-stop", click.IntRange(min=0), "Stop after N steps without LPIPS gain (0: never)."),
    ("seed", "--seed", int, "Random seed (noise maps, latent noise)."),
    ("precision", "--precision", click.Choice(["fp32", "bf16"]),
     "fp32 (default) or bf16 autocast for synthesis and LPIPS: faster on GPUs and CPUs with "
     "AVX512-BF16/AMX; loss ~4e-5 (ffhq-mobile) to ~2e-2 (config-f) relative off."),
]


def config_options(f):
    for field, flag, typ, help_text in reversed(CONFIG_FLAGS):
        f = click.option(flag, field, type=typ, default=None, help=help_text)(f)
    f = click.option("--optimize-noise/--no-optimize-noise", "optimize_noise", default=None,
                     help="Optimise the generator's noise maps (when it has them).")(f)
    return f


def build_config(preset: str, overrides: dict[str, Any]):
    from ..inversion import PRESETS

    cfg = PRESETS[preset]
    changes = {k: v for k, v in overrides.items() if v is not None}
    return cfg.replace(**changes) if changes else cfg


@click.command("project")
@click.argument("photos", nargs=-1, required=True, type=click.Path(path_type=Path))
@network_option
@click.option("--preset", type=click.Choice(["seed", "nvidia", "fast"]), default="seed", show_default=True,
              help="seed: W+, pixel 0.5 + LPIPS 1, noise reg 5e5; nvidia: W, LPIPS only, 1e5, 1000 steps; "
                   "fast: best quality per second on CPU.")
@config_options
@click.option("--outdir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Output folder; one subfolder per photo.")
@click.option("--no-align", is_flag=True, help="Photos are already FFHQ-aligned: only resize them.")
@click.option("--face-index", type=click.IntRange(min=0), default=0, show_default=True,
              help="Which face when a photo has several (0 = largest).")
@click.option("--batch", type=click.IntRange(min=1), default=None,
              help="Photos optimised together in one batch [default: 4 on a GPU; 1 on CPU, where a batch "
                   "of 4 saves no time per photo and needs 3x the memory].")
@click.option("--save-video", is_flag=True, help="Also write an MP4 of the optimisation.")
@click.option("--compare-methods", is_flag=True,
              help="Run the seed's method 1 (pixel loss) and method 2 (VGG feature loss) and write one "
                   "figure 'input | (1) | (2)' per photo.")
@click.option("--force", is_flag=True, help="Overwrite existing outputs.")
@device_option
def command(photos: tuple[Path, ...], network: str, preset: str, outdir: Path, no_align: bool,
            face_index: int, batch: int | None, save_video: bool, compare_methods: bool, force: bool, device: str,
            optimize_noise: bool | None, **overrides: Any) -> None:
    """Project PHOTO... (files or folders) into the generator's latent space.

    Per photo, in OUTDIR/<photo name>/: aligned.png, reconstruction.png (full resolution),
    compare.png (input | reconstruction), pasted.png (reconstruction pasted back into the
    original photo, original size), latent.npz (ws, noise maps, the alignment transform and the
    settings; every other command accepts it), metrics.json (LPIPS, PSNR, SSIM, identity
    similarity, steps, seconds) and, with --save-video, progress.mp4.
    Ctrl-C stops the optimisation and keeps the best latents found so far.
    """
    from ..inversion.runner import project_photos, collect_photos

    overrides["optimize_noise"] = optimize_noise
    cfg = build_config(preset, overrides)
    files = collect_photos(photos)
    project_photos(files, network=network, config=cfg, outdir=outdir, align=not no_align,
                   face_index=face_index, batch=batch, save_video=save_video,
                   compare_methods=compare_methods, force=force, device=device, preset=preset)
    click.echo(f"latentlab: wrote {len(files)} projection(s) to {outdir}")
