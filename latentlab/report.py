"""One self-contained HTML page that shows a run step by step (what ``latentlab demo`` writes).

The page makes no outside request: every image is embedded as a PNG ``data:`` URI, the style
sheet is inline, there is no script, font or link to another host. Each step carries its status
(``done``, ``unavailable`` with the reason, or ``failed`` with the error), its settings, a metrics
table, the exact ``latentlab ...`` commands that reproduce its figures, and the figures.

Usage::

    from latentlab.report import Figure, Report, Step, write_report
    step = Step("Sampling", settings={"seeds": "0-3"}, commands=["latentlab sample ..."],
                figures=[Figure("grid", grid_uint8)])
    write_report(Report("latentlab demo", steps=[step]), "out/report.html")
"""

from __future__ import annotations

import base64
import html
import io
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .errors import LatentlabError

STATUSES = ("done", "unavailable", "failed")


@dataclass
class Figure:
    """An image for the page. image: uint8 ``[H, W, 3]`` (or ``[H, W]``) or a path to an image file.
    It is downscaled (Lanczos) so that its longer side is at most ``max_side`` px."""

    title: str
    image: "np.ndarray | str | Path"
    caption: str = ""
    max_side: int = 1024


@dataclass
class Step:
    """One section of the report.

    status: ``done``, ``unavailable`` (a feature that is missing here; ``reason`` says why) or
    ``failed`` (it raised; ``reason`` holds the error). metrics: table rows (dicts, same or
    overlapping keys). commands: shell lines that reproduce the figures. seconds: wall time.
    """

    title: str
    description: str = ""
    status: str = "done"
    reason: str = ""
    settings: dict[str, Any] = field(default_factory=dict)
    metrics: list[dict[str, Any]] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    seconds: float | None = None
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise LatentlabError(f"step status must be one of {STATUSES}, got {self.status!r}")


@dataclass
class Report:
    """A titled list of steps plus an environment table (versions, device, totals)."""

    title: str
    steps: list[Step] = field(default_factory=list)
    summary: str = ""
    environment: dict[str, Any] = field(default_factory=dict)
    created: str = field(default_factory=lambda: time.strftime("%Y-%m-%d %H:%M:%S"))


# ------------------------------------------------------------------------------------ images
def _as_rgb_uint8(image: "np.ndarray | str | Path") -> np.ndarray:
    if isinstance(image, (str, Path)):
        from .imageio import load_image

        return load_image(image, min_size=1)
    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        raise LatentlabError(f"report images must be uint8, got {arr.dtype}")
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4):
        raise LatentlabError(f"report images must be [H, W], [H, W, 3] or [H, W, 4], got {arr.shape}")
    return np.ascontiguousarray(arr)


def png_bytes(image: "np.ndarray | str | Path", max_side: int | None = None) -> bytes:
    """PNG file bytes of an image (uint8 array or path), downscaled to ``max_side`` if larger."""
    from PIL import Image

    im = Image.fromarray(_as_rgb_uint8(image))
    if max_side is not None and max(im.size) > max_side:
        s = max_side / max(im.size)
        im = im.resize((max(1, round(im.width * s)), max(1, round(im.height * s))), Image.LANCZOS)
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


def png_data_uri(image: "np.ndarray | str | Path", max_side: int | None = None) -> str:
    """``data:image/png;base64,...`` for an image (uint8 array or path)."""
    return "data:image/png;base64," + base64.b64encode(png_bytes(image, max_side)).decode("ascii")


# ------------------------------------------------------------------------------------ HTML
_CSS = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d1d1f;background:#fafafa}
main{max-width:1100px;margin:0 auto;padding:24px}
h1{margin:0 0 4px}h2{margin:36px 0 8px;padding-top:12px;border-top:1px solid #ddd}
.meta{color:#666;font-size:13px}
.badge{display:inline-block;font-size:12px;padding:1px 8px;border-radius:10px;margin-left:8px;vertical-align:middle}
.done{background:#d9f2dd;color:#14532d}.unavailable{background:#fff1c2;color:#713f12}.failed{background:#fde2e2;color:#7f1d1d}
.reason{border-left:4px solid #d97706;background:#fff8e6;padding:8px 12px;margin:8px 0}
.reason.failed{border-color:#b91c1c;background:#fdecec}
table{border-collapse:collapse;margin:8px 0;font-size:13px}
td,th{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f0f0f0}
td.num{text-align:right;font-variant-numeric:tabular-nums}
pre{background:#1e1e1e;color:#eee;padding:10px 12px;border-radius:6px;overflow-x:auto;font-size:13px;white-space:pre-wrap}
figure{margin:14px 0}figure img{max-width:100%;height:auto;border:1px solid #ccc;background:#fff}
figcaption{font-size:13px;color:#444}
nav ol{columns:2}
"""


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        if value != 0 and (abs(value) >= 1e5 or abs(value) < 1e-3):
            return f"{value:.3g}"
        return f"{value:.4g}" if abs(value) < 100 else f"{value:.1f}"
    if isinstance(value, (list, tuple)):
        return ", ".join(_fmt(v) for v in value)
    return str(value)


def _is_num(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _table(rows: Sequence[dict[str, Any]]) -> str:
    cols: list[str] = []
    for r in rows:
        cols += [k for k in r if k not in cols]
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in cols)
    body = []
    for r in rows:
        cells = "".join(f"<td class=\"num\">{html.escape(_fmt(r.get(c)))}</td>" if _is_num(r.get(c))
                        else f"<td>{html.escape(_fmt(r.get(c)))}</td>" for c in cols)
        body.append(f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _kv_table(d: dict[str, Any]) -> str:
    rows = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(_fmt(v))}</td></tr>" for k, v in d.items())
    return f"<table><tbody>{rows}</tbody></table>"


def _anchor(i: int) -> str:
    return f"step{i + 1}"


def render_html(report: Report) -> str:
    """The report as one HTML string (images inlined as PNG data URIs; no outside references)."""
    out = ["<!DOCTYPE html>", "<html lang=\"en\"><head><meta charset=\"utf-8\">",
           "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">",
           # Forbid every fetch: the page is meant to be fully self-contained.
           "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
           "img-src data:; style-src 'unsafe-inline'\">",
           f"<title>{html.escape(report.title)}</title><style>{_CSS}</style></head><body><main>",
           f"<h1>{html.escape(report.title)}</h1>",
           f"<p class=\"meta\">written {html.escape(report.created)}</p>"]
    if report.summary:
        out += [f"<p>{html.escape(p)}</p>" for p in report.summary.split("\n\n")]
    if report.steps:
        items = "".join(f"<li><a href=\"#{_anchor(i)}\">{html.escape(s.title)}</a>"
                        f"<span class=\"badge {s.status}\">{s.status}</span></li>"
                        for i, s in enumerate(report.steps))
        out.append(f"<nav><ol>{items}</ol></nav>")
    for i, s in enumerate(report.steps):
        secs = f" · {s.seconds:.1f} s" if s.seconds is not None else ""
        out.append(f"<section id=\"{_anchor(i)}\" class=\"step\" data-status=\"{s.status}\">"
                   f"<h2>{i + 1}. {html.escape(s.title)}<span class=\"badge {s.status}\">{s.status}</span>"
                   f"<span class=\"meta\">{secs}</span></h2>")
        if s.description:
            out += [f"<p>{html.escape(p)}</p>" for p in s.description.split("\n\n")]
        if s.status != "done":
            label = "Not available" if s.status == "unavailable" else "Failed"
            out.append(f"<div class=\"reason {s.status}\"><b>{label}:</b> {html.escape(s.reason or 'no reason given')}</div>")
        if s.settings:
            out += ["<h3>Settings</h3>", _kv_table(s.settings)]
        if s.metrics:
            out += ["<h3>Metrics</h3>", _table(s.metrics)]
        for note in s.notes:
            out.append(f"<p class=\"meta\">{html.escape(note)}</p>")
        if s.commands:
            out += ["<h3>Reproduce</h3>", "<pre>" + html.escape("\n".join(s.commands)) + "</pre>"]
        for f in s.figures:
            uri = png_data_uri(f.image, f.max_side)
            cap = html.escape(f.title) + (f" — {html.escape(f.caption)}" if f.caption else "")
            out.append(f"<figure><img alt=\"{html.escape(f.title)}\" src=\"{uri}\"><figcaption>{cap}</figcaption></figure>")
        out.append("</section>")
    if report.environment:
        out += ["<h2>Environment</h2>", _kv_table(report.environment)]
    out.append("</main></body></html>")
    return "\n".join(out) + "\n"


def write_report(report: Report, path: "str | Path", *, force: bool = False) -> Path:
    """Render ``report`` and write it to ``path`` (never overwrites unless ``force``)."""
    from .imageio import write_bytes_atomic

    path = Path(path)
    if (path.exists() or path.is_symlink()) and not force:
        raise LatentlabError(f"{path} already exists; use --force to overwrite")
    return write_bytes_atomic(path, render_html(report), force=force)


__all__ = ["Figure", "Report", "STATUSES", "Step", "png_bytes", "png_data_uri", "render_html", "write_report"]
