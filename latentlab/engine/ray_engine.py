"""The Ray engine (optional extra ``latentlab[ray]``): projection and direction sampling on a Ray
cluster, with the same outputs, manifest and resume as the local engine.

Projection is a Ray Data pipeline:

1. the photos to run (one row each: index, path, output folder) ->
2. **load + align as CPU tasks** (``Dataset.map``; each row carries the pickled prepared photo, or
   the one-line reason it failed) ->
3. **inversion in actors** (``Dataset.map_batches`` with :class:`Projector`, a callable class that
   loads the generator once per actor; one actor per GPU, or per ``threads_per_worker`` CPU
   threads) which invert each batch with :func:`latentlab.inversion.invert` and write each photo's
   outputs with :func:`~latentlab.engine.outputs.write_photo_outputs` into a scratch folder of that
   attempt under the output folder (so the output folder must be a path every node sees; a retried
   photo gets a fresh one) ->
4. the **driver** iterates the results as they stream in: it appends the manifest rows, moves each
   photo's outputs into place (:class:`~latentlab.engine.folder.Recorder`), and shows one progress
   bar (photos done / total, failures).

Alignment tasks declare no CPU of their own (``num_cpus=0``; at most one per projection worker
at a time): they take a second or two per photo against minutes of projection, and a CPU reserved
for them would either idle or leave the actors' CPUs unused.

Direction fitting (:func:`collect_samples_ray`): chunks of seeds that are not in the cache are
rendered and scored in Ray tasks (each worker process keeps its generator between tasks); the
driver writes the cache exactly as the local engine does, and the classifier is fitted on the
driver.
"""

from __future__ import annotations

import json
import os
import pickle
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from ..errors import LatentlabError
from .folder import PhotoJob, Recorder, RunSummary, one_line, remove_scratch, where

INSTALL_HINT = "pip install 'latentlab[ray]'"
#: Environment variables the driver passes on to Ray workers (the cache folder, mainly).
FORWARDED_ENV_PREFIX = "LATENTLAB_"


def require_ray():
    """The ``ray`` module (with Ray Data), or a one-line LatentlabError saying how to install it."""
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise LatentlabError(f"--engine ray needs Ray, which is not installed: {INSTALL_HINT}") from None
    return ray


def _forwarded_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k.startswith(FORWARDED_ENV_PREFIX)}


def _apply_env(env: dict[str, str]) -> None:
    os.environ.update(env)


@contextmanager
def ray_session(address: str | None = None, *, num_cpus: int | None = None) -> Iterator[Any]:
    """Connect to Ray for the duration of a run. An already initialised Ray (a script or a test
    that called ``ray.init``) is used as it is; ``address`` None starts a local Ray for this run
    (shut down afterwards); ``auto``, ``host:port`` or ``ray://host:port`` joins a running cluster."""
    ray = require_ray()
    if ray.is_initialized():
        yield ray
        return
    import logging

    kwargs: dict[str, Any] = {"include_dashboard": False, "logging_level": logging.WARNING,
                              "log_to_driver": False, "configure_logging": True}
    try:
        if address in (None, "", "local"):
            ray.init(num_cpus=num_cpus, **kwargs)
        else:
            ray.init(address=address, **kwargs)
    except Exception as exc:  # noqa: BLE001 - connection errors come in many types
        where_ = "start a local Ray" if address in (None, "", "local") else f"connect to the Ray cluster at {address!r}"
        raise LatentlabError(f"cannot {where_}: {one_line(exc)}") from None
    try:
        yield ray
    finally:
        ray.shutdown()


def _quiet_data_context(ray) -> None:
    ctx = ray.data.DataContext.get_current()
    for name in ("enable_progress_bars", "enable_operator_progress_bars", "print_on_execution_start"):
        if hasattr(ctx, name):
            setattr(ctx, name, False)
    ctx.execution_options.verbose_progress = False


def worker_plan(ray, *, device: str, workers: int | None, threads: int | None) -> tuple[int, int, bool]:
    """(workers, threads per worker, one GPU per worker?) from the options and the cluster's
    resources: on CUDA (``device`` cuda or auto with GPUs in the cluster) one worker per GPU, else
    the cluster's CPUs divided by the threads per worker (default 2)."""
    res = ray.cluster_resources()
    gpus, cpus = int(res.get("GPU", 0)), int(res.get("CPU", 1))
    use_gpu = device.startswith("cuda") or (device == "auto" and gpus > 0)
    if use_gpu and gpus == 0:
        raise LatentlabError(f"--device {device}: the Ray cluster has no GPU")
    threads = threads or (4 if use_gpu else 2)
    if workers is None:
        workers = gpus if use_gpu else max(1, cpus // threads)
    return workers, threads, use_gpu


# ------------------------------------------------------------------------------ projection
def _prepare_row(row: dict[str, Any], *, resolution: int, align: bool, face_index: int,
                 env: dict[str, str]) -> dict[str, Any]:
    """Ray task: load + align one photo; the :class:`~latentlab.faces.Photo` pickled, or the
    reason it failed."""
    from ..faces.photo import load_photo

    _apply_env(env)
    t0 = time.perf_counter()
    out = {"index": row["index"], "status": "prepared", "error": "", "prepared": b"", **where()}
    try:
        out["prepared"] = pickle.dumps(load_photo(Path(row["path"]), resolution, align=align,
                                                  face_index=face_index), protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:  # noqa: BLE001 - recorded per photo
        out["status"], out["error"] = "failed", one_line(exc)
    out["node_id"] = out["node_id"] or ""
    out["prep_seconds"] = time.perf_counter() - t0
    out["final"] = row["final"]
    return out


class Projector:
    """Ray Data actor: loads the generator once, then inverts batches of aligned photos with
    :func:`latentlab.inversion.invert` and writes each photo's outputs into a fresh scratch folder
    with :func:`~latentlab.engine.outputs.write_photo_outputs`."""

    def __init__(self, *, network: str, device: str, threads: int, config: Any, align: bool,
                 face_index: int, save_video: bool, env: dict[str, str]):
        import torch

        from ..registry import load_generator, resolve_device

        _apply_env(env)
        torch.set_num_threads(int(threads))
        self.G = load_generator(network, resolve_device(device), progress=False)
        self.config, self.network = config, network
        self.align, self.face_index, self.save_video = align, face_index, save_video

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list]:
        from ..inversion import invert
        from .outputs import FrameCollector, write_photo_outputs

        n = len(batch["index"])
        info = where()
        info["node_id"] = info["node_id"] or ""
        out: dict[str, list] = {k: [] for k in ("index", "status", "error", "metrics", "seconds", "scratch", "host",
                                                "node_id", "pid")}

        def emit(i: int, status: str, error: str, metrics: str, seconds: float, where_: dict[str, Any],
                 scratch: str = "") -> None:
            out["index"].append(int(batch["index"][i]))
            out["status"].append(status)
            out["error"].append(error)
            out["metrics"].append(metrics)
            out["seconds"].append(float(seconds))
            out["scratch"].append(scratch)
            for k in ("host", "node_id", "pid"):
                out[k].append(where_[k])

        ok = [i for i in range(n) if batch["status"][i] == "prepared"]
        for i in range(n):
            if i not in ok:  # failed while loading / aligning: passed through with where it failed
                emit(i, "failed", str(batch["error"][i]), "", float(batch["prep_seconds"][i]),
                     {"host": str(batch["host"][i]), "node_id": str(batch["node_id"][i]), "pid": int(batch["pid"][i])})
        if not ok:
            return out
        photos = [pickle.loads(batch["prepared"][i]) for i in ok]
        frames = FrameCollector(len(ok), self.config.num_steps) if self.save_video else None
        t0 = time.perf_counter()
        try:
            latents = invert(photos, self.G, self.config, network=self.network, align=self.align,
                             face_index=self.face_index, progress=frames)
            if latents[0].interrupted:
                raise LatentlabError("the projection was interrupted on the worker")
        except Exception as exc:  # noqa: BLE001
            for i in ok:
                emit(i, "failed", one_line(exc), "", float(batch["prep_seconds"][i]), info)
            return out
        per_photo = (time.perf_counter() - t0) / len(ok)
        for k, i in enumerate(ok):
            t1 = time.perf_counter()
            final = Path(str(batch["final"][i]))
            job = PhotoJob(int(batch["index"][i]), final, final.name, final)
            scratch = job.new_scratch()
            try:
                m = write_photo_outputs(scratch, latents[k], self.G, frames=frames.frames[k] if frames else ())
                status, error, metrics = "done", "", json.dumps(m, default=str)
            except Exception as exc:  # noqa: BLE001
                remove_scratch(scratch)
                status, error, metrics = "failed", one_line(exc), ""
            emit(i, status, error, metrics, float(batch["prep_seconds"][i]) + per_photo + time.perf_counter() - t1,
                 info, str(scratch) if status == "done" else "")
        return out


def _generator_resolution(network: str) -> int:
    """The generator's output size, read on the driver (loading it on CPU also checks the
    network before any worker starts)."""
    from ..registry import load_generator

    return int(load_generator(network, "cpu", progress=False).img_resolution)


def run_ray(files: "list[Path]", todo: "list[PhotoJob]", skipped: "list[PhotoJob]", names: "list[str]", *,
            network: str, config: Any, outdir: Path, align: bool, face_index: int, batch: int | None,
            save_video: bool, force: bool, device: str, progress: Any,
            on_result: "Callable[[dict[str, Any]], None] | None", fingerprint: str, address: str | None,
            workers: int | None, threads_per_worker: int | None) -> RunSummary:
    """Project ``todo`` on Ray (module docstring); skipped photos are recorded as such. Returns
    the same :class:`RunSummary` as the local engine."""
    require_ray()
    rec = Recorder(outdir, len(files), names, fingerprint=fingerprint, force=force, progress=progress,
                   bar_total=len(todo), on_result=on_result)
    interrupted = False
    try:
        for job in skipped:
            rec.skipped(job)
        if todo:
            resolution = _generator_resolution(network)
            with ray_session(address) as ray:
                _quiet_data_context(ray)
                n_workers, threads, use_gpu = worker_plan(ray, device=device, workers=workers,
                                                          threads=threads_per_worker)
                interrupted = _stream(ray, todo, rec, resolution=resolution, network=network, config=config,
                                      align=align, face_index=face_index, save_video=save_video,
                                      device=device if not use_gpu or device != "auto" else "cuda",
                                      batch=batch or (4 if use_gpu else 1), workers=n_workers, threads=threads,
                                      use_gpu=use_gpu)
    except KeyboardInterrupt:
        interrupted = True
    return rec.close(interrupted)


def _stream(ray, todo: "list[PhotoJob]", rec: Recorder, *, resolution: int, network: str, config: Any,
            align: bool, face_index: int, save_video: bool, device: str, batch: int,
            workers: int, threads: int, use_gpu: bool) -> bool:
    env = _forwarded_env()
    by_index = {job.index: job for job in todo}
    items = [{"index": job.index, "path": str(job.path), "final": str(job.final)} for job in todo]
    ds = ray.data.from_items(items, override_num_blocks=len(items))
    ds = ds.map(_prepare_row, fn_kwargs={"resolution": resolution, "align": align, "face_index": face_index,
                                         "env": env}, num_cpus=0,
                compute=ray.data.TaskPoolStrategy(size=max(1, workers)))
    actor_resources = {"num_gpus": 1, "num_cpus": 1} if use_gpu else {"num_cpus": threads}
    ds = ds.map_batches(Projector, batch_size=batch, batch_format="numpy",
                        compute=ray.data.ActorPoolStrategy(size=workers),
                        fn_constructor_kwargs={"network": network, "device": device, "threads": threads,
                                               "config": config, "align": align,
                                               "face_index": face_index, "save_video": save_video, "env": env},
                        **actor_resources)
    iterator = iter(ds.iter_rows())
    try:
        for row in iterator:
            job = by_index[int(row["index"])]
            info = {"host": str(row["host"]), "node_id": str(row["node_id"]) or None, "pid": int(row["pid"])}
            if row["status"] == "done":
                rec.done(job, Path(str(row["scratch"])), json.loads(row["metrics"]), float(row["seconds"]), info)
            else:
                rec.failed(job, str(row["error"]), float(row["seconds"]), info)
    except KeyboardInterrupt:
        return True
    finally:
        close = getattr(iterator, "close", None)
        if close is not None:
            close()
    return False


# ------------------------------------------------------------------------ direction fitting
_G_CACHE: dict[tuple[str, str], Any] = {}


def _worker_generator(network: str, device: str):
    """The generator of ``network`` in this worker process (kept between tasks)."""
    from ..registry import load_generator, resolve_device

    key = (str(network), str(device))
    if key not in _G_CACHE:
        _G_CACHE.clear()
        _G_CACHE[key] = load_generator(network, resolve_device(device), progress=False)
    return _G_CACHE[key]


def _render_score_task(network: str, device: str, threads: int, z: np.ndarray | None,
                       images: np.ndarray | None, truncation_psi: float, batch: int, scorer: Any,
                       env: dict[str, str]) -> tuple[dict[str, np.ndarray] | None, dict[str, np.ndarray]]:
    """Ray task: render (unless ``images`` are given) and score one chunk of seeds; returns
    (renders or None, scores) in the cache's chunk format."""
    import torch

    from ..editing import fit

    _apply_env(env)
    torch.set_num_threads(int(threads))
    rend = None
    if images is None:
        rend = fit.render_chunk(_worker_generator(network, device), z, truncation_psi, batch, None)
        images = rend["images"]
    return rend, fit.score_chunk(scorer, images)


def ray_chunk_runner(*, network: str, device: str = "cpu", address: str | None = None, workers: int | None = None,
                     threads_per_worker: int | None = None):
    """A ``compute_chunks`` function for :func:`latentlab.editing.fit.collect_samples` that renders
    and scores the missing chunks as Ray tasks (``network`` must be loadable on every node)."""

    def compute(G: Any, jobs: "list[dict[str, Any]]", *, truncation_psi: float, batch: int, scorer: Any,
                on_done: Callable[[dict[str, Any], Any, Any], None]) -> None:
        require_ray()
        with ray_session(address) as ray:
            n_workers, threads, use_gpu = worker_plan(ray, device=device, workers=workers, threads=threads_per_worker)
            # a task whose worker dies (a pre-empted node, the OOM killer) runs again; its result
            # only reaches the cache through on_done here, so a lost attempt leaves nothing behind
            task = ray.remote(_render_score_task).options(num_cpus=1 if use_gpu else threads,
                                                          num_gpus=1 if use_gpu else 0, max_retries=3)
            dev = "cuda" if use_gpu else "cpu"
            env = _forwarded_env()
            pending: dict[Any, dict[str, Any]] = {}
            queue = list(jobs)
            while queue or pending:
                while queue and len(pending) < n_workers:
                    job = queue.pop(0)
                    ref = task.remote(network, dev, threads, job.get("z"), job.get("images"), truncation_psi,
                                      batch, scorer, env)
                    pending[ref] = job
                ready, _ = ray.wait(list(pending), num_returns=1)
                for ref in ready:
                    job = pending.pop(ref)
                    rend, sc = ray.get(ref)
                    on_done(job, rend, sc)

    return compute


__all__ = ["INSTALL_HINT", "Projector", "collect_samples_ray", "ray_chunk_runner", "ray_session", "require_ray",
           "run_ray", "worker_plan"]


def collect_samples_ray(G: Any, num_samples: int, *, network: str, address: str | None = None,
                        workers: int | None = None, threads_per_worker: int | None = None, device: str = "cpu",
                        **kwargs: Any):
    """:func:`latentlab.editing.fit.collect_samples` with the missing chunks rendered and scored
    on Ray (same samples, same cache)."""
    from ..editing.fit import collect_samples

    return collect_samples(G, num_samples, compute_chunks=ray_chunk_runner(
        network=network, device=device, address=address, workers=workers, threads_per_worker=threads_per_worker),
        **kwargs)
