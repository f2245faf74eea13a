/**
 * The Lifeline dashboard: reads the monitor's admin API (snapshots, history) and follows its
 * event stream (/api/events, Server-Sent Events). State lives in `store`; events only mark
 * it dirty, and the page is redrawn at most every RENDER_EVERY ms.
 */
import { LatencyChart } from "./chart.js";
import {
  clock,
  dateTime,
  formatCount,
  formatCpu,
  formatDuration,
  formatLatency,
  formatPct,
  relative,
  STATES,
  SYMBOLS,
  shortText,
  URGENCY,
} from "./format.js";
import { renderTimeline, segments } from "./timeline.js";

const RENDER_EVERY = 250; // ms: at most four redraws a second
const TICK_EVERY = 1000; // relative times move on even without events
const REFRESH_EVERY = 10_000; // full snapshot for trends (availability, flaps, MTTR)
const LOG_LIMIT = 200;
const CHART_LIMIT = 2000; // results kept for the selected target's chart
const TIMELINE_WINDOW = 3_600_000;

const $ = (id) => document.getElementById(id);
const el = {
  info: $("info"),
  conn: $("conn"),
  connText: $("conn-text"),
  counts: $("counts"),
  filter: $("filter"),
  order: $("order"),
  layout: $("layout"),
  grid: $("grid"),
  empty: $("empty"),
  detail: $("detail"),
  dBadge: $("d-badge"),
  dId: $("d-id"),
  dClose: $("d-close"),
  dReason: $("d-reason"),
  dSince: $("d-since"),
  dSinceRel: $("d-since-rel"),
  dKind: $("d-kind"),
  dStats: $("d-stats"),
  dTimeline: $("d-timeline"),
  dLegend: $("d-timeline-legend"),
  dChart: $("d-chart"),
  dChartNote: $("d-chart-note"),
  dChecks: $("d-checks"),
  dTransitions: $("d-transitions"),
  cluster: $("cluster"),
  nodes: $("nodes"),
  log: $("log"),
};

const token = new URLSearchParams(location.search).get("token");

const store = {
  /** @type {Map<string, any>} id → TargetSnapshot, in the monitor's order */
  targets: new Map(),
  info: null,
  conn: "connecting",
  connSince: Date.now(),
  /** Wall ms of the last data from the monitor. */
  lastData: 0,
  everLive: false,
  filter: "",
  order: localStorage.getItem("lifeline.order") ?? "config",
  selected: null,
  /** The selected target's history: results and transitions, oldest first. */
  detail: { id: null, results: [], transitions: [], loaded: false, error: null, chartDirty: true },
  /** Live results that arrived while the history was loading. */
  buffered: [],
  /** Log lines not yet drawn, oldest first. */
  pendingLog: [],
};

/* ------------------------------------------------------------------ API */

function apiUrl(path) {
  if (!token) return path;
  return `${path}${path.includes("?") ? "&" : "?"}token=${encodeURIComponent(token)}`;
}

async function getJson(path) {
  const res = await fetch(path, {
    headers: token ? { authorization: `Bearer ${token}` } : {},
    cache: "no-store",
  });
  if (!res.ok) throw new Error(`${path}: HTTP ${res.status}`);
  return res.json();
}

function applySnapshots(list) {
  if (!Array.isArray(list)) return;
  const next = new Map();
  for (const s of list) if (s && typeof s.id === "string") next.set(s.id, s);
  store.targets = next;
  store.lastData = Date.now();
  if (store.selected && !next.has(store.selected)) select(null);
  schedule();
}

let refreshTimer;
let refreshing = false;
/** Re-reads every snapshot (trends are not in the stream) soon, once for a burst of events. */
function refreshSoon(delay = 700) {
  if (refreshTimer !== undefined) return;
  refreshTimer = setTimeout(refresh, delay);
}

async function refresh() {
  clearTimeout(refreshTimer);
  refreshTimer = undefined;
  if (refreshing) return;
  refreshing = true;
  try {
    applySnapshots(await getJson("api/targets"));
  } catch {
    // The stream's own error handler reports the connection; a failed refresh while the
    // stream says live means a half-open stream: start it over.
    if (store.conn === "live") reconnect();
  } finally {
    refreshing = false;
  }
}

async function loadInfo() {
  try {
    store.info = await getJson("api/info");
  } catch {
    store.info = null;
  }
  schedule();
}

/* --------------------------------------------------------------- stream */

let source;
let retryTimer;
let retryDelay = 1000;

function setConn(state) {
  if (store.conn === state) return;
  store.conn = state;
  store.connSince = Date.now();
  schedule();
}

function connect() {
  clearTimeout(retryTimer);
  source?.close();
  const es = new EventSource(apiUrl("api/events"));
  source = es;
  const on = (type, fn) =>
    es.addEventListener(type, (e) => {
      if (source !== es) return;
      let data;
      try {
        data = JSON.parse(e.data);
      } catch {
        return;
      }
      store.lastData = Date.now();
      fn(data);
    });
  on("snapshot", (list) => {
    applySnapshots(list);
    retryDelay = 1000;
    if (store.conn !== "live") {
      log({
        type: "conn",
        at: Date.now(),
        text: store.everLive ? "reconnected to the monitor" : "connected to the monitor",
      });
    }
    store.everLive = true;
    setConn("live");
    // Events may have been missed while disconnected: re-read what the detail shows.
    if (store.selected) loadHistory(store.selected);
  });
  on("state", onState);
  on("result", onResult);
  on("config", onConfig);
  es.onerror = () => {
    if (source !== es) return;
    if (store.conn === "live")
      log({ type: "conn", at: Date.now(), text: "lost the event stream; reconnecting" });
    setConn("reconnecting");
    // EventSource retries by itself unless the server answered with an error: then it
    // gives up (CLOSED) and we retry, backing off.
    if (es.readyState === EventSource.CLOSED) {
      retryTimer = setTimeout(connect, retryDelay);
      retryDelay = Math.min(retryDelay * 2, 30_000);
    }
  };
}

function reconnect() {
  setConn("reconnecting");
  connect();
}

function onState(t) {
  if (!t || typeof t.target !== "string") return;
  const s = store.targets.get(t.target);
  if (s) {
    s.state = t.to;
    s.since = t.at;
    s.reason = t.reason;
    s.kind = t.kind ?? null;
    s.evidence = t.evidence ?? {};
  } else refreshSoon(0);
  log({ type: "state", ...t });
  if (store.detail.id === t.target) {
    if (store.detail.loaded) store.detail.transitions.push(t);
    else store.buffered.push({ transition: t });
  }
  refreshSoon();
  schedule();
}

function onResult(r) {
  if (!r || typeof r.target !== "string") return;
  const s = store.targets.get(r.target);
  const check = s?.checks?.find((c) => c.name === r.check);
  if (check) check.last = r;
  if (store.detail.id === r.target) {
    if (store.detail.loaded) {
      const rs = store.detail.results;
      rs.push(r);
      if (rs.length > CHART_LIMIT) rs.splice(0, rs.length - CHART_LIMIT);
      store.detail.chartDirty = true;
    } else store.buffered.push({ result: r });
  }
  schedule();
}

function onConfig(change) {
  const part = (label, ids) => (ids?.length ? `${label} ${ids.join(", ")}` : "");
  const text = [
    part("added", change?.added),
    part("removed", change?.removed),
    part("changed", change?.changed),
  ]
    .filter(Boolean)
    .join("; ");
  log({ type: "config", at: Date.now(), text: `configuration reloaded${text ? `: ${text}` : ""}` });
  refreshSoon(0);
}

/* --------------------------------------------------------------- detail */

function select(id) {
  if (store.selected === id) return;
  store.selected = id;
  history.replaceState(
    null,
    "",
    id ? `#target=${encodeURIComponent(id)}` : location.pathname + location.search,
  );
  if (id) loadHistory(id);
  else {
    store.detail = { id: null, results: [], transitions: [], loaded: false, error: null, chartDirty: true };
    chart?.destroy();
    chart = undefined;
  }
  schedule();
}

async function loadHistory(id) {
  store.detail = { id, results: [], transitions: [], loaded: false, error: null, chartDirty: true };
  store.buffered = [];
  try {
    const h = await getJson(`api/targets/${encodeURIComponent(id)}/history`);
    if (store.detail.id !== id) return;
    const results = Array.isArray(h?.results) ? h.results : [];
    const transitions = Array.isArray(h?.transitions) ? h.transitions : [];
    const lastResult = results.length ? results[results.length - 1].at : -Infinity;
    const lastTransition = transitions.length ? transitions[transitions.length - 1].at : -Infinity;
    for (const b of store.buffered) {
      if (b.result && b.result.at > lastResult) results.push(b.result);
      if (b.transition && b.transition.at > lastTransition) transitions.push(b.transition);
    }
    store.buffered = [];
    store.detail.results = results.slice(-CHART_LIMIT);
    store.detail.transitions = transitions;
    store.detail.loaded = true;
  } catch (err) {
    if (store.detail.id !== id) return;
    store.detail.error = String(err instanceof Error ? err.message : err);
  }
  store.detail.chartDirty = true;
  schedule();
}

/* ---------------------------------------------------------------- event log */

function log(entry) {
  store.pendingLog.push(entry);
  if (store.pendingLog.length > LOG_LIMIT) store.pendingLog.splice(0, store.pendingLog.length - LOG_LIMIT);
  schedule();
}

function badge(state) {
  const b = document.createElement("span");
  b.className = `badge s-${state}`;
  const sym = document.createElement("span");
  sym.setAttribute("aria-hidden", "true");
  sym.textContent = SYMBOLS[state] ?? "?";
  b.append(sym, state);
  return b;
}

function logLine(e) {
  const li = document.createElement("li");
  li.dataset.type = e.type;
  const time = document.createElement("time");
  time.dateTime = new Date(e.at).toISOString();
  time.textContent = clock(e.at);
  time.title = dateTime(e.at);
  const what = document.createElement("span");
  what.className = "what";
  if (e.type === "state") {
    li.dataset.target = e.target;
    li.dataset.from = e.from;
    li.dataset.to = e.to;
    const target = document.createElement("span");
    target.className = "target";
    target.textContent = e.target;
    const arrow = document.createElement("span");
    arrow.className = "arrow";
    arrow.textContent = "→";
    const why = document.createElement("span");
    why.className = "why";
    why.textContent = [e.reason, e.errno].filter(Boolean).join(" · ");
    what.append(target, " ", badge(e.from), arrow, badge(e.to), why);
  } else {
    what.textContent = e.text;
  }
  li.append(time, what);
  return li;
}

function drawLog() {
  if (store.pendingLog.length === 0) return;
  const lines = store.pendingLog.splice(0).map(logLine).reverse();
  el.log.prepend(...lines);
  while (el.log.childElementCount > LOG_LIMIT) el.log.lastElementChild.remove();
}

/* ---------------------------------------------------------------- render */

let renderTimer;
let lastRender = 0;

function schedule() {
  if (renderTimer !== undefined) return;
  const wait = Math.max(0, RENDER_EVERY - (Date.now() - lastRender));
  renderTimer = setTimeout(() => requestAnimationFrame(render), wait);
}

function render() {
  renderTimer = undefined;
  lastRender = Date.now();
  const now = Date.now();
  try {
    drawHeader(now);
    drawGrid(now);
    drawDetail(now);
    drawCluster(now);
    drawLog();
  } catch (err) {
    console.error("render failed", err);
  }
}

function drawHeader(now) {
  const i = store.info;
  if (i) {
    const bits = [
      [i.name, i.version && `v${i.version}`].filter(Boolean).join(" "),
      i.profile && `profile ${i.profile}`,
      Number.isFinite(i.startedAt) && `up ${formatDuration(now - i.startedAt)}`,
    ].filter(Boolean);
    setText(el.info, bits.join(" · "));
  } else setText(el.info, "monitor");

  el.conn.dataset.conn = store.conn;
  let text = store.conn === "live" ? "live" : store.conn === "reconnecting" ? "reconnecting…" : "connecting…";
  if (store.conn !== "live" && store.lastData) text += ` (data from ${relative(store.lastData, now)})`;
  setText(el.connText, text);
  el.layout.classList.toggle("stale", store.conn !== "live" && store.everLive);

  const counts = new Map();
  for (const s of store.targets.values()) counts.set(s.state, (counts.get(s.state) ?? 0) + 1);
  const sig = STATES.map((s) => counts.get(s) ?? 0).join(",");
  if (el.counts.dataset.sig !== sig) {
    el.counts.dataset.sig = sig;
    const items = STATES.filter((s) => counts.get(s)).map((s) => {
      const li = document.createElement("li");
      const b = badge(s);
      b.prepend(`${counts.get(s)} `);
      li.append(b);
      return li;
    });
    el.counts.replaceChildren(...items);
  }
  const bad = (counts.get("down") ?? 0) + (counts.get("suspect") ?? 0);
  const title = bad ? `(${bad}) Lifeline — ${counts.get("down") ?? 0} down` : "Lifeline";
  if (document.title !== title) document.title = title;
}

function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

function setAttr(node, name, value) {
  if (node.getAttribute(name) !== value) node.setAttribute(name, value);
}

/** @type {Map<string, HTMLElement>} */
const tiles = new Map();

function visibleTargets() {
  const f = store.filter.trim().toLowerCase();
  let list = [...store.targets.values()];
  if (f) {
    list = list.filter(
      (s) =>
        s.id.toLowerCase().includes(f) ||
        s.state === f ||
        (Array.isArray(s.tags) && s.tags.some((t) => String(t).toLowerCase().includes(f))),
    );
  }
  if (store.order === "problems") {
    list.sort((a, b) => (URGENCY[a.state] ?? 9) - (URGENCY[b.state] ?? 9) || b.since - a.since);
  } else if (store.order === "id")
    list.sort((a, b) => a.id.localeCompare(b.id, undefined, { numeric: true }));
  return list;
}

function makeTile(id) {
  const t = document.createElement("button");
  t.type = "button";
  t.className = "tile";
  t.dataset.target = id;
  t.innerHTML =
    '<span class="tile-head"><span class="badge"></span><span class="tile-id"></span></span>' +
    '<span class="tile-reason"></span>' +
    '<span class="tile-meta"><span class="since">since <time></time></span>' +
    '<span class="lat"></span><span class="avail"></span><span class="flaps"></span></span>';
  t.querySelector(".tile-id").textContent = id;
  t.addEventListener("click", () => select(store.selected === id ? null : id));
  return t;
}

function drawGrid(now) {
  const list = visibleTargets();
  el.empty.hidden = list.length > 0;
  if (list.length === 0)
    el.empty.textContent = store.targets.size ? "No target matches the filter." : "No targets yet.";
  const wanted = [];
  for (const s of list) {
    let t = tiles.get(s.id);
    if (!t) {
      t = makeTile(s.id);
      tiles.set(s.id, t);
    }
    updateTile(t, s, now);
    wanted.push(t);
  }
  const keep = new Set(wanted);
  for (const [id, t] of tiles) {
    if (!store.targets.has(id)) tiles.delete(id);
    if (!keep.has(t)) t.remove();
  }
  let ref = el.grid.firstChild;
  for (const t of wanted) {
    if (t === ref) ref = ref.nextSibling;
    else el.grid.insertBefore(t, ref);
  }
}

function updateTile(t, s, now) {
  const state = s.state;
  if (t.dataset.state !== state) {
    t.dataset.state = state;
    t.className = `tile s-${state}`;
    const b = t.querySelector(".badge");
    b.className = `badge s-${state}`;
    b.replaceChildren(...badge(state).childNodes);
  }
  setAttr(t, "aria-current", String(store.selected === s.id));
  const reason = s.reason || state;
  setText(t.querySelector(".tile-reason"), shortText(reason, 80));
  const since = t.querySelector("time");
  const iso = Number.isFinite(s.since) ? new Date(s.since).toISOString() : "";
  if (since.dateTime !== iso) since.dateTime = iso;
  setText(since, relative(s.since, now));
  const tr = s.trends ?? {};
  // Passive checks (heartbeat) have no latency percentiles: their round trip instead.
  const hbLast = heartbeatOf(s)?.last;
  const rtt = hbLast && hbLast.status !== "fail" ? hbLast.latency : undefined;
  const lat =
    tr.latency?.p50 == null && rtt > 0
      ? `rtt ${formatLatency(rtt)}`
      : `p50 ${formatLatency(tr.latency?.p50)}`;
  setText(t.querySelector(".lat"), lat);
  setText(t.querySelector(".avail"), `1h ${formatPct(tr.availability?.["1h"])}`);
  setText(t.querySelector(".flaps"), `flaps ${tr.flaps1h ?? 0}`);
  // No relative time in the title: it would change under a hovering pointer every second.
  const at = Number.isFinite(s.since) ? dateTime(s.since) : "?";
  const title = `${s.id}: ${state} since ${at}\n${reason}${s.tags?.length ? `\ntags: ${s.tags.join(", ")}` : ""}`;
  setAttr(t, "title", title);
}

let chart;

function stat(label, value, hint) {
  const d = document.createElement("div");
  const dt = document.createElement("dt");
  dt.textContent = label;
  const dd = document.createElement("dd");
  dd.textContent = value;
  if (hint) d.title = hint;
  d.append(dt, dd);
  return d;
}

function drawDetail(now) {
  const id = store.selected;
  const s = id ? store.targets.get(id) : undefined;
  el.detail.hidden = !s;
  el.layout.classList.toggle("has-detail", Boolean(s));
  if (!s) return;
  el.detail.dataset.target = s.id;
  el.detail.dataset.state = s.state;
  setText(el.dId, s.id);
  if (el.dBadge.dataset.state !== s.state) {
    el.dBadge.dataset.state = s.state;
    el.dBadge.className = `badge s-${s.state}`;
    el.dBadge.replaceChildren(...badge(s.state).childNodes);
  }
  setText(el.dReason, s.reason || "");
  setText(el.dSince, Number.isFinite(s.since) ? dateTime(s.since) : "—");
  if (Number.isFinite(s.since)) el.dSince.dateTime = new Date(s.since).toISOString();
  setText(el.dSinceRel, `(${relative(s.since, now)})`);
  const ev = s.evidence ?? {};
  setText(el.dKind, [s.kind, ev.errno].filter(Boolean).join(" · "));

  const tr = s.trends ?? {};
  const av = tr.availability ?? {};
  const lat = tr.latency ?? {};
  const errors = Object.entries(tr.errors ?? {})
    .filter(([, n]) => n > 0)
    .map(([k, n]) => `${k} ${n}`)
    .join(", ");
  const stats = [
    stat("avail 1h", formatPct(av["1h"]), "time not down in the last hour (observed time only)"),
    stat("avail 24h", formatPct(av["24h"])),
    stat("flaps 1h", String(tr.flaps1h ?? 0), "times it went down in the last hour"),
    stat("MTTR", formatDuration(tr.mttr), "mean time to recovery"),
    stat("MTBF", formatDuration(tr.mtbf), "mean time between failures"),
    stat("p50 / p99", `${formatLatency(lat.p50)} / ${formatLatency(lat.p99)}`, `${lat.samples ?? 0} samples`),
    stat("errors", errors || "none", "failed results by kind since the monitor started"),
  ];
  const sig = stats.map((d) => d.textContent).join("|");
  if (el.dStats.dataset.sig !== sig) {
    el.dStats.dataset.sig = sig;
    el.dStats.replaceChildren(...stats);
  }

  // Timeline: history plus the live state (the snapshot may be newer than the last event).
  const d = store.detail;
  const segs = segments(d.transitions, {
    now,
    window: TIMELINE_WINDOW,
    current: { state: s.state, since: s.since, reason: s.reason },
    startedAt: store.info?.startedAt,
  });
  renderTimeline(el.dTimeline, el.dLegend, segs, { now, window: TIMELINE_WINDOW });

  // Chart
  if (d.loaded && d.chartDirty) {
    d.chartDirty = false;
    if (!chart || chart.el !== el.dChart) chart = new LatencyChart(el.dChart);
    chart.setData(d.results);
    const fails = d.results.filter((r) => r.status === "fail").length;
    setText(
      el.dChartNote,
      d.results.length
        ? `${d.results.length} results since ${clock(d.results[0].at)}, ${fails} failed (red points)`
        : "no results yet",
    );
  } else if (d.error) setText(el.dChartNote, `history unavailable: ${d.error}`);
  else if (!d.loaded) setText(el.dChartNote, "loading history…");

  // Checks
  const rows = (s.checks ?? []).map((c) => {
    const tr2 = document.createElement("tr");
    const last = c.last;
    const cells = [
      `${c.name}${c.type && c.type !== c.name ? ` (${c.type})` : ""}${c.critical === false ? " · non-critical" : ""}`,
      `${c.verdict ?? "—"}${c.slow ? " · slow" : ""}${c.warning ? " · warning" : ""}`,
      formatLatency(c.srtt),
      formatLatency(c.timeout),
      last ? `${last.status}: ${last.message ?? ""} (${relative(last.at, now)})` : "—",
    ];
    cells.forEach((text, i) => {
      const td = document.createElement("td");
      if (i === 3) td.className = "opt";
      td.textContent = text;
      tr2.append(td);
    });
    return tr2;
  });
  const csig = rows.map((r) => r.textContent).join("|");
  if (el.dChecks.dataset.sig !== csig) {
    el.dChecks.dataset.sig = csig;
    el.dChecks.replaceChildren(...rows);
  }

  // Recent changes, newest first
  const recent = d.transitions.slice(-15).reverse();
  const tsig = `${recent.length}:${recent[0]?.at ?? ""}:${Math.floor(now / 5000)}`;
  if (el.dTransitions.dataset.sig !== tsig) {
    el.dTransitions.dataset.sig = tsig;
    el.dTransitions.replaceChildren(
      ...recent.map((t) => {
        const li = document.createElement("li");
        li.title = dateTime(t.at);
        li.append(`${clock(t.at)} `, badge(t.from), " → ", badge(t.to), ` ${t.reason ?? ""}`);
        return li;
      }),
    );
    if (recent.length === 0) {
      const li = document.createElement("li");
      li.className = "muted";
      li.textContent = d.loaded ? "no state changes recorded" : "…";
      el.dTransitions.append(li);
    }
  }
}

/** Last known load per heartbeat-checked target (a failed heartbeat carries none). */
const lastLoad = new Map();
/** Targets whose history was searched for their last load (once each per page). */
const seeded = new Set();

/** A node that is down now still has a last known load in its history: find it. */
async function seedLoad(id) {
  seeded.add(id);
  try {
    const h = await getJson(`api/targets/${encodeURIComponent(id)}/history`);
    const results = Array.isArray(h?.results) ? h.results : [];
    for (let i = results.length - 1; i >= 0; i--) {
      const r = results[i];
      if (r?.detail?.load && typeof r.detail === "object") {
        const known = lastLoad.get(id);
        if (!known || known.at < r.at) lastLoad.set(id, { ...r.detail, at: r.at });
        schedule();
        return;
      }
    }
  } catch {
    seeded.delete(id); // try again on a later redraw
  }
}

function heartbeatOf(s) {
  return (s.checks ?? []).find((c) => c.type === "heartbeat");
}

function drawCluster(now) {
  const rows = [];
  for (const s of store.targets.values()) {
    const hb = heartbeatOf(s);
    if (!hb) continue;
    const det = hb.last?.detail;
    if (det && typeof det === "object" && det.load) lastLoad.set(s.id, { ...det, at: hb.last.at });
    else if (!lastLoad.has(s.id) && !seeded.has(s.id)) seedLoad(s.id);
    const known = lastLoad.get(s.id);
    const nodeId = det?.nodeId ?? known?.nodeId ?? "—";
    const load = known?.load ?? {};
    const fresh = det?.load !== undefined;
    const tr = document.createElement("tr");
    tr.className = `s-${s.state}`;
    tr.dataset.target = s.id;
    tr.dataset.state = s.state;
    tr.title = `${s.id}: ${s.reason}`;
    tr.addEventListener("click", () => select(s.id));
    const node = document.createElement("td");
    const strong = document.createElement("strong");
    strong.textContent = nodeId;
    const sub = document.createElement("span");
    sub.className = "sub addr";
    sub.textContent = s.id;
    node.append(strong, sub);
    const state = document.createElement("td");
    state.append(badge(s.state));
    if (known?.state && known.state !== s.state) {
      const self = document.createElement("span");
      self.className = "sub";
      self.textContent = `node says ${known.state}`;
      state.append(self);
    }
    const num = (text, opt) => {
      const td = document.createElement("td");
      td.className = opt ? "num opt" : "num";
      td.textContent = text;
      return td;
    };
    const hbCell = document.createElement("td");
    hbCell.className = "opt";
    hbCell.textContent = known
      ? `#${known.seq ?? "?"} ${relative(known.at, now)}${fresh ? "" : " (stale)"}`
      : "none yet";
    tr.append(
      node,
      state,
      num(formatCount(load.connections)),
      num(formatCount(load.sessions)),
      num(formatLatency(load.lag)),
      num(formatCount(load.queue), true),
      num(formatCpu(load.cpu)),
      hbCell,
    );
    rows.push(tr);
  }
  el.cluster.hidden = rows.length === 0;
  el.layout.classList.toggle("no-cluster", rows.length === 0);
  const sig = rows.map((r) => `${r.dataset.target}:${r.dataset.state}:${r.textContent}`).join("|");
  if (el.nodes.dataset.sig !== sig) {
    el.nodes.dataset.sig = sig;
    el.nodes.replaceChildren(...rows);
  }
  for (const id of lastLoad.keys()) if (!store.targets.has(id)) lastLoad.delete(id);
}

/* ---------------------------------------------------------------- start */

el.filter.addEventListener("input", () => {
  store.filter = el.filter.value;
  schedule();
});
el.order.value = store.order;
el.order.addEventListener("change", () => {
  store.order = el.order.value;
  localStorage.setItem("lifeline.order", store.order);
  schedule();
});
el.dClose.addEventListener("click", () => select(null));
document.addEventListener("keydown", (e) => {
  if (e.key === "Escape" && store.selected) select(null);
});

const fromHash = /^#target=(.+)$/.exec(location.hash);
if (fromHash) {
  try {
    select(decodeURIComponent(fromHash[1]));
  } catch {
    // a malformed hash selects nothing
  }
}

setInterval(schedule, TICK_EVERY);
setInterval(() => {
  if (store.conn === "live") refresh();
}, REFRESH_EVERY);
// Back from a sleeping laptop or a background tab: catch up at once.
document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible" && store.conn === "live") refresh();
});

/** The event log starts with the latest state changes the monitor remembers. */
async function loadRecent() {
  try {
    const recent = await getJson(`api/transitions?limit=${LOG_LIMIT}`);
    for (const t of recent) log({ type: "state", ...t });
  } catch {
    // an older monitor without /api/transitions: the log starts empty
  }
}

loadInfo();
loadRecent().finally(connect);
schedule();
