// Sluice's web UI: plain JavaScript over the REST API, served by the same
// binary. Every text from the server goes in through textContent, never as
// HTML. Changes carry the session's CSRF token.
"use strict";

const state = { user: null, role: null, csrf: null, timer: null };
const ROLES = ["viewer", "operator", "admin"];

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else if (k === "style") Object.assign(el.style, v); // CSSOM: allowed by the CSP, unlike style=""
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

class ApiError extends Error {
  constructor(status, code, message) { super(message); this.status = status; this.code = code; }
}

async function api(method, path, body) {
  const headers = { "accept": "application/json" };
  if (body !== undefined) headers["content-type"] = "application/json";
  if (method !== "GET" && state.csrf) headers["x-csrf-token"] = state.csrf;
  const res = await fetch(path, {
    method, headers, credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (res.status === 204) return null;
  const data = await res.json().catch(() => ({}));
  if (!res.ok) {
    const e = data.error || {};
    if (res.status === 401 && path !== "/api/auth/login") showSignIn();
    throw new ApiError(res.status, e.code || "error", e.message || res.statusText);
  }
  return data;
}

function can(role) { return ROLES.indexOf(state.role) >= ROLES.indexOf(role); }

function toast(text) {
  const t = document.getElementById("toast");
  t.textContent = text;
  t.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { t.hidden = true; }, 4000);
}

function fail(e) { toast(e.message || String(e)); }

function ms(n) {
  if (n === null || n === undefined) return "";
  if (n < 1000) return n + " ms";
  const s = n / 1000;
  if (s < 120) return s.toFixed(1) + " s";
  const m = Math.floor(s / 60);
  return m < 120 ? `${m} min ${Math.round(s % 60)} s` : `${Math.floor(m / 60)} h ${m % 60} min`;
}

function when(t) { return t ? new Date(t).toLocaleString() : ""; }
function status(s) { return h("span", { class: "status " + (s || ""), "data-status": s || "" }, s || "—"); }
function number(n) { return n === undefined || n === null ? "" : Number(n).toLocaleString(); }
function bytes(n) {
  if (n === undefined || n === null) return "";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0; let v = Number(n);
  while (v >= 1000 && i < units.length - 1) { v /= 1000; i++; }
  return v.toFixed(i ? 1 : 0) + " " + units[i];
}

function stopPolling() { state.following = null; if (state.timer) { clearTimeout(state.timer); state.timer = null; } }
function poll(fn, every) { stopPolling(); state.timer = setTimeout(async () => { await fn(); }, every); }

// --- sign in and out ---

function showSignIn() {
  stopPolling();
  state.user = state.role = state.csrf = null;
  document.getElementById("top").hidden = true;
  document.getElementById("view").replaceChildren();
  document.getElementById("sign-in").hidden = false;
  document.getElementById("user").focus();
}

async function signIn(event) {
  event.preventDefault();
  const error = document.getElementById("sign-in-error");
  error.textContent = "";
  try {
    const me = await api("POST", "/api/auth/login", {
      user: document.getElementById("user").value,
      password: document.getElementById("password").value,
    });
    document.getElementById("password").value = "";
    signedIn(me);
  } catch (e) {
    error.textContent = e.message;
  }
}

function signedIn(me) {
  state.user = me.user; state.role = me.role; state.csrf = me.csrf_token;
  document.getElementById("sign-in").hidden = true;
  document.getElementById("top").hidden = false;
  document.getElementById("who").textContent = `${me.user} (${me.role})`;
  route();
}

async function signOut() {
  try { await api("POST", "/api/auth/logout"); } catch (e) { /* signed out either way */ }
  showSignIn();
}

// --- views ---

async function workflowsView(view) {
  const page = await api("GET", "/api/workflows?limit=500");
  const rows = page.items.map((w) => h("tr", { "data-workflow": `${w.project}/${w.name}` },
    h("td", {}, w.project), h("td", {}, h("a", { href: `#/attempts?project=${encodeURIComponent(w.project)}&workflow=${encodeURIComponent(w.name)}` }, w.name)),
    h("td", {}, scheduleText(w.schedule)), h("td", {}, w.timezone),
    h("td", {}, w.schedule_enabled === false ? h("span", { class: "muted" }, "disabled") : when(w.next_run_time)),
    h("td", { class: "actions" }, workflowActions(w))));
  view.replaceChildren(h("div", { class: "card" },
    h("h1", {}, "Workflows"),
    rows.length ? h("table", {}, h("thead", {}, h("tr", {}, ["Project", "Workflow", "Schedule", "Zone", "Next run", ""].map((t) => h("th", {}, t)))), h("tbody", {}, rows))
      : h("p", { class: "muted" }, "No workflows yet: push a project with `sluice push`.")));
}

function scheduleText(s) {
  if (!s) return "—";
  return s.cron ? `cron ${s.cron}` : s.daily ? `daily ${s.daily}` : s.hourly ? `hourly ${s.hourly}` : s.minutes_interval ? `every ${s.minutes_interval} min` : JSON.stringify(s);
}

function workflowActions(w) {
  if (!can("operator")) return [];
  const path = `/api/schedules/${encodeURIComponent(w.project)}/${encodeURIComponent(w.name)}`;
  const out = [h("button", { class: "primary", "data-action": "start", onclick: async () => {
    try {
      const a = await api("POST", "/api/attempts", { project: w.project, workflow: w.name });
      location.hash = `#/attempts/${a.id}`;
    } catch (e) { fail(e); }
  } }, "Start")];
  if (w.schedule_enabled !== null && w.schedule_enabled !== undefined) {
    out.push(h("button", { onclick: async () => {
      try { await api("POST", `${path}/${w.schedule_enabled ? "disable" : "enable"}`); route(); } catch (e) { fail(e); }
    } }, w.schedule_enabled ? "Disable" : "Enable"));
    out.push(h("button", { onclick: async () => {
      const from = prompt("Backfill from (YYYY-MM-DD, inclusive)");
      const to = from && prompt("to (YYYY-MM-DD, exclusive)");
      if (!to) return;
      try {
        const r = await api("POST", `${path}/backfill`, { from, to });
        toast(`backfill: ${r.started.length} sessions started, ${r.existed} had run`);
      } catch (e) { fail(e); }
    } }, "Backfill"));
    out.push(h("button", { onclick: async () => {
      const until = prompt("Skip runs before (YYYY-MM-DD or RFC 3339)");
      if (!until) return;
      try { await api("POST", `${path}/skip`, { until }); route(); } catch (e) { fail(e); }
    } }, "Skip"));
  }
  return out;
}

async function attemptsView(view, query) {
  const params = new URLSearchParams(query);
  params.set("limit", "50");
  const table = h("tbody");
  const more = h("button", {}, "More");
  const load = async (cursor) => {
    if (cursor) params.set("cursor", cursor);
    const page = await api("GET", "/api/attempts?" + params.toString());
    for (const a of page.items) {
      table.append(h("tr", { "data-attempt": a.id },
        h("td", {}, h("a", { href: `#/attempts/${a.id}` }, "#" + a.id)),
        h("td", {}, status(a.status)), h("td", {}, `${a.project}/${a.workflow}`),
        h("td", {}, when(a.session_time)), h("td", {}, when(a.created_at)),
        h("td", { class: "num" }, ms(a.duration_ms))));
    }
    more.hidden = !page.next_cursor;
    more.onclick = () => load(page.next_cursor).catch(fail);
  };
  await load();
  const filter = [params.get("project"), params.get("workflow")].filter(Boolean).join("/");
  view.replaceChildren(h("div", { class: "card" },
    h("h1", {}, "Attempts", filter ? ` of ${filter}` : ""),
    h("table", {}, h("thead", {}, h("tr", {}, ["", "Status", "Workflow", "Session", "Started", "Took"].map((t) => h("th", {}, t)))), table),
    more));
  if (!filter) poll(() => route(), 10000);
}

function depthOf(task, byId) {
  let d = 0; let p = task.parent_id;
  while (p && byId[p] && d < 20) { d++; p = byId[p].parent_id; }
  return d;
}

async function attemptView(view, id) {
  const data = await api("GET", `/api/attempts/${id}/tasks`);
  const a = data.attempt;
  const byId = Object.fromEntries(data.tasks.map((t) => [t.id, t]));
  const start = Date.parse(a.created_at);
  const end = a.finished_at ? Date.parse(a.finished_at) : Date.now();
  const span = Math.max(end - start, 1);
  const logBox = h("pre", { class: "log", id: "log", hidden: true });
  const logTitle = h("h2", { id: "log-title" });
  const rows = data.tasks.map((t) => {
    const s = t.summary || {};
    const left = t.started_at ? (Date.parse(t.started_at) - start) / span * 100 : 0;
    const right = t.finished_at ? Date.parse(t.finished_at) : (t.started_at ? Date.now() : null);
    const width = right && t.started_at ? Math.max((right - Date.parse(t.started_at)) / span * 100, 0.5) : 0;
    return h("tr", { class: "task", "data-task": t.name, "data-state": t.state, onclick: () => showLog(t, logTitle, logBox) },
      h("td", { style: { paddingLeft: `${8 + 16 * depthOf(t, byId)}px` } }, t.name.split("+").filter(Boolean).pop() || t.name),
      h("td", {}, t.kind), h("td", {}, status(t.state)),
      h("td", { class: "num" }, t.retries || ""),
      h("td", { class: "num" }, ms(t.duration_ms)),
      h("td", { class: "num" }, number(s.rows)), h("td", { class: "num" }, bytes(s.bytes_out)),
      h("td", { class: "num" }, s.rows_per_second ? number(s.rows_per_second) : ""),
      h("td", {}, h("div", { class: "bar" }, width ? h("span", { class: t.state, style: { left: `${left}%`, width: `${Math.min(width, 100 - left)}%` } }) : null)),
      h("td", { class: "error" }, t.state === "failed" ? (t.error || "") : ""));
  });
  const actions = [];
  if (can("operator")) {
    if (a.status === "running") {
      actions.push(h("button", { "data-action": "kill", onclick: async () => {
        if (!confirm(`Kill attempt ${a.id}?`)) return;
        try { await api("POST", `/api/attempts/${a.id}/kill`); route(); } catch (e) { fail(e); }
      } }, "Kill"));
    } else {
      const retry = (resume) => async () => {
        try {
          const n = await api("POST", `/api/attempts/${a.id}/retry`, { resume });
          location.hash = `#/attempts/${n.id}`;
        } catch (e) { fail(e); }
      };
      if (a.status !== "succeeded") actions.push(h("button", { class: "primary", "data-action": "retry-failed", onclick: retry(true) }, "Retry from failed task"));
      actions.push(h("button", { "data-action": "retry-all", onclick: retry(false) }, "Retry all"));
    }
  }
  view.replaceChildren(
    h("div", { class: "card" },
      h("h1", {}, `Attempt #${a.id} `, status(a.status)),
      h("p", {}, `${a.project}/${a.workflow} · session ${when(a.session_time)} · started ${when(a.created_at)}`, a.duration_ms !== null ? ` · took ${ms(a.duration_ms)}` : ""),
      h("p", { class: "actions" }, actions),
      h("table", {}, h("thead", {}, h("tr", {}, ["Task", "Kind", "State", "Retries", "Took", "Rows", "Bytes", "Rows/s", "Timeline", ""].map((t) => h("th", {}, t)))), h("tbody", {}, rows))),
    h("div", { class: "card" }, logTitle, logBox));
  if (a.status === "running") poll(() => route(), 2000);
}

async function showLog(task, title, box) {
  stopPolling();
  title.textContent = `Log of ${task.name}`;
  box.hidden = false;
  box.textContent = "";
  let offset = 0;
  // Long polling: the server holds the request until more is written (or
  // 10 s pass), so lines show as they come. A newer log view ends this one.
  const mine = (state.following = {});
  const follow = async () => {
    if (state.following !== mine) return;
    try {
      const page = await api("GET", `/api/tasks/${task.id}/log?offset=${offset}&wait_ms=10000`);
      if (state.following !== mine) return;
      box.append(page.text);
      offset = page.next_offset;
      box.scrollTop = box.scrollHeight;
      if (!page.complete) state.timer = setTimeout(follow, 0);
    } catch (e) {
      box.append(`\n(${e.message})`);
    }
  };
  await follow();
}

async function fleetView(view) {
  const [workers, queue, plugins] = await Promise.all([
    api("GET", "/api/workers"), api("GET", "/api/queue"), api("GET", "/api/plugins?limit=500")]);
  view.replaceChildren(
    h("div", { class: "card" }, h("h1", {}, "Queue"),
      h("p", { id: "queue-depth" }, `${queue.ready} ready`, queue.ready ? `, oldest waiting ${ms(queue.oldest_ready_seconds * 1000)}` : ""),
      h("p", { class: "muted" }, Object.entries(queue.by_state).map(([k, v]) => `${k}: ${v}`).join(" · "))),
    h("div", { class: "card" }, h("h1", {}, "Workers"),
      h("table", {}, h("thead", {}, h("tr", {}, ["Worker", "Host", "Roles", "Heartbeat", "Running"].map((t) => h("th", {}, t)))),
        h("tbody", {}, workers.map((w) => h("tr", { "data-worker": w.id },
          h("td", {}, w.id, w.stopping ? h("span", { class: "muted" }, " (stopping)") : ""), h("td", {}, w.host), h("td", {}, w.roles),
          h("td", {}, `${w.heartbeat_age_seconds.toFixed(0)} s ago`),
          h("td", {}, w.running.map((t) => h("div", {}, h("a", { href: `#/attempts/${t.attempt_id}` }, t.name))))))))),
    h("div", { class: "card" }, h("h1", {}, "Plugins"),
      h("table", { id: "plugins" }, h("thead", {}, h("tr", {}, ["Plugin", "Kind", "Version", "Capabilities", "About"].map((t) => h("th", {}, t)))),
        h("tbody", {}, plugins.items.map((p) => h("tr", {},
          h("td", {}, p.name || p.file), h("td", {}, p.kind || ""), h("td", {}, p.version || ""),
          h("td", {}, (p.capabilities || []).join(", ")), h("td", {}, p.error ? `does not load: ${p.error}` : p.description || "")))))));
  poll(() => route(), 5000);
}

async function route() {
  stopPolling();
  if (!state.user) return;
  const [path, query] = (location.hash.slice(1) || "/workflows").split("?");
  const parts = path.split("/").filter(Boolean);
  for (const a of document.querySelectorAll("[data-nav]")) a.classList.toggle("active", a.dataset.nav === parts[0]);
  const view = document.getElementById("view");
  try {
    if (parts[0] === "attempts" && parts[1]) await attemptView(view, Number(parts[1]));
    else if (parts[0] === "attempts") await attemptsView(view, query || "");
    else if (parts[0] === "fleet") await fleetView(view);
    else await workflowsView(view);
  } catch (e) {
    if (e.status !== 401) view.replaceChildren(h("div", { class: "card error" }, e.message));
  }
}

document.getElementById("sign-in").addEventListener("submit", signIn);
document.getElementById("sign-out").addEventListener("click", signOut);
window.addEventListener("hashchange", route);
api("GET", "/api/auth/me").then(signedIn).catch(() => showSignIn());
