"""Latent directions: list a model's named attributes and render a sweep of each, plus SeFa's strongest.

    python examples/directions.py [PHOTO] [--network ffhq-mobile] [--sefa 3]

Writes <outdir>/<name>_<attribute>.png, five frames from left to right: -2 .. 2 sigma for every
named attribute, -3 .. 3 W units for SeFa components 0 .. N-1 (unsupervised, from the generator's
weights, no recorded sigma).
"""

import argparse
from pathlib import Path

import latentlab as ll

PHOTOS = Path(__file__).resolve().parents[2] / "shared" / "photos"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("photo", nargs="?", default=PHOTOS / "portraits" / "003f.jpg", type=Path)
    ap.add_argument("--sefa", type=int, default=3, help="how many SeFa components to sweep")
    ap.add_argument("--network", default="ffhq-mobile")
    ap.add_argument("--num-steps", type=int, default=None, help="projection steps (default: the preset's)")
    ap.add_argument("--outdir", type=Path, default=Path("out/examples/directions"))
    ap.add_argument("--force", action="store_true")
    args = ap.parse_args(argv)

    G = ll.load_generator(args.network)
    steps = {"num_steps": args.num_steps} if args.num_steps else {}
    me = ll.project(args.photo, G, **steps)
    sweeps = [(name, [-2, -1, 0, 1, 2], "sigma") for name in sorted(ll.attributes(G))]
    sweeps += [(f"sefa:{k}", [-3, -1.5, 0, 1.5, 3], "w") for k in range(args.sefa)]
    for target, strengths, unit in sweeps:
        frames = me.sweep(target, strengths, unit=unit)
        path = frames.save(args.outdir / f"{me.name}_{frames.settings['target']}.png", count=len(strengths),
                           force=args.force)
        print(f"{target:<10} layers {frames.settings['layers']:<6} {strengths[0]}..{strengths[-1]} {unit} -> {path}")


if __name__ == "__main__":
    main()
