"""Measure saved latents again: PSNR, MS-SSIM, LPIPS-Alex at the metric resolution (256 px),
identity (dlib, FaceRes) and the cheeks' texture at full resolution of each latent drawn with its
tuning, against the aligned photo saved beside it (``aligned.png``), as ``latentlab evaluate``
measures a fresh projection; with ``--edits`` also smile +1 sigma (mouth widening, dlib distance to
the photo) and the edit strip and crops ``latentlab evaluate`` draws. ``--base`` draws each latent
without its tuning and ``--noise fresh|zero`` with other noise maps (where a pattern comes from).

For an evaluation folder written with other metric settings, or a ``latentlab project`` folder::

    python benchmarks/remeasure.py out/eval/pti --json out/eval/pti/remeasured.json
    python benchmarks/remeasure.py out/pairs_pti --edits
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
    ap.add_argument("--edits", action="store_true", help="also smile +1 sigma, edits.png and crops.png")
    ap.add_argument("--base", action="store_true",
                    help="draw each latent with the base generator (its tuning left out): what tuning changed")
    ap.add_argument("--noise", choices=("saved", "fresh", "zero"), default="saved",
                    help="noise maps to draw with: the latent's own, fresh Gaussian ones (seed 1), or zeros; "
                         "whether a pattern comes from the noise maps or from the weights")
    args = ap.parse_args()

    import torch

    import latentlab as ll
    from latentlab.imageio import image_to_tensor, load_image
    from latentlab.engine.evaluate import edit_outputs
    from latentlab.inversion.inverter import reconstruction_metrics

    G = ll.load_generator(args.network, progress=False)
    rows = []
    keys = ("psnr", "ms_ssim", "lpips_alex", "dlib_distance", "id_cosine", "texture_hf_ratio", "texture_peak_ratio")
    if args.edits:
        keys += ("smile_gain_pct", "smile_dlib_distance")
    if args.edits and (args.base or args.noise != "saved"):
        ap.error("--edits measures the latent as saved; leave out --base and --noise")
    for npz in sorted(args.folder.glob("*/latent.npz"))[:args.limit]:
        aligned = load_image(npz.parent / "aligned.png")
        lat = ll.load_latent(npz, G).latent
        if args.base:
            lat = lat.replace(tuning=None)
        if args.noise != "saved":
            gen = torch.Generator().manual_seed(1)
            lat = lat.replace(noise={k: torch.randn(v.shape, generator=gen) if args.noise == "fresh" else
                                     torch.zeros_like(v) for k, v in lat.noise.items()})
        recon_u8 = ll.Projection(G, lat).image.array
        m = reconstruction_metrics(image_to_tensor(recon_u8), image_to_tensor(aligned), recon_u8, aligned, args.resolution)
        if args.edits:
            m.update(edit_outputs(G, args.network, npz.parent, force=True))
        row = {"photo": npz.parent.name, "dlib_same_person": m["dlib_same_person"], **{k: m[k] for k in keys}}
        rows.append(row)
        print(f"{row['photo']:24s} " + "  ".join(f"{k} {_fmt(row[k])}" for k in keys), flush=True)
    if rows:
        mean = {k: statistics.mean(float(r[k] if r[k] is not None else "nan") for r in rows) for k in keys}
        same = sum(bool(r["dlib_same_person"]) for r in rows)
        print(f"{'mean (' + str(len(rows)) + ')':24s} " + "  ".join(f"{k} {_fmt(mean[k])}" for k in keys)
              + f"  same person (dlib) {same}/{len(rows)}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


def _fmt(v: object) -> str:
    return "-" if v is None else f"{v:.4g}"


if __name__ == "__main__":
    main()
