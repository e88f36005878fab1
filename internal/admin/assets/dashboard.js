// Rampart live dashboard: one Server-Sent Events stream of state snapshots,
// rendered into tables and two uPlot charts. No inline script (CSP), no
// third-party origin, every value inserted as text.
"use strict";

const csrf = document.querySelector('meta[name="csrf-token"]').content;
// Only a role that may lift bans gets the button (the server checks the
// role again on every call).
const canLift = document.querySelector('meta[name="can-lift"]').content === "true";
const $ = (id) => document.getElementById(id);
let traffic = null, latency = null, last = null;

function text(el, v) { el.textContent = v; }

// utc shows an RFC 3339 time as the dashboard shows every time: UTC,
// "2026-12-06 10:00:04Z".
function utc(t) { return t ? String(t).replace("T", " ") : ""; }

function cell(tr, v, cls) {
  const td = document.createElement("td");
  td.textContent = v === undefined || v === null ? "" : String(v);
  if (cls) td.className = cls;
  tr.appendChild(td);
  return td;
}

function fill(id, rows, render) {
  const tbody = $(id).querySelector("tbody");
  tbody.replaceChildren();
  for (const r of rows || []) {
    const tr = document.createElement("tr");
    render(tr, r);
    tbody.appendChild(tr);
  }
}

function chartOpts(title, series, width) {
  return {
    title: "", width: width, height: 200,
    scales: { x: { time: true } },
    axes: [{ stroke: "#8a96a3", grid: { stroke: "#26313d" } }, { stroke: "#8a96a3", grid: { stroke: "#26313d" } }],
    series: [{}].concat(series),
  };
}

function ensureCharts() {
  if (traffic) return;
  const w = Math.max(320, $("chart-traffic").parentElement.clientWidth - 24);
  traffic = new uPlot(chartOpts("traffic", [
    { label: "requests/s", stroke: "#58a6ff", width: 2 },
    { label: "blocked/s", stroke: "#f85149", width: 2 },
  ], w), [[], [], []], $("chart-traffic"));
  latency = new uPlot(chartOpts("latency", [
    { label: "p50", stroke: "#3fb950", width: 2 },
    { label: "p99", stroke: "#d29922", width: 2 },
  ], w), [[], [], []], $("chart-latency"));
}

function lift(ip, button) {
  button.disabled = true;
  fetch("/dashboard/api/bans/lift", {
    method: "POST", credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
    body: JSON.stringify({ ip: ip }),
  }).then((r) => { if (!r.ok) { button.disabled = false; button.textContent = "failed"; } else { button.textContent = "lifted"; } });
}

function matches(ev) {
  const route = $("f-route").value.trim(), stage = $("f-stage").value.trim(), client = $("f-client").value.trim();
  return (!route || (ev.route || "").includes(route)) && (!stage || ev.stage === stage) && (!client || (ev.client_ip || "").includes(client));
}

function render(s) {
  last = s;
  const live = s.live, n = live.rps.length;
  // The series are complete seconds: the last one is the latest full second.
  text($("rps"), live.rps[n - 1] ?? 0);
  text($("bps"), live.blocked[n - 1] ?? 0);
  text($("p50"), (live.p50_ms[n - 1] ?? 0).toFixed(2));
  text($("p99"), (live.p99_ms[n - 1] ?? 0).toFixed(2));
  text($("classes"), Object.entries(live.status_classes).filter(([, v]) => v > 0).map(([k, v]) => k + " " + v).join(" · ") || "–");
  text($("nbans"), (s.bans || []).length);
  text($("config"), "config v" + s.config.version + " · loaded " + utc(s.config.last_reload) + (s.events_dropped ? " · events dropped " + s.events_dropped : ""));
  ensureCharts();
  traffic.setData([live.seconds, live.rps, live.blocked]);
  latency.setData([live.seconds, live.p50_ms, live.p99_ms]);
  fill("reasons", live.blocked_by_reason, (tr, r) => { cell(tr, r.key); cell(tr, r.count); });
  fill("clients", live.top_clients, (tr, c) => { cell(tr, c.ip); cell(tr, c.requests); cell(tr, c.refused); });
  fill("offenders", live.top_offenders, (tr, c) => { cell(tr, c.ip); cell(tr, c.refused); cell(tr, c.requests); });
  fill("bans", s.bans, (tr, b) => {
    tr.dataset.ip = b.ip;
    cell(tr, b.ip); cell(tr, b.action); cell(tr, utc(b.until));
    const td = cell(tr, "");
    if (!canLift) return;
    const btn = document.createElement("button");
    btn.type = "button"; btn.textContent = "lift"; btn.className = "lift";
    btn.addEventListener("click", () => lift(b.ip, btn));
    td.appendChild(btn);
  });
  fill("upstreams", s.upstreams, (tr, u) => { cell(tr, u.name); cell(tr, u.target); cell(tr, u.healthy ? "healthy" : "down", u.healthy ? "healthy" : "unhealthy"); });
  fill("anomalies", (live.events || []).filter((e) => e.event === "abuse.anomaly"), (tr, e) => { cell(tr, utc(e.time)); cell(tr, e.client_ip); cell(tr, e.detail); });
  fill("events", (live.events || []).filter(matches), (tr, e) => {
    // Repeats of one event, code, client and route are one row.
    cell(tr, e.count > 1 ? utc(e.first) + " – " + utc(e.time) : utc(e.time)); cell(tr, e.count > 1 ? e.count : "");
    cell(tr, e.event, e.event === "refusal" ? "refusal" : "finding"); cell(tr, e.code); cell(tr, e.route);
    cell(tr, e.client_ip); cell(tr, ((e.method || "") + " " + (e.path || "")).trim()); cell(tr, (e.rules || []).join(",") || e.detail);
  });
}

function connect() {
  const es = new EventSource("/dashboard/api/stream");
  es.addEventListener("state", (m) => {
    $("conn").className = "badge live"; text($("conn"), "live");
    render(JSON.parse(m.data));
  });
  es.onerror = () => {
    $("conn").className = "badge down"; text($("conn"), "reconnecting…");
  };
}

for (const id of ["f-route", "f-stage", "f-client"]) {
  $(id).addEventListener("input", () => { if (last) render(last); });
}
$("logout").addEventListener("click", () => {
  fetch("/dashboard/logout", { method: "POST", credentials: "same-origin", headers: { "X-CSRF-Token": csrf } })
    .then(() => { window.location.href = "/dashboard/"; });
});
connect();
