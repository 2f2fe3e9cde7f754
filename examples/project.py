"""Project a face photo into the generator's latent space and write what came out.

    python examples/project.py [PHOTO] [--preset pti|fast|paper|nvidia] [--num-steps N] [--network ffhq-mobile]

Writes <outdir>/<name>_aligned.png (the projection target), _reconstruction.png (the latent rendered,
with its pivotal tuning under the default preset pti), _pasted.png (the reconstruction pasted back
into the photo) and <name>.npz (the latent, readable by ll.load_latent and by every latentlab
command; a tuned latent keeps its tuning beside it in <name>.pti.safetensors).
"""

import argparse
from pathlib import Path

import latentlab as ll

PHOTOS = Path(__file__).resolve().parents[2] / "shared" / "photos"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("photo", nargs="?", default=PHOTOS / "portraits" / "003f.jpg", type=Path)
    ap.add_argument("--preset", default="pti", choices=sorted(ll.PRESETS))
    ap.add_argument("--num-steps", type=int, default=None, help="projection steps (default: the preset's)")
    ap.add_argument("--network", default="ffhq-mobile")
    ap.add_argument("--outdir", type=Path, default=Path("out/examples/project"))
    ap.add_argument("--force", action="store_true")
    args = ap.parse_args(argv)

    G = ll.load_generator(args.network)
    steps = {"num_steps": args.num_steps} if args.num_steps else {}
    me = ll.project(args.photo, G, preset=args.preset, **steps)
    out = args.outdir / me.name
    me.target.save(f"{out}_aligned.png", force=args.force)
    me.image.save(f"{out}_reconstruction.png", force=args.force)
    me.paste().save(f"{out}_pasted.png", force=args.force)
    me.save(f"{out}.npz", force=args.force)
    tuned = "with pivotal tuning" if me.tuning is not None else "without tuning"
    print(f"projected {args.photo} ({args.preset}: {me.settings['config']['num_steps']} steps at most, {tuned}); "
          f"wrote {out}_*")


if __name__ == "__main__":
    main()
