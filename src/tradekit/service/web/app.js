// The tradekit dashboard: plain JavaScript over the service's REST API and event stream.
// Views are chosen by the URL's hash: #/ (bots by symbol), #/new, #/bots/ID, #/bots/ID/edit.
"use strict";

const TOKEN_KEY = "tradekit.token";
const SAMPLES_KEPT = 240;
const RECENT_EVENTS = 50;
const TIMEFRAMES = ["1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d", "1w"];
const SVG = "http://www.w3.org/2000/svg";

const session = {
  token: sessionStorage.getItem(TOKEN_KEY),
  routes: null, // the API's paths, from its OpenAPI document: routes not there are hidden
  lastEventId: null,
  streamAbort: null,
  refreshTimer: null,
  samples: new Map(), // bot id -> [{ts, equity}] seen on this page, when no equity route
  eventLog: null, // the bot page's recent events read so far: { id, after, events }
  keepNotice: false,
};

// -- small helpers ----------------------------------------------------------------------------

function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children) {
    if (child !== null && child !== undefined) node.append(child);
  }
  return node;
}

function money(value) {
  if (value === null || value === undefined) return "–";
  const sign = value > 0 ? "+" : "";
  return sign + value.toFixed(2);
}

function figure(value) {
  // Prices and quantities carry many digits; eight significant ones are plenty to read.
  return typeof value === "number" ? String(Number(value.toPrecision(8))) : value ?? "–";
}

function pnlCell(value) {
  const tone = value > 0 ? "gain" : value < 0 ? "loss" : "flat";
  return el("td", { class: `number ${tone}`, text: money(value) });
}

function when(iso) {
  if (!iso) return "–";
  return new Date(iso).toISOString().replace("T", " ").slice(0, 16);
}

function notice(text, tone = "info") {
  const node = document.getElementById("notice");
  node.textContent = text;
  node.dataset.tone = tone;
}

class ApiError extends Error {
  constructor(status, body) {
    super(body && body.detail ? body.detail : `the service answered ${status}`);
    this.status = status;
    this.problems = (body && body.problems) || [];
  }
}

async function api(method, path, body) {
  const headers = { Authorization: `Bearer ${session.token}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const answer = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = answer.headers.get("content-type")?.includes("json") ? await answer.json() : null;
  if (answer.status === 401) {
    logout("The service refused the token; log in again.");
    throw new ApiError(401, data);
  }
  if (!answer.ok) throw new ApiError(answer.status, data);
  return { status: answer.status, data };
}

function has(route) {
  return session.routes !== null && session.routes.has(route);
}

// -- login ------------------------------------------------------------------------------------

async function tokenWorks(token) {
  const answer = await fetch("/api/engine", { headers: { Authorization: `Bearer ${token}` } });
  return answer.ok;
}

function showLogin(message = "") {
  stopStream();
  document.getElementById("nav").hidden = true;
  document.getElementById("view").replaceChildren();
  document.getElementById("login").hidden = false;
  document.getElementById("login-error").textContent = message;
  document.getElementById("token").focus();
}

function logout(message = "") {
  session.token = null;
  sessionStorage.removeItem(TOKEN_KEY);
  notice("");
  showLogin(message);
}

async function login(event) {
  event.preventDefault();
  const input = document.getElementById("token");
  const error = document.getElementById("login-error");
  const token = input.value.trim();
  if (!token) {
    error.textContent = "Enter the API token.";
    input.setAttribute("aria-invalid", "true");
    return;
  }
  if (!(await tokenWorks(token))) {
    error.textContent = "Wrong token: the service refused it.";
    input.setAttribute("aria-invalid", "true");
    input.select();
    return;
  }
  input.value = "";
  input.removeAttribute("aria-invalid");
  session.token = token;
  sessionStorage.setItem(TOKEN_KEY, token);
  await enter();
}

async function enter() {
  document.getElementById("login").hidden = true;
  document.getElementById("nav").hidden = false;
  if (session.routes === null) {
    const answer = await fetch("/openapi.json");
    session.routes = new Set(answer.ok ? Object.keys((await answer.json()).paths) : []);
  }
  startStream();
  await render();
}

// -- the event stream (fetch + a reader: EventSource cannot send the token) --------------------

function stopStream() {
  if (session.streamAbort) session.streamAbort.abort();
  session.streamAbort = null;
}

function setLive(text) {
  document.getElementById("live").textContent = text;
}

async function startStream() {
  stopStream();
  const abort = new AbortController();
  session.streamAbort = abort;
  while (!abort.signal.aborted) {
    try {
      const headers = { Authorization: `Bearer ${session.token}` };
      if (session.lastEventId) headers["Last-Event-ID"] = session.lastEventId;
      const answer = await fetch("/api/stream", { headers, signal: abort.signal });
      if (answer.status === 401) {
        logout("The service refused the token; log in again.");
        return;
      }
      if (!answer.ok || !answer.body) throw new Error(`stream answered ${answer.status}`);
      setLive("live");
      await readStream(answer.body, abort.signal);
    } catch (error) {
      if (abort.signal.aborted) return;
    }
    setLive("reconnecting");
    await new Promise((resolve) => setTimeout(resolve, 2000));
  }
}

async function readStream(body, signal) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  while (!signal.aborted) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value.replace(/\r\n?/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      handleMessage(buffer.slice(0, end));
      buffer = buffer.slice(end + 2);
    }
  }
}

function handleMessage(block) {
  const message = { id: null, event: "message", data: [] };
  for (const line of block.split("\n")) {
    if (line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
    if (field === "id") message.id = value;
    else if (field === "event") message.event = value;
    else if (field === "data") message.data.push(value);
  }
  if (message.id !== null) session.lastEventId = message.id;
  // Events were missed (or the service restarted): read the bot's events afresh too.
  if (message.event === "reset") session.eventLog = null;
  // An event, or a reset (events were missed): what is shown is read again from the API.
  if (message.data.length > 0) scheduleRefresh();
}

function scheduleRefresh() {
  // Many events arrive per candle: redraw once for all of them.
  if (session.refreshTimer !== null) return;
  session.refreshTimer = setTimeout(() => {
    session.refreshTimer = null;
    render({ quiet: true });
  }, 300);
}

// -- charts -----------------------------------------------------------------------------------

function linePath(values, width, height, pad) {
  const low = Math.min(...values);
  const high = Math.max(...values);
  const span = high - low || 1;
  const step = values.length > 1 ? (width - 2 * pad) / (values.length - 1) : 0;
  return values
    .map((value, index) => {
      const x = pad + index * step;
      const y = height - pad - ((value - low) / span) * (height - 2 * pad);
      return `${index === 0 ? "M" : "L"}${x.toFixed(1)},${y.toFixed(1)}`;
    })
    .join(" ");
}

function chart(values, { width, height, label, tone = "line", pad = 2 }) {
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("width", width);
  svg.setAttribute("height", height);
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", label);
  svg.classList.add("chart", tone);
  if (values.length >= 2) {
    const path = document.createElementNS(SVG, "path");
    path.setAttribute("d", linePath(values, width, height, pad));
    svg.append(path);
  }
  return svg;
}

async function equityPoints(bot) {
  if (has("/api/bots/{bot_id}/equity")) {
    const { data } = await api("GET", `/api/bots/${encodeURIComponent(bot.id)}/equity`);
    return data.points.map((point) => point.equity);
  }
  return (session.samples.get(bot.id) || []).map((point) => point.equity);
}

function sample(bot) {
  // Without the equity route, the line is the P&L this page has seen.
  const kept = session.samples.get(bot.id) || [];
  kept.push({ ts: Date.now(), equity: bot.realized_pnl + bot.unrealized_pnl });
  session.samples.set(bot.id, kept.slice(-SAMPLES_KEPT));
}

function drawdowns(values) {
  let peak = -Infinity;
  return values.map((value) => {
    peak = Math.max(peak, value);
    return peak > 0 ? (value / peak - 1) * 100 : value - peak;
  });
}

// -- actions ----------------------------------------------------------------------------------

function confirmDialog(title, text, choices) {
  const dialog = document.getElementById("confirm");
  document.getElementById("confirm-title").textContent = title;
  document.getElementById("confirm-text").textContent = text;
  const buttons = choices.map(([value, label]) =>
    el("button", { value, text: label, class: value === "cancel" ? "secondary" : "danger" }),
  );
  document.getElementById("confirm-buttons").replaceChildren(...buttons);
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue), { once: true });
    dialog.returnValue = "cancel";
    dialog.showModal();
    buttons[0].focus();
  });
}

async function control(bot, action) {
  const path = `/api/bots/${encodeURIComponent(bot.id)}`;
  try {
    let answer;
    if (action === "delete") {
      const holding = bot.open_positions > 0;
      const choice = await confirmDialog(
        `Delete ${bot.name}?`,
        holding
          ? `It holds ${bot.open_positions} open position(s). Close them at market first, then delete it? Its journal stays.`
          : "It is removed from the service; its journal stays.",
        holding
          ? [["cancel", "Cancel"], ["close", "Close positions and delete"]]
          : [["cancel", "Cancel"], ["delete", "Delete"]],
      );
      if (choice === "cancel") return;
      answer = await api("DELETE", holding ? `${path}?close_positions=true` : path);
    } else {
      answer = await api("POST", `${path}/${action}`);
    }
    notice(answer.data.message + (answer.status === 202 ? " (pending)" : ""));
    if (action === "delete" && location.hash !== "#/" && location.hash !== "") {
      session.keepNotice = true;
      location.hash = "#/";
    }
  } catch (error) {
    if (error.status !== 401) notice(error.message, "error");
  }
  await render({ quiet: true });
}

function actionButtons(bot) {
  const buttons = [];
  const add = (action, label) =>
    buttons.push(
      el("button", {
        type: "button",
        class: action === "delete" ? "danger small" : "small",
        text: label,
        "aria-label": `${label} ${bot.name}`,
        onclick: () => control(bot, action),
      }),
    );
  if (bot.state === "disabled") add("start", "Start");
  if (bot.state === "active") add("stop", "Stop");
  if (bot.state === "quarantined") add("resume", "Resume");
  if (bot.template) {
    buttons.push(
      el("a", {
        class: "button small secondary",
        href: `#/bots/${encodeURIComponent(bot.id)}/edit`,
        text: "Edit",
        "aria-label": `Edit ${bot.name}`,
      }),
    );
  }
  add("delete", "Delete");
  return el("div", { class: "actions" }, ...buttons);
}

// -- views ------------------------------------------------------------------------------------

function stateBadge(state) {
  return el("span", { class: `state state-${state}`, text: state });
}

async function listView() {
  const { data: bots } = await api("GET", "/api/bots");
  bots.forEach(sample);
  const symbols = has("/api/symbols") ? (await api("GET", "/api/symbols")).data : null;
  const groups = new Map();
  if (symbols) {
    for (const entry of symbols) groups.set(entry.symbol, { info: entry, bots: [] });
  }
  for (const bot of bots) {
    for (const symbol of bot.symbols.length ? bot.symbols : ["(no symbol)"]) {
      if (!groups.has(symbol)) groups.set(symbol, { info: null, bots: [] });
      groups.get(symbol).bots.push(bot);
    }
  }
  const lines = new Map(await Promise.all(bots.map(async (bot) => [bot.id, await equityPoints(bot)])));
  const sections = [...groups.entries()]
    .filter(([, group]) => group.bots.length > 0)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([symbol, group]) => symbolSection(symbol, group, lines));
  const view = [el("h1", { text: "Bots" })];
  if (sections.length === 0) {
    view.push(el("p", {}, "No bots yet. ", el("a", { href: "#/new", text: "Make one" }), "."));
  }
  return [...view, ...sections];
}

function exposure(info) {
  if (!info || info.cap === null || info.cap === undefined) {
    return info ? el("p", { class: "exposure", text: `Exposure ${money(info.exposure)}; no cap` }) : null;
  }
  const used = info.cap_used_pct ?? (info.cap ? (info.exposure / info.cap) * 100 : 0);
  const id = `exposure-${info.symbol.replace(/\W/g, "-")}`;
  return el(
    "p",
    { class: "exposure" },
    el("label", { for: id, text: `Exposure ${info.exposure.toFixed(2)} of cap ${info.cap.toFixed(2)} (${used.toFixed(1)}%)` }),
    el("meter", { id, min: 0, max: 100, value: Math.min(used, 100).toFixed(1), high: 80, optimum: 0 }),
  );
}

function symbolSection(symbol, group, lines) {
  const headingId = `symbol-${symbol.replace(/\W/g, "-")}`;
  const rows = group.bots.map((bot) =>
    el(
      "tr",
      { "data-bot": bot.id },
      el("th", { scope: "row" }, el("a", { href: `#/bots/${encodeURIComponent(bot.id)}`, text: bot.name })),
      el("td", {}, stateBadge(bot.state)),
      pnlCell(bot.realized_pnl),
      pnlCell(bot.unrealized_pnl),
      el("td", { class: "number", text: String(bot.open_positions) }),
      el("td", {}, chart(lines.get(bot.id) || [], { width: 120, height: 28, label: `equity of ${bot.name}` })),
      el("td", {}, actionButtons(bot)),
    ),
  );
  return el(
    "section",
    { class: "symbol", "aria-labelledby": headingId },
    el("h2", { id: headingId, text: symbol }),
    exposure(group.info),
    el(
      "table",
      {},
      el(
        "thead",
        {},
        el(
          "tr",
          {},
          ...["Bot", "State", "Realized P&L", "Unrealized P&L", "Open positions", "Equity", "Actions"].map(
            (name) => el("th", { scope: "col", text: name }),
          ),
        ),
      ),
      el("tbody", {}, ...rows),
    ),
  );
}

function table(caption, columns, rows, empty) {
  if (rows.length === 0) return el("section", {}, el("h2", { text: caption }), el("p", { text: empty }));
  return el(
    "section",
    {},
    el("h2", { text: caption }),
    el(
      "table",
      {},
      el("thead", {}, el("tr", {}, ...columns.map((name) => el("th", { scope: "col", text: name })))),
      el("tbody", {}, ...rows.map((cells) => el("tr", {}, ...cells.map((cell) => (cell instanceof Node ? cell : el("td", { text: String(cell) })))))),
    ),
  );
}

async function recentEvents(id) {
  // The journal's events, newest last. A redraw of the same bot reads only the events after
  // the last one it has (seqs only grow), not the bot's whole history again.
  const known = session.eventLog !== null && session.eventLog.id === id ? session.eventLog : null;
  let after = known ? known.after : 0;
  let events = known ? known.events : [];
  for (let page = 0; page < 20; page += 1) {
    const { data } = await api("GET", `/api/bots/${encodeURIComponent(id)}/events?after_seq=${after}&limit=1000`);
    events = events.concat(data.events).slice(-RECENT_EVENTS);
    after = data.next_after_seq;
    if (!data.more) break;
  }
  session.eventLog = { id, after, events };
  return events.slice().reverse();
}

function eventSummary(data) {
  const keys = ["symbol", "side", "quantity", "price", "exit_price", "realized_pnl", "reason", "direction", "new_stop", "detail", "error"];
  return keys
    .filter((key) => data[key] !== undefined && data[key] !== null && data[key] !== "")
    .map((key) => `${key} ${typeof data[key] === "number" ? Number(data[key].toFixed(6)) : data[key]}`)
    .join(", ");
}

async function botView(id) {
  const path = `/api/bots/${encodeURIComponent(id)}`;
  const { data: bot } = await api("GET", path);
  sample(bot);
  const [trades, events, stats, points] = await Promise.all([
    api("GET", `${path}/trades`).then((answer) => answer.data),
    recentEvents(id),
    has("/api/bots/{bot_id}/stats") ? api("GET", `${path}/stats`).then((answer) => answer.data) : null,
    equityPoints(bot),
  ]);
  const facts = el(
    "dl",
    { class: "facts" },
    ...[
      ["State", stateBadge(bot.state)],
      ["Template", bot.template || bot.kind],
      ["Symbols", bot.symbols.join(", ")],
      ["Timeframe", bot.timeframe],
      ["Realized P&L", money(bot.realized_pnl)],
      ["Unrealized P&L", money(bot.unrealized_pnl)],
      ["Last candle", when(bot.last_candle)],
    ].flatMap(([term, value]) => [el("dt", { text: term }), el("dd", {}, value)]),
  );
  const figures = stats
    ? el(
        "section",
        {},
        el("h2", { text: "Statistics" }),
        el(
          "dl",
          { class: "facts" },
          ...Object.entries(stats)
            .filter(([, value]) => typeof value === "number" || value === null)
            .flatMap(([name, value]) => [
              el("dt", { text: name.replace(/_/g, " ") }),
              el("dd", { text: value === null ? "–" : Number(value.toFixed(4)).toString() }),
            ]),
        ),
      )
    : null;
  const curves = el(
    "section",
    { class: "curves" },
    el("h2", { text: "Equity and drawdown" }),
    points.length >= 2
      ? el(
          "div",
          {},
          chart(points, { width: 640, height: 160, label: `equity curve of ${bot.name}`, pad: 6 }),
          chart(drawdowns(points), { width: 640, height: 80, label: `drawdown of ${bot.name}`, tone: "drawdown", pad: 6 }),
        )
      : el("p", { text: "Not enough history yet." }),
  );
  return [
    el("h1", { text: bot.name }),
    actionButtons(bot),
    facts,
    figures,
    curves,
    table(
      "Open positions",
      ["Symbol", "Side", "Quantity", "Entry", "Last price", "Unrealized P&L", "Stop", "Target"],
      bot.positions.map((p) => [p.symbol, p.side, figure(p.quantity), figure(p.avg_entry_price), figure(p.last_price), money(p.unrealized_pnl), figure(p.stop_loss), figure(p.take_profit)]),
      "No open positions.",
    ),
    table(
      "Trades",
      ["Closed", "Symbol", "Side", "Quantity", "Entry", "Exit", "P&L", "Reason"],
      trades.slice(-100).reverse().map((t) => [when(t.closed_at), t.symbol, t.side, figure(t.quantity), figure(t.avg_entry_price), figure(t.exit_price), money(t.realized_pnl), t.reason]),
      "No trades yet.",
    ),
    el(
      "section",
      {},
      el("h2", { text: "Recent events" }),
      events.length
        ? el("ol", { class: "events", reversed: true }, ...events.map((event) =>
            el("li", {}, el("span", { class: "seq", text: `#${event.seq}` }), " ", el("strong", { text: event.type }), ` ${when(event.ts)} `, eventSummary(event.data)),
          ))
        : el("p", { text: "No events yet." }),
    ),
  ];
}

// -- the new bot and edit forms ---------------------------------------------------------------

function valueAt(config, path) {
  let current = config;
  for (const [, key, index] of path.matchAll(/([^.[\]]+)|\[(\d+)\]/g)) {
    if (current === null || current === undefined) return undefined;
    current = index !== undefined ? current[Number(index)] : current[key];
  }
  return current;
}

function field(id, labelText, control, help) {
  const helpId = `${id}-help`;
  const errorId = `${id}-error`;
  control.id = id;
  control.setAttribute("aria-describedby", help ? `${helpId} ${errorId}` : errorId);
  return el(
    "div",
    { class: "field" },
    el("label", { for: id, text: labelText }),
    control,
    help ? el("p", { id: helpId, class: "help", text: help }) : null,
    el("p", { id: errorId, class: "field-error" }),
  );
}

function parameterControl(parameter, value) {
  if (parameter.choices) {
    const select = el("select", { name: parameter.name, "data-type": parameter.type });
    if (parameter.nullable) select.append(el("option", { value: "", text: "(none)" }));
    for (const choice of parameter.choices) {
      select.append(el("option", { value: String(choice), text: String(choice), selected: choice === value }));
    }
    return select;
  }
  if (parameter.type === "boolean") {
    return el("input", { type: "checkbox", name: parameter.name, "data-type": "boolean", checked: value === true });
  }
  const numeric = parameter.type === "integer" || parameter.type === "number";
  return el("input", {
    type: numeric ? "number" : "text",
    name: parameter.name,
    "data-type": parameter.type,
    value: value === null || value === undefined ? "" : String(value),
    required: !parameter.nullable,
    min: numeric && parameter.minimum !== null ? parameter.minimum : null,
    max: numeric && parameter.maximum !== null ? parameter.maximum : null,
    step: parameter.type === "integer" ? "1" : numeric ? "any" : null,
    "data-exclusive-minimum": parameter.exclusive_minimum ? "true" : null,
    "data-exclusive-maximum": parameter.exclusive_maximum ? "true" : null,
  });
}

function parameterFields(template, values) {
  return template.parameters.map((parameter) => {
    const unit = parameter.unit ? ` (${parameter.unit})` : "";
    const value = values[parameter.name] === undefined ? parameter.default : values[parameter.name];
    return field(`param-${parameter.name}`, parameter.label + unit, parameterControl(parameter, value), parameter.description);
  });
}

function checkControl(control) {
  // HTML's min and max include the bound; a bound the model refuses is checked here.
  control.setCustomValidity("");
  if (control.type === "number" && control.value !== "") {
    const value = Number(control.value);
    if (control.dataset.exclusiveMinimum && value <= Number(control.min)) {
      control.setCustomValidity(`Must be greater than ${control.min}.`);
    } else if (control.dataset.exclusiveMaximum && value >= Number(control.max)) {
      control.setCustomValidity(`Must be less than ${control.max}.`);
    }
  }
  if (control.id === "bot-symbols" && control.value.trim() !== "" && symbolsOf(control.value).length === 0) {
    control.setCustomValidity("Give at least one symbol, such as BTC/USDT.");
  }
  return control.checkValidity();
}

function symbolsOf(text) {
  return text.split(",").map((part) => part.trim()).filter((part) => part !== "");
}

function showError(form, id, message) {
  const control = form.querySelector(`#${CSS.escape(id)}`);
  const target = form.querySelector(`#${CSS.escape(id)}-error`);
  if (!control || !target) return false;
  control.setAttribute("aria-invalid", "true");
  target.textContent = message;
  return true;
}

function clearErrors(form) {
  for (const node of form.querySelectorAll(".field-error")) node.textContent = "";
  for (const node of form.querySelectorAll("[aria-invalid]")) node.removeAttribute("aria-invalid");
}

function fieldForPath(path) {
  if (!path) return null;
  const match = path.match(/^(params\.(\w+)|symbols|name|timeframe|template)/);
  if (!match) return null;
  if (match[2]) return `param-${match[2]}`;
  return `bot-${match[1]}`;
}

function readParams(form) {
  const params = {};
  for (const control of form.querySelectorAll("[data-type]")) {
    const type = control.dataset.type;
    if (type === "boolean") params[control.name] = control.checked;
    else if (control.value === "") params[control.name] = null;
    else if (type === "integer" || type === "number") params[control.name] = Number(control.value);
    else params[control.name] = control.value;
  }
  return params;
}

async function formView(botId) {
  const editing = botId !== null;
  const bot = editing ? (await api("GET", `/api/bots/${encodeURIComponent(botId)}`)).data : null;
  const { data: templates } = await api("GET", "/api/strategies");
  const form = el("form", { class: "bot-form", novalidate: true });
  const params = el("fieldset", {}, el("legend", { text: "Parameters" }));
  const problems = el("ul", { class: "form-errors", role: "alert" });
  const templateSelect = el("select", { name: "template", required: true, disabled: editing });
  for (const template of templates) {
    templateSelect.append(el("option", { value: template.template_id, text: template.name, selected: editing && template.template_id === bot.template }));
  }
  const name = el("input", { type: "text", name: "name", required: true, maxlength: 100, value: editing ? bot.name : "" });
  const symbols = el("input", { type: "text", name: "symbols", required: true, value: editing ? bot.symbols.join(", ") : "" });
  const timeframe = el("select", { name: "timeframe", required: true });
  const setTimeframe = (chosen) => {
    const options = TIMEFRAMES.includes(chosen) || !chosen ? TIMEFRAMES : [chosen, ...TIMEFRAMES];
    timeframe.replaceChildren(...options.map((tf) => el("option", { value: tf, text: tf, selected: tf === chosen })));
  };
  setTimeframe(editing ? bot.timeframe : "1h");
  const start = el("input", { type: "checkbox", name: "start", id: "bot-start", checked: true });

  async function showTemplate(values) {
    const { data: template } = await api("GET", `/api/strategies/${encodeURIComponent(templateSelect.value)}`);
    const description = el("p", { class: "help", text: template.description });
    params.replaceChildren(el("legend", { text: `Parameters of ${template.name}` }), description, ...parameterFields(template, values));
    if (!editing) {
      if (template.symbols.length) symbols.value = template.symbols.join(", ");
      if (template.timeframe) setTimeframe(template.timeframe);
    }
  }
  templateSelect.addEventListener("change", () => showTemplate({}));

  form.append(
    el("h1", { text: editing ? `Edit ${bot.name}` : "New bot" }),
    problems,
    el(
      "fieldset",
      {},
      el("legend", { text: "Bot" }),
      field("bot-template", "Template", templateSelect, editing ? "A bot keeps the template it was made from." : null),
      field("bot-name", "Name", name, editing ? null : "Its id is made from the name, e.g. rsi-on-btc."),
      field("bot-symbols", "Symbols", symbols, "Unified symbols separated by commas, e.g. BTC/USDT, ETH/USDT."),
      field("bot-timeframe", "Timeframe", timeframe, null),
      editing ? null : el("div", { class: "field checkbox" }, start, el("label", { for: "bot-start", text: "Start trading at once" })),
    ),
    params,
    el(
      "div",
      { class: "buttons" },
      el("button", { type: "submit", text: editing ? "Save changes" : "Create bot" }),
      el("a", { class: "button secondary", href: editing ? `#/bots/${encodeURIComponent(botId)}` : "#/", text: "Cancel" }),
    ),
  );

  form.addEventListener("input", (event) => {
    if (event.target.getAttribute("aria-invalid") && checkControl(event.target)) {
      event.target.removeAttribute("aria-invalid");
      form.querySelector(`#${CSS.escape(event.target.id)}-error`).textContent = "";
    }
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    problems.replaceChildren();
    let first = null;
    for (const control of form.querySelectorAll("input, select")) {
      if (control.disabled || checkControl(control)) continue;
      showError(form, control.id, control.validationMessage);
      first = first || control;
    }
    if (first) {
      first.focus();
      return;
    }
    const body = { name: name.value.trim(), params: readParams(form), symbols: symbolsOf(symbols.value), timeframe: timeframe.value };
    try {
      let answer;
      if (editing) {
        answer = await api("PUT", `/api/bots/${encodeURIComponent(botId)}`, body);
      } else {
        answer = await api("POST", "/api/bots", { ...body, template: templateSelect.value, start: start.checked });
      }
      notice(answer.data.message);
      session.keepNotice = true;
      location.hash = `#/bots/${encodeURIComponent(answer.data.bot.id)}`;
    } catch (error) {
      if (error.status === 401) return;
      let firstField = null;
      for (const problem of error.problems) {
        const id = fieldForPath(problem.path);
        // The value is shown unless the server's message already quotes it.
        const quoted = problem.value === null || problem.value === undefined || /\bgot\b/.test(problem.expected);
        const got = quoted ? "" : ` (got ${JSON.stringify(problem.value)})`;
        if (id && showError(form, id, problem.expected + got)) {
          firstField = firstField || form.querySelector(`#${CSS.escape(id)}`);
        } else {
          problems.append(el("li", { text: `${problem.path ? problem.path + ": " : ""}${problem.expected}` }));
        }
      }
      if (error.problems.length === 0) problems.append(el("li", { text: error.message }));
      if (firstField) firstField.focus();
    }
  });
  if (editing) {
    const { data: template } = await api("GET", `/api/strategies/${encodeURIComponent(bot.template)}`);
    await showTemplate(Object.fromEntries(template.parameters.map((p) => [p.name, valueAt(bot.config, p.path)])));
  } else {
    await showTemplate({});
  }
  return [form];
}

// -- routing ----------------------------------------------------------------------------------

let rendering = Promise.resolve();

function render(options = {}) {
  rendering = rendering.then(() => renderNow(options));
  return rendering;
}

async function renderNow({ quiet = false } = {}) {
  if (!session.token) return;
  const hash = location.hash || "#/";
  const view = document.getElementById("view");
  const formOpen = view.querySelector("form.bot-form");
  let match;
  // A live refresh never redraws a form the user is filling in.
  if (quiet && formOpen) return;
  try {
    let content;
    if ((match = hash.match(/^#\/bots\/([^/]+)\/edit$/))) content = await formView(decodeURIComponent(match[1]));
    else if ((match = hash.match(/^#\/bots\/([^/]+)$/))) content = await botView(decodeURIComponent(match[1]));
    else if (hash === "#/new") content = await formView(null);
    else content = await listView();
    if ((location.hash || "#/") !== hash) return; // moved on while loading
    view.replaceChildren(...content.filter((node) => node !== null));
    view.dataset.view = hash;
  } catch (error) {
    if (error.status === 401) return;
    if (error.status === 404) {
      view.replaceChildren(el("h1", { text: "Not found" }), el("p", { text: error.message }), el("a", { href: "#/", text: "Back to the bots" }));
    } else {
      notice(error.message, "error");
    }
  }
}

window.addEventListener("hashchange", () => {
  // A message set just before moving (a bot made or deleted) is shown on the next view only.
  if (session.keepNotice) session.keepNotice = false;
  else notice("");
  render();
});

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("login-form").addEventListener("submit", login);
  document.getElementById("logout").addEventListener("click", () => logout());
  if (session.token) enter();
  else showLogin();
});
