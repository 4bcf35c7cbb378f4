// MAS work-up (SMART app): renders the work-up document of /app/api/workup. Plain JavaScript, no build
// step, no third-party code; it talks to this server only (the EHR's token never reaches the browser).
"use strict";

const $ = (selector) => document.querySelector(selector);
const SVG = "http://www.w3.org/2000/svg";
// One colour per criteria set (WCAG AA against white); lines also differ by dash pattern and label.
const SET_STYLE = {
  trial: { colour: "#6a1b9a", dash: "8 4" },
  eular2016: { colour: "#0d47a1", dash: "2 3" },
  hlh2004: { colour: "#b71c1c", dash: "10 3 2 3" },
  hscore: { colour: "#1b5e20", dash: "4 4" },
};
const STATUS_TEXT = { met: "Met", "not met": "Not met", unknown: "Unknown" };
const STATUS_ICON = { met: "●", "not met": "○", unknown: "?" };

function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}

// The document's times are ISO 8601 in the service's zone ("2026-11-27T02:07+00:00"): shown as written,
// never converted to the browser's zone.
function localTime(iso) {
  if (!iso) return "—";
  const match = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})/.exec(iso);
  if (!match) return iso;
  const months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
  return `${Number(match[3])} ${months[Number(match[2]) - 1]} ${match[1]} ${match[4]}:${match[5]}`;
}

function formatNumber(value) {
  return Number(value).toLocaleString("en-US", { maximumFractionDigits: 2 });
}

async function load() {
  const handle = new URLSearchParams(window.location.search).get("s");
  if (!handle) return showProblem("No app session: launch the app from the EHR (or the sandbox's card link).");
  let response;
  try {
    response = await fetch(`/app/api/workup?s=${encodeURIComponent(handle)}`, { headers: { Accept: "application/json" }, credentials: "same-origin" });
  } catch (error) {
    return showProblem("The service could not be reached.");
  }
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    const message = body && body.issue ? body.issue.map((i) => i.diagnostics).join("; ") : `HTTP ${response.status}`;
    return showProblem(`${message.charAt(0).toUpperCase()}${message.slice(1)}.`, response.status);
  }
  render(body);
}

function showProblem(message, status) {
  const element = $("#status");
  element.className = "problem";
  element.setAttribute("role", "alert");
  element.dataset.status = status || "";
  element.textContent = message;
}

function render(data) {
  const workup = data.workup;
  lastData = data;
  renderBanner(data);
  renderDecision(workup, data);
  renderCharts(workup, data);
  renderSets(workup);
  renderMore(workup, data);
  $("#zone").textContent = workup.timezone;
  const status = $("#status");
  status.textContent = `Patient ${data.patient.id}: read from ${data.fhirServer} at ${localTime(workup.asOf)} (${workup.timezone}).`;
  status.className = "muted";
  document.title = `MAS work-up: ${data.patient.name || data.patient.id}`;
  document.body.dataset.ready = "true";
}

function renderBanner(data) {
  const banner = $("#banner");
  const p = data.patient;
  banner.innerHTML = `<strong id="patient-name">${escapeHtml(p.name || "Name not recorded")}</strong>`
    + `<span>ID <span id="patient-id">${escapeHtml(p.id)}</span></span>`
    + `<span>${escapeHtml(p.gender || "sex not recorded")}</span>`
    + `<span>born ${escapeHtml(p.birthDate || "unknown")}</span>`;
  // need_patient_banner false: the EHR shows its own banner around the app (SMART App Launch 2.x).
  banner.hidden = data.needPatientBanner === false;
}

function renderDecision(workup, data) {
  const decision = workup.decision;
  const section = $("#decision");
  const indicator = decision.indicator || "none";
  const heading = { critical: "MAS likely", warning: "Suggestive of MAS: work-up incomplete or adjunct met", none: "No MAS criteria set met" }[indicator];
  const names = Object.fromEntries(workup.sets.concat([workup.trends]).map((s) => [s.key, s.name]));
  section.dataset.indicator = indicator;
  $("#decision-body").innerHTML = `<p class="verdict"><span class="badge badge-${indicator}">${escapeHtml(heading)}</span></p>`
    + (decision.summary ? `<p class="summary">${escapeHtml(decision.summary)}</p>` : "")
    + (decision.setsMet.length ? `<p>Sets met: ${decision.setsMet.map((k) => escapeHtml(names[k] || k)).join("; ")}.</p>` : "")
    + (data.notes.length ? `<ul class="notes" aria-label="Data notes">${data.notes.map((n) => `<li>${escapeHtml(n)}</li>`).join("")}</ul>` : "");
  section.hidden = false;
}

function renderCharts(workup, data) {
  const container = $("#charts");
  container.innerHTML = "";
  const end = Date.parse(workup.asOf);
  const start = end - data.labWindowHours * 3600000;
  $("#charts-note").textContent = `The last ${data.labWindowHours} h to ${localTime(workup.asOf)}; dashed lines are the criteria thresholds; hollow points are preliminary results.`;
  $("#charts-section").hidden = false;
  for (const series of workup.series) chartFigure(container, series, start, end, data.labWindowHours);
  chartsDrawnAt = container.clientWidth;
  document.body.dataset.chartsWidth = String(chartsDrawnAt);  // tests wait for the charts to match the width
}

// Charts are drawn at their real pixel width (text stays readable at 400 px), and again when it changes.
let chartsDrawnAt = 0;
let lastData = null;
let resizeTimer = null;
window.addEventListener("resize", () => {
  clearTimeout(resizeTimer);
  resizeTimer = setTimeout(() => {
    if (lastData && $("#charts").clientWidth !== chartsDrawnAt) renderCharts(lastData.workup, lastData);
  }, 150);
});

function chartFigure(container, series, start, end, hours) {
  const figure = document.createElement("figure");
  container.appendChild(figure);
  figure.className = "chart";
  figure.dataset.analyte = series.analyte;
  const latest = series.points.length ? series.points[series.points.length - 1] : null;
  const captionId = `chart-${series.analyte}-caption`;
  const title = `${series.name} (${series.unit})`;
  const latestText = latest ? `latest ${formatNumber(latest.value)} ${series.unit} at ${localTime(latest.time)}` : `no results in the last ${hours} h`;
  figure.innerHTML = `<figcaption id="${captionId}"><strong>${escapeHtml(title)}</strong>: ${escapeHtml(latestText)}</figcaption>`;
  const svg = drawChart(series, start, end, hours, Math.max(260, figure.clientWidth - 18));
  const thresholdText = series.thresholds.map((t) => t.label).join("; ");
  svg.setAttribute("aria-label", `${title}, ${series.points.length} result(s) in the last ${hours} h, ${latestText}. Thresholds: ${thresholdText}.`);
  figure.appendChild(svg);
  figure.appendChild(legend(series));
  figure.appendChild(valuesTable(series, title));
}

function drawChart(series, start, end, hours, width) {
  const height = Math.round(Math.min(260, Math.max(170, width * 0.45)));
  const left = 52; const right = 10; const top = 10; const bottom = 26;
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("width", width);
  svg.setAttribute("height", height);
  svg.setAttribute("role", "img");
  svg.setAttribute("class", "chart-svg");
  const values = series.points.map((p) => p.value).concat(series.thresholds.map((t) => t.value));
  let low = Math.min(...values, series.analyte === "temperature" ? 36 : 0);
  let high = Math.max(...values, low + 1);
  const pad = (high - low) * 0.08;
  low = series.analyte === "temperature" ? low - pad : Math.max(0, low - pad);
  high += pad;
  const x = (t) => left + ((t - start) / (end - start)) * (width - left - right);
  const y = (v) => top + (1 - (v - low) / (high - low)) * (height - top - bottom);
  const add = (name, attributes, text) => {
    const element = document.createElementNS(SVG, name);
    for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, value);
    if (text !== undefined) element.textContent = text;
    svg.appendChild(element);
    return element;
  };
  // Axes and grid: y ticks at 5 even steps, x ticks every 24 h back from "now".
  for (let i = 0; i <= 4; i += 1) {
    const value = low + ((high - low) * i) / 4;
    add("line", { x1: left, x2: width - right, y1: y(value), y2: y(value), class: "grid" });
    add("text", { x: left - 6, y: y(value) + 4, class: "tick", "text-anchor": "end" }, formatNumber(value.toPrecision(3)));
  }
  for (let h = 0; h <= hours; h += 24) {
    const t = end - h * 3600000;
    add("line", { x1: x(t), x2: x(t), y1: top, y2: height - bottom, class: "grid" });
    add("text", { x: x(t), y: height - 10, class: "tick", "text-anchor": h === 0 ? "end" : "middle" }, h === 0 ? "now" : `−${h} h`);
  }
  for (const threshold of series.thresholds) {
    const style = SET_STYLE[threshold.set] || { colour: "#37474f", dash: "6 3" };
    const line = add("line", { x1: left, x2: width - right, y1: y(threshold.value), y2: y(threshold.value), stroke: style.colour, "stroke-dasharray": style.dash, class: "threshold" });
    line.dataset.set = threshold.set;
    line.dataset.value = threshold.value;
    const label = document.createElementNS(SVG, "title");
    label.textContent = threshold.label;
    line.appendChild(label);
  }
  if (series.points.length > 1) {
    const d = series.points.map((p, i) => `${i ? "L" : "M"}${x(Date.parse(p.time)).toFixed(1)},${y(p.value).toFixed(1)}`).join(" ");
    add("path", { d, class: "series-line" });
  }
  for (const point of series.points) {
    const circle = add("circle", { cx: x(Date.parse(point.time)).toFixed(1), cy: y(point.value).toFixed(1), r: 5, class: point.preliminary ? "point preliminary" : "point" });
    const tip = document.createElementNS(SVG, "title");
    tip.textContent = `${formatNumber(point.value)} ${series.unit}, ${localTime(point.time)}${point.preliminary ? " (preliminary)" : ""}, ${point.source}`;
    circle.appendChild(tip);
  }
  if (!series.points.length) add("text", { x: (left + width) / 2, y: height / 2, class: "empty-chart", "text-anchor": "middle" }, "No results in the window");
  return svg;
}

function legend(series) {
  const list = document.createElement("ul");
  list.className = "legend";
  list.setAttribute("aria-label", `${series.name} thresholds`);
  for (const threshold of series.thresholds) {
    const style = SET_STYLE[threshold.set] || { colour: "#37474f", dash: "6 3" };
    list.insertAdjacentHTML("beforeend", `<li><svg width="28" height="10" aria-hidden="true" focusable="false"><line x1="0" x2="28" y1="5" y2="5" stroke="${style.colour}" stroke-width="2.5" stroke-dasharray="${style.dash}"/></svg>${escapeHtml(threshold.label)}</li>`);
  }
  return list;
}

function valuesTable(series, title) {
  const details = document.createElement("details");
  details.className = "values";
  const rows = series.points.map((p) => `<tr><td>${escapeHtml(localTime(p.time))}</td><td>${escapeHtml(formatNumber(p.value))}${p.preliminary ? " (preliminary)" : ""}</td><td>${escapeHtml(p.source)}</td></tr>`).join("");
  details.innerHTML = `<summary>Values of ${escapeHtml(series.name)}</summary>`
    + (rows ? `<table><caption class="visually-hidden">${escapeHtml(title)}</caption><thead><tr><th scope="col">Time</th><th scope="col">Value</th><th scope="col">Source</th></tr></thead><tbody>${rows}</tbody></table>` : "<p>No results.</p>");
  return details;
}

function renderSets(workup) {
  const container = $("#sets");
  container.innerHTML = "";
  for (const set of workup.sets.concat([workup.trends])) container.appendChild(setElement(set));
  $("#sets-section").hidden = false;
}

function setElement(set) {
  const details = document.createElement("details");
  details.className = "set";
  details.dataset.set = set.key;
  details.dataset.outcome = set.outcome;
  details.open = true;
  const outcome = set.applicable ? set.outcome : "not applicable";
  const score = set.score ? ` · score ${formatNumber(set.score.low)}${set.score.high !== set.score.low ? `–${formatNumber(set.score.high)}` : ""}` : "";
  details.innerHTML = `<summary><span class="set-name">${escapeHtml(set.name)}</span> <span class="badge badge-${outcome.replace(/ /g, "-")}">${escapeHtml(outcome)}</span><span class="set-summary">${escapeHtml(set.summary)}${escapeHtml(score)}</span></summary>`
    + `<p class="muted">${escapeHtml(set.applicability)}${set.validated ? "" : " · not a validated MAS criteria set (adjunct)"} · ${escapeHtml(set.citation)} · version ${escapeHtml(set.version)}</p>`
    + (set.notes.length ? `<ul class="notes">${set.notes.map((n) => `<li>${escapeHtml(n)}</li>`).join("")}</ul>` : "")
    + criteriaTable(set);
  return details;
}

function criteriaTable(set) {
  const hasPoints = set.criteria.some((c) => c.points);
  const rows = set.criteria.map((c) => {
    const points = c.points ? `${formatNumber(c.points.low)}${c.points.high !== c.points.low ? `–${formatNumber(c.points.high)}` : ""}` : "";
    return `<tr class="status-${c.status.replace(/ /g, "-")}" data-criterion="${escapeHtml(c.key)}">`
      + `<th scope="row" data-label="Item">${escapeHtml(c.label)}</th>`
      + `<td data-label="Status"><span class="status"><span aria-hidden="true">${STATUS_ICON[c.status] || ""}</span> ${escapeHtml(STATUS_TEXT[c.status] || c.status)}</span></td>`
      + `<td data-label="Value">${escapeHtml(c.value || "—")}${c.note ? `<div class="muted">${escapeHtml(c.note)}</div>` : ""}</td>`
      + `<td data-label="Threshold">${escapeHtml(c.threshold || "—")}</td>`
      + `<td data-label="Time">${escapeHtml(localTime(c.time))}</td>`
      + `<td data-label="Source" class="source">${escapeHtml(c.source || "—")}</td>`
      + (hasPoints ? `<td data-label="Points">${escapeHtml(points || "—")}</td>` : "")
      + "</tr>";
  }).join("");
  return `<table class="criteria"><caption class="visually-hidden">${escapeHtml(set.name)}: items</caption><thead><tr>`
    + '<th scope="col">Item</th><th scope="col">Status</th><th scope="col">Value</th><th scope="col">Threshold</th><th scope="col">Time</th><th scope="col">Source</th>'
    + (hasPoints ? '<th scope="col">Points</th>' : "") + `</tr></thead><tbody>${rows}</tbody></table>`;
}

function renderMore(workup) {
  const parts = [];
  parts.push(`<h3>Missing work-up</h3>${workup.missing.length ? `<ul id="missing">${workup.missing.map((m) => `<li>${escapeHtml(m)}</li>`).join("")}</ul>` : "<p>None: every lab the criteria use has a result in the window.</p>"}`);
  const dose = workup.dose;
  parts.push(`<h3>Anakinra, NCT02780583 protocol dose</h3><ul id="dose">${dose.lines.map((l) => `<li>${escapeHtml(l)}</li>`).join("")}</ul>`);
  if (workup.notUsed.length) {
    parts.push(`<h3>Results not used</h3><ul id="not-used">${workup.notUsed.map((s) => `<li>${escapeHtml(s.analyte)} (${escapeHtml(s.source)}): ${escapeHtml(s.reason)}</li>`).join("")}</ul>`);
  }
  $("#more").innerHTML = parts.join("");
  $("#more-section").hidden = false;
}

load();
