"""The web layer of ``latentlab ui``: a Flask app over :class:`latentlab.ui.core.Studio`.

Why Flask and a plain HTML/JS page rather than Gradio (the field's usual choice): Gradio 6 pulls
in about 50 packages (FastAPI, pandas, huggingface_hub, ...) and by default loads its fonts from
Google Fonts and reports usage analytics, while this UI must make no outside request. Flask
(with Werkzeug, Jinja2, itsdangerous, blinker; about 1 MB) serves one self-contained page whose
script polls JSON endpoints; nothing on the page refers to another host, and the Content
Security Policy header forbids it. The server binds to 127.0.0.1 by default.

Every request passes, in this order (each refusal is ``403 {"error": "..."}``):

1. **Host allow-list**: the Host header must name 127.0.0.1, localhost, ::1, the bound host or an
   ``--allow-host`` name, with the server's port: a DNS-rebinding page (``attacker.example`` resolved
   to 127.0.0.1) is refused.
2. **Fetch metadata and Origin**: ``Sec-Fetch-Site`` other than ``same-origin`` / ``none`` (typed
   address) is refused, and so is an ``Origin`` header other than the request's own origin.
3. **Session**: a cookie (random 256 bits, HttpOnly, SameSite=Strict, Path=/) is issued by ``GET /``
   and ``GET /api/session``; every other ``/api`` route needs a live one. Photos, latents, images
   and jobs belong to one session: another session gets 404 for their ids.
4. **CSRF token**: every state-changing request (POST) must carry the session's token in the
   ``X-CSRF-Token`` header (embedded in the page; returned by ``GET /api/session``).

Endpoints (JSON unless noted; errors are ``{"error": "one line"}`` with status 400, 403, 404, 405,
409, 413 or 500, never an HTML page or a traceback):

* ``GET /``: the page; ``GET /api/session``: ``{"csrf_token"}`` (and the cookie); ``GET /api/info``:
  model, controls and this session's jobs; ``GET /api/layers?spec=``;
* ``POST /api/photos`` (multipart ``photo`` or raw body, ``?name=&align=0|1``): upload;
* ``POST /api/project`` ``{photo, steps, space, preset}``; ``POST /api/render`` ``{latent, strengths,
  layers, style}``; ``POST /api/swap`` ``{target, face, layers, tuning}``; ``POST /api/drag`` ``{latent,
  points: [[hx, hy, tx, ty], ...], mask: [[x, y, r], ...] | null, steps}`` (aligned pixels): start a job;
* ``GET /api/jobs/<id>``: progress; ``POST /api/jobs/<id>/cancel``; ``GET /api/jobs/<id>/preview.png``;
* ``GET /api/images/<id>.png`` and ``GET /api/latents/<id>.npz`` (``?download=1`` for a file name);
  ``GET /api/latents/<id>.pti.safetensors``: a tuned latent's delta (save it beside the ``.npz``).

From a script: ``curl -c jar -b jar http://127.0.0.1:7860/api/session`` gives the token, then
``curl -b jar -H "X-CSRF-Token: TOKEN" --data-binary @photo.jpg '.../api/photos?name=photo.jpg'``.
"""

from __future__ import annotations

import hmac
import secrets
import traceback
from typing import Any, Iterable

from ..api import MAX_STRENGTH, PRESETS, finite_number
from ..errors import LatentlabError
from .core import BusyError, Studio, TooLargeError, UnknownIdError

#: Largest accepted upload (bytes).
MAX_UPLOAD = 32 * 1024 * 1024
#: Largest accepted JSON body (bytes) of the other routes.
MAX_JSON = 256 * 1024
#: Host names always allowed (the loopback names); the bound host and ``--allow-host`` add to them.
DEFAULT_HOSTS = ("127.0.0.1", "localhost", "::1")
#: Header carrying the session's CSRF token on every POST.
CSRF_HEADER = "X-CSRF-Token"

#: Content-Security-Policy of the page; ``{nonce}`` is a fresh random value per response, the only
#: way its inline script and style may run (no 'unsafe-inline', no 'unsafe-eval').
PAGE_CSP = ("default-src 'none'; img-src 'self'; style-src 'nonce-{nonce}'; script-src 'nonce-{nonce}'; "
            "connect-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'")
#: Content-Security-Policy of every other response (JSON, images, downloads).
CSP = "default-src 'none'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'"


def _split_host(host: str) -> tuple[str, int | None]:
    """``name[:port]`` / ``[v6]:port`` -> (lower-case name, port or None); a bad port gives -1."""
    host = host.strip().lower()
    if host.startswith("["):
        name, _, rest = host[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ("" if not rest else "x")
    elif host.count(":") == 1:
        name, port = host.split(":")
    else:
        name, port = host, ""
    if not port:
        return name, None
    return name, int(port) if port.isdigit() and len(port) <= 5 else -1


def _norm_host(name: str) -> str:
    return name.strip().lower().removeprefix("[").removesuffix("]")


def create_app(studio: Studio, *, allowed_hosts: Iterable[str] = (), port: int | None = None):
    """A Flask app serving the UI for ``studio``.

    allowed_hosts: host names accepted in the Host header besides :data:`DEFAULT_HOSTS`; port:
    the port the server listens on (Host headers naming another port are refused; None: any;
    :func:`make_server` sets it once bound, ``app.config["LATENTLAB_PORT"]``).
    """
    from flask import Flask, Response, g, jsonify, request
    from werkzeug.exceptions import HTTPException

    from .page import render_page

    app = Flask("latentlab.ui")
    app.config["MAX_CONTENT_LENGTH"] = MAX_UPLOAD
    app.config["studio"] = studio
    app.config["LATENTLAB_PORT"] = port
    allowed = {_norm_host(h) for h in (*DEFAULT_HOSTS, *allowed_hosts) if h and h.strip()}
    app.config["LATENTLAB_HOSTS"] = allowed
    # Routes that issue a session when the request has none; every other /api route needs one.
    issuing = {"index", "session_info"}
    open_routes = {"favicon"}

    def cookie_name() -> str:
        p = app.config["LATENTLAB_PORT"]
        return f"latentlab_session_{p}" if p else "latentlab_session"  # two UIs on two ports: two cookies

    def error(message: str, status: int = 400):
        return jsonify({"error": " ".join(str(message).split())}), status

    @app.before_request
    def _guard():
        name, hport = _split_host(request.host or "")
        want = app.config["LATENTLAB_PORT"]
        if name not in allowed or hport == -1 or (want and hport is not None and hport != want):
            return error(f"host {request.host!r} is not allowed; "
                         "start latentlab ui with --allow-host NAME to allow another name", 403)
        site = request.headers.get("Sec-Fetch-Site")
        if site is not None and site not in ("same-origin", "none"):
            return error(f"{site} request refused: open the UI at its own address", 403)
        origin = request.headers.get("Origin")
        if origin is not None and origin.lower() != f"{request.scheme}://{request.host}".lower():
            return error(f"request from origin {origin!r} refused: only the UI's own page may call it", 403)
        if request.endpoint != "upload":
            request.max_content_length = MAX_JSON
        if request.endpoint in open_routes:
            return None
        g.session = studio.session(request.cookies.get(cookie_name()))
        g.new_session = False
        if g.session is None:
            if request.endpoint not in issuing:
                return error("no session (or it expired): reload the page, or GET /api/session first", 403)
            g.session, g.new_session = studio.new_session(), True
        if request.method not in ("GET", "HEAD", "OPTIONS"):
            token = request.headers.get(CSRF_HEADER, "")
            if g.new_session or not hmac.compare_digest(token.encode(), g.session.csrf_token.encode()):
                return error(f"missing or wrong {CSRF_HEADER} header (reload the page)", 403)
        return None

    @app.errorhandler(LatentlabError)
    def _latentlab_error(exc: LatentlabError):
        status = (409 if isinstance(exc, BusyError) else 404 if isinstance(exc, UnknownIdError)
                  else 413 if isinstance(exc, TooLargeError) else 400)
        return error(str(exc), status)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        code = exc.code or 500
        if code == 413:
            limit = MAX_UPLOAD if request.endpoint == "upload" else MAX_JSON
            msg = f"request too large (limit {limit / 2**20:g} MiB)"
        elif code == 404:
            msg = f"not found: {request.path}"
        elif code == 405:
            msg = f"method {request.method} not allowed for {request.path}"
        else:
            msg = f"{exc.name.lower()}: {exc.description}" if exc.description else exc.name.lower()
        resp = error(msg, code)
        if code == 405 and exc.get_headers():
            allow = dict(exc.get_headers()).get("Allow")
            if allow:
                resp[0].headers["Allow"] = allow
        return resp

    @app.errorhandler(Exception)
    def _internal_error(exc: Exception):
        traceback.print_exc()  # the details go to the server's terminal, never to the page
        return error(f"internal error ({type(exc).__name__}); the details are in the server's terminal", 500)

    @app.after_request
    def _headers(resp: Response) -> Response:
        nonce = g.get("nonce")
        resp.headers["Content-Security-Policy"] = PAGE_CSP.format(nonce=nonce) if nonce else CSP
        resp.headers["X-Content-Type-Options"] = "nosniff"
        resp.headers["X-Frame-Options"] = "DENY"
        resp.headers["Referrer-Policy"] = "no-referrer"
        resp.headers["Cross-Origin-Opener-Policy"] = "same-origin"
        resp.headers["Cross-Origin-Resource-Policy"] = "same-origin"
        resp.headers["Cache-Control"] = "no-store"
        if g.get("new_session"):
            resp.set_cookie(cookie_name(), g.session.id, httponly=True, samesite="Strict", path="/")
        return resp

    def body() -> dict[str, Any]:
        try:
            data = request.get_json(silent=True)
        except RecursionError:
            data = None
        if not isinstance(data, dict):
            raise LatentlabError("expected a JSON object in the request body")
        return data

    @app.get("/")
    def index():
        g.nonce = secrets.token_urlsafe(18)
        return Response(render_page(g.session.csrf_token, g.nonce), mimetype="text/html")

    @app.get("/favicon.ico")
    def favicon():
        return Response(status=204)

    @app.get("/api/session")
    def session_info():
        return jsonify({"csrf_token": g.session.csrf_token, "header": CSRF_HEADER})

    @app.get("/api/info")
    def info():
        return jsonify(g.session.info())

    @app.get("/api/layers")
    def layers():
        return jsonify({"rows": g.session.describe_layers(request.args.get("spec", ""))})

    @app.post("/api/photos")
    def upload():
        if request.mimetype == "multipart/form-data":
            f = request.files.get("photo")
            if f is None:
                raise LatentlabError("no file in the upload (form field 'photo')")
            data, name = f.read(MAX_UPLOAD + 1), f.filename or "upload"
        else:  # the raw file as the request body: curl --data-binary @photo.jpg '.../api/photos?name=photo.jpg'
            data, name = request.get_data(), request.args.get("name", "upload")
        align = request.args.get("align", request.form.get("align", "1")) not in ("0", "false", "no")
        return jsonify(g.session.add_photo(data, name, align=align))

    @app.post("/api/project")
    def project():
        d = body()
        space = d.get("space") or None  # None: the preset's own space
        if space not in (None, "w", "w+"):
            raise LatentlabError(f"space must be 'w' or 'w+', got {space!r}")
        preset = _opt_str(d.get("preset"), "preset")  # None: the studio's preset
        if preset is not None and preset not in PRESETS:
            raise LatentlabError(f"unknown projection preset {preset!r}; choose from {', '.join(PRESETS)}")
        job = g.session.start_projection(_id(d, "photo"), _int(d.get("steps"), "steps", 1, 5000), space, preset)
        return jsonify(job.to_dict())

    @app.post("/api/render")
    def render():
        d = body()
        job = g.session.start_render(_id(d, "latent"), _floats(d.get("strengths")), _strs(d.get("layers")),
                                     _style(d.get("style")))
        return jsonify(job.to_dict())

    @app.post("/api/swap")
    def swap():
        d = body()
        tuning = d.get("tuning")  # a name, or A's share of the blend (a number or its text)
        if not (isinstance(tuning, (int, float)) and not isinstance(tuning, bool)):
            tuning = _opt_str(tuning, "tuning")
        job = g.session.start_swap(_id(d, "target"), _id(d, "face"), _opt_str(d.get("layers"), "layers"), tuning)
        return jsonify(job.to_dict())

    @app.post("/api/drag")
    def drag():
        d = body()
        steps = _int(d.get("steps"), "steps", 1, 2000)
        job = g.session.start_drag(_id(d, "latent"), d.get("points"), d.get("mask") or None,
                                   200 if steps is None else steps)
        return jsonify(job.to_dict())

    @app.get("/api/jobs/<job_id>")
    def job(job_id: str):
        return jsonify(g.session.job(job_id).to_dict())

    @app.post("/api/jobs/<job_id>/cancel")
    def cancel(job_id: str):
        return jsonify(g.session.cancel(job_id).to_dict())

    @app.get("/api/jobs/<job_id>/preview.png")
    def preview(job_id: str):
        png = g.session.job(job_id).preview
        if png is None:
            return error("no preview yet", 404)
        return Response(png, mimetype="image/png")

    @app.get("/api/images/<image_id>.png")
    def image(image_id: str):
        resp = Response(g.session.image_png(image_id), mimetype="image/png")
        if request.args.get("download"):
            name = "".join(c for c in request.args.get("name", image_id) if c.isalnum() or c in "._-") or image_id
            resp.headers["Content-Disposition"] = f"attachment; filename={name[:100]}.png"
        return resp

    @app.get("/api/latents/<latent_id>.npz")
    def latent(latent_id: str):
        resp = Response(g.session.latent_npz(latent_id), mimetype="application/octet-stream")
        name = "".join(c for c in g.session.latent_name(latent_id) if c.isalnum() or c in "._-") or "latent"
        resp.headers["Content-Disposition"] = f"attachment; filename={name[:100]}.npz"
        return resp

    @app.get("/api/latents/<latent_id>.pti.safetensors")
    def latent_delta(latent_id: str):
        resp = Response(g.session.latent_delta(latent_id), mimetype="application/octet-stream")
        resp.headers["Content-Disposition"] = f"attachment; filename={g.session.delta_file_name(latent_id)}"
        return resp

    return app


# ---------------------------------------------------------------------- request values
def _number(value: Any, what: str, limit: float | None = None) -> float:
    """A JSON number (or numeric string) that is finite and within ``limit``; LatentlabError else."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise LatentlabError(f"{what} must be a number, got {type(value).__name__}")
    return finite_number(value, what, limit)


def _int(value: Any, what: str, lo: int, hi: int) -> int | None:
    """An optional whole number within [lo, hi] (None or "" -> None)."""
    if value in (None, ""):
        return None
    x = _number(value, what)
    if x != int(x) or not lo <= x <= hi:
        raise LatentlabError(f"{what} must be a whole number between {lo} and {hi}, got {value!r}")
    return int(x)


def _id(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    if value in (None, ""):
        raise LatentlabError(f"missing {key!r}")
    if not isinstance(value, str):
        raise LatentlabError(f"{key!r} must be an id (a string), got {type(value).__name__}")
    return value


def _opt_str(value: Any, what: str) -> str | None:
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise LatentlabError(f"{what} must be a string, got {type(value).__name__}")
    return value


def _floats(value: Any) -> dict[str, float]:
    if value in (None, ""):
        return {}
    if not isinstance(value, dict):
        raise LatentlabError("strengths must be an object name -> number")
    return {str(k): _number(v, f"strength for {k}", MAX_STRENGTH) for k, v in value.items()}


def _strs(value: Any) -> dict[str, str]:
    if value in (None, ""):
        return {}
    if not isinstance(value, dict):
        raise LatentlabError("layers must be an object name -> layer range")
    out = {}
    for k, v in value.items():
        s = _opt_str(v, f"layers for {k}")
        if s and s.strip():
            out[str(k)] = s
    return out


def _style(value: Any) -> dict[str, Any] | None:
    """``{"seed": int in [0, 2^32) | "latent": id, "layers": spec}`` or None."""
    if value in (None, ""):
        return None
    if not isinstance(value, dict):
        raise LatentlabError("style must be an object {seed or latent, layers}")
    return {"seed": _int(value.get("seed"), "style seed", 0, 2**32 - 1),
            "latent": _opt_str(value.get("latent"), "style latent"),
            "layers": _opt_str(value.get("layers"), "style layers")}


def make_server(studio: Studio, host: str = "127.0.0.1", port: int = 7860, *, allow_hosts: Iterable[str] = ()):
    """A threaded WSGI server (Werkzeug) for the app; ``.serve_forever()`` / ``.shutdown()``;
    ``port=0`` picks a free port (read it from ``.server_port``). The Host allow-list is the
    loopback names, ``host`` and ``allow_hosts``; the port is the one bound."""
    from werkzeug.serving import make_server as _make

    app = create_app(studio, allowed_hosts=(host, *allow_hosts))
    server = _make(host, port, app, threaded=True)
    app.config["LATENTLAB_PORT"] = server.server_port
    return server


__all__ = ["CSP", "CSRF_HEADER", "DEFAULT_HOSTS", "MAX_JSON", "MAX_UPLOAD", "PAGE_CSP", "create_app", "make_server"]
