"""Seconds per step of the two optimisers as the library runs them: projection (``project``) and
pivotal tuning (``pivotal_tuning``) on one aligned photo, steady state (first steps dropped).

Prints one table row per (loop, precision) and, with ``--json``, writes the rows. The script only
uses names every version of latentlab has had, so the same file times two checkouts back to back
(the way to show that a change did not slow the step down)::

    for tree in /path/to/old /path/to/new /path/to/old /path/to/new; do
        PYTHONPATH=$tree .venv/bin/python benchmarks/bench_steps.py --label $tree
    done
"""

from __future__ import annotations

import argparse
import inspect
import json
import statistics
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--network", default="ffhq-mobile")
    ap.add_argument("--photo", type=Path, default=None, help="an aligned face (default: a sample of the model)")
    ap.add_argument("--steps", type=int, default=12, help="steps per loop (the first 2 are not timed)")
    ap.add_argument("--precisions", default="fp32,bf16")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--label", default="")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()

    import numpy as np
    import torch

    import latentlab
    from latentlab.inversion import ProjectorConfig, project
    from latentlab.inversion.pti import pivotal_tuning
    from latentlab.registry import load_generator

    try:
        from latentlab.inversion import TuningConfig
    except ImportError:  # versions that kept it beside the tuning loop
        from latentlab.inversion.pti import TuningConfig
    try:
        from latentlab.ops import tune_cpu_allocator

        tune_cpu_allocator()  # as the command line runs
    except ImportError:
        pass
    if args.threads:
        torch.set_num_threads(args.threads)
    G = load_generator(args.network, "cpu", progress=False)
    if args.photo is not None:
        from latentlab.imageio import image_to_tensor, load_image

        target = image_to_tensor(load_image(args.photo)).to(G.device)
    else:
        z = torch.from_numpy(np.random.RandomState(5).randn(1, G.z_dim).astype(np.float32))
        with torch.no_grad():
            target = G(z, truncation_psi=0.7).clamp(-1, 1)
    rows = []
    for precision in [p for p in args.precisions.split(",") if p]:
        times: dict[str, list[float]] = {"project": [], "tune": []}
        stamps: list[float] = []

        def tick(*_a, **_k) -> None:
            stamps.append(time.perf_counter())

        def hook(fn) -> dict:  # a progress callback (latentlab.progress), or a per-step callback
            return ({"progress": False, "callback": tick} if "callback" in inspect.signature(fn).parameters
                    else {"progress": tick})

        cfg = ProjectorConfig(space="w", num_steps=args.steps, precision=precision)
        res = project(G, target, cfg, **hook(project))
        times["project"] = list(np.diff(stamps))[2:]
        stamps.clear()
        tcfg = TuningConfig(num_steps=args.steps, precision=precision)
        pivotal_tuning(G, target, res.ws, res.noise, tcfg, **hook(pivotal_tuning))
        times["tune"] = list(np.diff(stamps))[2:]
        for loop, t in times.items():
            rows.append({"label": args.label, "version_file": str(Path(latentlab.__file__).parent), "loop": loop,
                         "precision": precision, "s_per_step_median": statistics.median(t),
                         "s_per_step_mean": statistics.fmean(t), "steps_timed": len(t)})
    print(f"{'label':<24} {'loop':<8} {'precision':<9} {'s/step (median)':>16} {'mean':>8}")
    for r in rows:
        print(f"{r['label'][:24]:<24} {r['loop']:<8} {r['precision']:<9} {r['s_per_step_median']:>16.3f} "
              f"{r['s_per_step_mean']:>8.3f}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
