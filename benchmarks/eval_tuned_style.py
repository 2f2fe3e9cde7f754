"""Style transfer between two pivotally tuned photos: does the content stay the person, and does
the colouring move to the style's?

For each pair A:B of latent folders written by ``latentlab project --preset pti`` / ``evaluate``,
renders :func:`latentlab.api.style` (A's latent with B's fine rows ``--layers``, drawn by A's tuned
generator: the code ``latentlab style`` runs) and measures:

* identity: dlib descriptor distance of the result to A's aligned photo (below 0.6: the same
  person) and to B's; the same for A's own tuned reconstruction (the floor);
* colouring: mean CIELAB colour (OpenCV's 8-bit Lab) over the face and hair region (the central
  60% of the aligned frame), and how far the result moved from A's reconstruction toward B's:
  ``|lab(result) - lab(A)| / |lab(B) - lab(A)|`` (0: nothing moved; 1: B's colouring), with the
  cosine between the two moves (1: straight toward B's colouring).

Prints a table, writes ``OUT/results.json`` and ``OUT/<a>_x_<b>.png`` strips (A recon | B recon |
style result) to look at.

    .venv/bin/python benchmarks/eval_tuned_style.py out/eval10w/pti --out out/tuned_style_w
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

DEFAULT_PAIRS = ("portrait_010f:portrait_100m,portrait_100m:portrait_010f,portrait_020f:ref_male_036367,"
                 "ref_female_015248:portrait_095m,portrait_008f:ref_female_031796,ref_male_020167:portrait_022f")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder", type=Path, help="folder of latent folders (<stem>/latent.npz + aligned.png)")
    ap.add_argument("--pairs", default=DEFAULT_PAIRS, help="comma-separated CONTENT:STYLE stems")
    ap.add_argument("--layers", default="9-18", help="rows taken from the style (default: the command's)")
    ap.add_argument("--network", default="ffhq-mobile")
    ap.add_argument("--out", type=Path, default=Path("out/tuned_style"))
    args = ap.parse_args()

    import cv2
    import torch

    import latentlab
    from latentlab.figures import resize
    from latentlab.imageio import load_image, save_image
    from latentlab.metrics import identity_metrics_dlib

    torch.set_grad_enabled(False)
    G = latentlab.load_generator(args.network)
    args.out.mkdir(parents=True, exist_ok=True)

    def lab(img: np.ndarray) -> np.ndarray:
        h, w = img.shape[:2]
        crop = img[int(0.2 * h):int(0.8 * h), int(0.2 * w):int(0.8 * w)]
        return cv2.cvtColor(np.ascontiguousarray(crop), cv2.COLOR_RGB2LAB).reshape(-1, 3).astype(np.float64).mean(0)

    rows = []
    for pair in args.pairs.split(","):
        sa, sb = pair.split(":")
        a, b = (latentlab.load_latent(args.folder / s / "latent.npz", G, network=args.network) for s in (sa, sb))
        photo_a, photo_b = (load_image(args.folder / s / "aligned.png", min_size=1) for s in (sa, sb))
        rec_a, rec_b = a.array, b.array
        out = latentlab.style(a, b, args.layers).array
        move, target = lab(out) - lab(rec_a), lab(rec_b) - lab(rec_a)
        row = {"pair": f"{sa}_x_{sb}",
               "recon_dlib_to_a": identity_metrics_dlib(photo_a, rec_a)["dlib_distance"],
               "dlib_to_a": identity_metrics_dlib(photo_a, out)["dlib_distance"],
               "dlib_to_b": identity_metrics_dlib(photo_b, out)["dlib_distance"],
               "colour_moved": float(np.linalg.norm(move) / max(np.linalg.norm(target), 1e-9)),
               "colour_cosine": float(move @ target / max(np.linalg.norm(move) * np.linalg.norm(target), 1e-9))}
        save_image(np.concatenate([resize(t, 256) for t in (rec_a, rec_b, out)], axis=1),
                   args.out / f"{row['pair']}.png", force=True)
        rows.append(row)
        print(f"{row['pair']:40s} dlib A {row['dlib_to_a']:.3f} (recon {row['recon_dlib_to_a']:.3f}) "
              f"B {row['dlib_to_b']:.3f} | colour moved {row['colour_moved']:.2f} of the way, "
              f"cosine {row['colour_cosine']:.2f}", flush=True)
    summary = {k: float(np.mean([r[k] for r in rows if r[k] is not None])) for k in rows[0] if k != "pair"}
    summary["same_person_as_a"] = sum(1 for r in rows if (r["dlib_to_a"] or 9.0) < 0.6)
    print(f"\nmean over {len(rows)} pairs: dlib to A {summary['dlib_to_a']:.3f} "
          f"(recon {summary['recon_dlib_to_a']:.3f}), "
          f"to B {summary['dlib_to_b']:.3f}, same person as A {summary['same_person_as_a']}/{len(rows)}; colour moved "
          f"{summary['colour_moved']:.2f} of the way to B's, cosine {summary['colour_cosine']:.2f}")
    (args.out / "results.json").write_text(json.dumps({"rows": rows, "summary": summary}, indent=2) + "\n")


if __name__ == "__main__":
    main()
