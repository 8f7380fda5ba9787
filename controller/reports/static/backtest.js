// The backtest report (controller/reports/html.py): a week's chart and the money per month.
"use strict";

const data = JSON.parse(document.getElementById("report-data").textContent);
const money = (v) => Number(v).toFixed(2);

const timeOf = clockOf(() => data.timezone);  // chart.js

function fill(tbody, rows) {
  tbody.replaceChildren();
  for (const cells of rows) {
    const tr = document.createElement("tr");
    for (const cell of cells) {
      const td = document.createElement("td");
      td.textContent = cell;
      tr.appendChild(td);
    }
    tbody.appendChild(tr);
  }
}

function weekSlots(week) {
  const slots = [];
  for (let i = week.first; i < week.stop; i++) {
    const start = (data.first_s + i * data.step_s) * 1000;
    slots.push({
      start: new Date(start).toISOString(), end: new Date(start + data.step_s * 1000).toISOString(),
      action: data.actions[data.action[i]], import_price: data.import_price[i], export_price: data.export_price[i],
      target_soc_pct: data.soc_pct[i], battery_w: data.battery_w[i], pv_w: data.pv_w[i], load_w: data.load_w[i],
    });
  }
  return slots;
}

function drawWeek() {
  const week = data.weeks[Number(document.getElementById("week").value)];
  const before = week.first > 0 ? data.soc_pct[week.first - 1] : data.initial_soc;
  drawSlotsChart(document.getElementById("week-chart"), weekSlots(week), {
    startSoc: before, now: null, currency: data.currency, timeOf, tip: document.getElementById("week-tip"),
  });
  const costs = Object.entries(week.costs).map(([k, v]) => `${data.strategies[k]} ${money(v)}`);
  document.getElementById("week-costs").textContent = `cost this week, ${data.currency}: ${costs.join(", ")}`;
}

function drawMonths() {
  const svg = document.getElementById("month-chart");
  svg.replaceChildren();
  const box = svg.getBoundingClientRect();
  const w = Math.max(300, Math.round(box.width) || 800);
  const h = Math.max(200, Math.round(box.height) || 260);
  svg.setAttribute("viewBox", `0 0 ${w} ${h}`);
  const saved = data.months.map((m) => m.costs.no_battery - m.costs.hemsd);
  const top = Math.max(0.01, ...saved);
  const low = Math.min(0, ...saved);
  const left = 46, bottom = 24, head = 16;
  const y = (v) => head + (top - v) / (top - low) * (h - head - bottom);
  const width = (w - left) / Math.max(1, saved.length);
  const axis = svgEl("g", { class: "axis" }, svg);
  svgEl("text", { x: 2, y: 11, class: "title" }, axis, `saved against no battery, ${data.currency}`);
  for (const v of [low, (low + top) / 2, top]) svgEl("text", { x: 2, y: y(v) + 4 }, axis, v.toFixed(0));
  svgEl("line", { x1: left, x2: w, y1: y(0), y2: y(0) }, axis);
  const every = Math.ceil(saved.length / Math.max(1, Math.floor((w - left) / 60)));
  saved.forEach((v, i) => {
    const x = left + i * width;
    svgEl("rect", { x: x + 2, width: Math.max(1, width - 4), y: Math.min(y(v), y(0)), height: Math.abs(y(v) - y(0)),
      class: "bar" + (v < 0 ? " negative" : "") }, svg);
    if (i % every === 0) svgEl("text", { x: x + 2, y: h - 6 }, axis, data.months[i].month);
  });
}

function renderTables() {
  const base = data.totals.no_battery.cost;
  fill(document.querySelector("#totals tbody"), Object.entries(data.totals).map(([name, t]) => [
    data.strategies[name], money(t.cost), money(base - t.cost), t.import_kwh.toFixed(1), t.export_kwh.toFixed(1), t.cycles.toFixed(1),
  ]));
  const names = Object.keys(data.strategies);
  const head = document.querySelector("#months thead");
  fill(head, [["month", ...names.map((n) => data.strategies[n]), "saved by hemsd"]]);
  fill(document.querySelector("#months tbody"), data.months.map((m) => [
    m.month, ...names.map((n) => money(m.costs[n])), money(m.costs.no_battery - m.costs.hemsd),
  ]));
}

document.addEventListener("DOMContentLoaded", () => {
  const select = document.getElementById("week");
  data.weeks.forEach((week, i) => select.add(new Option(week.label, String(i))));
  select.addEventListener("change", drawWeek);
  drawSlotsLegend(document.getElementById("week-legend"), { soc: "hemsd's SoC", pv: "PV", load: "load" });
  renderTables();
  drawWeek();
  drawMonths();
  let timer = 0;
  window.addEventListener("resize", () => {
    clearTimeout(timer);
    timer = setTimeout(() => { drawWeek(); drawMonths(); }, 100);
  });
});
