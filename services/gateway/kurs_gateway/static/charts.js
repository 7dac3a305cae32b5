/* Kurs dashboard charts: hand-written SVG, no library. Each function redraws one container.
 * Drawn elements carry data-* attributes with the figures they show (the browser test reads them). */
"use strict";

const KursCharts = (() => {
  const NS = "http://www.w3.org/2000/svg";
  const PALETTE = ["#5aa9ff", "#3ecf8e", "#f5b942", "#c77dff", "#ff8fa3", "#4dd4d4", "#9fb3d9", "#ffa94d"];
  const STATE_COLOURS = {
    healthy: "#3ecf8e", degraded: "#f5b942", failing: "#ff8f5a", down: "#ff6b6b",
    idle: "#8d99b3", disabled: "#4a5670",
  };

  function el(tag, attrs, parent) {
    const node = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v !== undefined && v !== null) node.setAttribute(k, String(v));
    }
    if (parent) parent.appendChild(node);
    return node;
  }

  function label(parent, x, y, content, attrs) {
    const t = el("text", Object.assign({ x, y }, attrs || {}), parent);
    t.textContent = content;
    return t;
  }

  function canvas(container, width, height) {
    container.replaceChildren();
    const svg = el("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", preserveAspectRatio: "xMidYMid meet" });
    container.appendChild(svg);
    container.dataset.rendered = "1";
    return svg;
  }

  function empty(container, message) {
    container.replaceChildren();
    const div = document.createElement("div");
    div.className = "empty";
    div.textContent = message;
    container.appendChild(div);
    container.dataset.rendered = "0";
  }

  function niceMax(value) {
    if (!(value > 0)) return 1;
    const exp = Math.pow(10, Math.floor(Math.log10(value)));
    for (const step of [1, 2, 2.5, 5, 10]) if (value <= step * exp) return step * exp;
    return 10 * exp;
  }

  function fmt(value, digits) {
    if (value === null || value === undefined || Number.isNaN(value)) return "–";
    if (Math.abs(value) >= 1e6) return (value / 1e6).toFixed(1) + "M";
    if (Math.abs(value) >= 1e4) return (value / 1e3).toFixed(1) + "k";
    return value.toFixed(digits === undefined ? (Math.abs(value) < 10 ? 2 : 0) : digits);
  }

  function colour(i) { return PALETTE[i % PALETTE.length]; }

  /* series: [{name, colour, points: [[tSeconds, value], ...]}] over a fixed time window. */
  function lines(container, series, opts) {
    const W = 1000, H = 240, L = 48, R = 12, T = 10, B = 26;
    const points = series.flatMap((s) => s.points);
    if (!points.length) return empty(container, "waiting for traffic…");
    const svg = canvas(container, W, H);
    const tMax = Math.max(...points.map((p) => p[0]));
    const tFirst = Math.min(...points.map((p) => p[0]));
    const tMin = Math.max(tMax - (opts.window || 300), Math.min(tFirst, tMax - 20));
    const span = tMax - tMin;
    const step = span <= 60 ? 10 : span <= 180 ? 30 : 60;
    const yMax = niceMax(Math.max(...points.map((p) => p[1]), 0.001));
    const x = (t) => L + ((t - tMin) / (tMax - tMin || 1)) * (W - L - R);
    const y = (v) => T + (1 - v / yMax) * (H - T - B);
    for (let i = 0; i <= 4; i++) {
      const v = (yMax * i) / 4;
      el("line", { x1: L, x2: W - R, y1: y(v), y2: y(v), class: "grid-line" }, svg);
      label(svg, L - 6, y(v) + 4, fmt(v), { "text-anchor": "end" });
    }
    for (let s = 0; s <= span; s += step) {
      const text = s === 0 ? "now" : s % 60 ? `-${s}s` : `-${s / 60}m`;
      label(svg, x(tMax - s), H - 8, text, { "text-anchor": "middle" });
    }
    series.forEach((s, i) => {
      const pts = s.points.filter((p) => p[0] >= tMin);
      if (!pts.length) return;
      const c = s.colour || colour(i);
      const d = pts.map((p, j) => `${j ? "L" : "M"}${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join("");
      if (i === 0) {
        const grad = el("linearGradient", { id: "fill0", x1: 0, x2: 0, y1: 0, y2: 1 }, el("defs", {}, svg));
        el("stop", { offset: "0%", "stop-color": c, "stop-opacity": 0.35 }, grad);
        el("stop", { offset: "100%", "stop-color": c, "stop-opacity": 0 }, grad);
        const area = `${d}L${x(pts[pts.length - 1][0]).toFixed(1)},${y(0)}L${x(pts[0][0]).toFixed(1)},${y(0)}Z`;
        el("path", { d: area, fill: "url(#fill0)", stroke: "none" }, svg);
      }
      el("path", {
        d, fill: "none", stroke: c, "stroke-width": i === 0 ? 2.2 : 1.6, "stroke-linejoin": "round",
        "data-series": s.name, "data-last": pts[pts.length - 1][1].toFixed(3),
      }, svg);
    });
  }

  /* rows: [{route, p50, p90, p99, requests}] in ms; log scale from 0.01 ms; opts.slo in ms. */
  function latency(container, rows, opts) {
    rows = rows.filter((r) => r.p99 !== null && r.p99 !== undefined);
    if (!rows.length) return empty(container, "no requests timed yet");
    const W = 600, row = 26, L = 200, R = 60, T = 8;
    const H = T + rows.length * row + 24;
    const svg = canvas(container, W, H);
    const lo = Math.log10(0.01), hi = Math.log10(niceMax(Math.max(...rows.map((r) => r.p99), opts.slo || 1) * 1.2));
    const x = (ms) => L + ((Math.log10(Math.max(ms, 0.01)) - lo) / (hi - lo)) * (W - L - R);
    for (let e = Math.ceil(lo); e <= hi; e++) {
      el("line", { x1: x(10 ** e), x2: x(10 ** e), y1: T, y2: H - 22, class: "grid-line" }, svg);
      label(svg, x(10 ** e), H - 8, 10 ** e >= 1 ? `${10 ** e} ms` : `${10 ** e}`, { "text-anchor": "middle" });
    }
    rows.forEach((r, i) => {
      const y0 = T + i * row;
      const g = el("g", { "data-route": r.route, "data-p50": r.p50, "data-p99": r.p99, "data-requests": r.requests }, svg);
      label(g, L - 8, y0 + 16, `${r.method === "GET" ? "" : r.method + " "}${r.route}`, { "text-anchor": "end", class: "strong" });
      el("rect", { x: L, y: y0 + 5, width: Math.max(1, x(r.p99) - L), height: 14, rx: 3, fill: "#5aa9ff", opacity: 0.25 }, g);
      el("rect", { x: L, y: y0 + 5, width: Math.max(1, x(r.p90) - L), height: 14, rx: 3, fill: "#5aa9ff", opacity: 0.5 }, g);
      el("rect", { x: L, y: y0 + 5, width: Math.max(1, x(r.p50) - L), height: 14, rx: 3, fill: "#5aa9ff" }, g);
      label(g, x(r.p99) + 6, y0 + 16, `${fmt(r.p99, r.p99 < 1 ? 3 : 1)} ms`, { class: "value" });
    });
    if (opts.slo) {
      el("line", { x1: x(opts.slo), x2: x(opts.slo), y1: T - 4, y2: H - 22, class: "slo" }, svg);
      label(svg, x(opts.slo), H - 22 + 12, `SLO ${opts.slo} ms`, { fill: "#ff6b6b", "text-anchor": "middle", dy: 12 });
    }
  }

  /* rows: [{currency, value, grade, spread, dots: [{source, bp, excluded, reference}]}] */
  function accuracy(container, rows) {
    if (!rows.length) return empty(container, "no quality records yet");
    const W = 600, row = 30, L = 150, R = 96, T = 22;
    const H = T + rows.length * row + 8;
    const svg = canvas(container, W, H);
    const span = niceMax(Math.max(1, ...rows.flatMap((r) => r.dots.map((d) => Math.abs(d.bp))))) * 1.1;
    const x = (bp) => L + ((bp + span) / (2 * span)) * (W - L - R);
    for (const bp of [-span / 1.1, 0, span / 1.1]) {
      el("line", { x1: x(bp), x2: x(bp), y1: T - 6, y2: H - 4, class: bp === 0 ? "axis" : "grid-line" }, svg);
      label(svg, x(bp), T - 10, `${bp > 0 ? "+" : ""}${fmt(bp, 1)} bp`, { "text-anchor": "middle" });
    }
    rows.forEach((r, i) => {
      const cy = T + i * row + row / 2;
      const g = el("g", { "data-currency": r.currency, "data-value": r.value, "data-contributors": r.dots.length }, svg);
      label(g, 8, cy + 4, r.currency, { class: "strong" });
      label(g, 48, cy + 4, r.value, { class: "value" });
      el("line", { x1: L, x2: W - R, y1: cy, y2: cy, class: "grid-line" }, g);
      r.dots.forEach((d, j) => {
        const c = d.reference ? "#f5b942" : colour(j + 1);
        const cx = x(Math.max(-span, Math.min(span, d.bp)));
        const attrs = { "data-source": d.source, "data-bp": d.bp.toFixed(4) };
        const shape = d.reference
          ? el("rect", Object.assign({ x: cx - 5, y: cy - 5, width: 10, height: 10, transform: `rotate(45 ${cx} ${cy})`, fill: c }, attrs), g)
          : el("circle", Object.assign({ cx, cy, r: 5, fill: d.excluded ? "none" : c, stroke: c, "stroke-width": 1.5 }, attrs), g);
        el("title", {}, shape).textContent = `${d.source}: ${d.raw} (${d.bp >= 0 ? "+" : ""}${d.bp.toFixed(2)} bp)${d.excluded ? " — excluded: " + d.reason : ""}`;
      });
      const gradeColour = { A: "#3ecf8e", B: "#9fd36a", C: "#f5b942", D: "#ff8f5a", F: "#ff6b6b" }[r.grade] || "#8d99b3";
      el("rect", { x: W - R + 10, y: cy - 9, width: 22, height: 18, rx: 4, fill: gradeColour }, g);
      label(g, W - R + 21, cy + 4, r.grade || "?", { "text-anchor": "middle", fill: "#0b1220", "font-weight": 700 });
      label(g, W - R + 38, cy + 4, `±${fmt(r.spreadBp, 1)}`, {});
    });
  }

  /* rows: [{id, source, state, age, window, stale, delivered, lastSuccess}] (seconds) */
  function sources(container, rows) {
    if (!rows.length) return empty(container, "no sources reported");
    const W = 600, row = 28, L = 170, R = 120, T = 6;
    const H = T + rows.length * row + 20;
    const svg = canvas(container, W, H);
    const x = (ratio) => L + Math.min(ratio, 2) / 2 * (W - L - R);
    el("line", { x1: x(1), x2: x(1), y1: T, y2: H - 18, class: "slo" }, svg);
    label(svg, x(1), H - 4, "publication window", { "text-anchor": "middle" });
    rows.forEach((r, i) => {
      const cy = T + i * row + row / 2;
      const g = el("g", { "data-feed": r.id, "data-state": r.state, "data-age": r.age === null ? "" : Math.round(r.age) }, svg);
      el("circle", { cx: 10, cy, r: 5.5, fill: STATE_COLOURS[r.state] || "#8d99b3" }, g);
      label(g, 22, cy + 4, r.id, { class: "strong" });
      el("rect", { x: L, y: cy - 6, width: W - L - R, height: 12, rx: 6, fill: "#1f2a40" }, g);
      if (r.age !== null && r.window) {
        const ratio = r.age / r.window;
        const c = r.stale || ratio > 1 ? "#ff6b6b" : ratio > 0.75 ? "#f5b942" : "#3ecf8e";
        el("rect", { x: L, y: cy - 6, width: Math.max(4, x(ratio) - L), height: 12, rx: 6, fill: c }, g);
      }
      const right = r.age === null ? r.state : `${ago(r.age)} · ${fmt(r.delivered, 0)} obs`;
      label(g, W - R + 8, cy + 4, right, { class: "value" });
    });
  }

  /* rows: [{label, value}] */
  function bars(container, rows, emptyText) {
    if (!rows.length) return empty(container, emptyText);
    const W = 600, row = 24, L = 130, R = 50, T = 4;
    const H = T + rows.length * row + 4;
    const svg = canvas(container, W, H);
    const max = Math.max(...rows.map((r) => r.value));
    rows.forEach((r, i) => {
      const y0 = T + i * row;
      const g = el("g", { "data-label": r.label, "data-value": r.value }, svg);
      label(g, L - 8, y0 + 15, r.label, { "text-anchor": "end", class: "strong" });
      el("rect", { x: L, y: y0 + 4, width: Math.max(2, (r.value / max) * (W - L - R)), height: 15, rx: 3, fill: colour(i + 2) }, g);
      label(g, L + Math.max(2, (r.value / max) * (W - L - R)) + 6, y0 + 15, String(r.value), { class: "value" });
    });
  }

  /* providers: [{name, plan, usd_per_month, tiers: [{name, requests_per_month, price}]}], monthly requests */
  function cost(container, providers, monthly) {
    const W = 1000, row = 64, L = 170, R = 20, T = 10;
    const H = T + providers.length * row + 16;
    const svg = canvas(container, W, H);
    const caps = providers.flatMap((p) => p.tiers.map((t) => t.requests_per_month).filter((v) => v));
    const hi = Math.log10(niceMax(Math.max(...caps, monthly) * 4)), lo = 2;
    const x = (n) => L + ((Math.log10(Math.max(n, 100)) - lo) / (hi - lo)) * (W - L - R);
    providers.forEach((p, i) => {
      const y0 = T + i * row;
      const g = el("g", { "data-provider": p.name, "data-plan": p.plan, "data-usd": p.usd_per_month }, svg);
      label(g, 0, y0 + 22, p.name, { class: "strong" });
      label(g, 0, y0 + 40, `${p.plan}: $${p.usd_per_month}/mo`, { class: "value" });
      let start = 100;
      p.tiers.forEach((t, j) => {
        const end = t.requests_per_month || 10 ** hi;
        const active = t.name === p.plan;
        el("rect", { x: x(start), y: y0 + 12, width: Math.max(2, x(end) - x(start) - 2), height: 30, rx: 4,
          fill: active ? "#2f6fd6" : "#24304a", stroke: active ? "#8cc4ff" : "none" }, g);
        label(g, x(start) + 6, y0 + 31, `${t.name} ${t.price}`, { style: `fill: ${active ? "#ffffff" : "#b9c7e6"}; font-weight: ${active ? 700 : 400}; font-size: 12px` });
        start = end;
      });
    });
    const mx = x(Math.max(monthly, 100));
    el("line", { x1: mx, x2: mx, y1: T, y2: H - 14, stroke: "#f5b942", "stroke-width": 2 }, svg);
    label(svg, mx, H - 2, `this traffic: ${fmt(monthly, 0)} requests/month`, { "text-anchor": "middle", fill: "#f5b942" });
  }

  function ago(seconds) {
    if (seconds === null || seconds === undefined) return "–";
    const s = Math.max(0, seconds);
    if (s < 90) return `${Math.round(s)} s`;
    if (s < 5400) return `${Math.round(s / 60)} min`;
    if (s < 172800) return `${Math.round(s / 3600)} h`;
    return `${Math.round(s / 86400)} d`;
  }

  return { lines, latency, accuracy, sources, bars, cost, colour, fmt, ago, empty };
})();
