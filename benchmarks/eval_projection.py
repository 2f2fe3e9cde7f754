"""Projection quality on real photos: mean LPIPS / PSNR / SSIM / identity and wall time per preset.

Runs :func:`latentlab.engine.runs.project_folder` (the folder run of ``latentlab project``) on photo
folders from ``../shared/photos`` and prints one table row per folder plus the overall mean (LPIPS:
LPIPS-Alex, SSIM: MS-SSIM, id cos: FaceRes ID cosine, same%: dlib's same-person verdict); writes
every per-photo metric to JSON.

    .venv/bin/python benchmarks/eval_projection.py --photos ../shared/photos/ffhq --limit 4 \
        --photos ../shared/photos/celebahq --limit 4 --preset paper --num-steps 200 --out out/eval
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photos", action="append", required=True, help="folder of photos (repeatable)")
    ap.add_argument("--limit", action="append", type=int, default=[], help="photos per folder (repeatable)")
    ap.add_argument("--network", default="ffhq-mobile")
    ap.add_argument("--preset", default="paper", choices=["paper", "nvidia", "fast", "pti"])
    ap.add_argument("--num-steps", type=int, default=None)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--no-align", action="store_true", help="photos are FFHQ-aligned already")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--out", type=Path, default=Path("out/eval_projection"))
    args = ap.parse_args()

    from latentlab.engine.outputs import collect_photos
    from latentlab.engine.runs import project_folder
    from latentlab.inversion import PRESETS
    from latentlab.registry import load_generator, resolve_device

    cfg = PRESETS[args.preset]
    if args.num_steps:
        cfg = cfg.replace(num_steps=args.num_steps)
    G = load_generator(args.network, resolve_device(args.device))
    rows, everything = [], []
    for i, folder in enumerate(args.photos):
        files = collect_photos([Path(folder)])
        if i < len(args.limit):
            files = files[: args.limit[i]]
        t0 = time.perf_counter()
        run = project_folder(files, network=args.network, config=cfg, outdir=args.out / Path(folder).name,
                             align=not args.no_align, batch=args.batch, G=G, force=True, preset=args.preset,
                             progress=True)
        if run.interrupted:
            raise KeyboardInterrupt
        for photo, reason in run.failed:
            print(f"failed: {photo}: {reason}")
        metrics = run.metrics
        wall = time.perf_counter() - t0
        everything += metrics
        rows.append((Path(folder).name, metrics, wall))

    def mean(ms, key):
        vals = [m[key] for m in ms if m.get(key) is not None]
        return statistics.fmean(vals) if vals else float("nan")

    print(f"\nnetwork {args.network}, preset {args.preset}, {cfg.num_steps} steps, space {cfg.space}, "
          f"batch {args.batch}")
    print(f"{'set':<12}{'n':>4}{'LPIPS':>8}{'PSNR':>8}{'SSIM':>7}{'id cos':>8}{'same%':>7}{'s/photo':>9}")
    for name, ms, wall in rows + [("all", everything, sum(w for *_, w in rows))]:
        same = [m["dlib_same_person"] for m in ms if m.get("dlib_same_person") is not None]
        print(f"{name:<12}{len(ms):>4}{mean(ms, 'lpips_alex'):>8.3f}{mean(ms, 'psnr'):>8.2f}{mean(ms, 'ms_ssim'):>7.3f}"
              f"{mean(ms, 'id_cosine'):>8.3f}{100 * sum(same) / max(len(same), 1):>7.0f}"
              f"{wall / max(len(ms), 1):>9.1f}")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "metrics.json").write_text(json.dumps({"preset": args.preset, "num_steps": cfg.num_steps,
                                                       "network": args.network, "photos": everything}, indent=2))


if __name__ == "__main__":
    main()
