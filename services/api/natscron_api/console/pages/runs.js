// Runs as they happen: new runs and status changes appear without a reload.
import { useState } from "preact/hooks";
import { Duration, Problem, RunStatus, Time, useNow } from "../components.js";
import { html } from "../html.js";
import { useLiveRuns } from "../live.js";
import { href, replaceParams } from "../router.js";
import { isoToLocalInput, localInputToIso } from "../times.js";

const STATES = { connecting: "connecting…", live: "live", reconnecting: "reconnecting…" };

export function RunsTable({ live, showSchedule = true, caption }) {
  const now = useNow(5000);
  return html`
    <p class=${`live live-${live.state}`} role="status">Updates: ${STATES[live.state]}</p>
    <${Problem} error=${live.error} />
    <div class="table-wrap" tabindex="0">
      <table class="runs">
        <caption class="visually-hidden">${caption}</caption>
        <thead>
          <tr>
            <th scope="col">Run</th>
            ${showSchedule ? html`<th scope="col" class="wide">Schedule</th>` : null}
            <th scope="col">Status</th>
            <th scope="col" class="wide">Trigger</th>
            <th scope="col">Created</th>
            <th scope="col" class="wide">Took</th>
            <th scope="col" class="wide">Items</th>
          </tr>
        </thead>
        <tbody>
          ${live.rows.map((run) => html`<tr key=${run.job_id} class=${live.fresh.has(run.job_id) ? "fresh" : ""}
              data-job-id=${run.job_id} data-status=${run.status}>
            <th scope="row"><a href=${href(`/runs/${run.job_id}`)}>${run.job_id}</a></th>
            ${showSchedule
              ? html`<td class="wide">${run.scheduled_job_id
                  ? html`<a href=${href(`/schedules/${run.scheduled_job_id}`)}>${run.scheduled_job_id}</a>`
                  : html`<span class="muted">ad hoc</span>`}</td>`
              : null}
            <td><${RunStatus} run=${run} /></td>
            <td class="wide">${run.trigger}</td>
            <td><${Time} at=${run.created_at} relativeTo=${now} /></td>
            <td class="wide"><${Duration} ms=${run.duration_ms} /></td>
            <td class="wide">${run.properties_scraped ?? ""}</td>
          </tr>`)}
        </tbody>
      </table>
      ${live.state === "live" && live.rows.length === 0 ? html`<p class="empty">No runs match yet.</p>` : null}
    </div>
  `;
}

export function RunsPage({ params }) {
  const filters = {
    status: params.get("status") || "",
    scheduled_job_id: params.get("schedule") || "",
    trigger: params.get("trigger") || "",
    since: params.get("since") || "",
    until: params.get("until") || "",
  };
  const [schedule, setSchedule] = useState(filters.scheduled_job_id);
  const live = useLiveRuns(filters);
  const set = (change) => {
    const next = { ...filters, ...change };
    replaceParams("/runs", {
      status: next.status,
      schedule: next.scheduled_job_id,
      trigger: next.trigger,
      since: next.since,
      until: next.until,
    });
  };
  return html`
    <h1>Runs</h1>
    <form class="filters" aria-label="Filter runs" onSubmit=${(event) => {
      event.preventDefault();
      set({ scheduled_job_id: schedule.trim() });
    }}>
      <div class="field">
        <label for="run-status">Status</label>
        <select id="run-status" value=${filters.status} onChange=${(e) => set({ status: e.target.value })}>
          <option value="">any</option>
          ${["pending", "running", "completed", "failed", "cancelled", "skipped"].map(
            (status) => html`<option value=${status}>${status}</option>`,
          )}
        </select>
      </div>
      <div class="field">
        <label for="run-schedule">Schedule id</label>
        <input id="run-schedule" value=${schedule} pattern="[A-Za-z0-9_\\-]{1,100}"
          onInput=${(e) => setSchedule(e.target.value)}
          onBlur=${() => schedule.trim() !== filters.scheduled_job_id && set({ scheduled_job_id: schedule.trim() })} />
      </div>
      <div class="field">
        <label for="run-trigger">Trigger</label>
        <select id="run-trigger" value=${filters.trigger} onChange=${(e) => set({ trigger: e.target.value })}>
          <option value="">any</option>
          ${["scheduled", "triggered", "retry", "backfill", "adhoc"].map(
            (trigger) => html`<option value=${trigger}>${trigger}</option>`,
          )}
        </select>
      </div>
      <div class="field">
        <label for="run-since">Created from</label>
        <input id="run-since" type="datetime-local" value=${filters.since ? isoToLocalInput(filters.since) : ""}
          onChange=${(e) => set({ since: localInputToIso(e.target.value) })} />
      </div>
      <div class="field">
        <label for="run-until">Created before</label>
        <input id="run-until" type="datetime-local" value=${filters.until ? isoToLocalInput(filters.until) : ""}
          onChange=${(e) => set({ until: localInputToIso(e.target.value) })} />
      </div>
      <button type="submit" class="secondary">Apply</button>
    </form>
    <${RunsTable} live=${live} caption="Runs, newest first" />
  `;
}
