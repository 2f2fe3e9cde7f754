"""Photos per hour of ``latentlab project --engine ray`` with 1 and 2 workers at equal total threads.

    python benchmarks/bench_ray.py                      # ffhq-mobile, --preset fast, 4 aligned FFHQ photos
    python benchmarks/bench_ray.py --tiny --num-steps 2 # a smoke run with a 32 px generator (seconds)

Each worker count runs the same photos on one local Ray started with ``--total-threads`` CPUs,
each worker getting total/W threads. Printed per worker count: wall time, photos/hour over the
whole run (actor start-up included), the mean per-photo projection seconds on a worker (from
manifest.jsonl), and the scaling efficiency ``rate(W) / (W * rate(1))``; then, on paper from the
measured steady-state per-photo time, hours for 70,000 FFHQ photos on N workers of this kind.
Run it alone on the machine: it uses every thread it is given. ``--json`` writes the numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--network", default="ffhq-mobile")
    ap.add_argument("--photos", type=Path, default=REPO.parent / "shared" / "photos" / "ffhq",
                    help="folder of FFHQ-aligned photos (projected with --no-align)")
    ap.add_argument("--count", type=int, default=4, help="photos per worker count (a multiple of 2)")
    ap.add_argument("--preset", default="fast", choices=["paper", "nvidia", "fast", "pti"])
    ap.add_argument("--num-steps", type=int, default=None, help="override the preset's steps")
    ap.add_argument("--workers", default="1,2", help="worker counts to compare")
    ap.add_argument("--total-threads", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--tiny", action="store_true", help="smoke test: a random 32 px generator, 64 px photos")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()

    import ray

    from latentlab.engine.outputs import collect_photos
    from latentlab.engine.runs import project_folder
    from latentlab.inversion import PRESETS

    cfg = PRESETS[args.preset]
    if args.num_steps:
        cfg = cfg.replace(num_steps=args.num_steps)
    tmp = Path(tempfile.mkdtemp(prefix="bench_ray_"))
    files = collect_photos([args.photos])[: args.count]
    network = args.network
    if args.tiny:
        import torch
        from PIL import Image

        from latentlab.checkpoints.native import save_native
        from latentlab.models import build_generator

        torch.manual_seed(0)
        G = build_generator("stylegan2", dict(z_dim=16, w_dim=16, img_resolution=32, img_channels=3,
                                              mapping_kwargs=dict(num_layers=2),
                                              synthesis_kwargs=dict(channel_base=256, channel_max=16)))
        network = str(save_native("stylegan2", G.config, G.state_dict(), tmp / "tiny32.safetensors"))
        (tmp / "photos").mkdir()
        for f in files:
            Image.open(f).convert("RGB").resize((64, 64)).save(tmp / "photos" / f"{f.stem}.png")
        files = collect_photos([tmp / "photos"])
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    ray.init(num_cpus=args.total_threads, include_dashboard=False, log_to_driver=False)
    rows = []
    try:
        for w in [int(x) for x in args.workers.split(",")]:
            threads = max(1, args.total_threads // w)
            out = tmp / f"out_w{w}"
            t0 = time.perf_counter()
            s = project_folder(files, network=network, config=cfg, outdir=out, align=False, device="cpu",
                               preset=args.preset, engine="ray", ray_workers=w, threads_per_worker=threads,
                               progress=False)
            wall = time.perf_counter() - t0
            manifest = [json.loads(x) for x in (out / "manifest.jsonl").read_text().splitlines()]
            per_photo = statistics.fmean(r["seconds"] for r in manifest if r["status"] == "done") if s.done else float("nan")
            rows.append({"workers": w, "threads_per_worker": threads, "photos": s.done, "failed": len(s.failed),
                         "wall_s": wall, "photos_per_hour": 3600 * s.done / wall, "per_photo_s": per_photo,
                         "nodes": sorted({r["node_id"] for r in manifest}), "pids": sorted({r["pid"] for r in manifest})})
    finally:
        ray.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)
    base = rows[0]["photos_per_hour"] / rows[0]["workers"]
    print(f"\n{network}, preset {args.preset} ({cfg.num_steps} steps), {len(files)} photos, "
          f"{args.total_threads} threads in all")
    print(f"{'workers':>8}{'threads':>8}{'wall s':>9}{'photos/h':>10}{'s/photo':>9}{'efficiency':>11}")
    for r in rows:
        r["efficiency"] = r["photos_per_hour"] / (r["workers"] * base)
        print(f"{r['workers']:>8}{r['threads_per_worker']:>8}{r['wall_s']:>9.1f}{r['photos_per_hour']:>10.1f}"
              f"{r['per_photo_s']:>9.1f}{r['efficiency']:>11.2f}")
    best = rows[-1]
    print(f"\n70,000 photos at the measured {best['per_photo_s']:.1f} s per photo per worker "
          f"({best['threads_per_worker']} threads each; workers on their own cores, start-up not counted):")
    for n in (1, 8, 64, 256):
        print(f"  {n:>4} workers: {70000 * best['per_photo_s'] / n / 3600:9.1f} h")
    if args.json:
        args.json.write_text(json.dumps({"network": network, "preset": args.preset, "num_steps": cfg.num_steps,
                                         "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
