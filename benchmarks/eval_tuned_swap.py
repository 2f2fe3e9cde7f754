"""Swap between two pivotally tuned photos: which generator should draw the result?

A swap takes A's identity rows into B's latent. When both photos carry a pivotal tuning, the
mixed latent can be drawn by the base generator (``none``), B's tuned generator (``b``), A's
(``a``), one with the average of the two deltas (``blend``) or a weighted blend (``0.7``: 0.7 x A's
delta + 0.3 x B's; ``--tunings`` picks which). For each pair A -> B of latent
folders written by ``latentlab project --preset pti`` / ``evaluate`` this script renders the
default mix swap (A's rows ``--identity-layers`` on B) each way, via
:func:`latentlab.editing.swap.swap` (the code the command runs), and measures:

* identity: dlib descriptor distance of the result to A's aligned photo (below 0.6: dlib calls it
  the same person; lower = more of A) and to B's; FaceRes ID cosine to A;
* B's surroundings: PSNR against B's aligned photo outside both faces (the masked swap's own
  background mask: outside the dilated union of the two face regions), at 256 px; a tuning that
  paints A's hair or clothes into B's photo lowers it. The first line per pair gives the same
  figure for B's own tuned reconstruction (the ceiling).

Prints a table, writes ``OUT/results.json`` and ``OUT/<a>_on_<b>.png`` strips (A | B | B recon |
then one tile per ``--tunings`` entry) to look at.

    .venv/bin/python benchmarks/eval_tuned_swap.py out/eval20/pti --pairs 100m:098m,010f:022f --out out/tuned_swap
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

DEFAULT_PAIRS = ("portrait_100m:portrait_098m,portrait_010f:portrait_022f,ref_male_012712:ref_male_137590,"
                 "portrait_020f:portrait_024f,portrait_008f:portrait_019f,portrait_095m:portrait_108m,"
                 "ref_female_015248:ref_female_030321,ref_female_031796:ref_female_086986,"
                 "ref_male_020167:ref_male_021612,ref_female_036619:portrait_010f,"
                 "ref_male_036367:portrait_100m,portrait_022f:ref_female_015248")


def masked_psnr(x: np.ndarray, y: np.ndarray, mask: np.ndarray) -> float:
    """PSNR (dB, peak 255) of uint8 images over the weights ``mask`` [H, W] in [0, 1]."""
    d = (x.astype(np.float64) - y.astype(np.float64)) ** 2
    mse = float((d * mask[..., None]).sum() / (3 * max(float(mask.sum()), 1e-9)))
    return 10 * np.log10(255.0**2 / max(mse, 1e-12))


def fmt(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.3f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder", type=Path, help="folder of latent folders (<stem>/latent.npz + aligned.png)")
    ap.add_argument("--pairs", default=DEFAULT_PAIRS, help="comma-separated A:B stems")
    ap.add_argument("--identity-layers", default=None, help="rows from A (default: the swap command's)")
    ap.add_argument("--tunings", default="blend,0.6,0.7,b,a,none", help="comma-separated swap tunings")
    ap.add_argument("--network", default="ffhq-mobile")
    ap.add_argument("--out", type=Path, default=Path("out/tuned_swap"))
    args = ap.parse_args()

    import cv2
    import torch

    from latentlab.editing.layers import parse_layers
    from latentlab.editing.swap import DEFAULT_IDENTITY_LAYERS, aligned_landmarks, check_swap_tuning, swap, swap_masks
    from latentlab.figures import resize
    from latentlab.imageio import load_image, save_image
    from latentlab.latent import load_latent, render
    from latentlab.metrics import identity_metrics_dlib, identity_metrics_faceres
    from latentlab.registry import load_generator, resolve_device

    torch.set_grad_enabled(False)
    G = load_generator(args.network, resolve_device("auto"))
    rows_a = parse_layers(args.identity_layers or DEFAULT_IDENTITY_LAYERS, G)
    tunings = [str(check_swap_tuning(t)) for t in args.tunings.split(",")]
    args.out.mkdir(parents=True, exist_ok=True)

    def small(img: np.ndarray) -> np.ndarray:
        return cv2.resize(img, (256, 256), interpolation=cv2.INTER_AREA)

    rows = []
    for pair in args.pairs.split(","):
        sa, sb = pair.split(":")
        a, b = (load_latent(args.folder / s / "latent.npz", G, network=args.network) for s in (sa, sb))
        photo_a, photo_b = (load_image(args.folder / s / "aligned.png", min_size=1) for s in (sa, sb))
        recon_b = render(G, b)  # drawn by B's own (tuned) generator
        _, bg = swap_masks(aligned_landmarks(a, G.img_resolution, photo_a),
                           aligned_landmarks(b, G.img_resolution, photo_b), G.img_resolution)
        bg_small = cv2.resize(bg, (256, 256), interpolation=cv2.INTER_AREA)
        photo_b_small = small(photo_b)
        row = {"pair": f"{sa}_on_{sb}", "recon_b_background_psnr": masked_psnr(small(recon_b), photo_b_small, bg_small)}
        tiles = [photo_a, photo_b, recon_b]
        for tuning in tunings:
            img = render(G, swap(G, a, b, method="mix", identity_rows=rows_a, tuning=tuning))
            tiles.append(img)
            row[f"{tuning}_dlib_to_a"] = identity_metrics_dlib(photo_a, img)["dlib_distance"]
            row[f"{tuning}_dlib_to_b"] = identity_metrics_dlib(photo_b, img)["dlib_distance"]
            row[f"{tuning}_id_cosine_a"] = identity_metrics_faceres(photo_a, img)["id_cosine"]
            row[f"{tuning}_background_psnr"] = masked_psnr(small(img), photo_b_small, bg_small)
        save_image(np.concatenate([resize(t, 256) for t in tiles], axis=1), args.out / f"{row['pair']}.png", force=True)
        rows.append(row)
        print(f"{row['pair']:40s} B recon bg {row['recon_b_background_psnr']:.1f} dB | " + " | ".join(
            f"{t}: dlib A {fmt(row[f'{t}_dlib_to_a'])} B {fmt(row[f'{t}_dlib_to_b'])} "
            f"bg {row[f'{t}_background_psnr']:.1f}" for t in tunings), flush=True)

    def mean(key: str) -> float:
        vals = [r[key] for r in rows if isinstance(r.get(key), float) and np.isfinite(r[key])]
        return float(np.mean(vals)) if vals else float("nan")

    summary = {k: mean(k) for k in rows[0] if k != "pair"}
    summary["same_person_as_a"] = {t: sum(1 for r in rows if (r[f"{t}_dlib_to_a"] or 9.0) < 0.6) for t in tunings}
    print(f"\nmean over {len(rows)} pairs (B's tuned reconstruction: background {summary['recon_b_background_psnr']:.1f} dB)")
    print(f"{'tuning':8s} {'dlib to A':>10s} {'dlib to B':>10s} {'ID cos A':>9s} {'bg PSNR':>8s} {'same as A':>10s}")
    for t in tunings:
        print(f"{t:8s} {summary[f'{t}_dlib_to_a']:10.3f} {summary[f'{t}_dlib_to_b']:10.3f} "
              f"{summary[f'{t}_id_cosine_a']:9.3f} {summary[f'{t}_background_psnr']:8.1f} "
              f"{summary['same_person_as_a'][t]:>6d}/{len(rows)}")
    (args.out / "results.json").write_text(json.dumps({"rows": rows, "summary": summary}, indent=2) + "\n")


if __name__ == "__main__":
    main()
