"""Measure saved latents again: PSNR, MS-SSIM, LPIPS-Alex at the metric resolution (256 px) and
identity (dlib, FaceRes) of each latent drawn with its tuning, against the aligned photo saved
beside it (``aligned.png``), as ``latentlab evaluate`` measures a fresh projection.

For an evaluation folder written with other metric settings::

    python benchmarks/remeasure.py out/eval/pti --json out/eval/pti/remeasured.json
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folder", type=Path, help="a folder of <photo>/latent.npz + aligned.png")
    ap.add_argument("--network", default="ffhq-mobile")
    ap.add_argument("--limit", type=int, default=None, help="at most this many latents")
    ap.add_argument("--resolution", type=int, default=256, help="metric resolution (px)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()

    import latentlab as ll
    from latentlab.imageio import image_to_tensor, load_image
    from latentlab.inversion.inverter import reconstruction_metrics

    G = ll.load_generator(args.network, progress=False)
    rows = []
    for npz in sorted(args.folder.glob("*/latent.npz"))[:args.limit]:
        aligned = load_image(npz.parent / "aligned.png")
        recon_u8 = ll.load_latent(npz, G).image.array
        m = reconstruction_metrics(image_to_tensor(recon_u8), image_to_tensor(aligned), recon_u8, aligned, args.resolution)
        row = {"photo": npz.parent.name, **{k: m[k] for k in ("psnr", "ms_ssim", "lpips_alex", "dlib_distance",
                                                              "dlib_same_person", "id_cosine")}}
        rows.append(row)
        print(f"{row['photo']:24s} PSNR {row['psnr']:6.2f}  MS-SSIM {row['ms_ssim'] or float('nan'):.4f}  LPIPS-Alex "
              f"{row['lpips_alex']:.4f}  dlib {row['dlib_distance']:.3f}  FaceRes {row['id_cosine']:.3f}", flush=True)
    if rows:
        mean = {k: statistics.mean(float(r[k] if r[k] is not None else "nan") for r in rows)
                for k in ("psnr", "ms_ssim", "lpips_alex", "dlib_distance", "id_cosine")}
        same = sum(bool(r["dlib_same_person"]) for r in rows)
        print(f"{'mean (' + str(len(rows)) + ')':24s} PSNR {mean['psnr']:6.2f}  MS-SSIM {mean['ms_ssim']:.4f}  "
              f"LPIPS-Alex {mean['lpips_alex']:.4f}  dlib {mean['dlib_distance']:.3f}  FaceRes "
              f"{mean['id_cosine']:.3f}  same person (dlib) {same}/{len(rows)}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
