"""Supervised attribute directions (InterFaceGAN-style), fitted on a generator's own samples.

Recipe (:func:`fit_direction`): draw N latents ``z = RandomState(seed).randn(N, z_dim)``, map them to
W with truncation ``psi``, render each image and shrink it to 256 px, score it with an attribute
scorer (:func:`latentlab.faces.attributes.score_attributes` by default), keep the top and bottom
``fraction`` of the scored samples as the two classes, fit a linear boundary in W with scikit-learn
and return its unit normal, with the accuracy on a held-out split.

Renders and scores are cached per (model weights, w_avg, seed, psi) under
``cache_dir()/fit/<key>/`` in chunks of :data:`CHUNK` samples (``renders_XXXXXX.npz``: z index,
w, 256 px images; ``scores_XXXXXX.npz``: one array per attribute). Because the latents of seed s
are a prefix-stable draw, a cache made for N samples serves any N' <= N, an interrupted run resumes
from its last complete chunk, and fitting several attributes renders once.
"""

from __future__ import annotations

import hashlib
import re
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import LatentlabError
from ..progress import Progress, ProgressArg, as_callback

#: Samples per cache chunk (one file each for renders and scores).
CHUNK = 32
#: Side of the images that are cached and scored (px).
SCORE_SIZE = 256


def sample_latents(G, num_samples: int, seed: int = 0) -> np.ndarray:
    """z [N, z_dim] float32: ``np.random.RandomState(seed).randn(N, z_dim)``. A shorter draw with
    the same seed is a prefix of a longer one."""
    return np.random.RandomState(int(seed)).randn(int(num_samples), G.z_dim).astype(np.float32)


@torch.inference_mode()
def render_small(G, ws: torch.Tensor, size: int = SCORE_SIZE) -> np.ndarray:
    """ws [N, num_ws, w_dim] -> uint8 [N, size, size, 3]: synthesis (const noise), clamp to
    [-1, 1], area downsample to ``size``, NVIDIA's uint8 conversion."""
    img = G.synthesis(ws.to(G.device, torch.float32), noise_mode="const").clamp(-1, 1)
    if img.shape[-1] != size or img.shape[-2] != size:
        img = F.interpolate(img.float(), size=(size, size), mode="area")
    x = (img.permute(0, 2, 3, 1) * 127.5 + 128).clamp(0, 255)
    return x.to(torch.uint8).cpu().numpy()


def cache_key(G, model: str, seed: int, truncation_psi: float) -> str:
    """Folder name for a (model weights, w_avg, seed, psi) sample cache."""
    from ..registry import state_hash

    h = hashlib.sha256(state_hash(G).encode())
    h.update(G.w_avg.detach().float().cpu().numpy().tobytes())
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", model) or "model"
    return f"{safe}-{h.hexdigest()[:16]}-seed{int(seed)}-psi{float(truncation_psi):g}"


def sample_cache_dir(G, model: str, seed: int, truncation_psi: float) -> Path:
    from ..assets import cache_dir

    return cache_dir() / "fit" / cache_key(G, model, seed, truncation_psi)


def _chunk_path(folder: Path, kind: str, start: int) -> Path:
    return folder / f"{kind}_{start:06d}.npz"


def _save_npz(path: Path, **arrays) -> None:
    tmp = path.with_name(path.name + ".part")
    with open(tmp, "wb") as f:
        np.savez(f, **arrays)
    tmp.replace(path)


#: Default layer range (reference rows of StyleGAN2-1024's 18-row layout) per attribute.
DEFAULT_LAYERS: dict[str, str] = {
    "smile": "0-5", "mouth_width": "0-5", "mouth_corner_lift": "0-5",
    "age": "0-9", "gender": "0-9", "eyes_open": "0-9",
    "yaw": "0-6", "pitch": "0-6", "roll": "0-6",
}

Scorer = Callable[[np.ndarray], "dict[str, np.ndarray]"]
#: Version tag of the default scorer's cached scores (bump when the scorer changes).
DEFAULT_SCORER_ID = "attributes-v1"


def default_scorer(images: np.ndarray) -> dict[str, np.ndarray]:
    """:func:`latentlab.faces.attributes.score_attributes` on 256 px renders (detector without
    upsampling: the aligned faces of a 256 px render are large enough)."""
    from ..faces.attributes import score_attributes

    return score_attributes(images, upsample=0)


class Samples:
    """Latents and scores of N samples: ``w`` float32 [N, w_dim], ``scores`` name -> float64 [N]
    (NaN where the scorer found no face), ``seconds`` the render + score compute time they cost
    (chunks cached without a timing counted at the others' mean rate; NaN when none is timed)."""

    def __init__(self, w: np.ndarray, scores: dict[str, np.ndarray], seconds: float = 0.0):
        self.w = np.asarray(w, np.float32)
        self.scores = {k: np.asarray(v, np.float64) for k, v in scores.items()}
        self.seconds = float(seconds)
        for k, v in self.scores.items():
            if v.shape != (self.w.shape[0],):
                raise LatentlabError(f"score {k!r} has shape {list(v.shape)}, expected [{self.w.shape[0]}]")

    def __len__(self) -> int:
        return int(self.w.shape[0])


def _load_chunk(path: Path, n: int) -> dict[str, np.ndarray] | None:
    """A complete chunk file with at least n rows, else None (missing, partial or unreadable)."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError):
        return None
    rows = data.get("w", data.get("face_found"))
    if rows is None or rows.shape[0] < n:
        return None
    return data


class _Count:
    """Samples rendered and scored so far, reported as ``"render+score"`` progress events."""

    def __init__(self, total: int, report: "Callable[[Progress], None] | None") -> None:
        self.total, self.done, self.report = total, 0, report
        if report is not None:
            report(Progress("render+score", 0, total))

    def update(self, n: int) -> None:
        self.done += int(n)
        if self.report is not None:
            self.report(Progress("render+score", min(self.done, self.total), self.total))

    def close(self) -> None:
        return None


def render_chunk(G, z: np.ndarray, truncation_psi: float, batch: int, bar: "_Count | None" = None) -> dict[str, np.ndarray]:
    t0 = time.perf_counter()
    zt = torch.from_numpy(z).to(G.device)
    with torch.inference_mode():
        ws = G.mapping(zt, truncation_psi=truncation_psi)
    imgs = []
    for i in range(0, z.shape[0], batch):
        imgs.append(render_small(G, ws[i:i + batch]))
        if bar is not None:
            bar.update(min(batch, z.shape[0] - i))
    return {"w": ws[:, 0].float().cpu().numpy(), "images": np.concatenate(imgs),
            "seconds": np.float64(time.perf_counter() - t0)}


def score_chunk(scorer: Scorer, images: np.ndarray) -> dict[str, np.ndarray]:
    t0 = time.perf_counter()
    raw = scorer(images)
    out = {}
    for k, v in raw.items():
        a = np.asarray(v, np.float64)
        if a.shape != (images.shape[0],):
            raise LatentlabError(f"scorer returned {k!r} of shape {list(a.shape)} for "
                                 f"{images.shape[0]} images")
        out[k] = a
    out["seconds"] = np.float64(time.perf_counter() - t0)
    return out


def collect_samples(G, num_samples: int, *, seed: int = 0, truncation_psi: float = 0.7,
                    scorer: Scorer | None = None, scorer_id: str | None = None, model: str = "",
                    cache: bool = True, batch: int = 4, progress: ProgressArg = None,
                    compute_chunks: "Callable | None" = None) -> Samples:
    """Sample, render, score: the data a direction is fitted on.

    ``scorer``: images uint8 [n, 256, 256, 3] -> name -> [n] scores (default
    :func:`default_scorer`). With ``cache`` (default) renders are kept in the cache folder of
    (model weights, w_avg, seed, psi) and scores beside them under ``scorer_id`` (default
    :data:`DEFAULT_SCORER_ID` for the default scorer; a custom scorer's scores are cached only when
    it is given a ``scorer_id``), so a second call or an interrupted one continues where the last
    stopped, one chunk of :data:`CHUNK` samples at a time.

    ``compute_chunks``: how the chunks missing from the cache are rendered and scored; None: here,
    one after the other; :func:`latentlab.engine.ray_engine.ray_chunk_runner`: as Ray tasks. It is
    called as ``compute_chunks(G, jobs, truncation_psi=, batch=, scorer=, on_done=)`` with jobs
    ``{"start", "n", "z"}`` (render and score) or ``{"start", "n", "images"}`` (renders cached:
    score only), and calls ``on_done(job, renders or None, scores)`` for each; the results and the
    cache are the same either way.
    """
    if num_samples < 1:
        raise LatentlabError(f"--samples must be at least 1, got {num_samples}")
    if not 0 <= truncation_psi <= 1.5:
        raise LatentlabError(f"truncation psi must be in [0, 1.5], got {truncation_psi}")
    if scorer is None:
        scorer, scorer_id = default_scorer, scorer_id or DEFAULT_SCORER_ID
    if scorer_id is not None and not re.fullmatch(r"[A-Za-z0-9_.-]+", scorer_id):
        raise LatentlabError(f"scorer id {scorer_id!r} may hold only letters, digits, '_', '.', '-'")
    folder = sample_cache_dir(G, model or "model", seed, truncation_psi) if cache else None
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
    z_all = sample_latents(G, num_samples, seed)
    bar = _Count(num_samples, as_callback(progress))
    results: dict[int, dict[str, np.ndarray]] = {}
    jobs: list[dict] = []
    for s in range(0, num_samples, CHUNK):
        n = min(CHUNK, num_samples - s)
        job = {"start": s, "n": n,
               "rpath": _chunk_path(folder, "renders", s) if folder else None,
               "spath": _chunk_path(folder, f"scores-{scorer_id}", s) if folder and scorer_id else None}
        sc = _load_chunk(job["spath"], n) if job["spath"] else None
        if sc is not None:
            results[s] = sc
            bar.update(n)
            continue
        rend = _load_chunk(job["rpath"], n) if job["rpath"] else None
        if rend is None:
            job["z"] = z_all[s:s + n]
        else:
            job["images"], job["renders"] = rend["images"][:n], rend
        jobs.append(job)

    def on_done(job: dict, rend: "dict[str, np.ndarray] | None", sc: dict[str, np.ndarray]) -> None:
        s, n = job["start"], job["n"]
        if rend is not None:
            if job["rpath"] is not None:
                _save_npz(job["rpath"], start=np.int64(s), **rend)
        else:
            rend = job["renders"]
        if compute_chunks is not None or "images" in job:
            bar.update(n)  # (renders made here advance the bar batch by batch as they go)
        sc = dict(sc)
        sc["w"] = rend["w"][:n]
        # Render time of these n samples (NaN for chunks written without a timing).
        sc["render_seconds"] = np.float64(float(rend.get("seconds", np.nan)) * n / rend["w"].shape[0])
        if job["spath"] is not None:
            _save_npz(job["spath"], **sc)
        results[s] = sc

    if compute_chunks is None:
        for job in jobs:
            rend = None if "images" in job else render_chunk(G, job["z"], truncation_psi, batch, bar)
            images = job["images"] if "images" in job else rend["images"][:job["n"]]
            on_done(job, rend, score_chunk(scorer, images))
    elif jobs:
        compute_chunks(G, [{k: v for k, v in j.items() if k in ("start", "n", "z", "images")} | {"_job": j}
                           for j in jobs], truncation_psi=truncation_psi, batch=batch, scorer=scorer,
                       on_done=lambda job, rend, sc: on_done(job["_job"], rend, sc))
    bar.close()

    ws, scores, seconds, timed = [], [], 0.0, 0
    for s in range(0, num_samples, CHUNK):
        n = min(CHUNK, num_samples - s)
        sc = results[s]
        ws.append(sc["w"][:n])
        scores.append({k: v[:n] for k, v in sc.items()
                       if k not in ("w", "seconds", "render_seconds") and np.ndim(v) == 1})
        t = float(sc["seconds"]) + float(sc.get("render_seconds", np.nan))
        if np.isfinite(t):
            seconds += t
            timed += n
    names = set(scores[0]) if scores else set()
    for sdict in scores:
        names &= set(sdict)
    merged = {k: np.concatenate([sdict[k] for sdict in scores]) for k in sorted(names)}
    # Chunks cached without a timing are counted at the mean rate of the timed ones.
    total = seconds * num_samples / timed if timed else float("nan")
    return Samples(np.concatenate(ws), merged, total)


# --------------------------------------------------------------------------------- fitting
def fit_boundary(w: np.ndarray, scores: np.ndarray, *, fraction: float = 0.25, val_fraction: float = 0.2,
                 method: str = "svm", seed: int = 0) -> tuple[np.ndarray, dict]:
    """Unit normal [w_dim] of a linear boundary separating the highest- from the lowest-scoring
    samples (InterFaceGAN): the top and bottom ``fraction`` of the finite scores are the classes
    (+1 / -1), ``val_fraction`` of them is held out, the regularisation C is chosen by 5-fold
    cross-validation on the rest, and the normal points towards higher scores.

    method: ``svm`` (scikit-learn LinearSVC) or ``logistic`` (LogisticRegression).
    Returns (normal, info) with info: n_used, n_train, n_val, train_accuracy, val_accuracy, C,
    score_low / score_high (the class thresholds), projection_std (std of w . normal over all
    samples: the natural unit of an edit's strength).
    """
    try:
        from sklearn.linear_model import LogisticRegression
        from sklearn.model_selection import GridSearchCV
        from sklearn.svm import LinearSVC
    except ImportError:
        raise LatentlabError("fitting directions needs scikit-learn: pip install scikit-learn") from None

    w = np.asarray(w, np.float64)
    y_score = np.asarray(scores, np.float64)
    if w.ndim != 2 or y_score.shape != (w.shape[0],):
        raise LatentlabError(f"w must be [N, w_dim] and scores [N], got {list(w.shape)} and {list(y_score.shape)}")
    if not 0 < fraction <= 0.5:
        raise LatentlabError(f"fraction must be in (0, 0.5], got {fraction}")
    if not 0 < val_fraction < 1:
        raise LatentlabError(f"validation fraction must be in (0, 1), got {val_fraction}")
    if method not in ("svm", "logistic"):
        raise LatentlabError(f"method must be svm or logistic, got {method!r}")
    ok = np.isfinite(y_score)
    idx = np.flatnonzero(ok)
    k = int(round(fraction * idx.size))
    if k < 10:
        raise LatentlabError(f"too few scored samples to fit: {idx.size} with a face, {k} per class "
                             f"(need at least 10; use more --samples or a larger fraction)")
    order = idx[np.argsort(y_score[idx], kind="stable")]
    neg, pos = order[:k], order[-k:]
    X = np.concatenate([w[pos], w[neg]])
    y = np.concatenate([np.ones(k, int), np.zeros(k, int)])
    rng = np.random.RandomState(seed)
    perm = rng.permutation(2 * k)
    n_val = max(2, int(round(val_fraction * 2 * k)))
    val, train = perm[:n_val], perm[n_val:]
    mean = X[train].mean(0)
    scale = float(X[train].std()) or 1.0
    Xs = (X - mean) / scale  # one global scale: the normal's direction is unchanged
    if method == "svm":
        base = LinearSVC(dual="auto", max_iter=20000)
    else:
        base = LogisticRegression(max_iter=5000)
    grid = GridSearchCV(base, {"C": [1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0]}, cv=5)
    grid.fit(Xs[train], y[train])
    clf = grid.best_estimator_
    normal = np.asarray(clf.coef_, np.float64).reshape(-1)
    norm = np.linalg.norm(normal)
    if not np.isfinite(norm) or norm == 0:
        raise LatentlabError("the fitted boundary is degenerate (zero normal)")
    normal /= norm
    info = {
        "n_scored": int(idx.size), "n_used": int(2 * k), "n_train": int(train.size), "n_val": int(val.size),
        "train_accuracy": float(clf.score(Xs[train], y[train])),
        "val_accuracy": float(clf.score(Xs[val], y[val])),
        "C": float(grid.best_params_["C"]),
        "score_low": float(y_score[neg].max()), "score_high": float(y_score[pos].min()),
        "projection_std": float(np.std(w[ok] @ normal)),
    }
    return normal.astype(np.float32), info


def condition_direction(direction: np.ndarray, conditions: "Sequence[np.ndarray]") -> np.ndarray:
    """Conditional manipulation (InterFaceGAN): remove from ``direction`` [w_dim] its component in
    the span of the ``conditions`` (each [w_dim]), by Gram-Schmidt; one condition gives
    ``n1 - (n1 . n2) n2`` for unit n2. Returns a unit vector orthogonal to every condition."""
    n = np.asarray(direction, np.float64).reshape(-1)
    basis: list[np.ndarray] = []
    for c in conditions:
        v = np.asarray(c, np.float64).reshape(-1)
        if v.shape != n.shape:
            raise LatentlabError(f"condition direction of shape {list(v.shape)} does not match {list(n.shape)}")
        for b in basis:
            v = v - (v @ b) * b
        nv = np.linalg.norm(v)
        if nv > 1e-8:
            basis.append(v / nv)
    for b in basis:
        n = n - (n @ b) * b
    nn = np.linalg.norm(n)
    if nn < 1e-6:
        raise LatentlabError("the direction lies in the span of its conditions: nothing is left after projection")
    return (n / nn).astype(np.float32)


def fit_direction(G, attribute: str, *, samples: Samples | None = None, num_samples: int = 1000,
                  seed: int = 0, truncation_psi: float = 0.7, scorer: Scorer | None = None,
                  scorer_id: str | None = None, condition: "Sequence[str]" = (), fraction: float = 0.25,
                  val_fraction: float = 0.2, method: str = "svm", model: str = "", layers: str | None = None,
                  cache: bool = True, batch: int = 4, progress: ProgressArg = None):
    """Fit the direction of ``attribute`` in W for generator G; returns a
    :class:`~latentlab.editing.directions.Direction` (unit vector [w_dim], default layer range,
    metadata). ``samples``: reuse already collected :class:`Samples`; else they are collected with
    :func:`collect_samples` (cached). ``condition``: attributes whose own fitted directions are
    projected out (conditional manipulation)."""
    from .directions import Direction

    t0 = time.perf_counter()
    if samples is None:
        samples = collect_samples(G, num_samples, seed=seed, truncation_psi=truncation_psi, scorer=scorer,
                                  scorer_id=scorer_id, model=model, cache=cache, batch=batch, progress=progress)
    for name in [attribute, *condition]:
        if name not in samples.scores:
            raise LatentlabError(f"no scores for attribute {name!r}; the scorer gives: "
                                 f"{', '.join(k for k in samples.scores if k != 'face_found')}")
    if attribute in condition:
        raise LatentlabError(f"{attribute!r} cannot be conditioned on itself")
    normal, info = fit_boundary(samples.w, samples.scores[attribute], fraction=fraction,
                                val_fraction=val_fraction, method=method, seed=seed)
    cond_info = {}
    if condition:
        others = []
        for c in condition:
            n_c, i_c = fit_boundary(samples.w, samples.scores[c], fraction=fraction,
                                    val_fraction=val_fraction, method=method, seed=seed)
            others.append(n_c)
            cond_info[c] = {"val_accuracy": i_c["val_accuracy"], "cosine_before": float(normal @ n_c)}
        normal = condition_direction(normal, others)
        scored = np.isfinite(samples.scores[attribute])
        info["projection_std"] = float(np.std(samples.w[scored].astype(np.float64) @ normal))
    meta = {
        "method": f"interfacegan-{method}", "attribute": attribute, "model": model,
        "samples": len(samples), "seed": int(seed), "truncation_psi": float(truncation_psi),
        "fraction": float(fraction), "val_fraction": float(val_fraction),
        "scorer": scorer_id or (DEFAULT_SCORER_ID if scorer is None else getattr(scorer, "__name__", "custom")),
        "condition": list(condition), "condition_info": cond_info,
        "sample_seconds": round(samples.seconds, 1) if np.isfinite(samples.seconds) else None,
        "seconds_per_sample": (round(samples.seconds / max(1, len(samples)), 3)
                               if np.isfinite(samples.seconds) else None),
        "fit_seconds": round(time.perf_counter() - t0, 1),
        "space": "w",
        # +-2 sigma, sigma = the untruncated generator's spread along the direction (truncation shrank
        # the samples' spread by psi; Direction.sigma). At 3 sigma, yaw on a projected photo tears the
        # background apart.
        "demo_strength": round(2.0 * info["projection_std"] / truncation_psi, 1) if truncation_psi > 0 else 3.0,
        **{k: (round(v, 4) if isinstance(v, float) else v) for k, v in info.items()},
    }
    return Direction(attribute, normal, layers or DEFAULT_LAYERS.get(attribute, "all"), model, meta)


__all__ = ["CHUNK", "DEFAULT_LAYERS", "DEFAULT_SCORER_ID", "SCORE_SIZE", "Samples", "cache_key",
           "collect_samples", "condition_direction", "default_scorer", "fit_boundary", "fit_direction",
           "render_chunk", "render_small", "sample_cache_dir", "sample_latents", "score_chunk"]
