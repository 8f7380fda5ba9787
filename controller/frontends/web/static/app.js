// hemsd dashboard: one page, no build step, no third-party code. Data from the daemon's JSON API
// with the bearer token kept in this browser; live updates from /api/stream (server-sent events
// read through fetch, which, unlike EventSource, can send the Authorization header).
"use strict";

const TOKEN_KEY = "hemsd.token";
const page = { state: null, plan: null, tz: "UTC", currency: "", lastMessage: 0, streaming: false, slowAt: 0, slowReal: 0 };

// ---- token and requests -------------------------------------------------------------------------

function token() {
  const match = /(?:^#|&)token=([^&]+)/.exec(location.hash);
  if (match) {
    localStorage.setItem(TOKEN_KEY, decodeURIComponent(match[1]));
    history.replaceState(null, "", location.pathname);
  }
  return localStorage.getItem(TOKEN_KEY);
}

class Unauthorized extends Error {}

async function api(path, options = {}) {
  const headers = { Authorization: "Bearer " + token(), ...(options.headers || {}) };
  const response = await fetch(path, { ...options, headers, cache: "no-store" });
  if (response.status === 401) throw new Unauthorized("token refused");
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}

function showLogin(message) {
  localStorage.removeItem(TOKEN_KEY);
  page.streaming = false;
  document.getElementById("dashboard").hidden = true;
  document.getElementById("login").hidden = false;
  document.getElementById("login-error").textContent = message || "";
}

// ---- small helpers ------------------------------------------------------------------------------

const $ = (id) => document.getElementById(id);
const kw = (w) => (w == null ? "-" : (Math.abs(w) / 1000).toFixed(2) + " kW");
const num = (v, digits = 2) => (v == null ? "-" : Number(v).toFixed(digits));
const direction = (w, positive, negative) => (Math.abs(w) < 30 ? "idle" : w > 0 ? positive : negative);
const money = (v) => (v == null ? "-" : Number(v).toFixed(2) + " " + page.currency);

const timeOf = clockOf(() => page.tz);  // chart.js

const el = svgEl;  // chart.js

function rows(tbody, entries) {
  tbody.replaceChildren();
  for (const cells of entries) {
    const tr = document.createElement("tr");
    for (const cell of cells) {
      const td = document.createElement("td");
      if (cell instanceof Node) td.appendChild(cell);
      else td.textContent = cell;
      tr.appendChild(td);
    }
    tbody.appendChild(tr);
  }
}

function badge(text, ok) {
  const span = document.createElement("span");
  span.className = "badge " + (ok ? "ok" : "bad");
  span.textContent = text;
  return span;
}

// ---- now: power flows -----------------------------------------------------------------------------

const FLOW_ENDS = { pv: [210, 94], grid: [108, 170], house: [312, 170], battery: [210, 238] };
const HUB = "210,170";

function renderState(state) {
  page.state = state;
  page.tz = state.site.timezone;
  page.currency = state.currency;
  $("site-name").textContent = "· " + state.site.name;
  $("clock").textContent = timeOf(state.time, true);
  const snap = state.snapshot;
  const lines = $("flow-lines");
  lines.replaceChildren();
  if (snap) {
    $("pv-w").textContent = kw(snap.pv_w);
    $("load-w").textContent = kw(snap.load_w);
    $("grid-w").textContent = kw(snap.grid_w);
    $("grid-dir").textContent = direction(snap.grid_w, "importing", "exporting");
    $("battery-w").textContent = kw(snap.battery_w);
    $("battery-dir").textContent = direction(snap.battery_w, "discharging", "charging");
    $("soc").textContent = num(snap.soc_pct, 1) + " %";
    // direction: towards the hub for sources (PV, import, discharge), away for sinks
    const flows = { pv: snap.pv_w, grid: snap.grid_w, battery: snap.battery_w, house: -snap.load_w };
    for (const [name, watts] of Object.entries(flows)) {
      const [x, y] = FLOW_ENDS[name];
      const idle = Math.abs(watts) < 30;
      const path = watts >= 0 ? `M${x},${y} L${HUB}` : `M${HUB} L${x},${y}`;
      const width = idle ? 2 : Math.min(9, 2 + Math.abs(watts) / 1000);
      el("path", { d: path, class: `flow ${name}` + (idle ? " idle" : ""), "stroke-width": width }, lines);
    }
    const age = snap.age_s == null ? "" : `, ${Math.round(snap.age_s)} s old`;
    $("flow-note").textContent = (snap.stale ? "STALE reading" : "reading") + ` at ${timeOf(snap.time)}${age}; inverter mode ${snap.mode || "-"}`;
  } else {
    $("flow-note").textContent = "no reading from the inverter yet";
  }
  const action = state.action;
  $("action").textContent = action
    ? `${action.action}${action.power_w ? " " + kw(action.power_w) : ""} (${action.source})`
    : "-";
  $("action").title = action ? action.reason : "";
  renderHealth(state);
  renderLoads(state.loads || []);
  $("controls-card").hidden = !state.write_enabled;
  if (page.plan) drawPlan();
  // today's account and the sessions: every daemon minute (the demo's clock runs faster), at most every 10 s
  const at = Date.parse(state.time);
  if (at - page.slowAt >= 60e3 && Date.now() - page.slowReal >= 10e3) {
    page.slowAt = at;
    page.slowReal = Date.now();
    refreshSlow().catch(() => {});
  }
}

function renderHealth(state) {
  const h = state.health;
  const stale = h.stale_sources.length ? h.stale_sources.map((s) => badge(s, false)) : [badge("none", true)];
  const staleCell = document.createElement("span");
  staleCell.append(...stale);
  const override = state.override
    ? `${state.override.mode} until ${timeOf(state.override.expires_at)}`
    : "none";
  const price = state.price_now ? `${num(state.price_now.import, 3)} / ${num(state.price_now.export, 3)} ${state.currency}/kWh` : "-";
  rows($("health").tBodies[0], [
    ["Stale sources", staleCell],
    ["Spool depth", String(h.spool_depth)],
    ["Inverter writes today", `${h.inverter_writes_today}${h.inverter_write_cap ? " / " + h.inverter_write_cap : ""}`],
    ["Price now (import / export)", price],
    ["Override", override],
    ["Last error", h.last_error || "-"],
  ]);
}

// Each flexible load: its output, its goal and whether the plan meets it.
function renderLoads(loads) {
  $("loads-card").hidden = !loads.length;
  rows($("loads").tBodies[0], loads.map((load) => {
    const goal = document.createElement("span");
    goal.textContent = load.goal || "no goal";
    if (load.goal) goal.append(" ", load.goal_unreachable ? badge("not reachable", false) : badge("reachable", true));
    goal.title = load.goal_unreachable || load.reason;
    const output = load.reliable ? load.output : `${load.output} (does not follow)`;
    return [load.name, load.enabled ? output : `${output} (disabled)`, goal];
  }));
}

// ---- plan chart -----------------------------------------------------------------------------------

function drawPlan() {
  const svg = $("plan-chart");
  const doc = page.plan;
  const plan = doc && doc.plan;
  if (!plan || !plan.slots.length) {
    svg.replaceChildren();
    el("text", { x: 20, y: 40, class: "axis" }, svg, "no plan yet (prices or a reading missing)");
    $("plan-meta").textContent = "";
    return;
  }
  const slots = plan.slots;
  const kwMax = drawSlotsChart(svg, slots, {
    startSoc: plan.start_soc_pct,
    now: page.state ? Date.parse(page.state.time) : null,
    currency: page.currency,
    timeOf,
    tip: $("plan-tip"),
  });
  drawLoads(svg, slots, doc.loads || []);
  $("plan-meta").textContent = `${slots.length} slots from ${timeOf(slots[0].start)}, made ${timeOf(plan.created_at)}` +
    ` (${doc.trigger}), expected cost ${money(plan.energy_cost)}; forecast lines scaled to ${kwMax.toFixed(1)} kW`;
  const action = page.state && page.state.action;
  const planned = doc.explanation || "";
  $("plan-explanation").textContent = action && action.source !== "plan"
    ? `In force now: ${action.action}${action.power_w ? " " + kw(action.power_w) : ""} (${action.source}: ${action.reason}).` +
      ` The plan takes over again when that ends; it would now do: ${planned}`
    : planned;
}

// Each flexible load a strip along the top of the plan chart: where it runs (boosted), where it is blocked.
function drawLoads(svg, slots, loads) {
  if (!loads.length) return;
  const w = svg.viewBox.baseVal.width;
  const { left, right } = CHART_MARGIN;
  const t0 = Date.parse(slots[0].start);
  const t1 = Date.parse(slots[slots.length - 1].end);
  const x = (t) => left + ((t - t0) / (t1 - t0)) * (w - left - right);
  const group = el("g", { class: "loads" }, svg);
  loads.forEach((load, row) => {
    const y = 4 + row * 9;
    el("text", { x: 2, y: y + 7, class: "axis" }, group, load.name);
    load.states.forEach((state, i) => {
      if (state === "off" || state === "normal" || i >= slots.length) return;
      const x0 = x(Date.parse(slots[i].start));
      const rect = el("rect", { x: x0, y, width: Math.max(1, x(Date.parse(slots[i].end)) - x0), height: 7,
        class: state === "block" ? "load-blocked" : "load-on" }, group);
      el("title", {}, rect, `${load.name} ${state} ${timeOf(slots[i].start)}: ${load.reason}`);
    });
  });
}

// ---- today and sessions (read again as the daemon's time moves on; they change slowly) ---------

async function refreshSlow() {
  const [energy, sessions, bill] = await Promise.all([
    api("/api/analytics/energy"), api("/api/sessions?limit=10"), api("/api/analytics/bill"),
  ]);
  rows($("today").tBodies[0], [
    ["PV / house", `${num(energy.pv_kwh)} / ${num(energy.load_kwh)} kWh`],
    ["Import / export", `${num(energy.import_kwh)} / ${num(energy.export_kwh)} kWh`],
    ["Battery charge / discharge", `${num(energy.charge_kwh)} / ${num(energy.discharge_kwh)} kWh`],
    ["Net cost", money(energy.net_cost)],
    ["Without a battery", money(energy.baseline_cost)],
    ["Saved", money(energy.savings)],
  ]);
  // the month's bill as the supplier settles it, when there is a month of history to settle
  $("month-card").hidden = bill.status !== "REAL";
  if (bill.status === "REAL") {
    rows($("month").tBodies[0], [
      [`Bill so far (${bill.scheme})`, money(bill.total)],
      ["Energy / fees / VAT", `${money(bill.energy)} / ${money(bill.fees)} / ${money(bill.vat)}`],
      ["Capacity / standing", `${money(bill.capacity)} / ${money(bill.standing)}`],
      ["Export paid / deposit used", `${money(bill.export_paid)} / ${money(bill.deposit_used)}`],
      ["Import peak", `${num(bill.peak_kw, 2)} kW`],
    ]);
  }
  if (!sessions.sessions.length) return rows($("sessions").tBodies[0], [["none yet"]]);
  rows($("sessions").tBodies[0], sessions.sessions.map((s) => [
    timeOf(s.start, true), s.kind, s.trigger, `${num(s.soc_start, 0)} → ${s.soc_end == null ? "…" : num(s.soc_end, 0)} %`,
    num(s.grid_kwh), num(s.pv_kwh), num(s.out_kwh), s.avg_price == null ? "-" : num(s.avg_price, 3), money(s.cost), s.status,
  ]));
}

// ---- live stream ----------------------------------------------------------------------------------

function handleEvent(name, data) {
  page.lastMessage = Date.now();
  if (name === "state") renderState(JSON.parse(data));
  else if (name === "plan") {
    page.plan = JSON.parse(data);
    drawPlan();
  }
}

async function stream() {
  const response = await fetch("/api/stream", { headers: { Authorization: "Bearer " + token() }, cache: "no-store" });
  if (response.status === 401) throw new Unauthorized("token refused");
  if (!response.ok || !response.body) throw new Error("stream: HTTP " + response.status);
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let name = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event: ")) name = line.slice(7);
        else if (line.startsWith("data: ")) data.push(line.slice(6));
      }
      if (data.length) handleEvent(name, data.join("\n"));
      else page.lastMessage = Date.now(); // keep-alive comment
    }
  }
}

async function keepStreaming() {
  page.streaming = true;
  while (page.streaming) {
    try {
      await stream();
    } catch (error) {
      if (error instanceof Unauthorized) return showLogin("The token was refused.");
    }
    await new Promise((resolve) => setTimeout(resolve, 3000));
  }
}

function watchLive() {
  const live = page.streaming && Date.now() - page.lastMessage < 40e3;
  $("live").textContent = live ? "live" : "offline";
  $("live").className = "pill " + (live ? "live" : "offline");
}

// ---- controls (only when the daemon allows writes) ----------------------------------------------

async function control(path, options) {
  try {
    const result = await api(path, { headers: { "Content-Type": "application/json" }, ...options });
    $("control-result").textContent = result.applied;
  } catch (error) {
    $("control-result").textContent = "refused: " + error.message;
  }
}

// ---- start ----------------------------------------------------------------------------------------

async function start() {
  if (!token()) return showLogin("");
  try {
    const [state, plan] = await Promise.all([api("/api/state"), api("/api/plan")]);
    document.getElementById("login").hidden = true;
    $("dashboard").hidden = false;
    page.plan = plan;
    renderState(state);
    performance.mark("hemsd-first-render"); // read by bench/bench_web.py
  } catch (error) {
    if (error instanceof Unauthorized) return showLogin("The token was refused.");
    $("flow-note").textContent = "could not load: " + error.message;
    $("dashboard").hidden = false;
  }
  keepStreaming();
}

let resizeTimer = 0;
window.addEventListener("resize", () => {
  clearTimeout(resizeTimer);
  resizeTimer = setTimeout(() => { if (page.plan) drawPlan(); }, 100);
});

document.addEventListener("DOMContentLoaded", () => {
  drawSlotsLegend($("plan-legend"), { soc: "planned SoC", pv: "PV forecast", load: "load forecast" });
  setInterval(watchLive, 1000);
  $("login").addEventListener("submit", (event) => {
    event.preventDefault();
    localStorage.setItem(TOKEN_KEY, $("token-input").value.trim());
    start();
  });
  $("mode-apply").addEventListener("click", () =>
    control("/api/control/mode", { method: "POST", body: JSON.stringify({ mode: $("mode-select").value }) }));
  $("replan").addEventListener("click", () => control("/api/control/replan", { method: "POST" }));
  start();
});
