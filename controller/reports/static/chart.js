// hemsd's slot chart: the dashboard's plan and the backtest report's weeks draw with this code.
// A slot is { start, end, action, import_price, export_price, target_soc_pct, battery_w, pv_w, load_w }
// (times as ISO strings, powers in W, battery_w > 0 discharging); no third-party code.
"use strict";

const SVG_NS = "http://www.w3.org/2000/svg";
const CHART_ACTIONS = ["self_use", "charge", "hold", "discharge", "export_limit", "idle"];
const CHART_MARGIN = { left: 46, right: 40, top: 44, bottom: 24 };

function svgEl(name, attributes = {}, parent = null, text = null) {
  const node = document.createElementNS(SVG_NS, name);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
  if (text != null) node.textContent = text;
  if (parent) parent.appendChild(node);
  return node;
}

// A formatter of ISO instants as the clock of ``timeZone`` shows them (with the day when asked).
function clockOf(timeZone) {
  return (iso, withDay = false) => {
    const options = { timeZone: timeZone(), hour: "2-digit", minute: "2-digit", hourCycle: "h23" };
    if (withDay) Object.assign(options, { weekday: "short", day: "2-digit", month: "short" });
    return new Intl.DateTimeFormat("en-GB", options).format(new Date(iso));
  };
}

function chartKw(w) {
  return w == null ? "-" : (Math.abs(w) / 1000).toFixed(2) + " kW";
}

// Draws ``slots`` into ``svg`` at the svg's own size in pixels, so that its text stays readable on a
// phone. options: startSoc (SoC before the first slot), now (ms or null), currency, timeOf(iso,
// withDay) for labels, tip (an element that shows the slot under the pointer). Returns the kW scale.
function drawSlotsChart(svg, slots, options) {
  svg.replaceChildren();
  const box = svg.getBoundingClientRect();
  const w = Math.max(300, Math.round(box.width) || 1000);
  const h = Math.max(200, Math.round(box.height) || 320);
  svg.setAttribute("viewBox", `0 0 ${w} ${h}`);
  const { left, right, top, bottom } = CHART_MARGIN;
  const t0 = Date.parse(slots[0].start);
  const t1 = Date.parse(slots[slots.length - 1].end);
  const x = (t) => left + ((t - t0) / (t1 - t0)) * (w - left - right);
  const prices = slots.map((s) => s.import_price);
  const pMax = Math.max(0.01, ...prices);
  const pMin = Math.min(0, ...prices);
  const yPrice = (p) => h - bottom - ((p - pMin) / (pMax - pMin)) * (h - top - bottom) * 0.9;
  const kwMax = Math.max(1, ...slots.map((s) => Math.max(s.pv_w, s.load_w) / 1000));
  const yKw = (v) => h - bottom - (v / kwMax) * (h - top - bottom) * 0.9;
  const ySoc = (p) => h - bottom - (p / 100) * (h - top - bottom);
  const axis = svgEl("g", { class: "axis" }, svg);
  for (const p of [0, 25, 50, 75, 100]) {
    svgEl("line", { x1: left, x2: w - right, y1: ySoc(p), y2: ySoc(p) }, axis);
    svgEl("text", { x: w - right + 4, y: ySoc(p) + 4 }, axis, p + "%");
  }
  for (const frac of [0, 0.5, 1]) {
    const p = pMin + (pMax - pMin) * frac;
    svgEl("text", { x: 2, y: yPrice(p) + 4 }, axis, p.toFixed(2));
  }
  svgEl("text", { x: 2, y: top - 14, class: "title" }, axis, options.currency + "/kWh");
  svgEl("text", { x: w - right + 4, y: top - 14, class: "title" }, axis, "SoC");
  const hour = 3600e3;
  const labels = Math.max(2, Math.floor((w - left - right) / 60));  // a time label needs about 60 px
  const every = [1, 2, 3, 6, 12, 24, 48, 72].find((n) => (t1 - t0) / (n * hour) <= labels) || 168;
  for (let t = Math.ceil(t0 / (every * hour)) * every * hour; t < t1; t += every * hour) {
    svgEl("text", { x: x(t) - 14, y: h - 6 }, axis, options.timeOf(new Date(t).toISOString(), every >= 24));
  }
  const bars = svgEl("g", {}, svg);
  const strip = svgEl("g", {}, svg);
  for (const s of slots) {
    const a = x(Date.parse(s.start));
    const b = x(Date.parse(s.end));
    const y = yPrice(Math.max(s.import_price, 0));
    const y0 = yPrice(Math.min(s.import_price, 0));
    svgEl("rect", { x: a + 0.5, width: Math.max(0.5, b - a - 1), y, height: Math.max(0.5, y0 - y),
      class: "price-bar" + (s.import_price < 0 ? " negative" : "") }, bars);
    svgEl("rect", { x: a, width: Math.max(0.5, b - a), y: 2, height: 14, class: "act-" + s.action }, strip);
  }
  const line = (values, yOf, cls) => {
    const d = slots.map((s, i) => `${i ? "L" : "M"}${x(Date.parse(s.start)).toFixed(1)},${yOf(values[i]).toFixed(1)}`);
    svgEl("path", { d: d.join(" "), class: cls }, svg);
  };
  line(slots.map((s) => s.pv_w / 1000), yKw, "pv-line");
  line(slots.map((s) => s.load_w / 1000), yKw, "load-line");
  const socPoints = [`M${x(t0)},${ySoc(options.startSoc)}`].concat(
    slots.map((s) => `L${x(Date.parse(s.end)).toFixed(1)},${ySoc(s.target_soc_pct).toFixed(1)}`));
  svgEl("path", { d: socPoints.join(" "), class: "soc-line", id: svg.id + "-soc" }, svg);
  const now = options.now;
  if (now != null && now >= t0 && now <= t1) {
    svgEl("line", { x1: x(now), x2: x(now), y1: top - 6, y2: h - bottom, class: "now-line" }, svg);
  }
  const hover = svgEl("line", { y1: top - 6, y2: h - bottom, class: "hover-line", visibility: "hidden" }, svg);
  const overlay = svgEl("rect", { x: left, y: 0, width: w - left - right, height: h, fill: "transparent" }, svg);
  overlay.addEventListener("mousemove", (event) => {
    const area = svg.getBoundingClientRect();
    const t = t0 + (((event.clientX - area.left) / area.width) * w - left) / (w - left - right) * (t1 - t0);
    const s = slots.find((slot) => Date.parse(slot.start) <= t && t < Date.parse(slot.end));
    if (!s || !options.tip) return;
    hover.setAttribute("x1", x(t));
    hover.setAttribute("x2", x(t));
    hover.setAttribute("visibility", "visible");
    options.tip.textContent = `${options.timeOf(s.start, true)}: ${s.action}, battery ${chartKw(s.battery_w)}` +
      ` ${s.battery_w < 0 ? "charging" : s.battery_w > 0 ? "discharging" : ""}, SoC → ${Number(s.target_soc_pct).toFixed(1)} %,` +
      ` price ${Number(s.import_price).toFixed(3)} / ${Number(s.export_price).toFixed(3)}, PV ${chartKw(s.pv_w)}, load ${chartKw(s.load_w)}`;
  });
  return kwMax;
}

// The legend of the slot chart into ``legend`` (an HTML element); ``names`` labels the lines.
function drawSlotsLegend(legend, names) {
  legend.replaceChildren();
  const item = (cls, text, shape) => {
    const span = document.createElement("span");
    const svg = svgEl("svg", { width: 18, height: 10 }, span);
    if (shape === "line") svgEl("line", { x1: 0, x2: 18, y1: 5, y2: 5, class: cls }, svg);
    else svgEl("rect", { width: 18, height: 10, class: cls }, svg);
    span.append(text);
    legend.appendChild(span);
  };
  item("price-bar", "import price", "rect");
  item("soc-line", names.soc, "line");
  item("pv-line", names.pv, "line");
  item("load-line", names.load, "line");
  for (const a of CHART_ACTIONS) item("act-" + a, a.replace("_", " "), "rect");
}
