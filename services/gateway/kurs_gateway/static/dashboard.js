/* Kurs operations dashboard: polls the gateway's JSON routes and redraws the charts.
 * window.kursDashboard exposes what was last drawn (the browser test reads it). */
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const params = new URLSearchParams(location.search);
  const headers = params.get("api_key") ? { "X-API-Key": params.get("api_key") } : {};
  const WINDOW = 300; // seconds of throughput history
  const PREFERRED = ["USD", "GBP", "JPY", "CHF", "CNY", "AUD", "CAD", "SEK", "NOK", "PLN", "INR", "BRL"];
  const GRADES = { CONFIDENCE_HIGH: "A", CONFIDENCE_MEDIUM: "B", CONFIDENCE_LOW: "C", CONFIDENCE_UNVERIFIED: "D" };
  const REFERENCE_PUBLISHER = "ecb";
  const state = {
    samples: [], // {t, total, routes: {key: requests}}
    overview: null,
    sources: [],
    accuracy: [],
    anomalies: { counts: [], total: 0 },
    updates: { overview: 0, sources: 0, accuracy: 0, anomalies: 0 },
    errors: {},
  };
  window.kursDashboard = state;

  async function getJSON(path) {
    const reply = await fetch(path, { headers, cache: "no-store" });
    if (!reply.ok) throw new Error(`${path}: HTTP ${reply.status}`);
    return reply.json();
  }

  const now = () => Date.now() / 1000;
  const parseTime = (text) => (text ? Date.parse(text) / 1000 : null);
  const routeKey = (r) => `${r.method} ${r.route}`;
  const isOperational = (route) => route.startsWith("/dashboard") || route === "/metrics";

  function setKpi(id, text, tone) {
    const node = $(id);
    node.textContent = text;
    node.className = "value" + (tone ? " " + tone : "");
  }

  // -- overview: traffic, latency, cache, snapshot, cost -------------------------------------
  async function pollOverview() {
    const o = await getJSON("/dashboard/api/overview");
    const t = now();
    const routes = {};
    for (const r of o.routes) routes[routeKey(r)] = r.requests;
    state.samples.push({ t, total: o.requests, routes });
    while (state.samples.length && state.samples[0].t < t - WINDOW - 10) state.samples.shift();
    state.overview = o;
    drawTraffic(o);
    drawKpis(o);
    drawCost(o);
    state.updates.overview = t;
  }

  function rates() {
    // requests/s between consecutive samples, per route and in total
    const out = { total: [], routes: {} };
    for (let i = 1; i < state.samples.length; i++) {
      const a = state.samples[i - 1], b = state.samples[i];
      const dt = b.t - a.t;
      if (dt <= 0) continue;
      out.total.push([b.t, Math.max(0, (b.total - a.total) / dt)]);
      for (const [k, v] of Object.entries(b.routes)) {
        (out.routes[k] = out.routes[k] || []).push([b.t, Math.max(0, (v - (a.routes[k] || 0)) / dt)]);
      }
    }
    return out;
  }

  function drawTraffic(o) {
    const r = rates();
    const busiest = Object.entries(r.routes)
      .filter(([k]) => !isOperational(k.split(" ")[1]))
      .map(([k, pts]) => [k, pts.reduce((s, p) => s + p[1], 0)])
      .sort((a, b) => b[1] - a[1]).slice(0, 5).map(([k]) => k);
    const series = [{ name: "all routes", colour: "#5aa9ff", points: r.total }];
    busiest.forEach((k, i) => series.push({ name: k, colour: KursCharts.colour(i + 1), points: r.routes[k] }));
    KursCharts.lines($("chart-throughput"), series, { window: WINDOW });
    $("legend-throughput").replaceChildren(...series.map((s) => {
      const span = document.createElement("span");
      const sw = document.createElement("i");
      sw.className = "swatch";
      sw.style.background = s.colour;
      span.append(sw, s.name);
      return span;
    }));
    const rows = o.routes.filter((x) => !x.route.startsWith("/dashboard/assets") && x.p99_ms !== null).slice(0, 10)
      .map((x) => ({ method: x.method, route: x.route, p50: x.p50_ms, p90: x.p90_ms, p99: x.p99_ms, requests: x.requests }));
    KursCharts.latency($("chart-latency"), rows, { slo: 10 });
    state.throughput = r.total.length ? r.total[r.total.length - 1][1] : null;
  }

  function drawKpis(o) {
    setKpi("kpi-served", KursCharts.fmt(o.rate_requests, 0));
    $("kpi-served-hint").textContent = `${KursCharts.fmt(o.upstream_calls_avoided, 0)} without a call to rates`;
    setKpi("kpi-rps", state.throughput === null || state.throughput === undefined ? "–" : KursCharts.fmt(state.throughput, 1));
    const latest = o.routes.find((r) => r.route === "/rates/latest" && r.method === "GET");
    const p99 = latest ? latest.p99_ms : null;
    setKpi("kpi-p99", p99 === null ? "–" : `${KursCharts.fmt(p99, p99 < 1 ? 3 : 1)} ms`, p99 === null ? "" : p99 < 10 ? "good" : "bad");
    const ratio = o.cache.hit_ratio;
    setKpi("kpi-cache", ratio === null ? "–" : `${(ratio * 100).toFixed(1)} %`, ratio === null ? "" : ratio > 0.5 ? "good" : "warn");
    $("kpi-cache-hint").textContent = `${KursCharts.fmt(o.cache.hits, 0)} hits · ${o.cache.entries} bodies`;
    const age = o.snapshot.newest_observed_at ? now() - parseTime(o.snapshot.newest_observed_at) : null;
    setKpi("kpi-snapshot", `#${o.snapshot.sequence}`, o.snapshot.stream_connected ? "good" : "bad");
    $("kpi-snapshot-hint").textContent = `${o.snapshot.currencies.length} currencies · ${o.snapshot.date || "–"} · ${KursCharts.ago(age)} old`;
    setKpi("kpi-ws", String(o.websocket.connections));
    $("kpi-ws-hint").textContent = `${KursCharts.fmt(o.websocket.messages_sent, 0)} messages sent`;
  }

  function drawCost(o) {
    const c = o.cost;
    const figs = [
      [KursCharts.fmt(o.rate_requests, 0), "rate requests served since start"],
      [KursCharts.fmt(c.monthly_requests, 0), "per month at the current rate"],
      [KursCharts.fmt(o.upstream_calls_avoided, 0), "answered without a call to the rates service"],
      ...c.providers.map((p) => [`$${p.usd_per_month}/mo`, `on ${p.name} (${p.plan})`]),
    ];
    $("cost-head").replaceChildren(...figs.slice(0, 4).map(([b, s]) => {
      const d = document.createElement("div");
      d.className = "fig";
      const strong = document.createElement("b");
      strong.textContent = b;
      const span = document.createElement("span");
      span.textContent = s;
      d.append(strong, span);
      return d;
    }));
    if (c.providers.length > 1) {
      const last = $("cost-head").lastChild;
      last.querySelector("b").textContent = c.providers.map((p) => `$${p.usd_per_month}`).join(" · ");
      last.querySelector("span").textContent = c.providers.map((p) => `${p.name} ${p.plan}`).join(" · ") + " per month";
    }
    KursCharts.cost($("chart-cost"), c.providers, c.monthly_requests);
    const notes = $("cost-sources");
    notes.replaceChildren("Published price tiers: ");
    c.providers.forEach((p, i) => {
      const a = document.createElement("a");
      a.href = p.source;
      a.textContent = p.name;
      a.rel = "noreferrer";
      notes.append(i ? "; " : "", a, ` (read ${p.checked} via ${p.reference}). ${p.note}`);
    });
  }

  // -- sources: collector health joined with the validator's freshness ------------------------
  async function pollSources() {
    const [health, fresh] = await Promise.all([getJSON("/sources"), getJSON("/sources/freshness")]);
    const bySource = {};
    for (const f of fresh.sources || []) {
      const prev = bySource[f.source];
      if (!prev || parseTime(f.last_observed_at) > parseTime(prev.last_observed_at)) bySource[f.source] = f;
    }
    const t = now();
    state.sources = (health.sources || []).map((s) => {
      const f = bySource[s.source];
      const observed = parseTime(s.last_observed_at); // this feed's own newest figure
      return {
        id: s.id,
        source: s.source,
        state: (s.state || "").replace("SOURCE_STATE_", "").toLowerCase(),
        age: observed ? t - observed : null,
        window: f ? Number(f.window_seconds) : null,
        stale: observed && f ? f.freshness === "SOURCE_FRESHNESS_STALE" : false,
        delivered: Number(s.observations_delivered || 0),
      };
    }).sort((a, b) => (a.state === "disabled") - (b.state === "disabled") || a.id.localeCompare(b.id));
    KursCharts.sources($("chart-sources"), state.sources.slice(0, 14));
    state.updates.sources = t;
  }

  // -- accuracy: /quality per currency, each contributor against the published rate ------------
  async function pollAccuracy() {
    const available = new Set(state.overview ? state.overview.snapshot.currencies : []);
    const codes = PREFERRED.filter((c) => available.has(c)).slice(0, 10);
    const records = await Promise.all(codes.map((c) => getJSON(`/quality?currency=${c}`).catch(() => null)));
    state.accuracy = records.filter((r) => r && r.value).map((r) => {
      const published = Number(r.value);
      const dot = (c, excluded) => ({
        source: c.source, raw: c.value, excluded, reason: c.reason,
        reference: c.source === REFERENCE_PUBLISHER,
        bp: (Number(c.value) / published - 1) * 1e4,
      });
      return {
        currency: r.currency, value: r.value, grade: GRADES[r.confidence] || "?",
        spreadBp: Number(r.spread || 0) * 1e4,
        dots: [...(r.contributors || []).map((c) => dot(c, false)), ...(r.excluded || []).filter((c) => c.value).map((c) => dot(c, true))],
      };
    });
    KursCharts.accuracy($("chart-accuracy"), state.accuracy);
    state.updates.accuracy = now();
  }

  // -- anomalies ----------------------------------------------------------------------------
  async function pollAnomalies() {
    const page = await getJSON("/anomalies?page_size=200");
    const list = page.anomalies || [];
    const counts = {};
    for (const a of list) counts[a.reason] = (counts[a.reason] || 0) + 1;
    state.anomalies = {
      total: list.length,
      counts: Object.entries(counts).map(([label, value]) => ({ label, value })).sort((a, b) => b.value - a.value),
    };
    KursCharts.bars($("chart-anomalies"), state.anomalies.counts, "no anomalies recorded — every observation passed");
    $("recent-anomalies").replaceChildren(...list.slice(0, 6).map((a) => {
      const li = document.createElement("li");
      const when = document.createElement("span");
      when.textContent = (a.date || (a.detected_at || "").slice(0, 10)) + " " + (a.currency || "");
      const reason = document.createElement("span");
      reason.className = "reason";
      reason.textContent = a.reason;
      const detail = document.createElement("span");
      detail.className = "detail";
      detail.textContent = `${a.source}: ${a.detail}`;
      li.append(when, reason, detail);
      return li;
    }));
    state.updates.anomalies = now();
  }

  // -- scheduling ---------------------------------------------------------------------------
  function every(name, seconds, task) {
    const run = async () => {
      try {
        await task();
        delete state.errors[name];
      } catch (err) {
        state.errors[name] = String(err);
      }
      const live = $("live");
      const failing = Object.keys(state.errors);
      live.className = "live " + (failing.length ? "off" : "on");
      $("live-text").textContent = failing.length
        ? `trouble: ${failing.join(", ")}`
        : `live · updated ${new Date().toLocaleTimeString()}`;
      setTimeout(run, seconds * 1000);
    };
    return run();
  }

  every("overview", 2, pollOverview).then(() => {
    every("accuracy", 15, pollAccuracy);
  });
  every("sources", 5, pollSources);
  every("anomalies", 15, pollAnomalies);
})();
