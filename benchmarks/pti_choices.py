"""Compare pivotal-tuning settings on one photo: fidelity and edit strength at checkpoints.

For a photo, projects a pivot (W+, or W with ``--pivot-space w``) with the ``pti`` preset's schedule
(cached under ``--cache``), then for each tuning setting (a JSON list of ``TuningConfig`` fields plus
a ``name``) tunes and, at the given steps, measures the tuned generator's render of the pivot (PSNR
and LPIPS-Alex at 256 px, dlib distance to the aligned photo) and smile +1 sigma (mouth width,
landmarks 48-54 over the outer eye corners 36-45, in percent; dlib distance). The first line is the
pivot drawn by the base generator. Seconds exclude the measuring.

    .venv/bin/python benchmarks/pti_choices.py ../shared/photos/portraits/010f.jpg --pivot-steps 60 \\
        --runs '[{"name": "l2x10", "l2_weight": 10}, {"name": "pti", "l2_weight": 1, "locality_weight": 0}]' \\
        --checks 50,70,100
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from eval_tuned_edits import mouth  # this folder is on sys.path when run as a script


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("photo", type=Path)
    ap.add_argument("--pivot-steps", type=int, default=30)
    ap.add_argument("--pivot-space", choices=("w", "w+"), default="w+",
                    help="latent space of the pivot (PTI, and latentlab's pti preset, pivot in W)")
    ap.add_argument("--pivot-loss-res", type=int, default=None,
                    help="LPIPS resolution of the pivot's projection (default: the preset's)")
    ap.add_argument("--runs", default='[{"name": "default"}]', help="JSON list of TuningConfig fields + name")
    ap.add_argument("--checks", default="50,70,100", help="steps at which to measure")
    ap.add_argument("--cache", type=Path, default=Path("out/pti_choices"))
    args = ap.parse_args()

    import torch

    import latentlab as ll
    from latentlab.editing.attributes import find_attribute
    from latentlab.editing.directions import apply_direction, load_direction
    from latentlab.editing.layers import parse_layers
    from latentlab.faces.photo import load_photo
    from latentlab.imageio import image_to_tensor, tensor_to_images
    from latentlab.inversion import PRESETS, TuningConfig
    from latentlab.inversion.project import project
    from latentlab.inversion.pti import pivotal_tuning, tuning_identity_loss
    from latentlab.losses import LPIPS
    from latentlab.metrics import identity_metrics_dlib, image_metrics
    from latentlab.models.base import override_noise

    runs = json.loads(args.runs)
    checks = {int(x) for x in args.checks.split(",")}
    G = ll.load_generator("ffhq-mobile", progress=False)
    lpips = LPIPS().eval()
    smile = load_direction(find_attribute("smile", "ffhq-mobile"))
    # the fitting samples' spread (0.579), the unit of this script's recorded tables; the CLI's sigma
    # (`--smile 1s`, Direction.sigma()) is 1/psi = 1.43x that
    sigma = float(smile.meta.get("projection_std", 1.0))
    rows = parse_layers(smile.layers, G)
    photo = load_photo(args.photo, G.img_resolution)
    aligned = photo.aligned
    target = image_to_tensor(aligned)

    def render(Gx, ws, noise) -> torch.Tensor:
        with torch.no_grad(), override_noise(Gx, noise):
            return Gx.synthesis(ws, noise_mode="const").clamp(-1, 1)

    def measure(tag: str, Gx, ws, noise, seconds: float) -> None:
        img = render(Gx, ws, noise)
        u8 = tensor_to_images(img)[0]
        m = image_metrics(img, target, resolution=256)[0]
        smiled = tensor_to_images(render(Gx, apply_direction(ws, smile.vector, sigma, rows), noise))[0]
        print(f"{tag:34s} {seconds:6.1f}s  PSNR {m['psnr']:.2f}  LPIPS-Alex {m['lpips_alex']:.4f}  dlib "
              f"{identity_metrics_dlib(aligned, u8)['dlib_distance']:.3f}  smile+1: mouth "
              f"{100 * (mouth(smiled) / mouth(u8) - 1):+.1f}% dlib "
              f"{identity_metrics_dlib(aligned, smiled)['dlib_distance']:.3f}", flush=True)

    args.cache.mkdir(parents=True, exist_ok=True)
    space = "" if args.pivot_space == "w+" else "_w"
    res = "" if args.pivot_loss_res is None else f"_r{args.pivot_loss_res}"
    key = args.cache / f"pivot_{args.photo.stem}_{args.pivot_steps}{space}{res}.pt"
    if key.is_file():
        saved = torch.load(key, weights_only=True)
        ws, noise, seconds = saved["ws"], saved["noise"], float(saved["seconds"])
    else:
        t0 = time.perf_counter()
        cfg = PRESETS["pti"].replace(num_steps=args.pivot_steps, space=args.pivot_space, tuning=None)
        if args.pivot_loss_res is not None:
            cfg = cfg.replace(loss_resolution=args.pivot_loss_res)
        r = project(G, target, cfg, lpips_model=lpips, progress=False)
        ws, noise, seconds = r.ws, r.noise, time.perf_counter() - t0
        torch.save({"ws": ws, "noise": noise, "seconds": torch.tensor(seconds)}, key)
    measure(f"{args.pivot_space} pivot ({args.pivot_steps} steps)", G, ws, noise, seconds)
    for run in runs:
        run = dict(run)
        name = run.pop("name", "run")
        state = {"t0": time.perf_counter(), "measuring": 0.0}

        def at_checks(ev, name: str = name, state: dict = state) -> None:
            """Measure the generator being tuned after the checked steps (``ev``: a "tune" Progress)."""
            if ev.stage == "tune" and ev.step in checks:
                m0 = time.perf_counter()
                measure(f"{name} @{ev.step}", ev.state["G"], ws, noise, m0 - state["t0"] - state["measuring"])
                state["measuring"] += time.perf_counter() - m0

        cfg = TuningConfig(**run)
        pivotal_tuning(G, target, ws, noise, cfg, lpips_model=lpips, identity_loss=tuning_identity_loss(cfg, G.device),
                       progress=at_checks)


if __name__ == "__main__":
    main()
