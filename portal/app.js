// Admin portal: plain ES module, no framework, no build step. All strings come from the message files (t()).
const DATA = JSON.parse(document.getElementById("portal-data").textContent);
const LANGS = Object.keys(DATA.messages);
const CATALOGUE = DATA.catalogue || { bc: {}, crm: {} };
let lang = sessionStorage.getItem("portal.lang") || DATA.lang;
if (!LANGS.includes(lang)) lang = "en";

// The function key: taken from ?code=, removed from the address bar, kept in sessionStorage only.
const url = new URL(location.href);
if (url.searchParams.has("code")) {
  sessionStorage.setItem("portal.key", url.searchParams.get("code"));
  url.searchParams.delete("code");
  history.replaceState(null, "", url.pathname + url.search + url.hash);
}
const KEY = sessionStorage.getItem("portal.key") || "";
const API = location.pathname.replace(/\/portal\/?$/, "");

// Each page renders into a container of its own: a page still loading when the user moves on writes
// into its own (detached) one, never into the next page.
const mainEl = document.getElementById("main");
let main = mainEl;
const current = () => main;
const live = document.getElementById("status");
let timer = null;

function t(key, vars = {}) {
  const text = DATA.messages[lang][key] ?? DATA.messages.en[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => (name in vars ? String(vars[name]) : `{${name}}`));
}
const num = (n) => new Intl.NumberFormat(lang).format(n ?? 0);
const pct = (n) => new Intl.NumberFormat(lang, { style: "percent", maximumFractionDigits: 0 }).format(n);
const when = (iso) => (iso ? new Intl.DateTimeFormat(lang, { dateStyle: "medium", timeStyle: "medium" }).format(new Date(iso)) : "–");
const day = (iso) => new Intl.DateTimeFormat(lang, { dateStyle: "short" }).format(new Date(iso));
const secs = (s) => t("unit.seconds", { n: new Intl.NumberFormat(lang, { maximumFractionDigits: 1 }).format(s) });
function duration(a, b) {
  if (!a) return "–";
  return secs(Math.max(0, ((b ? new Date(b) : new Date()) - new Date(a)) / 1000));
}

class ApiFailure extends Error {
  constructor(status, body) {
    super(body?.error?.message || `HTTP ${status}`);
    this.status = status;
    this.field = body?.error?.field;
  }
}
// Sends the function key; and, when a sign-in step has left an Entra ID access token in
// sessionStorage ("portal.token"), that token as a bearer token (PORTAL_AUTH_MODE=entra).
function headers(extra = {}) {
  const out = { "x-functions-key": KEY, Accept: "application/json", ...extra };
  const token = sessionStorage.getItem("portal.token");
  if (token) out.Authorization = `Bearer ${token}`;
  return out;
}
async function api(method, path, body) {
  const init = { method, headers: headers() };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const resp = await fetch(API + path, init);
  const text = await resp.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch { json = null; }
  if (!resp.ok) throw new ApiFailure(resp.status, json);
  return json;
}
const enc = encodeURIComponent;
const query = (params) => {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") p.set(k, v);
  const s = p.toString();
  return s ? `?${s}` : "";
};

// Small DOM builder: h("td", {class: "num"}, "1").
function h(tag, attrs = {}, ...children) {
  const el = tag === "svg" || attrs.svg ? document.createElementNS("http://www.w3.org/2000/svg", tag) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === false || v === null || v === undefined || k === "svg") continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "text") el.textContent = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat(Infinity)) if (c !== null && c !== undefined && c !== false) el.append(c instanceof Node ? c : String(c));
  return el;
}
const s = (tag, attrs = {}, ...children) => h(tag, { ...attrs, svg: true }, ...children);
// On a phone every row becomes a card; each cell then shows its column's name (data-label).
function table(headers, rows, caption, cls = "cards") {
  const body = rows instanceof HTMLTableSectionElement ? rows : h("tbody", {}, rows);
  body.querySelectorAll(":scope > tr").forEach((tr) => [...tr.children].forEach((cell, i) => headers[i] && cell.setAttribute("data-label", headers[i])));
  return h("div", { class: "scroll" }, h("table", { class: cls }, caption ? h("caption", { class: "visually-hidden" }, caption) : null,
    h("thead", {}, h("tr", {}, headers.map((x) => h("th", { scope: "col" }, x)))), body));
}
function announce(text) { live.textContent = text; }
function showError(where, err) {
  where.replaceChildren(h("span", { class: "error", role: "alert" }, t("error.prefix", { message: err.message })));
}
function say(where, text, ok = true) { where.replaceChildren(h("span", { class: ok ? "ok" : "error" }, text)); announce(text); }
const dirLabel = (d) => t(`direction.${d}`);
const statusLabel = (s) => t(`status.${s}`);
const COUNTERS = ["inserted", "modified", "deleted", "unchanged", "skipped", "left_out", "failed", "coupled", "uncoupled"];
const TERMINAL = ["Succeeded", "FinishedWithErrors", "NotConfigured", "Failed", "Cancelled"];

// A record as people know it: its number and name, a link that opens it, the id on hover.
function recordCell(rec, side) {
  if (!rec) return h("span", { class: "muted" }, "–");
  const label = [rec.number, rec.name].filter(Boolean).join(" · ");
  const sideName = t(side === "bc" ? "side.bc" : "side.crm");
  if (rec.state === "missing") {
    return h("span", { class: "record missing" }, h("code", { title: rec.id }, short(rec.id)), " ", h("span", { class: "badge bad" }, t("record.missing")));
  }
  if (!label) return h("span", { class: "record" }, h("code", { title: rec.id }, rec.id));
  const text = h("span", { class: "record-label" }, label);
  const link = rec.url ? h("a", { href: rec.url, target: "_blank", rel: "noopener noreferrer", title: t("record.open", { side: sideName, id: rec.id }) }, text) : text;
  return h("span", { class: "record", "data-record-id": rec.id }, link);
}
const short = (id) => (id && id.length > 13 ? `${id.slice(0, 8)}…` : id || "");

// Continuation-token paging: "Previous" goes back through the tokens seen, "Next" follows the answer's.
function pager(load, render, where) {
  const tokens = [null];
  let index = 0;
  const nav = h("nav", { class: "pager", "aria-label": t("pager.label") });
  let seq = 0; // only the latest request renders (a filter changed while a page was loading)
  async function show(fromStart = false) {
    if (fromStart === true) index = 0;
    const mine = ++seq;
    let page;
    try { page = await load(tokens[index]); } catch (err) { if (mine === seq) showError(where, err); return; }
    if (mine !== seq) return;
    tokens.length = index + 1;
    if (page.continuation) tokens.push(page.continuation);
    where.replaceChildren(render(page.value, page));
    const prev = h("button", { type: "button", class: "secondary", disabled: index === 0, onclick: () => { index -= 1; show(); } }, t("pager.previous"));
    const next = h("button", { type: "button", class: "secondary", disabled: !page.continuation, onclick: () => { index += 1; show(); } }, t("pager.next"));
    nav.replaceChildren(prev, h("span", { class: "muted" }, t("pager.page", { n: num(index + 1) })), next);
    where.append(nav);
  }
  return { show: () => show(true), reload: () => show(false) };
}

function progressOf(job) {
  const total = job.total_estimate || 0;
  const done = TERMINAL.includes(job.status);
  const ratio = total > 0 ? Math.min(1, (job.processed || 0) / total) : done ? 1 : 0;
  return h("span", { class: "nowrap" }, h("progress", { max: "100", value: String(Math.round(ratio * 100)), "aria-label": t("jobs.progressOf", { mapping: job.mapping }) }), " ", pct(ratio));
}
function countersCell(c) {
  if (!c) return "–";
  const parts = COUNTERS.filter((k) => c[k]).map((k) => `${t("counter." + k)}: ${num(c[k])}`);
  return parts.length ? parts.join(", ") : t("counter.none");
}
function jobsTable(run) {
  const rows = (run.jobs || []).map((j) => h("tr", { "data-mapping": j.mapping },
    h("th", { scope: "row" }, j.mapping), h("td", {}, statusLabel(j.status)), h("td", {}, progressOf(j)),
    h("td", { class: "num" }, num(j.processed)), h("td", { class: "num" }, num(j.total_estimate)),
    h("td", { class: "to_crm" }, countersCell(j.to_crm)), h("td", { class: "from_crm" }, countersCell(j.from_crm)),
    h("td", { class: "num" }, j.errors ? h("a", { href: `#errors/${run.run_id}` }, num(j.errors)) : num(0)),
    h("td", {}, duration(j.started_at, j.finished_at))));
  return table([t("col.mapping"), t("col.status"), t("col.progress"), t("col.processed"), t("col.total"),
    t("col.toCrm"), t("col.fromCrm"), t("col.errors"), t("col.duration")], rows, t("jobs.caption"));
}
// One poller, owned by the page shown: a page left behind neither starts nor keeps one.
function poll(fn, owner) {
  if (owner.isConnected) { stopPoll(); timer = setInterval(() => (owner.isConnected ? fn() : stopPoll()), 1000); }
}
function stopPoll() { if (timer) clearInterval(timer); timer = null; }
async function mappingList() { return (await api("GET", "/mappings")).value; }

// ---------- run history picture (plain SVG) ----------
function historyChart(points, days) {
  const runs = points.filter((p) => !p.dry_run);
  if (!runs.length) return h("p", { class: "muted" }, t("history.none", { days: num(days) }));
  const W = 720, H = 160, L = 48, R = 8, T = 10, B = 26;
  const start = Date.now() - days * 86400000, end = Date.now();
  const bw = Math.max(2, Math.min(14, (W - L - R) / Math.max(runs.length, 1) - 1));
  const x = (iso) => Math.min(W - R - bw / 2, Math.max(L + bw / 2, L + ((new Date(iso) - start) / (end - start)) * (W - L - R)));
  function chart(id, title, series, unit) {
    const max = Math.max(1, ...runs.map((p) => series.reduce((a, f) => a + (f.value(p) || 0), 0)));
    const y = (v) => T + (H - T - B) * (1 - v / max);
    const bars = runs.map((p) => {
      let base = 0;
      return series.map((f) => {
        const v = f.value(p) || 0;
        const rect = s("rect", { x: (x(p.started_at) - bw / 2).toFixed(1), y: y(base + v).toFixed(1), width: bw.toFixed(1), height: Math.max(0, y(base) - y(base + v)).toFixed(1), class: f.cls },
          s("title", {}, `${when(p.started_at)} — ${f.label}: ${unit(v)}`));
        base += v;
        return v ? rect : null;
      });
    });
    const ticks = [0, max / 2, max].map((v) => s("g", {}, s("line", { x1: L, x2: W - R, y1: y(v), y2: y(v), class: "grid" }),
      s("text", { x: L - 4, y: y(v) + 4, "text-anchor": "end", class: "axis" }, unit(Math.round(v * 10) / 10))));
    const dates = [start, start + (end - start) / 2, end].map((ms, i) => s("text", { x: L + (i / 2) * (W - L - R), y: H - 6, "text-anchor": ["start", "middle", "end"][i], class: "axis" }, day(new Date(ms).toISOString())));
    const total = (f) => runs.reduce((a, p) => a + (f.value(p) || 0), 0);
    const summary = series.map((f) => `${f.label}: ${unit(total(f))}`).join(", ");
    return h("figure", { class: "chart" },
      s("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-labelledby": `${id}-t ${id}-d`, preserveAspectRatio: "xMidYMid meet" },
        s("title", { id: `${id}-t` }, title), s("desc", { id: `${id}-d` }, t("history.desc", { runs: num(runs.length), days: num(days), summary })), ticks, dates, bars),
      h("figcaption", {}, h("strong", {}, title), " ", series.map((f) => h("span", { class: "legend" }, h("span", { class: `swatch ${f.cls}`, "aria-hidden": "true" }), f.label))));
  }
  return h("div", { class: "charts" },
    chart("chart-records", t("history.records", { days: num(days) }), [
      { label: t("history.synced"), cls: "synced", value: (p) => p.synced },
      { label: t("history.failed"), cls: "failed", value: (p) => p.failed },
    ], num),
    chart("chart-duration", t("history.durations", { days: num(days) }), [
      { label: t("col.duration"), cls: "duration", value: (p) => p.duration_seconds },
    ], secs));
}

// ---------- pages ----------
async function overview() {
  const main = current(); // this page's own container (see route)
  main.replaceChildren(h("h2", { tabindex: "-1" }, t("nav.overview")));
  const healthBox = h("section", { "aria-labelledby": "h-health" }, h("h3", { id: "h-health" }, t("overview.health")));
  const schedBox = h("section", { "aria-labelledby": "h-sched" }, h("h3", { id: "h-sched" }, t("overview.schedule")));
  const histBox = h("section", { "aria-labelledby": "h-hist", id: "history" }, h("h3", { id: "h-hist" }, t("history.title")));
  const runsBox = h("section", { "aria-labelledby": "h-runs" }, h("h3", { id: "h-runs" }, t("overview.latestRuns")));
  const runsList = h("div", { id: "runs-list" });
  runsBox.append(runsList);
  main.append(h("div", { class: "cols" }, healthBox, schedBox), histBox, runsBox);
  try {
    const resp = await fetch(API + "/health");
    const health = await resp.json();
    const item = (name, part) => h("li", {}, `${t("overview." + name)}: `,
      part === undefined ? h("span", { class: "muted" }, t("overview.unknown"))
        : h("span", { class: part.ok || part === "ok" ? "ok" : "error" }, part.ok || part === "ok" ? t("overview.ok") : t("overview.down")));
    healthBox.append(h("ul", {}, item("storage", health.storage ? { ok: health.storage.ok ?? health.status === "ok" } : undefined),
      item("bc", health.bc), item("dataverse", health.dataverse)));
  } catch (err) { healthBox.append(h("p", { class: "error" }, t("error.prefix", { message: err.message }))); }
  try {
    const sc = await api("GET", "/schedule");
    schedBox.append(h("p", {}, t("overview.nextRun", { when: when(sc.next_run), schedule: sc.schedule })));
  } catch { schedBox.append(h("p", { class: "muted" }, t("overview.noSchedule"))); }
  try {
    const hist = await api("GET", "/browse/history?days=30");
    histBox.append(historyChart(hist.value, hist.days));
  } catch (err) { histBox.append(h("p", { class: "error" }, t("error.prefix", { message: err.message }))); }
  await pager((token) => api("GET", `/runs${query({ limit: 10, continuation: token })}`), runsTable, runsList).show();
}

function runsTable(runs) {
  if (!runs.length) return h("p", { class: "muted" }, t("runs.none"));
  return table([t("col.run"), t("col.kind"), t("col.trigger"), t("col.status"), t("col.started"), t("col.duration")],
    runs.map((r) => h("tr", {}, h("th", { scope: "row" }, h("a", { href: `#jobs/${r.run_id}` }, r.run_id)),
      h("td", {}, t("kind." + r.kind) + (r.dry_run ? ` (${t("review.dryRun")})` : "")), h("td", {}, t("trigger." + r.trigger)),
      h("td", {}, statusLabel(r.status)), h("td", {}, when(r.started_at)), h("td", {}, duration(r.started_at, r.finished_at)))), t("runs.caption"));
}

async function mappingsPage() {
  const main = current(); // this page's own container (see route)
  main.replaceChildren(h("h2", { tabindex: "-1" }, t("nav.mappings")), h("p", {}, t("mappings.intro")));
  const msg = h("p", { role: "status", id: "mappings-msg" });
  const box = h("div");
  main.append(h("p", {}, h("button", { class: "secondary", id: "reset-mappings", onclick: async () => {
    if (!confirm(t("mappings.resetConfirm"))) { say(msg, t("mappings.resetCancelled")); return; }
    try { await api("POST", "/mappings/reset"); say(msg, t("mappings.resetDone")); load(); } catch (err) { showError(msg, err); }
  } }, t("mappings.reset"))), msg, box);
  let list = [];
  async function load() {
    list = await mappingList();
    box.replaceChildren(table([t("col.mapping"), t("col.tables"), t("col.direction"), t("col.filters"), t("col.onlyCoupled"), t("col.dependsOn"), t("col.actions")],
      list.map((m) => h("tr", { "data-mapping": m.name }, h("th", { scope: "row" }, m.name),
        h("td", {}, m.bc_entity, h("br"), h("span", { class: "muted" }, "⇄ "), m.crm_entity),
        h("td", {}, dirLabel(m.direction)),
        h("td", { class: "filters" }, m.bc_filter ? h("code", {}, m.bc_filter) : null, m.bc_filter && m.crm_filter ? h("br") : null, m.crm_filter ? h("code", {}, m.crm_filter) : null, !m.bc_filter && !m.crm_filter ? "–" : null),
        h("td", {}, m.sync_only_coupled ? t("yes") : t("no")), h("td", {}, (m.depends_on || []).join(", ") || "–"),
        h("td", { class: "actions" }, h("button", { onclick: (e) => editForm(m, e.target.closest("tr")) }, t("mappings.edit")),
          h("button", { class: "secondary", onclick: () => startRun(`/mappings/${enc(m.name)}/sync`, {}) }, t("action.syncModified")),
          h("button", { class: "secondary", onclick: () => startRun(`/mappings/${enc(m.name)}/sync`, { full: true }) }, t("action.runFull")),
          h("button", { class: "secondary", "data-action": "match-start", onclick: () => startRun(`/mappings/${enc(m.name)}/match/start`, {}) }, t("action.matchCoupling")),
          h("button", { class: "secondary", "data-action": "uncouple-start", onclick: () => confirm(t("action.uncoupleConfirm", { mapping: m.name })) && startRun(`/mappings/${enc(m.name)}/uncouple/start`, {}) }, t("action.uncoupleAll"))))), t("nav.mappings"), "cards mappings"));
  }
  async function startRun(path, body) {
    try { const r = await api("POST", path, body); location.hash = `#jobs/${r.run_id}`; } catch (err) { showError(msg, err); }
  }
  function editForm(m, row) {
    document.getElementById("edit-form")?.remove();
    const id = (x) => `edit-${x}`;
    const sel = (name, values, current) => h("select", { id: id(name), name }, values.map((v) => h("option", { value: v, selected: v === current }, t(`${name}.${v}`))));
    const err = h("p", { class: "error", role: "alert", id: "edit-error" });
    const fields = fieldEditor(m, list);
    const others = list.filter((x) => x.name !== m.name);
    const deps = h("fieldset", { class: "deps", id: "edit-depends_on", "data-field": "depends_on" }, h("legend", {}, t("col.dependsOn")),
      others.map((o) => h("label", { class: "check" }, h("input", { type: "checkbox", name: "depends_on", value: o.name, checked: (m.depends_on || []).includes(o.name) }), " ", o.name)));
    const form = h("form", { class: "editor", id: "edit-form", "aria-labelledby": "edit-title", novalidate: true, onsubmit: async (e) => {
      e.preventDefault();
      const f = e.target;
      form.querySelectorAll("[aria-invalid]").forEach((x) => { x.removeAttribute("aria-invalid"); x.removeAttribute("aria-describedby"); });
      err.textContent = "";
      let body;
      try {
        body = { direction: f.direction.value, bc_filter: f.bc_filter.value, crm_filter: f.crm_filter.value,
          sync_only_coupled: f.sync_only_coupled.checked, update_conflict: f.update_conflict.value, deletion_conflict: f.deletion_conflict.value,
          conflict_detection: f.conflict_detection.value, sync_after_coupling: f.sync_after_coupling.checked,
          // The server refuses creation toward BC only: a mapping that syncs from Dataverse never creates on a match miss.
          create_new_if_no_match: f.direction.value !== "FromIntegrationTable" && f.create_new_if_no_match.checked,
          depends_on: [...form.querySelectorAll("input[name=depends_on]:checked")].map((x) => x.value), fields: fields.value() };
      } catch (ex) { return fail(ex); }
      try {
        await api("PATCH", `/mappings/${enc(m.name)}`, body);
        say(msg, t("mappings.saved", { name: m.name }));
        form.remove(); await load();
        box.querySelector(`tr[data-mapping="${CSS.escape(m.name)}"] button`)?.focus();
      } catch (ex) { fail(ex); }
    } },
    h("h3", { id: "edit-title" }, t("mappings.editTitle", { name: m.name })),
    h("div", { class: "grid" },
      h("label", { for: id("direction") }, t("col.direction")), sel("direction", ["Bidirectional", "ToIntegrationTable", "FromIntegrationTable"], m.direction),
      h("label", { for: id("bc_filter") }, t("col.bcFilter")), h("input", { type: "text", id: id("bc_filter"), name: "bc_filter", value: m.bc_filter || "", "data-field": "bc_filter" }),
      h("label", { for: id("crm_filter") }, t("col.crmFilter")), h("input", { type: "text", id: id("crm_filter"), name: "crm_filter", value: m.crm_filter || "", "data-field": "crm_filter" }),
      h("label", { for: id("sync_only_coupled") }, t("col.onlyCoupled")), h("input", { type: "checkbox", id: id("sync_only_coupled"), name: "sync_only_coupled", checked: !!m.sync_only_coupled }),
      h("label", { for: id("update_conflict") }, t("col.updateConflict")), sel("update_conflict", ["None", "SendUpdateToIntegration", "GetUpdateFromIntegration"], m.update_conflict),
      h("label", { for: id("deletion_conflict") }, t("col.deletionConflict")), sel("deletion_conflict", ["None", "RemoveCoupling", "RestoreRecords"], m.deletion_conflict),
      h("label", { for: id("conflict_detection") }, t("col.conflictDetection")),
      h("span", {}, h("select", { id: id("conflict_detection"), name: "conflict_detection", "data-field": "conflict_detection", "aria-describedby": "help-conflict_detection" },
        ["Field", "Record"].map((v) => h("option", { value: v, selected: v === (m.conflict_detection || "Field") }, t(`conflict_detection.${v}`)))),
        h("span", { class: "muted help", id: "help-conflict_detection" }, t("help.conflictDetection"))),
      h("label", { for: id("sync_after_coupling") }, t("col.syncAfterCoupling")),
      h("span", {}, h("input", { type: "checkbox", id: id("sync_after_coupling"), name: "sync_after_coupling", "data-field": "sync_after_coupling", checked: m.sync_after_coupling ?? true, "aria-describedby": "help-sync_after_coupling" }),
        h("span", { class: "muted help", id: "help-sync_after_coupling" }, t("help.syncAfterCoupling"))),
      h("label", { for: id("create_new_if_no_match") }, t("col.createNewIfNoMatch")),
      h("span", {}, h("input", { type: "checkbox", id: id("create_new_if_no_match"), name: "create_new_if_no_match", "data-field": "create_new_if_no_match", checked: !!m.create_new_if_no_match, disabled: m.direction === "FromIntegrationTable", "aria-describedby": "help-create_new_if_no_match" }),
        h("span", { class: "muted help", id: "help-create_new_if_no_match" }, t("help.createNewIfNoMatch")))),
    deps, fields.element, err,
    h("p", {}, h("button", { type: "submit" }, t("action.save")), h("button", { type: "button", class: "secondary", onclick: () => form.remove() }, t("action.cancel"))));
    function fail(ex) {
      err.textContent = ex.field ? t("error.field", { field: ex.field, message: ex.message }) : t("error.prefix", { message: ex.message });
      const at = (name) => form.querySelector(`[data-field="${CSS.escape(name)}"], [data-field-alt="${CSS.escape(name)}"]`);
      const input = ex.field && (at(ex.field) || at(ex.field.replace(/\.\w+$/, "")) || (ex.field.startsWith("fields") && at("fields")));
      if (input) { input.setAttribute("aria-invalid", "true"); input.setAttribute("aria-describedby", "edit-error"); (input.matches("input,select,textarea") ? input : input.querySelector("input,select,button"))?.focus(); }
    }
    // "Create new if unable to find a match" exists only where the mapping syncs toward Dataverse.
    const dirSel = form.querySelector("#edit-direction"), createBox = form.querySelector("#edit-create_new_if_no_match");
    dirSel.addEventListener("change", () => { createBox.disabled = dirSel.value === "FromIntegrationTable"; if (createBox.disabled) createBox.checked = false; });
    row.closest(".scroll").after(form);
    form.querySelector("select").focus();
  }
  try { await load(); } catch (err) { showError(box, err); }
}

// The field-mapping editor of one mapping: rows keep each field's other properties as they were.
function fieldEditor(m, mappings) {
  const bcFields = CATALOGUE.bc[m.bc_entity] || [];
  const crmFields = CATALOGUE.crm[m.crm_entity] || [];
  const lists = h("div", { hidden: true },
    h("datalist", { id: "dl-bc" }, bcFields.map((f) => h("option", { value: f }))),
    h("datalist", { id: "dl-crm" }, crmFields.map((f) => h("option", { value: f }))));
  const body = h("tbody");
  let counter = 0;
  const rows = [];
  function constantText(v) { return v === null || v === undefined ? "" : typeof v === "string" ? v : JSON.stringify(v); }
  function addRow(field, focus) {
    const n = counter++;
    const idx = () => rows.indexOf(entry);
    const cell = (key, input) => { input.setAttribute("data-key", key); return h("td", {}, input); };
    const label = (key) => t("fields.rowLabel", { column: t(`fields.${key}`), n: num(n + 1) });
    const bc = h("input", { type: "text", list: "dl-bc", value: field.bc || "", "aria-label": label("bc"), autocomplete: "off", size: "14" });
    const crm = h("input", { type: "text", list: "dl-crm", value: field.crm || "", "aria-label": label("crm"), autocomplete: "off", size: "14" });
    const dir = h("select", { "aria-label": label("direction") }, ["Bidirectional", "ToIntegrationTable", "FromIntegrationTable"].map((v) => h("option", { value: v, selected: (field.direction || "Bidirectional") === v }, t(`fielddir.${v}`))));
    const constant = h("input", { type: "text", value: constantText(field.constant), "aria-label": label("constant"), size: "8" });
    const lookup = h("select", { "aria-label": label("lookup") }, h("option", { value: "" }, "–"), mappings.filter((x) => x.name !== m.name).map((x) => h("option", { value: x.name, selected: field.lookup === x.name }, x.name)));
    const priority = h("input", { type: "number", min: "1", max: "9", step: "1", inputmode: "numeric", value: field.match_priority ?? "", "aria-label": label("priority"), class: "narrow" });
    const clear = h("input", { type: "checkbox", checked: !!field.clear_on_fail, "aria-label": label("clear") });
    const tr = h("tr", { "data-field-row": String(n) }, cell("bc", bc), cell("crm", crm), cell("direction", dir), cell("constant", constant), cell("lookup", lookup), cell("match_priority", priority), h("td", { class: "center" }, clear),
      h("td", {}, h("button", { type: "button", class: "secondary", onclick: () => { rows.splice(idx(), 1); tr.remove(); renumber(); addBtn.focus(); } }, t("fields.remove"))));
    const entry = { tr, value() {
      const out = { ...field };
      const text = (el) => el.value.trim() || null;
      out.bc = text(bc); out.crm = text(crm); out.direction = dir.value;
      const c = constant.value;
      if (c === constantText(field.constant)) out.constant = field.constant ?? null;
      else out.constant = c === "" ? null : /^(-?\d+(\.\d+)?|true|false)$/.test(c.trim()) ? JSON.parse(c.trim()) : c;
      out.lookup = lookup.value || null;
      out.match_priority = priority.value === "" ? null : Number(priority.value);
      out.clear_on_fail = clear.checked;
      for (const k of Object.keys(out)) if (out[k] === null && !(k in field)) delete out[k];
      return out;
    } };
    rows.push(entry);
    body.append(tr);
    renumber();
    if (focus) bc.focus();
  }
  // data-field names the API's error location (fields[3].crm) so its errors land on the right input.
  function renumber() {
    rows.forEach((r, i) => {
      r.tr.setAttribute("data-field", `fields[${i}]`);
      r.tr.setAttribute("data-field-alt", `fields.${i}`);
      r.tr.querySelectorAll("[data-key]").forEach((el) => {
        el.setAttribute("data-field", `fields[${i}].${el.dataset.key}`);
        el.setAttribute("data-field-alt", `fields.${i}.${el.dataset.key}`);
      });
    });
  }
  (m.fields || []).forEach((f) => addRow(f, false));
  const addBtn = h("button", { type: "button", class: "secondary", id: "add-field", onclick: () => addRow({ direction: "Bidirectional" }, true) }, t("fields.add"));
  const element = h("fieldset", { class: "fields", "data-field": "fields" }, h("legend", {}, t("fields.title")), lists,
    table([t("fields.bc"), t("fields.crm"), t("fields.direction"), t("fields.constant"), t("fields.lookup"), t("fields.priority"), t("fields.clear"), t("col.actions")], body, t("fields.title"), "fields-table"),
    h("p", { class: "muted" }, t("fields.help")), addBtn);
  return { element, value: () => rows.map((r) => r.value()) };
}

// BC's review line status of one direction: Success favorable, Error unfavorable, blank when never run.
function reviewStatus(value, applies) {
  if (!applies) return h("span", { class: "muted" }, "–");
  if (!value) return h("span", { class: "muted" }, t("review.status.none"));
  const cls = { Success: "favorable", Error: "unfavorable" }[value] || "";
  return h("span", { class: `review-status ${cls}`, "data-status": value }, t(`review.status.${value}`));
}

async function reviewPage() {
  const main = current(); // this page's own container (see route)
  main.replaceChildren(h("h2", { tabindex: "-1" }, t("nav.review")), h("p", {}, t("review.intro")), h("p", { class: "notice" }, t("review.duplicates")));
  const controls = h("p");
  const box = h("div", { id: "review-table" });
  const progress = h("div", { "aria-live": "polite", id: "review-progress" });
  main.append(controls, box, progress);
  let lines = [];
  let dry = null;
  async function load() { lines = (await api("GET", "/review")).value; render(); }
  function render() {
    const jobs = Object.fromEntries((dry?.jobs || []).map((j) => [j.mapping, j]));
    const toCrm = (l) => l.direction !== "FromIntegrationTable";
    const fromCrm = (l) => l.direction !== "ToIntegrationTable";
    box.replaceChildren(table([t("col.mapping"), t("col.dependsOn"), t("col.direction"), t("col.onlyCoupled"), t("col.recommendation"),
      t("review.toCrmStatus"), t("review.fromCrmStatus"), t("review.dryRunResult"), t("col.actions")],
      lines.map((l) => {
        const j = jobs[l.mapping];
        const last = l.last_full_sync || {};
        const failed = last.to_crm === "Error" || last.from_crm === "Error";
        const busy = last.to_crm === "InProcess" || last.from_crm === "InProcess";
        return h("tr", { "data-mapping": l.mapping, "data-recommendation": l.recommendation }, h("th", { scope: "row" }, l.mapping), h("td", {}, (l.depends_on || []).join(", ") || "–"),
          h("td", {}, dirLabel(l.direction)), h("td", {}, l.sync_only_coupled ? t("yes") : t("no")),
          h("td", { class: "recommendation" }, t(`rec.${l.recommendation}`), l.bc_configured === false ? h("span", { class: "muted" }, ` (${t("status.NotConfigured")})`) : null),
          h("td", { class: "to_crm" }, reviewStatus(last.to_crm, toCrm(l))), h("td", { class: "from_crm" }, reviewStatus(last.from_crm, fromCrm(l))),
          h("td", { class: "dry" }, j ? [statusLabel(j.status), h("br"), countersCell(j.to_crm), h("br"), countersCell(j.from_crm)] : h("span", { class: "muted" }, t("review.notAnalysed"))),
          h("td", { class: "actions" }, failed && !busy ? h("button", { class: "secondary restart", onclick: () => restart(l.mapping) }, t("review.restart")) : null));
      }), t("nav.review")));
  }
  await load();
  const dryBtn = h("button", { class: "secondary", id: "dry-run", onclick: async () => {
    // A dry run holds the mappings like any run: Start waits until it has ended.
    dryBtn.disabled = startBtn.disabled = true;
    try {
      const r = await api("POST", "/sync/full", { dry_run: true, recommended: true, after_full_sync: "restore" });
      announce(t("review.analysing"));
      poll(async () => {
        dry = await api("GET", `/runs/${r.run_id}`); render();
        if ([...TERMINAL, "AwaitingDecision"].includes(dry.status)) { stopPoll(); dryBtn.disabled = startBtn.disabled = false; announce(t("review.analysed")); }
      }, main);
    } catch (err) { dryBtn.disabled = startBtn.disabled = false; showError(progress, err); }
  } }, t("review.dryRunButton"));
  const startBtn = h("button", { id: "start-full", onclick: async () => {
    if (!confirm(t("review.startConfirm"))) return;
    startBtn.disabled = true;
    try {
      const r = await api("POST", "/sync/full", { recommended: true, after_full_sync: "ask" });
      outcome = null; watch(r.run_id);
    } catch (err) { startBtn.disabled = false; showError(progress, err); }
  } }, t("review.start"));
  async function restart(name) {
    startBtn.disabled = true;
    try {
      const r = await api("POST", `/mappings/${enc(name)}/sync`, { full: true, recommended: true });
      outcome = null; watch(r.run_id);
    } catch (err) { startBtn.disabled = false; showError(progress, err); }
  }
  controls.append(dryBtn, " ", startBtn);
  let outcome = null; // the answered decision stays visible while the run finishes
  function watch(runId) {
    const tick = async () => {
      let run;
      try { run = await api("GET", `/runs/${runId}`); } catch (err) { showError(progress, err); stopPoll(); return; }
      const total = (run.jobs || []).reduce((a, j) => a + (j.total_estimate || 0), 0);
      const done = (run.jobs || []).reduce((a, j) => a + Math.min(j.processed || 0, j.total_estimate || 0), 0);
      progress.replaceChildren(h("h3", { id: "h-progress" }, t("review.progress", { run: run.run_id })),
        h("p", {}, `${t("col.status")}: `, h("strong", { id: "run-status" }, statusLabel(run.status)), " — ", total ? pct(done / total) : ""), jobsTable(run), outcome || "");
      if (run.status === "AwaitingDecision") { stopPoll(); decision(run); load().catch(() => {}); }
      else if (TERMINAL.includes(run.status)) { stopPoll(); announce(statusLabel(run.status)); startBtn.disabled = false; await load().catch((err) => showError(progress, err)); }
    };
    tick(); poll(tick, main);
  }
  function decision(run) {
    const answer = async (keep) => {
      try {
        await api("POST", `/runs/${run.run_id}/decision`, { keep_sync_all_records: keep });
        outcome = h("p", { class: "ok", role: "status", id: "decision-outcome" }, keep ? t("decision.kept") : t("decision.restored"));
        startBtn.disabled = false; watch(run.run_id);
      } catch (err) { showError(box2, err); }
    };
    const box2 = h("section", { class: "notice", id: "decision", "aria-labelledby": "h-decision" }, h("h3", { id: "h-decision" }, t("decision.title")),
      h("p", {}, t("decision.explain")), h("button", { id: "decision-keep", onclick: () => answer(true) }, t("decision.keep")),
      h("button", { class: "secondary", id: "decision-restore", onclick: () => answer(false) }, t("decision.restore")));
    progress.append(box2); announce(t("decision.title"));
    box2.querySelector("button").focus();
  }
}

async function jobsPage(runId) {
  const main = current(); // this page's own container (see route)
  main.replaceChildren(h("h2", { tabindex: "-1" }, t("nav.jobs")));
  const box = h("div", { "aria-live": "polite", id: "jobs-box" });
  main.append(box);
  if (!runId) {
    await pager((token) => api("GET", `/browse/jobs${query({ limit: 25, continuation: token })}`), allJobsTable, box).show();
    return;
  }
  const tick = async () => {
    const run = await api("GET", `/runs/${runId}`);
    box.replaceChildren(h("h3", {}, t("jobs.run", { run: runId, status: statusLabel(run.status), kind: t("kind." + run.kind) })),
      h("p", {}, `${t("col.started")}: ${when(run.started_at)} · ${t("col.duration")}: ${duration(run.started_at, run.finished_at)}`),
      jobsTable(run), h("p", {}, h("a", { href: `#errors/${runId}` }, t("jobs.showErrors")), " · ", h("a", { href: "#jobs" }, t("jobs.allRuns"))));
    if (!["Pending", "Running"].includes(run.status)) stopPoll();
  };
  await tick(); poll(() => tick().catch((err) => { stopPoll(); showError(box, err); }), main);
}
function allJobsTable(jobs) {
  if (!jobs.length) return h("p", { class: "muted" }, t("runs.none"));
  return table([t("col.run"), t("col.mapping"), t("col.status"), t("col.started"), t("col.duration"), t("col.toCrm"), t("col.fromCrm"), t("col.errors")],
    jobs.map((j) => h("tr", { "data-mapping": j.mapping }, h("td", {}, h("a", { href: `#jobs/${j.run_id}` }, j.run_id)), h("th", { scope: "row" }, j.mapping),
      h("td", {}, statusLabel(j.status)), h("td", {}, when(j.started_at)), h("td", {}, duration(j.started_at, j.finished_at)),
      h("td", {}, countersCell(j.to_crm)), h("td", {}, countersCell(j.from_crm)),
      h("td", { class: "num" }, j.errors ? h("a", { href: `#errors/${j.run_id}` }, num(j.errors)) : num(0)))), t("jobs.caption"));
}

// The records of an error's coupling (the answer fills both sides from the coupling when there is one).
function idsOf(e) {
  const body = {};
  if (e.bc?.id) body.bc_ids = [e.bc.id];
  if (e.crm?.id) body.crm_ids = [e.crm.id];
  return body;
}
function resultText(r) {
  const list = r?.value || r?.results || [];
  if (typeof r?.removed === "number") return t("couplings.removedN", { n: num(r.removed) });
  if (typeof r?.restored === "number") return t("errors.restoredN", { n: num(r.restored) });
  if (!list.length) return t("action.done");
  const counts = {};
  list.forEach((x) => { counts[x.result] = (counts[x.result] || 0) + 1; });
  const first = list.find((x) => x.message)?.message;
  return `${t("action.done")}: ${Object.entries(counts).map(([k, v]) => `${t("outcome." + k)} ${num(v)}`).join(", ")}${first ? ` — ${first}` : ""}`;
}

async function errorsPage(runId) {
  const main = current(); // this page's own container (see route)
  main.replaceChildren(h("h2", { tabindex: "-1" }, t("nav.errors")));
  const mappings = await mappingList();
  const msg = h("p", { role: "status", id: "errors-msg" });
  const box = h("div", { id: "errors-list" });
  const filter = h("select", { id: "e-mapping" }, h("option", { value: "" }, t("errors.allMappings")), mappings.map((m) => h("option", { value: m.name }, m.name)));
  const skippedBox = h("div", { id: "skipped-list" });
  const skippedMapping = h("select", { id: "s-mapping" }, mappings.map((m) => h("option", { value: m.name }, m.name)));
  main.append(
    h("section", { "aria-labelledby": "h-errors" }, h("h3", { id: "h-errors" }, runId ? t("errors.ofRun", { run: runId }) : t("errors.title")),
      h("p", { class: "toolbar" }, h("label", { for: "e-mapping" }, t("col.mapping")), " ", filter), msg, box),
    h("section", { "aria-labelledby": "h-skipped" }, h("h3", { id: "h-skipped" }, t("skipped.title")), h("p", {}, t("skipped.intro")),
      h("p", { class: "toolbar" }, h("label", { for: "s-mapping" }, t("col.mapping")), " ", skippedMapping), skippedBox));
  const act = async (method, path, body) => {
    try { say(msg, resultText(await api(method, path, body))); errors.reload(); skipped.reload(); } catch (err) { showError(msg, err); }
  };
  const errors = pager((token) => api("GET", `/browse/errors${query({ run_id: runId, mapping: filter.value, limit: 25, continuation: token })}`), (list) => {
    box.setAttribute("data-mapping", filter.value);
    if (!list.length) return h("p", { class: "muted" }, t("errors.none"));
    return table([t("col.time"), t("col.mapping"), t("side.bc"), t("side.crm"), t("col.message"), t("col.actions")],
      list.map((e) => h("tr", { "data-error": e.id }, h("td", {}, when(e.time)), h("td", {}, e.mapping || ""), h("td", {}, recordCell(e.bc, "bc")), h("td", {}, recordCell(e.crm, "crm")),
        h("td", { class: "message" }, e.message || ""),
        h("td", { class: "actions" }, h("button", { onclick: () => act("POST", "/errors/retry", { ids: [e.id] }) }, t("errors.retry")),
          e.coupling?.skipped ? h("button", { class: "secondary", onclick: () => act("POST", `/mappings/${enc(e.mapping)}/skipped/restore`, idsOf(e)) }, t("errors.restore")) : null,
          e.coupling ? h("button", { class: "secondary", onclick: () => act("DELETE", `/mappings/${enc(e.mapping)}/couplings`, idsOf(e)) }, t("couplings.delete")) : null))), t("nav.errors"));
  }, box);
  const skipped = pager((token) => api("GET", `/browse/mappings/${enc(skippedMapping.value)}/couplings${query({ skipped: "true", limit: 25, continuation: token })}`), (list) => {
    skippedBox.setAttribute("data-mapping", skippedMapping.value);
    if (!list.length) return h("p", { class: "muted" }, t("skipped.none"));
    return table([t("side.bc"), t("side.crm"), t("col.failures"), t("col.message"), t("col.actions")],
      list.map((c) => h("tr", {}, h("td", {}, recordCell(c.bc, "bc")), h("td", {}, recordCell(c.crm, "crm")), h("td", { class: "num" }, num(c.failures)), h("td", { class: "message" }, c.last_error || ""),
        h("td", { class: "actions" }, h("button", { onclick: () => act("POST", `/mappings/${enc(c.mapping)}/skipped/restore`, { bc_ids: [c.bc_id] }) }, t("errors.restore"))))), t("skipped.title"));
  }, skippedBox);
  filter.addEventListener("change", () => errors.show());
  skippedMapping.addEventListener("change", () => skipped.show());
  await Promise.all([errors.show(), skipped.show()]);
}

async function couplingsPage() {
  const main = current(); // this page's own container (see route)
  main.replaceChildren(h("h2", { tabindex: "-1" }, t("nav.couplings")), h("p", {}, t("couplings.intro")));
  const mappings = await mappingList();
  const msg = h("p", { role: "status", id: "couplings-msg" });
  const results = h("div", { id: "couplings-list" });
  const search = h("form", { class: "toolbar", role: "search", onsubmit: (e) => { e.preventDefault(); list.show(); } },
    h("label", { for: "c-mapping" }, t("col.mapping")), h("select", { id: "c-mapping", onchange: () => { list.show(); } }, mappings.map((m) => h("option", { value: m.name }, m.name))),
    h("label", { for: "c-q" }, t("couplings.query")), h("input", { type: "search", id: "c-q", autocomplete: "off", "aria-describedby": "c-q-help" }),
    h("span", { class: "check" }, h("input", { type: "checkbox", id: "c-skipped", onchange: () => list.show() }), h("label", { for: "c-skipped" }, t("couplings.onlySkipped"))),
    h("button", { type: "submit" }, t("couplings.search")), h("span", { id: "c-q-help", class: "muted help" }, t("couplings.queryHelp")));
  const val = (id) => document.getElementById(id).value.trim();
  const mapping = () => mappings.find((m) => m.name === val("c-mapping"));
  const base = () => `/mappings/${enc(val("c-mapping"))}`;
  async function act(method, path, body) {
    try { say(msg, resultText(await api(method, base() + path, body))); await list.reload(); } catch (err) { showError(msg, err); }
  }
  const list = pager((token) => api("GET", `/browse${base()}/couplings${query({ q: val("c-q"), skipped: document.getElementById("c-skipped").checked ? "true" : "", limit: 25, continuation: token })}`), (items) => {
    results.setAttribute("data-mapping", val("c-mapping"));
    if (!items.length) return h("p", { class: "muted" }, t("couplings.none"));
    const bidi = mapping()?.direction === "Bidirectional";
    const allowed = { Bidirectional: ["recommended", "to_crm", "from_crm"], ToIntegrationTable: ["to_crm"], FromIntegrationTable: ["from_crm"] }[mapping()?.direction] || ["recommended"];
    return table([t("side.bc"), t("side.crm"), t("col.lastResult"), t("col.skipped"), t("col.failures"), t("col.lastSynced"), t("col.actions")],
      items.map((c) => {
        const dirSel = h("select", { "aria-label": t("couplings.directionOf", { id: c.bc?.number || c.bc_id }) }, allowed.map((d) => h("option", { value: d }, t("syncdir." + d))));
        return h("tr", { "data-bc-id": c.bc_id, "data-crm-id": c.crm_id }, h("td", {}, recordCell(c.bc, "bc")), h("td", {}, recordCell(c.crm, "crm")), h("td", {}, c.last_result ? t("result." + c.last_result) : "–"),
          h("td", {}, c.skipped ? t("yes") : t("no")), h("td", { class: "num" }, num(c.failures)), h("td", {}, when(c.last_synced_at)),
          h("td", { class: "actions" }, dirSel, h("button", { onclick: () => act("POST", "/records/sync", { bc_ids: [c.bc_id], ...(bidi || dirSel.value !== "recommended" ? { direction: dirSel.value } : {}) }) }, t("action.syncNow")),
            c.skipped ? h("button", { class: "secondary", onclick: () => act("POST", "/skipped/restore", { bc_ids: [c.bc_id] }) }, t("errors.restore")) : null,
            h("button", { class: "secondary", onclick: () => act("DELETE", "/couplings", { bc_ids: [c.bc_id] }) }, t("couplings.delete"))));
      }), t("nav.couplings"));
  }, results);

  // Set up a coupling: find the record on each side by number, name or id, pick one, couple.
  const picks = {};
  function picker(side) {
    const sel = h("select", { id: `pick-${side}`, disabled: true }, h("option", { value: "" }, t("couple.pickFirst")));
    const input = h("input", { type: "search", id: `find-${side}`, autocomplete: "off" });
    const find = async () => {
      try {
        const r = await api("GET", `/browse${base()}/records${query({ side, q: input.value.trim() })}`);
        sel.replaceChildren(...(r.value.length ? r.value.map((rec) => h("option", { value: rec.id, disabled: !!rec.coupled_to },
          `${[rec.number, rec.name].filter(Boolean).join(" · ") || rec.id}${rec.coupled_to ? ` (${t("couple.alreadyCoupled")})` : ""}`)) : [h("option", { value: "" }, t("couple.noneFound"))]));
        sel.disabled = !r.value.length;
        const firstFree = r.value.find((rec) => !rec.coupled_to);
        if (firstFree) sel.value = firstFree.id;
        sel.focus();
      } catch (err) { showError(msg, err); }
    };
    input.addEventListener("keydown", (e) => { if (e.key === "Enter") { e.preventDefault(); find(); } });
    picks[side] = sel;
    return h("div", { class: "picker" }, h("label", { for: `find-${side}` }, t(side === "bc" ? "couple.findBc" : "couple.findCrm")), h("span", { class: "row" }, input, h("button", { type: "button", class: "secondary", id: `find-${side}-btn`, onclick: find }, t("couple.find"))),
      h("label", { for: `pick-${side}` }, t(side === "bc" ? "couple.pickBc" : "couple.pickCrm")), sel);
  }
  const coupleBox = h("section", { "aria-labelledby": "h-couple", class: "panel" }, h("h3", { id: "h-couple" }, t("couplings.couple")), h("p", { class: "muted" }, t("couple.intro")),
    h("div", { class: "pickers" }, picker("bc"), picker("crm")),
    h("p", {}, h("button", { type: "button", id: "couple-btn", onclick: async () => {
      if (!picks.bc.value || !picks.crm.value) { say(msg, t("couplings.needBoth"), false); return; }
      try {
        await api("POST", `${base()}/couplings`, { bc_id: picks.bc.value, crm_id: picks.crm.value });
        say(msg, t("couple.done")); picks.bc.disabled = picks.crm.disabled = true; await list.reload();
      } catch (err) { showError(msg, err); }
    } }, t("couplings.couple"))));
  const matchBox = h("section", { "aria-labelledby": "h-match", class: "panel" }, h("h3", { id: "h-match" }, t("couplings.match")), h("p", { class: "muted" }, t("match.intro")),
    h("p", {}, h("button", { type: "button", class: "secondary", id: "match-dry", onclick: () => match(true) }, t("couplings.matchDry")),
      h("button", { type: "button", id: "match-run", onclick: () => match(false) }, t("couplings.match"))));
  async function match(dry) {
    if (!dry && !confirm(t("match.confirm", { mapping: val("c-mapping") }))) return;
    try {
      const r = await api("POST", `${base()}/match`, { dry_run: dry });
      const counts = r.counts || {};
      say(msg, `${dry ? t("couplings.matchDry") : t("couplings.match")}: ` + Object.entries(counts).map(([k, v]) => `${t("outcome." + k)} ${num(v)}`).join(", "));
      if (!dry) await list.reload();
    } catch (err) { showError(msg, err); }
  }
  // BC's CRM Skipped Records actions for the whole mapping, and couplings whose record was deleted.
  const broken = h("div", { id: "broken-list" });
  async function findBroken(token) {
    try {
      const r = await api("GET", `${base()}/broken-couplings${query({ continuation: token })}`);
      const repair = (action, b) => act("POST", `/broken-couplings/${action}`, { bc_ids: [b.bc_id] }).then(() => findBroken(token));
      broken.replaceChildren(r.value.length ? table([t("side.bc"), t("side.crm"), t("broken.missing"), t("col.actions")], r.value.map((b) => h("tr", { "data-bc-id": b.bc_id },
        h("td", {}, h("code", {}, b.bc_id)), h("td", {}, h("code", {}, b.crm_id)), h("td", {}, t("broken." + b.missing)),
        h("td", { class: "actions" }, h("button", { onclick: () => repair("restore", b) }, t("broken.restore")), h("button", { class: "secondary", onclick: () => repair("delete", b) }, t("broken.delete"))))), t("broken.title"))
        : h("p", { class: "muted" }, t("broken.none")),
        r.continuation ? h("button", { class: "secondary", onclick: () => findBroken(r.continuation) }, t("broken.next")) : "");
    } catch (err) { showError(msg, err); }
  }
  const tools = h("p", { class: "toolbar" },
    h("button", { class: "secondary", id: "restore-all", onclick: () => act("POST", "/skipped/restore-all") }, t("couplings.restoreAll")),
    h("button", { class: "secondary", id: "find-broken", onclick: () => findBroken(null) }, t("broken.find")));
  main.append(search, msg, results, tools, broken, h("div", { class: "cols" }, coupleBox, matchBox));
  await list.show();
}

// ---------- shell ----------
function applyStatic() {
  document.documentElement.lang = lang;
  document.querySelectorAll("[data-i18n]").forEach((el) => { el.textContent = t(el.dataset.i18n); });
  document.getElementById("nav").setAttribute("aria-label", t("nav.label"));
  document.title = t("title");
  document.getElementById("lang").value = lang;
}
async function route() {
  stopPoll();
  const [page, arg] = location.hash.replace(/^#/, "").split("/").map(decodeURIComponent);
  const pages = { overview, mappings: mappingsPage, review: reviewPage, jobs: jobsPage, errors: errorsPage, couplings: couplingsPage };
  const name = pages[page] ? page : "overview";
  document.querySelectorAll("nav a").forEach((a) => a.toggleAttribute("aria-current", a.getAttribute("href") === `#${name}`));
  document.querySelectorAll("nav a[aria-current]").forEach((a) => a.setAttribute("aria-current", "page"));
  const view = h("div", { class: "view" });
  mainEl.removeAttribute("data-ready");
  mainEl.replaceChildren(view);
  main = view;
  try { await pages[name](arg); } catch (err) { view.append(h("p", { class: "error", role: "alert" }, t("error.prefix", { message: err.message }))); }
  if (main !== view) return;
  view.querySelector("h2")?.focus();
  mainEl.setAttribute("data-ready", name);
}
document.getElementById("lang").addEventListener("change", (e) => {
  lang = e.target.value;
  sessionStorage.setItem("portal.lang", lang);
  applyStatic(); route();
});
window.addEventListener("hashchange", route);
// The skip link moves focus only: "#main" is no page of the router.
document.querySelector(".skip").addEventListener("click", (e) => { e.preventDefault(); mainEl.focus(); });
applyStatic();
route();
