// Rampart live dashboard: one Server-Sent Events stream of state snapshots,
// rendered into tables and two uPlot charts. No inline script (CSP), no
// third-party origin, every value inserted as text.
"use strict";

const csrf = document.querySelector('meta[name="csrf-token"]').content;
// The operations the signed-in role may perform: only their controls are
// shown (the server checks the role again on every call).
const ops = new Set(document.querySelector('meta[name="ops"]').content.split(" "));
const can = (op) => ops.has(op);
const $ = (id) => document.getElementById(id);
let traffic = null, latency = null, last = null, postureVersion = -1;

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

// api calls the admin API with the session (and its CSRF token); it
// resolves to the response's JSON (or {}) and rejects with the problem's
// detail.
function api(method, path, body) {
  const init = { method: method, credentials: "same-origin", headers: { "X-CSRF-Token": csrf } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  return fetch("/api/v1" + path, init).then((r) => r.text().then((t) => {
    const v = t ? JSON.parse(t) : {};
    if (!r.ok) throw new Error(v.detail || v.code || r.status);
    return v;
  }));
}

function say(msg) { text($("op-result"), msg); }

function button(td, label, cls, action) {
  const b = document.createElement("button");
  b.type = "button"; b.textContent = label; b.className = cls;
  b.addEventListener("click", () => {
    b.disabled = true;
    action().then(() => { b.textContent = "done"; }, (e) => { b.disabled = false; b.textContent = "failed"; say(label + ": " + e.message); });
  });
  td.appendChild(b);
}

function loadRevocations() {
  if (!can("revocations.read")) return;
  api("GET", "/revocations").then((v) => fill("revocations", v.revocations || [], (tr, r) => {
    cell(tr, r.jti ? "jti " + r.jti : r.subject + " @ " + r.issuer); cell(tr, utc(r.until));
    const td = cell(tr, "");
    if (!can("tokens.revoke")) return;
    const q = r.jti ? "jti=" + encodeURIComponent(r.jti) : "issuer=" + encodeURIComponent(r.issuer) + "&subject=" + encodeURIComponent(r.subject);
    button(td, "lift", "lift", () => api("DELETE", "/revocations?" + q).then(loadRevocations));
  }), (e) => say("revocations: " + e.message));
}

function loadKeys() {
  if (!can("apikeys.read")) return;
  api("GET", "/apikeys").then((v) => fill("apikeys", v.keys || [], (tr, k) => {
    tr.dataset.prefix = k.prefix;
    cell(tr, k.prefix + (k.disabled ? " (disabled)" : "")); cell(tr, k.consumer); cell(tr, (k.scopes || []).join(" ")); cell(tr, utc(k.expires_at));
    const td = cell(tr, "");
    if (!can("apikeys.manage")) return;
    button(td, k.disabled ? "enable" : "disable", "toggle", () => api("PATCH", "/apikeys/" + k.prefix, { disabled: !k.disabled }).then(loadKeys));
    button(td, "delete", "delete", () => api("DELETE", "/apikeys/" + k.prefix).then(loadKeys));
  }), (e) => say("API keys: " + e.message));
}

// loadPosture shows the running config's audit: the grade of each
// practice, what the last reload changed, the findings that count.
function loadPosture() {
  if (!can("posture.read")) return;
  api("GET", "/posture").then((p) => {
    const r = p.report;
    text($("posture-grade"), r.grade + " (" + r.score + "/100)");
    $("posture-grade").className = "grade grade-" + r.grade;
    fill("posture", r.practices, (tr, g) => {
      cell(tr, g.practice); cell(tr, g.grade, "grade grade-" + g.grade); cell(tr, g.score);
      cell(tr, ["critical", "high", "medium", "low"].filter((k) => g.findings[k]).map((k) => g.findings[k] + " " + k).join(", "));
    });
    const c = p.last_reload;
    text($("posture-change"), !c ? "no reload since start" : "last reload (" + c.trigger + ", " + utc(c.at) + "): " + c.grade_before + " → " + c.grade_after +
      ", " + (c.added || []).length + " new, " + (c.resolved || []).length + " resolved" + (c.lowered ? " · lowered: " + c.lowered.join(", ") : ""));
    fill("posture-findings", (r.findings || []).filter((f) => !f.accepted), (tr, f) => {
      cell(tr, f.severity, "sev-" + f.severity); cell(tr, f.rule); cell(tr, f.file.split("/").pop() + ":" + f.line + " " + f.path); cell(tr, f.message);
    });
  }, (e) => say("posture: " + e.message));
}

function wireForms() {
  for (const el of document.querySelectorAll(".op")) el.hidden = !can(el.dataset.op);
  $("ban-form").addEventListener("submit", (e) => {
    e.preventDefault();
    api("POST", "/bans", { ip: $("ban-ip").value.trim(), for: $("ban-for").value.trim() })
      .then(() => { say("banned " + $("ban-ip").value); $("ban-ip").value = ""; }, (err) => say("ban: " + err.message));
  });
  $("revoke-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const jti = $("rv-jti").value.trim();
    const body = jti ? { jti: jti } : { issuer: $("rv-issuer").value.trim(), subject: $("rv-subject").value.trim() };
    body.for = $("rv-for").value.trim();
    api("POST", "/revocations", body).then(() => { say("revoked"); loadRevocations(); }, (err) => say("revoke: " + err.message));
  });
  $("key-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const scopes = $("key-scopes").value.split(",").map((x) => x.trim()).filter((x) => x);
    const body = { consumer: $("key-consumer").value.trim(), scopes: scopes };
    if ($("key-for").value.trim()) body.for = $("key-for").value.trim();
    api("POST", "/apikeys", body).then((v) => {
      text($("key-value"), v.key); $("key-created").hidden = false; loadKeys();
    }, (err) => say("create key: " + err.message));
  });
  $("reload").addEventListener("click", () => api("POST", "/reload").then(() => say("config reloaded"), (e) => say("reload: " + e.message)));
  $("rotate").addEventListener("click", () => api("POST", "/assertion/rotate").then(
    (v) => say("key " + v.kid + " published; it signs from " + utc(v.signs_from) + ", " + v.current_kid + " until then"), (e) => say("rotate: " + e.message)));
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
  if (s.config.version !== postureVersion) { postureVersion = s.config.version; loadPosture(); }
  text($("config"), "config v" + s.config.version + " · loaded " + utc(s.config.last_reload) + (s.events_dropped ? " · events dropped " + s.events_dropped : ""));
  ensureCharts();
  traffic.setData([live.seconds, live.rps, live.blocked]);
  latency.setData([live.seconds, live.p50_ms, live.p99_ms]);
  const routes = {};
  for (const r of s.routes || []) routes[r.category] = (routes[r.category] || 0) + 1;
  // Categories with routes or traffic; the rest would be rows of zeros.
  fill("categories", (live.categories || []).filter((c) => routes[c.category] || c.requests || c.findings), (tr, c) => {
    tr.dataset.category = c.category;
    cell(tr, c.category); cell(tr, routes[c.category] || 0); cell(tr, c.requests); cell(tr, c.refused); cell(tr, c.findings);
  });
  fill("reasons", live.blocked_by_reason, (tr, r) => { cell(tr, r.key); cell(tr, r.count); });
  fill("clients", live.top_clients, (tr, c) => { cell(tr, c.ip); cell(tr, c.requests); cell(tr, c.refused); });
  fill("offenders", live.top_offenders, (tr, c) => { cell(tr, c.ip); cell(tr, c.refused); cell(tr, c.requests); });
  fill("bans", s.bans, (tr, b) => {
    tr.dataset.ip = b.ip;
    cell(tr, b.ip); cell(tr, b.kind); cell(tr, b.action); cell(tr, utc(b.until));
    const td = cell(tr, "");
    if (can("bans.lift")) button(td, "lift", "lift", () => api("DELETE", "/bans/" + encodeURIComponent(b.ip)));
  });
  fill("upstreams", s.upstreams, (tr, u) => {
    tr.dataset.target = u.name + " " + u.target;
    cell(tr, u.name); cell(tr, u.target);
    cell(tr, u.drained ? "drained" : u.healthy ? "healthy" : "down", u.drained ? "drained" : u.healthy ? "healthy" : "unhealthy");
    const td = cell(tr, "");
    if (can("targets.drain")) {
      button(td, u.drained ? "resume" : "drain", "drain", () => api("PATCH", "/upstreams/" + encodeURIComponent(u.name) + "/targets/" + encodeURIComponent(u.target), { drained: !u.drained }));
    }
  });
  fill("anomalies", (live.events || []).filter((e) => e.event === "abuse.anomaly"), (tr, e) => { cell(tr, utc(e.time)); cell(tr, e.client_ip || "route " + e.route); cell(tr, e.detail); });
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
wireForms();
loadRevocations();
loadKeys();
setInterval(() => { loadRevocations(); loadKeys(); }, 10000);
connect();
