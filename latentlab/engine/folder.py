"""Folder runs of ``latentlab project``: per-photo isolation, the manifest, resume, Ctrl-C.

A run projects a list of photos into ``outdir/<photo stem>/``. What both engines share:

* **Per-photo isolation.** A photo that cannot be loaded, aligned, projected or written is
  recorded as *failed* with a one-line reason and the run goes on.
* **The manifest**, ``outdir/manifest.jsonl``: one JSON object per line, appended (and flushed to
  disk) as each photo finishes: ``photo``, ``name`` (the output folder), ``status``
  (``done`` | ``failed`` | ``skipped``), ``metrics`` (done) or ``error`` (failed), ``seconds``,
  ``settings`` (a fingerprint of network, projector config, alignment and video settings), and where
  it ran: ``host``, ``node_id`` (Ray's node id; ``null`` for the local engine), ``pid``, ``time``.
* **Atomic outputs.** A photo's files are written into a hidden scratch folder
  (``outdir/.latentlab-partial-<stem>``) and moved into ``outdir/<stem>`` only after the manifest
  records it as done; an interrupted or failed photo leaves no partial outputs under its real name.
* **Resume.** A photo is *done* when its last manifest entry says ``done`` with the same settings
  fingerprint *and* all its output files exist. With ``skip_existing`` done photos are skipped (a
  ``skipped`` row is appended); photos that failed or never finished are projected again.
  Existing outputs that are not recorded as done (or were made with other settings) are refused
  unless ``force``, as everywhere in latentlab.
* **Ctrl-C.** Photos finished so far are kept and in the manifest; the photos being projected are
  discarded; :attr:`RunSummary.interrupted` is set and the summary counts what was not written.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import json
import os
import shutil
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..errors import LatentlabError

MANIFEST_NAME = "manifest.jsonl"
#: Prefix of the hidden folder a photo's outputs are written into before they are committed.
SCRATCH_PREFIX = ".latentlab-partial-"
STATUSES = ("done", "failed", "skipped")


@dataclass
class PhotoJob:
    """One photo of a run: its input ``path``, output folder name ``name`` (the file's stem),
    ``final`` (``outdir/name``) and ``scratch`` (the hidden folder its outputs are written into)."""

    index: int
    path: Path
    name: str
    final: Path
    scratch: Path


@dataclass
class RunSummary:
    """What a folder run did. ``metrics``: one dict per photo projected in this run (input order);
    ``failed``: (photo, one-line reason); ``skipped``: photos already done; ``total``: photos given;
    ``interrupted``: Ctrl-C stopped the run."""

    outdir: Path
    total: int
    metrics: list[dict[str, Any]] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    skipped: int = 0
    interrupted: bool = False

    @property
    def done(self) -> int:
        return len(self.metrics)

    @property
    def not_written(self) -> int:
        """Photos neither done (now or before) nor failed: the ones Ctrl-C stopped or never reached."""
        return self.total - self.done - self.skipped - len(self.failed)

    @property
    def manifest(self) -> Path:
        return self.outdir / MANIFEST_NAME

    def line(self) -> str:
        """``N done, M failed, K skipped`` (plus ``, J not run`` after Ctrl-C)."""
        s = f"{self.done} done, {len(self.failed)} failed, {self.skipped} skipped"
        return s + (f", {self.not_written} not run (interrupted)" if self.interrupted else "")


class Manifest:
    """``outdir/manifest.jsonl``: rows appended one per line and flushed to disk as photos finish."""

    def __init__(self, outdir: Path):
        self.path = Path(outdir) / MANIFEST_NAME

    def read(self) -> dict[str, dict[str, Any]]:
        """Output-folder name -> its last ``done`` or ``failed`` row (``skipped`` rows only repeat
        an earlier ``done``). Lines that are not JSON objects (a line cut short by a crash) are ignored."""
        if self.path.is_symlink():
            raise LatentlabError(f"{self.path}: is a symbolic link; latentlab does not follow it")
        if not self.path.is_file():
            return {}
        state: dict[str, dict[str, Any]] = {}
        with open(self.path, encoding="utf-8", errors="replace") as f:
            for line in f:
                try:
                    row = json.loads(line)
                except ValueError:
                    continue
                if isinstance(row, dict) and row.get("status") in ("done", "failed") and isinstance(row.get("name"), str):
                    state[row["name"]] = row
        return state

    def append(self, row: dict[str, Any]) -> None:
        """Append one row (JSON, one line), flushed and fsynced; the manifest is never followed
        through a symbolic link."""
        data = (json.dumps(row, default=_json_default, allow_nan=False) + "\n").encode()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)


def _json_default(o: Any) -> Any:
    try:
        import numpy as np

        if isinstance(o, np.generic):
            return o.item()
    except ImportError:  # pragma: no cover
        pass
    return str(o)


def _finite(value: Any) -> Any:
    """Metrics as strict JSON: NaN / inf become None."""
    import math

    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def settings_fingerprint(*, network: str, config: Any, align: bool, face_index: int, save_video: bool) -> str:
    """16 hex digits identifying the settings a photo was projected with (a rerun with other
    settings does not count earlier outputs as done)."""
    cfg = dataclasses.asdict(config) if dataclasses.is_dataclass(config) else dict(config)
    blob = json.dumps({"network": str(network), "config": cfg, "align": bool(align),
                       "face_index": int(face_index), "save_video": bool(save_video)}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def plan_run(files: "list[Path]", outdir: Path, names: "list[str]", *, fingerprint: str, force: bool,
             skip_existing: bool) -> tuple[list[PhotoJob], list[PhotoJob]]:
    """Split ``files`` into (photos to project, photos already done and skipped) against the
    manifest in ``outdir``; LatentlabError (one line, before anything runs) when existing outputs
    would be overwritten without ``force``. Removes stale scratch folders of the photos to run."""
    outdir = Path(outdir)
    if outdir.is_symlink() or (outdir.exists() and not outdir.is_dir()):
        raise LatentlabError(f"{outdir}: not a folder")
    outdir.mkdir(parents=True, exist_ok=True)
    state = Manifest(outdir).read()
    todo, skipped = [], []
    for i, f in enumerate(files):
        f = Path(f)
        if f.stem == MANIFEST_NAME or f.stem.startswith(SCRATCH_PREFIX):
            raise LatentlabError(f"{f}: its output folder would be named {f.stem!r}, which latentlab uses itself; "
                                 "rename the photo")
        job = PhotoJob(i, f, f.stem, outdir / f.stem, outdir / f"{SCRATCH_PREFIX}{f.stem}")
        existing = [job.final / n for n in names if (job.final / n).exists() or (job.final / n).is_symlink()]
        row = state.get(job.name)
        recorded_done = row is not None and row.get("status") == "done" and len(existing) == len(names)
        if skip_existing and recorded_done and row.get("settings") == fingerprint:
            skipped.append(job)
            continue
        if existing and not force:
            if recorded_done and skip_existing:
                raise LatentlabError(f"{job.final}: projected before with other settings (see {MANIFEST_NAME}); "
                                     "use --force to redo it or choose another --outdir")
            hint = "" if skip_existing else "; --skip-existing skips photos already done"
            raise LatentlabError(f"{existing[0]} already exists; use --force to overwrite or choose another "
                                 f"--outdir{hint}")
        todo.append(job)
    for job in todo:
        _remove_scratch(job.scratch)
    return todo, skipped


def _remove_scratch(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)


def one_line(exc: BaseException) -> str:
    """An exception as a one-line reason (LatentlabError / OSError as their message; others with
    their type; out of memory with advice)."""
    if isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError":
        return "out of memory (try a smaller --batch, fewer --threads-per-worker or --device cpu)"
    text = " ".join(str(exc).split())
    if isinstance(exc, (LatentlabError, OSError)):
        return text or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def where(ray_node: bool = True) -> dict[str, Any]:
    """Where this process runs: host, Ray node id (None outside Ray or without ``ray_node``), pid."""
    node_id = None
    try:
        if not ray_node:
            raise LookupError
        import sys

        if "ray" in sys.modules:
            import ray

            if ray.is_initialized():
                node_id = ray.get_runtime_context().get_node_id()
    except Exception:  # noqa: BLE001 - informational only (LookupError: not asked for)
        node_id = None
    return {"host": socket.gethostname(), "node_id": node_id, "pid": os.getpid()}


def commit_outputs(job: PhotoJob, names: "list[str]", *, force: bool) -> None:
    """Move a photo's outputs from its scratch folder into ``outdir/<stem>`` (a rename of the
    folder, or of each file when the folder exists). With ``force`` the old output files are
    removed first. Never follows a symbolic link at the destination."""
    final, scratch = job.final, job.scratch
    if final.is_symlink():
        raise LatentlabError(f"{final}: is a symbolic link; latentlab does not write through it")
    if force and final.is_dir():
        for n in names:
            p = final / n
            if p.is_symlink() or p.is_file():
                p.unlink()
    if not final.exists():
        os.rename(scratch, final)
        return
    if not final.is_dir():
        raise LatentlabError(f"{final}: exists and is not a folder")
    for item in sorted(scratch.iterdir()):
        os.replace(item, final / item.name)
    scratch.rmdir()


class Recorder:
    """Records the photos of a run as they finish: manifest rows, commits, the summary, the progress
    bar and the caller's ``on_result(row)``. Shared by both engines (the Ray driver uses it too)."""

    def __init__(self, outdir: Path, total: int, names: "list[str]", *, fingerprint: str, force: bool,
                 progress: bool, bar_total: int, on_result: "Callable[[dict[str, Any]], None] | None" = None,
                 desc: str = "photos"):
        from tqdm.auto import tqdm

        self.manifest = Manifest(outdir)
        self.summary = RunSummary(Path(outdir), total)
        self.names, self.fingerprint, self.force, self.on_result = names, fingerprint, force, on_result
        self._metrics: dict[int, dict[str, Any]] = {}
        self.bar = tqdm(total=bar_total, desc=desc, unit="photo", disable=not progress or bar_total <= 1)

    def _row(self, job: PhotoJob, status: str, seconds: float, info: "dict[str, Any] | None") -> dict[str, Any]:
        return {"photo": str(job.path), "name": job.name, "status": status, "seconds": round(float(seconds), 3),
                "settings": self.fingerprint, **(info or where(ray_node=False)),
                "time": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}

    def skipped(self, job: PhotoJob) -> None:
        row = self._row(job, "skipped", 0.0, None)
        self.manifest.append(row)
        self.summary.skipped += 1
        self._emit(row)

    def done(self, job: PhotoJob, metrics: dict[str, Any], seconds: float, info: "dict[str, Any] | None" = None) -> None:
        """Record a photo whose outputs are in its scratch folder: manifest row, then commit (a
        crash in between leaves a 'done' row without outputs, which does not count as done)."""
        row = {**self._row(job, "done", seconds, info), "metrics": _finite(metrics)}
        try:
            self.manifest.append(row)
            commit_outputs(job, self.names, force=self.force)
        except (LatentlabError, OSError) as exc:
            self.failed(job, f"cannot move the outputs into {job.final}: {one_line(exc)}", seconds, info)
            return
        self._metrics[job.index] = metrics
        self.summary.metrics = [self._metrics[i] for i in sorted(self._metrics)]
        self.bar.update(1)
        self._emit(row)

    def failed(self, job: PhotoJob, reason: str, seconds: float, info: "dict[str, Any] | None" = None) -> None:
        row = {**self._row(job, "failed", seconds, info), "error": reason}
        self.manifest.append(row)
        self.summary.failed.append((str(job.path), reason))
        _remove_scratch(job.scratch)
        self.bar.update(1)
        self.bar.set_postfix(failed=len(self.summary.failed))
        self._emit(row)

    def _emit(self, row: dict[str, Any]) -> None:
        if self.on_result is not None:
            self.on_result(row)

    def close(self, interrupted: bool = False) -> RunSummary:
        self.bar.close()
        self.summary.interrupted = interrupted
        return self.summary


def run_local(todo: "list[PhotoJob]", rec: Recorder, *, G: Any, config: Any, network: str, preset: str | None,
              align: bool, face_index: int, batch: int, save_video: bool, progress: bool) -> bool:
    """The local engine: prepare photos lazily, one batch at a time, project each batch with
    :func:`~latentlab.inversion.runner.invert_chunk`, write each photo with
    :func:`~latentlab.inversion.runner.write_photo_outputs` into its scratch folder and record it.
    Returns True when Ctrl-C stopped the run."""
    from ..inversion import runner
    from ..losses import LPIPS

    lpips_model = None  # loaded with the first photo that is ready to project
    loss_res = min(config.loss_resolution, G.img_resolution)
    pos = 0
    try:
        while pos < len(todo):
            chunk: list[tuple[PhotoJob, Any, float]] = []
            while len(chunk) < batch and pos < len(todo):
                job = todo[pos]
                pos += 1
                t0 = time.perf_counter()
                try:
                    prepared = runner.prepare_photo(job.path, G.img_resolution, align=align, face_index=face_index)
                except Exception as exc:  # noqa: BLE001 - one photo's failure is recorded, the run goes on
                    rec.failed(job, one_line(exc), time.perf_counter() - t0)
                    continue
                chunk.append((job, prepared, time.perf_counter() - t0))
            if not chunk:
                continue
            try:
                if lpips_model is None:
                    lpips_model = LPIPS().to(G.device).eval()
                inv = runner.invert_chunk(G, [p for _, p, _ in chunk], config, lpips_model=lpips_model,
                                          progress=progress, save_video=save_video)
            except Exception as exc:  # noqa: BLE001
                reason = one_line(exc)
                for job, _, prep in chunk:
                    rec.failed(job, reason, prep)
                continue
            if inv.result.interrupted:  # Ctrl-C inside the optimiser: this batch is not finished
                return True
            per_photo = inv.seconds / len(chunk)
            for i, (job, prepared, prep) in enumerate(chunk):
                t0 = time.perf_counter()
                try:
                    m = runner.write_photo_outputs(job.scratch, prepared, inv, i, network=network, config=config,
                                                   preset=preset, align=align, face_index=face_index,
                                                   lpips_model=lpips_model, loss_res=loss_res, force=False)
                except Exception as exc:  # noqa: BLE001
                    rec.failed(job, one_line(exc), prep + per_photo + time.perf_counter() - t0)
                    continue
                rec.done(job, m, prep + per_photo + time.perf_counter() - t0)
    except KeyboardInterrupt:
        return True
    return False


def run_projection(files: "list[Path]", *, network: str, config: Any, outdir: Path, align: bool = True,
                   face_index: int = 0, batch: int | None = None, save_video: bool = False,
                   compare_methods: bool = False, force: bool = False, device: str = "auto",
                   preset: str | None = None, G: Any = None, progress: bool = True, skip_existing: bool = False,
                   on_result: "Callable[[dict[str, Any]], None] | None" = None, engine: str = "local",
                   ray_address: str | None = None, ray_workers: int | None = None,
                   threads_per_worker: int | None = None) -> RunSummary:
    """Project photo files into ``outdir`` with per-photo isolation, the manifest and resume
    (module docstring); returns the :class:`RunSummary`. ``engine``: ``local`` (this process) or
    ``ray`` (:func:`latentlab.engine.ray_engine.run_ray`; ``ray_address`` None starts a local Ray,
    ``auto`` / ``ray://host:port`` joins a cluster; ``ray_workers`` projection actors of
    ``threads_per_worker`` CPU threads each, or one GPU each on CUDA). ``on_result(row)`` is called
    with every manifest row as it is written."""
    from ..inversion import runner

    if engine not in ("local", "ray"):
        raise LatentlabError(f"unknown engine {engine!r}; use local or ray")
    if not files:
        raise LatentlabError("no photos given")
    outdir = Path(outdir)
    if compare_methods:
        return _compare_methods(files, network=network, config=config, outdir=outdir, align=align,
                                face_index=face_index, batch=batch, save_video=save_video, force=force,
                                device=device, preset=preset, G=G, progress=progress, skip_existing=skip_existing,
                                on_result=on_result, engine=engine, ray_address=ray_address,
                                ray_workers=ray_workers, threads_per_worker=threads_per_worker)
    names = list(runner.OUTPUT_NAMES) + (["progress.mp4"] if save_video else [])
    fp = settings_fingerprint(network=network, config=config, align=align, face_index=face_index,
                              save_video=save_video)
    todo, skipped = plan_run(files, outdir, names, fingerprint=fp, force=force, skip_existing=skip_existing)

    if engine == "ray":
        from .ray_engine import run_ray

        return run_ray(files, todo, skipped, names, network=network, config=config, outdir=outdir, align=align,
                       face_index=face_index, batch=batch, save_video=save_video, force=force, device=device,
                       preset=preset, progress=progress, on_result=on_result, fingerprint=fp,
                       address=ray_address, workers=ray_workers, threads_per_worker=threads_per_worker)

    rec = Recorder(outdir, len(files), names, fingerprint=fp, force=force, progress=progress,
                   bar_total=len(todo), on_result=on_result)
    interrupted = False
    import torch

    threads_before = torch.get_num_threads()
    try:
        for job in skipped:
            rec.skipped(job)
        if todo:
            if G is None:
                from ..registry import load_generator, resolve_device

                G = load_generator(network, resolve_device(device), progress=progress)
            if threads_per_worker:
                torch.set_num_threads(int(threads_per_worker))
            if batch is None:
                batch = 4 if G.device.type == "cuda" else 1
            interrupted = run_local(todo, rec, G=G, config=config, network=network, preset=preset, align=align,
                                    face_index=face_index, batch=batch, save_video=save_video, progress=progress)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        torch.set_num_threads(threads_before)
    return rec.close(interrupted)


def _compare_methods(files: "list[Path]", *, outdir: Path, config: Any, force: bool, skip_existing: bool,
                     progress: bool, **kw: Any) -> RunSummary:
    """The seed's method 1 (pixel loss) and method 2 (feature loss) into ``outdir/method1|2``, then
    ``outdir/compare_methods.png``: input | (1) | (2), one row per photo done by both."""
    import numpy as np

    from ..imageio import load_image, save_image
    from ..inversion.runner import _side_by_side

    figure = Path(outdir) / "compare_methods.png"
    if (figure.exists() or figure.is_symlink()) and not (force or skip_existing):
        raise LatentlabError(f"{figure} already exists; use --force to overwrite or choose another --outdir")
    m1 = config.replace(lpips_weight=0.0, rec_weight=config.rec_weight or 0.5)
    m2 = config.replace(rec_weight=0.0, lpips_weight=config.lpips_weight or 1.0)
    s1 = run_projection(files, config=m1, outdir=Path(outdir) / "method1", force=force, skip_existing=skip_existing,
                        progress=progress, **kw)
    out = RunSummary(Path(outdir), len(files), skipped=0, interrupted=s1.interrupted)
    if s1.interrupted:
        out.failed = [(p, f"method 1: {r}") for p, r in s1.failed]
        out.skipped = s1.skipped
        return out
    s2 = run_projection(files, config=m2, outdir=Path(outdir) / "method2", force=force, skip_existing=skip_existing,
                        progress=progress, **kw)
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
        rows.append(_side_by_side(load_image(d1 / "aligned.png"), load_image(d1 / "reconstruction.png"),
                                  load_image(d2 / "reconstruction.png"), height=256))
    if rows and not out.interrupted:
        save_image(np.concatenate(rows, axis=0), figure, force=True)
    return out
