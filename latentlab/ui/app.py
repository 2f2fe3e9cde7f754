"""The web layer of ``latentlab ui``: a Flask app over :class:`latentlab.ui.core.Studio`.

Why Flask and a plain HTML/JS page rather than Gradio (the field's usual choice): Gradio 6 pulls
in about 50 packages (FastAPI, pandas, huggingface_hub, ...) and by default loads its fonts from
Google Fonts and reports usage analytics, while this UI must make no outside request. Flask
(with Werkzeug, Jinja2, itsdangerous, blinker; about 1 MB) serves one self-contained page whose
script polls JSON endpoints; nothing on the page refers to another host, and the Content
Security Policy header forbids it. The server binds to 127.0.0.1 by default.

Endpoints (JSON unless noted; errors are ``{"error": "..."}`` with status 400, 404 or 409):

* ``GET /``: the page; ``GET /api/info``: model and controls;
* ``POST /api/photos`` (multipart ``photo`` or raw body, ``?name=&align=0|1``): upload;
* ``POST /api/project`` ``{photo, steps, space}``; ``POST /api/render`` ``{latent, strengths,
  layers, style}``; ``POST /api/swap`` ``{target, face, layers}``: start a job;
* ``GET /api/jobs/<id>``: progress; ``POST /api/jobs/<id>/cancel``; ``GET /api/jobs/<id>/preview.png``;
* ``GET /api/images/<id>.png`` and ``GET /api/latents/<id>.npz`` (``?download=1`` for a file name).
"""

from __future__ import annotations

from typing import Any

from ..errors import LatentlabError
from .core import BusyError, Studio

#: Largest accepted upload (bytes).
MAX_UPLOAD = 32 * 1024 * 1024

CSP = ("default-src 'none'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; "
       "script-src 'self' 'unsafe-inline'; connect-src 'self'; form-action 'self'; base-uri 'none'")


def create_app(studio: Studio):
    """A Flask app serving the UI for ``studio``."""
    from flask import Flask, Response, jsonify, request

    from .page import render_page

    app = Flask("latentlab.ui")
    app.config["MAX_CONTENT_LENGTH"] = MAX_UPLOAD
    app.config["studio"] = studio

    def error(message: str, status: int = 400):
        return jsonify({"error": message}), status

    @app.errorhandler(LatentlabError)
    def _latentlab_error(exc: LatentlabError):
        msg = " ".join(str(exc).split())
        return error(msg, 409 if isinstance(exc, BusyError) else (404 if msg.startswith("unknown ") else 400))

    @app.errorhandler(413)
    def _too_large(_exc: Any):
        return error(f"upload too large (limit {MAX_UPLOAD // 2**20} MB)", 413)

    @app.after_request
    def _headers(resp: Response) -> Response:
        resp.headers["Content-Security-Policy"] = CSP
        resp.headers["X-Content-Type-Options"] = "nosniff"
        resp.headers["Referrer-Policy"] = "no-referrer"
        resp.headers["Cache-Control"] = "no-store"
        return resp

    def body() -> dict[str, Any]:
        data = request.get_json(silent=True)
        if not isinstance(data, dict):
            raise LatentlabError("expected a JSON object in the request body")
        return data

    def need(data: dict[str, Any], key: str) -> Any:
        if data.get(key) in (None, ""):
            raise LatentlabError(f"missing {key!r}")
        return data[key]

    @app.get("/")
    def index():
        return Response(render_page(), mimetype="text/html")

    @app.get("/favicon.ico")
    def favicon():
        return Response(status=204)

    @app.get("/api/info")
    def info():
        return jsonify(studio.info())

    @app.get("/api/layers")
    def layers():
        return jsonify({"rows": studio.describe_layers(request.args.get("spec", ""))})

    @app.post("/api/photos")
    def upload():
        if request.mimetype == "multipart/form-data":
            f = request.files.get("photo")
            if f is None:
                raise LatentlabError("no file in the upload (form field 'photo')")
            data, name = f.read(), f.filename or "upload"
        else:  # the raw file as the request body: curl --data-binary @photo.jpg '.../api/photos?name=photo.jpg'
            data, name = request.get_data(), request.args.get("name", "upload")
        align = request.args.get("align", request.form.get("align", "1")) not in ("0", "false", "no")
        return jsonify(studio.add_photo(data, name, align=align))

    @app.post("/api/project")
    def project():
        d = body()
        steps = d.get("steps")
        job = studio.start_projection(str(need(d, "photo")), int(steps) if steps not in (None, "") else None,
                                      str(d.get("space") or "w+"))
        return jsonify(job.to_dict())

    @app.post("/api/render")
    def render():
        d = body()
        job = studio.start_render(str(need(d, "latent")), _floats(d.get("strengths")), _strs(d.get("layers")),
                                  d.get("style") if isinstance(d.get("style"), dict) else None)
        return jsonify(job.to_dict())

    @app.post("/api/swap")
    def swap():
        d = body()
        job = studio.start_swap(str(need(d, "target")), str(need(d, "face")), d.get("layers") or None)
        return jsonify(job.to_dict())

    @app.get("/api/jobs/<job_id>")
    def job(job_id: str):
        return jsonify(studio.job(job_id).to_dict())

    @app.post("/api/jobs/<job_id>/cancel")
    def cancel(job_id: str):
        return jsonify(studio.cancel(job_id).to_dict())

    @app.get("/api/jobs/<job_id>/preview.png")
    def preview(job_id: str):
        png = studio.job(job_id).preview
        if png is None:
            return error("no preview yet", 404)
        return Response(png, mimetype="image/png")

    @app.get("/api/images/<image_id>.png")
    def image(image_id: str):
        resp = Response(studio.image_png(image_id), mimetype="image/png")
        if request.args.get("download"):
            name = "".join(c for c in request.args.get("name", image_id) if c.isalnum() or c in "._-") or image_id
            resp.headers["Content-Disposition"] = f"attachment; filename={name}.png"
        return resp

    @app.get("/api/latents/<latent_id>.npz")
    def latent(latent_id: str):
        resp = Response(studio.latent_npz(latent_id), mimetype="application/octet-stream")
        name = "".join(c for c in studio.latent_name(latent_id) if c.isalnum() or c in "._-") or "latent"
        resp.headers["Content-Disposition"] = f"attachment; filename={name}.npz"
        return resp

    return app


def _floats(value: Any) -> dict[str, float]:
    if value in (None, ""):
        return {}
    if not isinstance(value, dict):
        raise LatentlabError("strengths must be an object name -> number")
    try:
        return {str(k): float(v) for k, v in value.items()}
    except (TypeError, ValueError):
        raise LatentlabError("strengths must be numbers") from None


def _strs(value: Any) -> dict[str, str]:
    if value in (None, ""):
        return {}
    if not isinstance(value, dict):
        raise LatentlabError("layers must be an object name -> layer range")
    return {str(k): str(v) for k, v in value.items() if str(v).strip()}


def make_server(studio: Studio, host: str = "127.0.0.1", port: int = 7860):
    """A threaded WSGI server (Werkzeug) for the app; ``.serve_forever()`` / ``.shutdown()``;
    ``port=0`` picks a free port (read it from ``.server_port``)."""
    from werkzeug.serving import make_server as _make

    return _make(host, port, create_app(studio), threaded=True)


__all__ = ["CSP", "MAX_UPLOAD", "create_app", "make_server"]
