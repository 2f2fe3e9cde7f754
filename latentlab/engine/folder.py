"""Folder runs of ``latentlab project``: per-photo isolation, the manifest, resume, Ctrl-C.

A run projects a list of photos into ``outdir/<photo stem>/``. What both engines share:

* **Per-photo isolation.** A photo that cannot be loaded, aligned, projected or written is
  recorded as *failed* with a one-line reason and the run goes on.
* **The manifest**, ``outdir/manifest.jsonl``: one JSON object per line, appended (and flushed to
  disk) as each photo finishes: ``photo``, ``name`` (the output folder), ``status``
  (``done`` | ``failed`` | ``skipped``), ``metrics`` (done) or ``error`` (failed), ``seconds``,
  ``settings`` (a fingerprint of network, projector config, alignment and video settings), and where
  it ran: ``host``, ``node_id`` (Ray's node id; ``null`` for the local engine), ``pid``, ``time``.
* **Atomic outputs.** Each attempt at a photo writes its files into a hidden scratch folder of its
  own (``outdir/.latentlab-partial-<stem>-<attempt>``), moved into ``outdir/<stem>`` only after the
  manifest records it as done; an interrupted or failed photo leaves no partial outputs under its
  real name, and a retried photo (a Ray worker that died) is not blocked by its dead attempt's
  folder. Scratch folders of attempts that no longer run are removed.
* **One run per folder.** A run holds a lock on ``outdir/.latentlab-run.lock`` while it writes; a
  second run into the same folder refuses in one line instead of mixing its photos in.
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
import secrets
import shutil
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..errors import LatentlabError
from ..imageio import json_safe
from ..progress import Progress, ProgressArg, as_callback

MANIFEST_NAME = "manifest.jsonl"
#: Prefix of the hidden folders a photo's outputs are written into before they are committed.
SCRATCH_PREFIX = ".latentlab-partial-"
#: The lock file a run holds in its output folder.
LOCK_NAME = ".latentlab-run.lock"
STATUSES = ("done", "failed", "skipped")


@dataclass
class PhotoJob:
    """One photo of a run: its input ``path``, output folder name ``name`` (the file's stem) and
    ``final`` (``outdir/name``)."""

    index: int
    path: Path
    name: str
    final: Path

    def new_scratch(self) -> Path:
        """A fresh hidden folder (not yet created) for one attempt's outputs."""
        return self.final.parent / f"{SCRATCH_PREFIX}{self.name}-{os.getpid()}-{secrets.token_hex(4)}"

    def stale_scratch(self) -> list[Path]:
        """Scratch folders of earlier attempts at this photo."""
        prefix = f"{SCRATCH_PREFIX}{self.name}-"
        try:
            return [p for p in self.final.parent.iterdir() if p.name.startswith(prefix)]
        except OSError:
            return []


class RunLock:
    """An exclusive lock on ``outdir/.latentlab-run.lock`` for the duration of a run (``with``):
    a second run into the same folder gets a one-line LatentlabError. The file is removed when the
    run ends; the lock dies with its process, so a killed run never leaves the folder locked."""

    def __init__(self, outdir: Path) -> None:
        self.path = Path(outdir) / LOCK_NAME
        self.fd: int | None = None

    def __enter__(self) -> "RunLock":
        import fcntl

        if self.path.is_symlink():
            raise LatentlabError(f"{self.path}: is a symbolic link; latentlab does not follow it")
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.read(fd, 64).decode(errors="replace").strip()
            os.close(fd)
            raise LatentlabError(f"{self.path.parent}: another latentlab run is writing into this folder"
                                 + (f" ({holder})" if holder else "") + "; wait for it or choose another --outdir") \
                from None
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}".encode())
        self.fd = fd
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.fd is not None:
            try:
                os.unlink(self.path)  # while still held: a run that opened it meanwhile was refused
            except OSError:
                pass
            os.close(self.fd)  # releases the lock
            self.fd = None


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
        if f.stem in (MANIFEST_NAME, LOCK_NAME) or f.stem.startswith(SCRATCH_PREFIX):
            raise LatentlabError(f"{f}: its output folder would be named {f.stem!r}, which latentlab uses itself; "
                                 "rename the photo")
        job = PhotoJob(i, f, f.stem, outdir / f.stem)
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
        for stale in job.stale_scratch():
            remove_scratch(stale)
    return todo, skipped


def remove_scratch(path: Path) -> None:
    """Remove a scratch folder (or a file or link left in its place)."""
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


def commit_outputs(job: PhotoJob, scratch: Path, names: "list[str]", *, force: bool) -> None:
    """Move a photo's outputs from an attempt's scratch folder into ``outdir/<stem>`` (a rename of
    the folder, or of each file when the folder exists). With ``force`` the old output files are
    removed first. Never follows a symbolic link at the destination."""
    final = job.final
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
                 progress: ProgressArg, bar_total: int, on_result: "Callable[[dict[str, Any]], None] | None" = None):
        self.manifest = Manifest(outdir)
        self.summary = RunSummary(Path(outdir), total)
        self.names, self.fingerprint, self.force, self.on_result = names, fingerprint, force, on_result
        self._metrics: dict[int, dict[str, Any]] = {}
        self.report = as_callback(progress) if bar_total > 1 else None
        self.bar_total, self.finished = bar_total, 0
        if self.report is not None:
            self.report(Progress("photos", 0, bar_total))

    def _advance(self) -> None:
        self.finished += 1
        if self.report is not None:
            self.report(Progress("photos", self.finished, self.bar_total,
                                 values={"failed": len(self.summary.failed)} if self.summary.failed else {}))

    def _row(self, job: PhotoJob, status: str, seconds: float, info: "dict[str, Any] | None") -> dict[str, Any]:
        return {"photo": str(job.path), "name": job.name, "status": status, "seconds": round(float(seconds), 3),
                "settings": self.fingerprint, **(info or where(ray_node=False)),
                "time": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}

    def skipped(self, job: PhotoJob) -> None:
        row = self._row(job, "skipped", 0.0, None)
        self.manifest.append(row)
        self.summary.skipped += 1
        self._emit(row)

    def done(self, job: PhotoJob, scratch: Path, metrics: dict[str, Any], seconds: float,
             info: "dict[str, Any] | None" = None) -> None:
        """Record a photo whose outputs are in the attempt's ``scratch`` folder: manifest row, then
        commit (a crash in between leaves a 'done' row without outputs, which does not count as
        done); scratch folders of other attempts at it are removed."""
        row = {**self._row(job, "done", seconds, info), "metrics": json_safe(metrics)}
        try:
            self.manifest.append(row)
            commit_outputs(job, Path(scratch), self.names, force=self.force)
        except (LatentlabError, OSError) as exc:
            self.failed(job, f"cannot move the outputs into {job.final}: {one_line(exc)}", seconds, info)
            return
        for stale in job.stale_scratch():
            remove_scratch(stale)
        self._metrics[job.index] = metrics
        self.summary.metrics = [self._metrics[i] for i in sorted(self._metrics)]
        self._advance()
        self._emit(row)

    def failed(self, job: PhotoJob, reason: str, seconds: float, info: "dict[str, Any] | None" = None) -> None:
        row = {**self._row(job, "failed", seconds, info), "error": reason}
        self.manifest.append(row)
        self.summary.failed.append((str(job.path), reason))
        for stale in job.stale_scratch():
            remove_scratch(stale)
        self._advance()
        self._emit(row)

    def _emit(self, row: dict[str, Any]) -> None:
        if self.on_result is not None:
            self.on_result(row)

    def close(self, interrupted: bool = False) -> RunSummary:
        self.summary.interrupted = interrupted
        return self.summary


def run_local(todo: "list[PhotoJob]", rec: Recorder, *, G: Any, config: Any, network: str, align: bool,
              face_index: int, batch: int, save_video: bool, progress: ProgressArg) -> bool:
    """The local engine: photos are loaded and aligned one batch at a time, inverted together with
    :func:`latentlab.inversion.invert`, and each is written into a fresh scratch folder
    (:func:`~latentlab.engine.outputs.write_photo_outputs`) and recorded. Returns True when Ctrl-C
    stopped the run."""
    from ..faces.photo import load_photo
    from ..inversion import invert
    from .outputs import FrameCollector, write_photo_outputs

    report = as_callback(progress)
    pos = 0
    try:
        while pos < len(todo):
            chunk: list[tuple[PhotoJob, Any, float]] = []
            while len(chunk) < batch and pos < len(todo):
                job = todo[pos]
                pos += 1
                t0 = time.perf_counter()
                try:
                    photo = load_photo(job.path, G.img_resolution, align=align, face_index=face_index)
                except Exception as exc:  # noqa: BLE001 - one photo's failure is recorded, the run goes on
                    rec.failed(job, one_line(exc), time.perf_counter() - t0)
                    continue
                chunk.append((job, photo, time.perf_counter() - t0))
            if not chunk:
                continue
            frames = FrameCollector(len(chunk), config.num_steps, report) if save_video else None
            t0 = time.perf_counter()
            try:
                latents = invert([p for _, p, _ in chunk], G, config, network=network, align=align,
                                 face_index=face_index, progress=frames or report)
            except Exception as exc:  # noqa: BLE001
                reason = one_line(exc)
                for job, _, prep in chunk:
                    rec.failed(job, reason, prep)
                continue
            if latents[0].interrupted:  # Ctrl-C inside the optimiser: this batch is not finished
                return True
            per_photo = (time.perf_counter() - t0) / len(chunk)
            for i, ((job, _, prep), lat) in enumerate(zip(chunk, latents)):
                t1 = time.perf_counter()
                scratch = job.new_scratch()
                try:
                    m = write_photo_outputs(scratch, lat, G, frames=frames.frames[i] if frames else ())
                except Exception as exc:  # noqa: BLE001
                    remove_scratch(scratch)
                    rec.failed(job, one_line(exc), prep + per_photo + time.perf_counter() - t1)
                    continue
                rec.done(job, scratch, m, prep + per_photo + time.perf_counter() - t1)
    except KeyboardInterrupt:
        return True
    return False


__all__ = ["LOCK_NAME", "MANIFEST_NAME", "Manifest", "PhotoJob", "Recorder", "RunLock", "RunSummary", "SCRATCH_PREFIX",
           "commit_outputs", "one_line", "plan_run", "remove_scratch", "run_local", "settings_fingerprint", "where"]
