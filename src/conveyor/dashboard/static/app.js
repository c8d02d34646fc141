// conveyor dashboard: no build step, no library.  Data arrive as server-sent events
// (the server samples the store; pages never read it themselves).  Every value from the
// store is written with textContent, never as HTML.
"use strict";

const CSRF = document.querySelector('meta[name="conveyor-csrf"]').content;
const READ_ONLY = document.querySelector('meta[name="conveyor-read-only"]').content === "1";
const WINDOW = 300; // seconds shown in the charts
const SVG = "http://www.w3.org/2000/svg";
// A point: [time, ready, delayed, leased, dead, rate_in, rate_out]
const DEPTHS = [[1, "ready"], [2, "delayed"], [3, "leased"], [4, "dead"]];
const RATES = [[5, "in"], [6, "out"]];
const COLORS = { ready: "#2563eb", delayed: "#9ca3af", leased: "#d97706", dead: "#dc2626",
                 in: "#16a34a", out: "#7c3aed" };

const $ = (selector, root = document) => root.querySelector(selector);

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}

function number(value) { return value === null || value === undefined ? "–" : String(value); }
function rate(value) { return value === null || value === undefined ? "–" : value.toFixed(1); }
function age(seconds) {
  if (seconds === null || seconds === undefined) return "not recorded";
  return seconds < 60 ? `${seconds.toFixed(1)} s` : `${(seconds / 60).toFixed(1)} min`;
}
function when(timestamp) { return new Date(timestamp * 1000).toLocaleString(); }

function status(text, live) {
  const node = $("#status");
  node.textContent = text;
  node.className = "status " + (live ? "live" : "down");
}

function showError(message) {
  const node = $("#error");
  node.textContent = message || "";
  node.hidden = !message;
}

function trim(history) {
  const last = history.length ? history[history.length - 1][0] : 0;
  while (history.length && history[0][0] < last - WINDOW) history.shift();
}

// -- charts: polylines in an inline SVG ------------------------------------------------

function chart(svg, history, series, options = {}) {
  const bare = Boolean(options.thin); // a sparkline: the lines alone, no labels
  while (svg.firstChild) svg.removeChild(svg.firstChild);
  const width = 600, height = 160, left = bare ? 0 : 36;
  const bottom = bare ? 4 : 16, top = bare ? 4 : 8;
  const now = history.length ? history[history.length - 1][0] : Date.now() / 1000;
  let high = options.floor || 1;
  for (const point of history) {
    for (const [index] of series) if (point[index] !== null) high = Math.max(high, point[index]);
  }
  if (options.bound) high = Math.max(high, options.bound);
  high = Math.ceil(high * 1.1);
  // The time axis spans the history kept so far, up to WINDOW: a new page fills its width.
  const span = history.length ? Math.min(WINDOW, Math.max(10, now - history[0][0])) : WINDOW;
  const x = (t) => left + ((t - (now - span)) / span) * (width - left - 4);
  const y = (v) => top + (1 - v / high) * (height - top - bottom);
  const line = (x1, y1, x2, y2, color, dashed) => {
    const node = document.createElementNS(SVG, "line");
    Object.entries({ x1, y1, x2, y2, stroke: color, "stroke-width": 1 }).forEach(
      ([k, v]) => node.setAttribute(k, v));
    node.setAttribute("vector-effect", "non-scaling-stroke");
    if (dashed) node.setAttribute("stroke-dasharray", "4 3");
    svg.appendChild(node);
  };
  const label = (text, tx, ty, anchor) => {
    if (bare) return;
    const node = document.createElementNS(SVG, "text");
    node.setAttribute("x", tx); node.setAttribute("y", ty);
    node.setAttribute("font-size", "10"); node.setAttribute("fill", "#6b7280");
    node.setAttribute("text-anchor", anchor || "end");
    node.textContent = text;
    svg.appendChild(node);
  };
  line(left, y(0), width - 4, y(0), "#d1d5db");
  line(left, y(high), width - 4, y(high), "#f3f4f6");
  label(String(high), left - 4, y(high) + 4); label("0", left - 4, y(0) + 4);
  label(span < 120 ? `${Math.round(span)} s ago` : `${Math.round(span / 60)} min ago`,
        left, height - 2, "start"); label("now", width - 4, height - 2);
  if (options.bound) {
    line(left, y(options.bound), width - 4, y(options.bound), "#111827", true);
    label("maxsize", width - 6, y(options.bound) - 3);
  }
  if (options.note) { label(options.note, width / 2, height / 2, "middle"); return; }
  for (const [index, name] of series) {
    const points = history.filter((p) => p[index] !== null && p[0] >= now - span)
      .map((p) => `${x(p[0]).toFixed(1)},${y(p[index]).toFixed(1)}`);
    if (!points.length) continue;
    const node = document.createElementNS(SVG, "polyline");
    node.setAttribute("points", points.join(" "));
    node.setAttribute("fill", "none");
    node.setAttribute("stroke", COLORS[name]);
    node.setAttribute("stroke-width", bare ? 1.5 : 1.8);
    node.setAttribute("vector-effect", "non-scaling-stroke");
    node.setAttribute("data-series", name);
    svg.appendChild(node);
  }
}

// -- the queues of the store -----------------------------------------------------------

const histories = new Map();

function queueRow(name) {
  // Rows are made once and updated in place: a link or a button under the pointer is
  // never replaced while it is being clicked.
  const row = el("tr");
  row.dataset.queue = name;
  const link = el("a", name);
  link.href = "/queue?name=" + encodeURIComponent(name);
  const first = el("td"); first.appendChild(link); row.appendChild(first);
  for (const field of ["ready", "delayed", "leased", "dead", "maxsize", "state", "rate_in", "rate_out"]) {
    const cell = el("td", "–", field === "state" ? "" : "num");
    cell.dataset.field = field;
    row.appendChild(cell);
  }
  const spark = document.createElementNS(SVG, "svg");
  spark.setAttribute("viewBox", "0 0 600 160");
  spark.setAttribute("width", "160");
  spark.setAttribute("preserveAspectRatio", "none");
  spark.setAttribute("height", "32");
  const last = el("td"); last.appendChild(spark); row.appendChild(last);
  return row;
}

const rows = new Map();

function renderOverview(data, first) {
  showError(data.error);
  const body = $("#queues tbody");
  const ordered = [];
  for (const queue of data.queues) {
    let history = histories.get(queue.name);
    if (first || !history) history = queue.history ? queue.history.slice() : [];
    else if (queue.point && (!history.length || history[history.length - 1][0] < queue.point[0]))
      history.push(queue.point);
    trim(history);
    histories.set(queue.name, history);
    if (!rows.has(queue.name)) rows.set(queue.name, queueRow(queue.name));
    const row = rows.get(queue.name);
    const set = (field, text, className) => {
      const cell = $(`td[data-field="${field}"]`, row);
      if (cell.textContent !== text) cell.textContent = text;
      if (className !== undefined) cell.className = className;
    };
    for (const field of ["ready", "delayed", "leased", "dead"]) set(field, number(queue[field]));
    set("maxsize", queue.maxsize === null ? (queue.error ? "–" : "unbounded") : String(queue.maxsize));
    if (queue.error) set("state", queue.error, "shutdown");
    else set("state", queue.shutdown ? "shut down" : "open", queue.shutdown ? "shutdown" : "");
    set("rate_in", queue.counted ? rate(queue.rate_in) : "–");
    set("rate_out", queue.counted ? rate(queue.rate_out) : "–");
    chart($("svg", row), history, DEPTHS, { thin: true, bound: queue.maxsize });
    ordered.push(row);
  }
  for (const name of [...rows.keys()]) {
    if (!data.queues.some((queue) => queue.name === name)) { rows.get(name).remove(); rows.delete(name); }
  }
  ordered.forEach((row, index) => { if (body.children[index] !== row) body.insertBefore(row, body.children[index] || null); });
  $("#no-queues").hidden = data.queues.length > 0;
}

// -- one queue -------------------------------------------------------------------------

let queueHistory = [];
let lastShown = "";

function renderQueue(data, first) {
  if (data.gone) { showError("This queue is no longer in the store."); return; }
  showError(data.error);
  if (first) queueHistory = (data.history || []).slice();
  else if (data.point && (!queueHistory.length ||
           queueHistory[queueHistory.length - 1][0] < data.point[0])) queueHistory.push(data.point);
  trim(queueHistory);
  const set = (field, text) => { $(`#counts [data-field="${field}"]`).textContent = text; };
  for (const field of ["ready", "delayed", "leased", "dead"]) set(field, number(data[field]));
  set("maxsize", data.maxsize === null ? "unbounded" : String(data.maxsize));
  set("state", data.shutdown ? "shut down" : "open");
  set("oldest_age", age(data.oldest_age));
  set("rates", data.counted ? `${rate(data.rate_in)} / ${rate(data.rate_out)}` : "not counted");
  chart($("#depth-chart"), queueHistory, DEPTHS, { bound: data.maxsize });
  chart($("#rate-chart"), queueHistory, RATES,
        data.counted ? { floor: 5 } : { note: "this store keeps no counters of puts and deliveries" });

  const shown = JSON.stringify([data.dead, data.dead_letters, data.peek]);
  if (shown === lastShown) return;  // unchanged: leave the buttons where they are
  lastShown = shown;
  $("#dead-count").textContent = `(${number(data.dead)}` +
    (data.dead > data.dead_letters.length ? `, the oldest ${data.dead_letters.length} shown)` : ")");
  const deadRows = data.dead_letters.map((letter) => {
    const row = el("tr");
    row.dataset.id = letter.id;
    row.append(el("td", letter.id), el("td", letter.attempts, "num"), el("td", when(letter.failed_at)),
               el("td", letter.error), el("td", letter.item, "item"));
    if (!READ_ONLY) {
      const button = el("button", "requeue", "requeue");
      button.type = "button";
      button.addEventListener("click", () => change("requeue", { id: letter.id }));
      const cell = el("td", null, "change"); cell.appendChild(button); row.appendChild(cell);
    }
    return row;
  });
  $("#dead tbody").replaceChildren(...deadRows);
  const peekRows = data.peek.map((item, index) => {
    const row = el("tr");
    row.dataset.id = item.id;
    row.append(el("td", index + 1, "num"), el("td", item.id), el("td", item.attempts, "num"),
               el("td", item.item, "item"));
    return row;
  });
  $("#peek tbody").replaceChildren(...peekRows);
}

async function change(action, fields) {
  const name = new URLSearchParams(location.search).get("name");
  const response = await fetch(`/api/queue/${action}?name=${encodeURIComponent(name)}`, {
    method: "POST",
    headers: { "X-CSRF-Token": CSRF, "Content-Type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams(fields),
    credentials: "same-origin",
  });
  const reply = await response.json().catch(() => ({ error: response.statusText }));
  showError(response.ok ? "" : reply.error);
}

function confirmed(question, action, fields) {
  return () => { if (window.confirm(question)) change(action, fields); };
}

// -- wiring ----------------------------------------------------------------------------

function listen(source, render) {
  let first = true;
  const events = new EventSource(source);
  events.onopen = () => { status("live", true); first = true; };
  events.onerror = () => status("reconnecting…", false);
  events.onmessage = (message) => {
    const data = JSON.parse(message.data);
    render(data, first);
    first = false;
    document.body.dataset.version = data.version;
  };
}

document.addEventListener("DOMContentLoaded", () => {
  if (READ_ONLY) {
    document.body.classList.add("read-only");
    document.querySelectorAll(".change").forEach((node) => node.remove());
  }
  if (location.pathname === "/queue") {
    const name = new URLSearchParams(location.search).get("name") || "";
    document.title = `${name} · conveyor dashboard`;
    $("#queue-name").textContent = name;
    $("#detail").hidden = false;
    if (!READ_ONLY) {
      $("#requeue-all").addEventListener("click", () => change("requeue", { all: "1" }));
      $("#purge-dead").addEventListener("click",
        confirmed(`Delete every dead letter of ${name}?`, "purge", { which: "dead" }));
      $("#purge-ready").addEventListener("click",
        confirmed(`Delete every waiting item of ${name}? Leased items stay.`, "purge", { which: "ready" }));
    }
    fetch(`/api/queue?name=${encodeURIComponent(name)}`, { credentials: "same-origin" })
      .then(async (response) => {
        if (response.ok) listen(`/api/queue/events?name=${encodeURIComponent(name)}`, renderQueue);
        else {
          status("not found", false);
          $("#detail").hidden = true;
          showError((await response.json()).error);
        }
      });
  } else {
    $("#overview").hidden = false;
    listen("/api/events", renderOverview);
  }
});
