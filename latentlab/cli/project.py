"""``latentlab project``: find the W / W+ latent of real face photos (GAN inversion)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from .. import api
from ..errors import LatentlabError
from ._common import (
    DEFAULT_PRESET,
    PRESET_HELP,
    FiniteFloat,
    device_option,
    network_option,
    preset_choice,
)
from .engine_options import engine_options

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
    ("id_weight", "--id-weight", FiniteFloat(min=0),
     "Identity loss weight: 1 - cosine of FaceRes face-identity embeddings of render and photo (0 = off)."),
    ("loss_resolution", "--loss-res", click.IntRange(min=32), "Resolution at which losses are computed."),
    ("early_stop_patience", "--early-stop", click.IntRange(min=0), "Stop after N steps without LPIPS gain (0: never)."),
    ("seed", "--seed", int, "Random seed (noise maps, latent noise)."),
    ("precision", "--precision", click.Choice(list(api.PRECISIONS)),
     "fp32 (default; pti: auto) or bf16 autocast for synthesis and LPIPS: faster on CPUs with "
     "AVX512-BF16/AMX; loss ~4e-5 (ffhq-mobile) to ~2e-2 (config-f) relative off. auto: bf16 where "
     "the CPU computes it natively, else fp32."),
    # Pivotal tuning (on with --preset pti; any of these flags turns it on for another preset).
    ("tuning_num_steps", "--pti-steps", click.IntRange(min=0), "Pivotal tuning: most fine-tuning steps."),
    ("tuning_learning_rate", "--pti-lr", FiniteFloat(min=0, min_open=True), "Pivotal tuning: Adam learning rate."),
    ("tuning_lr_rampdown_length", "--pti-lr-rampdown", FiniteFloat(min=0, max=1),
     "Pivotal tuning: fraction of steps for a cosine ramp-down of the learning rate (0 = constant)."),
    ("tuning_lpips_weight", "--pti-lpips-weight", FiniteFloat(min=0), "Pivotal tuning: LPIPS (VGG16) weight."),
    ("tuning_l2_weight", "--pti-l2-weight", FiniteFloat(min=0), "Pivotal tuning: full-resolution pixel MSE weight."),
    ("tuning_id_weight", "--pti-id-weight", FiniteFloat(min=0),
     "Pivotal tuning: identity loss weight (1 - cosine of face-identity embeddings)."),
    ("tuning_locality_weight", "--pti-locality-weight", FiniteFloat(min=0),
     "Pivotal tuning: weight of PTI's locality regulariser (0 = off)."),
    ("tuning_locality_alpha", "--pti-locality-alpha", FiniteFloat(min=0),
     "Pivotal tuning: distance from the pivot of the regulariser's latents."),
    ("tuning_locality_every", "--pti-locality-every", click.IntRange(min=1),
     "Pivotal tuning: apply the regulariser every N steps."),
    ("tuning_locality_resolution", "--pti-locality-res", click.IntRange(min=16),
     "Pivotal tuning: resolution of the regulariser's MSE and LPIPS (default 128)."),
    ("tuning_coarse_fraction", "--pti-coarse", FiniteFloat(min=0, max=1),
     "Pivotal tuning: share of the first steps whose LPIPS runs at --pti-coarse-res (0 = none)."),
    ("tuning_coarse_resolution", "--pti-coarse-res", click.IntRange(min=16),
     "Pivotal tuning: LPIPS resolution of the coarse steps."),
    ("tuning_texture_weight", "--pti-texture", FiniteFloat(min=0),
     "Pivotal tuning: weight of LPIPS on a random full-resolution crop of the face per step (0 = off)."),
    ("tuning_texture_crop", "--pti-texture-crop", click.IntRange(min=32),
     "Pivotal tuning: side in pixels of that crop at full resolution."),
    ("tuning_early_stop_lpips", "--pti-early-stop", FiniteFloat(min=0),
     "Pivotal tuning: stop when LPIPS (VGG16) falls below this (0 = never)."),
    ("tuning_tune", "--pti-tune", click.Choice(["all", "convs"]),
     "Pivotal tuning: all synthesis weights, or all but the style affines."),
    ("tuning_precision", "--pti-precision", click.Choice(list(api.PRECISIONS)),
     "Pivotal tuning: fp32, bf16 autocast, or auto (default: bf16 where the CPU computes it natively)."),
    ("tuning_delta_dtype", "--pti-delta-dtype", click.Choice(["float16", "float32"]),
     "Pivotal tuning: precision of the stored delta (latent.pti.safetensors)."),
]


def config_options(f):
    """Every :data:`CONFIG_FLAGS` flag and ``--optimize-noise/--no-optimize-noise`` (all default None:
    the preset's value)."""
    for field, flag, typ, help_text in reversed(CONFIG_FLAGS):
        f = click.option(flag, field, type=typ, default=None, help=help_text)(f)
    f = click.option("--optimize-noise/--no-optimize-noise", "optimize_noise", default=None,
                     help="Optimise the generator's noise maps (when it has them).")(f)
    return f


@click.command("project")
@click.argument("photos", nargs=-1, required=True, type=click.Path(path_type=Path))
@network_option
@click.option("--preset", type=preset_choice(), default=DEFAULT_PRESET, show_default=True, help=PRESET_HELP)
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
              help="Run the paper's method 1 (pixel loss) and method 2 (VGG feature loss) and write one "
                   "figure 'input | (1) | (2)' per photo.")
@click.option("--force", is_flag=True, help="Overwrite existing outputs (with it, every photo is projected "
                                             "again unless --skip-existing is given too).")
@click.option("--skip-existing/--no-skip-existing", "skip_existing", default=None,
              help="Skip photos already done in OUTDIR: their manifest.jsonl entry says done with the same "
                   "settings and their outputs exist. [default: on, so rerunning a command into the same "
                   "--outdir continues where it stopped and retries the photos that failed; off with --force]. "
                   "With --no-skip-existing, existing outputs are refused unless --force.")
@engine_options
@device_option
@click.pass_context
def command(ctx: click.Context, photos: tuple[Path, ...], network: str, preset: str, outdir: Path, no_align: bool,
            face_index: int, batch: int | None, save_video: bool, compare_methods: bool, force: bool,
            skip_existing: bool | None, engine: str, ray_address: str | None, ray_workers: int | None,
            threads_per_worker: int | None, device: str, optimize_noise: bool | None, **overrides: Any) -> None:
    """Project PHOTO... (files or folders) into the generator's latent space.

    Per photo, in OUTDIR/<photo name>/: aligned.png, reconstruction.png (full resolution),
    compare.png (input | reconstruction), pasted.png (reconstruction pasted back into the
    original photo, original size), latent.npz (ws, noise maps, the alignment transform and the
    settings; every other command accepts it), with --preset pti latent.pti.safetensors (the tuned
    generator's weight changes; keep it beside latent.npz), metrics.json (PSNR, MSE, MS-SSIM,
    LPIPS-Alex, dlib identity distance and verdict, steps, seconds) and, with --save-video,
    progress.mp4.

    \b
    Folders: a photo that cannot be read, aligned or projected is reported with its reason and the
    others go on; OUTDIR/manifest.jsonl gets one line per photo as it finishes (photo, status
    done|failed|skipped, metrics or error, seconds, host/node/pid); the summary line counts done,
    failed and skipped photos, and the exit code is 1 when any failed. Rerunning the same command
    continues (see --skip-existing). Ctrl-C keeps the photos finished so far, discards the ones
    being projected, says how many were and were not written, and exits with 130.
    With --engine ray, OUTDIR must be a folder every node of the cluster sees.
    """
    if skip_existing is None:
        skip_existing = not force

    def on_result(row: dict[str, Any]) -> None:
        if row["status"] == "failed":
            click.echo(f"latentlab: failed: {row['photo']}: {row['error']}")

    s = api.project_photos(photos, outdir, preset, network=network, align=not no_align, face_index=face_index,
                           batch=batch, save_video=save_video, compare_methods=compare_methods, force=force,
                           skip_existing=skip_existing, device=device, engine=engine, ray_address=ray_address,
                           ray_workers=ray_workers, threads_per_worker=threads_per_worker, progress=True,
                           on_result=on_result, optimize_noise=optimize_noise, **overrides)
    click.echo(f"latentlab: {s.line()}; outputs and {s.manifest.name} in {outdir}")
    if s.interrupted:
        extra = (f", {len(s.failed)} failed" if s.failed else "") + (f", {s.skipped} done before" if s.skipped else "")
        click.echo(f"latentlab: interrupted: {s.done} photo(s) written, {s.not_written} not written{extra}; "
                   "rerun the same command to continue", err=True)
        ctx.exit(130)
    if s.failed:
        photo, reason = s.failed[0]
        first = reason if Path(photo).name in reason else f"{photo}: {reason}"
        if len(s.failed) == 1:
            raise LatentlabError(first)
        raise LatentlabError(f"{len(s.failed)} of {s.total} photos failed; first: {first}; every reason is in "
                             f"{s.manifest}")
