// The schedules: filtered by status and labels, searched by id or name, a page at a time
// (the API pages by cursor; it stays fast at 100,000 schedules).
import { useEffect, useState } from "preact/hooks";
import { api } from "../api.js";
import {
  Loading,
  Percent,
  Problem,
  RunStrip,
  StatusBadge,
  Time,
  useLoad,
  useNow,
} from "../components.js";
import { html } from "../html.js";
import { href, replaceParams } from "../router.js";

const PAGE = 50;
const SEARCH_PAUSE_MS = 250;

export function scheduleText(job) {
  if (job.cron_expression) return job.cron_expression;
  if (job.run_at) return `once, ${job.run_at}`;
  const interval = job.interval;
  if (interval) {
    const parts = ["days", "hours", "minutes", "seconds"]
      .filter((unit) => interval[unit])
      .map((unit) => `${interval[unit]} ${unit}`);
    const from = interval.from === "last_run" ? " after the last run" : "";
    return `every ${parts.join(" ")}${from}`;
  }
  if (job.interval_minutes) return `every ${job.interval_minutes} minutes`;
  return "";
}

export function SchedulesPage({ session, params }) {
  const status = params.get("status") || "";
  const selector = params.get("selector") || "";
  const search = params.get("search") || "";
  const [typed, setTyped] = useState({ search, selector });
  const [cursors, setCursors] = useState([]);
  const cursor = cursors[cursors.length - 1];
  const now = useNow(5000);

  useEffect(() => setCursors([]), [status, selector, search]);
  useEffect(() => {
    const timer = setTimeout(() => {
      if (typed.search !== search) replaceParams("/schedules", { status, selector, search: typed.search });
    }, SEARCH_PAUSE_MS);
    return () => clearTimeout(timer);
  }, [typed.search]);

  const listing = useLoad(
    (signal) =>
      api("/scheduled-jobs", {
        params: { status, selector, search, cursor, limit: PAGE, count: false },
        signal,
      }),
    [status, selector, search, cursor],
  );
  const jobs = listing.data ? listing.data.scheduled_jobs : [];
  const next = listing.data && listing.data.next_cursor;

  return html`
    <div class="heading">
      <h1>Schedules</h1>
      ${session.canWrite ? html`<a class="button" href="#/new">New schedule</a>` : null}
    </div>
    <form class="filters" role="search" aria-label="Filter schedules" onSubmit=${(event) => {
      event.preventDefault();
      replaceParams("/schedules", { status, selector: typed.selector, search: typed.search });
    }}>
      <div class="field">
        <label for="search">Search id or name</label>
        <input id="search" type="search" value=${typed.search} placeholder="austin"
          onInput=${(event) => setTyped({ ...typed, search: event.target.value })} />
      </div>
      <div class="field">
        <label for="status">Status</label>
        <select id="status" value=${status}
          onChange=${(event) => replaceParams("/schedules", { status: event.target.value, selector, search })}>
          <option value="">any</option>
          <option value="active">active</option>
          <option value="paused">paused</option>
          <option value="inactive">inactive (deleted)</option>
        </select>
      </div>
      <div class="field">
        <label for="selector">Labels</label>
        <input id="selector" value=${typed.selector} placeholder="team=sold,env=prod"
          onInput=${(event) => setTyped({ ...typed, selector: event.target.value })}
          onBlur=${() => typed.selector !== selector &&
            replaceParams("/schedules", { status, selector: typed.selector, search })} />
      </div>
      <button type="submit" class="secondary">Apply</button>
    </form>
    <${Problem} error=${listing.error} />
    ${listing.loading && !listing.data ? html`<${Loading} what="Loading schedules" />` : null}
    ${listing.data
      ? html`<div class="table-wrap" tabindex="0" aria-busy=${listing.loading ? "true" : "false"}>
          <table class="schedules">
            <caption class="visually-hidden">Schedules, by id</caption>
            <thead>
              <tr>
                <th scope="col">Schedule</th>
                <th scope="col">Status</th>
                <th scope="col" class="wide">When</th>
                <th scope="col">Next run</th>
                <th scope="col" class="wide">Last run</th>
                <th scope="col" class="wide">Success</th>
                <th scope="col">Recent runs</th>
              </tr>
            </thead>
            <tbody>
              ${jobs.map((job) => html`<tr key=${job.scheduled_job_id}>
                <th scope="row">
                  <a href=${href(`/schedules/${job.scheduled_job_id}`)}>${job.name || job.scheduled_job_id}</a>
                  <div class="id">${job.scheduled_job_id}</div>
                </th>
                <td><${StatusBadge} status=${job.status} /></td>
                <td class="wide"><code>${scheduleText(job)}</code>
                  ${job.timezone && job.timezone !== "UTC" ? html`<div class="muted">${job.timezone}</div>` : null}</td>
                <td>${job.status === "active"
                  ? html`<${Time} at=${job.next_run_at} zone=${job.timezone} relativeTo=${now} />`
                  : html`<span class="muted">—</span>`}</td>
                <td class="wide">
                  ${job.last_run_at
                    ? html`<${Time} at=${job.last_run_at} zone=${job.timezone} relativeTo=${now} />
                        <div><${StatusBadge} status=${job.last_run_status} /></div>`
                    : html`<span class="muted">never</span>`}
                </td>
                <td class="wide"><${Percent} value=${job.success_rate} /></td>
                <td><${RunStrip} runs=${job.recent_runs} zone=${job.timezone} /></td>
              </tr>`)}
            </tbody>
          </table>
          ${jobs.length === 0 ? html`<p class="empty">${next ? "No match in this stretch of schedules; look further with Next." : "No schedule matches."}</p>` : null}
        </div>
        <nav class="pager" aria-label="Pages of schedules">
          <button type="button" class="secondary" disabled=${cursors.length === 0}
            onClick=${() => setCursors(cursors.slice(0, -1))}>Previous</button>
          <span>Page ${cursors.length + 1}</span>
          <button type="button" class="secondary" disabled=${!next}
            onClick=${() => setCursors([...cursors, next])}>Next</button>
        </nav>`
      : null}
  `;
}
