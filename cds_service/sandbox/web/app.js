// MAS CDS Hooks sandbox page: plain JavaScript, no build step, no network beyond this server.
"use strict";

const $ = (selector) => document.querySelector(selector);
const state = { patients: [], lastService: null };

function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}

// A small, safe Markdown subset (headings, bold, italics, tables, lists, paragraphs): HTML is escaped first.
function inline(text) {
  return escapeHtml(text)
    .replace(/\*\*(.+?)\*\*/g, "<strong>$1</strong>")
    .replace(/(^|[\s(])_(.+?)_(?=[\s).,;:]|$)/g, "$1<em>$2</em>");
}

function splitRow(line) {
  const cells = [];
  let current = "";
  const body = line.trim().replace(/^\|/, "").replace(/\|$/, "");
  for (let i = 0; i < body.length; i += 1) {
    if (body[i] === "\\" && body[i + 1] === "|") { current += "|"; i += 1; }
    else if (body[i] === "|") { cells.push(current.trim()); current = ""; }
    else { current += body[i]; }
  }
  cells.push(current.trim());
  return cells;
}

function renderMarkdown(markdown) {
  const lines = markdown.split("\n");
  const out = [];
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    if (/^\s*\|/.test(line) && i + 1 < lines.length && /^\s*\|[\s:|-]+\|\s*$/.test(lines[i + 1])) {
      const head = splitRow(line);
      i += 2;
      const rows = [];
      while (i < lines.length && /^\s*\|/.test(lines[i])) { rows.push(splitRow(lines[i])); i += 1; }
      out.push("<table><thead><tr>" + head.map((c) => `<th>${inline(c)}</th>`).join("") + "</tr></thead><tbody>"
        + rows.map((r) => "<tr>" + r.map((c) => `<td>${inline(c)}</td>`).join("") + "</tr>").join("") + "</tbody></table>");
      continue;
    }
    const heading = /^(#{1,6})\s+(.*)$/.exec(line);
    if (heading) { const level = Math.min(6, heading[1].length + 1); out.push(`<h${level}>${inline(heading[2])}</h${level}>`); i += 1; continue; }
    if (/^\s*-\s+/.test(line)) {
      const items = [];
      while (i < lines.length && /^\s*-\s+/.test(lines[i])) { items.push(lines[i].replace(/^\s*-\s+/, "")); i += 1; }
      out.push("<ul>" + items.map((t) => `<li>${inline(t)}</li>`).join("") + "</ul>");
      continue;
    }
    if (line.trim() === "") { i += 1; continue; }
    out.push(`<p>${inline(line)}</p>`);
    i += 1;
  }
  return out.join("\n");
}

async function getJson(url, options) {
  const response = await fetch(url, options);
  const text = await response.text();
  let body;
  try { body = text ? JSON.parse(text) : null; } catch (error) { body = text; }
  return { status: response.status, body };
}

async function loadPatients() {
  const { body } = await getJson("/sandbox/api/patients");
  state.patients = body;
  const select = $("#patient-select");
  select.innerHTML = body.map((p) => `<option value="${escapeHtml(p.id)}">${escapeHtml(p.id)}</option>`).join("");
  select.addEventListener("change", showPatient);
  await showPatient();
}

async function showPatient() {
  const id = $("#patient-select").value;
  const patient = state.patients.find((p) => p.id === id);
  const weight = patient.weight_kg === null ? "no weight on record" : `${patient.weight_kg} kg`;
  $("#patient-summary").innerHTML = `<div>${escapeHtml(patient.gender || "sex not recorded")}, ${escapeHtml(patient.age || "age unknown")}, ${escapeHtml(weight)}</div>`
    + `<div><em>${escapeHtml(patient.story)}</em></div>`;
  const { body } = await getJson(`/sandbox/api/patients/${encodeURIComponent(id)}/series`);
  drawCharts(body);
}

function drawCharts(series) {
  const chart = $("#chart");
  chart.innerHTML = "";
  const width = 360; const height = 70; const pad = 26;
  const allTimes = Object.values(series).flatMap((s) => s.points.map((p) => Date.parse(p.time)));
  const start = allTimes.length ? Math.min(...allTimes) : Date.now() - 86400000;
  const end = allTimes.length ? Math.max(...allTimes) : Date.now();
  const span = Math.max(end - start, 3600000);
  for (const [key, data] of Object.entries(series)) {
    const block = document.createElement("div");
    block.className = "chart-block";
    block.dataset.analyte = key;
    const values = data.points.map((p) => p.value);
    const title = `${data.name} (${data.unit})` + (values.length ? `: latest ${values[values.length - 1]}` : ": no results");
    if (!values.length) { block.innerHTML = `<div class="chart-title">${escapeHtml(title)}</div>`; chart.appendChild(block); continue; }
    const low = Math.min(...values); const high = Math.max(...values); const range = high - low || 1;
    const x = (t) => pad + ((Date.parse(t) - start) / span) * (width - 2 * pad);
    const y = (v) => height - 12 - ((v - low) / range) * (height - 24);
    const path = data.points.map((p, i) => `${i ? "L" : "M"}${x(p.time).toFixed(1)},${y(p.value).toFixed(1)}`).join(" ");
    const dots = data.points.map((p) => `<circle cx="${x(p.time).toFixed(1)}" cy="${y(p.value).toFixed(1)}" r="3" fill="#36506b"><title>${escapeHtml(p.time)}: ${p.value}</title></circle>`).join("");
    block.innerHTML = `<div class="chart-title">${escapeHtml(title)}</div>`
      + `<svg viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" class="sparkline" role="img" aria-label="${escapeHtml(title)}">`
      + `<line x1="${pad}" y1="${height - 12}" x2="${width - pad}" y2="${height - 12}" stroke="#d0d4da"/>`
      + `<path d="${path}" fill="none" stroke="#36506b" stroke-width="2"/>${dots}`
      + `<text x="2" y="${y(high) + 3}">${high}</text><text x="2" y="${y(low) + 3}">${low}</text></svg>`;
    chart.appendChild(block);
  }
}

function draftOrder() {
  return {
    dose: Number($("#order-dose").value),
    unit: $("#order-unit").value,
    every_hours: Number($("#order-interval").value),
    route: $("#order-route").value,
  };
}

// The reason a draft order cannot be sent, or null. The API checks the same bounds (DraftOrder).
function invalidOrderReason(order) {
  const raw = $("#order-dose").value.trim();
  if (raw === "") return "Enter a dose.";
  if (!Number.isFinite(order.dose)) return `The dose "${raw}" is not a number.`;
  if (order.dose <= 0) return "The dose must be greater than 0.";
  if (order.dose > 100000) return "The dose must be at most 100,000.";
  return null;
}

function clearCall() {
  $("#cards").innerHTML = "";
  $("#outcome").textContent = "";
  $("#order-error").textContent = "";
  $("#order-note").textContent = "";
  $("#order-form").classList.remove("updated");
  $("#order-dose").removeAttribute("aria-invalid");
}

function showOrderError(reason) {
  $("#order-error").textContent = reason;
  $("#order-dose").setAttribute("aria-invalid", "true");
  $("#call-status").textContent = "not sent: the draft order is invalid";
}

function apiReason(body) {
  if (body && Array.isArray(body.issue)) return body.issue.map((i) => i.diagnostics).join("; ");
  if (body && typeof body.detail === "string") return body.detail;
  return "the sandbox API refused the request";
}

async function fire(hook) {
  clearCall();
  $("#call-status").textContent = `calling ${hook}…`;
  const spec = { patient: $("#patient-select").value, hook, prefetch: $("#send-prefetch").checked };
  if (hook !== "patient-view") {
    spec.order = draftOrder();
    const reason = invalidOrderReason(spec.order);
    if (reason) { showOrderError(reason); return; }
  }
  const built = await getJson("/sandbox/api/requests", {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(spec),
  });
  if (built.status !== 200) {
    if (hook !== "patient-view") showOrderError(`The order was not sent: ${apiReason(built.body)}.`);
    else $("#call-status").textContent = `could not build the request (HTTP ${built.status}): ${apiReason(built.body)}`;
    return;
  }
  const { service, request } = built.body;
  state.lastService = service;
  const started = performance.now();
  const answer = await getJson(`/cds-services/${encodeURIComponent(service)}`, {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(request),
  });
  const ms = Math.round(performance.now() - started);
  $("#raw-request").textContent = JSON.stringify(request, null, 2);
  $("#raw-response").textContent = JSON.stringify(answer.body, null, 2);
  $("#call-status").textContent = `${hook} → HTTP ${answer.status} in ${ms} ms`;
  renderCards(answer.status === 200 ? answer.body.cards : [], answer);
}

function renderCards(cards, answer) {
  const container = $("#cards");
  container.innerHTML = "";
  if (answer.status !== 200) {
    container.innerHTML = `<p class="empty">The service answered HTTP ${answer.status}: see the raw response.</p>`;
    return;
  }
  if (!cards.length) { container.innerHTML = '<p class="empty" id="no-cards">No cards: nothing to show for this patient.</p>'; return; }
  const order = { critical: 0, warning: 1, info: 2 };
  for (const card of [...cards].sort((a, b) => order[a.indicator] - order[b.indicator])) container.appendChild(cardElement(card));
}

function cardElement(card) {
  const element = document.createElement("article");
  element.className = "cds-card";
  element.dataset.indicator = card.indicator;
  element.dataset.uuid = card.uuid;
  const topic = card.source.topic ? ` · ${card.source.topic.code}` : "";
  element.innerHTML = `<div><span class="indicator">${escapeHtml(card.indicator)}</span><span class="summary">${escapeHtml(card.summary)}</span></div>`
    + `<div class="source">${escapeHtml(card.source.label)}${escapeHtml(topic)}</div>`
    + (card.detail ? `<details class="detail-wrap" open><summary>Details</summary><div class="detail">${renderMarkdown(card.detail)}</div></details>` : "")
    + (card.links ? `<div class="links">${card.links.map((l, i) => linkHtml(l, i)).join("")}</div>` : "");
  for (const anchor of element.querySelectorAll("a.smart-link")) {
    anchor.addEventListener("click", (event) => { event.preventDefault(); launchSmart(card.links[Number(anchor.dataset.link)]); });
  }
  if (card.suggestions) {
    const box = document.createElement("div");
    box.className = "suggestions";
    for (const suggestion of card.suggestions) {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "accept-suggestion" + (suggestion.isRecommended ? "" : " secondary");
      button.dataset.suggestion = suggestion.uuid;
      button.textContent = `Accept: ${suggestion.label}`;
      button.addEventListener("click", () => accept(card, suggestion, element));
      box.appendChild(button);
    }
    element.appendChild(box);
  }
  if (card.overrideReasons) {
    const override = document.createElement("div");
    override.className = "override";
    override.innerHTML = `<label>Override reason <select class="override-reason">${card.overrideReasons.map((r, i) => `<option value="${i}">${escapeHtml(r.display)}</option>`).join("")}</select></label>`;
    const button = document.createElement("button");
    button.type = "button";
    button.className = "override-card secondary";
    button.textContent = "Override";
    button.addEventListener("click", () => {
      closeCard(element, "overridden");
      const reason = card.overrideReasons[Number(override.querySelector("select").value)];
      sendFeedback(card, { outcome: "overridden", overrideReason: { reason } }, `Overridden: ${reason.display}`);
    });
    override.appendChild(button);
    element.appendChild(override);
  }
  return element;
}

function linkHtml(link, index) {
  if (link.type === "smart") {
    return `<a class="smart-link" data-link="${index}" href="${escapeHtml(link.url)}">${escapeHtml(link.label)} <span class="link-kind">(SMART app)</span></a>`;
  }
  return `<a href="${escapeHtml(link.url)}" target="_blank" rel="noopener noreferrer">${escapeHtml(link.label)}</a>`;
}

// The EHR's part of a SMART EHR launch: a launch context for the chosen patient at the sandbox's test
// authorization server, then the app's launch URL with `iss` and `launch` (SMART App Launch 2.x).
async function launchSmart(link) {
  const patient = $("#patient-select").value;
  const made = await getJson("/sandbox/api/launch", {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ patient }),
  });
  if (made.status !== 200) { $("#outcome").textContent = `The app could not be launched: ${apiReason(made.body)}`; return; }
  const url = new URL(link.url, window.location.origin);
  url.searchParams.set("iss", made.body.iss);
  url.searchParams.set("launch", made.body.launch);
  const opened = window.open(url.href, "_blank");
  if (!opened) window.location.assign(url.href);  // pop-ups blocked: open it here
}

// A card takes one outcome: after accept or override its controls are disabled.
function closeCard(element, outcome) {
  element.dataset.outcome = outcome;
  for (const control of element.querySelectorAll(".suggestions button, .override button, .override select")) control.disabled = true;
}

// Accepting an anakinra MedicationRequest suggestion rewrites the draft order form, as an EHR would.
function applyToDraft(resource) {
  if (!resource || resource.resourceType !== "MedicationRequest") return false;
  const dosage = (resource.dosageInstruction || [])[0];
  const quantity = dosage && (dosage.doseAndRate || [])[0] && dosage.doseAndRate[0].doseQuantity;
  const repeat = dosage && dosage.timing && dosage.timing.repeat;
  if (!quantity || !["mg", "mL"].includes(quantity.code || quantity.unit) || !repeat || repeat.periodUnit !== "h") return false;
  const every = String((repeat.period || 0) / (repeat.frequency || 1));
  const interval = $("#order-interval");
  if (![...interval.options].some((o) => o.value === every)) interval.add(new Option(`${every} h`, every));
  $("#order-dose").value = quantity.value;
  $("#order-unit").value = quantity.code || quantity.unit;
  interval.value = every;
  const route = (dosage.route && dosage.route.coding || []).map((c) => c.code);
  if (route.includes("34206005")) $("#order-route").value = "subcutaneous";
  if (route.includes("47625008")) $("#order-route").value = "intravenous";
  const form = $("#order-form");
  form.classList.add("updated");
  $("#order-note").textContent = `Draft order updated from the accepted suggestion: ${quantity.value} ${quantity.code || quantity.unit} every ${every} h.`;
  return true;
}

async function accept(card, suggestion, element) {
  closeCard(element, "accepted");
  const resources = suggestion.actions.map((a) => ({ type: a.type, description: a.description, resource: a.resource }));
  for (const action of suggestion.actions) if (action.type !== "delete") applyToDraft(action.resource);
  const shown = document.createElement("pre");
  shown.className = "resource accepted-resource";
  shown.textContent = JSON.stringify(resources, null, 2);
  element.appendChild(shown);
  await sendFeedback(card, { outcome: "accepted", acceptedSuggestions: [{ id: suggestion.uuid }] },
    `Accepted: ${suggestion.label}`);
}

async function sendFeedback(card, item, text) {
  const body = { feedback: [{ card: card.uuid, outcomeTimestamp: new Date().toISOString(), ...item }] };
  const answer = await getJson(`/cds-services/${encodeURIComponent(state.lastService)}/feedback`, {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  });
  const stored = await getJson(`/sandbox/api/feedback?card=${encodeURIComponent(card.uuid)}`);
  const count = Array.isArray(stored.body) ? stored.body.length : 0;
  $("#outcome").innerHTML = `<span id="feedback-status" data-stored="${count}">${escapeHtml(text)} — feedback HTTP ${answer.status}, ${count} record(s) stored for this card</span>`;
}

$("#fire-patient-view").addEventListener("click", () => fire("patient-view"));
$("#fire-order-select").addEventListener("click", () => fire("order-select"));
$("#fire-order-sign").addEventListener("click", () => fire("order-sign"));
loadPatients();
