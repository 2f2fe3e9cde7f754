"""Expression transfer between real people, measured on photographed neutral/smiling pairs.

For each person B of a folder of pairs (``NNN_neutral.jpg``, ``NNN_smiling.jpg``) and the next
person A in the list: B's own smile is B's mouth width (dlib mouth corners 48-54 over the eye
distance) on the aligned smiling photo over the neutral one; the transfer adds the change of
B's latent between the two photos, on the smile rows (0-5 of the 18-row layout), to A's latent,
drawn by A's tuned generator, and A's gain is the mouth width of that render over A's
reconstruction. Also reports the dlib distance of each transfer to A's photo.

Two ways to get the change of B's latent are compared:

* ``pivots``: the difference of two ``--preset pti`` pivots (each photo projected on its own, as
  ``latentlab transfer`` does with photo inputs of a W-pivot preset);
* ``follow``: B's smiling photo projected in W+ starting from B's neutral latent, with B's tuned
  generator and noise held fixed (:func:`latentlab.api.follow`, which ``latentlab transfer`` uses),
  every row moving (``--follow-layers all``, the default) or only some.

Needs the neutral photos' ``latentlab project --preset pti`` outputs (``--latents DIR``: one
folder per photo, as ``latentlab project`` writes them)::

    latentlab project ../shared/photos/pairs/*_neutral.jpg --preset pti --outdir out/pairs_pti
    python benchmarks/eval_pairs_transfer.py ../shared/photos/pairs --latents out/pairs_pti --out out/pairs_transfer
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


def mouth(img: np.ndarray) -> float:
    """Mouth width of a uint8 face image (``mouth_measures``: dlib corners over the eye distance; NaN: no face)."""
    from latentlab.faces.attributes import mouth_measures
    from latentlab.faces.landmarks import NoFaceError, detect_landmarks

    try:
        return mouth_measures(detect_landmarks(img).landmarks)["mouth_width"]
    except NoFaceError:
        return float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("pairs", type=Path, help="folder of NNN_neutral.jpg / NNN_smiling.jpg")
    ap.add_argument("--latents", type=Path, required=True,
                    help="latentlab project --preset pti outdir of the neutral photos")
    ap.add_argument("--network", default="ffhq-mobile")
    ap.add_argument("--layers", default="0-5", help="rows of the transfer")
    ap.add_argument("--strengths", default="0.5,0.75,1")
    ap.add_argument("--methods", default="pivots,follow")
    ap.add_argument("--steps", type=int, default=None, help="follow: steps (default: the API's)")
    ap.add_argument("--follow-layers", default="all",
                    help="follow: the rows that may move ('all', as latentlab transfer; or a spec such as 0-5)")
    ap.add_argument("--people", type=int, default=None, help="only the first N people")
    ap.add_argument("--out", type=Path, default=Path("out/pairs_transfer"))
    args = ap.parse_args()

    from PIL import Image

    from latentlab import api
    from latentlab.inversion import PRESETS, invert

    people = sorted(p.name[: -len("_neutral.jpg")] for p in args.pairs.glob("*_neutral.jpg")
                    if (args.pairs / p.name.replace("_neutral", "_smiling")).is_file())
    people = people[: args.people] if args.people else people
    if len(people) < 2:
        ap.error("need at least two people with both photos")
    G = api.load_generator(args.network)
    strengths = [float(s) for s in args.strengths.split(",")]
    methods = args.methods.split(",")
    args.out.mkdir(parents=True, exist_ok=True)
    neutral = {p: api.load_latent(args.latents / f"{p}_neutral" / "latent.npz", G) for p in people}
    photo = {p: api.load_image(args.latents / f"{p}_neutral" / "aligned.png") for p in people}
    recon_mouth = {p: mouth(neutral[p].array) for p in people}
    rows_out, strip = [], []
    t_all = time.perf_counter()
    for i, b in enumerate(people):
        a = people[(i + 1) % len(people)]
        smiling_photo = args.pairs / f"{b}_smiling.jpg"
        bs_aligned = api.load_photo(smiling_photo, G).aligned
        b_gain = mouth(bs_aligned) / mouth(photo[b]) - 1
        row = {"from_person": b, "to_person": a, "b_gain_pct": 100 * b_gain,
               "a_recon_dlib": api.identity(photo[a], neutral[a].array)["distance"]}
        tiles = [photo[b], bs_aligned, photo[a], neutral[a].array]
        for method in methods:
            t0 = time.perf_counter()
            if method == "pivots":  # what projecting both photos on their own gives (tuning leaves ws alone)
                lat = invert(str(smiling_photo), G, PRESETS["pti"].replace(tuning=None), network=args.network)
                b_smiling = api.Projection(G, lat)
                drawn = api.Projection(G, lat.replace(tuning=neutral[b].tuning)).array
            elif method == "follow":
                moving = args.follow_layers
                b_smiling = api.follow(neutral[b], smiling_photo, layers=None if moving == "all" else moving,
                                       steps=args.steps, progress=False)
                drawn = b_smiling.array
            else:
                ap.error(f"unknown method {method}")
            row[f"{method}_seconds"] = time.perf_counter() - t0
            row[f"{method}_b_captured_pct"] = 100 * (mouth(drawn) / recon_mouth[b] - 1)
            for s in strengths:
                img = api.transfer(neutral[a], neutral[b], b_smiling, s, args.layers).array
                gain = mouth(img) / recon_mouth[a] - 1
                row[f"{method}_x{s:g}_gain_pct"] = 100 * gain
                row[f"{method}_x{s:g}_share"] = gain / b_gain if b_gain > 0 else float("nan")
                row[f"{method}_x{s:g}_dlib"] = api.identity(photo[a], img)["distance"]
                if s == 1:
                    tiles.append(img)
        rows_out.append(row)
        strip.append(np.concatenate([np.asarray(Image.fromarray(t).resize((192, 192), Image.LANCZOS)) for t in tiles], 1))
        print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()}), flush=True)
    summary: dict[str, object] = {"people": len(rows_out), "layers": args.layers, "follow_layers": args.follow_layers,
                                  "seconds": time.perf_counter() - t_all}
    for k, v in rows_out[0].items():
        if isinstance(v, (int, float)):
            vals = [r[k] for r in rows_out if r.get(k) is not None and np.isfinite(r[k])]
            summary[k] = float(np.mean(vals)) if vals else None
    for method in methods:
        for s in strengths:
            summary[f"{method}_x{s:g}_half_or_more"] = sum(r[f"{method}_x{s:g}_share"] >= 0.5 for r in rows_out)
            summary[f"{method}_x{s:g}_dlib_max"] = max(r[f"{method}_x{s:g}_dlib"] for r in rows_out)
    (args.out / "rows.json").write_text(json.dumps(rows_out, indent=1))
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1))
    Image.fromarray(np.concatenate(strip, 0)).save(args.out / "strip.png")
    print(json.dumps(summary, indent=1))
    print("strip.png columns: B neutral | B smiling | A photo | A reconstruction | "
          + " | ".join(f"A + {m} x1" for m in methods))


if __name__ == "__main__":
    main()
