// The agent page: polls this agent's JSON endpoints and /metrics every REFRESH_MS, and
// follows the KV over the server-sent events of /v1/kv/watch. Everything is built with
// DOM calls and textContent (names and keys are data, never markup). The graph's SVG
// elements carry data- attributes (ids, counts) so a test can read the drawing back.
"use strict";

const REFRESH_MS = 1500;
const KV_ROWS_SHOWN = 500;
const SVG_NS = "http://www.w3.org/2000/svg";
const W = 800, H = 420, MARGIN = 30;

const $ = (id) => document.getElementById(id);

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v; else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c);
  return e;
}

function svg(tag, attrs) {
  const e = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  return e;
}

async function getJson(path) {
  const r = await fetch(path, { cache: "no-store" });
  if (!r.ok) throw new Error(`${path}: HTTP ${r.status}`);
  return r.json();
}

async function getText(path) {
  const r = await fetch(path, { cache: "no-store" });
  if (!r.ok) throw new Error(`${path}: HTTP ${r.status}`);
  return r.text();
}

const hops = (n) => (n === 1 ? "1 hop" : `${n} hops`);

// ---- live figures from /metrics ----

// Unlabelled samples of an OpenMetrics text: name -> value.
function parseMetrics(text) {
  const out = new Map();
  for (const line of text.split("\n")) {
    if (line.startsWith("#") || line.includes("{")) continue;
    const [name, value] = line.split(" ");
    if (value !== undefined) out.set(name, Number(value));
  }
  return out;
}

const GAUGES = [
  ["hawser_members", "members"],
  ["hawser_reachable", "reachable"],
  ["hawser_links", "links"],
  ["hawser_active_view", "active view"],
  ["hawser_passive_view", "passive view"],
  ["hawser_kv_keys", "KV keys"],
];
const RATES = [
  ["hawser_frames_in_total", "frames in /s"],
  ["hawser_frames_out_total", "frames out /s"],
  ["hawser_bytes_in_total", "bytes in /s"],
  ["hawser_bytes_out_total", "bytes out /s"],
  ["hawser_kv_ops_total", "KV ops /s"],
];
let lastMetrics = null;

function renderFigures(metrics, at) {
  const box = $("figures");
  box.replaceChildren();
  const figure = (key, label, value) =>
    box.append(el("div", { class: "figure", "data-metric": key }, el("b", {}, value), el("span", {}, label)));
  for (const [name, label] of GAUGES) {
    if (metrics.has(name)) figure(name, label, String(metrics.get(name)));
  }
  for (const [name, label] of RATES) {
    if (!metrics.has(name)) continue;
    let value = "…";
    if (lastMetrics && lastMetrics.metrics.has(name) && at > lastMetrics.at) {
      const rate = (metrics.get(name) - lastMetrics.metrics.get(name)) / ((at - lastMetrics.at) / 1000);
      value = rate >= 100 ? Math.round(rate).toLocaleString("en") : rate.toFixed(1);
    }
    figure(name, label, value);
  }
  lastMetrics = { metrics, at };
}

// ---- the graph ----

let positions = new Map(); // id -> {x, y}, kept across refreshes so the drawing holds still
let layoutKey = "";

// A force-directed layout (Fruchterman-Reingold), started from the last positions (new
// nodes on a circle, in id order), so it is stable from one refresh to the next.
function layout(nodes, edges) {
  const n = nodes.length;
  const index = new Map(nodes.map((d, i) => [d.id, i]));
  const k = Math.sqrt(((W - 2 * MARGIN) * (H - 2 * MARGIN)) / Math.max(n, 1)) * 0.75;
  const pos = nodes.map((d, i) => {
    const old = positions.get(d.id);
    if (old) return { x: old.x, y: old.y };
    const a = (2 * Math.PI * i) / Math.max(n, 1);
    return { x: W / 2 + (W / 3) * Math.cos(a), y: H / 2 + (H / 3) * Math.sin(a) };
  });
  const iterations = n > 300 ? 40 : 200;
  let t = W / 10;
  for (let it = 0; it < iterations; it++) {
    const disp = pos.map(() => ({ x: 0, y: 0 }));
    for (let i = 0; i < n; i++) {
      for (let j = i + 1; j < n; j++) {
        let dx = pos[i].x - pos[j].x, dy = pos[i].y - pos[j].y;
        let d = Math.hypot(dx, dy);
        if (d < 0.01) { dx = 0.01 * (i - j); dy = 0.01; d = Math.hypot(dx, dy); }
        const f = (k * k) / d;
        disp[i].x += (dx / d) * f; disp[i].y += (dy / d) * f;
        disp[j].x -= (dx / d) * f; disp[j].y -= (dy / d) * f;
      }
    }
    for (const e of edges) {
      const i = index.get(e.a), j = index.get(e.b);
      const dx = pos[i].x - pos[j].x, dy = pos[i].y - pos[j].y;
      const d = Math.max(Math.hypot(dx, dy), 0.01);
      const f = (d * d) / k;
      disp[i].x -= (dx / d) * f; disp[i].y -= (dy / d) * f;
      disp[j].x += (dx / d) * f; disp[j].y += (dy / d) * f;
    }
    for (let i = 0; i < n; i++) {
      // A pull to the centre keeps separate components on the canvas.
      disp[i].x += (W / 2 - pos[i].x) * 0.05 * k / 10;
      disp[i].y += (H / 2 - pos[i].y) * 0.05 * k / 10;
      const d = Math.max(Math.hypot(disp[i].x, disp[i].y), 0.01);
      const step = Math.min(d, t);
      pos[i].x = Math.min(W - MARGIN, Math.max(MARGIN, pos[i].x + (disp[i].x / d) * step));
      pos[i].y = Math.min(H - MARGIN, Math.max(MARGIN, pos[i].y + (disp[i].y / d) * step));
    }
    t = Math.max(t * 0.97, 1);
  }
  fit(pos);
  positions = new Map(nodes.map((d, i) => [d.id, pos[i]]));
}

// Scale and centre the drawing to fill the canvas (at most 2.5 times, so a small
// graph does not sprawl).
function fit(pos) {
  if (!pos.length) return;
  const xs = pos.map((p) => p.x), ys = pos.map((p) => p.y);
  const [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  const scale = Math.min(2.5, (W - 2 * MARGIN) / Math.max(x1 - x0, 1), (H - 2 * MARGIN) / Math.max(y1 - y0, 1));
  for (const p of pos) {
    p.x = W / 2 + (p.x - (x0 + x1) / 2) * scale;
    p.y = H / 2 + (p.y - (y0 + y1) / 2) * scale;
  }
}

function renderGraph(graph, overlay) {
  const { nodes, edges } = graph;
  const key = nodes.map((d) => d.id).join() + "|" + edges.map((e) => e.a + e.b).join();
  if (key !== layoutKey) {
    layout(nodes, edges);
    layoutKey = key;
  }
  const active = new Set(overlay.active.map((p) => p.id));
  const passive = new Set(overlay.passive.map((p) => p.id));
  const parent = new Map(nodes.map((d) => [d.id, d.parent]));
  const label = (d) => d.name || d.id.slice(0, 8);
  const root = $("graph");
  const lines = edges.map((e) => {
    const a = positions.get(e.a), b = positions.get(e.b);
    const tree = parent.get(e.a) === e.b || parent.get(e.b) === e.a;
    const line = svg("line", {
      class: "edge" + (tree ? " tree" : "") + (e.mutual ? "" : " oneway"),
      x1: a.x.toFixed(1), y1: a.y.toFixed(1), x2: b.x.toFixed(1), y2: b.y.toFixed(1),
      "data-a": e.a, "data-b": e.b, "data-mutual": e.mutual, "data-tree": tree,
    });
    line.append(svg("title"));
    line.firstChild.textContent = `${e.a} — ${e.b}${e.mutual ? "" : " (listed by one end)"}`;
    return line;
  });
  const circles = nodes.map((d) => {
    const p = positions.get(d.id);
    const role = d.id === graph.self ? "self" : !d.reachable ? "unreachable"
      : active.has(d.id) ? "active" : passive.has(d.id) ? "passive" : "other";
    const g = svg("g", {
      class: "node " + role, transform: `translate(${p.x.toFixed(1)},${p.y.toFixed(1)})`,
      "data-id": d.id, "data-name": d.name || "", "data-reachable": d.reachable,
      "data-distance": d.distance ?? "",
    });
    const title = svg("title");
    title.textContent = `${label(d)} ${d.id}, ` + (d.reachable ? hops(d.distance) : "unreachable");
    const text = svg("text", { x: 11, y: 4 });
    text.textContent = label(d);
    g.append(svg("circle", { r: nodes.length > 200 ? 4 : 8 }), text, title);
    return g;
  });
  root.replaceChildren(...lines, ...circles);
  root.dataset.nodes = nodes.length;
  root.dataset.edges = edges.length;
  const down = nodes.filter((d) => !d.reachable).length;
  $("graph-count").textContent =
    `${nodes.length} nodes, ${edges.length} edges` + (down ? `, ${down} unreachable` : "");
}

// ---- members, tree ----

function renderMembers(members, overlay) {
  const active = new Set(overlay.active.map((p) => p.id));
  const passive = new Set(overlay.passive.map((p) => p.id));
  const rows = members.members.map((m) => {
    const view = m.name === members.self ? "self" : active.has(m.id) ? "active"
      : passive.has(m.id) ? "passive" : "";
    return el("tr", { class: m.reachable ? "" : "down", "data-id": m.id },
      el("td", {}, m.name), el("td", { class: "mono" }, m.id), el("td", { class: "mono" }, m.addr),
      el("td", {}, m.reachable ? "yes" : "no"), el("td", {}, m.distance ?? "—"), el("td", {}, view));
  });
  $("members").tBodies[0].replaceChildren(...rows);
  const up = members.members.filter((m) => m.reachable).length;
  $("members-count").textContent = `${up} of ${members.members.length} reachable`;
}

function renderTree(graph) {
  const children = new Map();
  for (const d of graph.nodes) {
    if (d.parent) {
      if (!children.has(d.parent)) children.set(d.parent, []);
      children.get(d.parent).push(d);
    }
  }
  const name = (d) => d.name || d.id.slice(0, 8);
  const item = (d) => {
    const li = el("li", { "data-id": d.id, "data-distance": d.distance },
      `${name(d)} `, el("small", {}, d.distance === 0 ? "(this node)" : hops(d.distance)));
    const kids = (children.get(d.id) || []).sort((a, b) => name(a).localeCompare(name(b)));
    if (kids.length) li.append(el("ul", {}, ...kids.map(item)));
    return li;
  };
  const me = graph.nodes.find((d) => d.id === graph.self);
  $("tree").replaceChildren(...(me ? [item(me)] : []));
  const lost = graph.nodes.filter((d) => !d.reachable).map(name);
  $("unreached").textContent = lost.length ? `not reachable: ${lost.join(", ")}` : "";
}

// ---- polling ----

async function refresh() {
  try {
    const [self, members, overlay, graph, metrics] = await Promise.all([
      getJson("/v1/self"), getJson("/v1/members"), getJson("/v1/overlay"),
      getJson("/v1/graph"), getText("/metrics"),
    ]);
    $("node-name").textContent = self.name;
    document.title = `hawser ${self.name}`;
    $("node-facts").textContent =
      `${self.id} · peers at ${self.addr} · admin ${self.admin} · v${self.version} · up ${self.uptime_secs} s`;
    renderFigures(parseMetrics(metrics), Date.now());
    renderGraph(graph, overlay);
    renderMembers(members, overlay);
    renderTree(graph);
    $("status").textContent = `updated ${new Date().toLocaleTimeString()}`;
    $("status").className = "status";
    document.body.dataset.refreshes = Number(document.body.dataset.refreshes) + 1;
  } catch (e) {
    $("status").textContent = `agent not answering (${e.message}); retrying`;
    $("status").className = "status error";
  }
  setTimeout(refresh, REFRESH_MS);
}

// ---- the KV, live ----

const kv = new Map(); // key -> value JSON text
const fresh = new Map(); // key -> time it last changed here

function renderKv() {
  const keys = [...kv.keys()].sort();
  const now = Date.now();
  const rows = keys.slice(0, KV_ROWS_SHOWN).map((k) =>
    el("tr", { "data-key": k, class: now - (fresh.get(k) || 0) < 2000 ? "fresh" : "" },
      el("td", { class: "mono" }, k), el("td", { class: "mono", "data-value": "" }, kv.get(k))));
  $("kv").tBodies[0].replaceChildren(...rows);
  $("kv-more").textContent = keys.length > KV_ROWS_SHOWN ? `and ${keys.length - KV_ROWS_SHOWN} more keys` : "";
}

function watchKv() {
  const source = new EventSource("/v1/kv/watch?prefix=");
  const state = (text) => { $("kv-state").textContent = text; };
  const take = (ev, isChange) => {
    const { key, value } = JSON.parse(ev.data);
    kv.set(key, JSON.stringify(value));
    if (isChange) fresh.set(key, Date.now());
  };
  source.addEventListener("open", () => { kv.clear(); state("loading…"); });
  source.addEventListener("snapshot", (ev) => take(ev, false));
  source.addEventListener("ready", () => { state("live (server-sent events)"); renderKv(); });
  source.addEventListener("change", (ev) => { take(ev, true); renderKv(); });
  source.addEventListener("end", (ev) => {
    source.close();
    state(`stream ended (${JSON.parse(ev.data).reason}); watching again`);
    setTimeout(watchKv, 2000);
  });
  source.addEventListener("error", () => state("disconnected; reconnecting…"));
}

refresh();
watchKv();
// Let the "just changed" highlight fade.
setInterval(() => {
  const before = fresh.size;
  for (const [k, t] of fresh) if (Date.now() - t >= 2000) fresh.delete(k);
  if (fresh.size !== before) renderKv();
}, 500);
