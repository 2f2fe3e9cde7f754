#!/usr/bin/env python
"""Projection speed, memory and quality per second: latentlab's fast paths against its reference path.

Part 1, speed (``--models``): for each generator, in one process and interleaved (ref, fast, ref,
fast, ...) so machine load hits both alike:

* ``forward``: ``G.synthesis(ws)`` under ``torch.inference_mode`` (``--batch`` photos, default 1);
* ``step``: one projection step as :func:`latentlab.inversion.project` runs it: synthesis,
  image at the loss resolution (256), LPIPS (VGG16) + pixel MSE against a cached target, noise
  penalty, backward, Adam, noise renormalisation (W+ and noise maps optimised, ``--batch`` photos);
* ``tune``: one pivotal-tuning step's loss and backward (:func:`latentlab.inversion.pti.pivotal_tuning`'s
  terms without the locality regulariser): full-resolution synthesis, LPIPS at 256 + 10 x pixel MSE,
  gradients for all synthesis weights (no ``approx`` row: tuning has no early exit).

The reference path is latentlab's plain code: ``G.impl = 'ref'`` (NVIDIA's op order, NCHW,
fused modconv), full-resolution synthesis then area downsampling, fp32, eager. The fast path is
``G.impl = 'fast'`` with ``synthesis_shortcut='exact'`` (the defaults); ``--approximate`` adds a
third path, StyleGAN2's early exit at the loss resolution (a different loss: reported, not
compared). Each path reports the median seconds, the ratio ref / fast, the loss value of the
first step from the same starting point (relative difference to ref), and the peak RSS (peak
CUDA memory on CUDA) during that path's runs.

Part 2, quality vs time (``--quality``): projects real photos (``--photos``, default
``../shared/photos/ffhq``, FFHQ-aligned) with a preset and a wall-time budget, and reports the
best LPIPS and PSNR reached after 30 / 60 / 120 s (``--checkpoints``), measured from the call
to ``project`` (w_avg estimation and target features included; model loading excluded).

    python benchmarks/bench_projection.py --models ffhq-mobile,stylegan2-f-1024 --repeats 3 \\
        --quality --photos-limit 2 --json out/bench_projection.json
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_generators import make_model, peak_rss_mib, reset_peak_rss  # noqa: E402

from latentlab.inversion import PRESETS  # noqa: E402
from latentlab.inversion.project import (  # noqa: E402
    latent_stats, noise_penalty, project, renormalize_noise_, resize_to, synthesize_for_loss, synthesize_projection)
from latentlab.losses.lpips import LPIPS  # noqa: E402
from latentlab.models.base import override_noise  # noqa: E402
from latentlab.ops.cpu import set_glibc_allocator  # noqa: E402
from latentlab.registry import resolve_device  # noqa: E402

DEFAULT_MODELS = "ffhq-mobile,stylegan2-f-256,stylegan2-f-512,stylegan2-f-1024"
LOSS_RES = 256


# ------------------------------------------------------------------------------------------ speed
class StepRunner:
    """One projection step, from a fixed starting point, for one path ('ref' | 'ref-stock' | 'fast' |
    'bf16' | 'approx'). 'bf16' is 'fast' under bfloat16 autocast (``ProjectorConfig.precision``).

    Why this is not :func:`latentlab.inversion.project`'s own step: the library has no step to call
    on its own; the step is the body of ``project()``'s loop, which also schedules the learning rate
    and the latent noise, tracks the best latent and may stop early. Timing ``project(num_steps=1)``
    would time setup (w_avg, target features, optimiser) with the step, and every path would start
    from a different random state. So the step is rebuilt here from the library's pieces, the ones
    ``project()`` calls (``synthesize_for_loss``, ``LPIPS.distance_from_features``,
    ``noise_penalty``, ``renormalize_noise_``, Adam), from the same start (``latent_stats``: the
    generator's w_avg) with the schedule frozen; ``bench_quality`` below runs ``project()`` itself.

    'ref-stock' is the reference computation run while glibc has its stock allocator settings
    (``latentlab.ops.cpu.set_glibc_allocator``, switched per call); the other paths run with
    latentlab's setting.
    """

    def __init__(self, G, lpips: LPIPS, target: torch.Tensor, w_avg: torch.Tensor, path: str) -> None:
        self.G, self.lpips, self.path = G, lpips, path
        self.impl = "ref" if path in ("ref", "ref-stock") else "fast"
        self.device = target.device
        self.loss_res = min(LOSS_RES, G.img_resolution)
        self.target = resize_to(target, self.loss_res)
        self.target_feats = lpips.features(self.target)
        n = target.shape[0]  # photos in the batch
        self.w0 = w_avg.view(1, 1, -1).repeat(n, G.num_ws, 1).to(self.device)
        gen = torch.Generator().manual_seed(1)
        self.noise0 = {k: torch.randn((n, 1, *b.shape[-2:]), generator=gen).to(self.device)
                       for k, b in G.noise_buffers().items()}

    def _synth(self, ws: torch.Tensor):
        if self.impl == "ref":
            synth = self.G.synthesis(ws, noise_mode="const", impl="ref")
            return resize_to(synth, self.loss_res)
        shortcut = "approximate" if self.path == "approx" else "exact"
        impl_before = self.G.impl
        self.G.impl = "fast"
        try:
            return synthesize_for_loss(self.G, ws, self.loss_res, shortcut)[1]
        finally:
            self.G.impl = impl_before

    def forward(self) -> None:
        with torch.inference_mode(), torch.autocast(self.device.type, dtype=torch.bfloat16,
                                                     enabled=self.path == "bf16"):
            self.G.synthesis(self.w0, noise_mode="const", impl=self.impl)

    def step(self) -> float:
        """One step from the fixed start; returns the image loss LPIPS + 0.5 MSE (the noise penalty,
        identical in every path and much larger, would hide differences)."""
        w = self.w0.clone().requires_grad_(True)
        noise = {k: v.clone().requires_grad_(True) for k, v in self.noise0.items()}
        opt = torch.optim.Adam([w] + list(noise.values()), lr=0.01)
        with override_noise(self.G, noise):
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.path == "bf16"):
                small = self._synth(w)
                lp = self.lpips.distance_from_features(small, self.target_feats)  # float32 under autocast too
            small = small.float()
            mse = (small - self.target).square().mean(dim=(1, 2, 3))
            image_loss = (lp + 0.5 * mse).sum()
            loss = image_loss + 5e5 * noise_penalty(list(noise.values())).sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            renormalize_noise_(noise)
        return float(image_loss.detach())

    def tune(self) -> float:
        """One pivotal-tuning step's loss and backward (the ``pti`` preset's terms, without the locality
        term): LPIPS at 256 + 10 x pixel MSE at full resolution, gradients for every synthesis weight.
        No Adam update, so every repeat starts from the same weights; returns the loss."""
        params = list(self.G.synthesis_network.parameters())
        if not hasattr(self, "target_full"):
            self.target_full = F.interpolate(self.target, size=self.G.img_resolution, mode="nearest")
        for p in params:
            p.requires_grad_(True)
        try:
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.path == "bf16"):
                img = self.G.synthesis(self.w0, noise_mode="const", impl=self.impl).float()
                small = resize_to(img, self.loss_res).contiguous(memory_format=torch.channels_last)
                lp = self.lpips.distance_from_features(small, self.target_feats).float()
            loss = (lp + 10.0 * (img - self.target_full).square().mean(dim=(1, 2, 3))).sum()
            loss.backward()
        finally:
            for p in params:
                p.requires_grad_(False)
                p.grad = None
        return float(loss.detach())


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def count_gflop(fn) -> float:
    """Multiply-add work of one call of fn in GFLOP (2 per multiply-add), as torch's FlopCounterMode
    counts it: convolutions (forward and backward) and matrix products; elementwise ops are free."""
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops() / 1e9


def conv_peak_gflops(device: torch.device, repeats: int = 3) -> dict:
    """Best GFLOP/s of single fp32 3x3 convolutions shaped like config-f's layers (channels-last).

    The rate an exact step built from direct convolutions can at best approach on this machine
    (isolated convolutions, warm caches, no other work in between).
    """
    out = {}
    for ch, res in ((512, 64), (128, 256), (32, 1024)):
        x = torch.randn(1, ch, res, res, device=device).contiguous(memory_format=torch.channels_last)
        w = torch.randn(ch, ch, 3, 3, device=device)
        times = []
        for i in range(repeats + 1):
            _sync(device)
            t0 = time.perf_counter()
            torch.nn.functional.conv2d(x, w, padding=1)
            _sync(device)
            if i:  # the first call is a warm-up
                times.append(time.perf_counter() - t0)
        out[f"{ch}ch@{res}"] = 2 * 9 * ch * ch * res * res / 1e9 / min(times)
    return out


class _OpTimer(TorchDispatchMode):
    """Wall time per aten op (each op timed where it runs; CPU, where ops are synchronous)."""

    def __init__(self) -> None:
        super().__init__()
        self.seconds: dict[str, float] = {}
        self.calls: dict[str, int] = {}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        t0 = time.perf_counter()
        out = func(*args, **(kwargs or {}))
        name = str(func.overloadpacket.__name__)
        self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - t0
        self.calls[name] = self.calls.get(name, 0) + 1
        return out


def op_times(runner: "StepRunner", top: int = 8) -> dict:
    """One step of ``runner`` with every aten op timed: convolutions (forward and backward) against
    everything else, and the ops that took longest."""
    timer = _OpTimer()
    t0 = time.perf_counter()
    with timer:
        runner.step()
    total = time.perf_counter() - t0
    conv = sum(v for k, v in timer.seconds.items() if "convolution" in k)
    ranked = sorted(timer.seconds.items(), key=lambda kv: -kv[1])[:top]
    return {"step_s": total, "conv_s": conv, "other_ops_s": sum(timer.seconds.values()) - conv,
            "top": [{"op": k, "seconds": v, "calls": timer.calls[k]} for k, v in ranked]}


def bench_model(name: str, device: torch.device, lpips: LPIPS, repeats: int, paths: list[str],
                with_op_times: bool = False, batch: int = 1) -> dict:
    G = make_model(name, device)

    w_avg, _ = latent_stats(G, 1000)
    gen = torch.Generator().manual_seed(0)
    target = (torch.rand(batch, 3, LOSS_RES, LOSS_RES, generator=gen) * 2 - 1).to(device)
    runners = {p: StepRunner(G, lpips, target, w_avg, p) for p in paths}

    def run(p: str, kind: str):
        if p != "ref-stock":
            return getattr(runners[p], kind)()
        set_glibc_allocator("stock")
        try:
            return getattr(runners[p], kind)()
        finally:
            set_glibc_allocator("tuned")
    out: dict = {"model": name, "family": G.family, "resolution": G.img_resolution, "device": str(device),
                 "batch": batch}
    all_paths = paths
    for kind in ("forward", "step", "tune"):
        paths = [p for p in all_paths if not (kind == "tune" and p == "approx")]  # tuning has no early exit
        times: dict[str, list[float]] = {p: [] for p in paths}
        peaks: dict[str, float] = {}
        losses: dict[str, float] = {}
        for p in paths:  # warm-up; also the memory peak of each path on its own
            gc.collect()
            if device.type == "cuda":
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats(device)
            reset_ok = reset_peak_rss()
            r = run(p, kind)
            _sync(device)
            peaks[p] = (torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda"
                        else peak_rss_mib(reset_ok))
            if kind in ("step", "tune"):
                losses[p] = r
        gflop = {p: count_gflop(lambda: run(p, kind)) for p in paths}
        for _ in range(repeats):
            for p in paths:
                t0 = time.perf_counter()
                run(p, kind)
                _sync(device)
                times[p].append(time.perf_counter() - t0)
        for p in paths:
            med = statistics.median(times[p])
            row = {"median_s": med, "per_photo_s": med / batch, "times_s": times[p], "peak_mib": peaks[p],
                   "gflop": gflop[p], "gflop_per_s": gflop[p] / med,
                   "peak_kind": "cuda_max_allocated" if device.type == "cuda" else "rss"}
            if p != "ref":
                row["speedup_vs_ref"] = statistics.median(times["ref"]) / med
                # Ratio of the medians of per-repeat ratios (robust to load changes between repeats).
                row["speedup_paired"] = statistics.median(r_ / f_ for r_, f_ in zip(times["ref"], times[p]))
            if "ref-stock" in paths and p not in ("ref", "ref-stock"):
                row["speedup_vs_ref_stock"] = statistics.median(times["ref-stock"]) / med
            if kind in ("step", "tune"):
                row["loss"] = losses[p]
                row["loss_rel_diff_vs_ref"] = abs(losses[p] - losses["ref"]) / abs(losses["ref"])
            out[f"{kind}_{p}"] = row
    if with_op_times:
        out["op_times_fast_step"] = op_times(runners["fast"])
    del runners, G
    gc.collect()
    return out


# ---------------------------------------------------------------------------------------- quality
def psnr_from_mse(mse: float) -> float:
    """PSNR in dB of images in [-1, 1] (peak-to-peak 2) from their mean squared error."""
    return 10 * math.log10(4.0 / mse) if mse > 0 else math.inf


def bench_quality(network: str, device: torch.device, photos: list[Path], preset: str, budget: float,
                  checkpoints: list[float], lpips: LPIPS, overrides: dict) -> list[dict]:
    from latentlab.imageio import image_to_tensor, load_image

    G = make_model(network, device)
    cfg = PRESETS[preset].replace(time_budget=budget, **overrides)
    rows = []
    for path in photos:
        target = image_to_tensor(load_image(path), device=device)
        reset_ok = reset_peak_rss()
        t0 = time.perf_counter()
        res = project(G, target, cfg, lpips_model=lpips, progress=False)
        wall = time.perf_counter() - t0
        peak = peak_rss_mib(reset_ok)
        # The final latent re-rendered and measured in fp32 (the per-step values come from the
        # optimisation loop itself, i.e. in bf16 when cfg.precision is bf16).
        res_px = min(LOSS_RES, G.img_resolution)
        with torch.no_grad():
            recon = resize_to(synthesize_projection(G, res).clamp(-1, 1), res_px)
            tgt = resize_to(target, res_px)
            final_fp32 = (float(lpips(recon, tgt)[0]), psnr_from_mse(float((recon - tgt).square().mean())))
        row = {"photo": path.name, "network": network, "preset": preset, "budget_s": budget,
               "steps_run": res.steps_run, "wall_s": wall, "peak_rss_mib": peak,
               "final_lpips": res.lpips[0], "final_psnr": psnr_from_mse(res.mse[0]),
               "final_lpips_fp32": final_fp32[0], "final_psnr_fp32": final_fp32[1], "config": cfg.__dict__}
        for c in checkpoints:
            hist = [h for h in res.history if h["seconds"] <= c]
            if hist:  # the step with the lowest LPIPS so far (batch 1: that photo's own values)
                best = min(hist, key=lambda h: h["lpips"])
                row[f"lpips@{c:g}s"] = best["lpips"]
                row[f"psnr@{c:g}s"] = psnr_from_mse(best["mse"])
                row[f"steps@{c:g}s"] = len(hist)
        rows.append(row)
        print(f"{network:<16} {preset:<6} {path.name:<10} steps {res.steps_run:>4} wall {wall:6.1f}s "
              + " ".join(f"LPIPS@{c:g}s {row.get(f'lpips@{c:g}s', float('nan')):.4f} "
                         f"PSNR {row.get(f'psnr@{c:g}s', float('nan')):.2f}" for c in checkpoints)
              + f" | final, fp32 render: LPIPS {final_fp32[0]:.4f} PSNR {final_fp32[1]:.2f} | peak RSS {peak:.0f} MiB",
              flush=True)
    return rows


# ------------------------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default=DEFAULT_MODELS, help=f"speed part, comma separated (default {DEFAULT_MODELS}; "
                    "empty: skip)")
    ap.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, or auto")
    ap.add_argument("--repeats", type=int, default=3, help="timed repeats per path (after one warm-up)")
    ap.add_argument("--approximate", action="store_true", help="also time StyleGAN2's early exit (approx)")
    ap.add_argument("--bf16", action="store_true", help="also time the fast path under bfloat16 autocast (bf16)")
    ap.add_argument("--stock-ref", action="store_true",
                    help="also time the reference path under glibc's stock allocator settings (ref-stock), "
                         "switched per call in the same process (CPU, Linux)")
    ap.add_argument("--batch", type=int, default=1, help="photos per step in the speed part (default 1)")
    ap.add_argument("--op-times", action="store_true",
                    help="also time every aten op of one fast step: convolutions vs the rest (CPU)")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    ap.add_argument("--quality", action="store_true", help="run the quality-vs-time part")
    ap.add_argument("--quality-networks", default="ffhq-mobile")
    ap.add_argument("--photos", type=Path, default=Path(__file__).resolve().parents[2] / "shared/photos/ffhq")
    ap.add_argument("--photos-limit", type=int, default=2)
    ap.add_argument("--presets", default="fast", help="comma separated presets for the quality part")
    ap.add_argument("--checkpoints", default="30,60,120", help="seconds at which quality is read")
    ap.add_argument("--budget", type=float, default=None, help="time budget per photo (default: last checkpoint)")
    ap.add_argument("--num-steps", type=int, default=None, help="override the preset's num_steps")
    ap.add_argument("--precision", choices=["fp32", "bf16"], default=None,
                    help="override the preset's precision in the quality part")
    ap.add_argument("--no-malloc-tuning", action="store_true",
                    help="leave glibc's allocator alone (default: latentlab.ops.tune_cpu_allocator, as the "
                         "latentlab command does for projecting commands)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    if args.batch < 1:
        ap.error("--batch must be at least 1")
    if not args.no_malloc_tuning:
        from latentlab.ops import tune_cpu_allocator

        tune_cpu_allocator()

    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    meta = {"torch": torch.__version__, "python": platform.python_version(), "platform": platform.platform(),
            "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "loadavg_start": os.getloadavg() if hasattr(os, "getloadavg") else None,
            "cuda_device": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
            "repeats": args.repeats, "malloc_tuning": not args.no_malloc_tuning, "date": time.strftime("%Y-%m-%d %H:%M:%S")}
    print(f"# torch {meta['torch']}, {meta['torch_threads']} threads, {meta['cpu_count']} CPUs, device {device}, "
          f"load average {meta['loadavg_start']}", flush=True)
    lpips = LPIPS().to(device).eval()
    results: dict = {"meta": meta, "speed": [], "quality": []}

    models = [m.strip() for m in args.models.split(",") if m.strip()]
    if models:
        paths = ["ref", "fast"] + (["bf16"] if args.bf16 else []) + (["approx"] if args.approximate else [])
        if args.stock_ref:
            if device.type != "cpu" or args.no_malloc_tuning or not set_glibc_allocator("tuned"):
                print("latentlab: error: --stock-ref needs the CPU, glibc and the tuned allocator", file=sys.stderr)
                return 2
            paths.insert(1, "ref-stock")
        hdr = (f"{'model':<17} {'res':>5} {'what':<8} {'path':<9} {'median s':>9} {'s/photo':>8} {'x vs ref':>8} "
               f"{'paired x':>8} {'loss rel diff':>13} {'peak MiB':>9} {'GFLOP':>7} {'GFLOP/s':>8}"
               + ("  x vs stock" if args.stock_ref else ""))
        print(hdr)
        print("-" * len(hdr), flush=True)
        for name in models:
            r = bench_model(name, device, lpips, args.repeats, paths, with_op_times=args.op_times,
                            batch=args.batch)
            results["speed"].append(r)
            for kind in ("forward", "step", "tune"):
                for p in paths:
                    if f"{kind}_{p}" not in r:
                        continue
                    row = r[f"{kind}_{p}"]
                    x = f"{row['speedup_vs_ref']:.2f}" if "speedup_vs_ref" in row else "1.00"
                    px = f"{row['speedup_paired']:.2f}" if "speedup_paired" in row else "-"
                    ld = f"{row['loss_rel_diff_vs_ref']:.1e}" if "loss_rel_diff_vs_ref" in row else "-"
                    xs = f"  {row['speedup_vs_ref_stock']:>10.2f}" if "speedup_vs_ref_stock" in row else ""
                    print(f"{name:<17} {r['resolution']:>5} {kind:<8} {p:<9} {row['median_s']:>9.3f} "
                          f"{row['per_photo_s']:>8.3f} {x:>8} "
                          f"{px:>8} {ld:>13} {row['peak_mib']:>9.0f} {row['gflop']:>7.1f} "
                          f"{row['gflop_per_s']:>8.1f}{xs}", flush=True)
        print("(x vs ref: ratio of medians; paired x: median of per-repeat ratios; peak: RSS on CPU, "
              "torch.cuda.max_memory_allocated on CUDA; GFLOP: convolution and matmul work of one call "
              "counted by torch's FlopCounterMode)")
        for r in results["speed"]:
            if "op_times_fast_step" in r:
                o = r["op_times_fast_step"]
                conv_gflop = r["step_fast"]["gflop"]
                print(f"{r['model']}: one fast step with every op timed took {o['step_s']:.2f} s: convolutions "
                      f"{o['conv_s']:.2f} s ({conv_gflop / o['conv_s']:.0f} GFLOP/s), other ops {o['other_ops_s']:.2f} s; "
                      "longest: " + ", ".join(f"{t['op']} {t['seconds']:.2f} s ({t['calls']})" for t in o["top"]))
        # How far can an exact path go here? Its FLOPs at the best rate this machine convolves at.
        probe = conv_peak_gflops(device)
        peak = max(probe.values())
        results["conv_peak_gflops"] = probe
        print("fp32 3x3 conv probe, GFLOP/s: " + ", ".join(f"{k} {v:.0f}" for k, v in probe.items()))
        for r in results["speed"]:
            ref, fast = r["step_ref"], r["step_fast"]
            floor_s = fast["gflop"] / peak
            r["step_exact_bound"] = {"seconds": floor_s, "speedup_vs_ref": ref["median_s"] / floor_s}
            print(f"{r['model']}: the exact fast step's {fast['gflop']:.0f} GFLOP at {peak:.0f} GFLOP/s would take "
                  f"{floor_s:.2f} s = {ref['median_s'] / floor_s:.2f}x the reference's {ref['median_s']:.2f} s "
                  f"(runs at {fast['gflop_per_s']:.0f} GFLOP/s: {fast['median_s']:.2f} s, "
                  f"{ref['median_s'] / fast['median_s']:.2f}x)")

    if args.quality:
        checkpoints = [float(c) for c in args.checkpoints.split(",")]
        budget = args.budget or max(checkpoints)
        photos = sorted(p for p in args.photos.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
        photos = photos[: args.photos_limit]
        overrides = {"num_steps": args.num_steps} if args.num_steps else {}
        if args.precision:
            overrides["precision"] = args.precision
        for network in [n.strip() for n in args.quality_networks.split(",") if n.strip()]:
            for preset in [p.strip() for p in args.presets.split(",") if p.strip()]:
                results["quality"] += bench_quality(network, device, photos, preset, budget, checkpoints, lpips,
                                                    overrides)
    meta["loadavg_end"] = os.getloadavg() if hasattr(os, "getloadavg") else None
    print(f"# load average at the end {meta['loadavg_end']}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2, default=str) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
