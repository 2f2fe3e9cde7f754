"""The UI's single page: inline HTML, CSS and script; it talks only to its own server."""

from __future__ import annotations

PAGE = r"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="csrf-token" content="@CSRF@">
<title>latentlab</title>
<style nonce="@NONCE@">
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;background:#f6f6f7;color:#1d1d1f}
header{background:#222;color:#fff;padding:10px 18px}header b{font-size:17px}header span{color:#bbb;margin-left:12px}
main{display:grid;grid-template-columns:380px 1fr;gap:16px;padding:16px;max-width:1300px}
.card{background:#fff;border:1px solid #ddd;border-radius:8px;padding:12px 14px;margin-bottom:14px}
h2{font-size:15px;margin:0 0 8px}label{display:block;margin:6px 0 2px;color:#444}
input[type=text],input[type=number],select{width:100%;box-sizing:border-box;padding:4px 6px}
input[type=range]{width:100%}button{padding:5px 12px;margin:6px 6px 0 0;cursor:pointer}
button:disabled{cursor:default;opacity:.5}
.row{display:flex;gap:8px;align-items:center}.row>*{flex:1}
.imgs{display:flex;gap:10px;flex-wrap:wrap}.imgs figure{margin:0;flex:1;min-width:160px;max-width:300px}
.imgs img{width:100%;background:#eee;border:1px solid #ccc;min-height:60px}
figcaption{font-size:12px;color:#555}
#error{display:none;background:#fde2e2;color:#7f1d1d;border:1px solid #f5b5b5;padding:8px 10px;border-radius:6px;margin-bottom:10px}
progress{width:100%;height:16px}.muted{color:#777;font-size:12px}
.dir{border-top:1px solid #eee;padding-top:6px;margin-top:6px}.dir .val{float:right;font-variant-numeric:tabular-nums}
table{border-collapse:collapse;font-size:12px}td{border:1px solid #ddd;padding:2px 6px}
a.dl{display:inline-block;margin:4px 8px 0 0}
#cancel-btn{flex:0}
.drag-box{position:relative}.drag-box img{display:block;box-sizing:border-box}.drag-box canvas{position:absolute;left:0;top:0;width:100%;height:100%;cursor:crosshair}
</style></head><body>
<header><b>latentlab</b><span id="model">loading...</span></header>
<main>
<section>
 <div id="error" role="alert"></div>
 <div class="card"><h2>1. Photo</h2>
  <input type="file" id="photo-file" accept="image/*">
  <label><input type="checkbox" id="align" checked> align the face (FFHQ, dlib landmarks)</label>
  <button id="upload-btn">Upload</button>
 </div>
 <div class="card"><h2>2. Project</h2>
  <label for="preset">preset</label><select id="preset"></select>
  <div class="muted" id="preset-note"></div>
  <div class="row"><div><label for="steps">steps</label><input type="number" id="steps" min="1" max="5000"></div>
  <div><label for="space">space</label><select id="space"><option value="w+">W+</option><option value="w">W</option></select></div></div>
  <button id="project-btn" disabled>Project</button>
  <div id="metrics" class="muted"></div>
 </div>
 <div class="card"><h2>3. Edit</h2>
  <div id="directions" class="muted">no directions for this model</div>
  <div class="dir"><label><input type="checkbox" id="style-on"> style from a generated face (style mixing)</label>
   <div class="row"><div><label for="style-seed">seed</label><input type="number" id="style-seed" value="1" min="0"></div>
   <div><label for="style-layers">layers</label><input type="text" id="style-layers"></div></div>
   <div class="muted" id="style-rows"></div></div>
  <button id="apply-btn" disabled>Apply</button><button id="reset-btn" disabled>Reset</button>
 </div>
 <div class="card"><h2>4. Face swap</h2>
  <label for="swap-file">face to put on the photo</label><input type="file" id="swap-file" accept="image/*">
  <label for="swap-layers">identity layers</label><input type="text" id="swap-layers">
  <label for="swap-tuning">when both photos are tuned (pti), draw with</label>
  <select id="swap-tuning"><option value="blend" selected>both tunings, averaged</option>
   <option value="0.7">70% the face's, 30% the photo's</option>
   <option value="b">the photo's tuning</option><option value="a">the face's tuning</option>
   <option value="none">the base generator</option></select>
  <button id="swap-btn" disabled>Upload, project and swap</button>
 </div>
 <div class="card"><h2>5. Drag</h2>
  <div class="muted">On the result image, click a handle, then where it should go (red: handle, blue:
   target); add as many pairs as you like. Cancel (under Progress) stops a drag and keeps it so far;
   Undo steps back one drag, Reset to before the first. Drags chain on the latest result, and the sliders then edit the dragged face.</div>
  <label><input type="checkbox" id="drag-paint"> paint the region allowed to move (optional)</label>
  <div class="row"><div><label for="drag-brush">brush (px)</label><input type="number" id="drag-brush" value="24" min="1"></div>
  <div><label for="drag-steps">steps at most</label><input type="number" id="drag-steps" value="200" min="1" max="2000"></div></div>
  <div class="muted" id="drag-info">no points</div>
  <button id="drag-btn" disabled>Start drag</button><button id="drag-undo" disabled>Undo</button><button id="drag-reset" disabled>Reset</button><button id="drag-clear">Clear points</button>
 </div>
</section>
<section>
 <div class="card"><h2>Progress</h2>
  <progress id="progress" max="1" value="0"></progress>
  <div class="row"><span id="status">idle</span><button id="cancel-btn" disabled>Cancel</button></div>
 </div>
 <div class="card"><h2>Images</h2><div class="imgs">
  <figure><img id="photo-original" alt=""><figcaption>photo</figcaption></figure>
  <figure><img id="photo-aligned" alt=""><figcaption>aligned</figcaption></figure>
  <figure><img id="preview" alt=""><figcaption>projection (live)</figcaption></figure>
 </div></div>
 <div class="card"><h2>Result</h2><div class="imgs">
  <figure><div class="drag-box"><img id="result" alt=""><canvas id="drag-canvas"></canvas></div><figcaption>result (aligned)</figcaption></figure>
  <figure><img id="result-pasted" alt=""><figcaption>pasted into the photo</figcaption></figure>
 </div>
 <div id="downloads"></div></div>
</section>
</main>
<script nonce="@NONCE@">
"use strict";
const $ = (id) => document.getElementById(id);
const S = {info: null, photo: null, base: null, result: null, job: null, pending: false, faceLatent: null,
  drag: {points: [], pending: null, mask: [], undo: [], live: null}};

function showError(msg) { const e = $("error"); e.textContent = msg; e.style.display = msg ? "block" : "none"; }
// The session's CSRF token (the page is served with it); every POST sends it back in a header.
const CSRF = document.querySelector('meta[name="csrf-token"]').content;
async function api(path, opts) {
  opts = Object.assign({credentials: "same-origin", cache: "no-store"}, opts || {});
  if (opts.method && opts.method !== "GET") opts.headers = Object.assign({}, opts.headers || {}, {"X-CSRF-Token": CSRF});
  const r = await fetch(path, opts);
  let data = null;
  try { data = await r.json(); } catch (e) { throw new Error("server error " + r.status); }
  if (!r.ok) throw new Error(data && data.error ? data.error : "server error " + r.status);
  return data;
}
const post = (path, obj) => api(path, {method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(obj)});
const imgUrl = (id) => "/api/images/" + id + ".png";
const esc = (t) => String(t).replace(/[&<>"']/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));

function busy(on) {
  for (const id of ["upload-btn", "project-btn", "apply-btn", "reset-btn", "swap-btn", "drag-btn", "drag-undo", "drag-reset"]) $(id).disabled = on || !ready(id);
  $("cancel-btn").disabled = !on;
}
function ready(id) {
  if (id === "upload-btn") return true;
  if (id === "project-btn") return !!S.photo;
  if (id === "drag-btn") return !!S.result && S.drag.points.length > 0;
  if (id === "drag-undo" || id === "drag-reset") return S.drag.undo.length > 0;
  return !!S.base;
}

async function runJob(job) {
  S.job = job; busy(true);
  $("progress").max = Math.max(job.total, 1);
  while (true) {
    $("progress").value = job.step;
    let text = job.kind + ": " + (job.message || job.status);
    if (job.lpips !== null && job.lpips !== undefined) text += " · LPIPS " + job.lpips.toFixed(4);
    text += " · " + job.seconds.toFixed(1) + " s";
    $("status").textContent = text;
    if (job.has_preview && job.kind === "projection") $("preview").src = "/api/jobs/" + job.id + "/preview.png?s=" + job.step;
    if (job.kind === "drag") {
      if (job.has_preview) $("result").src = "/api/jobs/" + job.id + "/preview.png?s=" + job.step;
      if (job.handles) { S.drag.live = job.handles; drawDrag(); }
    }
    if (job.status !== "running") break;
    await new Promise((r) => setTimeout(r, 400));
    job = await api("/api/jobs/" + job.id);
  }
  S.job = null; busy(false);
  $("status").textContent = job.kind + " " + job.status + " in " + job.seconds.toFixed(1) + " s" + (job.error ? ": " + job.error : "");
  $("status").dataset.state = job.status;
  if (job.status === "failed") throw new Error(job.error);
  return job;
}

function showResult(res, name) {
  S.result = res;
  $("result").src = imgUrl(res.image);
  $("result-pasted").src = res.pasted_image ? imgUrl(res.pasted_image) : "";
  const d = $("downloads"); d.innerHTML = "";
  const add = (href, text, id) => { const a = document.createElement("a"); a.href = href; a.textContent = text; a.id = id; a.className = "dl"; a.download = ""; d.appendChild(a); };
  add(imgUrl(res.image) + "?download=1&name=" + name, "image (PNG)", "dl-image");
  if (res.pasted_image) add(imgUrl(res.pasted_image) + "?download=1&name=" + name + "_pasted", "pasted (PNG)", "dl-pasted");
  add("/api/latents/" + res.latent + ".npz", "latent (.npz)", "dl-latent");
  if (res.tuned) add("/api/latents/" + res.latent + ".pti.safetensors", "tuning (.pti.safetensors, keep beside the .npz)", "dl-delta");
}

async function upload(file, align) {
  if (!file) throw new Error("choose a photo first");
  const fd = new FormData(); fd.append("photo", file, file.name); fd.append("align", align ? "1" : "0");
  $("status").textContent = "uploading and aligning " + file.name + " ...";
  return await api("/api/photos", {method: "POST", body: fd});
}

async function project(photoId) {
  const job = await post("/api/project", {photo: photoId, steps: $("steps").value, space: $("space").value, preset: $("preset").value});
  return await runJob(job);
}

function metricsTable(m) {
  const keys = ["psnr", "ms_ssim", "lpips_alex", "dlib_distance", "dlib_same_person", "id_cosine", "lpips_vgg_loss_net", "steps", "best_step", "tuning_steps", "seconds", "interrupted"];
  return "<table>" + keys.map((k) => "<tr><td>" + k + "</td><td>" + (m[k] === null || m[k] === undefined ? "—" :
    (typeof m[k] === "number" ? +m[k].toFixed(4) : m[k])) + "</td></tr>").join("") + "</table>";
}

function strengths() {
  const s = {}, l = {};
  for (const el of document.querySelectorAll("input[data-direction]")) {
    s[el.dataset.direction] = parseFloat(el.value);
    const lay = $("layers-" + el.dataset.direction).value.trim();
    if (lay) l[el.dataset.direction] = lay;
  }
  return [s, l];
}

async function applyEdits() {
  if (!S.base) return;
  if (S.job) { S.pending = true; return; }
  const [s, l] = strengths();
  const style = $("style-on").checked ? {seed: parseInt($("style-seed").value || "0"), layers: $("style-layers").value} : null;
  try {
    showError("");
    const job = await runJob(await post("/api/render", {latent: S.base, strengths: s, layers: l, style: style}));
    if (job.status === "done") showResult(job.result, "edit");
  } catch (e) { showError(e.message); }
  if (S.pending) { S.pending = false; applyEdits(); }
}

async function layerHint(spec, el) {
  try { el.textContent = spec ? "→ " + (await api("/api/layers?spec=" + encodeURIComponent(spec))).rows : ""; }
  catch (e) { el.textContent = e.message; }
}

function buildDirections(dirs) {
  const box = $("directions");
  if (!dirs.length) return;
  box.innerHTML = ""; box.classList.remove("muted");
  for (const d of dirs) {
    const div = document.createElement("div"); div.className = "dir";
    const n = esc(d.name), lim = Math.max(0.5, Math.min(100, Number(d.limit) || 3)).toFixed(1);
    div.innerHTML = '<label for="dir-' + n + '">' + n + ' <span class="val" id="val-' + n + '">0</span></label>' +
      '<input type="range" id="dir-' + n + '" data-direction="' + n + '" min="' + (-lim) + '" max="' + lim + '" step="0.1" value="0">' +
      '<input type="text" id="layers-' + n + '" value="' + esc(d.layers) + '" title="layer range">' +
      '<div class="muted" id="rows-' + n + '">→ ' + esc(d.rows) + '</div>';
    box.appendChild(div);
    const r = div.querySelector("input[type=range]");
    const sig = Number(d.sigma) > 0 ? Number(d.sigma) : 0;
    r.addEventListener("input", () => {
      $("val-" + d.name).textContent = r.value + (sig ? " (" + (r.value / sig).toFixed(1) + "σ)" : "");
    });
    r.addEventListener("change", applyEdits);
    const t = div.querySelector("input[type=text]");
    t.addEventListener("change", () => { layerHint(t.value, $("rows-" + d.name)); applyEdits(); });
  }
}

$("upload-btn").addEventListener("click", async () => {
  try {
    showError("");
    const p = await upload($("photo-file").files[0], $("align").checked);
    S.photo = p.photo; S.base = null;
    $("photo-original").src = imgUrl(p.original_image); $("photo-aligned").src = imgUrl(p.aligned_image);
    const scaled = p.decoded_size && p.decoded_size[0] !== p.size[0] ? ", downscaled from " + p.decoded_size[0] + "x" + p.decoded_size[1] : "";
    $("status").textContent = "photo " + p.name + " ready (" + p.size[0] + "x" + p.size[1] + scaled + "): project it";
    $("status").dataset.state = "uploaded";
    busy(false);
  } catch (e) { showError(e.message); $("status").textContent = "upload failed"; }
});

$("project-btn").addEventListener("click", async () => {
  try {
    showError("");
    const job = await project(S.photo);
    if (job.result && job.result.latent) {
      S.base = job.result.latent;
      S.drag = {points: [], pending: null, mask: [], undo: [], live: null};
      $("metrics").innerHTML = metricsTable(job.result.metrics);
      showResult(job.result, "projection");
      busy(false);
    }
  } catch (e) { showError(e.message); }
});

function presetNote(name) {
  const p = (S.info.presets || []).find((x) => x.name === name);
  $("preset-note").textContent = p ? p.steps + " steps in " + p.space.toUpperCase() + (p.tuning_steps ? ", then " + p.tuning_steps + " steps of pivotal tuning" : "") : "";
  return p;
}
function buildPresets(info) {
  const sel = $("preset");
  for (const p of info.presets || []) {
    const o = document.createElement("option"); o.value = p.name; o.textContent = p.name; sel.appendChild(o);
  }
  sel.value = info.preset; presetNote(info.preset);
  sel.addEventListener("change", () => {
    const p = presetNote(sel.value);
    if (p) { $("steps").value = p.steps; $("space").value = p.space; }
  });
}

$("apply-btn").addEventListener("click", applyEdits);
function zeroSliders() {
  for (const el of document.querySelectorAll("input[data-direction]")) { el.value = 0; $("val-" + el.dataset.direction).textContent = "0"; }
  $("style-on").checked = false;
}
$("reset-btn").addEventListener("click", () => { zeroSliders(); applyEdits(); });
$("style-layers").addEventListener("change", () => layerHint($("style-layers").value, $("style-rows")));
$("cancel-btn").addEventListener("click", async () => { if (S.job) await post("/api/jobs/" + S.job.id + "/cancel", {}); });

// ---------------------------------------------------------------- drag
const R = () => (S.info ? S.info.resolution : 1024);
function dragXY(ev) {  // a click on the canvas -> pixels of the aligned image
  const c = $("drag-canvas"), b = c.getBoundingClientRect();
  return [(ev.clientX - b.left) / b.width * R() - 0.5, (ev.clientY - b.top) / b.height * R() - 0.5];
}
function drawDrag() {
  const c = $("drag-canvas"), b = c.getBoundingClientRect();
  c.width = Math.max(1, Math.round(b.width)); c.height = Math.max(1, Math.round(b.height));
  const ctx = c.getContext("2d"), k = c.width / R(), dot = (x, y, col) => {
    ctx.fillStyle = col; ctx.beginPath(); ctx.arc((x + 0.5) * k, (y + 0.5) * k, 4, 0, 2 * Math.PI); ctx.fill(); };
  ctx.clearRect(0, 0, c.width, c.height);
  ctx.fillStyle = "rgba(255,220,0,0.25)";
  for (const [x, y, r] of S.drag.mask) { ctx.beginPath(); ctx.arc((x + 0.5) * k, (y + 0.5) * k, r * k, 0, 2 * Math.PI); ctx.fill(); }
  S.drag.points.forEach(([hx, hy, tx, ty], i) => {
    const live = S.drag.live && S.drag.live[i] ? S.drag.live[i] : [hx, hy];
    ctx.strokeStyle = "#fff"; ctx.lineWidth = 2; ctx.beginPath();
    ctx.moveTo((live[0] + 0.5) * k, (live[1] + 0.5) * k); ctx.lineTo((tx + 0.5) * k, (ty + 0.5) * k); ctx.stroke();
    dot(live[0], live[1], "#e11"); dot(tx, ty, "#15e");
  });
  if (S.drag.pending) dot(S.drag.pending[0], S.drag.pending[1], "#e11");
  $("drag-info").textContent = S.drag.points.length ? S.drag.points.length + " pair(s)" + (S.drag.mask.length ? ", a painted region" : "") :
    (S.drag.pending ? "now click the target" : "no points");
  busy(!!S.job);
}
let painting = false;
$("drag-canvas").addEventListener("mousedown", (ev) => {
  if (!S.result || S.job) return;
  const [x, y] = dragXY(ev);
  if ($("drag-paint").checked) { painting = true; S.drag.mask.push([x, y, Math.max(1, +$("drag-brush").value || 24)]); drawDrag(); return; }
  if (!S.drag.pending) S.drag.pending = [x, y];
  else { S.drag.points.push([S.drag.pending[0], S.drag.pending[1], x, y]); S.drag.pending = null; }
  S.drag.live = null; drawDrag();
});
$("drag-canvas").addEventListener("mousemove", (ev) => {
  if (!painting) return;
  const [x, y] = dragXY(ev); S.drag.mask.push([x, y, Math.max(1, +$("drag-brush").value || 24)]); drawDrag();
});
window.addEventListener("mouseup", () => { painting = false; });
$("drag-clear").addEventListener("click", () => { S.drag.points = []; S.drag.pending = null; S.drag.mask = []; S.drag.live = null; drawDrag(); });
$("drag-btn").addEventListener("click", async () => {
  try {
    showError("");
    const before = S.result;
    const job = await runJob(await post("/api/drag", {latent: S.result.latent, points: S.drag.points,
      mask: S.drag.mask.length ? S.drag.mask : null, steps: parseInt($("drag-steps").value || "200")}));
    if (job.result && job.result.latent) {
      // the drag becomes the base that sliders, style and swap start from (its edits are baked in)
      S.drag.undo.push({result: before, base: S.base});
      S.base = job.result.latent; zeroSliders();
      S.drag.points = S.drag.points.map(([hx, hy, tx, ty], i) => {
        const h = job.result.handles[i]; return [h[0], h[1], tx, ty]; });
      showResult(job.result, "drag"); drawDrag();
    }
  } catch (e) { showError(e.message); }
});
function dragBack(prev) { if (prev) { S.base = prev.base; showResult(prev.result, "undo"); S.drag.live = null; drawDrag(); } }
$("drag-undo").addEventListener("click", () => dragBack(S.drag.undo.pop()));
$("drag-reset").addEventListener("click", () => { const first = S.drag.undo[0]; S.drag.undo = []; dragBack(first); });
$("result").addEventListener("load", drawDrag);

$("swap-btn").addEventListener("click", async () => {
  try {
    showError("");
    const p = await upload($("swap-file").files[0], true);
    const job = await project(p.photo);
    if (!job.result || !job.result.latent) return;
    S.faceLatent = job.result.latent;
    const sw = await runJob(await post("/api/swap", {target: S.base, face: S.faceLatent, layers: $("swap-layers").value, tuning: $("swap-tuning").value}));
    if (sw.status === "done") showResult(sw.result, "swap");
  } catch (e) { showError(e.message); }
});

(async () => {
  try {
    S.info = await api("/api/info");
    $("model").textContent = S.info.network + " · " + S.info.resolution + " px · " + S.info.num_ws + " W+ rows";
    buildPresets(S.info);
    $("steps").value = S.info.default_steps;
    if (S.info.space) $("space").value = S.info.space;
    $("style-layers").value = S.info.style_layers; $("swap-layers").value = S.info.identity_layers;
    layerHint(S.info.style_layers, $("style-rows"));
    buildDirections(S.info.directions);
    document.body.dataset.ready = "1";
  } catch (e) { showError(e.message); }
})();
</script>
</body></html>
"""


def render_page(csrf_token: str, nonce: str) -> str:
    """The page's HTML for one session: its CSRF token in a ``<meta name="csrf-token">`` tag and
    ``nonce`` on the inline style and script (the Content-Security-Policy allows only those). No
    outside references: every fetch goes to the page's own server."""
    from html import escape

    for value, what in ((csrf_token, "csrf_token"), (nonce, "nonce")):
        if not value or not all(c.isalnum() or c in "-_" for c in value):
            raise ValueError(f"{what} must be a non-empty URL-safe token")
    return PAGE.replace("@CSRF@", escape(csrf_token)).replace("@NONCE@", escape(nonce))


__all__ = ["PAGE", "render_page"]
