// Admin portal: plain ES module, no framework. All strings come from the message files (t()).
const DATA = JSON.parse(document.getElementById("portal-data").textContent);
const LANGS = Object.keys(DATA.messages);
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

const main = document.getElementById("main");
const live = document.getElementById("status");
let timer = null;

function t(key, vars = {}) {
  const text = DATA.messages[lang][key] ?? DATA.messages.en[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => (name in vars ? String(vars[name]) : `{${name}}`));
}
const num = (n) => new Intl.NumberFormat(lang).format(n ?? 0);
const pct = (n) => new Intl.NumberFormat(lang, { style: "percent", maximumFractionDigits: 0 }).format(n);
const when = (iso) => (iso ? new Intl.DateTimeFormat(lang, { dateStyle: "medium", timeStyle: "medium" }).format(new Date(iso)) : "–");
function duration(a, b) {
  if (!a) return "–";
  const s = Math.max(0, ((b ? new Date(b) : new Date()) - new Date(a)) / 1000);
  return t("unit.seconds", { n: new Intl.NumberFormat(lang, { maximumFractionDigits: 1 }).format(s) });
}

class ApiFailure extends Error {
  constructor(status, body) {
    super(body?.error?.message || `HTTP ${status}`);
    this.status = status;
    this.field = body?.error?.field;
  }
}
async function api(method, path, body) {
  const init = { method, headers: { "x-functions-key": KEY, Accept: "application/json" } };
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

// Small DOM builder: h("td", {class: "num"}, "1").
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === false || v === null || v === undefined) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "text") el.textContent = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined && c !== false) el.append(c instanceof Node ? c : String(c));
  return el;
}
function table(headers, rows, caption) {
  return h("div", { class: "scroll" }, h("table", {}, caption ? h("caption", { class: "visually-hidden" }, caption) : null,
    h("thead", {}, h("tr", {}, headers.map((x) => h("th", { scope: "col" }, x)))), h("tbody", {}, rows)));
}
function announce(text) { live.textContent = text; }
function showError(where, err) {
  where.replaceChildren(h("p", { class: "error", role: "alert" }, t("error.prefix", { message: err.message })));
}
const dirLabel = (d) => t(`direction.${d}`);
const statusLabel = (s) => t(`status.${s}`);
const COUNTERS = ["inserted", "modified", "deleted", "unchanged", "skipped", "failed", "coupled", "uncoupled"];

function progressOf(job) {
  const total = job.total_estimate || 0;
  const done = ["Succeeded", "Failed", "Cancelled"].includes(job.status);
  const ratio = total > 0 ? Math.min(1, (job.processed || 0) / total) : done ? 1 : 0;
  return h("span", {}, h("progress", { max: "100", value: String(Math.round(ratio * 100)), "aria-label": t("jobs.progressOf", { mapping: job.mapping }) }), " ", pct(ratio));
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
function poll(fn) { stopPoll(); timer = setInterval(fn, 1000); }
function stopPoll() { if (timer) clearInterval(timer); timer = null; }

// ---------- pages ----------
async function overview() {
  main.replaceChildren(h("h2", { tabindex: "-1" }, t("nav.overview")));
  const healthBox = h("section", { "aria-labelledby": "h-health" }, h("h3", { id: "h-health" }, t("overview.health")));
  const runsBox = h("section", { "aria-labelledby": "h-runs" }, h("h3", { id: "h-runs" }, t("overview.latestRuns")));
  const schedBox = h("section", { "aria-labelledby": "h-sched" }, h("h3", { id: "h-sched" }, t("overview.schedule")));
  main.append(healthBox, schedBox, runsBox);
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
    const s = await api("GET", "/schedule");
    schedBox.append(h("p", {}, t("overview.nextRun", { when: when(s.next_run), schedule: s.schedule })));
  } catch { schedBox.append(h("p", { class: "muted" }, t("overview.noSchedule"))); }
  try { runsBox.append(runsTable((await api("GET", "/runs?limit=5")).value)); } catch (err) { runsBox.append(h("p", { class: "error" }, err.message)); }
}

function runsTable(runs) {
  if (!runs.length) return h("p", { class: "muted" }, t("runs.none"));
  return table([t("col.run"), t("col.kind"), t("col.trigger"), t("col.status"), t("col.started"), t("col.duration")],
    runs.map((r) => h("tr", {}, h("th", { scope: "row" }, h("a", { href: `#jobs/${r.run_id}` }, r.run_id)),
      h("td", {}, t("kind." + r.kind) + (r.dry_run ? ` (${t("review.dryRun")})` : "")), h("td", {}, t("trigger." + r.trigger)),
      h("td", {}, statusLabel(r.status)), h("td", {}, when(r.started_at)), h("td", {}, duration(r.started_at, r.finished_at)))), t("runs.caption"));
}

async function mappingsPage() {
  main.replaceChildren(h("h2", { tabindex: "-1" }, t("nav.mappings")), h("p", {}, t("mappings.intro")));
  const msg = h("p", { role: "status" });
  const box = h("div");
  main.append(h("p", {}, h("button", { class: "secondary", onclick: async () => {
    if (!confirm(t("mappings.resetConfirm"))) return;
    try { await api("POST", "/mappings/reset"); msg.textContent = t("mappings.resetDone"); load(); } catch (err) { showError(msg, err); }
  } }, t("mappings.reset"))), msg, box);
  async function load() {
    const list = (await api("GET", "/mappings")).value;
    box.replaceChildren(table([t("col.mapping"), t("col.bcTable"), t("col.crmTable"), t("col.direction"), t("col.bcFilter"),
      t("col.crmFilter"), t("col.onlyCoupled"), t("col.dependsOn"), t("col.actions")],
    list.map((m) => h("tr", { "data-mapping": m.name }, h("th", { scope: "row" }, m.name), h("td", {}, m.bc_entity), h("td", {}, m.crm_entity),
      h("td", {}, dirLabel(m.direction)), h("td", {}, h("code", {}, m.bc_filter || "")), h("td", {}, h("code", {}, m.crm_filter || "")),
      h("td", {}, m.sync_only_coupled ? t("yes") : t("no")), h("td", {}, (m.depends_on || []).join(", ") || "–"),
      h("td", {}, h("button", { onclick: (e) => editForm(m, e.target.closest("tr")) }, t("mappings.edit")),
        h("button", { class: "secondary", onclick: () => startRun(`/mappings/${encodeURIComponent(m.name)}/sync`, {}) }, t("action.syncModified")),
        h("button", { class: "secondary", onclick: () => startRun(`/mappings/${encodeURIComponent(m.name)}/sync`, { full: true }) }, t("action.runFull"))))), t("nav.mappings")));
  }
  async function startRun(path, body) {
    try { const r = await api("POST", path, body); location.hash = `#jobs/${r.run_id}`; } catch (err) { showError(msg, err); }
  }
  function editForm(m, row) {
    document.getElementById("edit-form")?.remove();
    const id = (s) => `edit-${s}`;
    const sel = (name, values, current) => h("select", { id: id(name), name }, values.map((v) => h("option", { value: v, selected: v === current }, t(`${name}.${v}`))));
    const err = h("p", { class: "error", role: "alert", id: "edit-error" });
    const form = h("form", { class: "edit", id: "edit-form", "aria-labelledby": "edit-title", onsubmit: async (e) => {
      e.preventDefault();
      const f = e.target;
      const body = { direction: f.direction.value, bc_filter: f.bc_filter.value, crm_filter: f.crm_filter.value,
        sync_only_coupled: f.sync_only_coupled.checked, update_conflict: f.update_conflict.value, deletion_conflict: f.deletion_conflict.value };
      form.querySelectorAll("[aria-invalid]").forEach((x) => x.removeAttribute("aria-invalid"));
      try {
        await api("PATCH", `/mappings/${encodeURIComponent(m.name)}`, body);
        msg.textContent = t("mappings.saved", { name: m.name });
        form.remove(); load();
      } catch (ex) {
        err.textContent = ex.field ? t("error.field", { field: ex.field, message: ex.message }) : t("error.prefix", { message: ex.message });
        const input = ex.field && f.elements[ex.field];
        if (input) { input.setAttribute("aria-invalid", "true"); input.setAttribute("aria-describedby", "edit-error"); input.focus(); }
      }
    } },
    h("h3", { id: "edit-title", style: null }, t("mappings.editTitle", { name: m.name })), h("span"),
    h("label", { for: id("direction") }, t("col.direction")), sel("direction", ["Bidirectional", "ToIntegrationTable", "FromIntegrationTable"], m.direction),
    h("label", { for: id("bc_filter") }, t("col.bcFilter")), h("input", { type: "text", id: id("bc_filter"), name: "bc_filter", value: m.bc_filter || "" }),
    h("label", { for: id("crm_filter") }, t("col.crmFilter")), h("input", { type: "text", id: id("crm_filter"), name: "crm_filter", value: m.crm_filter || "" }),
    h("label", { for: id("sync_only_coupled") }, t("col.onlyCoupled")), h("input", { type: "checkbox", id: id("sync_only_coupled"), name: "sync_only_coupled", checked: !!m.sync_only_coupled }),
    h("label", { for: id("update_conflict") }, t("col.updateConflict")), sel("update_conflict", ["None", "SendUpdateToIntegration", "GetUpdateFromIntegration"], m.update_conflict),
    h("label", { for: id("deletion_conflict") }, t("col.deletionConflict")), sel("deletion_conflict", ["None", "RemoveCoupling", "RestoreRecords"], m.deletion_conflict),
    err, h("span", {}, h("button", { type: "submit" }, t("action.save")), h("button", { type: "button", class: "secondary", onclick: () => form.remove() }, t("action.cancel"))));
    row.closest(".scroll").after(form);
    form.querySelector("select").focus();
  }
  try { await load(); } catch (err) { showError(box, err); }
}

function recommendation(m, job) {
  // Without a dry run every mapping needs the full run; with one, what it would do decides.
  if (!job) return t("rec.full");
  const sum = (k) => (job.to_crm?.[k] || 0) + (job.from_crm?.[k] || 0);
  if (!job.total_estimate && !job.processed) return t("rec.noRecords");
  if (sum("coupled") && !sum("inserted") && !sum("failed")) return t("rec.couple");
  return t("rec.full");
}

async function reviewPage() {
  main.replaceChildren(h("h2", { tabindex: "-1" }, t("nav.review")), h("p", {}, t("review.intro")), h("p", { class: "notice" }, t("review.duplicates")));
  const controls = h("p");
  const box = h("div", { id: "review-table" });
  const progress = h("section", { "aria-live": "polite", "aria-labelledby": "h-progress", id: "review-progress" });
  main.append(controls, box, progress);
  const mappings = (await api("GET", "/mappings")).value;
  let dry = null;
  function render() {
    const jobs = Object.fromEntries((dry?.jobs || []).map((j) => [j.mapping, j]));
    box.replaceChildren(table([t("col.mapping"), t("col.dependsOn"), t("col.direction"), t("col.onlyCoupled"), t("col.status"), t("col.toCrm"), t("col.fromCrm"), t("col.recommendation")],
      mappings.map((m) => { const j = jobs[m.name]; return h("tr", { "data-mapping": m.name }, h("th", { scope: "row" }, m.name), h("td", {}, (m.depends_on || []).join(", ") || "–"),
        h("td", {}, dirLabel(m.direction)), h("td", {}, m.sync_only_coupled ? t("yes") : t("no")), h("td", {}, j ? statusLabel(j.status) : t("review.notAnalysed")),
        h("td", {}, j ? countersCell(j.to_crm) : "–"), h("td", {}, j ? countersCell(j.from_crm) : "–"), h("td", {}, recommendation(m, j))); }), t("nav.review")));
  }
  render();
  const dryBtn = h("button", { class: "secondary", id: "dry-run", onclick: async () => {
    // A dry run holds the mappings like any run: Start waits until it has ended.
    dryBtn.disabled = startBtn.disabled = true;
    try {
      const r = await api("POST", "/sync/full", { dry_run: true, after_full_sync: "restore" });
      announce(t("review.analysing"));
      poll(async () => {
        dry = await api("GET", `/runs/${r.run_id}`); render();
        if (["Succeeded", "Failed", "Cancelled", "AwaitingDecision"].includes(dry.status)) { stopPoll(); dryBtn.disabled = startBtn.disabled = false; announce(t("review.analysed")); }
      });
    } catch (err) { dryBtn.disabled = startBtn.disabled = false; showError(progress, err); }
  } }, t("review.dryRunButton"));
  const startBtn = h("button", { id: "start-full", onclick: async () => {
    if (!confirm(t("review.startConfirm"))) return;
    startBtn.disabled = true;
    try {
      const r = await api("POST", "/sync/full", { after_full_sync: "ask" });
      watch(r.run_id);
    } catch (err) { startBtn.disabled = false; showError(progress, err); }
  } }, t("review.start"));
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
      if (run.status === "AwaitingDecision") { stopPoll(); decision(run); }
      else if (["Succeeded", "Failed", "Cancelled"].includes(run.status)) { stopPoll(); announce(statusLabel(run.status)); startBtn.disabled = false; }
    };
    tick(); poll(tick);
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
  main.replaceChildren(h("h2", { tabindex: "-1" }, t("nav.jobs")));
  const box = h("div", { "aria-live": "polite" });
  main.append(box);
  if (!runId) { box.append(runsTable((await api("GET", "/runs?limit=50")).value)); return; }
  const tick = async () => {
    const run = await api("GET", `/runs/${runId}`);
    box.replaceChildren(h("h3", {}, t("jobs.run", { run: runId, status: statusLabel(run.status), kind: t("kind." + run.kind) })),
      h("p", {}, `${t("col.started")}: ${when(run.started_at)} · ${t("col.duration")}: ${duration(run.started_at, run.finished_at)}`),
      jobsTable(run), h("p", {}, h("a", { href: `#errors/${runId}` }, t("jobs.showErrors")), " · ", h("a", { href: "#jobs" }, t("jobs.allRuns"))));
    if (!["Pending", "Running"].includes(run.status)) stopPoll();
  };
  await tick(); poll(() => tick().catch((err) => { stopPoll(); showError(box, err); }));
}

async function errorsPage(runId) {
  main.replaceChildren(h("h2", { tabindex: "-1" }, t("nav.errors")));
  const msg = h("p", { role: "status" });
  const box = h("div");
  main.append(msg, box);
  const q = runId ? `?run_id=${encodeURIComponent(runId)}` : "";
  const list = (await api("GET", "/errors" + q)).value;
  if (!list.length) { box.append(h("p", { class: "muted" }, t("errors.none"))); return; }
  box.append(table([t("col.time"), t("col.mapping"), t("col.message"), t("col.source"), t("col.destination"), t("col.actions")],
    list.map((e) => h("tr", {}, h("td", {}, when(e.time)), h("td", {}, e.mapping || ""), h("td", {}, e.message || ""),
      h("td", {}, h("code", {}, e.source_id || "")), h("td", {}, h("code", {}, e.destination_id || "")),
      h("td", {}, h("button", { onclick: async () => { try { const r = await api("POST", "/errors/retry", { ids: [e.id] }); msg.textContent = t("errors.retried", { n: num((r.value || r.results || []).length || 1) }); } catch (err) { showError(msg, err); } } }, t("errors.retry")),
        h("button", { class: "secondary", onclick: async () => { try { await api("POST", `/mappings/${encodeURIComponent(e.mapping)}/skipped/restore`, idsOf(e)); msg.textContent = t("errors.restored"); } catch (err) { showError(msg, err); } } }, t("errors.restore")),
        h("button", { class: "secondary", onclick: async () => { try { await api("DELETE", `/mappings/${encodeURIComponent(e.mapping)}/couplings`, idsOf(e)); msg.textContent = t("couplings.removed"); } catch (err) { showError(msg, err); } } }, t("couplings.delete"))))), t("nav.errors")));
}
// An error's source is the BC record in the to_crm pass and the Dataverse record in the from_crm pass.
function idsOf(e) {
  const [bc, crm] = e.pass === "from_crm" ? [e.destination_id, e.source_id] : [e.source_id, e.destination_id];
  const body = {};
  if (bc) body.bc_ids = [bc];
  if (crm) body.crm_ids = [crm];
  return body;
}

async function couplingsPage() {
  main.replaceChildren(h("h2", { tabindex: "-1" }, t("nav.couplings")));
  const mappings = (await api("GET", "/mappings")).value;
  const msg = h("p", { role: "status" });
  const results = h("div");
  const opt = mappings.map((m) => h("option", { value: m.name }, m.name));
  const form = h("form", { class: "edit", onsubmit: (e) => { e.preventDefault(); search(); } },
    h("label", { for: "c-mapping" }, t("col.mapping")), h("select", { id: "c-mapping" }, opt),
    h("label", { for: "c-bc" }, t("couplings.bcId")), h("input", { type: "text", id: "c-bc", autocomplete: "off" }),
    h("label", { for: "c-crm" }, t("couplings.crmId")), h("input", { type: "text", id: "c-crm", autocomplete: "off" }),
    h("label", { for: "c-skipped" }, t("couplings.onlySkipped")), h("input", { type: "checkbox", id: "c-skipped" }),
    h("span"), h("span", {}, h("button", { type: "submit" }, t("couplings.search")),
      h("button", { type: "button", class: "secondary", onclick: couple }, t("couplings.couple")),
      h("button", { type: "button", class: "secondary", onclick: () => match(true) }, t("couplings.matchDry")),
      h("button", { type: "button", class: "secondary", onclick: () => match(false) }, t("couplings.match"))));
  main.append(h("p", {}, t("couplings.intro")), form, msg, results);
  const val = (id) => document.getElementById(id).value.trim();
  const mapping = () => mappings.find((m) => m.name === val("c-mapping"));
  const base = () => `/mappings/${encodeURIComponent(val("c-mapping"))}`;
  async function search() {
    const p = new URLSearchParams();
    if (val("c-bc")) p.set("bc_id", val("c-bc"));
    if (val("c-crm")) p.set("crm_id", val("c-crm"));
    if (document.getElementById("c-skipped").checked) p.set("skipped", "true");
    try {
      const list = (await api("GET", `${base()}/couplings?${p}`)).value;
      const bidi = mapping()?.direction === "Bidirectional";
      results.replaceChildren(list.length ? table([t("couplings.bcId"), t("couplings.crmId"), t("col.lastResult"), t("col.skipped"), t("col.failures"), t("col.lastSynced"), t("col.actions")],
        list.map((c) => { const dirSel = bidi ? h("select", { "aria-label": t("couplings.direction") }, ["recommended", "to_crm", "from_crm"].map((d) => h("option", { value: d }, t("syncdir." + d)))) : null;
          return h("tr", {}, h("td", {}, h("code", {}, c.bc_id)), h("td", {}, h("code", {}, c.crm_id)), h("td", {}, c.last_result || "–"),
            h("td", {}, c.skipped ? t("yes") : t("no")), h("td", { class: "num" }, num(c.failures)), h("td", {}, when(c.last_synced_at)),
            h("td", {}, dirSel, h("button", { onclick: () => act("POST", "/records/sync", { bc_ids: [c.bc_id], ...(dirSel ? { direction: dirSel.value } : {}) }) }, t("action.syncNow")),
              h("button", { class: "secondary", onclick: () => act("DELETE", "/couplings", { bc_ids: [c.bc_id] }) }, t("couplings.delete")))); }), t("nav.couplings"))
        : h("p", { class: "muted" }, t("couplings.none")));
    } catch (err) { showError(msg, err); }
  }
  async function act(method, path, body) {
    try {
      const r = await api(method, base() + path, body);
      const first = (r?.value || r?.results || [])[0];
      msg.textContent = first ? `${t("action.done")}: ${first.result || first.outcome || ""} ${first.message || ""}` : t("action.done");
      search();
    } catch (err) { showError(msg, err); }
  }
  async function couple() {
    if (!val("c-bc") || !val("c-crm")) { msg.textContent = t("couplings.needBoth"); return; }
    act("POST", "/couplings", { bc_id: val("c-bc"), crm_id: val("c-crm") });
  }
  async function match(dry) {
    try {
      const r = await api("POST", `${base()}/match`, { dry_run: dry });
      const counts = r.counts || {};
      msg.textContent = `${dry ? t("couplings.matchDry") : t("couplings.match")}: ` + Object.entries(counts).map(([k, v]) => `${t("outcome." + k)} ${num(v)}`).join(", ");
    } catch (err) { showError(msg, err); }
  }
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
  try { await pages[name](arg); } catch (err) { main.append(h("p", { class: "error", role: "alert" }, t("error.prefix", { message: err.message }))); }
  main.querySelector("h2")?.focus();
}
document.getElementById("lang").addEventListener("change", (e) => {
  lang = e.target.value;
  sessionStorage.setItem("portal.lang", lang);
  applyStatic(); route();
});
window.addEventListener("hashchange", route);
applyStatic();
route();
