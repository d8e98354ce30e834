// Tally console: plain JavaScript over the node's HTTP API. No libraries, nothing fetched
// from anywhere but this node.
"use strict";

const $ = (sel) => document.querySelector(sel);

// el builds an element: el("td", {class: "num"}, "text", childNode, ...).
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function fill(tbody, rows) {
  tbody.replaceChildren(...rows);
}

// ---- credentials and API calls -------------------------------------------------------

const CRED_KEY = "tally.basic";

function credentials() {
  return sessionStorage.getItem(CRED_KEY);
}

function showSignedIn() {
  const c = credentials();
  let user = "";
  if (c) {
    try {
      user = new TextDecoder().decode(Uint8Array.from(atob(c), (ch) => ch.charCodeAt(0))).split(":")[0];
    } catch (e) { user = ""; }
  }
  $("#whoami").textContent = user ? "signed in as " + user : "";
  $("#signin-open").hidden = !!c;
  $("#signout").hidden = !c;
}

function askLogin(reason) {
  $("#login-reason").textContent = reason || "This node asks for credentials.";
  if (!$("#login").hidden) return; // already open: leave the focus where the user is typing
  $("#login").hidden = false;
  $("#login-user").focus();
}

// ApiError carries the HTTP status and the server's own message.
class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

// api calls the node's API and answers the decoded JSON body (or text). A non-2xx answer
// throws an ApiError with the server's message; 401 also opens the sign-in form.
async function api(method, path, body, contentType) {
  const headers = {};
  const c = credentials();
  if (c) headers["Authorization"] = "Basic " + c;
  if (body !== undefined) headers["Content-Type"] = contentType || "application/json";
  let resp;
  try {
    // credentials "omit": a 401 comes back to the page (which asks with its own form) instead
    // of opening the browser's prompt; the Authorization header is still sent.
    resp = await fetch(path, { method, headers, body, credentials: "omit", cache: "no-store" });
  } catch (e) {
    throw new ApiError(0, "cannot reach the node: " + e.message);
  }
  const text = await resp.text();
  let data = text;
  if ((resp.headers.get("Content-Type") || "").includes("json")) {
    try { data = JSON.parse(text); } catch (e) { /* keep the text */ }
  }
  if (!resp.ok) {
    let msg = typeof data === "object" && data ? (data.error || data.message || JSON.stringify(data)) : String(data).trim();
    if (!msg) msg = resp.statusText;
    if (resp.status === 401) askLogin("The node answered 401: " + msg);
    if (resp.status === 403) msg = "not permitted (403): " + msg;
    throw new ApiError(resp.status, msg);
  }
  return data;
}

// ---- tabs ----------------------------------------------------------------------------

const tabHooks = {};
let currentTab = "cluster";

function showTab(name) {
  currentTab = name;
  for (const b of document.querySelectorAll("#tabs button")) {
    b.classList.toggle("active", b.dataset.tab === name);
  }
  for (const s of document.querySelectorAll("section.tab")) {
    s.hidden = s.id !== "tab-" + name;
  }
  if (location.hash !== "#" + name) history.replaceState(null, "", "#" + name);
  if (tabHooks[name]) tabHooks[name]();
}

// ---- cluster -------------------------------------------------------------------------

let lastStatus = null;

function num(v) {
  return el("td", { class: "num" }, v === undefined || v === null ? "" : v);
}

async function refreshCluster() {
  let st;
  try {
    st = await api("GET", "/v1/cluster/status");
  } catch (e) {
    $("#cluster-error").textContent = e.message;
    return;
  }
  // The cluster map (nodes with zone and state, voters, moves); a node without one answers
  // 404, and the page then shows what the status says.
  let cmap = null;
  try {
    cmap = await api("GET", "/v1/cluster/map");
  } catch (e) {
    if (e.status !== 404) {
      $("#cluster-error").textContent = "cluster map: " + e.message;
      return;
    }
  }
  lastStatus = st;
  $("#cluster-error").textContent = "";
  $("#node-id").textContent = "node " + st.id;
  $("#cluster-updated").textContent = "updated " + new Date().toLocaleTimeString() + " (every 2 s)";
  const groups = st.groups || [];

  // Nodes: every member of any group, with what the status says about it.
  const nodes = new Map();
  for (const g of groups) {
    for (const m of g.members || []) {
      const n = nodes.get(m.id) || { id: m.id, raft: m.raft_addr, http: "", voter: false, leads: [] };
      n.voter = n.voter || m.voter;
      nodes.set(m.id, n);
    }
    if (g.leader) {
      const n = nodes.get(g.leader.id) || { id: g.leader.id, raft: "", http: "", voter: false, leads: [] };
      if (g.leader.http_addr) n.http = g.leader.http_addr;
      n.leads.push(g.id);
      nodes.set(g.leader.id, n);
    }
  }
  // The map knows every node, those that vote in none of the groups too.
  const inMap = new Map();
  for (const mn of (cmap && cmap.nodes) || []) {
    inMap.set(mn.id, mn);
    const n = nodes.get(mn.id) || { id: mn.id, raft: "", http: "", voter: false, leads: [] };
    n.raft = n.raft || mn.raft_addr;
    n.http = n.http || mn.http_addr;
    nodes.set(mn.id, n);
  }
  const held = replicasHeld(cmap);
  const ids = [...nodes.keys()].sort();
  fill($("#nodes tbody"), ids.map((id) => {
    const n = nodes.get(id);
    const mn = inMap.get(id);
    const state = mn ? mn.state : "";
    return el("tr", { "data-node": id },
      el("td", {}, el("strong", {}, id), id === st.id ? el("span", { class: "muted small" }, " (this node)") : null),
      el("td", { class: "mono" }, n.raft),
      el("td", { class: "mono" }, n.http ? el("a", { href: location.protocol + "//" + n.http + "/ui/" }, n.http) : el("span", { class: "muted" }, "—")),
      el("td", {}, n.voter ? el("span", { class: "badge voter" }, "voter") : el("span", { class: "badge" }, "non-voter")),
      el("td", {}, n.leads.length ? n.leads.map((g) => el("span", { class: "badge leader" }, "group " + g)) : el("span", { class: "muted" }, "—")),
      el("td", { "data-col": "zone" }, mn && mn.zone ? mn.zone : el("span", { class: "muted" }, "—")),
      el("td", { "data-col": "state" }, state ? el("span", { class: state === "active" ? "badge" : "badge bad" }, state) : el("span", { class: "muted" }, "—")),
      el("td", { class: "num", "data-col": "replicas" }, cmap ? held.get(id) || 0 : ""));
  }));

  // Moves in progress, as "g3: +n7 -n2" (group 3 gains a replica on n7 and loses n2's).
  const moves = ((cmap && cmap.groups) || []).filter((g) => g.move).map((g) => g.move);
  $("#moves-box").hidden = !cmap;
  $("#moves-summary").textContent = cmap
    ? `cluster map at index ${cmap.index}: ${(cmap.nodes || []).length} nodes, ${(cmap.groups || []).length} groups of ${cmap.replicas} replicas` +
      (cmap.controller ? `, controller leader ${cmap.controller.id}` : "")
    : "";
  fill($("#moves"), moves.length
    ? moves.map((m) => el("li", { class: "mono", "data-group": m.group }, moveText(m)))
    : [el("li", { class: "muted" }, "none")]);

  fill($("#groups tbody"), groups.map((g) => el("tr", {},
    num(g.id),
    el("td", { class: "mono" }, g.shard_id || ""),
    el("td", {}, el("span", { class: g.role === "leader" ? "badge leader" : "badge" }, g.role)),
    el("td", {}, g.leader ? g.leader.id : el("span", { class: "badge bad" }, "no leader")),
    num(g.term), num(g.commit_index), num(g.applied_index), num(g.last_index),
    el("td", { class: "num" + (g.lag > 0 ? " warn" : "") }, g.lag),
    el("td", {}, (g.members || []).map((m) =>
      el("span", { class: m.voter ? "badge voter" : "badge", title: m.raft_addr }, m.id + (m.voter ? "" : " (non-voter)")))))));

  // Whatever else the status reports (a placement map's moves, for one) is shown as it is.
  const extra = Object.keys(st).filter((k) => k !== "id" && k !== "groups").sort();
  $("#cluster-extra").replaceChildren(...extra.map((k) => el("div", { "data-key": k }, el("h3", {}, k), renderValue(st[k]))));
}

// replicasHeld counts, per node, the groups of the cluster map it holds a replica of: those
// it votes in and those a move is adding it to.
function replicasHeld(cmap) {
  const held = new Map();
  for (const g of (cmap && cmap.groups) || []) {
    const on = new Set(g.voters || []);
    if (g.move && g.move.add) on.add(g.move.add);
    for (const id of on) held.set(id, (held.get(id) || 0) + 1);
  }
  return held;
}

// moveText renders a move as "g3: +n7 -n2".
function moveText(m) {
  let s = "g" + m.group + ":";
  if (m.add) s += " +" + m.add;
  if (m.remove) s += " -" + m.remove;
  return s;
}

// renderValue shows a JSON value: a list of objects as a table, an object as a table of
// its fields, anything else as text.
function renderValue(v) {
  const cell = (x) => el("td", { class: typeof x === "number" ? "num" : null }, x !== null && typeof x === "object" ? JSON.stringify(x) : String(x));
  if (Array.isArray(v)) {
    if (!v.length) return el("p", { class: "muted" }, "none");
    if (v.every((x) => x !== null && typeof x === "object" && !Array.isArray(x))) {
      const cols = [...new Set(v.flatMap((x) => Object.keys(x)))];
      return el("table", {}, el("thead", {}, el("tr", {}, cols.map((c) => el("th", {}, c)))),
        el("tbody", {}, v.map((x) => el("tr", {}, cols.map((c) => cell(x[c] === undefined ? "" : x[c]))))));
    }
    return el("p", { class: "mono" }, v.map((x) => JSON.stringify(x)).join(", "));
  }
  if (v !== null && typeof v === "object") {
    return el("table", {}, el("tbody", {}, Object.keys(v).map((k) => el("tr", {}, el("th", {}, k), cell(v[k])))));
  }
  return el("p", { class: "mono" }, String(v));
}

// ---- apps ----------------------------------------------------------------------------

let apps = [];

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// loadApps lists the apps. This node answers from its own replica, which may apply a deploy
// or a removal a moment after the leader answered it: with until, it asks again (for up to
// 5 s) until the list satisfies until.
async function loadApps(until) {
  for (let i = 0; ; i++) {
    try {
      const out = await api("GET", "/v1/apps?text=true");
      apps = out.apps || [];
      $("#apps-error").textContent = "";
    } catch (e) {
      $("#apps-error").textContent = e.message;
      return;
    }
    if (typeof until !== "function" || until(apps) || i >= 20) break;
    await sleep(250);
  }
  const list = $("#apps-list");
  if (!apps.length) {
    list.replaceChildren(el("p", { class: "muted" }, "No apps are deployed."));
  } else {
    list.replaceChildren(...apps.map((a) => el("div", { class: "app", "data-app": a.name },
      el("div", { class: "bar" },
        el("h3", {}, a.name),
        el("span", { class: "muted small" }, a.queries + (a.queries === 1 ? " query" : " queries")),
        el("button", { type: "button", class: "danger", onclick: () => removeApp(a.name) }, "Remove")),
      el("div", {}, el("span", { class: "muted small" }, "streams "), (a.streams || []).map((s) => el("span", { class: "badge" }, s))),
      el("div", {}, el("span", { class: "muted small" }, "aggregations "), (a.aggregations || []).length
        ? a.aggregations.map((s) => el("span", { class: "badge voter" }, s)) : el("span", { class: "muted small" }, "none")),
      a.text ? el("pre", {}, a.text) : null)));
  }
  // The query box's app list and the live tab's stream suggestions follow the apps.
  const sel = $("#query-app");
  const keep = sel.value;
  sel.replaceChildren(...apps.map((a) => el("option", { value: a.name }, a.name)));
  if (keep && apps.some((a) => a.name === keep)) sel.value = keep;
  $("#live-streams").replaceChildren(...apps.flatMap((a) => a.streams || []).map((s) => el("option", { value: s })));
}

async function removeApp(name) {
  if (!confirm("Remove app " + name + " from every group?")) return;
  try {
    await api("DELETE", "/v1/apps/" + encodeURIComponent(name));
    $("#apps-error").textContent = "";
  } catch (e) {
    $("#apps-error").textContent = "remove " + name + ": " + e.message;
    return;
  }
  loadApps((list) => !list.some((a) => a.name === name));
}

async function deployApp() {
  const text = $("#deploy-text").value;
  const out = $("#deploy-result");
  out.className = "muted";
  out.textContent = "deploying…";
  try {
    const res = await api("POST", "/v1/apps", text, "text/plain; charset=utf-8");
    out.className = "ok";
    out.textContent = "deployed " + (res.name || "");
    loadApps((list) => list.some((a) => a.name === res.name));
  } catch (e) {
    out.className = "error";
    out.textContent = e.message;
  }
}

// ---- query ---------------------------------------------------------------------------

const NUMERIC = new Set(["INT", "LONG", "FLOAT", "DOUBLE"]);
let lastAnswer = null;

async function runQuery(ev) {
  if (ev) ev.preventDefault();
  const appName = $("#query-app").value;
  const query = $("#query-text").value;
  $("#query-error").textContent = "";
  $("#query-status").textContent = "running…";
  const began = performance.now();
  let res;
  try {
    const consistency = $("#query-consistency").value;
    const path = "/stores/query" + (consistency ? "?consistency=" + encodeURIComponent(consistency) : "");
    res = await api("POST", path, JSON.stringify({ appName, query, details: true }));
  } catch (e) {
    $("#query-status").textContent = "";
    $("#query-error").textContent = e.message;
    return;
  }
  const records = res.records || [];
  const details = res.details || [];
  lastAnswer = { records, details };
  $("#query-status").textContent = records.length + (records.length === 1 ? " row" : " rows") + " in " + Math.round(performance.now() - began) + " ms";
  const isTs = (i) => details[i] && details[i].name === "AGG_TIMESTAMP";
  fill($("#query-result thead"), [el("tr", {}, details.map((d) =>
    el("th", { class: NUMERIC.has(d.dataType) && d.name !== "AGG_TIMESTAMP" ? "num" : null, title: d.dataType }, d.name)))]);
  fill($("#query-result tbody"), records.map((r) => el("tr", {}, r.map((v, i) => {
    const numeric = details[i] && NUMERIC.has(details[i].dataType) && !isTs(i);
    let shown = v === null ? "null" : v;
    if (isTs(i) && typeof v === "number") shown = new Date(v).toISOString().replace("T", " ").replace(".000Z", "Z");
    return el("td", { class: numeric ? "num" : null, title: isTs(i) ? String(v) : null }, shown);
  }))));
  setupChart();
}

// A per-bucket answer (first column AGG_TIMESTAMP) with a numeric column gets a chart.
function setupChart() {
  const box = $("#chart-box");
  const a = lastAnswer;
  const cols = a && a.details.length && a.details[0].name === "AGG_TIMESTAMP"
    ? a.details.map((d, i) => ({ d, i })).filter((c) => c.i > 0 && NUMERIC.has(c.d.dataType)) : [];
  if (!cols.length || !a.records.length) {
    box.hidden = true;
    $("#chart").replaceChildren();
    return;
  }
  box.hidden = false;
  const sel = $("#chart-column");
  const keep = sel.value;
  sel.replaceChildren(...cols.map((c) => el("option", { value: c.i }, c.d.name)));
  if (cols.some((c) => String(c.i) === keep)) sel.value = keep;
  drawChart(Number(sel.value));
}

const SVGNS = "http://www.w3.org/2000/svg";
const PALETTE = ["#1f5f8b", "#e07b39", "#3a9d5d", "#b23a48", "#7b5ea7", "#c9a227", "#2a9d8f", "#6c757d"];

function svg(tag, attrs, ...children) {
  const e = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

function fmtNum(v) {
  if (Math.abs(v) >= 1e6 || (Math.abs(v) < 1e-3 && v !== 0)) return v.toExponential(2);
  return Number.isInteger(v) ? String(v) : v.toFixed(2);
}

// niceCeil rounds v >= 0 up to 1, 2, 2.5, 4, 5, 8 or 10 times a power of ten, so axis ticks
// at quarters are round numbers.
function niceCeil(v) {
  if (v <= 0) return 0;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 2.5, 4, 5, 8, 10]) {
    if (m * p >= v) return m * p;
  }
  return 10 * p;
}

function fmtTime(ms, spanMs) {
  const iso = new Date(ms).toISOString();
  if (spanMs < 86400000) return iso.slice(11, 19);
  if (spanMs < 86400000 * 365) return iso.slice(5, 16).replace("T", " ");
  return iso.slice(0, 10);
}

// drawChart draws column col against AGG_TIMESTAMP: one series per value of the first
// string column (the group), bars when there are fewer than three buckets, else lines.
function drawChart(col) {
  const { records, details } = lastAnswer;
  const keyCol = details.findIndex((d, i) => i > 0 && d.dataType === "STRING");
  const series = new Map();
  for (const r of records) {
    if (typeof r[0] !== "number" || typeof r[col] !== "number") continue;
    const k = keyCol >= 0 ? String(r[keyCol]) : details[col].name;
    if (!series.has(k)) series.set(k, []);
    series.get(k).push([r[0], r[col]]);
  }
  for (const pts of series.values()) pts.sort((p, q) => p[0] - q[0]);
  const xs = [...new Set(records.map((r) => r[0]).filter((x) => typeof x === "number"))].sort((p, q) => p - q);
  const ys = [...series.values()].flat().map((p) => p[1]);
  const W = 820, H = 280, L = 64, R = 140, T = 14, B = 34;
  const pw = W - L - R, ph = H - T - B;
  let y0 = -niceCeil(-Math.min(0, ...ys)), y1 = niceCeil(Math.max(0, ...ys));
  if (y0 === y1) y1 = y0 + 1;
  const yv = (v) => T + ph - ((v - y0) / (y1 - y0)) * ph;
  const root = svg("svg", { width: W, height: H, viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": details[col].name + " per bucket" });
  // Axes and horizontal grid.
  for (let i = 0; i <= 4; i++) {
    const v = y0 + ((y1 - y0) * i) / 4;
    root.append(svg("line", { x1: L, x2: L + pw, y1: yv(v), y2: yv(v), stroke: "#eaecf0" }));
    root.append(svg("text", { x: L - 6, y: yv(v) + 4, "text-anchor": "end" }, fmtNum(v)));
  }
  root.append(svg("line", { x1: L, x2: L + pw, y1: yv(0), y2: yv(0), stroke: "#98a2b3" }));
  const span = xs.length > 1 ? xs[xs.length - 1] - xs[0] : 0;
  const keys = [...series.keys()];
  if (xs.length < 3) {
    // Grouped bars: one slot per bucket, one bar per series.
    const slot = pw / xs.length;
    const bw = Math.max(4, Math.min(40, (slot * 0.7) / keys.length));
    xs.forEach((x, xi) => {
      const cx = L + slot * (xi + 0.5);
      root.append(svg("text", { x: cx, y: H - B + 16, "text-anchor": "middle" }, fmtTime(x, span)));
      keys.forEach((k, ki) => {
        const p = series.get(k).find((q) => q[0] === x);
        if (!p) return;
        const bx = cx - (bw * keys.length) / 2 + ki * bw;
        const top = Math.min(yv(p[1]), yv(0));
        root.append(svg("rect", { class: "bar", x: bx, y: top, width: bw - 2, height: Math.max(1, Math.abs(yv(p[1]) - yv(0))), fill: PALETTE[ki % PALETTE.length] },
          svg("title", {}, `${k}: ${p[1]}`)));
      });
    });
  } else {
    const xv = (x) => L + ((x - xs[0]) / span) * pw;
    // Label the buckets themselves when they are few, else five evenly spaced times.
    const ticks = xs.length <= 8 ? xs : [0, 1, 2, 3, 4].map((i) => xs[0] + (span * i) / 4);
    for (const x of ticks) {
      root.append(svg("text", { x: xv(x), y: H - B + 16, "text-anchor": "middle" }, fmtTime(x, span)));
    }
    keys.forEach((k, ki) => {
      const pts = series.get(k);
      const color = PALETTE[ki % PALETTE.length];
      root.append(svg("polyline", { points: pts.map((p) => `${xv(p[0])},${yv(p[1])}`).join(" "), fill: "none", stroke: color, "stroke-width": 2 }));
      for (const p of pts) root.append(svg("circle", { cx: xv(p[0]), cy: yv(p[1]), r: 3, fill: color }, svg("title", {}, `${k} ${new Date(p[0]).toISOString()}: ${p[1]}`)));
    });
  }
  keys.forEach((k, ki) => {
    const y = T + 6 + ki * 18;
    root.append(svg("rect", { x: L + pw + 14, y: y - 8, width: 10, height: 10, fill: PALETTE[ki % PALETTE.length] }));
    root.append(svg("text", { x: L + pw + 30, y: y + 1 }, k));
  });
  $("#chart").replaceChildren(root);
}

// ---- sinks ---------------------------------------------------------------------------

async function refreshSinks() {
  let out;
  try {
    out = await api("GET", "/v1/sinks");
  } catch (e) {
    $("#sinks-error").textContent = e.message;
    return;
  }
  $("#sinks-error").textContent = "";
  $("#sinks-updated").textContent = "updated " + new Date().toLocaleTimeString();
  const sinks = out.sinks || [];
  $("#sinks-empty").hidden = sinks.length > 0;
  fill($("#sinks tbody"), sinks.map((s) => el("tr", {},
    num(s.group), el("td", {}, s.app), el("td", {}, s.stream), num(s.sink), el("td", {}, s.type),
    el("td", { class: "mono" }, s.url || ""), el("td", { class: "mono" }, s.delivered),
    el("td", { class: "num" + (s.undelivered > 0 ? " warn" : "") }, s.undelivered),
    el("td", {}, s.active ? "yes" : "no"),
    el("td", {}, s.failing ? el("span", { class: "badge bad", title: s.last_error || "" }, "failing") : el("span", { class: "badge leader" }, "ok"),
      s.last_error ? el("div", { class: "error small" }, s.last_error) : null))));
}

// ---- live ----------------------------------------------------------------------------

const LIVE_MAX = 300;
let liveSubs = [];

function addLive(ev, kind) {
  let o;
  try { o = JSON.parse(ev.data); } catch (e) { o = { id: ev.lastEventId, data: ev.data }; }
  const row = el("tr", {},
    el("td", { class: "mono" }, o.id || ev.lastEventId || ""),
    el("td", { class: "mono" }, typeof o.ts === "number" ? new Date(o.ts).toISOString() : ""),
    el("td", {}, el("span", { class: kind === "expired" ? "badge bad" : "badge voter" }, kind)),
    el("td", { class: "mono data" }, JSON.stringify(o.data)));
  const tb = $("#live tbody");
  tb.prepend(row);
  while (tb.children.length > LIVE_MAX) tb.lastChild.remove();
}

function stopLive() {
  for (const s of liveSubs) s.close();
  liveSubs = [];
  $("#live-start").disabled = false;
  $("#live-stop").disabled = true;
  $("#live-status").textContent = "stopped";
}

// sseOverFetch reads an event stream with fetch, for when the page holds credentials
// (EventSource cannot send an Authorization header). It calls on(kind, {data, lastEventId}).
function sseOverFetch(url, on, onError) {
  const ctl = new AbortController();
  (async () => {
    try {
      const resp = await fetch(url, { headers: { "Authorization": "Basic " + credentials(), "Accept": "text/event-stream" }, signal: ctl.signal, credentials: "omit", cache: "no-store" });
      if (!resp.ok) {
        const t = await resp.text();
        let msg = t;
        try { msg = JSON.parse(t).error || t; } catch (e) { /* text */ }
        if (resp.status === 401) askLogin("The node answered 401: " + msg);
        onError(resp.status + ": " + msg);
        return;
      }
      const reader = resp.body.getReader();
      const dec = new TextDecoder();
      let buf = "";
      let kind = "message", data = [], id = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += dec.decode(value, { stream: true });
        let nl;
        while ((nl = buf.indexOf("\n")) >= 0) {
          const line = buf.slice(0, nl).replace(/\r$/, "");
          buf = buf.slice(nl + 1);
          if (line === "") {
            if (data.length) on(kind, { data: data.join("\n"), lastEventId: id });
            kind = "message"; data = [];
          } else if (line.startsWith(":")) {
            // comment
          } else {
            const c = line.indexOf(":");
            const f = c < 0 ? line : line.slice(0, c);
            const v = c < 0 ? "" : line.slice(c + 1).replace(/^ /, "");
            if (f === "event") kind = v;
            else if (f === "data") data.push(v);
            else if (f === "id") id = v;
          }
        }
      }
      onError("the node closed the subscription");
    } catch (e) {
      if (e.name !== "AbortError") onError(e.message);
    }
  })();
  return { close: () => ctl.abort() };
}

// startLive subscribes to the stream in every group (each group's outputs are a separate
// subscription).
async function startLive(ev) {
  if (ev) ev.preventDefault();
  stopLive();
  const stream = $("#live-stream").value.trim();
  const from = $("#live-from").value;
  if (!stream) return;
  $("#live-error").textContent = "";
  $("#live tbody").replaceChildren();
  const nGroups = lastStatus ? lastStatus.groups.length : 1;
  for (let g = 0; g < nGroups; g++) {
    const q = new URLSearchParams({ group: String(g) });
    if (from) q.set("from", from);
    const url = "/v1/streams/" + encodeURIComponent(stream) + "/subscribe?" + q;
    const fail = (msg) => { $("#live-error").textContent = "group " + g + ": " + msg; };
    if (credentials()) {
      liveSubs.push(sseOverFetch(url, (kind, e) => addLive(e, kind === "expired" ? "expired" : "output"), fail));
      continue;
    }
    const es = new EventSource(url);
    es.addEventListener("output", (e) => addLive(e, "output"));
    es.addEventListener("expired", (e) => addLive(e, "expired"));
    es.addEventListener("open", () => { $("#live-error").textContent = ""; });
    es.addEventListener("error", async () => {
      if (es.readyState !== EventSource.CLOSED) return; // reconnecting on its own
      // EventSource hides the answer: ask once more to show the node's message.
      try {
        const ctl = new AbortController();
        const resp = await fetch(url, { signal: ctl.signal, credentials: "omit", cache: "no-store" });
        if (resp.ok) { ctl.abort(); fail("subscription closed"); return; }
        const t = await resp.text();
        let msg = t;
        try { msg = JSON.parse(t).error || t; } catch (e) { /* text */ }
        if (resp.status === 401) askLogin("The node answered 401: " + msg);
        fail(resp.status + ": " + msg);
      } catch (e) {
        fail("subscription closed");
      }
    });
    liveSubs.push(es);
  }
  $("#live-start").disabled = true;
  $("#live-stop").disabled = false;
  $("#live-status").textContent = "subscribed to " + stream + " in " + nGroups + (nGroups === 1 ? " group" : " groups");
}

// ---- wiring --------------------------------------------------------------------------

function init() {
  for (const b of document.querySelectorAll("#tabs button")) b.addEventListener("click", () => showTab(b.dataset.tab));
  tabHooks.apps = () => loadApps();
  tabHooks.query = () => { if (!apps.length) loadApps(); };
  tabHooks.sinks = refreshSinks;
  tabHooks.live = () => { if (!apps.length) loadApps(); };
  $("#apps-refresh").addEventListener("click", () => loadApps());
  $("#deploy").addEventListener("click", deployApp);
  $("#query-form").addEventListener("submit", runQuery);
  $("#chart-column").addEventListener("change", () => drawChart(Number($("#chart-column").value)));
  $("#live-form").addEventListener("submit", startLive);
  $("#live-stop").addEventListener("click", stopLive);
  $("#signin-open").addEventListener("click", () => askLogin("Sign in to this node."));
  $("#signout").addEventListener("click", () => { sessionStorage.removeItem(CRED_KEY); showSignedIn(); });
  $("#login-cancel").addEventListener("click", () => { $("#login").hidden = true; });
  $("#login-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const raw = $("#login-user").value + ":" + $("#login-pass").value;
    // btoa takes Latin-1: encode UTF-8 first.
    sessionStorage.setItem(CRED_KEY, btoa(String.fromCharCode(...new TextEncoder().encode(raw))));
    $("#login-pass").value = "";
    $("#login").hidden = true;
    showSignedIn();
    refreshCluster();
    if (tabHooks[currentTab]) tabHooks[currentTab]();
  });
  showSignedIn();
  const start = location.hash.slice(1);
  showTab(tabHooks[start] || start === "cluster" ? start : "cluster");
  loadApps();
  refreshCluster();
  setInterval(() => { if (!document.hidden) refreshCluster(); }, 2000);
  setInterval(() => { if (currentTab === "sinks") refreshSinks(); }, 2000);
}

init();
