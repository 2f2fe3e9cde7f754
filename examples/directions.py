"""Latent directions: list a model's named attributes and render a sweep of each, plus SeFa's strongest.

    python examples/directions.py [PHOTO] [--network ffhq-mobile] [--sefa 3]

Writes <outdir>/<name>_<attribute>.png: strength -3 .. 3 from left to right, for every named
attribute and for SeFa components 0 .. N-1 (unsupervised, from the generator's weights).
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
    ap.add_argument("--num-steps", type=int, default=None)
    ap.add_argument("--outdir", type=Path, default=Path("out/examples/directions"))
    ap.add_argument("--force", action="store_true")
    args = ap.parse_args(argv)

    G = ll.load_generator(args.network)
    steps = {"num_steps": args.num_steps} if args.num_steps else {}
    me = ll.project(args.photo, G, **steps)
    strengths = [-3, -1.5, 0, 1.5, 3]
    targets = sorted(ll.attributes(G)) + [f"sefa:{k}" for k in range(args.sefa)]
    for target in targets:
        frames = me.sweep(target, strengths)
        path = frames.save(args.outdir / f"{me.name}_{frames.settings['target']}.png", count=len(strengths),
                           force=args.force)
        print(f"{target:<10} layers {frames.settings['layers']:<6} -> {path}")


if __name__ == "__main__":
    main()
