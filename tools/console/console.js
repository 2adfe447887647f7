// console.js - the outbox console's behaviour: reads and changes the store through the
// admin API (/api/v1/...), renders every value with textContent (never as HTML), keeps the
// bearer token in sessionStorage only (this tab; never a cookie, never the URL).
"use strict";

const TOKEN_KEY = "outbox-admin-token";
const REFRESH_MS = 5000;

const $ = (id) => document.getElementById(id);

// An element with attributes and children (strings become text nodes).
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") e.className = v;
    else if (k.startsWith("data-")) e.setAttribute(k, v);
    else if (k === "onclick") e.addEventListener("click", v);
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function status(msg, isError) {
  const s = $("status");
  s.textContent = msg || "";
  s.className = isError ? "error" : "";
}

class ApiError extends Error {
  constructor(code, msg, body) { super(msg); this.code = code; this.body = body; }
}

// Call the admin API; on 401 ask for a token and fail.
async function api(method, path, body) {
  const headers = {};
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers["Authorization"] = "Bearer " + token;
  const init = { method, headers, cache: "no-store", credentials: "omit" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const r = await fetch(path, init);
  let data = null;
  try { data = await r.json(); } catch (e) { data = null; }
  if (r.status === 401) {
    askToken(token ? "That token was not accepted. Enter a valid admin token." : null);
    throw new ApiError(401, "an admin token is needed", data);
  }
  if (!r.ok) {
    const msg = data && data.error ? data.error : "HTTP " + r.status;
    throw new ApiError(r.status, r.status === 403 ? "not allowed: " + msg : msg, data);
  }
  return data;
}

function askToken(why) {
  $("token-form").hidden = false;
  if (why) $("token-why").textContent = why;
  $("token-input").focus();
}

// ---- formatting ----

function ago(ms) {
  if (ms === null || ms === undefined) return "-";
  let s = Math.round(Math.abs(ms) / 1000);
  if (s < 60) return s + "s";
  const m = Math.floor(s / 60); s %= 60;
  if (m < 60) return m + "m" + (s ? " " + s + "s" : "");
  const h = Math.floor(m / 60);
  if (h < 48) return h + "h " + (m % 60) + "m";
  return Math.floor(h / 24) + "d " + (h % 24) + "h";
}

function when(iso) {
  if (!iso) return "-";
  const t = Date.parse(iso);
  const d = t - Date.now();
  return (d > 500 ? "in " + ago(d) : d < -500 ? ago(d) + " ago" : "now");
}

function lastOutcome(d) {
  if (d.state === "dead" && d.reason) return d.reason;
  if (d.last_status && d.last_error) return "HTTP " + d.last_status + ": " + d.last_error;
  if (d.last_status) return "HTTP " + d.last_status;
  return d.last_error || "-";
}

// The event body as text: pretty JSON, or the bytes decoded as UTF-8.
function bodyText(ev) {
  if ("body" in ev) return JSON.stringify(ev.body, null, 2);
  if (ev.body_base64 !== undefined) {
    const bin = atob(ev.body_base64);
    const bytes = Uint8Array.from(bin, (c) => c.charCodeAt(0));
    return new TextDecoder("utf-8", { fatal: false }).decode(bytes) + "\n\n(not JSON)";
  }
  return "";
}

// ---- sinks ----

let sinkNames = [];

async function loadStats() {
  const st = await api("GET", "/api/v1/stats");
  const tb = $("sinks-body");
  tb.replaceChildren();
  for (const s of st.sinks) {
    tb.append(el("tr", { "data-sink": s.name },
      el("th", { scope: "row" }, s.name, s.configured === false ? " (not configured)" : ""),
      el("td", { class: "num" }, s.pending),
      el("td", { class: "num" }, s.inflight),
      el("td", { class: "num" }, s.in_doubt),
      el("td", { class: "num" }, s.delivered),
      el("td", { class: "num dead-count" },
        s.dead ? el("button", { type: "button", "aria-label": "show " + s.dead + " dead letters of " + s.name,
          onclick: () => { setFilters({ state: "dead", sink: s.name }); loadDeliveries(true); } }, s.dead) : "0"),
      el("td", {}, s.oldest_pending_age_ms === null ? "-" : ago(s.oldest_pending_age_ms)),
      el("td", {}, when(s.next_due))));
  }
  const used = (st.used_bytes / 1048576).toFixed(1), cap = (st.max_size / 1048576).toFixed(0);
  $("store-line").textContent = st.events + " events stored; " + used + " MiB used of " + cap +
    " MiB" + (st.full ? " - FULL: ingest refuses new events" : "") + "; updated " +
    new Date().toLocaleTimeString();
  const names = st.sinks.map((s) => s.name);
  if (names.join("\n") !== sinkNames.join("\n")) {
    sinkNames = names;
    const sel = $("f-sink"), cur = sel.value;
    sel.replaceChildren(el("option", { value: "" }, "any"), ...names.map((n) => el("option", { value: n }, n)));
    sel.value = names.includes(cur) ? cur : "";
  }
}

// ---- deliveries ----

let pages = [null]; // cursors of the pages seen; the last is the current one
let nextCursor = null;

function filters() {
  const f = {};
  for (const k of ["state", "sink", "type", "action", "since", "until"]) {
    const v = $("f-" + k).value.trim();
    if (v) f[k] = v;
  }
  return f;
}

function setFilters(f) {
  for (const k of ["state", "sink", "type", "action", "since", "until"]) $("f-" + k).value = f[k] || "";
}

let listSeq = 0; // answers to an older request are dropped (the filters changed meanwhile)

async function loadDeliveries(reset) {
  if (reset) pages = [null];
  const seq = ++listSeq;
  const q = new URLSearchParams(filters());
  q.set("order", $("f-order").value);
  q.set("limit", $("f-limit").value);
  const cur = pages[pages.length - 1];
  if (cur) q.set("cursor", cur);
  const r = await api("GET", "/api/v1/deliveries?" + q.toString());
  if (seq !== listSeq) return;
  nextCursor = r.next_cursor;
  const tb = $("deliveries-body");
  tb.replaceChildren();
  for (const d of r.deliveries) {
    const actions = el("td", {});
    actions.append(el("button", { type: "button", class: "open-event", "aria-label": "open event " + d.id,
      onclick: () => openEvent(d.id) }, "Open"));
    if (d.state === "dead" || d.state === "delivered")
      actions.append(" ", el("button", { type: "button", class: "replay-delivery",
        "aria-label": "replay event " + d.id + " to " + d.sink,
        onclick: () => replayOne(d.id, d.sink) }, "Replay"));
    actions.dataset.label = "";
    tb.append(el("tr", { "data-event": d.id, "data-sink": d.sink, "data-state": d.state },
      el("td", { class: "num", "data-label": "Event" }, d.id),
      el("td", { "data-label": "Sink" }, d.sink),
      el("td", { class: "state-" + d.state, "data-label": "State" }, d.state + (d.in_doubt ? " (in doubt)" : "")),
      el("td", { "data-label": "Type:action" }, d.type + ":" + d.action),
      el("td", { title: d.received, "data-label": "Received" }, when(d.received)),
      el("td", { class: "num", "data-label": "Attempts" }, d.attempts),
      el("td", { class: "outcome", "data-label": "Last outcome" }, lastOutcome(d)),
      actions));
  }
  if (!r.deliveries.length)
    tb.append(el("tr", {}, el("td", { colspan: "8", class: "muted" }, "no deliveries match")));
  $("page-info").textContent = "page " + pages.length + " (" + r.deliveries.length + " shown" +
    (nextCursor ? ", more" : "") + ")";
  $("next-page").disabled = !nextCursor;
  $("prev-page").disabled = pages.length < 2;
  $("first-page").disabled = pages.length < 2;
}

// ---- one event ----

let openId = null;

let eventSeq = 0;

async function openEvent(id) {
  const seq = ++eventSeq;
  const ev = await api("GET", "/api/v1/events/" + encodeURIComponent(id));
  if (seq !== eventSeq) return;
  openId = ev.id;
  const v = $("event-view");
  v.hidden = false;
  $("event-title").textContent = "Event " + ev.id;
  const meta = $("event-meta");
  meta.replaceChildren();
  for (const [k, val] of [["type", ev.type], ["action", ev.action], ["received", ev.received],
    ["body", ev.body_bytes + " bytes"]])
    meta.append(el("dt", {}, k), el("dd", {}, val));
  $("event-body").textContent = bodyText(ev);
  const box = $("event-deliveries");
  box.replaceChildren();
  for (const d of ev.deliveries) {
    const head = el("h4", {}, d.sink + ": ", el("span", { class: "state-" + d.state, "data-role": "state" }, d.state),
      d.in_doubt ? " (in doubt)" : "");
    const info = el("p", { class: "muted" }, "webhook-id " + d.webhook_id + "; attempts " + d.attempts +
      " (" + d.total_attempts + " in all); replays " + d.replays +
      (d.next_attempt ? "; next " + when(d.next_attempt) : "") + "; last: " + lastOutcome(d));
    const rows = d.history.map((a) => el("tr", {},
      el("td", {}, a.started), el("td", { class: "num" }, a.status === null ? "-" : a.status),
      el("td", { class: "num" }, a.duration_ms + " ms"), el("td", { class: "outcome" }, a.error || "-")));
    const table = el("div", { class: "scroll" }, el("table", {},
      el("caption", { class: "muted" }, "attempts, oldest first"),
      el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "Started"), el("th", { scope: "col" }, "Status"),
        el("th", { scope: "col" }, "Duration"), el("th", { scope: "col" }, "Error"))),
      el("tbody", {}, ...rows)));
    const btns = el("div", { class: "bulk" });
    if (d.state === "dead" || d.state === "delivered")
      btns.append(el("button", { type: "button", "data-action": "replay-delivery", "data-sink": d.sink,
        onclick: () => replayOne(ev.id, d.sink) }, "Replay to " + d.sink));
    if (d.state === "dead")
      btns.append(el("button", { type: "button", class: "danger", "data-action": "purge-delivery",
        "data-sink": d.sink, onclick: () => purgeOne(ev.id, d.sink) }, "Purge this dead letter"));
    box.append(el("div", { class: "delivery", "data-sink": d.sink, "data-state": d.state }, head, info, btns, table));
  }
  v.focus();
}

async function replayOne(id, sink) {
  const r = await api("POST", "/api/v1/events/" + id + "/replay", sink ? { sink } : {});
  status("replayed " + r.replayed + " deliver" + (r.replayed === 1 ? "y" : "ies") + " of event " + id +
    "; outboxd sends within a second");
  await refreshAll();
}

async function purgeOne(id, sink) {
  ask("Delete the dead letter of event " + id + " for " + sink + " for good?", async () => {
    const r = await api("POST", "/api/v1/events/" + id + "/purge", { sink });
    status("purged " + r.purged + " dead letter" + (r.purged === 1 ? "" : "s") + " of event " + id);
    if (openId === id) { $("event-view").hidden = true; openId = null; }
    await refreshAll();
  });
}

// ---- bulk: a dry run first, then a confirmation ----

let confirmAction = null;

function ask(text, action) {
  $("confirm-text").textContent = text;
  confirmAction = action;
  $("confirm").hidden = false;
  $("confirm-yes").focus();
}

async function bulk(kind) {
  const f = filters();
  delete f.state; // dead letters only
  const dry = await api("POST", "/api/v1/" + kind, Object.assign({ dry_run: true }, f));
  if (!dry.matched) { status("no dead letters match these filters"); return; }
  const verb = kind === "replay" ? "Replay" : "Delete for good";
  ask(verb + " " + dry.matched + " dead letter" + (dry.matched === 1 ? "" : "s") + " (" + dry.events +
    " event" + (dry.events === 1 ? "" : "s") + ")" + (dry.more ? " - the first batch of more" : "") + "?",
  async () => {
    const body = Object.assign({}, f);
    if (kind === "purge") body.confirm = true;
    const r = await api("POST", "/api/v1/" + kind, body);
    const n = kind === "replay" ? r.replayed : r.purged;
    status((kind === "replay" ? "replayed " : "purged ") + n + " dead letter" + (n === 1 ? "" : "s") +
      (r.skipped ? "; " + r.skipped + " had changed state meanwhile" : ""));
    await refreshAll();
  });
}

// ---- wiring ----

async function guard(fn) {
  try { await fn(); } catch (e) {
    if (e.code !== 401) status(e.message, true);
  }
}

async function refreshAll() {
  await loadStats();
  await loadDeliveries(false);
  if (openId !== null) await openEvent(openId).catch((e) => {
    if (e.code === 404) { $("event-view").hidden = true; openId = null; } else throw e;
  });
}

function init() {
  $("token-form").addEventListener("submit", (e) => {
    e.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, $("token-input").value.trim());
    $("token-input").value = "";
    $("token-form").hidden = true;
    $("sign-out").hidden = false;
    status("");
    guard(refreshAll);
  });
  $("sign-out").addEventListener("click", () => {
    sessionStorage.removeItem(TOKEN_KEY);
    $("sign-out").hidden = true;
    status("token forgotten");
  });
  $("sign-out").hidden = !sessionStorage.getItem(TOKEN_KEY);
  $("filters").addEventListener("submit", (e) => { e.preventDefault(); guard(() => loadDeliveries(true)); });
  $("refresh").addEventListener("click", () => guard(refreshAll));
  $("next-page").addEventListener("click", () => { if (nextCursor) { pages.push(nextCursor); guard(() => loadDeliveries(false)); } });
  $("prev-page").addEventListener("click", () => { if (pages.length > 1) { pages.pop(); guard(() => loadDeliveries(false)); } });
  $("first-page").addEventListener("click", () => guard(() => loadDeliveries(true)));
  $("bulk-replay").addEventListener("click", () => guard(() => bulk("replay")));
  $("bulk-purge").addEventListener("click", () => guard(() => bulk("purge")));
  $("confirm-yes").addEventListener("click", () => {
    const a = confirmAction;
    confirmAction = null;
    $("confirm").hidden = true;
    if (a) guard(a);
  });
  $("confirm-no").addEventListener("click", () => { confirmAction = null; $("confirm").hidden = true; status("cancelled"); });
  $("event-replay").addEventListener("click", () => { if (openId !== null) guard(() => replayOne(openId, null)); });
  $("event-close").addEventListener("click", () => { $("event-view").hidden = true; openId = null; });
  // Replay/purge buttons inside the lists are wrapped by guard through this handler.
  window.addEventListener("unhandledrejection", (e) => {
    e.preventDefault();
    if (!e.reason || e.reason.code !== 401) status(e.reason ? e.reason.message : "error", true);
  });
  setInterval(() => {
    if ($("auto-refresh").checked && $("token-form").hidden && document.visibilityState === "visible")
      guard(loadStats);
  }, REFRESH_MS);
  guard(refreshAll);
}

document.addEventListener("DOMContentLoaded", init);
