// One schedule: its spec (as KV holds it, what the ticker follows), the expression in
// words, the next fire times in its zone with daylight-saving changes marked, the timeline
// of its past slots explained, statistics, its runs live, and the actions the token allows.
import { useState } from "preact/hooks";
import { api } from "../api.js";
import {
  Dialog,
  Duration,
  Loading,
  Percent,
  Problem,
  StatusBadge,
  Time,
  notify,
  useLoad,
  useNow,
} from "../components.js";
import { html } from "../html.js";
import { useLiveRuns } from "../live.js";
import { go, href } from "../router.js";
import { inZone, isoToLocalInput, localInputToIso } from "../times.js";
import { RunsTable } from "./runs.js";
import { scheduleText } from "./schedules.js";
import { Timeline } from "./timeline.js";

async function loadSchedule(id, signal) {
  const [spec, document] = await Promise.all([
    api(`/scheduled-jobs/${id}/spec`, { signal }).catch((error) => {
      if (error.status === 404) return null;
      throw error;
    }),
    api(`/scheduled-jobs/${id}`, { params: { include_runs: false }, signal }).catch((error) => {
      if (error.status === 404) return null;
      throw error;
    }),
  ]);
  if (!spec && !document) {
    const error = new Error(`no scheduled job ${id}`);
    error.code = "unknown_scheduled_job";
    throw error;
  }
  const preview = spec
    ? await api(`/scheduled-jobs/${id}/preview`, { params: { count: 10 }, signal })
    : null;
  return {
    spec: spec ? spec.scheduled_job : document.scheduled_job,
    inKv: Boolean(spec),
    document: document && document.scheduled_job,
    preview,
  };
}

function FireTimes({ preview, now }) {
  if (!preview.local_fire_times.length) return html`<p class="muted">No fire time left.</p>`;
  return html`
    ${preview.fires ? null : html`<p class="note">The schedule is ${preview.status}: these times would apply once it is active.</p>`}
    <ol class="fires">
      ${preview.local_fire_times.map((fire) => html`<li key=${fire.at} class=${fire.offset_changed ? "dst" : ""}>
        <span class="wall">${fire.local.replace("T", " ").slice(0, 19)}</span> <span class="offset">UTC${fire.utc_offset}</span>${" "}
        ${fire.offset_changed ? html`<span class="badge badge-dst">clock change: now UTC${fire.utc_offset}</span> ` : null}
        <span class="muted">· <${Time} at=${fire.at} zone=${preview.timezone} relativeTo=${now} /></span>
      </li>`)}
    </ol>
    <p class="muted small">Wall times in ${preview.timezone}; the times after the dot are in your zone.</p>`;
}

function Stats({ id }) {
  const stats = useLoad((signal) => api(`/api/v1/jobs/${id}/stats`, { params: { hours: 24 }, signal }), [id]);
  if (stats.error) return html`<${Problem} error=${stats.error} />`;
  if (!stats.data) return html`<${Loading} what="Loading statistics" />`;
  const windows = [
    ["All time", stats.data.all_time],
    ["Last 24 h", stats.data.last_24h],
    ["Last 7 days", stats.data.last_7d],
  ];
  const hourly = stats.data.hourly;
  const most = Math.max(1, ...hourly.map((hour) => hour.runs));
  return html`
    <div class="table-wrap" tabindex="0"><table>
      <caption class="visually-hidden">Run statistics</caption>
      <thead><tr><th scope="col">Window</th><th scope="col">Runs</th><th scope="col">Success</th>
        <th scope="col">Mean</th><th scope="col">p95</th><th scope="col" class="wide">Items</th></tr></thead>
      <tbody>${windows.map(([label, s]) => html`<tr key=${label}>
        <th scope="row">${label}</th><td>${s.runs}</td><td><${Percent} value=${s.success_rate} /></td>
        <td><${Duration} ms=${s.duration_ms_mean} /></td><td><${Duration} ms=${s.duration_ms_p95} /></td>
        <td class="wide">${s.items_scraped}</td></tr>`)}</tbody>
    </table></div>
    <details class="hourly">
      <summary>Per hour, last 24 hours (${hourly.length} hours with runs)</summary>
      <table>
        <caption class="visually-hidden">Runs per UTC hour</caption>
        <thead><tr><th scope="col">Hour (UTC)</th><th scope="col">Runs</th><th scope="col">Success</th>
          <th scope="col">p95</th><th scope="col" aria-hidden="true"></th></tr></thead>
        <tbody>${hourly.map((hour) => html`<tr key=${hour.period}>
          <th scope="row">${hour.period.slice(11)}:00</th><td>${hour.runs}</td>
          <td><${Percent} value=${hour.success_rate} /></td><td><${Duration} ms=${hour.duration_ms_p95} /></td>
          <td aria-hidden="true"><meter min="0" max=${most} value=${hour.runs}></meter></td></tr>`)}</tbody>
      </table>
    </details>`;
}

function Backfill({ id, onDone }) {
  const [range, setRange] = useState(() => ({
    start: isoToLocalInput(new Date(Date.now() - 3600 * 1000).toISOString()),
    end: isoToLocalInput(new Date().toISOString()),
  }));
  const [preview, setPreview] = useState(null);
  const [problem, setProblem] = useState(null);
  const [busy, setBusy] = useState(false);
  const body = (dryRun) => ({
    start: localInputToIso(range.start),
    end: localInputToIso(range.end),
    dry_run: dryRun,
  });
  async function ask(dryRun) {
    setBusy(true);
    setProblem(null);
    try {
      const reply = await api(`/scheduled-jobs/${id}/backfill`, { method: "POST", body: body(dryRun) });
      if (dryRun) setPreview(reply);
      else onDone(reply);
    } catch (error) {
      setProblem(error);
      setPreview(null);
    }
    setBusy(false);
  }
  const change = (field) => (event) => {
    setRange({ ...range, [field]: event.target.value });
    setPreview(null);
  };
  return html`<form onSubmit=${(event) => {
    event.preventDefault();
    ask(true);
  }}>
    <p>Runs the slots of a past range that never ran. Times are in your zone.</p>
    <label for="backfill-start">From</label>
    <input id="backfill-start" type="datetime-local" required value=${range.start} onInput=${change("start")} />
    <label for="backfill-end">To</label>
    <input id="backfill-end" type="datetime-local" required value=${range.end} onInput=${change("end")} />
    <${Problem} error=${problem} />
    ${preview
      ? html`<div class="preview" role="status">
          <p>${preview.slots.length} slots in the range; ${preview.skipped_existing} already ran;
            ${preview.slots.length - preview.skipped_existing} would run.</p>
          ${preview.slots.length
            ? html`<details><summary>The slots</summary><ul class="slots">${preview.slots.map(
                (slot) => html`<li key=${slot}>${inZone(slot)}</li>`,
              )}</ul></details>`
            : null}
        </div>`
      : null}
    <div class="actions">
      <button type="submit" class="secondary" disabled=${busy}>Preview (dry run)</button>
      <button type="button" disabled=${busy || !preview || preview.slots.length === preview.skipped_existing}
        onClick=${() => ask(false)}>Run the backfill</button>
    </div>
  </form>`;
}

function Spec({ spec, document, words }) {
  const labels = Object.entries(spec.labels || {});
  return html`<dl class="facts">
    <dt>Schedule</dt><dd><code>${scheduleText(spec)}</code></dd>
    <dt>In words</dt><dd>${words || html`<span class="muted">not put into words; see the fire times</span>`}</dd>
    <dt>Time zone</dt><dd>${spec.timezone}</dd>
    ${spec.active_hours
      ? html`<dt>Active hours</dt><dd>${spec.active_hours.start}–${spec.active_hours.end}, weekdays ${spec.active_hours.weekdays.join(", ")}</dd>`
      : null}
    ${spec.start_at ? html`<dt>From</dt><dd><${Time} at=${spec.start_at} zone=${spec.timezone} /></dd>` : null}
    ${spec.end_at ? html`<dt>Until</dt><dd><${Time} at=${spec.end_at} zone=${spec.timezone} /></dd>` : null}
    <dt>Scraper</dt><dd>${spec.scraper}${spec.pool ? html` <span class="muted">(pool ${spec.pool})</span>` : null}</dd>
    <dt>Retries</dt><dd>${spec.max_retries}, ${spec.retry_backoff_seconds} s apart</dd>
    <dt>Timeout</dt><dd>${spec.timeout_seconds} s</dd>
    <dt>Overlap</dt><dd>${spec.concurrency_policy}</dd>
    <dt>Priority</dt><dd>${spec.priority}</dd>
    <dt>Labels</dt><dd>${labels.length ? labels.map(([k, v]) => html`<span class="label" key=${k}>${k}=${v}</span> `) : html`<span class="muted">none</span>`}</dd>
    ${document ? html`<dt>Runs</dt><dd>${document.run_count}${document.consecutive_failures
      ? html`, <strong>${document.consecutive_failures} failed in a row</strong>` : null}</dd>` : null}
  </dl>
  <details><summary>Params</summary><pre>${JSON.stringify(spec.params, null, 2)}</pre></details>`;
}

export function SchedulePage({ session, id }) {
  const now = useNow(1000);
  const loaded = useLoad((signal) => loadSchedule(id, signal), [id]);
  const live = useLiveRuns({ scheduled_job_id: id }, 20);
  const [dialog, setDialog] = useState(null);
  const [note, setNote] = useState("");
  const [problem, setProblem] = useState(null);
  const [busy, setBusy] = useState(false);

  if (loaded.error) return html`<h1>${id}</h1><${Problem} error=${loaded.error} />`;
  if (!loaded.data) return html`<h1>${id}</h1><${Loading} />`;
  const { spec, inKv, document, preview } = loaded.data;
  const status = inKv ? spec.status : "inactive";

  async function act(request, message, after = () => loaded.reload()) {
    setBusy(true);
    setProblem(null);
    try {
      const reply = await request();
      setDialog(null);
      notify(typeof message === "function" ? message(reply) : message);
      after(reply);
    } catch (error) {
      setProblem(error);
    }
    setBusy(false);
  }

  const write = session.canWrite && inKv;
  const paused = status === "paused";
  return html`
    <div class="heading">
      <h1>${spec.name} <span class="id">${id}</span></h1>
      <${StatusBadge} status=${status} />
    </div>
    ${spec.description ? html`<p>${spec.description}</p>` : null}
    ${status === "paused"
      ? html`<p class="note" data-testid="paused-note">Paused${spec.paused_at
          ? html` <${Time} at=${spec.paused_at} relativeTo=${now} />` : null}${spec.paused_reason
          ? html`: “${spec.paused_reason}”` : null}</p>`
      : null}
    ${!inKv ? html`<p class="note">Deleted: its document and runs are kept.</p>` : null}
    ${write
      ? html`<div class="actions" role="group" aria-label="Actions">
          ${status === "active" ? html`<button type="button" onClick=${() => setDialog("pause")}>Pause</button>` : null}
          ${status === "paused"
            ? html`<button type="button" disabled=${busy}
                onClick=${() => act(() => api(`/api/v1/jobs/${id}/resume`, { method: "POST" }), "Resumed.")}>Resume</button>`
            : null}
          <button type="button" disabled=${busy} onClick=${() =>
            act(
              () => api("/scrape/trigger", { method: "POST", body: { scheduled_job_id: id, force: paused } }),
              (reply) => `Triggered${paused ? " although paused (it stays paused)" : ""}: run ${reply.job_id}.`,
              () => {},
            )}>${paused ? "Trigger now (stays paused)" : "Trigger now"}</button>
          ${status === "active" ? html`<button type="button" class="secondary" onClick=${() => setDialog("backfill")}>Backfill…</button>` : null}
          <a class="button secondary" href=${href(`/schedules/${id}/edit`)}>Edit</a>
          <button type="button" class="danger" onClick=${() => setDialog("delete")}>Delete…</button>
        </div>`
      : null}
    <${Problem} error=${problem} />
    <div class="columns">
      <section aria-labelledby="spec-heading">
        <h2 id="spec-heading">Spec</h2>
        <${Spec} spec=${spec} document=${document} words=${preview && preview.schedule} />
      </section>
      <section aria-labelledby="fires-heading">
        <h2 id="fires-heading">Next fire times</h2>
        ${preview ? html`<${FireTimes} preview=${preview} now=${now} />` : html`<p class="muted">None: deleted.</p>`}
      </section>
    </div>
    <section aria-labelledby="timeline-heading">
      <h2 id="timeline-heading">Timeline</h2>
      ${inKv ? html`<${Timeline} id=${id} />` : html`<p class="muted">None: deleted (explaining needs the spec).</p>`}
    </section>
    <section aria-labelledby="stats-heading">
      <h2 id="stats-heading">Statistics</h2>
      <${Stats} id=${id} />
    </section>
    <section aria-labelledby="runs-heading">
      <h2 id="runs-heading">Recent runs</h2>
      <${RunsTable} live=${live} showSchedule=${false} caption="Runs of this schedule, newest first" />
      <p><a href=${href("/runs", { schedule: id })}>All runs of this schedule</a></p>
    </section>

    <${Dialog} title="Pause this schedule?" open=${dialog === "pause"} onClose=${() => setDialog(null)}>
      <form onSubmit=${(event) => {
        event.preventDefault();
        act(
          () => api(`/api/v1/jobs/${id}/pause`, { method: "POST", body: { reason: note || null } }),
          "Paused.",
        );
      }}>
        <label for="pause-note">Note (why; shown with the schedule)</label>
        <input id="pause-note" value=${note} maxlength="500" onInput=${(e) => setNote(e.target.value)} />
        <${Problem} error=${problem} />
        <div class="actions">
          <button type="submit" disabled=${busy}>Pause</button>
          <button type="button" class="secondary" onClick=${() => setDialog(null)}>Back</button>
        </div>
      </form>
    </${Dialog}>
    <${Dialog} title="Backfill a range" open=${dialog === "backfill"} onClose=${() => setDialog(null)}>
      <${Backfill} id=${id} onDone=${(reply) => {
        setDialog(null);
        notify(`Backfill: ${reply.published} runs started, ${reply.skipped_existing} had run.`);
      }} />
      <div class="actions"><button type="button" class="secondary" onClick=${() => setDialog(null)}>Close</button></div>
    </${Dialog}>
    <${Dialog} title=${`Delete ${id}?`} open=${dialog === "delete"} onClose=${() => setDialog(null)}>
      <p>Its spec leaves KV and it stops firing; its document and runs are kept, inactive.</p>
      <${Problem} error=${problem} />
      <div class="actions">
        <button type="button" class="danger" disabled=${busy} onClick=${() =>
          act(() => api(`/scheduled-jobs/${id}`, { method: "DELETE" }), "Deleted.", () => go("/schedules"))}>Delete</button>
        <button type="button" class="secondary" onClick=${() => setDialog(null)}>Back</button>
      </div>
    </${Dialog}>
  `;
}
