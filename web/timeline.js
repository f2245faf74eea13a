import { clock, formatDuration, STATES } from "./format.js";

/**
 * The state timeline of one target over a window (the last hour): segments reconstructed
 * from its transitions (oldest first). Time before the first known transition and before
 * the monitor started is "no data", not a state.
 *
 * @param {Array<{from: string, to: string, at: number, reason: string}>} transitions
 * @param {{now: number, window: number, current?: {state: string, since: number, reason: string}, startedAt?: number}} o
 * @returns {Array<{state: string, from: number, to: number, reason: string}>}
 */
export function segments(transitions, o) {
  const { now, window } = o;
  const start = now - window;
  const sorted = [...transitions].sort((a, b) => a.at - b.at);
  const raw = [];
  if (sorted.length === 0) {
    if (o.current) {
      const from = Math.max(o.current.since, o.startedAt ?? o.current.since);
      raw.push({ state: o.current.state, from, to: now, reason: o.current.reason });
    }
  } else {
    const first = sorted[0];
    // Before the first transition we know the state it left, from when the monitor started.
    if (o.startedAt !== undefined && o.startedAt < first.at) {
      raw.push({ state: first.from, from: o.startedAt, to: first.at, reason: "" });
    }
    for (let i = 0; i < sorted.length; i++) {
      const t = sorted[i];
      const end = i + 1 < sorted.length ? sorted[i + 1].at : now;
      raw.push({ state: t.to, from: t.at, to: end, reason: t.reason });
    }
    // A state change the stream told us about after the history was read.
    const last = sorted[sorted.length - 1];
    if (o.current && o.current.since > last.at && o.current.state !== last.to) {
      raw[raw.length - 1].to = o.current.since;
      raw.push({ state: o.current.state, from: o.current.since, to: now, reason: o.current.reason });
    }
  }
  const out = [];
  for (const s of raw) {
    const from = Math.max(s.from, start);
    const to = Math.min(s.to, now);
    if (to <= from) continue;
    const prev = out[out.length - 1];
    if (prev && prev.state === s.state && prev.to >= from) prev.to = to;
    else out.push({ state: s.state, from, to, reason: s.reason });
  }
  return out;
}

/** Time per state in the segments, ms, in STATES order, zeros left out. */
export function totals(segs) {
  const by = new Map();
  for (const s of segs) by.set(s.state, (by.get(s.state) ?? 0) + (s.to - s.from));
  return STATES.filter((st) => by.get(st)).map((st) => ({ state: st, ms: by.get(st) }));
}

/**
 * Draws the timeline into `bar` (positioned spans, one per segment, each with a title) and
 * its text summary into `legend`: the states are in words there, not only in colour.
 */
export function renderTimeline(bar, legend, segs, o) {
  const { now, window } = o;
  const start = now - window;
  // Spans are reused in place: the bar is redrawn often and a hovered title should stay.
  while (bar.childElementCount > segs.length) bar.lastElementChild.remove();
  segs.forEach((s, i) => {
    let el = bar.children[i];
    if (!el) {
      el = document.createElement("span");
      bar.append(el);
    }
    const cls = `seg s-${s.state}`;
    if (el.className !== cls) el.className = cls;
    el.dataset.state = s.state;
    el.style.left = `${(((s.from - start) / window) * 100).toFixed(3)}%`;
    el.style.width = `${(((s.to - s.from) / window) * 100).toFixed(3)}%`;
    const why = s.reason ? ` — ${s.reason}` : "";
    const title = `${s.state} ${clock(s.from)}–${clock(s.to)} (${formatDuration(s.to - s.from)})${why}`;
    if (el.title !== title) el.title = title;
  });
  const parts = totals(segs).map((t) => `${t.state} ${formatDuration(t.ms)}`);
  const summary = parts.length ? parts.join(" · ") : "no data in this window";
  bar.setAttribute("aria-label", `State over the last ${Math.round(window / 60_000)} minutes: ${summary}`);
  const covered = segs.reduce((a, s) => a + (s.to - s.from), 0);
  const sig = `${summary}|${Math.round(covered / 1000)}`;
  if (legend.dataset.sig === sig) return;
  legend.dataset.sig = sig;
  const items = totals(segs).map((t) => {
    const li = document.createElement("li");
    const sw = document.createElement("span");
    sw.className = `swatch s-${t.state}`;
    sw.setAttribute("aria-hidden", "true");
    li.append(sw, `${t.state} ${formatDuration(t.ms)}`);
    return li;
  });
  if (covered < window - 1000) {
    const li = document.createElement("li");
    const sw = document.createElement("span");
    sw.className = "swatch none";
    sw.setAttribute("aria-hidden", "true");
    li.className = "muted";
    li.append(sw, items.length ? `no data ${formatDuration(window - covered)}` : "no data in this window");
    items.push(li);
  }
  legend.replaceChildren(...items);
}
