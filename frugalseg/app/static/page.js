// The annotation page's script (a file of its own: the page's Content-Security-Policy allows no inline script).
// Every string from the data, the session or a request is written as text (textContent), never as HTML.
"use strict";
const token = new URLSearchParams(location.search).get("token");
const $ = (id) => document.getElementById(id);
// added: the objects declared with "New object" (or an upload's new ids) in the open video and not submitted
// yet, id → name; addedOf holds each video's. renamed: the open video's objects renamed with "Rename", id → name,
// sent with the next submit that holds the object (renamedOf: each video's)
const S = { palette: [], video: null, info: null, frame: null, opening: 0, known: [], added: {}, addedOf: {}, renamed: {}, renamedOf: {},
  work: null, clicks: [],
  base: null, edited: false, undo: [], redo: [], polygon: [], painting: false, busy: false, proposalTimer: null,
  box: null, drag: null, boxClicks: [], toolBase: null, toolMode: "replace", anchors: [], contour: [], stroke: [],
  // how this frame's edit was made, for the ledger, object by object: its box and the box's corrective clicks,
  // its clicks, whether it was drawn freehand
  boxed: {}, clicked: {}, freehand: {},
  // the tools' answers on their way (a box's, a click's …): a submit waits for them
  answers: new Set() };

function url(path) { return token ? path + (path.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(token) : path; }
async function api(path, options) {
  // a fetch that gets no answer at all (the server stopped) says so, not the browser's "Failed to fetch"
  const response = await fetch(url(path), options).catch(() => {
    throw new Error(`the server at ${location.origin} does not answer (is \`frugalseg annotate serve\` still running?)`);
  });
  const data = await response.json().catch(() => ({ error: response.statusText }));
  if (!response.ok) { const err = new Error(data.error || response.statusText); err.status = response.status; throw err; }
  return data;
}
// An element with its class and children; strings become text nodes, never HTML.
function el(tag, className, ...children) {
  const node = document.createElement(tag);
  if (className) { node.className = className; }
  node.append(...children.map((c) => (c instanceof Node ? c : String(c))));
  return node;
}
// The status line: an error stays until the next action that succeeds (`done`), and a 409 (a
// propagation is running) until no clip propagates any more (`untilIdle`), whoever started it.
function say(text) { $("status").textContent = text || ""; }
function done() { say(""); }
async function untilIdle(text) {
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, 500));
    if ($("status").textContent !== text) { return; }
    const jobs = (await api("/api/jobs").catch(() => ({ jobs: [] }))).jobs;
    if (!jobs.some((j) => j.status === "queued" || j.status === "propagating")) { if ($("status").textContent === text) { done(); } return; }
  }
}
// A 412 (the frame annotated elsewhere: another page, `annotate add`) reads the page's tables again, the
// person's edit kept on screen.
function fail(err) {
  say(err.message); if (err.status === 409) { untilIdle(err.message); }
  if (err.status === 412) { refresh(false).catch(() => {}); }  // a lost server is the watch's to tell
}
// "frame 11 (00011.jpg)": the index the page uses and the file the person knows (the server's `files`).
function frameName(frame) {
  const file = S.info.files ? S.info.files[S.info.frames.indexOf(frame)] : null;
  return file ? `frame ${frame} (${file})` : `frame ${frame}`;
}
// The info line says what the open frame holds now: its edit in progress, never an undone one.
function frameInfo(extra) {
  const head = `${S.video} ${frameName(S.frame)}`;
  const edit = S.box ? `: box and ${S.boxClicks.length} click(s)` : S.clicks.length ? `: preview of ${S.clicks.length} click(s)`
    : S.edited ? ": edited, not submitted" : "";  // a brush, polygon, scissors or upload edit, or a box's left
  $("frameinfo").textContent = head + (edit ? edit + (extra || "") : S.info.annotated.includes(S.frame) ? " (annotated)" : "");
}
function decode(rle, size) {
  const out = new Uint8Array(size); let at = 0;
  for (let i = 0; i < rle.length; i += 2) { out.fill(rle[i], at, at + rle[i + 1]); at += rle[i + 1]; }
  return out;
}
function encode(ids) {
  const runs = []; let value = ids[0], count = 0;
  for (let i = 0; i < ids.length; i++) {
    if (ids[i] === value) { count++; } else { runs.push(value, count); value = ids[i]; count = 1; }
  }
  runs.push(value, count); return runs;
}
function frameUrl(frame, kind) { return `/api/videos/${encodeURIComponent(S.video)}/${frame}/${kind}`; }

async function loadSession() {
  const data = await api("/api/session");
  S.palette = data.palette;
  $("settings").textContent = `state ${data.state} · engine ${data.engine} · clicks ${data.click_model}`;
  $("videos").replaceChildren();
  for (const v of data.videos) {
    const row = document.createElement("tr");
    row.className = "video" + (v.name === S.video ? " chosen" : ""); row.dataset.video = v.name;
    const unreliable = v.unreliable === null ? "–" : v.unreliable.toFixed(3);
    row.append(el("td", "", v.name), el("td", "", `${v.annotated}/${v.frames}`), el("td", "", v.hours.toFixed(3)), el("td", "", unreliable));
    row.onclick = () => { if (leave()) { openVideo(v.name, null); } };
    $("videos").appendChild(row);
  }
  return data;
}
async function loadProposal() {
  clearTimeout(S.proposalTimer);
  const data = await api("/api/proposal");
  const box = $("proposal");
  if (data.done) { box.textContent = "every frame is annotated"; return null; }
  const p = data.proposal;
  // made while a clip propagates: asked again every 2 s until the clips are done (the box is redrawn
  // only when the proposal changes, so the Open button stays put)
  if (p.provisional) { S.proposalTimer = setTimeout(() => loadProposal().catch((err) => fail(err)), 2000); }
  const shown = JSON.stringify([p.video, p.frame, p.kind, p.names, p.provisional, p.reason]);
  if (box.dataset.shown === shown) { return p; }
  box.dataset.shown = shown; box.dataset.provisional = String(p.provisional);
  const openButton = el("button", "", "Open"); openButton.id = "openproposal";
  box.replaceChildren(
    el("b", "", "Next:"), ` ${p.video} frame ${p.frame} (${p.kind}${p.objects.length ? " of " + p.objects.map((id) => `${id}: ${p.names[id]}`).join(", ") : ", every object"})`,
    ...(p.provisional ? [" ", el("i", "", "provisional")] : []), el("br"), el("small", "", p.reason), " ", openButton);
  $("openproposal").onclick = () => { if (leave()) { openVideo(p.video, p.frame); } };
  return p;
}
async function openVideo(name, frame) {
  const ticket = ++S.opening;
  S.video = name; S.added = S.addedOf[name] = S.addedOf[name] || {}; S.renamed = S.renamedOf[name] = S.renamedOf[name] || {};
  S.info = await api(`/api/videos/${encodeURIComponent(name)}`);
  S.known = S.info.objects.map((o) => o.id);
  for (const row of document.querySelectorAll("tr.video")) { row.classList.toggle("chosen", row.dataset.video === name); }
  fillObjects(); drawFilmstrip();
  if (ticket === S.opening) { await openFrame(frame === null ? S.info.frames[0] : frame); }
}
function fillObjects() {
  const select = $("object"); const chosen = select.value; select.replaceChildren();
  const all = S.info.objects.concat(Object.entries(S.added).map(([id, name]) => ({ id: +id, name: name || `object ${id}` })));
  // a video of no object yet has object 1, the one drawn before any "New object", beside the declared ones
  if (!S.known.length && !all.some((o) => o.id === 1)) { all.unshift({ id: 1, name: "object 1" }); }
  for (const o of all) {
    const renamed = S.renamed[o.id]; const opt = document.createElement("option"); opt.value = o.id;
    opt.textContent = renamed ? `${o.id}: ${renamed} (was ${o.name}; saved with your next submit of it)` : `${o.id}: ${o.name}`; select.appendChild(opt);
  }
  if (chosen && all.some((o) => String(o.id) === chosen)) { select.value = chosen; }
}
// Each frame's bar is the fitted error model's expected error 1 − J&F (the server's expected_error),
// on one scale for every clip: green to yellow below look_here, red from it (look here).
function barColour(error, look) {
  if (error === null) { return "#555"; }
  if (error >= look) { return "rgb(230,40,60)"; }
  return `rgb(${Math.round(230 * error / look)},200,60)`;
}
function drawFilmstrip() {
  // updated in place while a propagation fills the clip in (a rebuilt strip would lose the person's click)
  const strip = $("filmstrip"); const rebuild = strip.children.length !== S.info.frames.length;
  if (rebuild) { strip.replaceChildren(); }
  const errors = S.info.expected_error; const look = S.info.look_here; const u = S.info.unreliable;
  const known = errors.filter((v) => v !== null);
  const red = known.filter((v) => v >= look).length;
  $("legend").replaceChildren(...(known.length ? [
    "expected error (1 − J&F) of each frame: ", el("i"), ` below ${look.toFixed(2)}, `, el("b", "look", ""),
    ` from ${look.toFixed(2)}: look here (${red} of ${errors.length} frames)`] : []));
  S.info.frames.forEach((frame, t) => {
    const div = rebuild ? document.createElement("div") : strip.children[t];
    const error = errors.length ? errors[t] : null;
    div.className = "thumb" + (S.info.annotated.includes(frame) ? " annotated" : "") + (frame === S.frame ? " open" : "")
      + (error !== null && error >= look ? " look" : "");
    div.dataset.frame = frame;
    const src = url(frameUrl(frame, "thumb.jpg") + "?v=" + (S.info.versions[t] || "none"));
    if (rebuild) { div.append(el("img"), el("div", "bar"), el("span", "", frame)); div.onclick = () => { if (leave()) { openFrame(frame); } }; strip.appendChild(div); }
    const img = div.querySelector("img"); if (img.getAttribute("src") !== src) { img.setAttribute("src", src); }
    div.querySelector(".bar").style.background = barColour(error, look);
    div.title = frameName(frame) + (error === null ? (S.info.pending ? ", not propagated yet" : "")
      : `, expected J&F ${(1 - error).toFixed(2)}, unreliable ${u[t].toFixed(3)}`);
  });
}
// The open frame's thumbnail centred in the filmstrip, which scrolls sideways alone: the page itself
// never scrolls (scrollIntoView would scroll it too, hiding the frame's top under the sticky header).
function centreThumb(thumb) {
  const strip = $("filmstrip"); const t = thumb.getBoundingClientRect(); const s = strip.getBoundingClientRect();
  strip.scrollLeft += t.left + t.width / 2 - (s.left + s.width / 2);
}
async function openFrame(frame) {
  // the last frame asked for wins: a click while an earlier frame still loads (after a job, say) opens the clicked one
  const ticket = ++S.opening;
  if (frame !== S.frame) { done(); }  // what the status line said was of the frame left
  S.frame = frame; S.clicks = []; S.undo = []; S.redo = []; S.polygon = []; S.edited = false; S.boxed = {}; S.clicked = {}; S.freehand = {}; endTool();
  for (const d of document.querySelectorAll(".thumb")) {
    d.classList.toggle("open", +d.dataset.frame === frame);
    if (+d.dataset.frame === frame) { centreThumb(d); }
  }
  const src = url(frameUrl(frame, "image.jpg"));
  const loaded = new Promise((resolve) => { const image = new Image(); image.onload = () => resolve(true); image.onerror = () => resolve(false); image.src = src; });
  const [mask, shown] = await Promise.all([api(frameUrl(frame, "mask")), loaded]);
  if (ticket !== S.opening) { return; }
  if (!shown) {  // the server refused the frame (a damaged file): its reason, not a broken image alone
    const refused = await fetch(src).then((r) => r.json()).catch(() => ({}));
    if (ticket !== S.opening) { return; }
    say(refused.error || `${frameName(frame)} cannot be shown`);
  }
  $("frame").src = src;
  const canvas = $("overlay"); canvas.width = S.info.width; canvas.height = S.info.height;
  S.base = decode(mask.rle, mask.width * mask.height); S.work = S.base.slice(); S.edits = mask.edits;
  frameInfo(); draw(); document.body.dataset.frame = `${S.video}/${frame}`;
}
function draw() {
  if (!S.work) { return; }  // no frame open yet (a tool chosen, a key pressed while the first frame loads)
  const canvas = $("overlay"); const ctx = canvas.getContext("2d");
  const image = ctx.createImageData(canvas.width, canvas.height); const px = image.data;
  const w = canvas.width; const n = S.work.length;
  for (let i = 0; i < n; i++) {
    const id = S.work[i];
    const edge = ((i + 1) % w !== 0 && S.work[i + 1] !== id) || (i + w < n && S.work[i + w] !== id);
    if (edge) { px[4 * i] = px[4 * i + 1] = px[4 * i + 2] = px[4 * i + 3] = 255; continue; }
    if (!id) { continue; }
    const c = S.palette[id]; px[4 * i] = c[0]; px[4 * i + 1] = c[1]; px[4 * i + 2] = c[2]; px[4 * i + 3] = 140;
  }
  ctx.putImageData(image, 0, 0);
  for (const c of S.clicks) {
    ctx.beginPath(); ctx.arc(c.x, c.y, 6, 0, 2 * Math.PI); ctx.fillStyle = c.positive ? "#2e2" : "#e22"; ctx.fill();
    ctx.strokeStyle = "#fff"; ctx.stroke();
  }
  for (const c of S.boxClicks) {
    ctx.beginPath(); ctx.arc(c.x, c.y, 6, 0, 2 * Math.PI); ctx.fillStyle = c.positive ? "#2e2" : "#e22"; ctx.fill();
  }
  const rect = S.drag || S.box;
  if (rect) { ctx.setLineDash([6, 4]); ctx.strokeStyle = "#ff0"; ctx.lineWidth = 2; ctx.strokeRect(rect[0], rect[1], rect[2] - rect[0], rect[3] - rect[1]); ctx.setLineDash([]); }
  for (const line of [S.polygon, S.contour, S.stroke]) {
    if (!line.length) { continue; }
    ctx.beginPath(); ctx.moveTo(line[0][0], line[0][1]);
    for (const [x, y] of line) { ctx.lineTo(x, y); } ctx.strokeStyle = "#ff0"; ctx.lineWidth = 2; ctx.stroke();
  }
  for (const [x, y] of S.anchors) { ctx.fillStyle = "#ff0"; ctx.fillRect(x - 3, y - 3, 7, 7); }
}
// A shape's mask for the chosen object put into `base`: replace (the object's pixels elsewhere
// cleared first), add, or subtract; Shift adds and Alt subtracts whatever the menu says.
function shapeMode(event) { return event && event.shiftKey ? "add" : event && event.altKey ? "subtract" : $("mode").value; }
function apply(base, bits, mode, obj = object()) {
  const out = base.slice();
  for (let i = 0; i < out.length; i++) {
    if (mode === "replace" && out[i] === obj) { out[i] = 0; }
    if (!bits[i]) { continue; }
    if (mode !== "subtract") { out[i] = obj; } else if (out[i] === obj) { out[i] = 0; }
  }
  return out;
}
function endTool() { S.box = null; S.drag = null; S.boxClicks = []; S.anchors = []; S.contour = []; S.stroke = []; }
// Another object chosen ends the tool in progress: a box and its corrective clicks belong to the object it
// was drawn for, and the next click on the new object starts afresh.
function chooseObject(id) {
  $("object").value = id; endTool();
  if (S.work) { draw(); frameInfo(); }
}
// A tool's answer on its way, kept in S.answers until it is shown (or refused), so that a submit takes it.
function answering(promise) { S.answers.add(promise); promise.finally(() => S.answers.delete(promise)); }
async function post(kind, body) {
  return api(frameUrl(S.frame, kind), { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
}
// The shape's mask from the server put into ``base`` as its mode says, for object ``obj`` (the one it was
// asked for, whichever is chosen when it comes); the tools' answers are 0/1 masks.
function shaped(data, mode, base, obj) {
  S.work = apply(base, decode(data.rle, S.work.length), mode, obj); S.edited = true; S.clicks = []; draw(); frameInfo(); done();
}
// The tools' answers asked before now (`answering`), settled: a shape asked next builds on what they drew.
function earlierAnswers() { const asked = [...S.answers]; return Promise.allSettled(asked); }
// Whether an answer still answers what is on screen: the same frame, the same list of clicks (a new box,
// an undo or another frame makes a new one) and no click added to it since (its answer is on its way).
function stillAsked(video, frame, clicks, sent) {
  return S.video === video && S.frame === frame && clicks.length === sent && (clicks === S.clicks || clicks === S.boxClicks);
}
async function boxPreview(obj = object()) {
  const clicks = S.boxClicks, sent = clicks.length, box = S.box, video = S.video, frame = S.frame;
  const started = performance.now();
  try {
    const data = await post("box", { box, clicks, object: obj });
    if (!stillAsked(video, frame, clicks, sent) || S.box !== box) { return; }
    const shown = S.work; shaped(data, S.toolMode, S.toolBase, obj);
    // a box that adds to or takes from what the object had makes a drawn mask, not a box's
    if (S.toolMode === "replace") { S.boxed[obj] = { box: S.box.slice(), clicks: clicks.slice(0, sent) }; }
    else { delete S.boxed[obj]; S.freehand[obj] = true; }
    $("frameinfo").dataset.box = `${S.box.join(",")}:${sent}`;
    tellChange(shown, obj, started, sent > 0);
  } catch (err) {
    if (!stillAsked(video, frame, clicks, sent) || S.box !== box) { return; }
    if (sent) { S.boxClicks.pop(); } draw(); fail(err);
  }
}
function boxDown(x, y, event) {
  if (event.button === 0) { S.drag = [x, y, x, y]; S.dragMode = shapeMode(event); return; }
  if (!S.box) { say("the box tool: drag a box around the object first (or choose the clicks tool to click)"); return; }
  remember(); S.boxClicks.push({ object: object(), x, y, positive: false }); draw(); answering(boxPreview());
}
function boxUp() {
  const [ax, ay, bx, by] = S.drag; S.drag = null;  // `point` keeps both corners in the frame
  if (Math.abs(bx - ax) < 4 || Math.abs(by - ay) < 4) {  // a click, not a drag: positive on the box's mask
    if (S.box) { remember(); S.boxClicks.push({ object: object(), x: ax, y: ay, positive: true }); draw(); answering(boxPreview()); }
    else { say("the box tool: drag a box around the object first (or choose the clicks tool to click)"); }
    return;
  }
  const box = [Math.min(ax, bx), Math.min(ay, by), Math.max(ax, bx), Math.max(ay, by)];
  answering(newBox(box, S.dragMode, object(), earlierAnswers()));
}
// A box let go, drawn on what the answers asked before it drew (a box let go before the last one's answer
// came keeps that one), then previewed for the object chosen when it was let go.
async function newBox(box, mode, obj, earlier) {
  const video = S.video, frame = S.frame;
  await earlier;
  if (S.video !== video || S.frame !== frame) { return; }
  remember(); S.toolBase = S.work.slice(); S.toolMode = mode; S.boxClicks = []; S.box = box;
  draw(); await boxPreview(obj);
}
// A point [x, y] (first two values) moved onto the frame's nearest pixel.
async function scissorsAnchor(x, y) {
  if (!S.anchors.length) { remember(); }
  S.anchors.push([x, y]); draw();
  const sent = S.anchors.length;
  try {
    const data = await post("scissors", { points: S.anchors });
    if (sent === S.anchors.length) { S.contour = data.contour; draw(); done(); }
  } catch (err) { S.anchors.pop(); draw(); fail(err); }
}
// A closed contour's or a superpixel stroke's answer drawn for the object it was made for, on the frame it
// was made on, after the answers asked before it (a quick second stroke keeps the first).
async function closeScissors(mode) {
  const obj = object(), video = S.video, frame = S.frame, earlier = earlierAnswers();
  try {
    const data = await post("scissors", { points: S.anchors, closed: true }); await earlier;
    if (S.video !== video || S.frame !== frame) { return; }
    S.anchors = []; S.contour = []; shaped(data, mode, S.work, obj); S.freehand[obj] = true; $("frameinfo").dataset.scissors = String(S.undo.length);
  } catch (err) { fail(err); }
}
async function paintSuperpixels(mode) {
  const stroke = S.stroke; S.stroke = []; const obj = object(), video = S.video, frame = S.frame, earlier = earlierAnswers();
  try {
    const data = await post("superpixels", { points: stroke }); await earlier;
    if (S.video !== video || S.frame !== frame) { return; }
    shaped(data, mode, S.work, obj); S.freehand[obj] = true; $("frameinfo").dataset.superpixels = String(S.undo.length);
  } catch (err) { draw(); fail(err); }
}
// Whether the open frame holds an edit not submitted yet, and whether the page holds any unsubmitted work
// (that edit, or objects declared in any video): a reload or another frame would lose it.
function editing() { return Boolean(S.edited || S.clicks.length || S.polygon.length || S.anchors.length || S.box); }
function unsubmitted() {
  return editing() || [...Object.values(S.addedOf), ...Object.values(S.renamedOf)].some((names) => Object.keys(names).length);
}
// Whether the person lets the open frame go: asked only when its edit would be lost.
function leave() { return !editing() || confirm(`Discard the unsubmitted edit of ${S.video} frame ${S.frame}?`); }
// The open frame's edit as it stands, for Undo and Redo.
function snapshot() {
  return { work: S.work.slice(), clicks: S.clicks.slice(), edited: S.edited, base: S.base, box: S.box, boxed: { ...S.boxed }, clicked: { ...S.clicked }, freehand: { ...S.freehand }, added: { ...S.added },
    boxClicks: S.boxClicks.slice(), toolBase: S.toolBase, toolMode: S.toolMode, anchors: S.anchors.slice(), contour: S.contour };
}
// The edit before a change, for Undo: a new change drops what was undone.
function remember() { S.undo.push(snapshot()); S.redo = []; }
// The open frame's edit put back as ``state`` holds it, the chosen object kept where it still exists.
function restore(state) {
  const chosen = object(); Object.assign(S, state); S.addedOf[S.video] = S.added; S.polygon = []; S.stroke = [];
  fillObjects(); if (chosen in S.added || S.known.includes(chosen)) { $("object").value = chosen; }
  draw(); $("frameinfo").dataset.preview = String(S.clicks.length); frameInfo(); done();
}
function tool() { return document.querySelector("input[name=tool]:checked").value; }
function object() { return +$("object").value; }
// The frame pixel under the pointer (pixel x spans [x, x + 1) of the frame as drawn), the nearest one off it.
function point(event) {
  const rect = $("overlay").getBoundingClientRect(); const w = S.info.width; const h = S.info.height;
  const at = (offset, size, n) => Math.max(0, Math.min(n - 1, Math.floor(offset * n / size)));
  return [at(event.clientX - rect.left, rect.width, w), at(event.clientY - rect.top, rect.height, h)];
}
// The brush or the eraser along the segment from the last point painted to (x, y): discs at most a radius
// apart, so a quick stroke (a pointer event every 20 px) leaves no gaps.
function paintTo(x, y) {
  const [px, py] = S.lastPaint || [x, y]; const r = Math.max(1, +$("size").value);
  const steps = Math.max(1, Math.ceil(Math.hypot(x - px, y - py) / r));
  for (let k = 1; k <= steps; k++) { paint(Math.round(px + (x - px) * k / steps), Math.round(py + (y - py) * k / steps)); }
  S.lastPaint = [x, y];
}
function paint(x, y) {
  const r = +$("size").value; const obj = object(); const w = S.info.width; const h = S.info.height;
  for (let yy = Math.max(0, y - r); yy <= Math.min(h - 1, y + r); yy++) {
    for (let xx = Math.max(0, x - r); xx <= Math.min(w - 1, x + r); xx++) {
      if ((xx - x) ** 2 + (yy - y) ** 2 > r * r) { continue; }
      const i = yy * w + xx;
      if (tool() === "brush") { S.work[i] = obj; } else if (S.work[i] === obj) { S.work[i] = 0; }
    }
  }
}
async function click(x, y, positive) {
  if (!S.clicks.length && S.edited) { S.base = S.work.slice(); }
  const obj = object(); const under = S.work[y * S.info.width + x];
  const made = { object: obj, x, y, positive };
  S.clicks.push(made); S.clicked[obj] = (S.clicked[obj] || []).concat([made]); draw();
  const clicks = S.clicks, sent = clicks.length, video = S.video, frame = S.frame;
  const body = { clicks, base: encode(S.base) };  // the mask shown, though the frame propagate meanwhile
  const started = performance.now();
  try {
    const preview = await api(frameUrl(frame, "preview"), { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
    if (!stillAsked(video, frame, clicks, sent)) { return; }  // a later click's answer holds this one's
    const shown = S.work; S.work = decode(preview.rle, S.work.length); draw();
    done(); $("frameinfo").dataset.preview = String(sent);
    if (tellChange(shown, obj, started, true) <= 1 && (under === obj) === positive) {  // nothing to change there
      say(`the clicked pixel was already ${positive ? "" : "outside "}${objectLabel(obj)}: a left click adds to the chosen object, a right click takes from it`);
    }
    if (positive && under && under !== obj && under !== 255) { otherObject(under, obj); }
  } catch (err) {
    if (!stillAsked(video, frame, clicks, sent)) { return; }
    S.clicks.pop(); S.clicked[obj] = S.clicked[obj].filter((c) => c !== made); draw(); fail(err);
  }
}
// The info line tells how many pixels of object ``obj`` an answer added and removed against the mask
// ``shown`` before it; a click (``clicked``) whose answer changes no pixel but its own is one the click
// model cannot tell from what is around it, and the status line says what to do instead.
// The pixels it took from other objects are told too, object by object. Returns the pixels changed.
function tellChange(shown, obj, started, clicked) {
  let added = 0, removed = 0; const taken = {};
  for (let i = 0; i < S.work.length; i++) {
    const was = shown[i] === obj, now = S.work[i] === obj;
    if (now && !was) { added++; if (shown[i]) { taken[shown[i]] = (taken[shown[i]] || 0) + 1; } } else if (was && !now) { removed++; }
  }
  $("frameinfo").dataset.changed = `${added}:${removed}`;
  const from = Object.entries(taken).map(([id, n]) => `, ${n} px taken from object ${id}`).join("");
  frameInfo(` in ${Math.round(performance.now() - started)} ms: +${added} / −${removed} px${from}`);
  if (clicked && added + removed <= 1) { say("the click changed nothing around it: draw this part with the brush or the scissors"); }
  return added + removed;
}
// A positive click on another object's pixels grows the chosen object over them (a part of it, or a new
// object inside it); the status line says so, as the chosen object is easily left from another frame.
function otherObject(under, obj) {
  say(`the click was on ${objectLabel(under)} and went to ${objectLabel(obj)}, the chosen object: `
    + `if it was meant for ${objectLabel(under)}, Undo and choose that object in the menu`);
}
// An uploaded mask (`ids`, holding `objects`) put into the frame, the status line saying what it did.
// A mask of one object (one id, or a black and white mask) replaces the chosen object on this frame, as
// `annotate add --object` does: the other objects are kept. A mask of several objects is the frame's
// mask; ids the video does not know are refused, unless the person ticks "new objects" (they first
// appear on this frame), never taken in silently.
function putUpload(ids, objects) {
  const obj = object(); const shown = S.work; const where = `frame ${S.frame}`;
  if (objects.length <= 1) {
    const work = apply(shown, ids, "replace");
    let added = 0, removed = 0, taken = 0;
    for (let i = 0; i < work.length; i++) {
      if (work[i] === obj && shown[i] !== obj) { added++; if (shown[i]) { taken++; } } else if (shown[i] === obj && work[i] !== obj) { removed++; }
    }
    takeUpload(work);
    if (!objects.length) { say(`upload: the file holds no object: ${objectLabel(obj)} removed from ${where} (−${removed} px), the other objects kept`); return; }
    say(`upload: ${objectLabel(obj)} replaced on ${where} (+${added} / −${removed} px), the other objects kept`
      + (objects[0] !== obj ? `; the file's id ${objects[0]} read as object ${obj}, the chosen object` : "")
      + (taken ? `; ${taken} px taken from other objects` : ""));
    return;
  }
  const known = S.known.concat(Object.keys(S.added).map(Number));
  const fresh = objects.filter((id) => !known.includes(id));
  if (fresh.length && S.known.length && !$("newobjects").checked) {
    const many = fresh.length > 1;
    say(`upload refused: object${many ? "s" : ""} ${fresh.join(", ")} unknown in ${S.video} (known: ${known.join(", ")}); `
      + `tick "new objects" if ${many ? "they first appear" : "it first appears"} on this frame, or upload one object's mask `
      + "(it replaces the chosen object)");
    return;
  }
  const dropped = [...new Set(shown)].filter((id) => id && !objects.includes(id)).sort((a, b) => a - b);
  takeUpload(ids, objects);  // its snapshot first: Undo takes the objects it declares back too
  for (const id of fresh) { S.added[id] = null; }
  fillObjects(); $("newobjects").checked = false;
  say(`upload: the mask of ${where} replaced by objects ${objects.join(", ")}`
    + (fresh.length ? `; new: object${fresh.length > 1 ? "s" : ""} ${fresh.join(", ")}` : "")
    + (dropped.length ? `; not in it, so removed from this frame: object${dropped.length > 1 ? "s" : ""} ${dropped.join(", ")}` : ""));
}
// An uploaded mask put on the frame: its objects (the chosen one, or every one of a file of several) were drawn.
function takeUpload(work, objects = [object()]) {
  remember(); endTool(); S.polygon = []; S.work = work; S.edited = true; S.clicks = [];
  for (const id of objects) { S.freehand[id] = true; }
  draw(); frameInfo();
}
// "object 3", or "object 3 "dog"" when the person named it.
function objectLabel(id) {
  const o = S.info.objects.find((x) => x.id === id); const name = S.renamed[id] || (o ? o.name : S.added[id]);
  return name && name !== `object ${id}` ? `object ${id} "${name}"` : `object ${id}`;
}
function closePolygon(mode) {
  if (S.polygon.length < 3) { S.polygon = []; draw(); return; }
  const off = document.createElement("canvas"); off.width = S.info.width; off.height = S.info.height;
  const ctx = off.getContext("2d"); ctx.beginPath(); ctx.moveTo(S.polygon[0][0], S.polygon[0][1]);
  for (const [x, y] of S.polygon) { ctx.lineTo(x, y); } ctx.closePath(); ctx.fillStyle = "#fff"; ctx.fill();
  const alpha = ctx.getImageData(0, 0, off.width, off.height).data;
  const bits = new Uint8Array(S.work.length); for (let i = 0; i < bits.length; i++) { bits[i] = alpha[4 * i + 3] > 127 ? 1 : 0; }
  S.work = apply(S.work, bits, mode || $("mode").value); S.polygon = []; S.edited = true; S.freehand[object()] = true; S.clicks = [];
  frameInfo(); draw(); done();
}
function wire() {
  const canvas = $("overlay");
  window.addEventListener("beforeunload", (e) => { if (unsubmitted()) { e.preventDefault(); e.returnValue = ""; } });
  canvas.addEventListener("contextmenu", (e) => e.preventDefault());
  canvas.addEventListener("mousedown", (e) => {
    if (!S.work) { return; }
    const [x, y] = point(e);
    if (tool() === "clicks") { remember(); answering(click(x, y, e.button === 0)); return; }
    if (tool() === "box") { boxDown(x, y, e); return; }
    if (tool() === "scissors") {
      const [fx, fy] = S.anchors.length ? S.anchors[0] : [-99, -99];
      if (S.anchors.length >= 3 && Math.hypot(x - fx, y - fy) <= 8) { answering(closeScissors(shapeMode(e))); } else { answering(scissorsAnchor(x, y)); }
      return;
    }
    if (tool() === "polygon") { if (!S.polygon.length) { remember(); } S.polygon.push([x, y]); draw(); return; }
    remember();
    if (tool() === "superpixels") { S.stroke = [[x, y]]; S.strokeMode = e.altKey || $("mode").value === "subtract" ? "subtract" : "add"; draw(); return; }
    S.painting = true; S.edited = true; S.freehand[object()] = true; S.clicks = []; S.lastPaint = [x, y]; paint(x, y); draw(); frameInfo(); done();
  });
  canvas.addEventListener("mousemove", (e) => {
    const [x, y] = point(e);
    if (S.painting) { paintTo(x, y); draw(); }
    if (S.stroke.length) { S.stroke.push([x, y]); draw(); }
  });
  // a box being dragged follows the pointer off the frame too, clipped to the frame
  document.addEventListener("mousemove", (e) => { if (S.drag) { [S.drag[2], S.drag[3]] = point(e); draw(); } });
  window.addEventListener("mouseup", () => {
    S.painting = false;
    if (S.drag) { boxUp(); }
    if (S.stroke.length) { answering(paintSuperpixels(S.strokeMode)); }
  });
  canvas.addEventListener("dblclick", (e) => {
    if (tool() === "polygon") { S.polygon.pop(); closePolygon(shapeMode(e)); }
    if (tool() === "scissors" && S.anchors.length >= 4) { S.anchors.pop(); answering(closeScissors(shapeMode(e))); }
  });
  for (const radio of document.querySelectorAll("input[name=tool]")) { radio.onchange = () => { endTool(); S.polygon = []; frameInfo(); draw(); }; }
  // Ctrl+Z (⌘Z on a Mac) is the Undo button, Ctrl+Shift+Z (⇧⌘Z) and Ctrl+Y the Redo button, except in a
  // field one types in (which undoes its own typing)
  window.addEventListener("keydown", (e) => {
    const typing = e.target.matches("input:not([type]), input[type=text], input[type=number]");
    if (!(e.ctrlKey || e.metaKey) || e.altKey || typing) { return; }
    const key = e.key.toLowerCase();
    if (key === "z" && !e.shiftKey) { e.preventDefault(); $("undo").click(); }
    if ((key === "z" && e.shiftKey) || (key === "y" && !e.shiftKey)) { e.preventDefault(); $("redo").click(); }
  });
  $("undo").onclick = () => {
    const last = S.undo.pop();
    if (!last) { return; }
    // an edit whose answer is still on its way cannot be put back as it will be: no Redo of it
    if (S.answers.size) { S.redo = []; } else { S.redo.push(snapshot()); }
    restore(last);
  };
  $("redo").onclick = () => {
    const next = S.redo.pop();
    if (!next) { return; }
    S.undo.push(snapshot()); restore(next);
  };
  $("newobject").onclick = () => {
    const name = $("newname").value.trim(); if (!name) { say("give the new object a class name"); return; }
    // ids known, declared, or drawn on the open frame (an upload for the chosen object before any was declared)
    const drawn = S.work ? [...new Set(S.work)].filter((v) => v > 0 && v < 255) : [];
    const ids = S.known.concat(Object.keys(S.added).map(Number), drawn); const id = ids.length ? Math.max(...ids) + 1 : 1;
    if (S.work) { remember(); }  // Undo takes the new object back
    S.added[id] = name; fillObjects(); chooseObject(id); $("newname").value = ""; done();
  };
  $("object").onchange = () => chooseObject(object());
  // the chosen object's new name, kept until a submit of a frame that holds it (the server names only those)
  $("rename").onclick = () => {
    const name = $("newname").value.trim(); const id = object();
    if (!name) { say("type the chosen object's new class name, then Rename"); return; }
    if (S.known.includes(id)) { S.renamed[id] = name; } else { if (S.work) { remember(); } S.added[id] = name; }
    fillObjects(); $("object").value = id; $("newname").value = "";
    say(`object ${id} renamed "${name}": the name is saved with your next submit of a frame that holds object ${id}`);
  };
  $("upload").onchange = async () => {
    const file = $("upload").files[0]; if (!file) { return; }
    try {
      const data = await api(frameUrl(S.frame, "upload"), { method: "POST", headers: { "Content-Type": "image/png" }, body: file });
      putUpload(decode(data.rle, S.work.length), data.objects);
    } catch (err) { fail(err); }
    $("upload").value = "";
  };
  $("submit").onclick = submit;
  $("export").onclick = async () => {
    try {
      const data = await api("/api/export", { method: "POST" });
      const where = data.unchanged ? `unchanged since the last export: ${data.written} labels in` : `${data.written} labels written to`;
      $("exported").textContent = `${where} ${data.store}; for your tool: ${data.tools.join(", ")}; once edited there, back to a label store with: ${data.import}`; done();
    }
    catch (err) { fail(err); }
  };
}
async function submit() {
  $("submit").disabled = true;
  const submitted = { video: S.video, frame: S.frame };  // the frame it annotates, whatever is open once it answers
  if (S.answers.size) { say("waiting for the tool's answer, then submitting"); }
  while (S.answers.size) { await Promise.allSettled([...S.answers]); }  // what is shown is what is submitted
  // clicks on the base their previews corrected, as the person saw it (a propagation may have changed the frame)
  const body = (!S.edited && S.clicks.length) ? { clicks: S.clicks, base: encode(S.base) } : { mask: encode(S.work) };
  body.edits = S.edits;  // the server refuses (412) to overwrite an annotation of the frame made since it was read
  const present = new Set(S.work); const fresh = [...present].filter((id) => id && !S.known.includes(id));
  // an object made with the box tool, or with clicks, and not drawn freehand, is booked (and exported) as its
  // box or its clicks, not as a drawn mask, whatever tools the frame's other objects took
  if (body.mask) {
    const made = (table, more = () => true) => Object.fromEntries(Object.entries(table).filter(([id]) => present.has(+id) && !S.freehand[id] && more(id)));
    const boxes = made(S.boxed); const clicked = Object.values(made(S.clicked, (id) => !(id in boxes))).flat();
    if (Object.keys(boxes).length) { body.boxes = boxes; }
    if (clicked.length) { body.clicked = clicked; }  // the clicks that made those objects, exported as theirs
  }
  // only objects the person declared (New object, or an upload's ids with "new objects" ticked) are sent as
  // new: any other id the video does not know is refused by the server, as `annotate add` refuses it
  body.new_objects = fresh.length > 0 && S.known.length > 0 && fresh.every((id) => id in S.added);
  // the ids declared here: the server refuses one another tab declared since (two objects under one id)
  body.declared = fresh.filter((id) => id in S.added);
  body.names = {}; for (const id of fresh) { if (S.added[id]) { body.names[id] = S.added[id]; } }
  // a rename goes with a submit that holds the object (its clicks, or its pixels in the mask)
  const holds = body.clicks ? new Set(body.clicks.map((c) => c.object)) : present;
  const renamed = S.renamed; const named = Object.keys(renamed).filter((id) => holds.has(+id));
  for (const id of named) { body.names[id] = renamed[id]; }
  const added = S.added;
  try {
    const answer = await api(frameUrl(S.frame, "submit"), { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
    S.edits = answer.edits;
    done(); for (const id of fresh) { delete added[id]; }  // declared objects not in the mask stay declared
    for (const id of named) { delete renamed[id]; }
    for (const o of S.info.objects) { if (o.id in body.names && named.includes(String(o.id))) { o.name = body.names[o.id]; } }
    if (named.length) { fillObjects(); }  // the menu says the rename is saved, under the new name
    // what was submitted is the frame's mask now: later drawing is a new edit
    S.base = S.work.slice(); S.edited = false; S.clicks = []; S.undo = []; S.redo = []; S.polygon = []; S.boxed = {}; S.clicked = {}; S.freehand = {}; endTool();
    if (S.video === submitted.video && !S.info.annotated.includes(submitted.frame)) {  // said at once, not once propagated
      S.info.annotated.push(submitted.frame);
      document.querySelector(`.thumb[data-frame='${submitted.frame}']`)?.classList.add("annotated");
    }
    frameInfo();
    loadProposal().catch((err) => fail(err));
    // the next frame can be annotated and submitted at once: a submit while the clip propagates supersedes it
    wake();
  } catch (err) { fail(err); }
  $("submit").disabled = false;
}
// The propagations the page follows: every job of the server, whoever started it (this tab, another one,
// a restart). `watch` polls them, shows the newest one's progress, fills the open video's filmstrip in as
// its frames arrive, and refreshes the page when a job ends (done, failed or superseded). A server that
// stops answering is asked again each second; when it answers, the page is refreshed whole.
const W = { jobs: null, lost: false, lostText: "", wake: null };
function wake() { if (W.wake) { W.wake(); } }
function pause(ms) { return new Promise((resolve) => { W.wake = resolve; setTimeout(resolve, ms); }); }
async function watch() {
  for (;;) {
    let running = false;
    try {
      const jobs = (await api("/api/jobs")).jobs;
      if (W.lost) { W.lost = false; W.jobs = null; if ($("status").textContent === W.lostText) { done(); } await refresh(); }
      running = await followJobs(jobs);
    } catch (err) {
      if (err.status) { fail(err); } else if (!W.lost) { W.lost = true; W.lostText = err.message; say(err.message); }
    }
    await pause(running ? 300 : 1000);
  }
}
// One poll's jobs: the progress shown, the open video's frames as they arrive, the page refreshed after a job
// that ended since the last poll (one that came and went between two polls too; the jobs of the first poll
// after a load or a reconnect are taken as they are); whether one is still queued or propagating.
async function followJobs(jobs) {
  const runs = (j) => j.status === "queued" || j.status === "propagating";
  const running = jobs.filter(runs);  // one job at most per video: a submit supersedes the one before
  const shown = running.find((j) => j.video === S.video) || running[running.length - 1] || jobs[jobs.length - 1];
  $("progress").value = shown ? shown.progress : 0;
  $("jobinfo").textContent = shown ? `${shown.video}: ${shown.status} ${shown.done}/${shown.frames} frames ${shown.elapsed.toFixed(1)} s` : "";
  const before = W.jobs; W.jobs = Object.fromEntries(jobs.map((j) => [j.id, j]));
  const ended = before ? jobs.filter((j) => !runs(j) && (!before[j.id] || runs(before[j.id]))) : [];
  const arrived = (j) => j.video === S.video && j.status === "propagating" && !(before && before[j.id] && before[j.id].done === j.done);
  if (ended.length) {
    await refresh(ended.some((j) => j.video === S.video));
    for (const job of ended) { if (job.status === "failed") { say(job.error); } }
    for (const job of ended) { if (job.status === "done") { $("jobinfo").dataset.done = String(job.id); } }
  } else if (jobs.some(arrived)) {  // the open video's filmstrip fills in
    S.info = await api(`/api/videos/${encodeURIComponent(S.video)}`); drawFilmstrip();
  }
  return running.length > 0;
}
// The page read again: the videos' table, the open video, the proposal and (``reopen``) the open frame, unless
// the person is drawing on it; opened as at the start when it never was (the server did not answer then).
async function refresh(reopen = true) {
  if (!S.info) { await openFirst(); return; }
  await loadSession();
  S.info = await api(`/api/videos/${encodeURIComponent(S.video)}`); S.known = S.info.objects.map((o) => o.id);
  fillObjects(); drawFilmstrip();
  // S.frame is read now, so a frame the person opened meanwhile stays open
  if (reopen && !editing()) { await openFrame(S.frame); }
  await loadProposal();
}
async function openFirst() {
  const data = await loadSession();
  const p = await loadProposal();
  await openVideo(p ? p.video : data.videos[0].name, p ? p.frame : null);
  document.body.dataset.ready = "1";
}
async function start() {
  wire();
  try { await openFirst(); } catch (err) { fail(err); }
  watch();
}
start();
