"""Where a pivotal-tuning step's time goes: the generator's forward and backward, the LPIPS
network's, the locality regulariser's, and what the synthesis costs when it stops at a lower block.

One sample of the model as the photo, one pivot, ``--repeats`` timed runs of each part after one
warm-up; prints the median seconds per part and its share of a full step (LPIPS at 256 px plus
10 x full-resolution MSE, as ``pivotal_tuning`` computes it without its locality term)::

    python benchmarks/bench_tuning_step.py --precisions fp32,bf16 --repeats 5
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--network", default="ffhq-mobile")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--precisions", default="fp32,bf16")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()

    import copy

    import numpy as np
    import torch
    import torch.nn.functional as F

    from latentlab.inversion.pti import locality_latents, tunable_parameters
    from latentlab.losses import LPIPS
    from latentlab.ops import fast_bfloat16, tune_cpu_allocator
    from latentlab.registry import load_generator

    tune_cpu_allocator()
    if args.threads:
        torch.set_num_threads(args.threads)
    G = load_generator(args.network, "cpu", progress=False).eval().requires_grad_(False)
    z = torch.from_numpy(np.random.RandomState(5).randn(2, G.z_dim).astype(np.float32))
    with torch.no_grad():
        ws = G.mapping(z, None, truncation_psi=0.7)
        target = G.synthesis(ws[1:2], noise_mode="const").clamp(-1, 1)
    pivot = ws[:1].clone()
    lpips = LPIPS().eval().requires_grad_(False)
    target_small = F.interpolate(target, size=(256, 256), mode="area")
    target_feats = lpips.features(target_small)
    Gt = copy.deepcopy(G)
    params = list(tunable_parameters(Gt).values())
    for p in params:
        p.requires_grad_(True)
    gen = torch.Generator().manual_seed(0)
    feature_blocks = [r for r in (128, 256, 512) if r in getattr(G, "feature_resolutions", [])]

    def timed(fn) -> float:
        fn()
        times = []
        for _ in range(args.repeats):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
        for p in params:
            p.grad = None
        return statistics.median(times)

    rows = []
    for precision in args.precisions.split(","):
        if precision == "bf16" and not fast_bfloat16("cpu"):
            print("bf16: this CPU has no native bfloat16 (AVX512-BF16 / AMX); skipped")
            continue
        ac = dict(device_type="cpu", dtype=torch.bfloat16, enabled=precision == "bf16")

        def g_forward():
            with torch.no_grad(), torch.autocast(**ac):
                G.synthesis(pivot, noise_mode="const")

        def g_mse():
            with torch.autocast(**ac):
                img = Gt.synthesis(pivot, noise_mode="const")
            (img.float() - target).square().mean().backward()

        def g_stop(res):
            def run():
                with torch.autocast(**ac):
                    x = Gt.synthesis_features(pivot, res, noise_mode="const")
                x.float().square().mean().backward()
            return run

        small_in = target_small.clone().contiguous(memory_format=torch.channels_last)

        def lpips_fb():
            x = small_in.clone().requires_grad_(True)
            with torch.autocast(**ac):
                d = lpips.distance_from_features(x, target_feats).float()
            d.sum().backward()

        def full_step():
            with torch.autocast(**ac):
                img = Gt.synthesis(pivot, noise_mode="const")
            img = img.float()
            small = F.interpolate(img, size=(256, 256), mode="area").contiguous(memory_format=torch.channels_last)
            mse = (img - target).square().mean()
            with torch.autocast(**ac):
                lp = lpips.distance_from_features(small, target_feats).float().sum()
            (lp + 10 * mse).backward()

        def locality():
            w_r = locality_latents(G, pivot, 10.0, gen)
            with torch.no_grad(), torch.autocast(**ac):
                ref = F.interpolate(G.synthesis(w_r, noise_mode="const").float(), size=(256, 256), mode="area")
            with torch.autocast(**ac):
                out = F.interpolate(Gt.synthesis(w_r, noise_mode="const").float(), size=(256, 256), mode="area")
                reg = lpips(out.contiguous(memory_format=torch.channels_last), ref).float()
            ((out - ref).square().mean() + reg.sum()).backward()

        parts = [("full tuning step (LPIPS 256 + MSE 1024)", full_step),
                 ("generator forward, no gradient", g_forward),
                 ("generator forward + backward (MSE only)", g_mse),
                 ("LPIPS 256 forward + backward", lpips_fb),
                 ("locality term (one step of it)", locality)]
        parts += [(f"generator stopped at the {r} px block, forward + backward", g_stop(r)) for r in feature_blocks]
        step = None
        for name, fn in parts:
            s = timed(fn)
            step = s if step is None else step
            rows.append({"precision": precision, "part": name, "seconds": s, "share": s / step})
            print(f"{precision:5s} {name:58s} {s:7.3f} s  {s / step:5.2f} of a step", flush=True)

    print("\n| precision | part | seconds | share of a step |\n|---|---|---:|---:|")
    for r in rows:
        print(f"| {r['precision']} | {r['part']} | {r['seconds']:.3f} | {r['share']:.2f} |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
