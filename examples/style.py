"""Style mixing: one photo's face with the fine styles (colour, light, texture) of another.

    python examples/style.py [CONTENT] [STYLE] [--layers 9-18] [--network ffhq-mobile]

Writes <outdir>/<content>_x_<style>.png (aligned) and _pasted.jpg (in the content photo, for a photo input).
"""

import argparse
from pathlib import Path

import latentlab as ll

PHOTOS = Path(__file__).resolve().parents[2] / "shared" / "photos"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("content", nargs="?", default=PHOTOS / "portraits" / "003f.jpg", type=Path)
    ap.add_argument("style", nargs="?", default=PHOTOS / "portraits" / "008f.jpg", type=Path)
    ap.add_argument("--layers", default="9-18", help="rows taken from STYLE (a layer range)")
    ap.add_argument("--network", default="ffhq-mobile")
    ap.add_argument("--num-steps", type=int, default=None, help="projection steps (default: the preset's)")
    ap.add_argument("--outdir", type=Path, default=Path("out/examples/style"))
    ap.add_argument("--force", action="store_true")
    args = ap.parse_args(argv)

    G = ll.load_generator(args.network)
    steps = {"num_steps": args.num_steps} if args.num_steps else {}
    content = ll.project(args.content, G, **steps)
    style = ll.project(args.style, G, **steps)
    mixed = ll.style(content, style, layers=args.layers)
    out = args.outdir / mixed.name
    mixed.image.save(f"{out}.png", force=args.force)
    if mixed.can_paste:
        mixed.paste().save(f"{out}_pasted.jpg", force=args.force)
    print(f"rows {mixed.history[-1]['rows']} from {style.name}; wrote {out}*")


if __name__ == "__main__":
    main()
