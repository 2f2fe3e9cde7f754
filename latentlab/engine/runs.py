"""A folder run of inversion, on either engine: :func:`project_folder`."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

from ..errors import LatentlabError
from ..progress import ProgressArg
from .folder import Recorder, RunLock, RunSummary, plan_run, run_local, settings_fingerprint
from .outputs import output_names

ENGINES = ("local", "ray")


def project_folder(files: "Sequence[Path]", *, network: str, config: Any, outdir: Path, preset: str | None = None,
                   align: bool = True, face_index: int = 0, batch: int | None = None, save_video: bool = False,
                   force: bool = False, skip_existing: bool = False, device: str = "auto", G: Any = None,
                   progress: ProgressArg = None, on_result: "Callable[[dict[str, Any]], None] | None" = None,
                   engine: str = "local", ray_address: str | None = None, ray_workers: int | None = None,
                   threads_per_worker: int | None = None) -> RunSummary:
    """Invert photo files into ``outdir`` with per-photo isolation, the manifest and resume
    (:mod:`latentlab.engine.folder`); returns the :class:`~latentlab.engine.folder.RunSummary`.

    config: a :class:`~latentlab.inversion.ProjectorConfig`. ``engine``: ``local`` (this process)
    or ``ray`` (:func:`latentlab.engine.ray_engine.run_ray`; ``ray_address`` None starts a local
    Ray, ``auto`` / ``ray://host:port`` joins a cluster; ``ray_workers`` actors of
    ``threads_per_worker`` CPU threads each, or one GPU each on CUDA). ``batch``: photos optimised
    together (default 4 on a GPU, 1 on CPU). ``on_result(row)`` is called with every manifest row
    as it is written. Ctrl-C keeps the photos finished so far (``interrupted`` in the summary).
    """
    import torch

    if engine not in ENGINES:
        raise LatentlabError(f"unknown engine {engine!r}; use local or ray")
    files = [Path(f) for f in files]
    if not files:
        raise LatentlabError("no photos given")
    outdir = Path(outdir)
    if outdir.is_symlink() or (outdir.exists() and not outdir.is_dir()):
        raise LatentlabError(f"{outdir}: not a folder")
    outdir.mkdir(parents=True, exist_ok=True)
    names = output_names(tuned=config.tuning is not None, save_video=save_video)
    fp = settings_fingerprint(network=network, config=config, align=align, face_index=face_index,
                              save_video=save_video)
    with RunLock(outdir):
        todo, skipped = plan_run(files, outdir, names, fingerprint=fp, force=force, skip_existing=skip_existing)
        if engine == "ray":
            from .ray_engine import run_ray

            return run_ray(files, todo, skipped, names, network=network, config=config, outdir=outdir, align=align,
                           face_index=face_index, batch=batch, save_video=save_video, force=force, device=device,
                           progress=progress, on_result=on_result, fingerprint=fp, address=ray_address,
                           workers=ray_workers, threads_per_worker=threads_per_worker)
        rec = Recorder(outdir, len(files), names, fingerprint=fp, force=force, progress=progress,
                       bar_total=len(todo), on_result=on_result)
        interrupted = False
        threads_before = torch.get_num_threads()
        try:
            for job in skipped:
                rec.skipped(job)
            if todo:
                if G is None:
                    from ..registry import load_generator, resolve_device

                    G = load_generator(network, resolve_device(device), progress=bool(progress))
                if threads_per_worker:
                    torch.set_num_threads(int(threads_per_worker))
                interrupted = run_local(todo, rec, G=G, config=config, network=network, align=align,
                                        face_index=face_index, batch=batch or (4 if G.device.type == "cuda" else 1),
                                        save_video=save_video, progress=progress)
        except KeyboardInterrupt:
            interrupted = True
        finally:
            torch.set_num_threads(threads_before)
        return rec.close(interrupted)


def compare_methods(files: "Sequence[Path]", *, outdir: Path, config: Any, force: bool = False,
                    skip_existing: bool = False, **kw: Any) -> RunSummary:
    """The paper's two losses side by side: method 1 (pixel MSE only) into ``outdir/method1``,
    method 2 (VGG feature loss only) into ``outdir/method2``, then ``outdir/compare_methods.png``:
    input | (1) | (2), one row per photo both finished. Other keywords as :func:`project_folder`."""
    import numpy as np

    from ..figures import side_by_side
    from ..imageio import load_image, refuse_existing, save_image

    files = [Path(f) for f in files]
    figure = Path(outdir) / "compare_methods.png"
    refuse_existing([figure], force or skip_existing)
    m1 = config.replace(lpips_weight=0.0, rec_weight=config.rec_weight or 0.5)
    m2 = config.replace(rec_weight=0.0, lpips_weight=config.lpips_weight or 1.0)
    s1 = project_folder(files, config=m1, outdir=Path(outdir) / "method1", force=force, skip_existing=skip_existing,
                        **kw)
    out = RunSummary(Path(outdir), len(files), skipped=0, interrupted=s1.interrupted)
    if s1.interrupted:
        out.failed = [(p, f"method 1: {r}") for p, r in s1.failed]
        out.skipped = s1.skipped
        return out
    s2 = project_folder(files, config=m2, outdir=Path(outdir) / "method2", force=force, skip_existing=skip_existing,
                        **kw)
    by_photo1 = {m["photo"]: m for m in s1.metrics}
    out.metrics = [{"method1": by_photo1[m["photo"]], "method2": m} for m in s2.metrics if m["photo"] in by_photo1]
    bad = {p: f"method 1: {r}" for p, r in s1.failed}
    for p, r in s2.failed:
        bad.setdefault(p, f"method 2: {r}")
    out.failed = sorted(bad.items())
    out.skipped = min(s1.skipped, s2.skipped)
    out.interrupted = s2.interrupted
    rows = []
    for f in files:
        d1, d2 = Path(outdir) / "method1" / f.stem, Path(outdir) / "method2" / f.stem
        if str(f) in bad or not all((d / "reconstruction.png").is_file() for d in (d1, d2)):
            continue
        rows.append(side_by_side([load_image(d / n, min_size=1) for d, n in
                                  ((d1, "aligned.png"), (d1, "reconstruction.png"), (d2, "reconstruction.png"))],
                                 height=256))
    if rows and not out.interrupted:
        save_image(np.concatenate(rows, axis=0), figure, force=True)
    return out


__all__ = ["ENGINES", "compare_methods", "project_folder"]
