// Create or edit a schedule. The API checks it as `natscron apply` does (the spec's model,
// then the scraper catalogue): an error names its field, shown at that field, and nothing
// is written.
import { useEffect, useRef, useState } from "preact/hooks";
import { ApiError, api, fieldProblems } from "../api.js";
import { Loading, Problem, notify, useLoad } from "../components.js";
import { html } from "../html.js";
import { go, href } from "../router.js";

const FORM_FIELDS = [
  "scheduled_job_id",
  "name",
  "description",
  "cron_expression",
  "interval",
  "run_at",
  "timezone",
  "scraper",
  "params",
  "labels",
  "priority",
  "max_retries",
  "timeout_seconds",
];
const KINDS = { cron_expression: "cron", interval: "interval", run_at: "once" };
const ZONES = typeof Intl.supportedValuesOf === "function" ? Intl.supportedValuesOf("timeZone") : [];

function blank() {
  return {
    scheduled_job_id: "",
    name: "",
    description: "",
    kind: "cron",
    cron_expression: "0 * * * *",
    interval_seconds: "3600",
    interval_from: "start",
    run_at: "",
    timezone: "UTC",
    scraper: "",
    params: "{}",
    labels: "",
    priority: "normal",
    max_retries: "0",
    timeout_seconds: "3600",
    others: "{}",
  };
}

function fromSpec(spec) {
  const others = {};
  for (const [key, value] of Object.entries(spec)) {
    if (!FORM_FIELDS.includes(key) && key !== "interval_minutes") others[key] = value;
  }
  const interval = spec.interval || {};
  const seconds =
    (interval.days || 0) * 86400 + (interval.hours || 0) * 3600 + (interval.minutes || 0) * 60 +
    (interval.seconds || 0) + (spec.interval_minutes || 0) * 60;
  const kind = spec.cron_expression ? "cron" : spec.run_at ? "once" : "interval";
  return {
    scheduled_job_id: spec.scheduled_job_id,
    name: spec.name,
    description: spec.description || "",
    kind,
    cron_expression: spec.cron_expression || "",
    interval_seconds: seconds ? String(seconds) : "",
    interval_from: interval.from || "start",
    run_at: spec.run_at || "",
    timezone: spec.timezone || "UTC",
    scraper: spec.scraper,
    params: JSON.stringify(spec.params || {}, null, 2),
    labels: Object.entries(spec.labels || {}).map(([k, v]) => `${k}=${v}`).join(", "),
    priority: spec.priority || "normal",
    max_retries: String(spec.max_retries ?? 0),
    timeout_seconds: String(spec.timeout_seconds ?? 3600),
    others: JSON.stringify(others, null, 2),
  };
}

function parseJson(text, field) {
  try {
    const value = JSON.parse(text || "{}");
    if (value && typeof value === "object" && !Array.isArray(value)) return value;
  } catch {
    // reported below
  }
  throw new ApiError(422, "invalid_request", `body.${field}: must be a JSON object`);
}

function parseLabels(text) {
  const labels = {};
  for (const pair of text.split(",").map((p) => p.trim()).filter(Boolean)) {
    const [key, ...rest] = pair.split("=");
    if (!rest.length) throw new ApiError(422, "invalid_request", `body.labels: write key=value, not ${pair}`);
    labels[key.trim()] = rest.join("=").trim();
  }
  return labels;
}

function toSpec(form) {
  const spec = {
    ...parseJson(form.others, "others"),
    scheduled_job_id: form.scheduled_job_id.trim(),
    name: form.name,
    description: form.description,
    timezone: form.timezone.trim(),
    scraper: form.scraper.trim(),
    params: parseJson(form.params, "params"),
    labels: parseLabels(form.labels),
    priority: form.priority,
    max_retries: Number(form.max_retries),
    timeout_seconds: Number(form.timeout_seconds),
  };
  if (form.kind === "cron") spec.cron_expression = form.cron_expression.trim();
  if (form.kind === "interval") {
    spec.interval = { seconds: Number(form.interval_seconds), from: form.interval_from };
  }
  if (form.kind === "once") spec.run_at = form.run_at.trim();
  return spec;
}

// Where each problem is shown: the spec's field, or the form's field holding it.
function fieldOf(path) {
  if (!path) return null;
  const top = path.split(/[.[]/)[0];
  if (top === "params") return "params";
  if (top === "interval" || top === "interval_minutes") return "interval_seconds";
  if (FORM_FIELDS.includes(top)) return top;
  return "others";
}

const LABELS = {
  scheduled_job_id: "Id",
  name: "Name",
  description: "Description",
  cron_expression: "Cron expression",
  interval_seconds: "Every (seconds)",
  run_at: "At (ISO 8601)",
  timezone: "Time zone",
  scraper: "Scraper",
  params: "Params (JSON)",
  labels: "Labels",
  priority: "Priority",
  max_retries: "Retries",
  timeout_seconds: "Timeout (seconds)",
  others: "Other fields (JSON)",
};

export function ScheduleEditor({ session, id }) {
  const editing = Boolean(id);
  const existing = useLoad(
    (signal) => (editing ? api(`/scheduled-jobs/${id}/spec`, { signal }) : Promise.resolve(null)),
    [id],
  );
  const scrapers = useLoad((signal) => api("/api/v1/scheduler/status", { signal }).catch(() => null), []);
  const [form, setForm] = useState(null);
  const [problems, setProblems] = useState([]);
  const [unchecked, setUnchecked] = useState(false);
  const [busy, setBusy] = useState(false);
  const summary = useRef(null);

  useEffect(() => {
    if (!editing) setForm(blank());
    else if (existing.data) setForm(fromSpec(existing.data.scheduled_job));
  }, [existing.data, editing]);
  useEffect(() => {
    if (problems.length && summary.current) summary.current.focus();
  }, [problems]);

  if (!session.canWrite) return html`<h1>Schedules</h1><p>This token may only read.</p>`;
  if (existing.error) return html`<h1>Edit ${id}</h1><${Problem} error=${existing.error} />`;
  if (!form) return html`<h1>${editing ? `Edit ${id}` : "New schedule"}</h1><${Loading} />`;

  const problemAt = (field) => problems.filter(([where]) => where === field).map(([, what]) => what);
  const set = (field) => (event) => setForm({ ...form, [field]: event.target.value });

  function input(field, attrs = {}) {
    const here = problemAt(field);
    const described = here.length ? `${field}-problem` : attrs.hint ? `${field}-hint` : null;
    const props = {
      id: `field-${field}`,
      name: field,
      value: form[field],
      onInput: set(field),
      "aria-invalid": here.length ? "true" : null,
      "aria-describedby": described,
      ...attrs.input,
    };
    return html`<div class=${`field${here.length ? " invalid" : ""}`}>
      <label for=${`field-${field}`}>${LABELS[field]}</label>
      ${attrs.textarea ? html`<textarea rows=${attrs.rows || 4} ...${props}></textarea>` : html`<input ...${props} />`}
      ${attrs.hint && !here.length ? html`<small id=${`${field}-hint`}>${attrs.hint}</small>` : null}
      ${here.length ? html`<small id=${`${field}-problem`} class="field-problem">${here.join("; ")}</small>` : null}
    </div>`;
  }

  async function submit(event) {
    event.preventDefault();
    setBusy(true);
    setProblems([]);
    try {
      const spec = toSpec(form);
      const params = { unchecked: unchecked ? "true" : null };
      if (editing) await api(`/scheduled-jobs/${id}`, { method: "PUT", body: spec, params });
      else await api("/scheduled-jobs", { method: "POST", body: spec, params });
      notify(editing ? "Saved." : "Created.");
      go(`/schedules/${spec.scheduled_job_id}`);
    } catch (error) {
      const found =
        error.code === "invalid_params" || error.code === "unknown_scraper"
          ? [[error.code === "invalid_params" ? "params" : "scraper", error.message]]
          : error.code === "invalid_request" || error.code === "bad_request"
            ? fieldProblems(error.message).map(([path, what]) => [fieldOf(path), path ? `${path}: ${what}` : what])
            : [[null, `${error.code}: ${error.message}`]];
      setProblems(found);
    }
    setBusy(false);
  }

  const catalogue = scrapers.data ? scrapers.data.scrapers : [];
  return html`
    <h1>${editing ? html`Edit <span class="id">${id}</span>` : "New schedule"}</h1>
    ${problems.length
      ? html`<div class="problem" role="alert" tabindex="-1" ref=${summary}>
          <p><strong>Nothing was written.</strong> The API refused the schedule:</p>
          <ul>${problems.map(([field, what]) => html`<li>
            ${field ? html`<a href=${`#field-${field}`} onClick=${(e) => {
              e.preventDefault();
              document.getElementById(`field-${field}`).focus();
            }}>${LABELS[field]}</a>: ` : null}${what}</li>`)}</ul>
        </div>`
      : null}
    <form class="editor" onSubmit=${submit} novalidate>
      <fieldset>
        <legend>What</legend>
        ${input("scheduled_job_id", { input: { readOnly: editing, required: true }, hint: "letters, digits, - and _; it cannot change later" })}
        ${input("name", { input: { required: true } })}
        ${input("description")}
      </fieldset>
      <fieldset>
        <legend>When</legend>
        <div class="radios" role="radiogroup" aria-label="Kind of schedule">
          ${Object.entries(KINDS).map(([, kind]) => html`<label key=${kind}>
            <input type="radio" name="kind" value=${kind} checked=${form.kind === kind}
              onChange=${() => setForm({ ...form, kind })} /> ${kind}</label>`)}
        </div>
        ${form.kind === "cron" ? input("cron_expression", { hint: "5 fields, or 6 with seconds first: */10 * * * * *" }) : null}
        ${form.kind === "interval"
          ? html`${input("interval_seconds", { input: { type: "number", min: "1" } })}
              <div class="field"><label for="field-interval_from">Counted from</label>
                <select id="field-interval_from" value=${form.interval_from} onChange=${set("interval_from")}>
                  <option value="start">a fixed grid</option>
                  <option value="last_run">the end of the previous run</option>
                </select></div>`
          : null}
        ${form.kind === "once" ? input("run_at", { hint: "2027-01-01T02:00:00Z" }) : null}
        ${input("timezone", { input: { list: "zones" } })}
        <datalist id="zones">${ZONES.map((zone) => html`<option value=${zone} />`)}</datalist>
      </fieldset>
      <fieldset>
        <legend>How</legend>
        ${input("scraper", { input: { list: "scrapers", required: true } })}
        <datalist id="scrapers">${catalogue.map((name) => html`<option value=${name} />`)}</datalist>
        ${input("params", { textarea: true, rows: 6 })}
        ${input("labels", { hint: "team=sold, env=prod" })}
        <div class="field"><label for="field-priority">Priority</label>
          <select id="field-priority" value=${form.priority} onChange=${set("priority")}>
            <option value="normal">normal</option><option value="immediate">immediate</option>
          </select></div>
        ${input("max_retries", { input: { type: "number", min: "0", max: "100" } })}
        ${input("timeout_seconds", { input: { type: "number", min: "1" } })}
        ${input("others", { textarea: true, rows: 4, hint: "any other field of the spec: jitter_seconds, active_hours, concurrency_policy, …" })}
        <label class="check"><input type="checkbox" checked=${unchecked}
          onChange=${(e) => setUnchecked(e.target.checked)} /> Skip the check of scraper and params against the runners</label>
      </fieldset>
      <div class="actions">
        <button type="submit" disabled=${busy}>${editing ? "Save" : "Create"}</button>
        <a class="button secondary" href=${editing ? href(`/schedules/${id}`) : "#/schedules"}>Cancel</a>
      </div>
    </form>
  `;
}
