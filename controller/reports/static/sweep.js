// The what-if report (controller/reports/html.py): yearly saving and payback against battery size.
"use strict";

const data = JSON.parse(document.getElementById("report-data").textContent);

function groupLabel(v) {
  const parts = [];
  if (v.power_w != null) parts.push(`${(v.power_w / 1000).toFixed(1)} kW`);
  if (v.pv_scale !== 1) parts.push(`PV x${v.pv_scale}`);
  if (v.tariff !== "recorded") parts.push(`tariff ${v.tariff}`);
  return parts.length ? parts.join(", ") : "recorded tariff";
}

// One line per group of variants that differ only in battery size.
function drawLines(svg, field, title) {
  svg.replaceChildren();
  const groups = new Map();
  for (const v of data.variants) {
    if (v[field] == null) continue;
    const key = groupLabel(v);
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push(v);
  }
  const points = [...groups.values()].flat();
  if (!points.length) return false;
  const box = svg.getBoundingClientRect();
  const w = Math.max(300, Math.round(box.width) || 800);
  const h = Math.max(200, Math.round(box.height) || 260);
  svg.setAttribute("viewBox", `0 0 ${w} ${h}`);
  const left = 52, right = 12, head = 18, bottom = 28;
  const xs = points.map((v) => v.capacity_kwh);
  const ys = points.map((v) => v[field]);
  const x0 = Math.min(0, ...xs), x1 = Math.max(1, ...xs);
  const y0 = Math.min(0, ...ys), y1 = Math.max(0.01, ...ys);
  const x = (v) => left + (v - x0) / (x1 - x0) * (w - left - right);
  const y = (v) => head + (y1 - v) / (y1 - y0) * (h - head - bottom);
  const axis = svgEl("g", { class: "axis" }, svg);
  svgEl("text", { x: 2, y: 12, class: "title" }, axis, title);
  for (const v of [y0, (y0 + y1) / 2, y1]) {
    svgEl("line", { x1: left, x2: w - right, y1: y(v), y2: y(v) }, axis);
    svgEl("text", { x: 2, y: y(v) + 4 }, axis, v.toFixed(v < 10 ? 1 : 0));
  }
  const ticks = Math.max(2, Math.floor((w - left - right) / 50));
  const step = Math.max(1, Math.ceil((x1 - x0) / ticks));
  for (let v = Math.ceil(x0); v <= x1; v += step) svgEl("text", { x: x(v) - 6, y: h - 12 }, axis, String(v));
  svgEl("text", { x: w - right - 90, y: h - 1, class: "title" }, axis, "battery, kWh");
  [...groups.entries()].forEach(([, variants], n) => {
    variants.sort((a, b) => a.capacity_kwh - b.capacity_kwh);
    const d = variants.map((v, i) => `${i ? "L" : "M"}${x(v.capacity_kwh).toFixed(1)},${y(v[field]).toFixed(1)}`);
    svgEl("path", { d: d.join(" "), class: `series series-${n % 5}` }, svg);
    for (const v of variants) svgEl("circle", { cx: x(v.capacity_kwh), cy: y(v[field]), r: 3, class: `dot series-${n % 5}` }, svg);
  });
  return [...groups.keys()];
}

function draw() {
  const names = drawLines(document.getElementById("saving-chart"), "annual_saving", `saving per year, ${data.currency}`);
  const legend = document.getElementById("saving-legend");
  legend.replaceChildren();
  (names || []).forEach((name, n) => {
    const span = document.createElement("span");
    const svg = svgEl("svg", { width: 18, height: 10 }, span);
    svgEl("line", { x1: 0, x2: 18, y1: 5, y2: 5, class: `series series-${n % 5}` }, svg);
    span.append(name);
    legend.appendChild(span);
  });
  const payback = drawLines(document.getElementById("payback-chart"), "payback_years", "years until the investment is paid back");
  document.getElementById("payback-chart").hidden = !payback;
  document.getElementById("payback-title").hidden = !payback;
}

document.addEventListener("DOMContentLoaded", () => {
  const tbody = document.querySelector("#variants tbody");
  for (const v of [data.reference, ...data.variants]) {
    const tr = document.createElement("tr");
    const cells = [v.variant, v.annual_cost.toFixed(0), v.annual_saving.toFixed(0), v.investment.toFixed(0),
      v.payback_years == null ? "-" : v.payback_years.toFixed(1), v.import_kwh.toFixed(0), v.export_kwh.toFixed(0), v.cycles.toFixed(0)];
    for (const c of cells) { const td = document.createElement("td"); td.textContent = c; tr.appendChild(td); }
    tbody.appendChild(tr);
  }
  draw();
  let timer = 0;
  window.addEventListener("resize", () => { clearTimeout(timer); timer = setTimeout(draw, 100); });
});
